//! Interleavings the model checker (`model/`) found in the lifecycle protocol of 9e9c62b, each
//! replayed against DynamoDB Local and the E2B emulator. Every test here failed on 9e9c62b; the
//! comment above each says how.

use std::time::Duration;

use e2b_emulator::{Fault, Route, SandboxState as E2bState};
use sandman::domain::{Actor, CLAIM_LEASE, SessionState, SnapshotKind};
use sandman::e2b::{NewSandbox, SandboxNetwork};
use sandman::sandbox_metadata;
use sandman::workspace::{OpenPath, PauseOutcome, PauseRequest, UserPause};
use sandman_local::testkit::TestStack;

fn live(stack: &TestStack) -> Vec<e2b_emulator::SandboxView> {
    stack
        .emulator
        .sandboxes()
        .into_iter()
        .filter(|s| s.state != E2bState::Killed)
        .collect()
}

fn sandbox_of(record: &sandman::store::ProjectRecord) -> String {
    record.sandbox_id().expect("a sandbox").to_owned()
}

// 9e9c62b: E2B paused the sandbox on its own (its timeout ran out; autoPause), the webhook was lost,
// and the open answered `already-running` with the paused sandbox, until the reconciler ran.
#[tokio::test]
async fn an_open_after_e2b_paused_the_sandbox_on_its_own_hands_out_a_running_sandbox() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    let mut spec = stack.spec("app");
    spec.sandbox_timeout = Duration::from_secs(60);
    stack.register(&spec).await;
    let first = stack.sandman.open(&key, Actor::User).await.unwrap();
    let sandbox = sandbox_of(&first.record);

    // E2B's timeout runs out (autoPause); no webhook reaches Sandman in this stack.
    stack.emulator.advance_clock(Duration::from_secs(120)).await;
    assert_eq!(stack.emulator.sandbox(&sandbox).unwrap().state, E2bState::Paused);
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Running),
        "the table has not heard"
    );

    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(opened.record.state(), Some(SessionState::Running));
    let handed_out = sandbox_of(&opened.record);
    assert_eq!(
        stack.emulator.sandbox(&handed_out).unwrap().state,
        E2bState::Running,
        "an open that answers RUNNING hands out a sandbox E2B runs"
    );
    assert_eq!(opened.path, OpenPath::Resumed);
}

// 9e9c62b: the open's claim landed between the delete's last read and its unconditional delete;
// the sandbox the open then made outlived the project, and the reconciler's default policy only
// paused it, forever (6 of 30 tries in the report).
#[tokio::test]
async fn opens_racing_a_project_delete_leave_no_sandbox_of_the_deleted_project() {
    let stack = TestStack::start().await;
    stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            latency: Duration::from_millis(400),
            ..Fault::default()
        },
    );
    let mut judged = 0;
    for round in 0..30u64 {
        let name = format!("race{round}");
        let key = stack.key(&name);
        stack.register(&stack.spec(&name)).await;
        let opening = {
            let (sandman, key) = (stack.sandman.clone(), key.clone());
            tokio::spawn(async move { sandman.open(&key, Actor::User).await })
        };
        tokio::time::sleep(Duration::from_millis(round * 15)).await;
        let deleted = stack.sandman.delete_project(&key).await;
        let opened = opening.await.unwrap();
        if deleted.is_err() {
            // The open won: the delete answered 409 and the project keeps its sandbox. Delete it now.
            assert!(opened.is_ok(), "round {round}: {opened:?}");
            stack
                .sandman
                .delete_project(&key)
                .await
                .expect("a delete with nothing racing it");
        }
        judged += 1;
    }
    // One reconcile, once every claim's lease is over.
    stack.advance(CLAIM_LEASE * 8).await;
    stack.sandman.reconcile().await;
    let left: Vec<_> = live(&stack)
        .into_iter()
        .filter(|s| {
            s.metadata
                .get(sandbox_metadata::PROJECT)
                .is_some_and(|p| p.starts_with("race"))
        })
        .map(|s| (s.sandbox_id, s.state))
        .collect();
    assert_eq!(judged, 30);
    assert!(left.is_empty(), "sandboxes of deleted projects left in E2B: {left:?}");
}

