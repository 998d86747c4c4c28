//! The snapshot service (create, list, get, pin, delete), auto-saves before kill and pause, and
//! the restore ladder, against DynamoDB Local and the E2B emulator.

use std::collections::BTreeSet;
use std::time::Duration;

use e2b_emulator::{Fault, Route, SandboxState};
use sandman::Error;
use sandman::domain::{Actor, ProjectKey, SessionState, Snapshot, SnapshotId, SnapshotKind, SnapshotStatus};
use sandman::store::keys;
use sandman::workspace::{OpenPath, PauseOutcome, PauseRequest};
use sandman_local::testkit::TestStack;

/// A registered project with a running sandbox.
async fn running(stack: &TestStack, project: &str) -> ProjectKey {
    let key = stack.key(project);
    stack.register(&stack.spec(project)).await;
    stack.sandman.open(&key, Actor::User).await.expect("the project opens");
    key
}

async fn snapshot(stack: &TestStack, key: &ProjectKey, description: &str) -> Snapshot {
    let record = stack.sandman.project(key).await.unwrap();
    stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, description.into())
        .await
        .expect("snapshot saved")
}

fn e2b_snapshots(stack: &TestStack) -> BTreeSet<String> {
    stack.emulator.snapshots().into_iter().map(|s| s.snapshot_id).collect()
}

fn sandbox_of(record: &sandman::store::ProjectRecord) -> String {
    record
        .session
        .as_ref()
        .and_then(|s| s.sandbox.as_ref())
        .map(|s| s.sandbox_id.clone())
        .expect("a sandbox")
}

async fn is_due(stack: &TestStack, key: &ProjectKey) -> bool {
    let page = stack
        .store()
        .prune_page(&keys::prune_shard(key), stack.clock.now(), 100, None)
        .await
        .unwrap();
    page.items.iter().any(|c| &c.key == key)
}

#[tokio::test]
async fn create_records_what_e2b_saved_and_lists_newest_first() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let sandbox = sandbox_of(&stack.sandman.project(&key).await.unwrap());

    let first = snapshot(&stack, &key, "first").await;
    stack.advance(Duration::from_secs(60)).await;
    let second = snapshot(&stack, &key, "second").await;

    assert_eq!(first.kind, SnapshotKind::Manual);
    assert_eq!(first.description, "first");
    assert_eq!(first.source_sandbox_id, sandbox);
    assert_eq!(first.status, SnapshotStatus::Ready);
    assert!(!first.pinned);
    assert_eq!(second.created_at - first.created_at, Duration::from_secs(60));
    assert_eq!(
        e2b_snapshots(&stack),
        BTreeSet::from([first.e2b_snapshot_id.clone(), second.e2b_snapshot_id.clone()])
    );
    let view = stack
        .emulator
        .snapshots()
        .into_iter()
        .find(|s| s.snapshot_id == first.e2b_snapshot_id)
        .unwrap();
    assert_eq!(view.source_sandbox_id, sandbox);

    let listed = stack.sandman.list_snapshots(&key, None, 10).await.unwrap();
    assert_eq!(listed.items, vec![second.clone(), first.clone()]);
    let page = stack.sandman.list_snapshots(&key, None, 1).await.unwrap();
    assert_eq!(page.items, vec![second.clone()]);
    let rest = stack.sandman.list_snapshots(&key, page.next.as_ref(), 1).await.unwrap();
    assert_eq!(rest.items, vec![first.clone()]);
    assert_eq!(stack.sandman.snapshot(&key, &first.snapshot_id).await.unwrap(), first);
    assert!(
        is_due(&stack, &key).await,
        "a new snapshot marks its project due for retention"
    );
}

