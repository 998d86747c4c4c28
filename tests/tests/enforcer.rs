//! The idle enforcer against DynamoDB Local and the E2B emulator: it pauses what is idle, never
//! what is active, and leaves a consistent table whatever E2B answers.

#[path = "enforcer_kit/mod.rs"]
mod kit;

use std::collections::BTreeMap;
use std::time::Duration;

use e2b_emulator::{Fault, Route, SandboxState as E2bState};
use futures::StreamExt;
use kit::fleet::{self, Seed};
use kit::{MINUTE, e2b, e2b_state, event_into, pause_calls, record, running, same_shard, stack, state};
use sandman::domain::{Actor, SessionState, SnapshotKind};

#[tokio::test]
async fn idle_sessions_are_paused_under_their_own_policy_and_active_ones_are_not() {
    let stack = stack(&[]).await;
    let (idle, idle_sandbox) = running(&stack, "idle", 5 * MINUTE, false).await;
    let (patient, patient_sandbox) = running(&stack, "patient", 30 * MINUTE, false).await;
    let (busy, busy_sandbox) = running(&stack, "busy", 5 * MINUTE, false).await;
    stack.clock.advance(10 * MINUTE);
    let now = stack.clock.now();
    assert!(
        stack
            .store()
            .record_activity(&busy, &busy_sandbox, now, now)
            .await
            .unwrap(),
        "the heartbeat is recorded"
    );

    let report = stack.sandman.enforce_idle().await;

    assert_eq!(
        (report.candidates, report.paused, report.failed),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(state(&stack, &idle).await, Some(SessionState::Paused));
    assert_eq!(e2b_state(&stack, &idle_sandbox), Some(E2bState::Paused));
    assert_eq!(state(&stack, &patient).await, Some(SessionState::Running));
    assert_eq!(state(&stack, &busy).await, Some(SessionState::Running));
    assert_eq!(stack.emulator.calls_to(Route::PauseSandbox).len(), 1);
    assert_eq!(
        (
            pause_calls(&stack, &patient_sandbox),
            pause_calls(&stack, &busy_sandbox)
        ),
        (0, 0)
    );
    let claim = event_into(&stack, &idle, Actor::IdleEnforcer, SessionState::Pausing)
        .await
        .expect("the claim is logged");
    assert_eq!(claim.cause, "idle 5m");
    assert!(
        event_into(&stack, &idle, Actor::IdleEnforcer, SessionState::Paused)
            .await
            .is_some()
    );
    // Paused 10 minutes into a 30-minute E2B timeout: 20 minutes E2B would otherwise have billed.
    assert!((report.idle_minutes_saved - 20.0).abs() < 0.01, "{report:?}");

    let again = stack.sandman.enforce_idle().await;
    assert_eq!(
        (again.candidates, again.paused),
        (0, 0),
        "a paused session is no longer a candidate"
    );
}

#[tokio::test]
async fn a_session_touched_between_the_query_and_its_claim_is_not_paused() {
    let stack = stack(&[("ENFORCER_CONCURRENCY", "1")]).await;
    let names = same_shard(&stack, 2);
    let (a, a_sandbox) = running(&stack, &names[0], 5 * MINUTE, false).await;
    let (b, b_sandbox) = running(&stack, &names[1], 5 * MINUTE, false).await;
    stack.clock.advance(10 * MINUTE);
    // One pause at a time, each held for a while: both are read in one page before the first
    // claim, and the second is touched while the first pause is in flight.
    stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            latency: Duration::from_millis(700),
            ..Fault::default()
        },
    );
    let tick = tokio::spawn({
        let sandman = stack.sandman.clone();
        async move { sandman.enforce_idle().await }
    });
    let touched = loop {
        let (sa, sb) = (state(&stack, &a).await, state(&stack, &b).await);
        match (sa, sb) {
            (Some(SessionState::Pausing), _) => break (b.clone(), b_sandbox.clone()),
            (_, Some(SessionState::Pausing)) => break (a.clone(), a_sandbox.clone()),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let now = stack.clock.now();
    let (touched, touched_sandbox) = touched;
    assert!(
        stack
            .store()
            .record_activity(&touched, &touched_sandbox, now, now)
            .await
            .unwrap()
    );
    let report = tick.await.unwrap();

    assert_eq!(
        (report.candidates, report.paused, report.skipped_active),
        (2, 1, 1),
        "{report:?}"
    );
    assert_eq!(state(&stack, &touched).await, Some(SessionState::Running));
    let touched_sandbox = if touched == a { &a_sandbox } else { &b_sandbox };
    assert_eq!(
        pause_calls(&stack, touched_sandbox),
        0,
        "nothing was sent to E2B for the active one"
    );
    assert_eq!(e2b_state(&stack, touched_sandbox), Some(E2bState::Running));
}

#[tokio::test]
async fn server_errors_rate_limits_and_timeouts_leave_it_running_and_the_next_tick_pauses_it() {
    let faults = [
        (
            "500",
            Fault {
                error_rate: 1.0,
                error_status: 500,
                ..Fault::default()
            },
        ),
        (
            "429",
            Fault {
                rate_limit_burst: 1000,
                ..Fault::default()
            },
        ),
        (
            "timeout",
            Fault {
                latency: Duration::from_secs(3),
                ..Fault::default()
            },
        ),
    ];
    for (name, fault) in faults {
        let stack = stack(&[]).await;
        let (key, sandbox) = running(&stack, "app", 5 * MINUTE, false).await;
        stack.clock.advance(10 * MINUTE);
        stack.emulator.set_fault(Route::PauseSandbox, fault);

        let report = stack.sandman.enforce_idle().await;
        assert_eq!((report.paused, report.failed), (0, 1), "{name}: {report:?}");
        let failed = record(&stack, &key).await;
        let session = failed.session.as_ref().unwrap();
        assert_eq!(session.state, SessionState::Running, "{name}");
        assert_eq!(session.failures, 1, "{name}");
        assert!(session.last_error.is_some(), "{name}");
        if name != "timeout" {
            assert!(pause_calls(&stack, &sandbox) >= 1, "{name}: E2B was asked");
        }

        stack.emulator.clear_faults();
        let report = stack.sandman.enforce_idle().await;
        assert_eq!((report.paused, report.failed), (1, 0), "{name}: {report:?}");
        let paused = record(&stack, &key).await;
        let session = paused.session.as_ref().unwrap();
        assert_eq!(
            (session.state, session.failures, session.last_error.as_deref()),
            (SessionState::Paused, 0, None),
            "{name}"
        );
        assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Paused), "{name}");
    }
}

