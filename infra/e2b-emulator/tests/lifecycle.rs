//! Sandbox lifecycle: timeouts, auto-pause, retention, connect, and E2B's 404/409 rules.

mod common;

use std::time::Duration;

use common::{Api, start, start_with};
use e2b_emulator::{EmulatorConfig, SandboxState};
use serde_json::json;
use time::OffsetDateTime;

fn parse_time(value: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value.as_str().expect("timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339")
}

#[tokio::test]
async fn running_sandbox_is_killed_when_its_timeout_passes() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 60})).await;

    emulator.advance_clock(Duration::from_secs(59)).await;
    assert_eq!(api.state(&id).await, "running");

    emulator.advance_clock(Duration::from_secs(2)).await;
    assert_eq!(api.get(&format!("/sandboxes/{id}")).await.status, 404);
    let view = emulator.sandbox(&id).expect("killed sandboxes stay visible to tests");
    assert_eq!(view.state, SandboxState::Killed);
    assert_eq!(view.kill_reason.as_deref(), Some("timeout"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn auto_pause_sandbox_pauses_when_its_timeout_passes() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let by_flag = api
        .create(json!({"templateID": "base", "timeout": 30, "autoPause": true}))
        .await;
    let by_lifecycle = api
        .create(json!({"templateID": "base", "timeout": 30, "lifecycle": {"onTimeout": "pause"}}))
        .await;

    let detail = api.get(&format!("/sandboxes/{by_flag}")).await.body;
    assert_eq!(detail["lifecycle"]["onTimeout"], "pause");

    emulator.advance_clock(Duration::from_secs(31)).await;
    assert_eq!(api.state(&by_flag).await, "paused");
    assert_eq!(api.state(&by_lifecycle).await, "paused");
    emulator.shutdown().await;
}

#[tokio::test]
async fn paused_sandbox_is_deleted_after_retention() {
    let config = EmulatorConfig {
        paused_retention: Some(Duration::from_secs(3600)),
        ..common::config()
    };
    let emulator = start_with(config).await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 204);

    emulator.advance_clock(Duration::from_secs(3599)).await;
    assert_eq!(api.state(&id).await, "paused");
    emulator.advance_clock(Duration::from_secs(2)).await;
    let connect = api
        .post(&format!("/sandboxes/{id}/connect"), json!({"timeout": 60}))
        .await;
    assert_eq!(connect.status, 404);
    assert_eq!(emulator.sandbox(&id).map(|s| s.state), Some(SandboxState::Killed));
    emulator.shutdown().await;
}

#[tokio::test]
async fn one_clock_jump_times_out_auto_pauses_and_expires_retention() {
    let config = EmulatorConfig {
        paused_retention: Some(Duration::from_secs(600)),
        ..common::config()
    };
    let emulator = start_with(config).await;
    let api = Api::new(&emulator);
    let id = api
        .create(json!({"templateID": "base", "timeout": 60, "autoPause": true}))
        .await;

    emulator.advance_clock(Duration::from_secs(3600)).await;
    let view = emulator.sandbox(&id).expect("view");
    assert_eq!(view.state, SandboxState::Killed);
    assert!(view.paused_at.is_some(), "it was paused before retention removed it");
    emulator.shutdown().await;
}

#[tokio::test]
async fn pause_answers_409_when_already_paused_and_404_when_unknown_or_killed() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;

    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 204);
    let again = api.post(&format!("/sandboxes/{id}/pause"), json!({})).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["code"], 409);
    assert!(again.body["message"].is_string());

    assert_eq!(
        api.post("/sandboxes/doesnotexist0000000/pause", json!({})).await.status,
        404
    );
    assert_eq!(api.delete(&format!("/sandboxes/{id}")).await.status, 204);
    for reply in [
        api.post(&format!("/sandboxes/{id}/pause"), json!({})).await,
        api.get(&format!("/sandboxes/{id}")).await,
        api.delete(&format!("/sandboxes/{id}")).await,
        api.post(&format!("/sandboxes/{id}/connect"), json!({"timeout": 10}))
            .await,
        api.post(&format!("/sandboxes/{id}/timeout"), json!({"timeout": 10}))
            .await,
        api.post(&format!("/sandboxes/{id}/snapshots"), json!({})).await,
    ] {
        assert_eq!(reply.status, 404, "killed sandbox answered {}", reply.body);
        assert_eq!(reply.body["code"], 404);
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn pause_mid_transition_answers_409() {
    let config = EmulatorConfig {
        pause_duration: Duration::from_secs(2),
        ..common::config()
    };
    let emulator = start_with(config).await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;

    let first = tokio::spawn({
        let (api, id) = (api.clone(), id.clone());
        async move { api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status }
    });
    while emulator.sandbox(&id).and_then(|s| s.transition).is_none() {
        tokio::task::yield_now().await;
    }
    assert_eq!(api.state(&id).await, "paused", "a pausing sandbox reads as paused");
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 409);
    assert_eq!(first.await.expect("join"), 204);
    emulator.shutdown().await;
}

