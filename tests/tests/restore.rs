//! Restore is one claim (issue 13): the claim and the hold on its snapshot commit together, the
//! pruner cannot take a held snapshot, and the old sandbox goes only once the new one runs, so a
//! restore that fails or dies leaves the user where they were. DynamoDB Local and the emulator.

use std::time::Duration;

use e2b_emulator::{Fault, Route, SandboxState as E2bState};
use sandman::domain::{Actor, CLAIM_LEASE, ProjectKey, SessionEvent, SessionState, Snapshot, SnapshotKind};
use sandman::e2b::{NewSandbox, SandboxNetwork};
use sandman::error::Error;
use sandman::retention::PassOptions;
use sandman::sandbox_metadata;
use sandman::store::{Field, SessionChanges, SessionWrite, SnapshotHold};
use sandman::workspace::{OpenPath, PauseOutcome, PauseRequest};
use sandman_local::testkit::TestStack;

/// A running project (keeping one snapshot) with two snapshots, the older one first.
async fn project_with_two_snapshots(stack: &TestStack, project: &str) -> (ProjectKey, Snapshot, Snapshot) {
    let key = stack.key(project);
    let mut spec = stack.spec(project);
    spec.retention.keep_last = 1;
    stack.register(&spec).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let mut saved = Vec::new();
    for description in ["older", "newer"] {
        let record = stack.sandman.project(&key).await.unwrap();
        saved.push(
            stack
                .sandman
                .create_snapshot(&record, SnapshotKind::Manual, description.into())
                .await
                .unwrap(),
        );
        stack.advance(Duration::from_secs(1)).await;
    }
    let newer = saved.pop().unwrap();
    (key, saved.pop().unwrap(), newer)
}

async fn current(stack: &TestStack, key: &ProjectKey) -> (SessionState, String, String) {
    let session = stack.sandman.project(key).await.unwrap().session.unwrap();
    (session.state, session.sandbox.unwrap().sandbox_id, session.session_id)
}

/// Whether nothing holds the snapshot now: marking it for deletion is allowed.
async fn unheld(stack: &TestStack, key: &ProjectKey, snapshot: &Snapshot) -> bool {
    stack
        .store()
        .mark_deleting_at(key, &snapshot.snapshot_id, stack.clock.now())
        .await
        .is_ok()
}

async fn pause(stack: &TestStack, key: &ProjectKey) {
    let record = stack.sandman.project(key).await.unwrap();
    let request = PauseRequest {
        key: key.clone(),
        expected_version: record.version,
        sandbox_id: record.session.unwrap().sandbox.unwrap().sandbox_id,
        actor: Actor::User,
        cause: "user".into(),
        idle_by: None,
        snapshot_first: false,
    };
    let outcome = stack.sandman.pause(request).await.unwrap();
    assert!(matches!(outcome, PauseOutcome::Paused), "{outcome:?}");
}

fn refuse_creates(count: u32) -> Fault {
    Fault {
        fail_next: count,
        error_status: 400,
        ..Fault::default()
    }
}

#[tokio::test]
async fn a_restore_kills_the_old_sandbox_only_after_the_new_one_runs() {
    let stack = TestStack::start().await;
    let (key, older, _) = project_with_two_snapshots(&stack, "app").await;
    let (_, before, _) = current(&stack, &key).await;
    stack.emulator.clear_calls();

    let restored = stack
        .sandman
        .restore(&key, &older.snapshot_id, Actor::User)
        .await
        .unwrap();

    assert_eq!(restored.path, OpenPath::Restored);
    let routes: Vec<Route> = stack
        .emulator
        .calls()
        .into_iter()
        .map(|call| call.route)
        .filter(|route| matches!(route, Route::CreateSandbox | Route::KillSandbox))
        .collect();
    assert_eq!(routes, vec![Route::CreateSandbox, Route::KillSandbox]);
    assert_eq!(stack.emulator.sandbox(&before).unwrap().state, E2bState::Killed);
    let (state, now_running, _) = current(&stack, &key).await;
    assert_eq!(state, SessionState::Running);
    assert_ne!(now_running, before);
    assert!(unheld(&stack, &key, &older).await, "the hold is released");
}

