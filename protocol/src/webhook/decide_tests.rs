use std::collections::BTreeMap;
use std::time::Duration;

use time::macros::datetime;

use super::*;
use crate::domain::{CLAIM_LEASE, IdlePolicy, Project, ProjectId, ProjectKey, RetentionPolicy, TeamId, Usage};
use crate::webhook::event::Execution;

const T0: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);
const RULES: Rules = Rules {
    stuck_after: Duration::from_secs(300),
};

fn key() -> ProjectKey {
    ProjectKey::new(TeamId::parse("team-a").unwrap(), ProjectId::parse("p1").unwrap())
}

fn record(state: SessionState, since: OffsetDateTime) -> ProjectRecord {
    let project = Project {
        inactivity: Default::default(),
        fork_of: None,
        team_id: key().team,
        project_id: key().project,
        template_id: "base".into(),
        idle: IdlePolicy::default(),
        retention: RetentionPolicy::default(),
        sandbox_timeout: Duration::from_secs(900),
        snapshot_before_kill: false,
        public_traffic: false,
        idle_gaps: Default::default(),
        created_at: T0,
        updated_at: T0,
    };
    let session = Session {
        session_id: "s1".into(),
        sandbox: Some(SandboxRef {
            sandbox_id: "sbx-1".into(),
            domain: Some("e2b.app".into()),
            access_token: None,
        }),
        state,
        state_since: since,
        lease_until: None,
        last_active_at: since,
        idle_at: None,
        running_since: None,
        busy_since: None,
        busy_until: None,
        timeout_at: Some(T0 + Duration::from_secs(900)),
        paused_at: None,
        last_actor: Actor::User,
        last_cause: "open".into(),
        last_error: None,
        failures: 0,
        restored_from: None,
        replaces_session: None,
        retiring: None,
        last_event_at: None,
        usage: Usage::default(),
        settings_version: None,
    };
    ProjectRecord {
        project,
        session: Some(session),
        version: 7,
        settings_version: 0,
        prune_marks: 0,
    }
}

fn event(kind: EventKind, at: OffsetDateTime) -> LifecycleEvent {
    LifecycleEvent {
        e2b_team_id: None,
        id: Some("e1".into()),
        kind,
        type_name: format!("sandbox.lifecycle.{kind:?}").to_lowercase(),
        timestamp: at,
        sandbox_id: "sbx-1".into(),
        execution_id: Some("x1".into()),
        metadata: crate::domain::metadata::for_session(&key(), "s1"),
        execution: None,
        kill_reason: None,
        set_timeout: None,
    }
}

fn with_execution(mut event: LifecycleEvent, ms: f64) -> LifecycleEvent {
    event.execution = Some(Execution {
        vcpu_count: 2.0,
        memory_mb: 1024.0,
        execution_time: ms,
    });
    event
}

fn write(decision: Decision) -> SessionWrite {
    match decision {
        Decision::Write(write) => *write,
        Decision::Ignore(reason) => panic!("expected a write, got Ignore({reason:?})"),
    }
}

fn ignored(decision: Decision) -> Ignored {
    match decision {
        Decision::Ignore(reason) => reason,
        Decision::Write(write) => panic!("expected no write, got {write:?}"),
    }
}

fn later(secs: u64) -> OffsetDateTime {
    T0 + Duration::from_secs(secs)
}

#[test]
fn paused_moves_a_running_session_and_counts_its_compute_once() {
    let running = record(SessionState::Running, T0);
    let w = write(decide(
        &running,
        &with_execution(event(EventKind::Paused, later(60)), 60_000.0),
        "e1",
        later(61),
        &RULES,
    ));
    assert_eq!(w.event, Some(SessionEvent::Paused));
    assert_eq!(
        (w.expected_version, w.from, w.actor),
        (7, Some(SessionState::Running), Actor::Webhook)
    );
    assert_eq!(w.cause, "e2b: paused");
    assert_eq!(w.at, later(60), "the state began when E2B says it did");
    let usage = with_execution(event(EventKind::Paused, later(60)), 60_000.0).usage();
    assert_eq!(
        usage,
        Some(Usage {
            run_seconds: 60.0,
            vcpu_seconds: 120.0,
            memory_mb_seconds: 61_440.0
        }),
        "counted apart from the write, once per execution"
    );
    assert_eq!(w.changes.event_at, Some(later(60)));
    let dedupe = w.dedupe.expect("dedupe mark");
    assert_eq!((dedupe.id.as_str(), dedupe.expires_at), ("e1", later(61) + DEDUPE_FOR));
}

