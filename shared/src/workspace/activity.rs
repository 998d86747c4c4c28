//! Per-instance memory of recent heartbeats: within a project's heartbeat interval of one this
//! instance saw, a heartbeat writes nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::domain::ProjectKey;

/// Bounded: cleared when it grows past `CAPACITY`.
#[derive(Debug, Default)]
pub struct ActivityThrottle {
    seen: Mutex<HashMap<ProjectKey, OffsetDateTime>>,
}

const CAPACITY: usize = 50_000;

impl ActivityThrottle {
    pub(crate) fn recently(&self, key: &ProjectKey, since: OffsetDateTime) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(key).is_some_and(|at| *at > since)
    }

    pub(crate) fn remember(&self, key: &ProjectKey, at: OffsetDateTime) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= CAPACITY {
            seen.clear();
        }
        seen.insert(key.clone(), at);
    }
}
