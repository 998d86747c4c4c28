//! The operations an actor of the model can run: each is a call of the protocol's own function,
//! the one the Lambda runs, and its answer reduced to what the invariants judge.

use std::collections::BTreeMap;
use std::fmt;

use sandman_protocol::domain::{Actor, ProjectId, ProjectKey, SessionState, SnapshotId, TeamId, metadata};
use sandman_protocol::enforce::{self, Verdict};
use sandman_protocol::ops;
use sandman_protocol::ops::fork::ForkFrom;
use sandman_protocol::ops::kill::SnapshotFirst;
use sandman_protocol::ops::open::Opened;
use sandman_protocol::port::Port;
use sandman_protocol::prune::PassOptions;
use sandman_protocol::reconcile::{self, Listed, Listing, Outcome as Checked};
use sandman_protocol::record::{IdleCandidate, PruneCandidate, TransitSession};
use sandman_protocol::webhook::{self, EventKind as WebhookKind, Execution, LifecycleEvent, Receipt};

use crate::world::{Event, EventKind, TEAM, at};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    Open(String),
    Resume(String),
    Pause(String),
    Kill(String),
    Heartbeat(String),
    Restore(String, String),
    Delete(String),
    ForkLive(String, String),
    /// E2B delivers one event to the webhook.
    Deliver(Event),
    /// The idle enforcer pauses a candidate read from the idle index at `now`.
    EnforceIdle(IdleCandidate, u32),
    CheckRunning(IdleCandidate, Listing),
    CheckListed(Listed, u32),
    RepairStuck(TransitSession, u32),
    Prune(PruneCandidate, u32),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Open(p) => write!(f, "open {p}"),
            Op::Resume(p) => write!(f, "resume {p}"),
            Op::Pause(p) => write!(f, "pause {p}"),
            Op::Kill(p) => write!(f, "kill {p}"),
            Op::Heartbeat(p) => write!(f, "heartbeat {p}"),
            Op::Restore(p, s) => write!(f, "restore {p} from {s}"),
            Op::Delete(p) => write!(f, "delete project {p}"),
            Op::ForkLive(p, new) => write!(f, "live fork {p} -> {new}"),
            Op::Deliver(e) => write!(f, "deliver {:?} of {} ({})", e.kind, e.sandbox_id, e.id),
            Op::EnforceIdle(c, _) => write!(f, "idle pause {}", c.key.project),
            Op::CheckRunning(c, _) => write!(f, "reconcile running {}", c.key.project),
            Op::CheckListed(l, _) => write!(f, "reconcile listed {}", l.sandbox.sandbox_id),
            Op::RepairStuck(s, _) => write!(f, "reconcile stuck {}", s.key.project),
            Op::Prune(c, _) => write!(f, "prune {}", c.key.project),
        }
    }
}

/// What an operation answered, as far as the invariants care.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    /// The answer handed the caller a sandbox as RUNNING (an open, a resume, a wake, a restore, a fork).
    pub running: Option<String>,
    /// The answer said the activity was recorded on a running sandbox (the idle window restarts).
    pub activity_recorded: bool,
    /// Whether a webhook delivery was acknowledged (E2B will not send it again).
    pub acknowledged: bool,
    pub text: String,
}

impl Answer {
    fn said(text: impl Into<String>) -> Answer {
        Answer {
            running: None,
            activity_recorded: false,
            acknowledged: true,
            text: text.into(),
        }
    }
}

pub fn key(project: &str) -> ProjectKey {
    ProjectKey::new(
        TeamId::parse(TEAM).expect("team"),
        ProjectId::parse(project).expect("project"),
    )
}

fn opened(result: Result<Opened, sandman_protocol::Error>) -> Answer {
    match result {
        Ok(opened) => {
            let running = (opened.record.state() == Some(SessionState::Running))
                .then(|| opened.record.sandbox_id().map(str::to_owned))
                .flatten();
            Answer {
                text: format!("{:?}, {:?}", opened.path, opened.record.state()),
                running,
                activity_recorded: false,
                acknowledged: true,
            }
        }
        Err(err) => Answer::said(format!("error: {err}")),
    }
}

/// The event as the webhook receiver parses it.
pub fn lifecycle_event(event: &Event) -> LifecycleEvent {
    let kind = match event.kind {
        EventKind::Created => WebhookKind::Created,
        EventKind::Paused => WebhookKind::Paused,
        EventKind::Resumed => WebhookKind::Resumed,
        EventKind::Killed => WebhookKind::Killed,
    };
    LifecycleEvent {
        id: Some(event.id.clone()),
        kind,
        type_name: format!("sandbox.lifecycle.{kind:?}").to_lowercase(),
        timestamp: at(event.at),
        sandbox_id: event.sandbox_id.clone(),
        e2b_team_id: None,
        execution_id: event.execution.as_ref().map(|(id, _)| id.clone()),
        metadata: event.metadata.clone(),
        execution: event.execution.as_ref().map(|(_, seconds)| Execution {
            vcpu_count: 2.0,
            memory_mb: 512.0,
            execution_time: f64::from(*seconds) * 1000.0,
        }),
        kill_reason: None,
        set_timeout: None,
    }
}