#[tokio::test]
async fn a_sandbox_e2b_no_longer_has_is_recorded_killed() {
    let stack = stack(&[]).await;
    let (key, sandbox) = running(&stack, "app", 5 * MINUTE, false).await;
    e2b(&stack).kill(&sandbox).await.unwrap();
    stack.clock.advance(10 * MINUTE);

    let report = stack.sandman.enforce_idle().await;

    assert_eq!((report.gone, report.paused, report.failed), (1, 0, 0), "{report:?}");
    assert_eq!(state(&stack, &key).await, Some(SessionState::Killed));
    assert!(
        event_into(&stack, &key, Actor::IdleEnforcer, SessionState::Killed)
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_conflict_is_settled_by_asking_e2b() {
    let stack = stack(&[]).await;
    // Paused behind Sandman's back: E2B answers 409 and reports it paused.
    let (already, already_sandbox) = running(&stack, "already", 5 * MINUTE, false).await;
    e2b(&stack).pause(&already_sandbox).await.unwrap();
    stack.clock.advance(10 * MINUTE);
    let report = stack.sandman.enforce_idle().await;
    assert_eq!((report.paused, report.failed), (1, 0), "{report:?}");
    assert_eq!(state(&stack, &already).await, Some(SessionState::Paused));

    // A 409 while E2B still runs it: a failure, retried next tick.
    let (busy, busy_sandbox) = running(&stack, "busy", 5 * MINUTE, false).await;
    stack.clock.advance(10 * MINUTE);
    stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            fail_next: 1,
            error_status: 409,
            ..Fault::default()
        },
    );
    let report = stack.sandman.enforce_idle().await;
    assert_eq!((report.paused, report.failed), (0, 1), "{report:?}");
    assert_eq!(state(&stack, &busy).await, Some(SessionState::Running));
    assert_eq!(e2b_state(&stack, &busy_sandbox), Some(E2bState::Running));
    let report = stack.sandman.enforce_idle().await;
    assert_eq!(report.paused, 1, "{report:?}");
    assert_eq!(state(&stack, &busy).await, Some(SessionState::Paused));
}