#[test]
fn the_late_report_of_a_pause_already_undone_is_stale_even_with_a_later_time() {
    // Paused at T0 by Sandman, resumed at T0 + 1 s; E2B's clock runs 9 s ahead.
    let mut running = record(SessionState::Running, later(1));
    running.session.as_mut().unwrap().paused_at = Some(T0);
    let decision = decide(&running, &event(EventKind::Paused, later(9)), "e1", later(10), &RULES);
    match decision {
        Decision::Ignore(Ignored::Stale) => {}
        Decision::Write(w) => assert_eq!(w.event, None, "moves nothing: {w:?}"),
        other => panic!("{other:?}"),
    }

    // E2B's own pause at its timeout, later on, still counts.
    let w = write(decide(
        &running,
        &event(EventKind::Paused, later(900)),
        "e2",
        later(901),
        &RULES,
    ));
    assert_eq!(w.event, Some(SessionEvent::Paused));
}

#[test]
fn a_new_pause_soon_after_a_resume_e2b_reported_is_applied() {
    // Paused at T0 + 2 s and resumed at T0 + 3 s, both as E2B reported them; paused again at + 4 s.
    let mut running = record(SessionState::Running, later(3));
    let session = running.session.as_mut().unwrap();
    session.paused_at = Some(later(2));
    session.last_actor = Actor::Webhook;
    session.last_event_at = Some(later(3));
    let w = write(decide(
        &running,
        &event(EventKind::Paused, later(4)),
        "e1",
        later(5),
        &RULES,
    ));
    assert_eq!(w.event, Some(SessionEvent::Paused));
}

#[test]
fn a_pause_at_the_e2b_timeout_says_so() {
    let running = record(SessionState::Running, T0);
    let w = write(decide(
        &running,
        &event(EventKind::Paused, later(900)),
        "e1",
        later(901),
        &RULES,
    ));
    assert_eq!(w.cause, "e2b: paused (timeout)");
}

#[test]
fn already_paused_records_the_event_time_without_a_transition() {
    let paused = record(SessionState::Paused, T0);
    let w = write(decide(
        &paused,
        &with_execution(event(EventKind::Paused, later(5)), 1000.0),
        "e1",
        later(6),
        &RULES,
    ));
    assert_eq!(w.event, None);
    assert_eq!(w.changes.event_at, Some(later(5)));
    assert!(w.dedupe.is_some());
}

#[test]
fn a_report_that_moves_nothing_still_records_its_time_once() {
    let mut paused = record(SessionState::Paused, T0);
    let w = write(decide(
        &paused,
        &event(EventKind::Paused, later(5)),
        "e1",
        later(6),
        &RULES,
    ));
    assert_eq!((w.event, w.changes.event_at), (None, Some(later(5))));
    paused.session.as_mut().unwrap().last_event_at = Some(later(5));
    assert_eq!(
        ignored(decide(
            &paused,
            &event(EventKind::Paused, later(5)),
            "e1",
            later(6),
            &RULES
        )),
        Ignored::NoChange,
        "a redelivery"
    );
}

#[test]
fn a_late_paused_after_resumed_moves_nothing() {
    let mut resumed = record(SessionState::Running, later(20));
    resumed.session.as_mut().unwrap().last_event_at = Some(later(20));
    let late = with_execution(event(EventKind::Paused, later(10)), 10_000.0);
    assert_eq!(
        ignored(decide(&resumed, &late, "e1", later(30), &RULES)),
        Ignored::Stale,
        "must not undo the resume (its compute is counted apart)"
    );
    assert_eq!(
        ignored(decide(
            &resumed,
            &event(EventKind::Paused, later(10)),
            "e1",
            later(30),
            &RULES
        )),
        Ignored::Stale
    );
}

#[test]
fn events_older_than_the_current_state_are_stale() {
    let paused = record(SessionState::Paused, later(20));
    assert_eq!(
        ignored(decide(
            &paused,
            &event(EventKind::Resumed, later(19)),
            "e1",
            later(30),
            &RULES
        )),
        Ignored::Stale
    );
    let w = write(decide(
        &paused,
        &event(EventKind::Resumed, later(20)),
        "e1",
        later(30),
        &RULES,
    ));
    assert_eq!(w.event, Some(SessionEvent::Running), "same instant is not older");
}

