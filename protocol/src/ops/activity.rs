//! Heartbeats from a frontend. Each costs one eventually consistent read (the state decides first:
//! activity on a paused sandbox wakes it); within the project's heartbeat interval of the last
//! recorded one it writes nothing and calls no E2B; at most once per interval it writes. The E2B
//! timeout is extended only when less than half of it is left, after the activity is recorded.

use std::time::Duration;

use super::idle_deadline::activity_write;
pub use super::idle_deadline::{handoff_deadline, heartbeat_interval};
use super::lease;
use super::open::resume;
use super::opened::{OpenPath, Opened};
use crate::domain::{Actor, ProjectKey, SessionState};
use crate::error::Error;
use crate::port::{Consistency, Port};
use crate::record::ProjectRecord;

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