#[tokio::test]
async fn connect_answers_200_when_running_and_201_when_resuming() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 600})).await;
    let end_before = parse_time(&api.get(&format!("/sandboxes/{id}")).await.body["endAt"]);

    let running = api
        .post(&format!("/v2/sandboxes/{id}/connect"), json!({"timeout": 60}))
        .await;
    assert_eq!(running.status, 200);
    assert_eq!(running.body["sandboxID"], id.as_str());
    let end_after = parse_time(&api.get(&format!("/sandboxes/{id}")).await.body["endAt"]);
    assert_eq!(end_after, end_before, "connect never shortens a running sandbox's TTL");

    let execution_before = emulator.sandbox(&id).expect("view").execution_id;
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 204);
    let resumed = api
        .post(&format!("/sandboxes/{id}/connect"), json!({"timeout": 120}))
        .await;
    assert_eq!(resumed.status, 201);
    assert_eq!(resumed.body["sandboxID"], id.as_str());
    let detail = api.get(&format!("/sandboxes/{id}")).await.body;
    assert_eq!(detail["state"], "running");
    let ttl = parse_time(&detail["endAt"]) - parse_time(&detail["startedAt"]);
    assert_eq!(
        ttl,
        time::Duration::seconds(120),
        "resume sets the TTL from the timeout given"
    );
    assert_ne!(emulator.sandbox(&id).expect("view").execution_id, execution_before);
    emulator.shutdown().await;
}

#[tokio::test]
async fn connect_without_timeout_resumes_for_five_minutes_on_v2_and_is_refused_on_v1() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 60})).await;
    api.post(&format!("/sandboxes/{id}/pause"), json!({})).await;

    assert_eq!(
        api.post(&format!("/sandboxes/{id}/connect"), json!({})).await.status,
        400
    );
    assert_eq!(
        api.post(&format!("/v2/sandboxes/{id}/connect"), json!({})).await.status,
        201
    );
    let detail = api.get(&format!("/sandboxes/{id}")).await.body;
    let ttl = parse_time(&detail["endAt"]) - parse_time(&detail["startedAt"]);
    assert_eq!(ttl, time::Duration::seconds(300));
    emulator.shutdown().await;
}

#[tokio::test]
async fn set_timeout_overwrites_and_refresh_only_extends() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 600})).await;

    assert_eq!(
        api.post(&format!("/sandboxes/{id}/timeout"), json!({"timeout": 10}))
            .await
            .status,
        204
    );
    assert_eq!(
        api.post(&format!("/sandboxes/{id}/refreshes"), json!({"duration": 5}))
            .await
            .status,
        204
    );
    emulator.advance_clock(Duration::from_secs(11)).await;
    assert_eq!(
        api.get(&format!("/sandboxes/{id}")).await.status,
        404,
        "the shortened TTL applied"
    );

    let other = api.create(json!({"templateID": "base", "timeout": 10})).await;
    assert_eq!(
        api.post(&format!("/sandboxes/{other}/refreshes"), json!({"duration": 100}))
            .await
            .status,
        204
    );
    emulator.advance_clock(Duration::from_secs(50)).await;
    assert_eq!(api.state(&other).await, "running", "refresh extended the TTL");
    assert_eq!(
        api.post(&format!("/sandboxes/{other}/refreshes"), json!({"duration": 4000}))
            .await
            .status,
        400
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn legacy_resume_resumes_paused_and_refuses_running() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 60})).await;
    assert_eq!(
        api.post(&format!("/sandboxes/{id}/resume"), json!({"timeout": 60}))
            .await
            .status,
        409
    );
    api.post(&format!("/sandboxes/{id}/pause"), json!({})).await;
    assert_eq!(
        api.post(&format!("/sandboxes/{id}/resume"), json!({"timeout": 60}))
            .await
            .status,
        201
    );
    assert_eq!(api.state(&id).await, "running");
    emulator.shutdown().await;
}

#[tokio::test]
async fn create_validates_its_body() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    assert_eq!(api.post("/v2/sandboxes", json!({"timeout": 60})).await.status, 400);
    assert_eq!(
        api.post("/sandboxes", json!({"templateID": "base", "timeout": -1}))
            .await
            .status,
        400
    );
    assert_eq!(
        api.post("/sandboxes", json!({"templateID": "base", "timeout": 999999}))
            .await
            .status,
        400
    );
    assert_eq!(
        api.post("/sandboxes", json!({"templateID": "base", "metadata": {"k": 1}}))
            .await
            .status,
        400
    );
    let unknown_snapshot = api
        .post("/v2/sandboxes", json!({"templateID": "abcdefghij0123456789:default"}))
        .await;
    assert_eq!(unknown_snapshot.status, 404);
    let created = api.post("/sandboxes", json!({"templateID": "my-template"})).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["templateID"], "my-template");
    emulator.shutdown().await;
}

#[tokio::test]
async fn real_time_expiry_happens_without_advancing_the_clock() {
    let config = EmulatorConfig {
        sweep_interval: Duration::from_millis(10),
        ..common::config()
    };
    let emulator = start_with(config).await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 1})).await;
    while emulator.sandbox(&id).map(|s| s.state) != Some(SandboxState::Killed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        emulator.sandbox(&id).and_then(|s| s.kill_reason).as_deref(),
        Some("timeout")
    );
    emulator.shutdown().await;
}
