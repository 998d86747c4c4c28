//! The reconciler against DynamoDB Local and the E2B emulator: drift in each direction is
//! repaired, stuck sessions are set to what E2B says, orphans are handled per policy.

#[path = "enforcer_kit/mod.rs"]
mod kit;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use e2b_emulator::{EmulatorConfig, Fault, Route, SandboxState as E2bState, TeamAccount};
use kit::{MINUTE, accounts, e2b, e2b_state, event_into, events, record, running, stack, stack_with, state};
use sandman::domain::{Actor, ProjectId, ProjectKey, SessionEvent, SessionState, TeamId};
use sandman::e2b::{E2b, NewSandbox, SandboxNetwork};
use sandman::sandbox_metadata;
use sandman::store::{SessionChanges, SessionWrite};
use sandman::workspace::PauseRequest;
use sandman_local::testkit::TestStack;

const SECOND: Duration = Duration::from_secs(1);

/// Moves both clocks past the orphans' grace. E2B's clock runs on in real time beside the
/// stack's hand-moved one (and counts milliseconds, where the stack's counts whole seconds): the
/// stack's catches up first, so a loaded machine's slow seconds cannot leave a sandbox young.
async fn past_the_grace(stack: &TestStack) {
    stack
        .advance_past_e2b(stack.sandman.config.enforcer.stuck_after + SECOND)
        .await;
}

/// A sandbox created straight in E2B with these metadata, as a lost or foreign one would be.
async fn sandbox_behind_sandmans_back(e2b: &E2b, metadata: BTreeMap<String, String>) -> String {
    let new = NewSandbox {
        template_id: "base".into(),
        timeout: Duration::from_secs(1800),
        auto_pause: true,
        metadata,
        env_vars: BTreeMap::new(),
        secure: true,
        network: SandboxNetwork {
            allow_public_traffic: false,
            rules: Default::default(),
        },
    };
    e2b.create_sandbox(&new).await.expect("sandbox created").sandbox_id
}

/// Moves the session as if a Sandman action had started (or a wrong event arrived) and nothing followed.
async fn force(stack: &TestStack, key: &ProjectKey, event: SessionEvent, changes: SessionChanges) {
    let current = record(stack, key).await;
    let write = SessionWrite::new(&current, Actor::User, "test", stack.clock.now())
        .event(event)
        .changes(changes);
    stack.store().write_session(&write).await.expect("forced write");
}

async fn user_pause(stack: &TestStack, key: &ProjectKey, sandbox: &str) {
    let current = record(stack, key).await;
    let request = PauseRequest {
        key: key.clone(),
        expected_version: current.version,
        sandbox_id: sandbox.to_string(),
        actor: Actor::User,
        cause: "user".into(),
        idle_by: None,
        snapshot_first: false,
    };
    stack.sandman.pause(request).await.expect("paused");
}

