//! What one event means for the session as it was read: the pure part of receiving a webhook.
//!
//! - An event about another sandbox than the session's current one changes nothing.
//! - An event older than the newest one applied, or than the session's current state, is stale:
//!   it moves nothing (a late `paused` must not undo a `resumed`). A `killed` of a settled
//!   session's sandbox is the exception: a sandbox never runs again, whatever the clocks say.
//! - The compute an event reports is counted apart from all this (`apply`), once per E2B
//!   execution, whether the event moves the session or not, and whoever's sandbox it was.
//! - Otherwise the event becomes a report through the state machine (`paused` -> PAUSED,
//!   `resumed` -> RUNNING, `killed` -> KILLED) plus what it carries (usage, a new timeout).
//! - A report that finds the session already there still records its time, so that older reports
//!   delivered after it are recognised as stale.
//! - `created` only confirms what the API writes itself once E2B answers; it moves a STARTING
//!   session only when that start looks abandoned (older than the reconciler's `stuck_after`).
//!
//! Every write carries the event's dedupe mark, so a redelivery changes nothing twice.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::event::{EventKind, LifecycleEvent};
use crate::domain::metadata as sandbox_metadata;
use crate::domain::{Actor, SandboxRef, Session, SessionEvent, SessionState, transition};
use crate::record::{Dedupe, ProjectRecord, SessionWrite};

/// How long a delivered event id is remembered (E2B retries within a minute; its events API keeps 7 days).
pub const DEDUPE_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// A reported timeout this close to the stored one is Sandman's own extension echoed back.
pub const TIMEOUT_TOLERANCE: Duration = Duration::from_secs(5);
const CAUSE_DETAIL_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// A STARTING session older than this is taken as abandoned by its writer.
    pub stuck_after: Duration,
}

/// Why an event was acknowledged without a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ignored {
    /// The project never had a sandbox.
    NoSession,
    /// The event concerns a sandbox the project no longer uses.
    OlderSandbox,
    /// Older than what the session already reflects, and reporting no compute.
    Stale,
    /// The session already is what the event says, or the event carries nothing Sandman keeps.
    NoChange,
}

#[derive(Debug, Clone)]
pub enum Decision {
    Ignore(Ignored),
    Write(Box<SessionWrite>),
}

pub fn decide(
    record: &ProjectRecord,
    event: &LifecycleEvent,
    dedupe_id: &str,
    now: OffsetDateTime,
    rules: &Rules,
) -> Decision {
    let Some(session) = &record.session else {
        return Decision::Ignore(Ignored::NoSession);
    };
    if !is_current(record, session, event) {
        return Decision::Ignore(Ignored::OlderSandbox);
    }
    let mut write = SessionWrite::new(record, Actor::Webhook, cause(session, event), event.timestamp);
    write.dedupe = Some(Dedupe {
        id: dedupe_id.to_string(),
        expires_at: now + DEDUPE_FOR,
    });
    if is_stale(session, event) {
        return Decision::Ignore(Ignored::Stale);
    }
    // While a claim's lease runs, its claimant records what E2B did (it asks E2B before it moves
    // on): the event is remembered for ordering only. A lapsed claim takes E2B's reports again.
    let claimed = session.state.is_transitional() && !session.lease_lapsed(now);
    let report = report(session, event, now, rules)
        .filter(|_| !claimed)
        .filter(|report| transition(Some(session.state), *report).is_ok());
    if let Some(report) = report {
        write.event = Some(report);
        if report == SessionEvent::Running {
            write.changes.last_active_at = Some(event.timestamp);
        }
        // A STARTING session still holds its previous sandbox's id; the event names the new one.
        if session.state == SessionState::Starting {
            write.changes.sandbox = Some(SandboxRef {
                sandbox_id: event.sandbox_id.clone(),
                domain: None,
                access_token: None,
            });
        }
    }
    write.changes.timeout_at = new_timeout(session, event);
    if write.event.is_none() && write.changes.timeout_at.is_none() && !orders(session, event) {
        return Decision::Ignore(Ignored::NoChange);
    }
    write.changes.event_at = Some(event.timestamp);
    Decision::Write(Box::new(write))
}

/// Whether the event is about the session's sandbox. Sandman's metadata names the session; without
/// it, the sandbox id must be the session's. A live fork's sandbox names its source's project and
/// session (E2B copies them): when the metadata names another project than this one (the record
/// was found by the sandbox id), only the sandbox id can say, and only once the session holds it.
fn is_current(record: &ProjectRecord, session: &Session, event: &LifecycleEvent) -> bool {
    let names_another_project =
        sandbox_metadata::owner(&event.metadata).is_some_and(|(key, _)| key != record.project.key());
    let named = event
        .metadata
        .get(sandbox_metadata::SESSION)
        .filter(|_| !names_another_project);
    if named.is_some_and(|id| *id != session.session_id) {
        return false;
    }
    match (&session.sandbox, session.state) {
        // While starting, the stored sandbox id is the previous incarnation's.
        (_, SessionState::Starting) | (None, _) => named.is_some(),
        (Some(sandbox), _) => sandbox.sandbox_id == event.sandbox_id,
    }
}