#[tokio::test]
async fn a_restore_every_rung_refused_leaves_the_running_sandbox_as_it_was() {
    let stack = TestStack::start().await;
    let (key, older, _) = project_with_two_snapshots(&stack, "app").await;
    let before = current(&stack, &key).await;
    stack.emulator.clear_calls();
    // The chosen snapshot, nothing older, then the template: all refused.
    stack.emulator.set_fault(Route::CreateSandbox, refuse_creates(2));

    let refused = stack.sandman.restore(&key, &older.snapshot_id, Actor::User).await;

    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(current(&stack, &key).await, before, "same state, sandbox and session");
    assert!(stack.emulator.calls_to(Route::KillSandbox).is_empty());
    assert_eq!(stack.emulator.sandbox(&before.1).unwrap().state, E2bState::Running);
    let record = stack.sandman.project(&key).await.unwrap();
    assert!(record.session.unwrap().last_error.is_some(), "the user is told why");
    assert!(unheld(&stack, &key, &older).await, "the hold is released");
}

#[tokio::test]
async fn a_restore_every_rung_refused_leaves_the_paused_sandbox_paused() {
    let stack = TestStack::start().await;
    let (key, older, _) = project_with_two_snapshots(&stack, "app").await;
    pause(&stack, &key).await;
    let before = current(&stack, &key).await;
    assert_eq!(before.0, SessionState::Paused);
    stack.emulator.set_fault(Route::CreateSandbox, refuse_creates(2));

    assert!(
        stack
            .sandman
            .restore(&key, &older.snapshot_id, Actor::User)
            .await
            .is_err()
    );

    assert_eq!(current(&stack, &key).await, before);
    assert_eq!(stack.emulator.sandbox(&before.1).unwrap().state, E2bState::Paused);
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(
        opened.path,
        OpenPath::Resumed,
        "the paused sandbox is still the project's"
    );
}

#[tokio::test]
async fn the_claim_holds_the_snapshot_and_the_pruner_cannot_take_it_meanwhile() {
    let stack = TestStack::start().await;
    let (key, older, newer) = project_with_two_snapshots(&stack, "app").await;
    stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            latency: Duration::from_millis(1500),
            ..Fault::default()
        },
    );
    let restoring = {
        let (sandman, key, id) = (stack.sandman.clone(), key.clone(), older.snapshot_id.clone());
        tokio::spawn(async move { sandman.restore(&key, &id, Actor::User).await })
    };
    while current(&stack, &key).await.0 != SessionState::Starting {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Keep-last 1 makes the older snapshot due; the restore's hold keeps it.
    stack.sandman.prune(PassOptions::default()).await.unwrap();
    let kept = stack.store().get_snapshot(&key, &older.snapshot_id).await.unwrap();
    assert_eq!(kept.map(|s| s.status), Some(sandman::domain::SnapshotStatus::Ready));
    // A second restore loses the claim, and holds nothing.
    let second = stack.sandman.restore(&key, &newer.snapshot_id, Actor::User).await;
    assert!(matches!(second, Err(Error::Conflict(_))), "{second:?}");

    let restored = restoring.await.unwrap().unwrap();
    assert_eq!(restored.restored_from, Some(older.snapshot_id.clone()));
    assert!(unheld(&stack, &key, &newer).await, "the loser held nothing");
}

#[tokio::test]
async fn a_snapshot_not_ready_is_refused_before_anything_changes() {
    let stack = TestStack::start().await;
    let (key, older, _) = project_with_two_snapshots(&stack, "app").await;
    let version = stack.sandman.project(&key).await.unwrap().version;
    stack
        .store()
        .mark_deleting_at(&key, &older.snapshot_id, stack.clock.now())
        .await
        .unwrap();
    stack.emulator.clear_calls();

    let refused = stack.sandman.restore(&key, &older.snapshot_id, Actor::User).await;

    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
    assert_eq!(stack.sandman.project(&key).await.unwrap().version, version, "no claim");
    assert!(stack.emulator.calls().is_empty(), "E2B was not asked");
}