#[tokio::test]
async fn snapshots_need_a_live_sandbox() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    let record = stack.register(&stack.spec("app")).await;
    let err = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "x".into())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(stack.emulator.calls_to(Route::CreateSnapshot).is_empty());
    assert!(
        stack
            .sandman
            .list_snapshots(&key, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_e2b_snapshot_records_nothing() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    stack.emulator.set_fault(
        Route::CreateSnapshot,
        Fault {
            error_rate: 1.0,
            error_status: 409,
            ..Fault::default()
        },
    );
    let record = stack.sandman.project(&key).await.unwrap();
    let err = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "x".into())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::E2b(_)), "{err}");
    assert!(
        stack
            .sandman
            .list_snapshots(&key, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn pinned_snapshots_cannot_be_deleted_until_unpinned() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = snapshot(&stack, &key, "keep me").await;

    let pinned = stack.sandman.set_pinned(&key, &saved.snapshot_id, true).await.unwrap();
    assert!(pinned.pinned);
    assert!(stack.sandman.snapshot(&key, &saved.snapshot_id).await.unwrap().pinned);
    let refused = stack
        .sandman
        .delete_snapshot(&key, &saved.snapshot_id)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)), "{refused}");
    assert!(e2b_snapshots(&stack).contains(&saved.e2b_snapshot_id));
    assert!(stack.emulator.calls_to(Route::DeleteSnapshot).is_empty());

    stack.store().set_prune_at(&key, None).await.unwrap();
    let unpinned = stack.sandman.set_pinned(&key, &saved.snapshot_id, false).await.unwrap();
    assert!(!unpinned.pinned);
    assert!(
        is_due(&stack, &key).await,
        "unpinning may break the policy: the project is due again"
    );

    stack.sandman.delete_snapshot(&key, &saved.snapshot_id).await.unwrap();
    assert!(!e2b_snapshots(&stack).contains(&saved.e2b_snapshot_id));
    let gone = stack.sandman.snapshot(&key, &saved.snapshot_id).await.unwrap_err();
    assert!(matches!(gone, Error::NotFound("snapshot")), "{gone}");
    let missing = stack
        .sandman
        .set_pinned(&key, &saved.snapshot_id, true)
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound("snapshot")), "{missing}");
    let again = stack
        .sandman
        .delete_snapshot(&key, &saved.snapshot_id)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::NotFound("snapshot")), "{again}");
}

#[tokio::test]
async fn deleting_a_snapshot_e2b_already_lost_still_removes_the_record() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = snapshot(&stack, &key, "x").await;
    stack
        .sandman
        .e2b_for(&key)
        .await
        .unwrap()
        .delete_snapshot(&saved.e2b_snapshot_id)
        .await
        .unwrap();
    stack.emulator.clear_calls();

    stack.sandman.delete_snapshot(&key, &saved.snapshot_id).await.unwrap();
    let asked = stack.emulator.calls_to(Route::DeleteSnapshot);
    assert_eq!(asked.len(), 1, "Sandman asked E2B to delete it: {asked:?}");
    let e2b_id = saved.e2b_snapshot_id.replace('/', "%2F");
    assert!(asked[0].path.ends_with(&format!("/templates/{e2b_id}")), "{asked:?}");
    assert_eq!(asked[0].status, 404, "E2B no longer had it");
    assert!(
        stack.store().all_snapshots(&key).await.unwrap().is_empty(),
        "no record is left in the table, not even a DELETING one"
    );
}

#[tokio::test]
async fn a_failed_e2b_delete_leaves_the_record_deleting_and_the_project_due() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = snapshot(&stack, &key, "x").await;
    stack.store().set_prune_at(&key, None).await.unwrap();
    stack.emulator.set_fault(
        Route::DeleteSnapshot,
        Fault {
            error_rate: 1.0,
            error_status: 503,
            ..Fault::default()
        },
    );

    let err = stack
        .sandman
        .delete_snapshot(&key, &saved.snapshot_id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::E2b(_)), "{err}");
    assert_eq!(
        stack.sandman.snapshot(&key, &saved.snapshot_id).await.unwrap().status,
        SnapshotStatus::Deleting
    );
    assert!(e2b_snapshots(&stack).contains(&saved.e2b_snapshot_id));
    assert!(is_due(&stack, &key).await, "the pruner will finish it");
    let pin = stack
        .sandman
        .set_pinned(&key, &saved.snapshot_id, true)
        .await
        .unwrap_err();
    assert!(
        matches!(pin, Error::NotFound("snapshot")),
        "a snapshot being deleted cannot be pinned: {pin}"
    );

    stack.emulator.clear_faults();
    stack.sandman.delete_snapshot(&key, &saved.snapshot_id).await.unwrap();
    assert!(!e2b_snapshots(&stack).contains(&saved.e2b_snapshot_id));
    assert!(
        stack
            .sandman
            .list_snapshots(&key, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn the_snapshot_the_live_sandbox_came_from_cannot_be_deleted() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = snapshot(&stack, &key, "x").await;
    let restored = stack
        .sandman
        .restore(&key, &saved.snapshot_id, Actor::User)
        .await
        .unwrap();
    assert_eq!(restored.restored_from, Some(saved.snapshot_id.clone()));

    let refused = stack
        .sandman
        .delete_snapshot(&key, &saved.snapshot_id)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)), "{refused}");
    assert_eq!(
        stack.sandman.snapshot(&key, &saved.snapshot_id).await.unwrap().status,
        SnapshotStatus::Ready
    );

    stack.sandman.kill(&key, Some(false), Actor::User).await.unwrap();
    stack.sandman.delete_snapshot(&key, &saved.snapshot_id).await.unwrap();
    assert!(e2b_snapshots(&stack).is_empty());
}

