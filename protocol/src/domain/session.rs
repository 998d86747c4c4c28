use std::time::Duration;

use time::OffsetDateTime;

use super::{Actor, SessionState, SnapshotId};

/// Where the sandbox is reachable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SandboxRef {
    pub sandbox_id: String,
    pub domain: Option<String>,
    /// What envd (created with `secure: true`) requires of whoever talks to the sandbox: shown
    /// only to the project's own team, never logged and never in the lifecycle log.
    pub access_token: Option<super::Secret>,
}

/// Compute E2B reported for this project's sandboxes (from `paused`/`killed` events), for cost reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub run_seconds: f64,
    pub vcpu_seconds: f64,
    pub memory_mb_seconds: f64,
}

// Usage is never NaN (E2B's figures, added up), so equality is total and hashing the bits agrees with it.
impl Eq for Usage {}

impl std::hash::Hash for Usage {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for figure in [self.run_seconds, self.vcpu_seconds, self.memory_mb_seconds] {
            figure.to_bits().hash(state);
        }
    }
}

/// The one sandbox a project is using now, and how it got into its state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Session {
    /// A new id for every sandbox the project gets (create or restore), carried in the
    /// sandbox's E2B metadata so events about an older sandbox are recognised as such.
    pub session_id: String,
    pub sandbox: Option<SandboxRef>,
    pub state: SessionState,
    pub state_since: OffsetDateTime,
    /// In a transitional state: until when its claimant may still be working. Past it, the next
    /// actor that meets the session asks E2B what happened and settles it.
    pub lease_until: Option<OffsetDateTime>,
    pub last_active_at: OffsetDateTime,
    /// When the idle enforcer may pause it: `last_active_at` plus the project's idle timeout.
    pub idle_at: Option<OffsetDateTime>,
    /// When the sandbox's current continuous run began (the last create or resume): E2B ends a
    /// run at the plan's cap, and Sandman hands it off before then.
    pub running_since: Option<OffsetDateTime>,
    /// Since when busy deferrals have kept the sandbox up without activity.
    pub busy_since: Option<OffsetDateTime>,
    /// Held awake until then by activity with `busyForSeconds`.
    pub busy_until: Option<OffsetDateTime>,
    /// When E2B will time the sandbox out unless extended.
    pub timeout_at: Option<OffsetDateTime>,
    pub paused_at: Option<OffsetDateTime>,
    pub last_actor: Actor,
    pub last_cause: String,
    pub last_error: Option<String>,
    /// Consecutive failed attempts of the last action (pause, mostly); reset by success.
    pub failures: u32,
    pub restored_from: Option<SnapshotId>,
    /// A restore's claim (STARTING): the session id of the sandbox it replaces, which stays
    /// `sandbox` until the new one runs. See [`Session::replaced`].
    pub replaces_session: Option<String>,
    /// A sandbox this session replaced that E2B may still run (a restore's old one, until it is
    /// killed): it holds one of the team's live-sandbox units meanwhile.
    pub retiring: Option<String>,
    /// Timestamp of the newest E2B event applied; older deliveries change nothing.
    pub last_event_at: Option<OffsetDateTime>,
    pub usage: Usage,
    /// The project's settings version (env vars, secrets) the sandbox was created with; `None`
    /// when not known (a sandbox from before settings, a live fork's). E2B takes env vars only
    /// at create: a newer version means a restart is required to apply it.
    pub settings_version: Option<u64>,
}

/// How long a claim (STARTING, RESUMING, PAUSING, STOPPING) holds the session. Every claimant
/// budgets its E2B calls to end inside it (see `Deadline`), so a lapsed lease means the claimant died.
pub const CLAIM_LEASE: Duration = Duration::from_secs(40);

/// The states in which E2B runs (or is about to run) the session's sandbox: each holds one of the
/// team's live-sandbox units. A paused or killed sandbox holds none.
pub fn is_live(state: SessionState) -> bool {
    matches!(
        state,
        SessionState::Starting
            | SessionState::Running
            | SessionState::Pausing
            | SessionState::Resuming
            | SessionState::Stopping
    )
}

impl Session {
    /// When the current claim lapses; `None` when the session is not claimed. Rows written before
    /// leases existed count from `state_since`.
    pub fn lease_end(&self) -> Option<OffsetDateTime> {
        self.state
            .is_transitional()
            .then(|| self.lease_until.unwrap_or(self.state_since + CLAIM_LEASE))
    }

    /// While a restore's claim is open: the sandbox it replaces and that sandbox's session id.
    /// A restore that fails, or whose claimant dies, goes back to it.
    pub fn replaced(&self) -> Option<(&str, &SandboxRef)> {
        match (self.state, &self.replaces_session, &self.sandbox) {
            (SessionState::Starting, Some(session_id), Some(sandbox)) => Some((session_id, sandbox)),
            _ => None,
        }
    }

    /// Whether the live sandbox runs with settings older than `current` (the project's settings
    /// version): E2B takes env vars (and network rules) only at create, so they apply from the next
    /// create or restore. A killed (or never started) sandbox needs nothing.
    pub fn restart_required(&self, current: u64) -> bool {
        self.state != super::SessionState::Killed
            && self.sandbox.is_some()
            && self.settings_version.unwrap_or(0) < current
    }

    /// A claim whose claimant can no longer be working.
    pub fn lease_lapsed(&self, now: OffsetDateTime) -> bool {
        self.lease_end().is_some_and(|end| end <= now)
    }
}
