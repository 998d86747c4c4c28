//! Known interleavings of the lifecycle under faults (issue 13, part 1), each against DynamoDB
//! Local and the emulator with the clock and the faults in the test's hands.

use std::time::Duration;

use e2b_emulator::{Fault, Route, SandboxState as E2bState};
use sandman::deadline::Deadline;
use sandman::domain::{Actor, CLAIM_LEASE, SessionEvent, SessionState, SnapshotKind, SnapshotStatus};
use sandman::e2b::{NewSandbox, SandboxNetwork};
use sandman::retention::{PENDING_GRACE, PassOptions};
use sandman::sandbox_metadata;
use sandman::store::{SessionChanges, SessionWrite};
use sandman::workspace::{Activity, OpenPath, PauseOutcome, PauseRequest};
use sandman_local::testkit::TestStack;

fn live_sandboxes(stack: &TestStack) -> Vec<String> {
    stack
        .emulator
        .sandboxes()
        .into_iter()
        .filter(|s| s.state != E2bState::Killed)
        .map(|s| s.sandbox_id)
        .collect()
}

fn applied_then_502() -> Fault {
    Fault {
        applied_then_fail_next: 1,
        error_status: 502,
        ..Fault::default()
    }
}

async fn pause_now(stack: &TestStack, key: &sandman::domain::ProjectKey) {
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
    assert!(matches!(
        stack.sandman.pause(request).await.unwrap(),
        PauseOutcome::Paused
    ));
}

#[tokio::test]
async fn a_create_that_answered_502_after_creating_is_adopted_not_repeated() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.emulator.set_fault(Route::CreateSandbox, applied_then_502());

    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();

    assert_eq!(opened.path, OpenPath::Created);
    let live = live_sandboxes(&stack);
    assert_eq!(live.len(), 1, "one claim, one sandbox");
    let session = opened.record.session.unwrap();
    assert_eq!(session.state, SessionState::Running);
    assert_eq!(session.sandbox.unwrap().sandbox_id, live[0]);
    assert_eq!(stack.emulator.calls_to(Route::CreateSandbox).len(), 1);
}

#[tokio::test]
async fn the_restore_ladder_does_not_step_down_after_an_ambiguous_failure() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let record = stack.sandman.project(&key).await.unwrap();
    let snapshot = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "checkpoint".into())
        .await
        .unwrap();
    stack.sandman.kill(&key, Some(false), Actor::User).await.unwrap();
    stack.emulator.clear_calls();
    stack.emulator.set_fault(Route::CreateSandbox, applied_then_502());

    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();

    assert_eq!(opened.path, OpenPath::Restored);
    assert_eq!(opened.restored_from, Some(snapshot.snapshot_id));
    assert_eq!(
        live_sandboxes(&stack).len(),
        1,
        "no template sandbox besides the restored one"
    );
    assert_eq!(stack.emulator.calls_to(Route::CreateSandbox).len(), 1);
}

#[tokio::test]
async fn a_resume_that_answered_502_after_resuming_is_recorded_running() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    pause_now(&stack, &key).await;
    // Every attempt the client makes resumes (or finds it running) and answers 502.
    let every_attempt = Fault {
        applied_then_fail_next: 10,
        ..applied_then_502()
    };
    stack.emulator.set_fault(Route::ConnectSandbox, every_attempt);

    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();

    assert_eq!(opened.path, OpenPath::Resumed);
    let sandbox = opened.record.session.unwrap().sandbox.unwrap().sandbox_id;
    assert_eq!(stack.emulator.sandbox(&sandbox).unwrap().state, E2bState::Running);
    assert_eq!(
        opened.record.version,
        stack.sandman.project(&key).await.unwrap().version
    );
}

/// Found by the long soak: a kill that E2B carried out but answered 502 was rolled back to PAUSED,
/// leaving the table with a sandbox E2B no longer had.
#[tokio::test]
async fn a_kill_that_answered_502_after_killing_is_recorded_killed() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    pause_now(&stack, &key).await;
    let sandbox = stack
        .sandman
        .project(&key)
        .await
        .unwrap()
        .session
        .unwrap()
        .sandbox
        .unwrap()
        .sandbox_id;
    stack.emulator.set_fault(Route::KillSandbox, applied_then_502());

    let killed = stack.sandman.kill(&key, Some(false), Actor::User).await;

    assert!(killed.is_ok(), "{killed:?}");
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Killed)
    );
    assert!(!live_sandboxes(&stack).contains(&sandbox), "E2B killed it");
}

#[tokio::test]
async fn a_kill_that_answered_502_without_killing_goes_back_to_paused() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    pause_now(&stack, &key).await;
    stack.emulator.set_fault(
        Route::KillSandbox,
        Fault {
            fail_next: 10,
            error_status: 502,
            ..Fault::default()
        },
    );

    let killed = stack.sandman.kill(&key, Some(false), Actor::User).await;

    assert!(killed.is_err(), "{killed:?}");
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Paused)
    );
}

