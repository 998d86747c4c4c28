use std::time::Duration;

use time::OffsetDateTime;

use super::{ProjectId, ProjectKey, TeamId};
use crate::adaptive::{AdaptiveIdle, GapHistogram};

/// When a running sandbox counts as idle, and what to do before pausing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdlePolicy {
    pub idle_timeout: Duration,
    pub snapshot_on_idle: bool,
    /// Busy-aware idle: an idle sandbox whose CPU (from E2B's metrics) is above this is not
    /// paused yet. `None` (the default): CPU is not read.
    pub busy_cpu_percent: Option<u8>,
    /// How long busy deferrals may keep a sandbox up without any activity (default 2 h).
    pub max_busy_deferral: Duration,
    /// The longest `busyForSeconds` one activity call may ask for (default 1 h).
    pub max_busy_for: Duration,
    /// What a session-cap handoff does with an active sandbox.
    pub cap_handoff: CapHandoff,
    /// Adaptive idle (`idle.mode: "adaptive"`): `idle_timeout` is then learned from the project's
    /// own idle gaps (`Project::idle_gaps`) within these bounds. `None`: the timeout is fixed.
    pub adaptive: Option<AdaptiveIdle>,
}

/// Before E2B's cap on one continuous run ends an active sandbox, Sandman hands it off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CapHandoff {
    /// Pause and resume at once: memory and processes are kept (the default).
    #[default]
    PauseResume,
    /// Snapshot, kill and reopen from the snapshot.
    SnapshotReopen,
}

impl CapHandoff {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PauseResume => "pause-resume",
            Self::SnapshotReopen => "snapshot-reopen",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::PauseResume, Self::SnapshotReopen]
            .into_iter()
            .find(|mode| mode.as_str() == value)
    }
}

impl IdlePolicy {
    /// How often a heartbeat is written: the idle deadline only needs this precision, so it
    /// follows the idle timeout (an eighth of it, from 30 s to 5 minutes) and never exceeds a
    /// quarter of it, so a session is never paused while a recent heartbeat is still unwritten.
    /// An adaptive project's is at most 30 s, so that its gaps can be told from activity.
    pub fn heartbeat_interval(&self) -> Duration {
        crate::adaptive::heartbeat_interval(self.idle_timeout, self.adaptive.is_some())
    }

    /// How far one busy deferral moves the idle deadline: a quarter of the idle timeout, at least
    /// one enforcer tick (2 minutes) and at most 15 minutes. CPU is read again when it passes, so a
    /// sandbox whose work ended is paused at most one step late.
    pub fn busy_deferral_step(&self) -> Duration {
        (self.idle_timeout / 4).clamp(Duration::from_secs(120), Duration::from_secs(900))
    }
}

impl Default for IdlePolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            snapshot_on_idle: false,
            busy_cpu_percent: None,
            max_busy_deferral: Duration::from_secs(2 * 3600),
            max_busy_for: Duration::from_secs(3600),
            cap_handoff: CapHandoff::PauseResume,
            adaptive: None,
        }
    }
}

/// How many runtime snapshots a project keeps. Pinned snapshots never count against `keep_last`
/// and never age out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetentionPolicy {
    pub keep_last: u32,
    pub max_age: Option<Duration>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            keep_last: 10,
            max_age: None,
        }
    }
}

/// Inactivity tiers: a sandbox paused longer than `archive_after` is archived (snapshotted unless a
/// snapshot already holds its paused state, then killed); the snapshots of a project inactive
/// longer than `delete_after` are deleted, pinned ones only with `delete_pinned`. Off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct InactivityPolicy {
    pub archive_after: Option<Duration>,
    pub delete_after: Option<Duration>,
    pub delete_pinned: bool,
}

impl InactivityPolicy {
    pub fn is_off(&self) -> bool {
        self.archive_after.is_none() && self.delete_after.is_none()
    }
}

/// Where a forked project's first open restores from: a snapshot of another project of its team.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForkSource {
    pub project_id: ProjectId,
    pub snapshot_id: super::SnapshotId,
}

/// What a caller says about a project: everything but its history.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectSpec {
    pub key: ProjectKey,
    pub template_id: String,
    pub idle: IdlePolicy,
    pub retention: RetentionPolicy,
    /// The E2B timeout given on create and resume; activity extends it, and E2B auto-pauses the
    /// sandbox when it runs out, a backstop should the idle enforcer not run.
    pub sandbox_timeout: Duration,
    pub snapshot_before_kill: bool,
    /// Whether the sandbox's URLs answer without E2B's traffic token. Off unless the project asks.
    pub public_traffic: bool,
    pub inactivity: InactivityPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Project {
    pub team_id: TeamId,
    pub project_id: ProjectId,
    pub template_id: String,
    pub idle: IdlePolicy,
    pub retention: RetentionPolicy,
    pub sandbox_timeout: Duration,
    pub snapshot_before_kill: bool,
    pub public_traffic: bool,
    pub inactivity: InactivityPolicy,
    /// Set by a fork until the project's first sandbox is restored from it.
    pub fork_of: Option<ForkSource>,
    /// The idle gaps adaptive idle has learned from (empty while it is off).
    pub idle_gaps: GapHistogram,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Project {
    pub fn key(&self) -> ProjectKey {
        ProjectKey::new(self.team_id.clone(), self.project_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(idle_secs: u64) -> u64 {
        IdlePolicy {
            idle_timeout: Duration::from_secs(idle_secs),
            ..IdlePolicy::default()
        }
        .heartbeat_interval()
        .as_secs()
    }

    #[test]
    fn heartbeat_interval_follows_the_idle_timeout() {
        assert_eq!(interval(60), 15, "a quarter when the 30 s floor would exceed it");
        assert_eq!(interval(600), 75, "an eighth in the middle");
        assert_eq!(interval(3600), 300, "capped at 5 minutes");
        assert_eq!(interval(200), 30, "the 30 s floor");
        for idle in [1, 10, 60, 119, 120, 600, 86_400] {
            assert!(interval(idle) * 4 <= idle, "never more than a quarter of {idle}s");
        }
    }

    #[test]
    fn an_adaptive_project_beats_at_least_every_30_seconds() {
        let adaptive = IdlePolicy {
            idle_timeout: Duration::from_secs(3600),
            adaptive: Some(AdaptiveIdle {
                min: Duration::from_secs(120),
                max: Duration::from_secs(7200),
                cold_weight: crate::adaptive::COLD_RESUME_WEIGHT,
            }),
            ..IdlePolicy::default()
        };
        assert_eq!(adaptive.heartbeat_interval(), Duration::from_secs(30));
        assert!(adaptive.heartbeat_interval() * 3 <= crate::adaptive::GAP_FLOOR);
    }
}