/// Runs `op` against `port` (the model's `ReplayPort`).
pub async fn run<P: Port>(op: &Op, port: &P) -> Answer {
    match op {
        Op::Open(p) => opened(ops::open::open(port, &key(p), Actor::User).await),
        Op::Resume(p) => opened(ops::open::resume(port, &key(p), Actor::User, "resume requested").await),
        Op::Pause(p) => match ops::pause::pause_by_user(port, &key(p)).await {
            Ok(paused) => Answer::said(format!("{paused:?}")),
            Err(err) => Answer::said(format!("error: {err}")),
        },
        Op::Kill(p) => match ops::kill::kill(port, &key(p), SnapshotFirst::ProjectDefault, Actor::User, None).await {
            Ok(killed) => Answer::said(format!("killed (already: {})", killed.already)),
            Err(err) => Answer::said(format!("error: {err}")),
        },
        Op::Heartbeat(p) => match ops::activity::activity(port, &key(p), None).await {
            Ok(ops::activity::Activity::Woke(opened_)) => opened(Ok(*opened_)),
            Ok(activity) => Answer {
                activity_recorded: matches!(
                    activity,
                    ops::activity::Activity::Recorded { .. } | ops::activity::Activity::Throttled
                ),
                ..Answer::said(format!("{activity:?}"))
            },
            Err(err) => Answer::said(format!("error: {err}")),
        },
        Op::Restore(p, s) => {
            let snapshot = SnapshotId::parse(s.clone()).expect("snapshot id");
            opened(ops::restore::restore(port, &key(p), &snapshot, Actor::User).await)
        }
        Op::Delete(p) => match ops::delete::delete_project(port, &key(p)).await {
            Ok(()) => Answer::said("deleted"),
            Err(err) => Answer::said(format!("error: {err}")),
        },
        Op::ForkLive(p, new) => {
            let new = ProjectId::parse(new.clone()).expect("project id");
            match ops::fork::fork(port, &key(p), new, ForkFrom::Live).await {
                Ok(record) => Answer {
                    running: (record.state() == Some(SessionState::Running))
                        .then(|| record.sandbox_id().map(str::to_owned))
                        .flatten(),
                    ..Answer::said("forked")
                },
                Err(err) => Answer::said(format!("error: {err}")),
            }
        }
        Op::Deliver(event) => {
            let event = lifecycle_event(event);
            let dedupe = event.id.clone().unwrap_or_default();
            let record = match webhook::session_of(port, &event).await {
                Ok(record) => record,
                Err(err) => {
                    return Answer {
                        acknowledged: false,
                        ..Answer::said(format!("error: {err}"))
                    };
                }
            };
            match webhook::apply(port, record, &event, &dedupe).await {
                Ok(
                    receipt @ (Receipt::Applied { .. }
                    | Receipt::Duplicate
                    | Receipt::Ignored { .. }
                    | Receipt::UnknownSandbox),
                ) => Answer::said(format!("{receipt:?}")),
                Err(err) => Answer {
                    acknowledged: false,
                    ..Answer::said(format!("error: {err}"))
                },
            }
        }
        Op::EnforceIdle(candidate, now) => {
            let step = enforce::first_look(port, candidate.clone(), at(*now));
            let acted = match step {
                enforce::Step::Pause { candidate, cause } => {
                    enforce::pause_idle(port, &candidate, cause, at(*now)).await
                }
                enforce::Step::Handoff { candidate } => enforce::hand_off(port, &candidate, at(*now)).await,
                enforce::Step::Done(verdict) => verdict.into(),
                enforce::Step::CheckCpu(candidate) => match enforce::after_cpu(port, candidate, None, at(*now)) {
                    enforce::Step::Pause { candidate, cause } => {
                        enforce::pause_idle(port, &candidate, cause, at(*now)).await
                    }
                    _ => Verdict::Deferred.into(),
                },
                enforce::Step::Defer { .. } => Verdict::Deferred.into(),
            };
            Answer::said(format!("{:?}", acted.verdict))
        }
        Op::CheckRunning(candidate, listing) => checked(reconcile::check_running(port, candidate, listing).await),
        Op::CheckListed(listed, now) => checked(reconcile::check_listed(port, listed, at(*now)).await),
        Op::RepairStuck(stuck, now) => checked(reconcile::repair_stuck(port, stuck, at(*now)).await),
        Op::Prune(candidate, now) => {
            match sandman_protocol::prune::pass(port, candidate.clone(), at(*now), PassOptions::default()).await {
                Ok(visit) => Answer::said(format!("pruned {} (failed: {})", visit.deleted, visit.failed)),
                Err(err) => Answer::said(format!("error: {err}")),
            }
        }
    }
}

fn checked(outcome: Checked) -> Answer {
    Answer::said(format!("{outcome:?}"))
}

/// The metadata Sandman puts on a sandbox of `project`'s `session`.
pub fn session_metadata(project: &str, session: &str) -> BTreeMap<String, String> {
    metadata::for_session(&key(project), session)
}