#[tokio::test]
async fn running_sessions_that_e2b_paused_or_lost_are_corrected() {
    let stack = stack(&[]).await;
    let (paused, paused_sandbox) = running(&stack, "paused", 5 * MINUTE, false).await;
    let (lost, lost_sandbox) = running(&stack, "lost", 5 * MINUTE, false).await;
    let (fine, fine_sandbox) = running(&stack, "fine", 5 * MINUTE, false).await;
    e2b(&stack).pause(&paused_sandbox).await.unwrap();
    e2b(&stack).kill(&lost_sandbox).await.unwrap();
    stack.emulator.clear_calls();

    let report = stack.sandman.reconcile().await;

    assert_eq!(
        (report.drift_paused, report.drift_killed, report.errors),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(state(&stack, &paused).await, Some(SessionState::Paused));
    assert_eq!(state(&stack, &lost).await, Some(SessionState::Killed));
    assert_eq!(state(&stack, &fine).await, Some(SessionState::Running));
    let line = event_into(&stack, &paused, Actor::Reconciler, SessionState::Paused)
        .await
        .expect("logged");
    assert!(line.cause.starts_with("reconciled: "), "{}", line.cause);
    assert!(
        event_into(&stack, &lost, Actor::Reconciler, SessionState::Killed)
            .await
            .is_some()
    );
    assert_eq!(e2b_state(&stack, &fine_sandbox), Some(E2bState::Running));
    let asked: Vec<_> = stack.emulator.calls_to(Route::GetSandbox);
    assert!(
        asked.iter().all(|call| !call.path.contains(&fine_sandbox)),
        "agreement costs no E2B call per sandbox"
    );
    assert!(
        stack.emulator.calls_to(Route::PauseSandbox).is_empty()
            && stack.emulator.calls_to(Route::KillSandbox).is_empty()
    );
}

#[tokio::test]
async fn a_sandbox_e2b_runs_while_the_table_says_paused_is_marked_running_then_paused_when_idle() {
    let stack = stack(&[]).await;
    let (key, sandbox) = running(&stack, "app", 5 * MINUTE, false).await;
    user_pause(&stack, &key, &sandbox).await;
    e2b(&stack).connect(&sandbox, Duration::from_secs(1800)).await.unwrap();

    let report = stack.sandman.reconcile().await;

    assert_eq!(report.drift_running, 1, "{report:?}");
    assert_eq!(state(&stack, &key).await, Some(SessionState::Running));
    assert!(
        event_into(&stack, &key, Actor::Reconciler, SessionState::Running)
            .await
            .is_some()
    );
    stack.clock.advance(10 * MINUTE);
    let tick = stack.sandman.enforce_idle().await;
    assert_eq!(tick.paused, 1, "{tick:?}");
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Paused));
}

#[tokio::test]
async fn orphans_are_killed_once_settled_and_foreign_sandboxes_are_left_alone() {
    let stack = stack(&[]).await;
    let e2b = e2b(&stack);
    let ghost = sandbox_behind_sandmans_back(&e2b, sandbox_metadata::for_session(&stack.key("ghost"), "s1")).await;
    let (app, current) = running(&stack, "app", 5 * MINUTE, false).await;
    let stale = sandbox_behind_sandmans_back(&e2b, sandbox_metadata::for_session(&app, "older-session")).await;
    let (dead, dead_sandbox) = running(&stack, "dead", 5 * MINUTE, false).await;
    force(&stack, &dead, SessionEvent::Killed, SessionChanges::default()).await;
    let foreign = sandbox_behind_sandmans_back(&e2b, BTreeMap::from([("user".into(), "x".into())])).await;

    // Young ones may still be a claim's, not yet recorded: left for a later run.
    let young = stack.sandman.reconcile().await;
    assert_eq!((young.orphans(), young.errors), (0, 0), "{young:?}");
    assert_eq!(e2b_state(&stack, &ghost), Some(E2bState::Running));

    past_the_grace(&stack).await;
    let report = stack.sandman.reconcile().await;

    assert_eq!((report.orphans_killed, report.errors), (3, 0), "{report:?}");
    for orphan in [&ghost, &stale, &dead_sandbox] {
        assert_eq!(e2b_state(&stack, orphan), Some(E2bState::Killed), "{orphan}");
    }
    assert_eq!(e2b_state(&stack, &current), Some(E2bState::Running));
    assert_eq!(e2b_state(&stack, &foreign), Some(E2bState::Running));
    assert_eq!(state(&stack, &app).await, Some(SessionState::Running));
    assert_eq!(state(&stack, &dead).await, Some(SessionState::Killed));

    let again = stack.sandman.reconcile().await;
    assert_eq!(again.orphans(), 0, "nothing more to do: {again:?}");
}