#[tokio::test]
async fn a_claim_whose_claimant_died_is_settled_by_the_next_open_after_its_lease() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let record = stack.sandman.project(&key).await.unwrap();
    // A pause claimed by an instance that died before calling E2B.
    let dying = SessionWrite::new(&record, Actor::IdleEnforcer, "idle", stack.clock.now()).event(SessionEvent::Pause);
    stack.store().write_session(&dying).await.unwrap();

    assert_eq!(
        stack.sandman.open(&key, Actor::User).await.unwrap().path,
        OpenPath::InProgress,
        "within the lease the claimant may still be working"
    );
    stack.advance(CLAIM_LEASE + Duration::from_secs(1)).await;
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();

    assert_eq!(opened.path, OpenPath::AlreadyRunning);
    assert_eq!(opened.record.state(), Some(SessionState::Running));
    assert_eq!(stack.emulator.calls_to(Route::CreateSandbox).len(), 1);
}

#[tokio::test]
async fn a_start_whose_claimant_died_after_e2b_created_adopts_that_sandbox() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    let record = stack.register(&stack.spec("app")).await;
    let session_id = "01JDEADCLAIMANT0000000000".to_string();
    let claim = SessionWrite::new(&record, Actor::User, "open", stack.clock.now())
        .event(SessionEvent::Start)
        .changes(SessionChanges {
            session_id: Some(session_id.clone()),
            ..SessionChanges::default()
        });
    stack.store().write_session(&claim).await.unwrap();
    let created = stack
        .sandman
        .e2b_for(&key)
        .await
        .unwrap()
        .create_sandbox(&NewSandbox {
            template_id: "base".into(),
            timeout: Duration::from_secs(1800),
            auto_pause: true,
            metadata: sandbox_metadata::for_session(&key, &session_id),
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
    assert_eq!(
        opened.record.session.unwrap().sandbox.unwrap().sandbox_id,
        created.sandbox_id
    );
    assert_eq!(live_sandboxes(&stack), vec![created.sandbox_id]);
}

#[tokio::test]
async fn an_open_whose_create_outlasts_the_budget_answers_in_progress_and_the_lease_adopts_the_sandbox() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            applied_then_hang_next: 1,
            hang_for: Duration::from_secs(30),
            ..Fault::default()
        },
    );

    let budget = Deadline::after(Duration::from_secs(5));
    let opened = budget.scope(stack.sandman.open(&key, Actor::User)).await.unwrap();

    assert_eq!(opened.path, OpenPath::InProgress, "answered within the budget, not cut");
    assert_eq!(
        opened.record.state(),
        Some(SessionState::Starting),
        "the claim waits for its lease"
    );
    stack.emulator.clear_faults();

    // Whether the create reached E2B before the budget ran out (it normally does) or not, the first
    // open after the lease leaves exactly one sandbox, recorded as the project's.
    stack.advance(CLAIM_LEASE + Duration::from_secs(1)).await;
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert!(
        matches!(opened.path, OpenPath::AlreadyRunning | OpenPath::Created),
        "{:?}",
        opened.path
    );
    let live = live_sandboxes(&stack);
    assert_eq!(live.len(), 1, "one sandbox in E2B");
    assert_eq!(opened.record.session.unwrap().sandbox.unwrap().sandbox_id, live[0]);
}

#[tokio::test]
async fn a_tick_whose_invocation_cannot_finish_one_item_claims_nothing() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    stack.advance(Duration::from_secs(3600)).await;

    let short = Deadline::after(stack.sandman.worst_item() / 2);
    let report = short.scope(stack.sandman.enforce_idle()).await;

    assert!(report.deadline_reached);
    assert_eq!(report.paused, 0);
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Running)
    );
    assert!(stack.emulator.calls_to(Route::PauseSandbox).is_empty());

    let report = stack.sandman.enforce_idle().await;
    assert_eq!(report.paused, 1, "with time to finish, the same tick pauses it");
}

/// Lets the next transaction reach DynamoDB, then replaces its answer with a 500: the write won,
/// but its writer never heard so.
#[derive(Debug, Default)]
struct LoseNextAnswer {
    armed: std::sync::atomic::AtomicBool,
}

