//! What an app can subscribe to. A new kind of event (a handoff, a budget crossed) is a variant
//! here, its name in `as_str`, and the table change it comes from in `stream.rs`.

use serde::{Deserialize, Serialize};

use crate::domain::SessionState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum EventType {
    SandboxStarting,
    SandboxRunning,
    SandboxResumed,
    SandboxRestored,
    SandboxPausing,
    SandboxPaused,
    SandboxResuming,
    SandboxStopping,
    SandboxKilled,
    SnapshotCreated,
    SnapshotDeleted,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        Self::SandboxStarting,
        Self::SandboxRunning,
        Self::SandboxResumed,
        Self::SandboxRestored,
        Self::SandboxPausing,
        Self::SandboxPaused,
        Self::SandboxResuming,
        Self::SandboxStopping,
        Self::SandboxKilled,
        Self::SnapshotCreated,
        Self::SnapshotDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SandboxStarting => "sandbox.starting",
            Self::SandboxRunning => "sandbox.running",
            Self::SandboxResumed => "sandbox.resumed",
            Self::SandboxRestored => "sandbox.restored",
            Self::SandboxPausing => "sandbox.pausing",
            Self::SandboxPaused => "sandbox.paused",
            Self::SandboxResuming => "sandbox.resuming",
            Self::SandboxStopping => "sandbox.stopping",
            Self::SandboxKilled => "sandbox.killed",
            Self::SnapshotCreated => "snapshot.created",
            Self::SnapshotDeleted => "snapshot.deleted",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The event of a lifecycle transition. A sandbox that reaches RUNNING from a snapshot is
    /// `restored`; from RESUMING, `resumed`.
    pub fn of_transition(from: Option<SessionState>, to: SessionState, restored: bool) -> Self {
        match (from, to) {
            (Some(SessionState::Resuming), SessionState::Running) => Self::SandboxResumed,
            (_, SessionState::Running) if restored => Self::SandboxRestored,
            (_, SessionState::Running) => Self::SandboxRunning,
            (_, SessionState::Paused) => Self::SandboxPaused,
            (_, SessionState::Killed) => Self::SandboxKilled,
            (_, SessionState::Starting) => Self::SandboxStarting,
            (_, SessionState::Pausing) => Self::SandboxPausing,
            (_, SessionState::Resuming) => Self::SandboxResuming,
            (_, SessionState::Stopping) => Self::SandboxStopping,
        }
    }
}

impl From<EventType> for &'static str {
    fn from(t: EventType) -> &'static str {
        t.as_str()
    }
}

impl TryFrom<String> for EventType {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        Self::parse(&name).ok_or_else(|| format!("unknown event type {name:?}"))
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