#[tokio::test]
async fn the_kill_policy_kills_orphans_and_the_report_policy_only_counts_them() {
    let stack = stack(&[("ORPHAN_POLICY", "kill")]).await;
    let e2b = e2b(&stack);
    let running_ghost = sandbox_behind_sandmans_back(&e2b, sandbox_metadata::for_session(&stack.key("a"), "s")).await;
    let paused_ghost = sandbox_behind_sandmans_back(&e2b, sandbox_metadata::for_session(&stack.key("b"), "s")).await;
    e2b.pause(&paused_ghost).await.unwrap();
    past_the_grace(&stack).await;
    let report = stack.sandman.reconcile().await;
    assert_eq!(report.orphans_killed, 2, "{report:?}");
    assert_eq!(e2b_state(&stack, &running_ghost), Some(E2bState::Killed));
    assert_eq!(e2b_state(&stack, &paused_ghost), Some(E2bState::Killed));

    let stack = kit::stack(&[("ORPHAN_POLICY", "report")]).await;
    let ghost =
        sandbox_behind_sandmans_back(&kit::e2b(&stack), sandbox_metadata::for_session(&stack.key("a"), "s")).await;
    let report = stack.sandman.reconcile().await;
    assert_eq!(report.orphans_reported, 1, "{report:?}");
    assert_eq!(e2b_state(&stack, &ghost), Some(E2bState::Running));
}

#[tokio::test]
async fn stuck_sessions_are_set_to_what_e2b_says() {
    let stack = stack(&[]).await;
    let e2b = e2b(&stack);
    // PAUSING, and E2B did pause it.
    let (pausing, pausing_sandbox) = running(&stack, "pausing", 5 * MINUTE, false).await;
    force(&stack, &pausing, SessionEvent::Pause, SessionChanges::default()).await;
    e2b.pause(&pausing_sandbox).await.unwrap();
    // RESUMING, and E2B did resume it.
    let (resuming, resuming_sandbox) = running(&stack, "resuming", 5 * MINUTE, false).await;
    user_pause(&stack, &resuming, &resuming_sandbox).await;
    force(&stack, &resuming, SessionEvent::Resume, SessionChanges::default()).await;
    e2b.connect(&resuming_sandbox, Duration::from_secs(1800)).await.unwrap();
    // STARTING: E2B created the sandbox, whose metadata names the session; the answer was lost.
    let adopt = stack.key("adopt");
    stack.register(&stack.spec("adopt")).await;
    let start = SessionChanges {
        session_id: Some("s-adopt".into()),
        ..SessionChanges::default()
    };
    force(&stack, &adopt, SessionEvent::Start, start).await;
    let adopted = sandbox_behind_sandmans_back(&e2b, sandbox_metadata::for_session(&adopt, "s-adopt")).await;
    // STARTING, and nothing was created.
    let never = stack.key("never");
    stack.register(&stack.spec("never")).await;
    let start = SessionChanges {
        session_id: Some("s-never".into()),
        ..SessionChanges::default()
    };
    force(&stack, &never, SessionEvent::Start, start).await;
    // STOPPING, and the kill never reached E2B: rolled back, not completed.
    let (stopping, stopping_sandbox) = running(&stack, "stopping", 5 * MINUTE, false).await;
    force(&stack, &stopping, SessionEvent::Stop, SessionChanges::default()).await;

    stack.clock.advance(6 * MINUTE);
    // Mid-action for a moment only: not stuck.
    let (young, _) = running(&stack, "young", 5 * MINUTE, false).await;
    force(&stack, &young, SessionEvent::Pause, SessionChanges::default()).await;

    let report = stack.sandman.reconcile().await;

    assert_eq!(
        (report.stuck, report.stuck_repaired, report.errors),
        (5, 5, 0),
        "{report:?}"
    );
    assert_eq!(state(&stack, &pausing).await, Some(SessionState::Paused));
    assert_eq!(state(&stack, &resuming).await, Some(SessionState::Running));
    let adopted_record = record(&stack, &adopt).await;
    let session = adopted_record.session.unwrap();
    assert_eq!(session.state, SessionState::Running);
    assert_eq!(session.sandbox.map(|s| s.sandbox_id), Some(adopted));
    assert_eq!(state(&stack, &never).await, Some(SessionState::Killed));
    assert_eq!(state(&stack, &stopping).await, Some(SessionState::Running));
    assert_eq!(e2b_state(&stack, &stopping_sandbox), Some(E2bState::Running));
    assert_eq!(state(&stack, &young).await, Some(SessionState::Pausing));
    for key in [&pausing, &resuming, &adopt, &never, &stopping] {
        let lines = events(&stack, key).await;
        let line = lines.iter().find(|l| l.actor == Actor::Reconciler).expect("logged");
        assert!(line.cause.starts_with("reconciled: "), "{}", line.cause);
    }
}

