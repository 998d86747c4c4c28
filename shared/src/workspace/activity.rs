//! Heartbeats from a frontend. Each costs one eventually consistent read (the state decides first:
//! activity on a paused sandbox wakes it); within the project's heartbeat interval of the last
//! recorded one it writes nothing and calls no E2B; at most once per interval it writes. The E2B
//! timeout is extended only when less than half of it is left, after the activity is recorded.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::{OpenPath, Opened};
use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionState};
use crate::error::Error;
use crate::store::{Consistency, ProjectRecord};

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
        let mut consistency = Consistency::Eventual;
        for _ in 0..3 {
            let record = self
                .store
                .get_project(key, consistency)
                .await?
                .ok_or(Error::NotFound("project"))?;
            match self.activity_on(key, &record).await? {
                Some(answer) => return Ok(answer),
                // The session moved under the heartbeat: decide again from a strong read.
                None => consistency = Consistency::Strong,
            }
        }
        Ok(Activity::Ignored(None))
    }

    async fn activity_on(&self, key: &ProjectKey, record: &ProjectRecord) -> Result<Option<Activity>, Error> {
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
        let since = now - self.heartbeat_interval(&record.project);
        if self.activity.recently(key, since) || session.last_active_at > since {
            self.activity.remember(key, session.last_active_at.max(since));
            return Ok(Some(Activity::Throttled));
        }
        if !self.store.record_activity(key, &sandbox.sandbox_id, now, since).await? {
            return Ok(None);
        }
        self.activity.remember(key, now);
        let timeout = record.project.sandbox_timeout;
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
}
