//! Outbound webhooks end to end on the local stack: endpoints registered through the API, a
//! lifecycle change read from DynamoDB Local's stream, fanned out, queued, delivered signed to a
//! receiver on 127.0.0.1, and the endpoint's delivery log read back through the API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use http::{HeaderMap, StatusCode};
use sandman::clock::Clock;
use sandman::domain::{ProjectId, ProjectKey, SessionState, TeamId};
use sandman::outbound::{MAX_ATTEMPTS, SigningSecret, verify};
use sandman::store::Consistency;
use sandman_local::dev::{DEV_TEAM, DevOptions, dev_token, start};
use sandman_local::stack::LocalStack;
use sandman_local::testkit::TestTable;
use serde_json::{Value, json};

/// What a receiver got: the three Standard Webhooks headers and the body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a delivery's body is JSON")
    }
}

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answer: StatusCode,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    receiver.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    receiver.answer
}

/// A receiver on a free port answering `answer` to every delivery.
async fn receiver(answer: StatusCode) -> (String, Arc<Mutex<Vec<Received>>>) {
    let state = Receiver {
        got: Arc::default(),
        answer,
    };
    let got = state.got.clone();
    let app = Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

struct Client {
    http: reqwest::Client,
    api: String,
    token: String,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn stack() -> (LocalStack, Client) {
    let table = TestTable::create().await;
    let stack = start(DevOptions::ephemeral(table.name.clone(), false, Clock::System))
        .await
        .expect("the local stack starts");
    let client = Client {
        http: reqwest::Client::new(),
        api: format!("{}/v1", stack.api_url),
        token: dev_token(&stack).unwrap(),
    };
    (stack, client)
}

async fn register(client: &Client, url: &str, events: &[&str]) -> (String, SigningSecret) {
    let (status, body) = client
        .call(
            reqwest::Method::POST,
            "/webhooks/endpoints",
            Some(json!({ "url": url, "events": events })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = SigningSecret::parse(body["secret"].as_str().unwrap()).expect("a whsec_ secret");
    (body["endpointId"].as_str().unwrap().to_owned(), secret)
}

async fn open_project(client: &Client, project: &str) {
    let (status, body) = client
        .call(
            reqwest::Method::PUT,
            &format!("/projects/{project}"),
            Some(json!({ "templateId": "base" })),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = client
        .call(reqwest::Method::POST, &format!("/projects/{project}/sandbox"), None)
        .await;
    assert!(
        status.is_success(),
        "the open answers whatever the endpoints do: {body}"
    );
}

/// Waits up to 20 s for `check` to hold.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(found) = check() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for {what}");
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn lifecycle_changes_reach_the_endpoint_signed_and_the_delivery_log_shows_them() {
    let (stack, client) = stack().await;
    let (url, got) = receiver(StatusCode::NO_CONTENT).await;
    let (endpoint, secret) = register(&client, &url, &["sandbox.running", "sandbox.paused"]).await;

    open_project(&client, "hooked").await;
    let running = eventually("a sandbox.running delivery", || {
        got.lock()
            .unwrap()
            .iter()
            .find(|r| r.json()["type"] == "sandbox.running")
            .cloned()
    })
    .await;
    verify(
        &secret,
        &running.id,
        &running.timestamp,
        &running.signature,
        running.body.as_bytes(),
        now(),
        300,
    )
    .expect("Sandman's signature verifies");
    let message = running.json();
    assert_eq!(message["data"]["projectId"], "hooked");
    assert_eq!(message["data"]["to"], "RUNNING");
    assert_eq!(message["data"]["actor"], "user");
    assert!(
        message["data"]["cause"].as_str().is_some_and(|c| !c.is_empty()),
        "{message}"
    );
    assert!(running.id.starts_with("msg_"), "{}", running.id);
    let other = SigningSecret::parse(&sandman::outbound::generate_secret().expose()).unwrap();
    assert!(
        verify(
            &other,
            &running.id,
            &running.timestamp,
            &running.signature,
            running.body.as_bytes(),
            now(),
            300
        )
        .is_err(),
        "another secret does not verify it"
    );

    let (status, body) = client
        .call(reqwest::Method::POST, "/projects/hooked/sandbox/pause", None)
        .await;
    assert!(status.is_success(), "{body}");
    let paused = eventually("a sandbox.paused delivery", || {
        got.lock()
            .unwrap()
            .iter()
            .find(|r| r.json()["type"] == "sandbox.paused")
            .cloned()
    })
    .await;
    verify(
        &secret,
        &paused.id,
        &paused.timestamp,
        &paused.signature,
        paused.body.as_bytes(),
        now(),
        300,
    )
    .unwrap();
    assert!(
        got.lock()
            .unwrap()
            .iter()
            .all(|r| matches!(r.json()["type"].as_str(), Some("sandbox.running" | "sandbox.paused"))),
        "only the events the endpoint asked for (no STARTING, no PAUSING)"
    );

    let (status, log) = client
        .call(
            reqwest::Method::GET,
            &format!("/webhooks/endpoints/{endpoint}/deliveries"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    assert_eq!(items[0]["messageId"], paused.id.as_str(), "newest first");
    assert_eq!(items[1]["messageId"], running.id.as_str());
    for item in items {
        assert_eq!(item["status"], "delivered");
        assert_eq!(item["attempts"], 1);
        assert_eq!(item["lastStatusCode"], 204);
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_then_dead_lettered_and_the_lifecycle_is_unaffected() {
    let (stack, client) = stack().await;
    let (url, got) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let (endpoint, secret) = register(&client, &url, &["sandbox.running"]).await;

    open_project(&client, "failing").await;
    let key = ProjectKey::new(TeamId::parse(DEV_TEAM).unwrap(), ProjectId::parse("failing").unwrap());
    let record = stack
        .store()
        .get_project(&key, Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state(), Some(SessionState::Running), "the open was recorded");

    let dead = eventually("the delivery in the dead-letter queue", || {
        let dead = stack.outbound.dead_letters();
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].endpoint_id, endpoint);
    let attempts = got.lock().unwrap().clone();
    assert_eq!(
        attempts.len() as u32,
        MAX_ATTEMPTS,
        "one POST per attempt: {attempts:?}"
    );
    assert!(
        attempts.iter().all(|a| a.id == attempts[0].id),
        "the same webhook-id on every retry"
    );
    for attempt in &attempts {
        verify(
            &secret,
            &attempt.id,
            &attempt.timestamp,
            &attempt.signature,
            attempt.body.as_bytes(),
            now(),
            300,
        )
        .expect("every retry is signed");
    }

    let (_, log) = client
        .call(
            reqwest::Method::GET,
            &format!("/webhooks/endpoints/{endpoint}/deliveries"),
            None,
        )
        .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(items[0]["status"], "dead-lettered");
    assert_eq!(items[0]["attempts"], MAX_ATTEMPTS);
    assert_eq!(items[0]["lastStatusCode"], 500);

    // The lifecycle goes on while the endpoint fails: a pause answers and is recorded.
    let (status, body) = client
        .call(reqwest::Method::POST, "/projects/failing/sandbox/pause", None)
        .await;
    assert!(status.is_success(), "{body}");
    let record = stack
        .store()
        .get_project(&key, Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(record.state(), Some(SessionState::Paused | SessionState::Pausing)),
        "{:?}",
        record.state()
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn endpoints_are_https_known_events_per_team_and_bounded() {
    let (stack, client) = stack().await;
    let post = |body: Value| client.call(reqwest::Method::POST, "/webhooks/endpoints", Some(body));
    for (body, field) in [
        (
            json!({ "url": "http://example.com/hook", "events": ["sandbox.paused"] }),
            "url",
        ),
        (
            json!({ "url": "https://10.0.0.7/hook", "events": ["sandbox.paused"] }),
            "url",
        ),
        (
            json!({ "url": "ftp://example.com", "events": ["sandbox.paused"] }),
            "url",
        ),
        (json!({ "url": "https://example.com/hook", "events": [] }), "events"),
        (
            json!({ "url": "https://example.com/hook", "events": ["sandbox.exploded"] }),
            "events",
        ),
    ] {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }

    let (status, created) =
        post(json!({ "url": "https://example.com/a", "events": ["sandbox.killed"], "description": "ops" })).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpointId"].as_str().unwrap().to_owned();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let (status, listed) = client.call(reqwest::Method::GET, "/webhooks/endpoints", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(
        listed["items"][0].get("secret").is_none(),
        "the secret is shown once: {listed}"
    );
    let (status, one) = client
        .call(reqwest::Method::GET, &format!("/webhooks/endpoints/{id}"), None)
        .await;
    assert_eq!((status, one["description"].clone()), (StatusCode::OK, json!("ops")));

    // Another team sees none of it, not even its admins.
    let other_token = sandman::auth::mint_admin_token(
        &stack.sandman.config.auth,
        stack.sandman.secrets.jwt_hs256_secret.as_ref().unwrap(),
        &TeamId::parse("another-team").unwrap(),
        "someone",
        Duration::from_secs(600),
    )
    .unwrap();
    let other = Client {
        token: other_token,
        ..Client {
            http: client.http.clone(),
            api: client.api.clone(),
            token: String::new(),
        }
    };
    let (status, _) = other
        .call(reqwest::Method::GET, &format!("/webhooks/endpoints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = other
        .call(reqwest::Method::DELETE, &format!("/webhooks/endpoints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = other.call(reqwest::Method::GET, "/webhooks/endpoints", None).await;
    assert_eq!(listed["items"], json!([]));

    // The per-team limit, and a deletion gives a place back.
    let limit = stack.sandman.config.outbound.max_endpoints_per_team;
    for n in 1..limit {
        let (status, body) =
            post(json!({ "url": format!("https://example.com/{n}"), "events": ["sandbox.paused"] })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = post(json!({ "url": "https://example.com/over", "events": ["sandbox.paused"] })).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (status, _) = client
        .call(reqwest::Method::DELETE, &format!("/webhooks/endpoints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = client
        .call(reqwest::Method::DELETE, &format!("/webhooks/endpoints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = post(json!({ "url": "https://example.com/again", "events": ["sandbox.paused"] })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = client
        .call(reqwest::Method::GET, "/webhooks/endpoints/not-an-id", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    stack.shutdown().await;
}
