//! The API router over a `TestStack` (DynamoDB Local + the E2B emulator), driven in-process with
//! tower's `oneshot`, and tokens minted for any team.
#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use e2b_emulator::EmulatorConfig;
use http::{HeaderMap, Method, Request, StatusCode, header};
use sandman::Sandman;
use sandman::auth::{Verifier, mint_dev_token};
use sandman::domain::TeamId;
use sandman::secrets::Secret;
use sandman::store::{Capacity, Store};
use sandman_local::fixture::{JWT_SECRET, TestStack};
use serde_json::Value;
use tower::ServiceExt;

pub struct ApiStack {
    pub stack: TestStack,
    pub router: Router,
    /// A token for the stack's team (the emulator's).
    pub token: String,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("<no error code>")
    }

    pub fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("<no error message>")
    }
}

impl ApiStack {
    pub async fn start() -> ApiStack {
        Self::start_with(|_| None).await
    }

    /// `env` overrides configuration variables, e.g. `JWT_AUDIENCE`.
    pub async fn start_with(env: impl Fn(&str) -> Option<String>) -> ApiStack {
        Self::start_with_emulator(EmulatorConfig::default(), env).await
    }

    /// `start_with` over an emulator configured as `emulator`.
    pub async fn start_with_emulator(emulator: EmulatorConfig, env: impl Fn(&str) -> Option<String>) -> ApiStack {
        let stack = TestStack::start_with(emulator, env).await;
        let router = router_for(stack.sandman.clone());
        let team = stack.team();
        let mut api = ApiStack {
            stack,
            router,
            token: String::new(),
        };
        api.token = api.token_for(team.as_str());
        api
    }

    pub fn token_for(&self, team: &str) -> String {
        let team = TeamId::parse(team).expect("a valid team id");
        mint_dev_token(
            &self.stack.sandman.config.auth,
            &Secret::new(JWT_SECRET),
            &team,
            "tester",
            Duration::from_secs(600),
        )
        .expect("a token")
    }

    /// A token for `team` carrying the deployment's admin role (`JWT_ADMIN_ROLE`, when the stack
    /// sets one).
    pub fn admin_token_for(&self, team: &str) -> String {
        let team = TeamId::parse(team).expect("a valid team id");
        sandman::auth::mint_admin_token(
            &self.stack.sandman.config.auth,
            &Secret::new(JWT_SECRET),
            &team,
            "admin",
            Duration::from_secs(600),
        )
        .expect("a token")
    }

    /// The same table, E2B and clock through a second `Sandman`: another Lambda instance, with its
    /// own per-instance memory.
    /// Its store is returned to read the capacity it used.
    pub fn another_instance(&self) -> (Router, Store) {
        let sandman = &self.stack.sandman;
        let store = Store::new(self.stack.table.client.clone(), self.stack.table.name.clone());
        let other = Sandman::new(
            store.clone(),
            (*sandman.config).clone(),
            (*sandman.secrets).clone(),
            sandman.clock.clone(),
        )
        .expect("a second instance");
        (router_for(other), store)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        send(&self.router, request(method, path, Some(&self.token), body)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str) -> Reply {
        self.call(Method::POST, path, None).await
    }

    /// Registers `project` with the emulator's `base` template and default policies.
    pub async fn register(&self, project: &str) -> Reply {
        let reply = self
            .call(
                Method::PUT,
                &format!("/v1/projects/{project}"),
                Some(serde_json::json!({"templateId": "base"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply
    }

    pub async fn open(&self, project: &str) -> Reply {
        self.post(&format!("/v1/projects/{project}/sandbox")).await
    }

    pub fn capacity(&self) -> Capacity {
        self.stack.store().capacity().total()
    }

    pub async fn advance(&self, by: Duration) {
        self.stack.advance(by).await;
    }
}

pub fn router_for(sandman: Sandman) -> Router {
    let verifier = Verifier::new(&sandman.config.auth, &sandman.secrets).expect("a verifier");
    sandman_api::router(sandman, verifier)
}

pub fn request(method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).expect("a request")
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    Reply { status, headers, json }
}

/// Every error answer has the documented shape.
pub fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.code(), code, "{reply:?}");
    assert!(!reply.message().is_empty(), "{reply:?}");
}
