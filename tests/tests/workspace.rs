//! The workspace core (open ladder, pause, kill, heartbeat) against DynamoDB Local and the emulator.

use std::time::Duration;

use e2b_emulator::Route;
use sandman::domain::{Actor, SessionState, SnapshotKind};
use sandman::workspace::{Activity, OpenPath, PauseOutcome, PauseRequest};
use sandman_local::testkit::TestStack;

fn state(stack: &TestStack, sandbox: &str) -> Option<e2b_emulator::SandboxState> {
    stack.emulator.sandbox(sandbox).map(|s| s.state)
}

#[tokio::test]
async fn open_creates_then_returns_then_resumes_then_restores() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;

    let first = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(first.path, OpenPath::Created);
    let session = first.record.session.clone().unwrap();
    assert_eq!(session.state, SessionState::Running);
    let sandbox = session.sandbox.unwrap().sandbox_id;
    assert_eq!(state(&stack, &sandbox), Some(e2b_emulator::SandboxState::Running));
    let created = stack.emulator.calls_to(Route::CreateSandbox);
    assert_eq!(created.len(), 1);
    let body = created[0].body.clone().unwrap_or_default();
    assert_eq!(body["metadata"]["sandmanProject"], "app");
    assert_eq!(body["timeout"], 1800);

    assert_eq!(
        stack.sandman.open(&key, Actor::User).await.unwrap().path,
        OpenPath::AlreadyRunning
    );

    let record = stack.sandman.project(&key).await.unwrap();
    let pause = PauseRequest {
        key: key.clone(),
        expected_version: record.version,
        sandbox_id: sandbox.clone(),
        actor: Actor::User,
        cause: "user".into(),
        idle_by: None,
        snapshot_first: false,
    };
    assert!(matches!(
        stack.sandman.pause(pause).await.unwrap(),
        PauseOutcome::Paused
    ));
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Paused)
    );
    assert_eq!(state(&stack, &sandbox), Some(e2b_emulator::SandboxState::Paused));

    let resumed = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(resumed.path, OpenPath::Resumed);
    assert_eq!(
        stack.emulator.calls_to(Route::ConnectSandbox)[0]
            .body
            .clone()
            .unwrap_or_default()["timeout"],
        1800
    );

    let record = stack.sandman.project(&key).await.unwrap();
    let snapshot = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "checkpoint".into())
        .await
        .unwrap();
    let killed = stack.sandman.kill(&key, Some(false), Actor::User).await.unwrap();
    assert!(killed.snapshot.is_none());
    assert_eq!(state(&stack, &sandbox), Some(e2b_emulator::SandboxState::Killed));

    let restored = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(restored.path, OpenPath::Restored);
    assert_eq!(restored.restored_from, Some(snapshot.snapshot_id.clone()));
    let last_create = stack.emulator.calls_to(Route::CreateSandbox).pop().unwrap();
    assert_eq!(
        last_create.body.unwrap_or_default()["templateID"],
        snapshot.e2b_snapshot_id
    );
    assert_eq!(
        restored.record.session.unwrap().restored_from,
        Some(snapshot.snapshot_id)
    );
}

#[tokio::test]
async fn concurrent_opens_make_one_sandbox() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    let opens = (0..16).map(|_| {
        let (sandman, key) = (stack.sandman.clone(), key.clone());
        tokio::spawn(async move { sandman.open(&key, Actor::User).await })
    });
    let results: Vec<_> = futures::future::join_all(opens)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().path)
        .collect();
    assert_eq!(stack.emulator.calls_to(Route::CreateSandbox).len(), 1);
    assert_eq!(results.iter().filter(|p| **p == OpenPath::Created).count(), 1);
    assert!(
        results
            .iter()
            .all(|p| matches!(p, OpenPath::Created | OpenPath::InProgress | OpenPath::AlreadyRunning))
    );
}

#[tokio::test]
async fn heartbeats_are_throttled_and_wake_a_paused_sandbox() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();

    let before = stack.store().capacity().total();
    assert!(
        matches!(stack.sandman.activity(&key).await.unwrap(), Activity::Throttled),
        "just opened: active now"
    );
    assert!(matches!(
        stack.sandman.activity(&key).await.unwrap(),
        Activity::Throttled
    ));
    let after = stack.store().capacity().total();
    assert_eq!(
        after.write_units, before.write_units,
        "throttled heartbeats write nothing"
    );

    stack.advance(Duration::from_secs(80)).await; // past the 75 s heartbeat interval of a 10-minute idle timeout
    assert!(matches!(
        stack.sandman.activity(&key).await.unwrap(),
        Activity::Recorded {
            extended_timeout: false
        }
    ));
    let record = stack.sandman.project(&key).await.unwrap();
    assert_eq!(record.session.as_ref().unwrap().last_active_at, stack.clock.now());

    let pause = PauseRequest {
        key: key.clone(),
        expected_version: record.version,
        sandbox_id: record.session.unwrap().sandbox.unwrap().sandbox_id,
        actor: Actor::User,
        cause: "user".into(),
        idle_by: None,
        snapshot_first: false,
    };
    stack.sandman.pause(pause).await.unwrap();
    stack.advance(Duration::from_secs(60)).await;
    let woke = stack.sandman.activity(&key).await.unwrap();
    assert!(matches!(woke, Activity::Woke(_)), "{woke:?}");
    let record = stack.sandman.project(&key).await.unwrap();
    assert_eq!(record.state(), Some(SessionState::Running), "{record:?}");
}

#[tokio::test]
async fn a_failed_kill_leaves_a_paused_sandbox_paused() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    let sandbox = opened.record.session.unwrap().sandbox.unwrap().sandbox_id;
    let record = stack.sandman.project(&key).await.unwrap();
    let pause = PauseRequest {
        key: key.clone(),
        expected_version: record.version,
        sandbox_id: sandbox.clone(),
        actor: Actor::User,
        cause: "user".into(),
        idle_by: None,
        snapshot_first: false,
    };
    stack.sandman.pause(pause).await.unwrap();

    stack.emulator.set_fault(
        Route::KillSandbox,
        e2b_emulator::Fault {
            error_rate: 1.0,
            error_status: 500,
            ..Default::default()
        },
    );
    assert!(stack.sandman.kill(&key, Some(false), Actor::User).await.is_err());

    let after = stack.sandman.project(&key).await.unwrap();
    assert_eq!(
        after.state(),
        Some(SessionState::Paused),
        "E2B still has it paused, and so does the table"
    );
    assert!(
        after
            .session
            .unwrap()
            .last_error
            .is_some_and(|e| e.contains("500") || e.to_lowercase().contains("unavailable"))
    );
    assert_eq!(state(&stack, &sandbox), Some(e2b_emulator::SandboxState::Paused));
    let log = stack.store().list_events(&key, None, 3).await.unwrap().items;
    assert_eq!(
        log.iter().map(|e| e.to.expect("a transition")).collect::<Vec<_>>(),
        vec![SessionState::Paused, SessionState::Running, SessionState::Stopping]
    );
}
