//! The deployment's rules the protocol reads: parsed from the environment once per cold start (in
//! `sandman::config`), handed to every operation through its port.

use std::collections::HashMap;
use std::time::Duration;

/// What the reconciler does with a sandbox no project accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrphanPolicy {
    Pause,
    Kill,
    Report,
}

/// E2B's cap on one continuous run, per deployment (`SESSION_CAP_SECS`; unset or 0: no handoffs)
/// and per team (`SANDMAN_TEAM_SESSION_CAPS=team-a:86400,team-b:0`), and how long before it an
/// active sandbox is handed off (`SESSION_CAP_MARGIN_SECS`, default 300).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCapConfig {
    pub default: Option<Duration>,
    pub teams: HashMap<String, Option<Duration>>,
    pub margin: Duration,
}

impl SessionCapConfig {
    /// How long a run of `team`'s sandbox may last before its handoff: the cap less the margin.
    pub fn handoff_after(&self, team: &str) -> Option<Duration> {
        let cap = self.teams.get(team).copied().unwrap_or(self.default)?;
        Some(cap.saturating_sub(self.margin))
    }
}

/// Everything an operation needs to know about the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// A transitional state older than this, that nobody settled, is repaired by the reconciler.
    pub stuck_after: Duration,
    pub orphan_policy: OrphanPolicy,
    /// After this many consecutive failed pauses a session is flagged instead of retried.
    pub max_failures: u32,
    pub session_caps: SessionCapConfig,
    /// An upper bound on every project's heartbeat interval.
    pub heartbeat_interval_max: Duration,
    /// How many sandboxes one team may run at once (its live-sandbox units).
    pub live_per_team: u32,
    /// How many snapshots one team may hold (automatic ones pass it, and make room).
    pub snapshots_per_team: u32,
    /// How many pinned snapshots one project may hold.
    pub pins_per_project: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            stuck_after: Duration::from_secs(300),
            orphan_policy: OrphanPolicy::Kill,
            max_failures: 5,
            session_caps: SessionCapConfig::default(),
            heartbeat_interval_max: Duration::from_secs(300),
            live_per_team: 20,
            snapshots_per_team: 1000,
            pins_per_project: 5,
        }
    }
}
