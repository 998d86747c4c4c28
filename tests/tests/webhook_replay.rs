//! Replays: an event older than the bound is refused; an event without an id is deduplicated by
//! its signed body, never by an unsigned header; a replayed event never counts usage twice.

#[path = "webhook/support.rs"]
mod support;

use std::time::Duration;

use e2b_emulator::{SandboxState, WebhookFaults};
use sandman::domain::{Actor, SessionState};
use sandman::webhook::sign;
use sandman::workspace::OpenPath;
use serde_json::Value;
use support::{Hooks, WEBHOOK_SECRET, event_body, metadata_of};

#[tokio::test]
async fn an_event_without_an_id_counts_once_however_often_it_comes() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let session = hooks.record(&key).await.session.unwrap().session_id;
    let body = event_body(
        "x",
        "paused",
        hooks.stack.emulator.now(),
        &sandbox,
        metadata_of(&key, &session),
    );
    let mut event: Value = serde_json::from_slice(&body).unwrap();
    event.as_object_mut().unwrap().remove("id");
    let body = serde_json::to_vec(&event).unwrap();
    let signature = sign(WEBHOOK_SECRET, &body);

    let (status, first) = hooks.post(&body, Some(&signature)).await;
    assert_eq!(status, 200, "{first}");
    let usage = hooks.record(&key).await.session.unwrap().usage;
    assert!(usage.run_seconds > 0.0);
    for _ in 0..2 {
        let (status, again) = hooks.post(&body, Some(&signature)).await;
        assert_eq!(status, 200, "{again}");
        assert!(
            matches!(again["outcome"].as_str(), Some("duplicate" | "ignored")),
            "{again}"
        );
    }
    assert_eq!(
        hooks.record(&key).await.session.unwrap().usage,
        usage,
        "usage counted once"
    );
}

#[tokio::test]
async fn an_event_older_than_the_bound_is_refused_and_changes_nothing() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let session = hooks.record(&key).await.session.unwrap().session_id;
    let old = hooks.stack.emulator.now() - Duration::from_secs(25 * 3600);
    let before = hooks.stack.table.contents().await;
    for at in [old, hooks.stack.emulator.now() + Duration::from_secs(3600)] {
        let body = event_body("evt-old", "paused", at, &sandbox, metadata_of(&key, &session));
        let (status, answer) = hooks.post(&body, Some(&sign(WEBHOOK_SECRET, &body))).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "stale_event");
    }
    assert_eq!(hooks.stack.table.contents().await, before);
}

#[tokio::test]
async fn a_body_past_tens_of_kilobytes_is_refused_unread() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let before = hooks.stack.table.contents().await;
    let mut metadata = metadata_of(&key, "s");
    metadata["padding"] = Value::String("x".repeat(sandman_webhook::BODY_LIMIT));
    let body = event_body("evt-big", "paused", hooks.stack.emulator.now(), &sandbox, metadata);
    let (status, _) = hooks.post(&body, Some(&sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!(status, 413);
    assert_eq!(hooks.stack.table.contents().await, before);
}

/// E2B paused the sandbox on its own and both its webhooks were lost; an open resumed it (E2B's
/// connect). The `paused`, delivered late and timed by an E2B clock 20 s ahead of Sandman's, must
/// not mark the running sandbox PAUSED: the table would then count one live sandbox fewer than E2B
/// runs (the short soak's `live-quota`, 21 of 20) and answer a pause `already-paused`.
#[tokio::test]
async fn a_late_paused_of_a_pause_an_open_undid_is_stale() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let session = hooks.record(&key).await.session.unwrap().session_id;
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        drop_next: 2,
        ..WebhookFaults::default()
    });
    hooks.e2b().pause(&sandbox).await.expect("E2B pauses it");
    let paused_at = hooks.stack.clock.now();
    let opened = hooks
        .stack
        .sandman
        .open(&key, Actor::User)
        .await
        .expect("the open resumes it");
    assert_eq!(opened.path, OpenPath::Resumed);
    assert_eq!(
        hooks.stack.emulator.sandbox(&sandbox).unwrap().state,
        SandboxState::Running
    );

    let late = event_body(
        "evt-late-paused",
        "paused",
        paused_at + Duration::from_secs(20),
        &sandbox,
        metadata_of(&key, &session),
    );
    let (status, answer) = hooks.post(&late, Some(&sign(WEBHOOK_SECRET, &late))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        hooks.record(&key).await.state(),
        Some(SessionState::Running),
        "E2B runs it: {answer}"
    );
}