fn is_stale(session: &Session, event: &LifecycleEvent) -> bool {
    // A kill is the sandbox's last word (it never runs again), whatever the clocks say: E2B's can
    // run behind Sandman's, and a `killed` timed before the session's last write (a failed resume
    // put back to PAUSED, say) would leave the session on a sandbox that is gone, which nothing
    // but an open would ever find (the long soak's `converged`).
    // Not while a claim is open: a STARTING session still names its previous sandbox, whose late
    // `killed` must not end the new one.
    if event.kind == EventKind::Killed && !session.state.is_transitional() {
        return false;
    }
    session.last_event_at.is_some_and(|seen| event.timestamp < seen)
        || event.timestamp < session.state_since
        || reports_a_pause_already_undone(session, event)
}

/// How far E2B's clock may run ahead of Sandman's. Under E2B's shortest timeout (60 s), so E2B's own
/// next pause of a resumed sandbox always comes later than this after the pause Sandman recorded.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The `paused` report of a pause Sandman recorded itself and has since undone (a session-cap
/// handoff pauses and resumes at once): with E2B's clock ahead of Sandman's, it can carry a time
/// after the resume's, and would otherwise mark a running sandbox PAUSED. Only when Sandman itself
/// made the session RUNNING again: after E2B's own `resumed` report both times are E2B's, and a
/// `paused` newer than it is a new pause however soon it came.
fn reports_a_pause_already_undone(session: &Session, event: &LifecycleEvent) -> bool {
    event.kind == EventKind::Paused
        && session.state == SessionState::Running
        && session.last_actor != Actor::Webhook
        && session
            .paused_at
            .is_some_and(|paused| event.timestamp <= paused + CLOCK_SKEW)
}

/// Whether the event, though it moves nothing, must be remembered as the newest seen: after a
/// `resumed` that found the session RUNNING already, an earlier `paused` delivered late must
/// still be recognised as stale.
fn orders(session: &Session, event: &LifecycleEvent) -> bool {
    let reports_state = matches!(event.kind, EventKind::Paused | EventKind::Resumed | EventKind::Killed);
    let newer = session.last_event_at.is_none_or(|seen| event.timestamp > seen);
    reports_state && newer && session.state != SessionState::Killed
}

/// The state machine report the event amounts to, if any.
fn report(session: &Session, event: &LifecycleEvent, now: OffsetDateTime, rules: &Rules) -> Option<SessionEvent> {
    match event.kind {
        EventKind::Paused => Some(SessionEvent::Paused),
        EventKind::Resumed => Some(SessionEvent::Running),
        EventKind::Killed => Some(SessionEvent::Killed),
        EventKind::Created => {
            let abandoned = session.state == SessionState::Starting && now - session.state_since >= rules.stuck_after;
            abandoned.then_some(SessionEvent::Running)
        }
        EventKind::Updated | EventKind::Checkpointed | EventKind::Other => None,
    }
}

/// A pause before E2B's timeout saves the run time up to it: what the sandbox would have used had
/// it been left running (at the size the event reports).
pub fn saved(session: &Session, event: &LifecycleEvent) -> Option<crate::domain::Usage> {
    if event.kind != EventKind::Paused {
        return None;
    }
    let seconds = (session.timeout_at? - event.timestamp).as_seconds_f64();
    let execution = event.execution?;
    (seconds > 0.0).then_some(crate::domain::Usage {
        run_seconds: seconds,
        vcpu_seconds: execution.vcpu_count * seconds,
        memory_mb_seconds: execution.memory_mb * seconds,
    })
}

fn new_timeout(session: &Session, event: &LifecycleEvent) -> Option<OffsetDateTime> {
    let reported = event.set_timeout?;
    let known = session
        .timeout_at
        .is_some_and(|stored| (stored - reported).abs() <= TIMEOUT_TOLERANCE);
    (!known).then_some(reported)
}

fn cause(session: &Session, event: &LifecycleEvent) -> String {
    match event.kind {
        EventKind::Paused
            if session.state == SessionState::Running && session.timeout_at.is_some_and(|at| event.timestamp >= at) =>
        {
            "e2b: paused (timeout)".into()
        }
        EventKind::Paused => "e2b: paused".into(),
        EventKind::Killed => match &event.kill_reason {
            Some(reason) => format!("e2b: killed ({})", clip(reason)),
            None => "e2b: killed".into(),
        },
        EventKind::Resumed => "e2b: resumed".into(),
        EventKind::Created => "e2b: created".into(),
        EventKind::Updated => "e2b: updated".into(),
        EventKind::Checkpointed => "e2b: checkpointed".into(),
        EventKind::Other => format!("e2b: {}", clip(&event.type_name)),
    }
}

/// External text going into a stored cause: bounded, printable.
fn clip(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(CAUSE_DETAIL_MAX)
        .collect()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
