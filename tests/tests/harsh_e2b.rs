//! Sandman against an emulator as slow as E2B: pauses and snapshots that take seconds, with 409
//! for anything that meets the sandbox mid-transition. DynamoDB Local and the emulator.

use std::time::Duration;

use e2b_emulator::{EmulatorConfig, SandboxState as E2bState};
use sandman::domain::{Actor, ProjectKey, SessionState, SnapshotKind};
use sandman::workspace::{OpenPath, PauseOutcome, PauseRequest};
use sandman_local::testkit::TestStack;

async fn slow_e2b() -> TestStack {
    let config = EmulatorConfig {
        pause_duration: Duration::from_millis(1500),
        snapshot_duration: Duration::from_millis(500),
        ..EmulatorConfig::default()
    };
    TestStack::start_with(config, |_| None).await
}

/// Starts a pause straight at E2B (its own timeout, another client) and returns once E2B holds
/// the sandbox mid-transition; the task ends when the pause does.
async fn pausing_elsewhere(stack: &TestStack, key: &ProjectKey) -> (String, tokio::task::JoinHandle<()>) {
    let record = stack.sandman.project(key).await.unwrap();
    let sandbox = record.session.unwrap().sandbox.unwrap().sandbox_id;
    let e2b = stack.sandman.e2b_for(key).await.unwrap();
    let task = tokio::spawn({
        let sandbox = sandbox.clone();
        async move { e2b.pause(&sandbox).await.expect("paused elsewhere") }
    });
    while stack.emulator.sandbox(&sandbox).and_then(|s| s.transition).is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (sandbox, task)
}

#[tokio::test]
async fn a_pause_that_meets_e2b_mid_pause_records_paused() {
    let stack = slow_e2b().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let record = stack.sandman.project(&key).await.unwrap();
    let (sandbox, elsewhere) = pausing_elsewhere(&stack, &key).await;

    let outcome = stack
        .sandman
        .pause(PauseRequest {
            key: key.clone(),
            expected_version: record.version,
            sandbox_id: sandbox.clone(),
            actor: Actor::IdleEnforcer,
            cause: "idle".into(),
            idle_by: None,
            snapshot_first: false,
        })
        .await
        .unwrap();

    assert!(matches!(outcome, PauseOutcome::AlreadyPaused), "{outcome:?}");
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Paused)
    );
    elsewhere.await.unwrap();
    assert_eq!(stack.emulator.sandbox(&sandbox).unwrap().state, E2bState::Paused);
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(opened.path, OpenPath::Resumed);
}

#[tokio::test]
async fn a_snapshot_refused_mid_pause_leaves_no_row_and_no_e2b_snapshot() {
    let stack = slow_e2b().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let record = stack.sandman.project(&key).await.unwrap();
    let (_, elsewhere) = pausing_elsewhere(&stack, &key).await;

    let refused = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "mid-pause".into())
        .await;

    assert!(refused.is_err(), "E2B answers 409 mid-transition");
    assert!(stack.store().all_snapshots(&key).await.unwrap().is_empty());
    assert!(stack.emulator.snapshots().is_empty());
    elsewhere.await.unwrap();
}

#[tokio::test]
async fn a_snapshot_that_takes_seconds_completes_and_the_restore_uses_it() {
    let stack = slow_e2b().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let record = stack.sandman.project(&key).await.unwrap();

    let saved = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "slow".into())
        .await
        .unwrap();
    let restored = stack
        .sandman
        .restore(&key, &saved.snapshot_id, Actor::User)
        .await
        .unwrap();

    assert_eq!(restored.path, OpenPath::Restored);
    assert_eq!(restored.restored_from, Some(saved.snapshot_id));
    let live: Vec<_> = stack
        .emulator
        .sandboxes()
        .into_iter()
        .filter(|s| s.state != E2bState::Killed)
        .collect();
    assert_eq!(live.len(), 1, "the replaced sandbox is gone");
}
