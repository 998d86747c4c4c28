//! Heartbeats from a frontend. Each costs one eventually consistent read (the state decides first:
//! activity on a paused sandbox wakes it); within the project's heartbeat interval of the last
//! recorded one it writes nothing and calls no E2B; at most once per interval it writes. The E2B
//! timeout is extended only when less than half of it is left, after the activity is recorded.

use std::time::Duration;

use time::OffsetDateTime;

use super::lease;
use super::open::{OpenPath, Opened, resume};
use crate::adaptive;
use crate::domain::{Actor, Project, ProjectKey, Session, SessionState};
use crate::error::Error;
use crate::port::{Consistency, Port};
use crate::record::{ActivityWrite, ProjectRecord};

/// E2B's own timeout is kept at least this far past the idle deadline: two enforcer ticks and a
/// late one, so the backstop never pauses a sandbox before Sandman would.
pub const BACKSTOP_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub enum Activity {
    /// Running, and activity was recorded within the project's heartbeat interval: nothing written.
    Throttled,
    Recorded {
        extended_timeout: bool,
    },
    /// The sandbox was not running any more (paused) and has been woken.
    Woke(Box<Opened>),
    /// Nothing to keep alive (starting, stopping, killed, or never opened).
    Ignored(Option<SessionState>),
}

/// Reads the session first (a paused sandbox wakes even within the throttle window), records the
/// activity with a write conditional on the sandbox it read, and only then extends E2B's timeout,
/// so a pause racing the heartbeat cannot win on a stale read. `busy_for` also holds the sandbox
/// awake that long (capped by the project's `maxBusyForSeconds`), so a long job needs no heartbeat
/// loop; such activity is always written, never throttled.
pub async fn activity<P: Port>(port: &P, key: &ProjectKey, busy_for: Option<Duration>) -> Result<Activity, Error> {
    // A hold is written whatever was recorded before, so it decides from a strong read: a stale one
    // could carry an old handoff deadline into the idle index (concurrency review #24).
    let mut consistency = match busy_for {
        Some(_) => Consistency::Strong,
        None => Consistency::Eventual,
    };
    for _ in 0..3 {
        let record = port.read(key, consistency).await?.ok_or(Error::NotFound("project"))?;
        match activity_on(port, key, &record, busy_for).await? {
            Some(answer) => return Ok(answer),
            // The session moved under the heartbeat: decide again from a strong read.
            None => consistency = Consistency::Strong,
        }
    }
    Ok(Activity::Ignored(None))
}

async fn activity_on<P: Port>(
    port: &P,
    key: &ProjectKey,
    record: &ProjectRecord,
    busy_for: Option<Duration>,
) -> Result<Option<Activity>, Error> {
    let now = port.now();
    let Some(session) = record.session.as_ref() else {
        return Ok(Some(Activity::Ignored(None)));
    };
    match session.state {
        SessionState::Running => {}
        SessionState::Paused => {
            let opened = resume(port, key, Actor::User, "resume requested").await?;
            if opened.path == OpenPath::AlreadyRunning {
                // Another request woke it after our read: this activity is not recorded yet,
                // and answering "recorded" would let the enforcer pause on the old deadline.
                return Ok(None);
            }
            port.remember_activity(key, now);
            return Ok(Some(Activity::Woke(Box::new(opened))));
        }
        state if session.lease_lapsed(now) => {
            tracing::info!(project = %key, state = state.as_str(), "a heartbeat met a lapsed claim");
            lease::settle_lapsed(port, record, Actor::User).await?;
            return Ok(None);
        }
        other => return Ok(Some(Activity::Ignored(Some(other)))),
    }
    let Some(sandbox) = session.sandbox.as_ref() else {
        return Ok(Some(Activity::Ignored(Some(SessionState::Running))));
    };
    let busy_for = busy_for.map(|wanted| wanted.min(record.project.idle.max_busy_for));
    let since = now - heartbeat_interval(port, &record.project);
    let throttled = port.recently_active(key, since) || session.last_active_at > since;
    if busy_for.is_none() && throttled {
        port.remember_activity(key, session.last_active_at.max(since));
        return Ok(Some(Activity::Throttled));
    }
    let write = activity_write(port, record, session, now, since, busy_for);
    if !port.record_activity(key, &sandbox.sandbox_id, &write).await? {
        return Ok(None);
    }
    port.remember_activity(key, now);
    // A hold longer than E2B's timeout would end in E2B's own pause: the timeout covers it. So
    // does the idle deadline: E2B's timeout is a backstop, never earlier than the enforcer's pause
    // (a learned idle timeout may exceed the sandbox timeout, or half of it).
    let idle_deadline = write.idle_at.unwrap_or(now + record.project.idle.idle_timeout);
    let timeout = busy_for
        .map_or(record.project.sandbox_timeout, |hold| {
            hold.max(record.project.sandbox_timeout)
        })
        .max((idle_deadline - now).unsigned_abs() + BACKSTOP_MARGIN);
    let running_out = session
        .timeout_at
        .is_none_or(|at| at - now < timeout / 2 || at < idle_deadline + BACKSTOP_MARGIN);
    let mut extended_timeout = false;
    if running_out {
        let account = port.account(&key.team).await?;
        match port.set_timeout(&account, &sandbox.sandbox_id, timeout).await {
            Ok(()) => {
                port.record_timeout(key, &sandbox.sandbox_id, now + timeout).await?;
                extended_timeout = true;
            }
            Err(err) => tracing::warn!(project = %key, error = %err, "could not extend the E2B timeout"),
        }
    }
    Ok(Some(Activity::Recorded { extended_timeout }))
}

