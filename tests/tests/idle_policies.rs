//! Busy-aware idle and the session-cap handoff, against DynamoDB Local and the E2B emulator: what
//! the table holds, what the lifecycle log says and what E2B was asked.

#[path = "enforcer_kit/mod.rs"]
mod kit;

use std::time::Duration;

use e2b_emulator::{EmulatorConfig, Route, SandboxState as E2bState};
use kit::{MINUTE, e2b_state, events, pause_calls, record, stack, stack_with, state};
use sandman::domain::{Actor, CapHandoff, IdlePolicy, ProjectKey, SessionState};
use sandman_local::testkit::TestStack;

const HOUR: Duration = Duration::from_secs(3600);

async fn open(stack: &TestStack, project: &str, idle: IdlePolicy) -> (ProjectKey, String) {
    let mut spec = stack.spec(project);
    spec.idle = idle;
    stack.register(&spec).await;
    let opened = stack.sandman.open(&spec.key, Actor::User).await.expect("opens");
    let sandbox = opened
        .record
        .session
        .and_then(|s| s.sandbox)
        .expect("a sandbox")
        .sandbox_id;
    (spec.key, sandbox)
}

fn busy_aware(idle_timeout: Duration, cpu: u8) -> IdlePolicy {
    IdlePolicy {
        idle_timeout,
        busy_cpu_percent: Some(cpu),
        ..IdlePolicy::default()
    }
}

async fn causes(stack: &TestStack, key: &ProjectKey) -> Vec<(String, SessionState)> {
    let mut lines: Vec<_> = events(stack, key).await;
    lines.sort_by_key(|line| line.at);
    lines
        .into_iter()
        .map(|line| (line.cause, line.to.expect("a transition")))
        .collect()
}

#[tokio::test]
async fn a_busy_sandbox_is_not_paused_until_its_cpu_drops() {
    let stack = stack(&[]).await;
    let (busy, sandbox) = open(&stack, "busy", busy_aware(5 * MINUTE, 50)).await;
    let (quiet, quiet_sandbox) = open(&stack, "quiet", busy_aware(5 * MINUTE, 50)).await;
    stack.emulator.set_cpu(&sandbox, Some(80.0));
    stack.advance(6 * MINUTE).await;
    let deferred_at = stack.clock.now();

    let report = stack.sandman.enforce_idle().await;

    assert_eq!(
        (
            report.candidates,
            report.busy_deferred,
            report.paused,
            report.metrics_calls
        ),
        (2, 1, 1, 1),
        "{report:?}"
    );
    assert_eq!(state(&stack, &busy).await, Some(SessionState::Running));
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Running));
    assert_eq!(pause_calls(&stack, &sandbox), 0);
    assert_eq!(
        state(&stack, &quiet).await,
        Some(SessionState::Paused),
        "idle and quiet: paused"
    );
    assert_eq!(e2b_state(&stack, &quiet_sandbox), Some(E2bState::Paused));
    let session = record(&stack, &busy).await.session.expect("session");
    assert_eq!(
        session.idle_at,
        Some(deferred_at + 2 * MINUTE),
        "one step: a quarter of 5 m, at least 2 m"
    );
    assert_eq!(session.busy_since, Some(deferred_at));
    assert!(
        causes(&stack, &busy)
            .await
            .contains(&("deferred: busy (cpu 80%)".into(), SessionState::Running)),
        "the deferral is in the lifecycle log"
    );
    let batch = stack.emulator.calls_to(Route::BatchMetrics);
    assert_eq!(batch.len(), 1, "both candidates in one metrics call");

    stack.emulator.set_cpu(&sandbox, Some(3.0));
    stack.advance(3 * MINUTE).await;
    let report = stack.sandman.enforce_idle().await;

    assert_eq!((report.paused, report.busy_deferred), (1, 0), "{report:?}");
    assert_eq!(state(&stack, &busy).await, Some(SessionState::Paused));
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Paused));
    let session = record(&stack, &busy).await.session.expect("session");
    assert_eq!(session.busy_since, None, "a pause ends the deferral run");
}

