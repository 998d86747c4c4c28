//! The webhook router behind a Lambda function URL: real function-URL request payloads (HTTP API
//! v2 shape), parsed by lambda_http as the Lambda runtime would, then handled by the router.
//! Fixtures: `tests/fixtures/webhook/` (signed with `fixture-secret`; see its README).

use std::time::Duration;

use axum::body::to_bytes;
use sandman::Sandman;
use sandman::clock::Clock;
use sandman::config::Config;
use sandman::domain::{
    Actor, IdlePolicy, ProjectId, ProjectKey, ProjectSpec, RetentionPolicy, SandboxRef, SessionEvent, SessionState,
    TeamId,
};
use sandman::secrets::{Secret, Secrets};
use sandman::store::{Consistency, SessionChanges, SessionWrite, Store};
use sandman_local::testkit::TestTable;
use serde_json::Value;
use time::macros::datetime;
use tower::ServiceExt;

const TEXT: &str = include_str!("../fixtures/webhook/function_url_paused.json");
const BASE64: &str = include_str!("../fixtures/webhook/function_url_paused_base64.json");

/// A Sandman over a fresh table, accepting the fixtures' secret, with the fixture's project
/// running sandbox `sbx-fixture` as session `s-fixture` since before the event.
async fn sandman_with_fixture_project() -> (Sandman, ProjectKey) {
    let table = TestTable::create().await;
    let config =
        Config::from_lookup(|name| (name == "SANDMAN_TABLE").then(|| table.name.clone())).expect("valid config");
    let secrets = Secrets {
        webhook_secrets: vec![Secret::new("fixture-secret")],
        ..Secrets::default()
    };
    let store = Store::new(table.client.clone(), table.name.clone());
    let started = datetime!(2026-11-01 12:00 UTC);
    let sandman = Sandman::new(
        store,
        config,
        secrets,
        Clock::manual(started + Duration::from_secs(601)),
    )
    .expect("assembles");
    let key = ProjectKey::new(
        TeamId::parse("team-a").unwrap(),
        ProjectId::parse("fixture-project").unwrap(),
    );
    let spec = ProjectSpec {
        inactivity: Default::default(),
        key: key.clone(),
        template_id: "base".into(),
        idle: IdlePolicy::default(),
        retention: RetentionPolicy::default(),
        sandbox_timeout: Duration::from_secs(3600),
        snapshot_before_kill: false,
        public_traffic: false,
    };
    let record = sandman.store.put_project(&spec, started).await.unwrap();
    let start = SessionWrite::new(&record, Actor::User, "open", started)
        .event(SessionEvent::Start)
        .changes(SessionChanges {
            session_id: Some("s-fixture".into()),
            ..SessionChanges::default()
        });
    let written = sandman.store.write_session(&start).await.unwrap();
    let running = SessionWrite::following(&key, written, Actor::User, "created", started)
        .event(SessionEvent::Running)
        .changes(SessionChanges {
            sandbox: Some(SandboxRef {
                sandbox_id: "sbx-fixture".into(),
                domain: None,
                access_token: None,
            }),
            last_active_at: Some(started),
            ..SessionChanges::default()
        });
    sandman.store.write_session(&running).await.unwrap();
    (sandman, key)
}

async fn invoke(sandman: &Sandman, fixture: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(fixture).expect("a function-URL request lambda_http understands");
    assert_eq!(request.method(), "POST");
    let response = sandman_webhook::router(sandman.clone())
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status().as_u16();
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("a body");
    (status, serde_json::from_slice(&body).expect("JSON"))
}

#[tokio::test]
async fn a_function_url_delivery_is_verified_and_applied_once() {
    let (sandman, key) = sandman_with_fixture_project().await;

    let (status, answer) = invoke(&sandman, TEXT).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({"outcome": "applied", "state": "PAUSED", "transitioned": true})
    );
    let record = sandman
        .store
        .get_project(&key, Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((record.state(), record.version), (Some(SessionState::Paused), 3));
    let session = record.session.unwrap();
    assert_eq!(session.state_since, datetime!(2026-11-01 12:10:00.123 UTC));
    assert_eq!(
        (
            session.usage.run_seconds,
            session.usage.vcpu_seconds,
            session.usage.memory_mb_seconds
        ),
        (600.0, 1200.0, 307_200.0)
    );

    // The same bytes, base64-encoded by the function URL: same signature, same event, no effect.
    let (status, answer) = invoke(&sandman, BASE64).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        matches!(answer["outcome"].as_str(), Some("duplicate" | "ignored")),
        "{answer}"
    );
    let again = sandman
        .store
        .get_project(&key, Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.version, again.session.unwrap().usage.run_seconds), (3, 600.0));
}

#[tokio::test]
async fn a_function_url_delivery_with_another_secret_is_refused() {
    let (sandman, key) = sandman_with_fixture_project().await;
    let tampered = TEXT.replace("fixture-project", "fixture-projecT");
    let (status, answer) = invoke(&sandman, &tampered).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    let record = sandman
        .store
        .get_project(&key, Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((record.state(), record.version), (Some(SessionState::Running), 2));
}