#[test]
fn resumed_elsewhere_runs_the_session_and_restarts_its_idle_clock() {
    let paused = record(SessionState::Paused, T0);
    let w = write(decide(
        &paused,
        &event(EventKind::Resumed, later(40)),
        "e1",
        later(41),
        &RULES,
    ));
    assert_eq!(w.event, Some(SessionEvent::Running));
    assert_eq!(w.changes.last_active_at, Some(later(40)));
    assert_eq!(w.changes.sandbox, None, "the sandbox (and its domain) stays as stored");
    let running = write(decide(
        &record(SessionState::Running, T0),
        &event(EventKind::Resumed, later(40)),
        "e1",
        later(41),
        &RULES,
    ));
    assert_eq!(
        (running.event, running.changes.last_active_at),
        (None, None),
        "already running: only the time is kept"
    );
}

#[test]
fn killed_ends_any_live_session_with_its_reason() {
    for state in [
        SessionState::Running,
        SessionState::Paused,
        SessionState::Pausing,
        SessionState::Stopping,
    ] {
        let mut killed = with_execution(event(EventKind::Killed, later(50)), 5000.0);
        killed.kill_reason = Some("timeout\nsecond line".into());
        let w = write(decide(&record(state, T0), &killed, "e1", later(51), &RULES));
        assert_eq!(w.event, Some(SessionEvent::Killed), "{state:?}");
        assert_eq!(w.cause, "e2b: killed (timeoutsecond line)");
    }
    let dead = record(SessionState::Killed, T0);
    assert_eq!(
        ignored(decide(
            &dead,
            &event(EventKind::Killed, later(50)),
            "e1",
            later(51),
            &RULES
        )),
        Ignored::NoChange
    );
}

#[test]
fn created_confirms_unless_the_start_was_abandoned() {
    let mut starting = record(SessionState::Starting, T0);
    starting.session.as_mut().unwrap().sandbox = Some(SandboxRef {
        sandbox_id: "sbx-previous".into(),
        domain: None,
        access_token: None,
    });
    let created = event(EventKind::Created, later(1));
    assert_eq!(
        ignored(decide(&starting, &created, "e1", later(2), &RULES)),
        Ignored::NoChange,
        "the API writes RUNNING itself"
    );
    let w = write(decide(&starting, &created, "e1", later(300), &RULES));
    assert_eq!(w.event, Some(SessionEvent::Running));
    assert_eq!(
        w.changes.sandbox,
        Some(SandboxRef {
            sandbox_id: "sbx-1".into(),
            domain: None,
            access_token: None,
        })
    );
    assert_eq!(w.changes.last_active_at, Some(later(1)));
    assert_eq!(
        ignored(decide(
            &record(SessionState::Running, T0),
            &created,
            "e1",
            later(300),
            &RULES
        )),
        Ignored::NoChange
    );
}

#[test]
fn while_starting_only_the_new_sessions_sandbox_counts() {
    let mut starting = record(SessionState::Starting, T0);
    starting.session.as_mut().unwrap().session_id = "s2".into();
    let mut about_previous = event(EventKind::Killed, later(1));
    about_previous.metadata.clear();
    assert_eq!(
        ignored(decide(&starting, &about_previous, "e1", later(2), &RULES)),
        Ignored::OlderSandbox,
        "no metadata: the stored id is the old one"
    );
    let mut about_new = event(EventKind::Killed, later(1));
    about_new.sandbox_id = "sbx-2".into();
    about_new.metadata = crate::domain::metadata::for_session(&key(), "s2");
    let w = write(decide(&starting, &about_new, "e1", later(2), &RULES));
    assert_eq!(
        w.event, None,
        "while the claim's lease runs, its claimant records the outcome"
    );
    assert_eq!(w.changes.event_at, Some(later(1)), "remembered for ordering");
    let lapsed = later(1) + CLAIM_LEASE;
    let w = write(decide(&starting, &about_new, "e1", lapsed, &RULES));
    assert_eq!(
        w.event,
        Some(SessionEvent::Killed),
        "a lapsed claim takes E2B's reports"
    );
    assert_eq!(w.changes.sandbox.map(|s| s.sandbox_id).as_deref(), Some("sbx-2"));
}