#[tokio::test]
async fn repeated_failures_flag_the_session_instead_of_retrying_forever() {
    let stack = stack(&[("ENFORCER_MAX_FAILURES", "2")]).await;
    let (key, sandbox) = running(&stack, "app", 5 * MINUTE, false).await;
    stack.clock.advance(10 * MINUTE);
    stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            error_rate: 1.0,
            error_status: 503,
            ..Fault::default()
        },
    );

    let first = stack.sandman.enforce_idle().await;
    assert_eq!((first.failed, first.flagged), (1, 0), "{first:?}");
    let second = stack.sandman.enforce_idle().await;
    assert_eq!(
        (second.failed, second.flagged),
        (1, 1),
        "the second failure reaches the limit: {second:?}"
    );
    let calls = pause_calls(&stack, &sandbox);

    let third = stack.sandman.enforce_idle().await;
    assert_eq!((third.candidates, third.failed, third.flagged), (1, 0, 1), "{third:?}");
    assert_eq!(pause_calls(&stack, &sandbox), calls, "a flagged session is not retried");
    assert_eq!(
        third.metrics().to_emf(0)["PauseFailures"],
        1.0,
        "it still counts against the alarm"
    );
    let session = record(&stack, &key).await.session.unwrap();
    assert_eq!((session.state, session.failures), (SessionState::Running, 2));
}

#[tokio::test]
async fn two_concurrent_ticks_never_pause_one_sandbox_twice_or_lose_one() {
    let stack = stack(&[("ENFORCER_CONCURRENCY", "4")]).await;
    let mut sessions = Vec::new();
    for i in 0..24 {
        sessions.push(running(&stack, &format!("p{i}"), 5 * MINUTE, false).await);
    }
    stack.clock.advance(10 * MINUTE);
    stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            latency: Duration::from_millis(30),
            ..Fault::default()
        },
    );

    let (one, two) = tokio::join!(stack.sandman.enforce_idle(), stack.sandman.enforce_idle());

    assert_eq!(one.paused + two.paused, 24, "{one:?} {two:?}");
    assert_eq!(one.failed + two.failed, 0);
    for (key, sandbox) in &sessions {
        assert_eq!(pause_calls(&stack, sandbox), 1, "{sandbox} was paused exactly once");
        assert_eq!(state(&stack, key).await, Some(SessionState::Paused), "{key}");
        assert_eq!(e2b_state(&stack, sandbox), Some(E2bState::Paused));
    }
}

#[tokio::test]
async fn the_deadline_stops_claiming_and_leaves_nothing_half_paused() {
    let stack = stack(&[("TICK_DEADLINE_SECS", "1"), ("ENFORCER_CONCURRENCY", "2")]).await;
    let mut sessions = Vec::new();
    for i in 0..10 {
        sessions.push(running(&stack, &format!("p{i}"), 5 * MINUTE, false).await);
    }
    stack.clock.advance(10 * MINUTE);
    stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            latency: Duration::from_millis(400),
            ..Fault::default()
        },
    );

    let report = stack.sandman.enforce_idle().await;

    assert!(report.deadline_reached, "{report:?}");
    let mut paused = 0;
    for (key, sandbox) in &sessions {
        match state(&stack, key).await {
            Some(SessionState::Paused) => paused += 1,
            Some(SessionState::Running) => assert_eq!(
                pause_calls(&stack, sandbox),
                0,
                "an unclaimed session was not sent to E2B"
            ),
            other => panic!("{key} left in {other:?}"),
        }
    }
    assert_eq!(paused, report.paused);
    assert!(paused < 10, "the deadline came before every pause: {report:?}");

    stack.emulator.clear_faults();
    // Later ticks finish the rest; how many it takes depends on the machine's speed, not on Sandman.
    let mut total = paused;
    for _ in 0..20 {
        if total == 10 {
            break;
        }
        let rest = stack.sandman.enforce_idle().await;
        assert_eq!(rest.failed, 0, "{rest:?}");
        total += rest.paused;
    }
    assert_eq!(total, 10, "every session is paused by a later tick");
    for (key, sandbox) in &sessions {
        assert_eq!(state(&stack, key).await, Some(SessionState::Paused), "{key}");
        assert_eq!(
            pause_calls(&stack, sandbox),
            1,
            "{sandbox} was sent to E2B exactly once"
        );
    }
}

