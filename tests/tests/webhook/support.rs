//! A `TestStack` with the webhook router served on 127.0.0.1 and registered with the emulator,
//! so E2B's real signed deliveries reach it; and signed deliveries made by hand.

#![allow(dead_code)]

use std::time::Duration;

use e2b_emulator::{EmulatorConfig, WebhookDelivery};
use sandman::Sandman;
use sandman::domain::{Actor, LifecycleRecord, ProjectKey, Usage};
use sandman::e2b::{E2b, NewWebhook, Webhook};
use sandman::secrets::{Secret, Secrets};
use sandman::store::{Consistency, ProjectRecord};
use sandman_local::testkit::TestStack;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use sandman_local::fixture::WEBHOOK_SECRET;

pub const ALL_EVENTS: [&str; 6] = [
    "sandbox.lifecycle.created",
    "sandbox.lifecycle.updated",
    "sandbox.lifecycle.paused",
    "sandbox.lifecycle.resumed",
    "sandbox.lifecycle.killed",
    "sandbox.lifecycle.checkpointed",
];

pub struct Hooks {
    pub stack: TestStack,
    /// The receiver's URL, as registered with the emulator.
    pub url: String,
    http: reqwest::Client,
}

impl Hooks {
    /// The receiver accepts the stack's webhook secret, and the emulator signs with it.
    pub async fn start() -> Hooks {
        let hooks = Self::accepting(&[WEBHOOK_SECRET]).await;
        hooks.subscribe(WEBHOOK_SECRET).await;
        hooks
    }

    /// A receiver accepting exactly `secrets`; nothing registered with the emulator yet.
    pub async fn accepting(secrets: &[&str]) -> Hooks {
        // Quick redeliveries, so settling after a refused delivery does not take 30 s.
        let emulator = EmulatorConfig {
            webhook_retry_delay: Duration::from_millis(20),
            webhook_max_retries: 1,
            ..EmulatorConfig::default()
        };
        // An admin role, so the policies' tests can mint a team admin's token.
        let stack = TestStack::start_with(emulator, |name| (name == "JWT_ADMIN_ROLE").then(|| "admin".into())).await;
        let receiver = Sandman::new(
            stack.store().clone(),
            (*stack.sandman.config).clone(),
            Secrets {
                e2b_api_key: Some(Secret::new(stack.emulator.api_key())),
                webhook_secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
                ..Secrets::default()
            },
            stack.clock.clone(),
        )
        .expect("the receiver's Sandman assembles");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}/", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, sandman_webhook::router(receiver)).await });
        Hooks {
            stack,
            url,
            http: reqwest::Client::new(),
        }
    }

    pub fn e2b(&self) -> E2b {
        self.stack
            .sandman
            .e2b
            .for_team(self.stack.team().as_str())
            .expect("the stack's E2B account")
    }

    /// Registers the receiver for every lifecycle event, signed with `secret`.
    pub async fn subscribe(&self, secret: &str) -> Webhook {
        let new = NewWebhook {
            name: "sandman-test".into(),
            url: self.url.clone(),
            events: ALL_EVENTS.iter().map(|e| e.to_string()).collect(),
            signature_secret: Secret::new(secret),
            enabled: true,
        };
        self.e2b().register_webhook(&new).await.expect("webhook registered")
    }

    /// A registered project with a running sandbox, its `created` event delivered.
    pub async fn running(&self, project: &str) -> (ProjectKey, String) {
        let key = self.stack.key(project);
        self.stack.register(&self.stack.spec(project)).await;
        let opened = self.stack.sandman.open(&key, Actor::User).await.expect("opened");
        let sandbox = opened
            .record
            .session
            .and_then(|s| s.sandbox)
            .expect("a sandbox")
            .sandbox_id;
        self.settle().await;
        (key, sandbox)
    }

    pub async fn settle(&self) {
        self.stack.emulator.settle_webhooks().await;
    }

    pub async fn record(&self, key: &ProjectKey) -> ProjectRecord {
        self.stack
            .store()
            .get_project(key, Consistency::Strong)
            .await
            .expect("readable")
            .expect("the project exists")
    }

    /// The lifecycle log, newest first.
    pub async fn log(&self, key: &ProjectKey) -> Vec<LifecycleRecord> {
        self.stack
            .store()
            .list_events(key, None, 100)
            .await
            .expect("readable")
            .items
    }

    /// Every delivery attempt of `event_type` so far, with its body parsed.
    pub fn delivered(&self, event_type: &str) -> Vec<(WebhookDelivery, Value)> {
        let type_name = format!("sandbox.lifecycle.{event_type}");
        self.stack
            .emulator
            .deliveries()
            .into_iter()
            .filter(|d| d.event_type == type_name)
            .map(|d| {
                let body = serde_json::from_str(&d.body).expect("the emulator sends JSON");
                (d, body)
            })
            .collect()
    }

    /// Posts `body` as a delivery, with `signature` as the `e2b-signature` header when given.
    pub async fn post(&self, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("e2b-signature-version", "v1")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("e2b-signature", signature);
        }
        let response = request.send().await.expect("the receiver answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The usage a delivered `paused`/`killed` body reports.
pub fn usage_in(body: &Value) -> Usage {
    let execution = &body["event_data"]["execution"];
    let seconds = execution["execution_time"].as_f64().expect("execution_time") / 1000.0;
    Usage {
        run_seconds: seconds,
        vcpu_seconds: execution["vcpu_count"].as_f64().expect("vcpu_count") * seconds,
        memory_mb_seconds: execution["memory_mb"].as_f64().expect("memory_mb") * seconds,
    }
}

pub fn timestamp_in(body: &Value) -> OffsetDateTime {
    let at = OffsetDateTime::parse(body["timestamp"].as_str().expect("timestamp"), &Rfc3339).expect("RFC 3339");
    at.replace_millisecond(at.millisecond()).expect("valid")
}

pub fn assert_usage(actual: Usage, expected: Usage) {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs().max(1.0);
    assert!(
        close(actual.run_seconds, expected.run_seconds)
            && close(actual.vcpu_seconds, expected.vcpu_seconds)
            && close(actual.memory_mb_seconds, expected.memory_mb_seconds),
        "usage {actual:?} != {expected:?}"
    );
}

/// A `sandbox.lifecycle.<kind>` body in E2B's webhook shape.
pub fn event_body(id: &str, kind: &str, at: OffsetDateTime, sandbox: &str, metadata: Value) -> Vec<u8> {
    let mut event = json!({
        "id": id,
        "version": "v2",
        "type": format!("sandbox.lifecycle.{kind}"),
        "timestamp": at.format(&Rfc3339).expect("formats"),
        "event_category": "lifecycle",
        "event_label": kind,
        "sandbox_id": sandbox,
        "sandbox_execution_id": "exec-1",
        "sandbox_template_id": "base",
        "sandbox_build_id": "build-1",
        "sandbox_team_id": "team-e2b",
        "event_data": {"sandbox_metadata": metadata},
    });
    if matches!(kind, "paused" | "killed") {
        event["event_data"]["execution"] =
            json!({"started_at": "2026-01-01T00:00:00Z", "vcpu_count": 2, "memory_mb": 512, "execution_time": 30_000});
    }
    serde_json::to_vec(&event).expect("serializes")
}

pub fn metadata_of(key: &ProjectKey, session_id: &str) -> Value {
    json!(sandman::sandbox_metadata::for_session(key, session_id))
}