impl aws_sdk_dynamodb::config::Intercept for LoseNextAnswer {
    fn name(&self) -> &'static str {
        "lose-next-answer"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let response = context.response_mut();
            *response.status_mut() = 500u16.try_into()?;
            *response.body_mut() =
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"lost"}"#.into();
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_transaction_retried_after_its_answer_was_lost_is_recognised_as_won() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    let record = stack.register(&stack.spec("app")).await;
    let interceptor = std::sync::Arc::new(LoseNextAnswer::default());
    let config = stack
        .table
        .client
        .config()
        .to_builder()
        .interceptor(aws_sdk_dynamodb::config::SharedInterceptor::new(ArcIntercept(
            interceptor.clone(),
        )))
        .build();
    let store = sandman::store::Store::new(aws_sdk_dynamodb::Client::from_conf(config), stack.table.name.clone());
    let claim = SessionWrite::new(&record, Actor::User, "open", stack.clock.now())
        .event(SessionEvent::Start)
        .changes(SessionChanges {
            session_id: Some("01JLOSTANSWER000000000000".into()),
            ..SessionChanges::default()
        });

    interceptor.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = store.write_session(&claim).await.expect("the claim is ours");

    assert_eq!(written.state, Some(SessionState::Starting));
    let stored = stack.sandman.project(&key).await.unwrap();
    assert_eq!(stored.version, written.version, "written once");
    let log = stack.store().list_events(&key, None, 10).await.unwrap().items;
    assert_eq!(log.len(), 1, "one lifecycle line");
}

#[derive(Debug)]
struct ArcIntercept(std::sync::Arc<LoseNextAnswer>);

impl aws_sdk_dynamodb::config::Intercept for ArcIntercept {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        components: &aws_sdk_dynamodb::config::RuntimeComponents,
        bag: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.modify_before_deserialization(context, components, bag)
    }
}

#[tokio::test]
async fn a_heartbeat_right_after_a_pause_wakes_the_sandbox() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    stack.advance(Duration::from_secs(120)).await;
    assert!(matches!(
        stack.sandman.activity(&key).await.unwrap(),
        Activity::Recorded { .. }
    ));
    pause_now(&stack, &key).await;
    stack.advance(Duration::from_secs(5)).await;

    let answer = stack.sandman.activity(&key).await.unwrap();

    assert!(matches!(answer, Activity::Woke(_)), "{answer:?}");
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Running)
    );
}

#[tokio::test]
async fn the_heartbeat_throttle_follows_the_projects_idle_timeout() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    let mut spec = stack.spec("app");
    spec.idle.idle_timeout = Duration::from_secs(60);
    stack.register(&spec).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    stack.advance(Duration::from_secs(40)).await;
    assert!(matches!(
        stack.sandman.activity(&key).await.unwrap(),
        Activity::Recorded { .. }
    ));

    // A quarter of the 60 s idle timeout is 15 s: 20 s later the heartbeat must be written, or
    // the enforcer could pause a session whose activity it never saw.
    stack.advance(Duration::from_secs(20)).await;
    let answer = stack.sandman.activity(&key).await.unwrap();

    assert!(matches!(answer, Activity::Recorded { .. }), "{answer:?}");
    let session = stack.sandman.project(&key).await.unwrap().session.unwrap();
    assert_eq!(session.last_active_at, stack.clock.now());
}

#[tokio::test]
async fn refused_conditional_writes_count_in_the_capacity_figures() {
    let stack = TestStack::start().await;
    let record = stack.register(&stack.spec("app")).await;
    let claim = SessionWrite::new(&record, Actor::User, "open", stack.clock.now()).event(SessionEvent::Start);
    stack.store().write_session(&claim).await.unwrap();
    let before = stack.store().capacity().total();

    let stale = stack.store().write_session(&claim).await;

    assert!(stale.is_err(), "the second claim on the same version loses");
    let after = stack.store().capacity().total();
    assert!(
        after.write_units > before.write_units,
        "DynamoDB bills the refused transaction: {before:?} -> {after:?}"
    );
}

/// A project keeping one snapshot, with two: the older is due for retention.
async fn two_snapshots(stack: &TestStack, project: &str) -> (sandman::domain::ProjectKey, sandman::domain::Snapshot) {
    let key = stack.key(project);
    let mut spec = stack.spec(project);
    spec.retention.keep_last = 1;
    stack.register(&spec).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let record = stack.sandman.project(&key).await.unwrap();
    let older = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "older".into())
        .await
        .unwrap();
    stack.advance(Duration::from_secs(1)).await;
    let record = stack.sandman.project(&key).await.unwrap();
    stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "newer".into())
        .await
        .unwrap();
    (key, older)
}