#[tokio::test]
async fn busy_for_seconds_holds_the_sandbox_without_a_heartbeat_loop() {
    let stack = stack(&[]).await;
    let idle = IdlePolicy {
        idle_timeout: 5 * MINUTE,
        max_busy_for: 30 * MINUTE,
        ..IdlePolicy::default()
    };
    let (key, sandbox) = open(&stack, "job", idle).await;
    let asked_at = stack.clock.now();

    stack
        .sandman
        .activity_busy(&key, Some(2 * HOUR))
        .await
        .expect("recorded");

    let session = record(&stack, &key).await.session.expect("session");
    assert_eq!(
        session.busy_until,
        Some(asked_at + 30 * MINUTE),
        "capped by maxBusyForSeconds"
    );
    assert_eq!(session.idle_at, Some(asked_at + 30 * MINUTE));
    stack.advance(10 * MINUTE).await;
    assert_eq!(stack.sandman.enforce_idle().await.candidates, 0);
    // A plain heartbeat later never shortens the hold.
    stack.sandman.activity(&key).await.expect("heartbeat");
    let session = record(&stack, &key).await.session.expect("session");
    assert_eq!(session.idle_at, Some(asked_at + 30 * MINUTE));
    stack.advance(15 * MINUTE).await;
    assert_eq!(stack.sandman.enforce_idle().await.candidates, 0, "still held at 25 m");
    assert_eq!(pause_calls(&stack, &sandbox), 0);

    stack.advance(6 * MINUTE).await;
    let report = stack.sandman.enforce_idle().await;

    assert_eq!(report.paused, 1, "{report:?}");
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Paused));
}

#[tokio::test]
async fn busy_deferrals_end_at_their_bound() {
    let stack = stack(&[]).await;
    let idle = IdlePolicy {
        max_busy_deferral: 5 * MINUTE,
        ..busy_aware(5 * MINUTE, 50)
    };
    let (key, sandbox) = open(&stack, "runaway", idle).await;
    stack.emulator.set_cpu(&sandbox, Some(99.0));
    stack.advance(6 * MINUTE).await;

    let mut deferred = 0;
    for _ in 0..3 {
        deferred += stack.sandman.enforce_idle().await.busy_deferred;
        stack.advance(2 * MINUTE).await;
    }
    let report = stack.sandman.enforce_idle().await;

    assert_eq!(deferred, 3, "deferred at 0, 2 and 4 minutes of busy");
    assert_eq!(
        (report.paused, report.busy_deferred, report.metrics_calls),
        (1, 0, 0),
        "{report:?}"
    );
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Paused));
    let lines = causes(&stack, &key).await;
    assert_eq!(
        lines
            .iter()
            .filter(|(cause, _)| cause == "deferred: busy (cpu 99%)")
            .count(),
        3
    );
    assert!(
        lines.contains(&(
            "idle 5m; busy for 5m without activity (the bound)".into(),
            SessionState::Pausing
        )),
        "{lines:?}"
    );
    assert_eq!(stack.emulator.calls_to(Route::BatchMetrics).len(), 3);
}

async fn capped_stack() -> TestStack {
    let emulator = EmulatorConfig {
        session_cap: Some(HOUR),
        ..EmulatorConfig::default()
    };
    stack_with(
        emulator,
        &[("SESSION_CAP_SECS", "3600"), ("SESSION_CAP_MARGIN_SECS", "300")],
    )
    .await
}

/// Heartbeats every 5 minutes for `minutes`, with an enforcer tick after each.
async fn active_for(stack: &TestStack, key: &ProjectKey, minutes: u32) -> u64 {
    let mut handoffs = 0;
    for _ in 0..minutes / 5 {
        stack.advance(5 * MINUTE).await;
        stack.sandman.activity(key).await.expect("heartbeat");
        handoffs += stack.sandman.enforce_idle().await.handoffs;
    }
    handoffs
}

