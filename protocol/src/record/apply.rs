//! What one [`SessionWrite`] does to the project's item, as a pure function. The store builds
//! its DynamoDB transaction from the same rules (`index_attributes` and the changes below), and a
//! test against DynamoDB Local holds the two to each other, so the model checker, which applies
//! writes with this function, checks the protocol the store really runs.
//!
//! The transaction also holds items this function does not touch: the lifecycle-log line (with an
//! event), the webhook's dedupe mark (`Duplicate` when present), a restore's snapshot hold
//! (`NotFound` unless the snapshot is READY) and the team's live-sandbox units
//! (`SessionWrite::live_delta`, refused past `live_limit`). Their owners apply them. Usage is
//! counted apart (`Port::count_usage`), once per E2B execution.

use time::OffsetDateTime;

use super::{FailureCount, Field, ProjectRecord, SessionWrite, Written};
use crate::domain::{CLAIM_LEASE, Refusal, Session, SessionState, transition};

/// Why a write did not apply.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyError {
    /// The state machine refused the event: nothing was sent.
    Refused(Refusal),
    /// The item's version, state or idle deadline is not what the write expects.
    Conflict,
}

/// Which of the sparse indexes' attributes a session in `state` carries. Every write into `state`
/// sets these and removes the others, so a session is in exactly the indexes its state calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexAttributes {
    /// `idleShard`/`idleAt`: the idle enforcer's index (RUNNING only).
    pub idle: bool,
    /// `transitShard`/`leaseUntil`: the reconciler's index of claims (transitional states).
    pub transit: bool,
    /// `pruneShard`/`pruneAt` set to the write's time: the pruner looks at the project again
    /// (PAUSED, KILLED). Never removed by a state change: the pruner reschedules it.
    pub prune_now: bool,
    /// `runningSince`: kept (`if_not_exists`) into RUNNING; removed with `busySince`/`busyUntil`
    /// by a write into PAUSED, KILLED, STARTING or RESUMING; left alone otherwise.
    pub running_since: RunWindow,
    /// `pausedAt` set to the write's time (PAUSED).
    pub paused_at: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunWindow {
    Start,
    End,
    Keep,
}

pub fn index_attributes(state: SessionState) -> IndexAttributes {
    use SessionState as S;
    IndexAttributes {
        idle: state == S::Running,
        transit: state.is_transitional(),
        prune_now: matches!(state, S::Paused | S::Killed),
        running_since: match state {
            S::Running => RunWindow::Start,
            S::Paused | S::Killed | S::Starting | S::Resuming => RunWindow::End,
            S::Pausing | S::Stopping => RunWindow::Keep,
        },
        paused_at: state == S::Paused,
    }
}

/// DynamoDB keeps milliseconds.
fn ms(at: OffsetDateTime) -> OffsetDateTime {
    let millis = at.unix_timestamp_nanos() / 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).unwrap_or(at)
}