#[tokio::test]
async fn snapshot_on_idle_saves_before_pausing() {
    let stack = stack(&[]).await;
    let (key, sandbox) = running(&stack, "app", 2 * MINUTE, true).await;
    stack.clock.advance(3 * MINUTE);

    let report = stack.sandman.enforce_idle().await;

    assert_eq!(report.paused, 1, "{report:?}");
    let snapshots = stack.store().list_snapshots(&key, None, 10).await.unwrap().items;
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].kind, SnapshotKind::AutoBeforePause);
    assert_eq!(snapshots[0].source_sandbox_id, sandbox);
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Paused));
}

#[tokio::test]
async fn the_scheduled_event_fixture_runs_a_tick() {
    let stack = stack(&[]).await;
    let (key, _) = running(&stack, "app", 5 * MINUTE, false).await;
    stack.clock.advance(10 * MINUTE);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scheduled/enforce.json");
    let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();

    let answer = sandman_idle_enforcer::run(&stack.sandman, &event).await.unwrap();

    assert_eq!(answer["task"], "enforce");
    assert_eq!(answer["report"]["paused"], 1);
    assert_eq!(state(&stack, &key).await, Some(SessionState::Paused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tick_pauses_a_thousand_idle_sessions() {
    const FLEET: usize = 1_000;
    // A tick deadline no machine reaches: this asserts the work one tick does, not its speed
    // (`make bench` measures that, with E2B's pause latency).
    let mut stack = stack(&[("TICK_DEADLINE_SECS", "3600")]).await;
    stack.sandman.e2b = fleet::patient_accounts(&stack);
    let prototype = fleet::prototype(&stack).await;
    let sandboxes = fleet::sandboxes(&stack, "idle", FLEET).await;
    let idle_at = stack.clock.now() - MINUTE;
    let seeds = sandboxes.iter().map(|(key, sandbox_id)| Seed {
        key: key.clone(),
        sandbox_id: sandbox_id.clone(),
        idle_at,
    });
    fleet::seed(&stack, &prototype, seeds).await;
    stack.emulator.clear_calls();

    let report = stack.sandman.enforce_idle().await;

    let fleet_size = FLEET as u64;
    assert_eq!(
        (
            report.candidates,
            report.paused,
            report.failed,
            report.gone,
            report.deferred
        ),
        (fleet_size, fleet_size, 0, 0, 0),
        "{report:?}"
    );
    assert!(!report.deadline_reached, "{report:?}");
    let mut asked: BTreeMap<String, usize> = BTreeMap::new();
    for call in stack.emulator.calls_to(Route::PauseSandbox) {
        assert_eq!(call.status, 204, "{call:?}");
        let sandbox = call.path.split('/').nth(2).expect("/sandboxes/{id}/pause").to_string();
        *asked.entry(sandbox).or_default() += 1;
    }
    assert_eq!(asked.len(), FLEET, "E2B was asked to pause every idle sandbox");
    assert!(asked.values().all(|n| *n == 1), "each exactly once");
    assert!(sandboxes.iter().all(|(_, id)| asked.contains_key(id)));
    assert!(
        sandboxes
            .iter()
            .all(|(_, id)| e2b_state(&stack, id) == Some(E2bState::Paused)),
        "E2B holds every sandbox paused"
    );
    let stored: Vec<Option<SessionState>> = futures::stream::iter(&sandboxes)
        .map(|(key, _)| state(&stack, key))
        .buffer_unordered(16)
        .collect()
        .await;
    let paused = stored.iter().filter(|s| **s == Some(SessionState::Paused)).count();
    assert_eq!(paused, FLEET, "the table holds every session PAUSED");
    assert_eq!(
        state(&stack, &stack.key("prototype")).await,
        Some(SessionState::Running),
        "the session that is not idle yet still runs"
    );
}