/// A restore's claim written by an instance that then died, as `restore` writes it.
async fn dead_restore_claim(stack: &TestStack, key: &ProjectKey, snapshot: &Snapshot, session_id: &str) {
    let record = stack.sandman.project(key).await.unwrap();
    let replaced = record.session.as_ref().unwrap().session_id.clone();
    let claim = SessionWrite::new(&record, Actor::User, "restore", stack.clock.now())
        .event(SessionEvent::Restore)
        .changes(SessionChanges {
            session_id: Some(session_id.into()),
            replaces_session: Field::Set(replaced),
            ..SessionChanges::default()
        })
        .hold(SnapshotHold {
            snapshot_id: snapshot.snapshot_id.clone(),
            until: stack.clock.now() + CLAIM_LEASE * 2,
        });
    stack.store().write_session(&claim).await.unwrap();
}

#[tokio::test]
async fn a_restore_whose_claimant_died_before_creating_goes_back_to_the_old_sandbox() {
    let stack = TestStack::start().await;
    let (key, older, _) = project_with_two_snapshots(&stack, "app").await;
    let before = current(&stack, &key).await;
    dead_restore_claim(&stack, &key, &older, "01JDEADRESTORE00000000000").await;
    assert!(!unheld(&stack, &key, &older).await, "the claim holds its snapshot");

    stack.advance(CLAIM_LEASE + Duration::from_secs(1)).await;
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();

    assert_eq!(opened.path, OpenPath::AlreadyRunning);
    assert_eq!(current(&stack, &key).await, before, "the same sandbox and session");
    assert_eq!(stack.emulator.sandbox(&before.1).unwrap().state, E2bState::Running);
}

#[tokio::test]
async fn a_restore_whose_claimant_died_after_e2b_created_adopts_it_and_kills_the_old() {
    let stack = TestStack::start().await;
    let (key, older, _) = project_with_two_snapshots(&stack, "app").await;
    let (_, old_sandbox, _) = current(&stack, &key).await;
    let session_id = "01JDEADRESTORE00000000001";
    dead_restore_claim(&stack, &key, &older, session_id).await;
    let created = stack
        .sandman
        .e2b_for(&key)
        .await
        .unwrap()
        .create_sandbox(&NewSandbox {
            template_id: older.e2b_snapshot_id.clone(),
            timeout: Duration::from_secs(1800),
            auto_pause: true,
            metadata: sandbox_metadata::for_session(&key, session_id),
            env_vars: Default::default(),
            secure: true,
            network: SandboxNetwork {
                allow_public_traffic: false,
                rules: Default::default(),
            },
        })
        .await
        .unwrap();

    stack.advance(CLAIM_LEASE + Duration::from_secs(1)).await;
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();

    assert_eq!(opened.path, OpenPath::AlreadyRunning);
    let (state, sandbox, session) = current(&stack, &key).await;
    assert_eq!(
        (state, sandbox.as_str(), session.as_str()),
        (SessionState::Running, created.sandbox_id.as_str(), session_id)
    );
    assert_eq!(stack.emulator.sandbox(&old_sandbox).unwrap().state, E2bState::Killed);
}

#[tokio::test]
async fn the_reconciler_takes_a_stuck_restore_back_to_the_old_sandbox() {
    let stack = TestStack::start().await;
    let (key, older, _) = project_with_two_snapshots(&stack, "app").await;
    let before = current(&stack, &key).await;
    dead_restore_claim(&stack, &key, &older, "01JDEADRESTORE00000000002").await;

    stack.clock.advance(Duration::from_secs(600));
    let report = stack.sandman.reconcile().await;

    assert_eq!(
        (report.stuck, report.stuck_repaired, report.errors),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(
        current(&stack, &key).await,
        before,
        "the same sandbox and session, RUNNING"
    );
    assert_eq!(stack.emulator.sandbox(&before.1).unwrap().state, E2bState::Running);
}
