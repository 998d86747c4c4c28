//! Heartbeats from a frontend. Most of them do nothing: within `heartbeat_interval` of the last one
//! this Lambda instance recorded, a heartbeat costs no DynamoDB call and no E2B call; after that it
//! costs one read and, at most once per interval, one write. The E2B timeout is extended only when
//! less than half of it is left.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::{OpenPath, Opened};
use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionState};
use crate::error::Error;
use crate::store::Consistency;

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
    /// Within the interval of the last recorded heartbeat: nothing written.
    Throttled,
    Recorded {
        extended_timeout: bool,
    },
    /// The sandbox was paused and has been woken.
    Woke(Box<Opened>),
    /// Nothing to keep alive (starting, stopping, killed, or never opened).
    Ignored(Option<SessionState>),
}

impl Sandman {
    pub async fn activity(&self, key: &ProjectKey) -> Result<Activity, Error> {
        let now = self.now();
        let since = now - self.config.heartbeat_interval;
        if self.activity.recently(key, since) {
            return Ok(Activity::Throttled);
        }
        let record = self
            .store
            .get_project(key, Consistency::Eventual)
            .await?
            .ok_or(Error::NotFound("project"))?;
        let Some(session) = record.session.as_ref() else {
            return Ok(Activity::Ignored(None));
        };
        match session.state {
            SessionState::Running => {}
            SessionState::Paused => {
                let opened = self.resume(key, Actor::User).await?;
                self.activity.remember(key, now);
                return Ok(match opened.path {
                    OpenPath::AlreadyRunning => Activity::Recorded {
                        extended_timeout: false,
                    },
                    _ => Activity::Woke(Box::new(opened)),
                });
            }
            other => return Ok(Activity::Ignored(Some(other))),
        }
        if session.last_active_at > since {
            self.activity.remember(key, session.last_active_at);
            return Ok(Activity::Throttled);
        }
        let timeout = record.project.sandbox_timeout;
        let running_out = session.timeout_at.is_none_or(|at| at - now < timeout / 2);
        let mut new_timeout_at = None;
        if running_out && let Some(sandbox) = &session.sandbox {
            match self.e2b_for(key)?.set_timeout(&sandbox.sandbox_id, timeout).await {
                Ok(()) => new_timeout_at = Some(now + timeout),
                Err(err) => tracing::warn!(project = %key, error = %err, "could not extend the E2B timeout"),
            }
        }
        let wrote = self.store.record_activity(key, now, since, new_timeout_at).await?;
        self.activity.remember(key, now);
        Ok(if wrote {
            Activity::Recorded {
                extended_timeout: new_timeout_at.is_some(),
            }
        } else {
            Activity::Throttled
        })
    }
}
