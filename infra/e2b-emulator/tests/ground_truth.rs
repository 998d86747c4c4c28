//! What a judge reads from the emulator: each sandbox's state history, every event with the
//! execution it reports, snapshots deleted and kept, and a call log that says who called, what the
//! handler did and when; and the faults whose effect only that record shows (work done after the
//! caller gave up, a fork's per-fork error).

mod common;

use std::time::Duration;

use common::{Api, start, start_with};
use e2b_emulator::{EmulatorConfig, EventType, Fault, Route, SandboxState};
use serde_json::json;

#[tokio::test]
async fn a_sandbox_remembers_when_it_ran_and_when_it_was_paused() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api
        .create(json!({"templateID": "base", "timeout": 60, "autoPause": true}))
        .await;
    let created = emulator.now();
    emulator.advance_clock(Duration::from_secs(61)).await;
    let paused = emulator.now();
    assert_eq!(
        api.post(&format!("/sandboxes/{id}/connect"), json!({"timeout": 60}))
            .await
            .status,
        201
    );
    let resumed = emulator.now();

    let view = emulator.sandbox(&id).expect("known");
    let states: Vec<SandboxState> = view.history.iter().map(|c| c.state).collect();
    assert_eq!(
        states,
        [SandboxState::Running, SandboxState::Paused, SandboxState::Running]
    );
    // E2B paused it at its deadline, not when the clock was next looked at.
    let paused_at = view.history[1].at;
    assert!(paused_at > created && paused_at <= paused);
    assert!(view.was_in(SandboxState::Running, created, created));
    assert!(
        !view.was_in(
            SandboxState::Running,
            paused_at,
            resumed - time::Duration::milliseconds(1)
        ),
        "paused throughout"
    );
    assert!(
        view.was_in(SandboxState::Running, paused_at, resumed),
        "running again at the end"
    );
    assert_eq!(
        view.state_at(created - time::Duration::seconds(1)),
        None,
        "not created yet"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn each_paused_and_killed_event_reports_its_execution_and_a_kill_after_a_pause_the_same_one() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;
    emulator.advance_clock(Duration::from_secs(30)).await;
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 204);
    assert_eq!(api.delete(&format!("/sandboxes/{id}")).await.status, 204);

    let events = emulator.events();
    let of = |kind| {
        events
            .iter()
            .find(|e| e.event_type == kind && e.sandbox_id == id)
            .expect("emitted")
    };
    let (paused, killed) = (of(EventType::Paused), of(EventType::Killed));
    let execution = paused.execution.expect("a paused event reports its execution");
    assert!(execution.execution_ms >= 30_000, "{execution:?}");
    assert_eq!(killed.execution, Some(execution), "the same execution, reported again");
    assert_eq!(killed.execution_id, paused.execution_id);
    assert!(of(EventType::Created).execution.is_none());
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_call_log_names_the_caller_and_what_the_handler_did() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;
    let mut tagged = api.clone();
    tagged.base = format!("{}/callers/enforce-0", emulator.base_url());
    emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            applied_then_fail_next: 1,
            error_status: 502,
            ..Fault::default()
        },
    );
    assert_eq!(
        tagged.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status,
        502
    );

    let calls = emulator.calls_to(Route::PauseSandbox);
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.caller.as_deref(), Some("enforce-0"));
    assert_eq!(
        call.path,
        format!("/sandboxes/{id}/pause"),
        "the caller's prefix is not part of the path"
    );
    assert_eq!(
        (call.status, call.handler_status),
        (502, Some(204)),
        "done, though answered 502"
    );
    assert!(call.received_at <= call.at);
    assert_eq!(api.state(&id).await, "paused");
    let created = &emulator.calls_to(Route::CreateSandbox)[0];
    assert_eq!(created.caller, None);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_late_call_is_done_after_its_caller_gave_up() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            apply_late_next: 1,
            apply_after: Duration::from_secs(2),
            ..Fault::default()
        },
    );
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("a client");
    let gave_up = impatient
        .post(format!("{}/v2/sandboxes", emulator.base_url()))
        .header("x-api-key", &api.key)
        .json(&json!({"templateID": "base", "timeout": 300}))
        .send()
        .await;
    assert!(gave_up.is_err(), "the caller timed out");
    let gave_up_at = emulator.now();

    // Polled: the late create lands about 2 s after the call came in.
    let mut waited = Duration::ZERO;
    while emulator.sandboxes().is_empty() && waited < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    let created = emulator.sandboxes();
    assert_eq!(created.len(), 1, "created although the caller left");
    assert!(created[0].created_at >= gave_up_at, "after the caller gave up");
    let calls = emulator.calls_to(Route::CreateSandbox);
    assert_eq!(calls.len(), 1, "and recorded");
    assert_eq!(calls[0].handler_status, Some(201));
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_fork_error_is_a_201_whose_result_is_an_error_and_starts_nothing() {
    let emulator = start_with(EmulatorConfig {
        snapshot_duration: Duration::ZERO,
        ..common::config()
    })
    .await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;
    emulator.set_fault(
        Route::ForkSandbox,
        Fault {
            fork_error_next: 1,
            error_status: 503,
            ..Fault::default()
        },
    );
    let forked = api
        .post(&format!("/sandboxes/{id}/fork"), json!({"timeout": 60, "count": 1}))
        .await;
    assert_eq!(forked.status, 201);
    assert_eq!(forked.body[0]["error"]["code"], 503, "{}", forked.body);
    assert!(forked.body[0]["sandbox"].is_null());
    assert_eq!(emulator.sandboxes().len(), 1, "no fork started");
    assert_eq!(api.state(&id).await, "running", "the source runs on");

    let again = api
        .post(&format!("/sandboxes/{id}/fork"), json!({"timeout": 60, "count": 1}))
        .await;
    assert!(again.body[0]["sandbox"]["sandboxID"].is_string(), "{}", again.body);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_deleted_snapshot_stays_in_the_history() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;
    let snapshot = api.post(&format!("/sandboxes/{id}/snapshots"), json!({})).await;
    let snapshot_id = snapshot.body["snapshotID"].as_str().expect("an id").to_owned();
    assert_eq!(api.delete(&format!("/sandboxes/{id}")).await.status, 204);
    assert_eq!(api.delete(&format!("/templates/{snapshot_id}")).await.status, 204);

    assert!(emulator.snapshots().is_empty());
    let history = emulator.snapshot_history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].source_sandbox_id, id);
    assert!(history[0].deleted_at.is_some());
    emulator.shutdown().await;
}