#[tokio::test]
async fn two_runs_at_once_apply_each_correction_once() {
    let stack = stack(&[]).await;
    let (key, sandbox) = running(&stack, "app", 5 * MINUTE, false).await;
    e2b(&stack).pause(&sandbox).await.unwrap();

    let (one, two) = tokio::join!(stack.sandman.reconcile(), stack.sandman.reconcile());

    assert_eq!(one.drift_paused + two.drift_paused, 1, "{one:?} {two:?}");
    assert_eq!(state(&stack, &key).await, Some(SessionState::Paused));
    let corrections = events(&stack, &key)
        .await
        .into_iter()
        .filter(|l| l.actor == Actor::Reconciler)
        .count();
    assert_eq!(corrections, 1);
}

#[tokio::test]
async fn an_account_that_cannot_be_listed_is_left_alone() {
    let stack = stack(&[]).await;
    let (key, sandbox) = running(&stack, "app", 5 * MINUTE, false).await;
    e2b(&stack).kill(&sandbox).await.unwrap();
    stack.emulator.set_fault(
        Route::ListSandboxes,
        Fault {
            error_rate: 1.0,
            error_status: 500,
            ..Fault::default()
        },
    );

    let report = stack.sandman.reconcile().await;

    assert_eq!((report.accounts_unlisted, report.repaired()), (1, 0), "{report:?}");
    assert_eq!(state(&stack, &key).await, Some(SessionState::Running));

    stack.emulator.clear_faults();
    let report = stack.sandman.reconcile().await;
    assert_eq!(report.drift_killed, 1, "{report:?}");
}

#[tokio::test]
async fn every_team_account_is_reconciled() {
    let emulator = EmulatorConfig {
        teams: vec![
            TeamAccount::new("team-local", "key-local"),
            TeamAccount::new("team-b", "key-b"),
        ],
        ..EmulatorConfig::default()
    };
    let mut stack = stack_with(emulator, &[]).await;
    stack.sandman.e2b = accounts(&stack, HashMap::from([("team-b".into(), "key-b".into())]));
    let team_b = stack.sandman.e2b.for_team("team-b").unwrap();
    let key = ProjectKey::new(TeamId::parse("team-b").unwrap(), ProjectId::parse("app").unwrap());
    let spec = sandman::domain::ProjectSpec {
        key: key.clone(),
        ..stack.spec("app")
    };
    stack.register(&spec).await;
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    let sandbox = opened.record.session.unwrap().sandbox.unwrap().sandbox_id;
    assert_eq!(
        stack.emulator.sandbox(&sandbox).map(|s| s.team_id),
        Some("team-b".into())
    );
    team_b.pause(&sandbox).await.unwrap();
    let ghost = sandbox_behind_sandmans_back(
        &team_b,
        sandbox_metadata::for_session(
            &ProjectKey::new(key.team.clone(), ProjectId::parse("ghost").unwrap()),
            "s",
        ),
    )
    .await;

    past_the_grace(&stack).await;
    let report = stack.sandman.reconcile().await;

    assert_eq!((report.drift_paused, report.orphans_killed), (1, 1), "{report:?}");
    assert_eq!(state(&stack, &key).await, Some(SessionState::Paused));
    assert_eq!(e2b_state(&stack, &ghost), Some(E2bState::Killed));
    let listed_by: BTreeSet<_> = stack
        .emulator
        .calls_to(Route::ListSandboxes)
        .into_iter()
        .filter_map(|call| call.team_id)
        .collect();
    assert_eq!(listed_by, BTreeSet::from(["team-b".into(), "team-local".into()]));
}

