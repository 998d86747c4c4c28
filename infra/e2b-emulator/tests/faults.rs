//! Injected API faults and the call log.

mod common;

use std::time::{Duration, Instant};

use common::{Api, start};
use e2b_emulator::{Fault, Route};
use serde_json::json;

#[tokio::test]
async fn rate_limit_burst_answers_429_with_retry_after_then_recovers() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            rate_limit_burst: 2,
            ..Fault::default()
        },
    );

    for _ in 0..2 {
        let reply = api.post("/v2/sandboxes", json!({"templateID": "base"})).await;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.body["code"], 429);
        assert!(reply.headers.get("retry-after").is_some());
    }
    assert_eq!(
        api.post("/v2/sandboxes", json!({"templateID": "base"})).await.status,
        201
    );
    assert!(emulator.sandboxes().len() == 1, "rate-limited calls created nothing");
    emulator.shutdown().await;
}

#[tokio::test]
async fn fail_next_fails_only_the_faulted_route() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;
    emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            fail_next: 1,
            error_status: 503,
            ..Fault::default()
        },
    );

    let failed = api.post(&format!("/sandboxes/{id}/pause"), json!({})).await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.body["code"], 503);
    assert_eq!(api.state(&id).await, "running", "a faulted call changes nothing");
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 204);

    emulator.set_fault(
        Route::GetSandbox,
        Fault {
            error_rate: 1.0,
            error_status: 502,
            ..Fault::default()
        },
    );
    assert_eq!(api.get(&format!("/sandboxes/{id}")).await.status, 502);
    emulator.clear_faults();
    assert_eq!(api.get(&format!("/sandboxes/{id}")).await.status, 200);
    emulator.shutdown().await;
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    emulator.set_fault(
        Route::ListSandboxes,
        Fault {
            latency: Duration::from_millis(200),
            ..Fault::default()
        },
    );
    let started = Instant::now();
    assert_eq!(api.get("/v2/sandboxes").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    emulator.shutdown().await;
}

#[tokio::test]
async fn every_call_is_recorded_with_route_body_status_and_team() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 42})).await;
    api.post(&format!("/sandboxes/{id}/timeout"), json!({"timeout": 7}))
        .await;
    Api::with_key(&emulator, "nope").get("/v2/sandboxes?limit=5").await;

    let calls = emulator.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].route, Route::CreateSandbox);
    assert_eq!(calls[0].body.as_ref().and_then(|b| b.get("timeout")), Some(&json!(42)));
    assert_eq!(calls[0].status, 201);
    assert_eq!(calls[0].team_id.as_deref(), Some("team-local"));
    assert_eq!(calls[1].route, Route::SetTimeout);
    assert_eq!(calls[2].status, 401);
    assert_eq!(calls[2].team_id, None);
    assert_eq!(calls[2].query.as_deref(), Some("limit=5"));
    assert_eq!(emulator.calls_to(Route::SetTimeout).len(), 1);
    emulator.clear_calls();
    assert!(emulator.calls().is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn applied_then_fail_changes_the_world_and_still_answers_the_error() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            applied_then_fail_next: 1,
            error_status: 502,
            ..Fault::default()
        },
    );
    let failed = api.post("/v2/sandboxes", json!({"templateID": "base"})).await;
    assert_eq!(failed.status, 502);
    assert_eq!(emulator.sandboxes().len(), 1, "the create took effect before the 502");

    let id = emulator.sandboxes()[0].sandbox_id.clone();
    emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            applied_then_hang_next: 1,
            hang_for: Duration::from_millis(200),
            ..Fault::default()
        },
    );
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 204);
    assert_eq!(api.state(&id).await, "paused");
    emulator.shutdown().await;
}