// 9e9c62b: E2B paused the sandbox and the answer was lost (a 502); the pause was rolled back to
// RUNNING without asking E2B, and E2B's `paused` webhook, older than the rollback, was dropped as
// stale: the table said RUNNING while E2B had it paused.
#[tokio::test]
async fn a_pause_whose_answer_was_lost_records_what_e2b_did() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    let record = stack.sandman.open(&key, Actor::User).await.unwrap().record;
    let sandbox = sandbox_of(&record);
    stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            applied_then_fail_next: 1,
            error_status: 502,
            ..Fault::default()
        },
    );
    let outcome = stack
        .sandman
        .pause(PauseRequest {
            key: key.clone(),
            expected_version: record.version,
            sandbox_id: sandbox.clone(),
            actor: Actor::User,
            cause: "paused by user".into(),
            idle_by: None,
            snapshot_first: false,
        })
        .await
        .unwrap();
    assert!(matches!(outcome, PauseOutcome::AlreadyPaused), "{outcome:?}");
    assert_eq!(stack.emulator.sandbox(&sandbox).unwrap().state, E2bState::Paused);
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Paused)
    );
}

// 9e9c62b: under the default orphan policy (`pause`) a paused orphan was skipped by every
// reconcile: a sandbox no project holds was kept by E2B for good.
#[tokio::test]
async fn a_paused_sandbox_no_project_holds_is_killed_by_the_reconciler() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack.sandman.open(&key, Actor::User).await.unwrap();
    let e2b = stack.sandman.e2b_for(&key).await.unwrap();
    let stray = e2b
        .create_sandbox(&NewSandbox {
            template_id: "base".into(),
            timeout: Duration::from_secs(600),
            auto_pause: true,
            metadata: sandbox_metadata::for_session(&key, "a-lost-session"),
            env_vars: Default::default(),
            secure: true,
            network: SandboxNetwork {
                allow_public_traffic: false,
                rules: Default::default(),
            },
        })
        .await
        .unwrap();
    e2b.pause(&stray.sandbox_id).await.unwrap();

    // Past the orphans' grace by E2B's clock, which runs on in real time.
    stack
        .advance_past_e2b(stack.sandman.config.enforcer.stuck_after + Duration::from_secs(1))
        .await;
    let report = stack.sandman.reconcile().await;

    assert_eq!(
        stack.emulator.sandbox(&stray.sandbox_id).unwrap().state,
        E2bState::Killed
    );
    assert_eq!(report.orphans_killed, 1, "{report:?}");
    assert_eq!(live(&stack).len(), 1, "the project's own sandbox stays");
}

// 9e9c62b: a create that failed ambiguously and was not listed yet stepped down the ladder to the
// next rung: two sandboxes carried one session id.
#[tokio::test]
async fn a_create_whose_outcome_is_unknown_is_left_to_its_lease_not_repeated() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    let record = stack.sandman.open(&key, Actor::User).await.unwrap().record;
    stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "one rung".into())
        .await
        .unwrap();
    stack.sandman.kill(&key, None, Actor::User).await.unwrap();
    // The create answers 502 and makes nothing E2B lists: the ladder cannot tell.
    stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            fail_next: 1,
            error_status: 502,
            ..Fault::default()
        },
    );
    let before = stack.emulator.calls_to(Route::CreateSandbox).len();
    let opened = stack.sandman.open(&key, Actor::User).await;
    assert!(opened.is_err(), "{opened:?}");
    assert_eq!(
        stack.emulator.calls_to(Route::CreateSandbox).len() - before,
        1,
        "no second rung after an answer that may hide a create"
    );
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Starting),
        "the claim stays for its lease"
    );
    stack.advance(CLAIM_LEASE + Duration::from_secs(1)).await;
    let reopened = stack.sandman.open(&key, Actor::User).await.unwrap();
    assert_eq!(reopened.record.state(), Some(SessionState::Running));
    assert_eq!(live(&stack).len(), 1);
}