/// The project item after `write`, or why the store refuses it.
pub fn apply(record: &ProjectRecord, write: &SessionWrite) -> Result<(ProjectRecord, Written), ApplyError> {
    let to = write
        .event
        .map(|event| transition(write.from, event))
        .transpose()
        .map_err(ApplyError::Refused)?;
    if record.version != write.expected_version || record.state() != write.from {
        return Err(ApplyError::Conflict);
    }
    if let Some(idle_by) = write.idle_by {
        let due = record.session.as_ref().and_then(|s| s.idle_at);
        if due.is_none_or(|due| due > ms(idle_by)) {
            return Err(ApplyError::Conflict);
        }
    }
    let at = ms(write.at);
    let idle_timeout = record.project.idle.idle_timeout;
    let c = &write.changes;
    let mut next = record.clone();
    next.version += 1;
    next.project.updated_at = at;
    // Marked due for a retention pass (`pruneMarks`), as the item's index attributes say.
    next.prune_marks += u64::from(to.is_some_and(|to| index_attributes(to).prune_now));
    let session = next.session.get_or_insert_with(|| Session {
        // A first claim always names its session; the decoder drops a session without one.
        session_id: String::new(),
        sandbox: None,
        state: to.unwrap_or(SessionState::Killed),
        state_since: at,
        lease_until: None,
        last_active_at: at,
        idle_at: None,
        running_since: None,
        busy_since: None,
        busy_until: None,
        timeout_at: None,
        paused_at: None,
        last_actor: write.actor,
        last_cause: String::new(),
        last_error: None,
        failures: 0,
        restored_from: None,
        replaces_session: None,
        retiring: None,
        last_event_at: None,
        usage: Default::default(),
        settings_version: None,
    });
    if let Some(to) = to {
        let index = index_attributes(to);
        session.state = to;
        session.state_since = at;
        session.last_actor = write.actor;
        session.last_cause = write.cause.clone();
        session.idle_at = index
            .idle
            .then(|| c.last_active_at.map(ms).unwrap_or(session.last_active_at) + idle_timeout);
        session.lease_until = index.transit.then(|| at + CLAIM_LEASE);
        if index.paused_at {
            session.paused_at = Some(at);
        }
        match index.running_since {
            RunWindow::Start => session.running_since = session.running_since.or(Some(at)),
            RunWindow::End => {
                session.running_since = None;
                session.busy_since = None;
                session.busy_until = None;
            }
            RunWindow::Keep => {}
        }
    }
    if let Some(id) = &c.session_id {
        session.session_id = id.clone();
    }
    if let Some(sandbox) = &c.sandbox {
        let token = sandbox
            .access_token
            .clone()
            .or_else(|| session.sandbox.as_ref().and_then(|s| s.access_token.clone()));
        session.sandbox = Some(crate::domain::SandboxRef {
            sandbox_id: sandbox.sandbox_id.clone(),
            domain: sandbox.domain.clone(),
            access_token: token,
        });
    }
    if let Some(active) = c.last_active_at {
        session.last_active_at = ms(active);
        if to.is_none() {
            session.idle_at = Some(ms(active) + idle_timeout);
        }
    }
    if let Some(timeout_at) = c.timeout_at {
        session.timeout_at = Some(ms(timeout_at));
    }
    match &c.last_error {
        Field::Set(error) => session.last_error = Some(error.clone()),
        Field::Clear => session.last_error = None,
        Field::Keep => {}
    }
    match c.failures {
        FailureCount::Keep => {}
        FailureCount::Reset => session.failures = 0,
        FailureCount::Increment => session.failures += 1,
    }
    match &c.restored_from {
        Field::Set(snapshot) => session.restored_from = Some(snapshot.clone()),
        Field::Clear => session.restored_from = None,
        Field::Keep => {}
    }
    match (&c.replaces_session, to) {
        (Field::Set(replaced), _) => session.replaces_session = Some(replaced.clone()),
        (Field::Clear, _) => session.replaces_session = None,
        (Field::Keep, Some(to)) if !to.is_transitional() => session.replaces_session = None,
        (Field::Keep, _) => {}
    }
    if let Some(event_at) = c.event_at {
        session.last_event_at = Some(ms(event_at));
    }
    if let Some(retiring) = &c.retiring {
        session.retiring = Some(retiring.clone());
    }
    if let Some(version) = c.settings_version {
        session.settings_version = Some(version);
    }
    // Last: every deadline above counted from the timeout the item had.
    if let Some(lesson) = c.idle_lesson {
        next.project.idle_gaps = lesson.gaps;
        next.project.idle.idle_timeout = lesson.idle_timeout;
    }
    let written = Written {
        version: next.version,
        state: to.or(write.from),
    };
    Ok((next, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_is_in_exactly_the_indexes_it_calls_for() {
        use SessionState as S;
        for state in SessionState::ALL {
            let index = index_attributes(state);
            assert_eq!(index.idle, state == S::Running, "{state:?}");
            assert_eq!(index.transit, state.is_transitional(), "{state:?}");
            assert_eq!(index.prune_now, matches!(state, S::Paused | S::Killed), "{state:?}");
            assert_eq!(index.paused_at, state == S::Paused, "{state:?}");
        }
        assert_eq!(index_attributes(S::Running).running_since, RunWindow::Start);
        assert_eq!(index_attributes(S::Pausing).running_since, RunWindow::Keep);
        assert_eq!(index_attributes(S::Resuming).running_since, RunWindow::End);
    }
}