#[tokio::test]
async fn the_reconcile_input_runs_a_reconciliation() {
    let stack = stack(&[]).await;
    let (key, sandbox) = running(&stack, "app", 5 * MINUTE, false).await;
    e2b(&stack).kill(&sandbox).await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scheduled/reconcile.json");
    let input: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();

    let answer = sandman_idle_enforcer::run(&stack.sandman, &input).await.unwrap();

    assert_eq!(answer["task"], "reconcile");
    assert_eq!(answer["report"]["driftKilled"], 1);
    assert_eq!(state(&stack, &key).await, Some(SessionState::Killed));
}

/// Security review L5: one account with many sandboxes must not take every run. A team's own
/// account is listed by its team's metadata (its other sandboxes cost nothing), and an account
/// with more pages than a run reads is reconciled in part while the others are reconciled whole.
#[tokio::test]
async fn a_team_account_is_listed_by_its_metadata_and_a_crowded_one_in_part() {
    let emulator = EmulatorConfig {
        teams: vec![
            TeamAccount::new("team-local", "key-local"),
            TeamAccount::new("team-b", "key-b"),
        ],
        ..EmulatorConfig::default()
    };
    let mut stack = stack_with(emulator, &[("RECONCILE_MAX_LIST_PAGES", "1")]).await;
    stack.sandman.e2b = accounts(&stack, HashMap::from([("team-b".into(), "key-b".into())]));
    let team_b = stack.sandman.e2b.for_team("team-b").unwrap();
    let key = ProjectKey::new(TeamId::parse("team-b").unwrap(), ProjectId::parse("app").unwrap());
    let spec = sandman::domain::ProjectSpec {
        key: key.clone(),
        ..stack.spec("app")
    };
    stack.register(&spec).await;
    let opened = stack.sandman.open(&key, Actor::User).await.unwrap();
    let sandbox = opened.record.session.unwrap().sandbox.unwrap().sandbox_id;
    team_b.pause(&sandbox).await.unwrap();
    // Team B's account also holds 150 sandboxes that are not Sandman's; the default account holds
    // 120 of Sandman's, more than one page.
    for _ in 0..150 {
        sandbox_behind_sandmans_back(&team_b, BTreeMap::from([("user".into(), "x".into())])).await;
    }
    let default = e2b(&stack);
    for i in 0..120 {
        let ghost = ProjectKey::new(stack.key("app").team, ProjectId::parse(format!("ghost-{i}")).unwrap());
        sandbox_behind_sandmans_back(&default, sandbox_metadata::for_session(&ghost, "s")).await;
    }
    stack.emulator.clear_calls();

    let report = stack.sandman.reconcile().await;

    assert_eq!(
        (
            report.accounts_listed,
            report.accounts_partial,
            report.drift_paused,
            report.errors
        ),
        (2, 1, 1, 0),
        "{report:?}"
    );
    assert_eq!(state(&stack, &key).await, Some(SessionState::Paused));
    let lists = stack.emulator.calls_to(Route::ListSandboxes);
    let of = |team: &str| {
        lists
            .iter()
            .filter(|c| c.team_id.as_deref() == Some(team))
            .collect::<Vec<_>>()
    };
    assert_eq!(of("team-b").len(), 1, "one page: only Sandman's sandboxes of team B");
    assert!(
        of("team-b")
            .iter()
            .all(|c| c.query.as_deref().is_some_and(|q| q.contains("sandmanTeam"))),
        "{:?}",
        of("team-b")
    );
    assert_eq!(
        of("team-local").len(),
        1,
        "the crowded account: one page, as configured"
    );
}
