//! Heartbeats from a frontend. Each costs one eventually consistent read (the state decides first:
//! activity on a paused sandbox wakes it); within the project's heartbeat interval of the last
//! recorded one it writes nothing and calls no E2B; at most once per interval it writes. The E2B
//! timeout is extended only when less than half of it is left, after the activity is recorded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use super::{OpenPath, Opened};
use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionState};
use crate::error::Error;
use crate::store::{ActivityWrite, Consistency, ProjectRecord};

/// Per-instance memory of recent heartbeats. Bounded: cleared when it grows past `CAPACITY`.
#[derive(Debug, Default)]
pub struct ActivityThrottle {
    seen: Mutex<HashMap<ProjectKey, OffsetDateTime>>,
}

const CAPACITY: usize = 50_000;

impl ActivityThrottle {
    fn recently(&self, key: &ProjectKey, since: OffsetDateTime) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(key).is_some_and(|at| *at > since)
    }

    fn remember(&self, key: &ProjectKey, at: OffsetDateTime) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= CAPACITY {
            seen.clear();
        }
        seen.insert(key.clone(), at);
    }
}

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

impl Sandman {
    /// Reads the session first (a paused sandbox wakes even within the throttle window), records
    /// the activity with a write conditional on the sandbox it read, and only then extends E2B's
    /// timeout, so a pause racing the heartbeat cannot win on a stale read.
    pub async fn activity(&self, key: &ProjectKey) -> Result<Activity, Error> {
        self.activity_busy(key, None).await
    }

    /// Activity that also holds the sandbox awake for `busy_for` (capped by the project's
    /// `maxBusyForSeconds`), so a long job needs no heartbeat loop. Always written: not throttled.
    pub async fn activity_busy(&self, key: &ProjectKey, busy_for: Option<Duration>) -> Result<Activity, Error> {
        let mut consistency = Consistency::Eventual;
        for _ in 0..3 {
            let record = self
                .store
                .get_project(key, consistency)
                .await?
                .ok_or(Error::NotFound("project"))?;
            match self.activity_on(key, &record, busy_for).await? {
                Some(answer) => return Ok(answer),
                // The session moved under the heartbeat: decide again from a strong read.
                None => consistency = Consistency::Strong,
            }
        }
        Ok(Activity::Ignored(None))
    }

    async fn activity_on(
        &self,
        key: &ProjectKey,
        record: &ProjectRecord,
        busy_for: Option<Duration>,
    ) -> Result<Option<Activity>, Error> {
        let now = self.now();
        let Some(session) = record.session.as_ref() else {
            return Ok(Some(Activity::Ignored(None)));
        };
        match session.state {
            SessionState::Running => {}
            SessionState::Paused => {
                let opened = self.resume(key, Actor::User).await?;
                if opened.path == OpenPath::AlreadyRunning {
                    // Another request woke it after our read: this activity is not recorded yet,
                    // and answering "recorded" would let the enforcer pause on the old deadline.
                    return Ok(None);
                }
                self.activity.remember(key, now);
                return Ok(Some(Activity::Woke(Box::new(opened))));
            }
            state if session.lease_lapsed(now) => {
                tracing::info!(project = %key, state = state.as_str(), "a heartbeat met a lapsed claim");
                self.settle_lapsed(record, Actor::User).await?;
                return Ok(None);
            }
            other => return Ok(Some(Activity::Ignored(Some(other)))),
        }
        let Some(sandbox) = session.sandbox.as_ref() else {
            return Ok(Some(Activity::Ignored(Some(SessionState::Running))));
        };
        let busy_for = busy_for.map(|wanted| wanted.min(record.project.idle.max_busy_for));
        let since = now - self.heartbeat_interval(&record.project);
        let throttled = self.activity.recently(key, since) || session.last_active_at > since;
        if busy_for.is_none() && throttled {
            self.activity.remember(key, session.last_active_at.max(since));
            return Ok(Some(Activity::Throttled));
        }
        let write = self.activity_write(record, session, now, since, busy_for);
        if !self
            .store
            .record_activity_with(key, &sandbox.sandbox_id, &write)
            .await?
        {
            return Ok(None);
        }
        self.activity.remember(key, now);
        // A hold longer than E2B's timeout would end in E2B's own pause: the timeout covers it.
        let timeout = busy_for.map_or(record.project.sandbox_timeout, |hold| {
            hold.max(record.project.sandbox_timeout)
        });
        let running_out = session.timeout_at.is_none_or(|at| at - now < timeout / 2);
        let mut extended_timeout = false;
        if running_out {
            match self.e2b_for(key).await?.set_timeout(&sandbox.sandbox_id, timeout).await {
                Ok(()) => {
                    self.store
                        .record_timeout(key, &sandbox.sandbox_id, now + timeout)
                        .await?;
                    extended_timeout = true;
                }
                Err(err) => tracing::warn!(project = %key, error = %err, "could not extend the E2B timeout"),
            }
        }
        Ok(Some(Activity::Recorded { extended_timeout }))
    }

    /// The idle deadline this activity sets: the idle timeout from now, or a longer hold
    /// (`busyForSeconds`, now or still standing), but never past the session-cap handoff, so the
    /// idle index's one range query finds both.
    fn activity_write(
        &self,
        record: &ProjectRecord,
        session: &crate::domain::Session,
        now: OffsetDateTime,
        since: OffsetDateTime,
        busy_for: Option<Duration>,
    ) -> ActivityWrite {
        let idle_deadline = now + record.project.idle.idle_timeout;
        let busy_until = busy_for.map(|hold| now + hold);
        let held = session
            .busy_until
            .max(busy_until)
            .filter(|until| *until > idle_deadline);
        let floor = held.unwrap_or(idle_deadline);
        let handoff = self.handoff_deadline(record.project.team_id.as_str(), session.running_since);
        let idle_at = handoff.map_or(floor, |at| at.min(floor));
        ActivityWrite {
            at: now,
            not_since: busy_for.is_none().then_some(since),
            idle_at: (idle_at != idle_deadline).then_some(idle_at),
            busy_until,
            held_at_most: Some(floor),
        }
    }

    /// When a run that began at `running_since` is handed off before `team`'s session cap.
    pub(crate) fn handoff_deadline(&self, team: &str, running_since: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
        let after = self.config.session_cap.handoff_after(team)?;
        Some(running_since? + after)
    }
}