#[test]
fn events_about_an_older_sandbox_change_nothing() {
    let running = record(SessionState::Running, T0);
    let mut other_session = with_execution(event(EventKind::Killed, later(5)), 1000.0);
    other_session.metadata = crate::domain::metadata::for_session(&key(), "s0");
    assert_eq!(
        ignored(decide(&running, &other_session, "e1", later(6), &RULES)),
        Ignored::OlderSandbox
    );
    let mut other_sandbox = event(EventKind::Paused, later(5));
    other_sandbox.sandbox_id = "sbx-0".into();
    other_sandbox.metadata = BTreeMap::new();
    assert_eq!(
        ignored(decide(&running, &other_sandbox, "e1", later(6), &RULES)),
        Ignored::OlderSandbox
    );
    let mut never = record(SessionState::Running, T0);
    never.session = None;
    assert_eq!(
        ignored(decide(
            &never,
            &event(EventKind::Paused, later(5)),
            "e1",
            later(6),
            &RULES
        )),
        Ignored::NoSession
    );
}

#[test]
fn updated_refreshes_the_timeout_unless_it_is_sandmans_own_echo() {
    let running = record(SessionState::Running, T0);
    let mut updated = event(EventKind::Updated, later(100));
    updated.set_timeout = Some(later(2000));
    let w = write(decide(&running, &updated, "e1", later(101), &RULES));
    assert_eq!(
        (w.event, w.changes.timeout_at, w.cause.as_str()),
        (None, Some(later(2000)), "e2b: updated")
    );
    updated.set_timeout = Some(later(902));
    assert_eq!(
        ignored(decide(&running, &updated, "e1", later(101), &RULES)),
        Ignored::NoChange
    );
}

#[test]
fn reports_the_state_machine_refuses_are_dropped() {
    let stopping = record(SessionState::Stopping, T0);
    let w = write(decide(
        &stopping,
        &with_execution(event(EventKind::Paused, later(5)), 2000.0),
        "e1",
        later(6),
        &RULES,
    ));
    assert_eq!(w.event, None, "STOPPING + PAUSED is illegal");
    let killed = record(SessionState::Killed, T0);
    assert_eq!(
        ignored(decide(
            &killed,
            &event(EventKind::Resumed, later(5)),
            "e1",
            later(6),
            &RULES
        )),
        Ignored::NoChange
    );
}

#[test]
fn checkpointed_and_unknown_types_are_acknowledged() {
    let running = record(SessionState::Running, T0);
    for kind in [EventKind::Checkpointed, EventKind::Other] {
        assert_eq!(
            ignored(decide(&running, &event(kind, later(5)), "e1", later(6), &RULES)),
            Ignored::NoChange
        );
    }
}

#[test]
fn a_live_forks_sandbox_names_its_source_and_counts_for_the_project_holding_it() {
    // The fork project holds sbx-1; E2B copied the source's metadata (project "source", its session).
    let fork = record(SessionState::Running, T0);
    let source = ProjectKey::new(TeamId::parse("team-a").unwrap(), ProjectId::parse("source").unwrap());
    let mut paused = event(EventKind::Paused, later(5));
    paused.metadata = crate::domain::metadata::for_session(&source, "source-session");
    let w = write(decide(&fork, &paused, "e1", later(6), &RULES));
    assert_eq!(w.key, key());
    assert_eq!(w.event, Some(SessionEvent::Paused));

    let mut elsewhere = paused.clone();
    elsewhere.sandbox_id = "sbx-9".into();
    assert_eq!(
        ignored(decide(&fork, &elsewhere, "e2", later(6), &RULES)),
        Ignored::OlderSandbox,
        "another sandbox of the source's lineage is not the fork's"
    );
    let mut starting = record(SessionState::Starting, T0);
    starting.session.as_mut().unwrap().session_id = "s2".into();
    assert_eq!(
        ignored(decide(&starting, &paused, "e3", later(6), &RULES)),
        Ignored::OlderSandbox,
        "while starting, only the session's own metadata counts"
    );
}

#[test]
fn a_late_kill_ends_a_settled_session_but_not_a_claim_that_still_names_the_old_sandbox() {
    let killed = event(EventKind::Killed, later(19));
    let paused = record(SessionState::Paused, later(20));
    let w = write(decide(&paused, &killed, "e1", later(100), &RULES));
    assert_eq!(
        w.event,
        Some(SessionEvent::Killed),
        "a sandbox never runs again, whatever the clocks"
    );
    // A STARTING session (its claim lapsed) still names its previous sandbox: that sandbox's late
    // `killed` must not end the new session.
    let starting = record(SessionState::Starting, later(20));
    assert_eq!(
        ignored(decide(&starting, &killed, "e1", later(100), &RULES)),
        Ignored::Stale
    );
}