#[tokio::test]
async fn kill_saves_first_when_the_project_asks() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack
        .register(&sandman::domain::ProjectSpec {
            snapshot_before_kill: true,
            public_traffic: false,
            ..stack.spec("app")
        })
        .await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let sandbox = sandbox_of(&stack.sandman.project(&key).await.unwrap());

    let killed = stack.sandman.kill(&key, None, Actor::User).await.unwrap();
    let saved = killed.snapshot.expect("an auto-save");
    assert_eq!(saved.kind, SnapshotKind::AutoBeforeKill);
    assert_eq!(saved.source_sandbox_id, sandbox);
    assert_eq!(stack.emulator.sandbox(&sandbox).unwrap().state, SandboxState::Killed);
    assert_eq!(
        stack.sandman.list_snapshots(&key, None, 10).await.unwrap().items,
        vec![saved.clone()]
    );
    let view = stack
        .emulator
        .snapshots()
        .into_iter()
        .find(|s| s.snapshot_id == saved.e2b_snapshot_id)
        .expect("saved in E2B");
    assert_eq!(view.source_sandbox_id, sandbox);

    // The next open restores what was saved.
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(opened.path, OpenPath::Restored);
    assert_eq!(opened.restored_from, Some(saved.snapshot_id));
}

#[tokio::test]
async fn kill_without_a_save_when_told_so_or_when_the_project_does_not_ask() {
    let stack = TestStack::start().await;
    let asks = stack.key("asks");
    stack
        .register(&sandman::domain::ProjectSpec {
            snapshot_before_kill: true,
            public_traffic: false,
            ..stack.spec("asks")
        })
        .await;
    stack.sandman.open(&asks, Actor::User).await.unwrap();
    assert!(
        stack
            .sandman
            .kill(&asks, Some(false), Actor::User)
            .await
            .unwrap()
            .snapshot
            .is_none()
    );

    let quiet = running(&stack, "quiet").await;
    assert!(
        stack
            .sandman
            .kill(&quiet, None, Actor::User)
            .await
            .unwrap()
            .snapshot
            .is_none()
    );
    assert!(stack.emulator.calls_to(Route::CreateSnapshot).is_empty());
}

#[tokio::test]
async fn a_required_save_that_fails_abandons_the_kill() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let sandbox = sandbox_of(&stack.sandman.project(&key).await.unwrap());
    stack.emulator.set_fault(
        Route::CreateSnapshot,
        Fault {
            error_rate: 1.0,
            error_status: 409,
            ..Fault::default()
        },
    );

    let err = stack.sandman.kill(&key, Some(true), Actor::User).await.unwrap_err();
    assert!(matches!(err, Error::E2b(_)), "{err}");
    assert_eq!(stack.emulator.sandbox(&sandbox).unwrap().state, SandboxState::Running);
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Running)
    );
    assert!(stack.emulator.calls_to(Route::KillSandbox).is_empty());
}