#[tokio::test]
async fn an_active_sandbox_crosses_the_session_cap_without_losing_its_memory() {
    let stack = capped_stack().await;
    let started = stack.clock.now();
    let (key, sandbox) = open(&stack, "agent", IdlePolicy::default()).await;
    stack.emulator.set_cpu(&sandbox, Some(42.0));
    let before = stack.emulator.sandbox(&sandbox).expect("known");
    // Not opened through Sandman: E2B's cap ends it at one hour.
    let control = kit::e2b(&stack)
        .create_sandbox(&sandman::e2b::NewSandbox {
            template_id: "base".into(),
            timeout: 2 * HOUR,
            auto_pause: false,
            metadata: Default::default(),
            env_vars: Default::default(),
            secure: false,
            network: sandman::e2b::SandboxNetwork {
                allow_public_traffic: false,
                rules: Default::default(),
            },
        })
        .await
        .expect("created")
        .sandbox_id;

    let handoffs = active_for(&stack, &key, 55).await;

    assert_eq!(handoffs, 1, "handed off at 55 m (the 1 h cap less the 5 m margin)");
    let after = stack.emulator.sandbox(&sandbox).expect("known");
    assert_eq!(after.state, E2bState::Running);
    assert_eq!(
        (after.created_at, after.kill_reason.clone()),
        (before.created_at, None),
        "the same sandbox, paused and resumed"
    );
    assert_ne!(after.execution_id, before.execution_id, "a new continuous run");
    assert_eq!(after.cpu_used_pct, Some(42.0), "what it was doing is still there");
    let session = record(&stack, &key).await.session.expect("session");
    assert_eq!(session.state, SessionState::Running);
    assert_eq!(session.sandbox.map(|s| s.sandbox_id), Some(sandbox.clone()));
    assert_eq!(session.running_since, Some(started + 55 * MINUTE));
    let lines = causes(&stack, &key).await;
    for to in [SessionState::Pausing, SessionState::Paused, SessionState::Resuming] {
        assert!(
            lines.contains(&("session cap handoff".into(), to)),
            "{to:?} in {lines:?}"
        );
    }

    active_for(&stack, &key, 15).await;

    assert_eq!(
        e2b_state(&stack, &sandbox),
        Some(E2bState::Running),
        "past the first run's cap"
    );
    let control = stack.emulator.sandbox(&control).expect("known");
    assert_eq!(
        (control.state, control.kill_reason.as_deref()),
        (E2bState::Killed, Some("session_cap"))
    );
}

#[tokio::test]
async fn an_idle_sandbox_near_the_cap_is_simply_paused() {
    let stack = capped_stack().await;
    let idle = IdlePolicy {
        idle_timeout: 50 * MINUTE,
        ..IdlePolicy::default()
    };
    let (key, sandbox) = open(&stack, "left-open", idle).await;
    stack.advance(51 * MINUTE).await;

    let report = stack.sandman.enforce_idle().await;

    assert_eq!((report.paused, report.handoffs), (1, 0), "{report:?}");
    assert_eq!(state(&stack, &key).await, Some(SessionState::Paused));
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Paused));
    let lines = causes(&stack, &key).await;
    assert!(lines.contains(&("idle 50m".into(), SessionState::Paused)), "{lines:?}");
    assert!(!lines.iter().any(|(cause, _)| cause == "session cap handoff"));
}

#[tokio::test]
async fn a_snapshot_reopen_handoff_restores_from_the_snapshot_it_took() {
    let stack = capped_stack().await;
    let idle = IdlePolicy {
        cap_handoff: CapHandoff::SnapshotReopen,
        ..IdlePolicy::default()
    };
    let (key, sandbox) = open(&stack, "fresh-start", idle).await;

    let handoffs = active_for(&stack, &key, 55).await;

    assert_eq!(handoffs, 1);
    let session = record(&stack, &key).await.session.expect("session");
    assert_eq!(session.state, SessionState::Running);
    let reopened = session.sandbox.expect("a sandbox").sandbox_id;
    assert_ne!(reopened, sandbox);
    let snapshot = stack
        .emulator
        .snapshots()
        .into_iter()
        .next()
        .expect("a snapshot was taken");
    assert_eq!(
        stack.emulator.sandbox(&reopened).and_then(|s| s.from_snapshot),
        Some(snapshot.template_id)
    );
    assert_eq!(
        stack.emulator.sandbox(&sandbox).and_then(|s| s.kill_reason),
        Some("request".into())
    );
    let lines = causes(&stack, &key).await;
    assert!(
        lines
            .iter()
            .any(|(cause, state)| cause.starts_with("session cap handoff") && *state == SessionState::Stopping),
        "{lines:?}"
    );
}
