//! A sandbox as the emulator keeps it, and the rules for moving it between states.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Running,
    Paused,
    Killed,
}

/// A short operation during which E2B refuses other state changes with 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Pausing,
    Snapshotting,
    /// Checkpointed in place for a fork: it keeps its id and expiry and runs on afterwards.
    Forking,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    Kill,
    Pause,
}

/// Everything the emulator knows about one sandbox, killed ones included.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxView {
    pub sandbox_id: String,
    pub team_id: String,
    /// The `templateID` the sandbox was created with (a snapshot id when restored from one).
    pub template_id: String,
    pub build_id: String,
    /// The raw template id of the snapshot this sandbox was created from.
    pub from_snapshot: Option<String>,
    pub state: SandboxState,
    pub transition: Option<Transition>,
    pub on_timeout: OnTimeout,
    pub auto_resume: bool,
    pub metadata: BTreeMap<String, String>,
    pub env_vars: BTreeMap<String, String>,
    /// `network.rules` from create (or `PUT /sandboxes/{id}/network`): what E2B's egress proxy
    /// adds to the sandbox's outbound requests (`Emulator::egress_headers`).
    pub network_rules: crate::secrets::NetworkRules,
    pub cpu_count: u32,
    pub memory_mb: u32,
    pub disk_size_mb: u32,
    pub envd_access_token: String,
    /// New on every resume.
    pub execution_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Start of the current execution (creation or last resume).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paused_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub killed_at: Option<OffsetDateTime>,
    pub kill_reason: Option<String>,
    /// CPU use set by a test (`/admin/sandboxes/{id}/metrics`), reported by the metrics routes
    /// while the sandbox runs; `None` reports a small synthetic load. Kept across pause and resume.
    pub cpu_used_pct: Option<f64>,
    /// What a test wrote into the sandbox (path -> content), standing in for its filesystem and
    /// memory: kept across pause and resume, captured by a snapshot, restored with it.
    pub files: BTreeMap<String, String>,
    /// The sandbox this one was forked from (`POST /sandboxes/{id}/fork`).
    pub forked_from: Option<String>,
    /// Every state it has been in, oldest first, each from the emulated time it began (a pause
    /// from the moment it began pausing): what E2B ran when, for a judge of answers given meanwhile.
    pub history: Vec<StateChange>,
}

/// The sandbox entered `state` at `at` (emulated time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StateChange {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub state: SandboxState,
}

impl SandboxView {
    /// The state E2B reports: a pausing sandbox already reads as paused.
    pub fn reported_state(&self) -> SandboxState {
        match self.transition {
            Some(Transition::Pausing) => SandboxState::Paused,
            _ => self.state,
        }
    }

    /// The state it was in at `at` (`None`: not created yet).
    pub fn state_at(&self, at: OffsetDateTime) -> Option<SandboxState> {
        self.history
            .iter()
            .take_while(|change| change.at <= at)
            .last()
            .map(|change| change.state)
    }

    /// Whether it was in `state` at some instant from `from` to `to` (emulated time, both included).
    pub fn was_in(&self, state: SandboxState, from: OffsetDateTime, to: OffsetDateTime) -> bool {
        self.state_at(from) == Some(state)
            || self
                .history
                .iter()
                .any(|change| change.at > from && change.at <= to && change.state == state)
    }

    /// Records a change of state at `at`, keeping the history in time order (an expiry is applied
    /// at its own deadline, which may lie before the last change recorded).
    pub(crate) fn record(&mut self, at: OffsetDateTime, state: SandboxState) {
        if self
            .history
            .last()
            .is_some_and(|last| last.state == state && last.at <= at)
        {
            return;
        }
        let index = self.history.partition_point(|change| change.at <= at);
        self.history.insert(index, StateChange { at, state });
    }

    pub fn is_live(&self) -> bool {
        self.state != SandboxState::Killed
    }

    pub(crate) fn ensure_idle(&self) -> Result<(), ApiError> {
        match self.transition {
            None => Ok(()),
            Some(transition) => Err(ApiError::Conflict(format!(
                "Sandbox \"{}\" is in transition ({transition:?}), try again later",
                self.sandbox_id
            ))),
        }
    }

    pub(crate) fn ensure_running(&self) -> Result<(), ApiError> {
        self.ensure_idle()?;
        match self.state {
            SandboxState::Running => Ok(()),
            SandboxState::Paused => Err(ApiError::Conflict(format!("Sandbox \"{}\" is paused", self.sandbox_id))),
            SandboxState::Killed => Err(ApiError::SandboxNotFound(self.sandbox_id.clone())),
        }
    }

    /// How long the current (or, once paused, the last) execution ran.
    pub(crate) fn execution_ms(&self, now: OffsetDateTime) -> i64 {
        let ended = self.paused_at.unwrap_or(now);
        let elapsed = ended - self.started_at;
        i64::try_from(elapsed.whole_milliseconds()).unwrap_or(i64::MAX).max(0)
    }
}