#[tokio::test]
async fn a_best_effort_save_that_fails_still_kills() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack
        .register(&sandman::domain::ProjectSpec {
            snapshot_before_kill: true,
            public_traffic: false,
            ..stack.spec("app")
        })
        .await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    stack.emulator.set_fault(
        Route::CreateSnapshot,
        Fault {
            error_rate: 1.0,
            error_status: 409,
            ..Fault::default()
        },
    );

    let killed = stack.sandman.kill(&key, None, Actor::User).await.unwrap();
    assert!(killed.snapshot.is_none());
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Killed)
    );
}

#[tokio::test]
async fn an_idle_pause_saves_first_when_asked() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let record = stack.sandman.project(&key).await.unwrap();
    let request = PauseRequest {
        key: key.clone(),
        expected_version: record.version,
        sandbox_id: sandbox_of(&record),
        actor: Actor::IdleEnforcer,
        cause: "idle".into(),
        idle_by: None,
        snapshot_first: true,
    };
    assert!(matches!(
        stack.sandman.pause(request).await.unwrap(),
        PauseOutcome::Paused
    ));
    let saved = stack.sandman.list_snapshots(&key, None, 10).await.unwrap().items;
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].kind, SnapshotKind::AutoBeforePause);
    assert_eq!(saved[0].source_sandbox_id, sandbox_of(&record));
}

/// Three snapshots, a minute apart, oldest first.
async fn three_snapshots(stack: &TestStack, key: &ProjectKey) -> Vec<Snapshot> {
    let mut saved = Vec::new();
    for n in 0..3 {
        saved.push(snapshot(stack, key, &format!("s{n}")).await);
        stack.advance(Duration::from_secs(60)).await;
    }
    saved
}

fn last_create_template(stack: &TestStack) -> String {
    let call = stack.emulator.calls_to(Route::CreateSandbox).pop().expect("a create");
    call.body.unwrap_or_default()["templateID"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn restore_replaces_the_sandbox_with_one_from_the_snapshot() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = three_snapshots(&stack, &key).await;
    let before = sandbox_of(&stack.sandman.project(&key).await.unwrap());

    let restored = stack
        .sandman
        .restore(&key, &saved[1].snapshot_id, Actor::User)
        .await
        .unwrap();
    assert_eq!(restored.path, OpenPath::Restored);
    assert_eq!(restored.restored_from, Some(saved[1].snapshot_id.clone()));
    assert_eq!(restored.fallback_reason, None);
    assert_eq!(last_create_template(&stack), saved[1].e2b_snapshot_id);
    assert_eq!(
        stack.emulator.sandbox(&before).unwrap().state,
        SandboxState::Killed,
        "the old sandbox is killed"
    );
    let session = restored.record.session.unwrap();
    assert_eq!(session.state, SessionState::Running);
    assert_eq!(session.restored_from, Some(saved[1].snapshot_id.clone()));
    assert_ne!(session.sandbox.unwrap().sandbox_id, before);
}

/// The templates of the creates E2B was asked for since `since` calls were recorded.
fn creates_since(stack: &TestStack, since: usize) -> Vec<String> {
    stack.emulator.calls_to(Route::CreateSandbox)[since..]
        .iter()
        .map(|call| {
            call.body.clone().unwrap_or_default()["templateID"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// A restore of snapshot S runs from S or fails (issue 13): never from an older snapshot or the
/// template, which the caller did not ask for.
#[tokio::test]
async fn a_restore_of_a_snapshot_e2b_lost_fails_and_runs_from_nothing_else() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = three_snapshots(&stack, &key).await;
    for lost in [&saved[2], &saved[0]] {
        stack
            .sandman
            .e2b_for(&key)
            .await
            .unwrap()
            .delete_snapshot(&lost.e2b_snapshot_id)
            .await
            .unwrap();
        let before = stack.emulator.calls_to(Route::CreateSandbox).len();

        let restored = stack.sandman.restore(&key, &lost.snapshot_id, Actor::User).await;

        assert!(restored.is_err(), "{restored:?}");
        assert_eq!(
            creates_since(&stack, before),
            vec![lost.e2b_snapshot_id.clone()],
            "one create, from the chosen snapshot only"
        );
        let session = stack.sandman.project(&key).await.unwrap().session.unwrap();
        assert_eq!(session.state, SessionState::Running, "where the user was: {session:?}");
        assert!(session.last_error.is_some(), "the session says why");
    }
}

#[tokio::test]
async fn a_restore_refused_by_e2b_fails_without_trying_another_source() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = three_snapshots(&stack, &key).await;
    stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            fail_next: 1,
            error_status: 400,
            ..Fault::default()
        },
    );
    let before = stack.emulator.calls_to(Route::CreateSandbox).len();

    let restored = stack.sandman.restore(&key, &saved[2].snapshot_id, Actor::User).await;

    assert!(matches!(restored, Err(Error::E2b(_))), "{restored:?}");
    assert_eq!(creates_since(&stack, before), vec![saved[2].e2b_snapshot_id.clone()]);
}

#[tokio::test]
async fn open_after_kill_walks_the_ladder_down_to_the_template() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = three_snapshots(&stack, &key).await;
    stack.sandman.kill(&key, Some(false), Actor::User).await.unwrap();
    let e2b = stack.sandman.e2b_for(&key).await.unwrap();
    for s in &saved[1..] {
        e2b.delete_snapshot(&s.e2b_snapshot_id).await.unwrap();
    }

    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(opened.path, OpenPath::Restored);
    assert_eq!(
        opened.restored_from,
        Some(saved[0].snapshot_id.clone()),
        "newest that still restores"
    );

    stack.sandman.kill(&key, Some(false), Actor::User).await.unwrap();
    e2b.delete_snapshot(&saved[0].e2b_snapshot_id).await.unwrap();
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(opened.path, OpenPath::Created);
    assert_eq!(opened.restored_from, None);
    assert_eq!(last_create_template(&stack), "base");
}

