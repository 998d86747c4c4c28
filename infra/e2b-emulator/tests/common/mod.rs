//! Test kit: an emulator with fast webhook retries, a small API client and a webhook receiver.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use e2b_emulator::{Emulator, EmulatorConfig, TeamAccount};
use serde_json::Value;

pub const TEAM_B: &str = "team-b";
pub const KEY_B: &str = "e2b_team_b_key";

pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        teams: vec![
            TeamAccount::new("team-local", "e2b_local_emulator_key"),
            TeamAccount::new(TEAM_B, KEY_B),
        ],
        webhook_retry_delay: Duration::from_millis(20),
        snapshot_duration: Duration::ZERO,
        ..EmulatorConfig::default()
    }
}

pub async fn start() -> Emulator {
    start_with(config()).await
}

pub async fn start_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("emulator starts")
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Speaks to the emulator the way an E2B client does.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(emulator: &Emulator) -> Api {
        Api::with_key(emulator, &emulator.api_key())
    }

    pub fn with_key(emulator: &Emulator, key: &str) -> Api {
        Api {
            base: emulator.base_url(),
            key: key.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", &self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the emulator");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, None).await
    }

    /// Creates a sandbox and returns its id.
    pub async fn create(&self, body: Value) -> String {
        let reply = self.post("/v2/sandboxes", body).await;
        assert_eq!(reply.status, 201, "create failed: {}", reply.body);
        reply.body["sandboxID"].as_str().expect("sandboxID").to_owned()
    }

    pub async fn state(&self, id: &str) -> String {
        let reply = self.get(&format!("/sandboxes/{id}")).await;
        assert_eq!(reply.status, 200, "get failed: {}", reply.body);
        reply.body["state"].as_str().expect("state").to_owned()
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<AtomicU32>,
}

/// A webhook endpoint that answers 500 to its first `fail_first` requests, 200 after.
pub struct Receiver {
    pub url: String,
    state: ReceiverState,
}

impl Receiver {
    pub async fn start(fail_first: u32) -> Receiver {
        let state = ReceiverState {
            fail_first: Arc::new(AtomicU32::new(fail_first)),
            ..ReceiverState::default()
        };
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, state }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Event types in arrival order.
    pub fn types(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    state.received.lock().expect("lock").push(Received { headers, body });
    let failing = state
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// Registers a webhook for every lifecycle event and returns its id.
pub async fn register(api: &Api, url: &str, secret: &str) -> String {
    let reply = api
        .post(
            "/events/webhooks",
            serde_json::json!({
                "name": "test",
                "url": url,
                "events": [
                    "sandbox.lifecycle.created", "sandbox.lifecycle.updated",
                    "sandbox.lifecycle.paused", "sandbox.lifecycle.resumed",
                    "sandbox.lifecycle.killed", "sandbox.lifecycle.checkpointed"
                ],
                "signatureSecret": secret,
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "webhook registration failed: {}", reply.body);
    reply.body["id"].as_str().expect("webhook id").to_owned()
}