// 9e9c62b: the live quota was a count of the `byTeam` index taken in the API handler before the
// claim: parallel opens all saw room, and the heartbeat's wake and the restore did not look at all.
#[tokio::test]
async fn parallel_opens_wakes_and_restores_never_run_more_than_the_quota() {
    const QUOTA: usize = 4;
    let stack = TestStack::start_with(Default::default(), |name| {
        (name == "SANDMAN_MAX_LIVE_SANDBOXES_PER_TEAM").then(|| QUOTA.to_string())
    })
    .await;
    // Two projects paused (a wake starts compute), one with a snapshot to restore.
    let paused: Vec<_> = (0..2).map(|i| stack.key(&format!("paused{i}"))).collect();
    for key in &paused {
        stack.register(&stack.spec(key.project.as_str())).await;
        let record = stack.sandman.open(key, Actor::User).await.unwrap().record;
        if key.project.as_str() == "paused0" {
            stack
                .sandman
                .create_snapshot(&record, SnapshotKind::Manual, "to restore".into())
                .await
                .unwrap();
        }
        stack.sandman.pause_by_user(key).await.unwrap();
    }
    let snapshot = stack.sandman.list_snapshots(&paused[0], None, 10).await.unwrap().items[0]
        .snapshot_id
        .clone();
    let fresh: Vec<_> = (0..12).map(|i| stack.key(&format!("fresh{i}"))).collect();
    for key in &fresh {
        stack.register(&stack.spec(key.project.as_str())).await;
    }
    let mut tasks = Vec::new();
    for key in fresh.clone() {
        let sandman = stack.sandman.clone();
        tasks.push(tokio::spawn(
            async move { sandman.open(&key, Actor::User).await.map(drop) },
        ));
    }
    let (sandman, key) = (stack.sandman.clone(), paused[1].clone());
    tasks.push(tokio::spawn(async move { sandman.activity(&key).await.map(drop) }));
    let (sandman, key, id) = (stack.sandman.clone(), paused[0].clone(), snapshot.clone());
    tasks.push(tokio::spawn(async move {
        sandman.restore(&key, &id, Actor::User).await.map(drop)
    }));
    let (mut done, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => done += 1,
            Err(sandman::Error::QuotaExceeded(_)) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    let running = live(&stack)
        .into_iter()
        .filter(|s| s.state == E2bState::Running)
        .count();
    assert!(
        running <= QUOTA,
        "E2B runs {running} of the team's sandboxes; its quota is {QUOTA}"
    );
    assert_eq!(running, QUOTA, "the quota is used, not undershot");
    assert_eq!(done + refused, 14);
    assert!(refused >= 14 - QUOTA, "{refused} refused");
}

// A team whose count was lost (a deployment from before the count existed, or a fault) runs
// sandboxes the count does not know of: the reconciler recounts it from the sessions, and the
// quota holds again. Without the repair the fourth open below is admitted.
#[tokio::test]
async fn a_lost_live_count_is_recounted_by_the_reconciler_and_the_quota_holds_again() {
    const QUOTA: usize = 3;
    let stack = TestStack::start_with(Default::default(), |name| {
        (name == "SANDMAN_MAX_LIVE_SANDBOXES_PER_TEAM").then(|| QUOTA.to_string())
    })
    .await;
    let keys: Vec<_> = (0..=QUOTA).map(|i| stack.key(&format!("p{i}"))).collect();
    for key in &keys {
        stack.register(&stack.spec(key.project.as_str())).await;
    }
    for key in &keys[..QUOTA] {
        stack.sandman.open(key, Actor::User).await.unwrap();
    }
    let team = keys[0].team.clone();
    stack
        .table
        .client
        .delete_item()
        .table_name(&stack.table.name)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("TEAM#{team}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("LIVE".into()))
        .send()
        .await
        .unwrap();

    let report = stack.sandman.reconcile().await;

    assert_eq!(
        (report.live_checked, report.live_recounted, report.errors),
        (1, 1, 0),
        "{report:?}"
    );
    let count = stack.sandman.store.live_count(&team).await.unwrap();
    assert_eq!(count.live, Some(QUOTA as i64));
    let refused = stack.sandman.open(&keys[QUOTA], Actor::User).await;
    assert!(matches!(refused, Err(sandman::Error::QuotaExceeded(_))), "{refused:?}");
    let running = live(&stack)
        .into_iter()
        .filter(|s| s.state == E2bState::Running)
        .count();
    assert_eq!(running, QUOTA, "E2B runs the quota, no more");
    let again = stack.sandman.reconcile().await;
    assert_eq!((again.live_checked, again.live_recounted), (1, 0), "{again:?}");
}

// 9e9c62b (concurrency review #17): a sandbox adopted after its create's answer was lost was
// recorded with no token, and the session kept the previous sandbox's: a frontend could not reach
// the sandbox until its next resume. The adoption now asks E2B for the sandbox's own.
#[tokio::test]
async fn a_sandbox_adopted_after_a_lost_answer_carries_its_own_envd_token() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    let first = stack.sandman.open(&key, Actor::User).await.unwrap().record;
    let old = sandbox_of(&first);
    stack.sandman.kill(&key, None, Actor::User).await.unwrap();
    stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            applied_then_fail_next: 1,
            error_status: 502,
            ..Fault::default()
        },
    );
    // The create answers 502 though E2B made the sandbox: the open finds it by its claim and adopts it.
    let reopened = stack.sandman.open(&key, Actor::User).await.unwrap().record;

    let adopted = sandbox_of(&reopened);
    assert_ne!(adopted, old);
    assert_eq!(
        live(&stack).len(),
        1,
        "the lost create's sandbox was adopted, not a second one made"
    );
    let in_e2b = stack
        .emulator
        .sandboxes()
        .into_iter()
        .find(|s| s.sandbox_id == adopted)
        .expect("E2B has it")
        .envd_access_token;
    let session = reopened.session.as_ref().expect("a session");
    let token = session
        .sandbox
        .as_ref()
        .and_then(|s| s.access_token.as_ref())
        .map(|t| t.expose().to_owned());
    assert_eq!(
        token.as_deref(),
        Some(in_e2b.as_str()),
        "the adopted sandbox's own token"
    );
}