#[tokio::test]
async fn a_snapshot_being_deleted_is_not_restored() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = three_snapshots(&stack, &key).await;
    stack
        .store()
        .mark_deleting_at(&key, &saved[2].snapshot_id, stack.clock.now())
        .await
        .unwrap();

    let refused = stack
        .sandman
        .restore(&key, &saved[2].snapshot_id, Actor::User)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)), "{refused}");

    stack.sandman.kill(&key, Some(false), Actor::User).await.unwrap();
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(
        opened.restored_from,
        Some(saved[1].snapshot_id.clone()),
        "the ladder skips DELETING records"
    );
}

#[tokio::test]
async fn a_restore_that_fails_everywhere_leaves_the_old_sandbox_running() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = three_snapshots(&stack, &key).await;
    let before = sandbox_of(&stack.sandman.project(&key).await.unwrap());
    stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            error_rate: 1.0,
            error_status: 400,
            ..Fault::default()
        },
    );

    let err = stack
        .sandman
        .restore(&key, &saved[2].snapshot_id, Actor::User)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::E2b(_)), "{err}");
    let record = stack.sandman.project(&key).await.unwrap();
    assert_eq!(record.state(), Some(SessionState::Running), "where the user was");
    assert_eq!(sandbox_of(&record), before);
    assert_eq!(stack.emulator.sandbox(&before).unwrap().state, SandboxState::Running);
    assert_eq!(record.session.unwrap().restored_from, None::<SnapshotId>);
}

// E2B's 400 on a delete is its refusal while a sandbox made from the snapshot runs (a fork's, say):
// the snapshot is still E2B's and usable, so its record is READY again, not left DELETING.
#[tokio::test]
async fn a_delete_e2b_refuses_leaves_the_snapshot_ready() {
    let stack = TestStack::start().await;
    let key = running(&stack, "app").await;
    let saved = snapshot(&stack, &key, "x").await;
    stack.emulator.set_fault(
        Route::DeleteSnapshot,
        Fault {
            error_rate: 1.0,
            error_status: 400,
            ..Fault::default()
        },
    );

    let err = stack
        .sandman
        .delete_snapshot(&key, &saved.snapshot_id)
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(
        stack.sandman.snapshot(&key, &saved.snapshot_id).await.unwrap().status,
        SnapshotStatus::Ready
    );
    assert!(e2b_snapshots(&stack).contains(&saved.e2b_snapshot_id));
}