/// The idle deadline this activity sets: the idle timeout from now, or a longer hold
/// (`busyForSeconds`, now or still standing), but never past the session-cap handoff, so the
/// idle index's one range query finds both. An adaptive project learns from the gap since the
/// last recorded activity in the same write; with a new timeout the deadline is set outright.
fn activity_write<P: Port>(
    port: &P,
    record: &ProjectRecord,
    session: &Session,
    now: OffsetDateTime,
    since: OffsetDateTime,
    busy_for: Option<Duration>,
) -> ActivityWrite {
    let project = &record.project;
    let lesson = adaptive::idle_lesson(project.idle.adaptive, &project.idle_gaps, session.last_active_at, now);
    let stored_deadline = now + project.idle.idle_timeout;
    let idle_deadline = now + lesson.map_or(project.idle.idle_timeout, |l| l.idle_timeout);
    let busy_until = busy_for.map(|hold| now + hold);
    let held = session
        .busy_until
        .max(busy_until)
        .filter(|until| *until > idle_deadline);
    let floor = held.unwrap_or(idle_deadline);
    let handoff = handoff_deadline(port, record.project.team_id.as_str(), session.running_since);
    let idle_at = handoff.map_or(floor, |at| at.min(floor));
    ActivityWrite {
        at: now,
        not_since: busy_for.is_none().then_some(since),
        idle_at: (lesson.is_some() || idle_at != stored_deadline).then_some(idle_at),
        busy_until,
        held_at_most: Some(floor),
        idle_lesson: lesson,
    }
}

/// The activity an open of a running sandbox records: unthrottled, the idle deadline from now (never
/// past the session-cap handoff, nor cutting short a `busyForSeconds` hold).
pub(crate) fn opened_activity<P: Port>(
    port: &P,
    record: &ProjectRecord,
    session: &Session,
    now: OffsetDateTime,
) -> ActivityWrite {
    ActivityWrite {
        not_since: None,
        ..activity_write(port, record, session, now, now, None)
    }
}

/// When a run that began at `running_since` is handed off before `team`'s session cap.
pub fn handoff_deadline<P: Port>(
    port: &P,
    team: &str,
    running_since: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    let after = port.rules().session_caps.handoff_after(team)?;
    Some(running_since? + after)
}

/// How often a heartbeat is written for `project`: its idle policy's interval, bounded by the deployment's.
pub fn heartbeat_interval<P: Port>(port: &P, project: &Project) -> Duration {
    project
        .idle
        .heartbeat_interval()
        .min(port.rules().heartbeat_interval_max)
}