// 9a3ed73 (the 30-minute soak's `paused-answer`): the table said PAUSED while E2B ran the sandbox
// (resumed behind Sandman's back, as a resume whose answer was lost, or E2B's auto-resume, does),
// and a user's pause answered `already-paused` from the table, leaving it running and billed.
#[tokio::test]
async fn a_pause_of_a_sandbox_e2b_resumed_unseen_pauses_it_in_e2b() {
    let stack = TestStack::start().await;
    let key = stack.key("app");
    stack.register(&stack.spec("app")).await;
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    let sandbox = sandbox_of(&opened.record);
    stack.sandman.pause_by_user(&key).await.expect("paused");
    stack
        .sandman
        .e2b
        .default_account()
        .expect("a default account")
        .connect(&sandbox, Duration::from_secs(300))
        .await
        .expect("E2B resumes it");
    assert_eq!(stack.emulator.sandbox(&sandbox).unwrap().state, E2bState::Running);

    let answer = stack.sandman.pause_by_user(&key).await.expect("a pause");
    assert_eq!(answer, UserPause::Paused, "E2B ran it: this pause paused it");
    assert_eq!(stack.emulator.sandbox(&sandbox).unwrap().state, E2bState::Paused);
    assert_eq!(
        stack.sandman.project(&key).await.unwrap().state(),
        Some(SessionState::Paused)
    );
    let again = stack.sandman.pause_by_user(&key).await.expect("a pause");
    assert_eq!(again, UserPause::AlreadyPaused, "E2B confirms it paused");
}