#[tokio::test]
async fn the_pruner_cannot_take_a_held_snapshot_until_the_hold_lapses() {
    let stack = TestStack::start().await;
    let (held, held_older) = two_snapshots(&stack, "held").await;
    let (control, control_older) = two_snapshots(&stack, "control").await;
    stack
        .store()
        .hold_for_fork(&held, &held_older.snapshot_id, stack.clock.now() + CLAIM_LEASE)
        .await
        .unwrap();

    stack.advance(Duration::from_secs(1)).await;
    stack.sandman.prune(PassOptions::default()).await.unwrap();

    let kept = stack
        .store()
        .get_snapshot(&held, &held_older.snapshot_id)
        .await
        .unwrap();
    assert_eq!(kept.map(|s| s.status), Some(SnapshotStatus::Ready), "held: not marked");
    assert!(
        stack
            .emulator
            .snapshots()
            .iter()
            .any(|s| s.snapshot_id == held_older.e2b_snapshot_id)
    );
    assert_eq!(
        stack
            .store()
            .get_snapshot(&control, &control_older.snapshot_id)
            .await
            .unwrap(),
        None,
        "the same snapshot unheld is pruned"
    );

    stack.advance(CLAIM_LEASE).await;
    stack
        .store()
        .mark_deleting_at(&held, &held_older.snapshot_id, stack.clock.now())
        .await
        .expect("the hold has lapsed");
}

#[tokio::test]
async fn a_snapshot_whose_answer_was_lost_is_recorded_pending_and_finished_by_the_pruner() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    stack.emulator.set_fault(Route::CreateSnapshot, applied_then_502());
    let record = stack.sandman.project(&key).await.unwrap();

    let failed = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "lost answer".into())
        .await;

    assert!(failed.is_err());
    let taken = stack.emulator.snapshots();
    assert_eq!(taken.len(), 1, "E2B took it");
    let rows = stack.store().all_snapshots(&key).await.unwrap();
    assert_eq!(rows.len(), 1, "the table knows of it: {rows:?}");
    assert_eq!(rows[0].status, SnapshotStatus::Pending);

    stack.advance(PENDING_GRACE + Duration::from_secs(1)).await;
    stack.sandman.prune(PassOptions::default()).await.unwrap();

    let rows = stack.store().all_snapshots(&key).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, SnapshotStatus::Ready);
    assert_eq!(rows[0].e2b_snapshot_id, taken[0].snapshot_id);
}

#[tokio::test]
async fn a_snapshot_e2b_refused_leaves_no_row() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    stack.emulator.set_fault(
        Route::CreateSnapshot,
        Fault {
            fail_next: 1,
            error_status: 409,
            ..Fault::default()
        },
    );
    let record = stack.sandman.project(&key).await.unwrap();

    assert!(
        stack
            .sandman
            .create_snapshot(&record, SnapshotKind::Manual, "refused".into())
            .await
            .is_err()
    );
    assert!(stack.store().all_snapshots(&key).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_paused_project_whose_sandbox_e2b_expired_goes_down_the_open_ladder() {
    let retention = Duration::from_secs(3600);
    let config = e2b_emulator::EmulatorConfig {
        paused_retention: Some(retention),
        ..e2b_emulator::EmulatorConfig::default()
    };
    let stack = TestStack::start_with(config, |_| None).await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let record = stack.sandman.project(&key).await.unwrap();
    let snapshot = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "before the pause".into())
        .await
        .unwrap();
    pause_now(&stack, &key).await;
    stack.emulator.settle_webhooks().await;
    stack.advance(retention * 2).await;
    let gone = stack
        .sandman
        .project(&key)
        .await
        .unwrap()
        .session
        .unwrap()
        .sandbox
        .unwrap()
        .sandbox_id;
    assert_eq!(
        stack.emulator.sandbox(&gone).unwrap().state,
        E2bState::Killed,
        "E2B dropped it"
    );

    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();

    assert_eq!(opened.path, OpenPath::Restored, "{:?}", opened.fallback_reason);
    assert_eq!(opened.restored_from, Some(snapshot.snapshot_id));
    let live = live_sandboxes(&stack);
    assert_eq!(live.len(), 1);
    assert_eq!(opened.record.session.unwrap().sandbox.unwrap().sandbox_id, live[0]);
}

#[tokio::test]
async fn concurrent_opens_on_the_restore_path_make_one_e2b_call() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let record = stack.sandman.project(&key).await.unwrap();
    stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "checkpoint".into())
        .await
        .unwrap();
    stack.sandman.kill(&key, Some(false), Actor::User).await.unwrap();
    stack.emulator.clear_calls();

    let opens = (0..12).map(|_| {
        let (sandman, key) = (stack.sandman.clone(), key.clone());
        tokio::spawn(async move { sandman.open(&key, Actor::User).await })
    });
    let paths: Vec<OpenPath> = futures::future::join_all(opens)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap().path)
        .collect();

    assert_eq!(stack.emulator.calls_to(Route::CreateSandbox).len(), 1, "{paths:?}");
    assert_eq!(
        paths.iter().filter(|p| **p == OpenPath::Restored).count(),
        1,
        "{paths:?}"
    );
    assert_eq!(live_sandboxes(&stack).len(), 1);
}
