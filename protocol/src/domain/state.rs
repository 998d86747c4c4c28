//! The lifecycle state machine, written once. See `STATE_MACHINE.md` beside this file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionState {
    Starting,
    Running,
    Pausing,
    Paused,
    Resuming,
    Stopping,
    Killed,
}

impl SessionState {
    pub const ALL: [SessionState; 7] = [
        Self::Starting,
        Self::Running,
        Self::Pausing,
        Self::Paused,
        Self::Resuming,
        Self::Stopping,
        Self::Killed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Pausing => "PAUSING",
            Self::Paused => "PAUSED",
            Self::Resuming => "RESUMING",
            Self::Stopping => "STOPPING",
            Self::Killed => "KILLED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// A Sandman action is under way; E2B's answer will settle it.
    pub fn is_transitional(self) -> bool {
        matches!(self, Self::Starting | Self::Pausing | Self::Resuming | Self::Stopping)
    }
}

/// What happened, or what someone asks for. Requests (`Start`, `Restore`, `Pause`, `Resume`, `Stop`) move a
/// session into a transitional state; reports (`Running`, `Paused`, `Killed`) say what E2B's
/// sandbox now is, whether Sandman's own call returned or a webhook or the reconciler said so;
/// `Failed` rolls a request back when E2B refused it without changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionEvent {
    Start,
    /// Replace the sandbox with one from a snapshot. The session keeps its current sandbox (and
    /// remembers its session id) until the new one runs, so a failed restore goes back to it.
    Restore,
    Pause,
    Resume,
    Stop,
    Running,
    Paused,
    Killed,
    Failed,
}

impl SessionEvent {
    pub const ALL: [SessionEvent; 9] = [
        Self::Start,
        Self::Restore,
        Self::Pause,
        Self::Resume,
        Self::Stop,
        Self::Running,
        Self::Paused,
        Self::Killed,
        Self::Failed,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    /// The session already is where the event would take it: nothing to do.
    #[error("the sandbox is already {0:?}")]
    Unchanged(SessionState),
    /// Another action on this session is still in flight.
    #[error("the sandbox is busy ({0:?})")]
    Busy(SessionState),
    #[error("{event:?} is not allowed from {from:?}")]
    Illegal {
        from: Option<SessionState>,
        event: SessionEvent,
    },
}

/// `from` is `None` for a project that never had a sandbox.
pub fn transition(from: Option<SessionState>, event: SessionEvent) -> Result<SessionState, Refusal> {
    use SessionEvent as E;
    use SessionState as S;
    let illegal = Refusal::Illegal { from, event };
    let Some(state) = from else {
        return if matches!(event, E::Start | E::Restore) {
            Ok(S::Starting)
        } else {
            Err(illegal)
        };
    };
    match (state, event) {
        (S::Killed, E::Start | E::Restore) => Ok(S::Starting),
        (S::Running | S::Paused, E::Restore) => Ok(S::Starting),
        (S::Killed, E::Killed | E::Stop) => Err(Refusal::Unchanged(S::Killed)),
        (S::Killed, _) => Err(illegal),

        (S::Stopping, E::Killed) => Ok(S::Killed),
        (S::Stopping, E::Failed) => Ok(S::Running),
        (S::Stopping, E::Running | E::Paused) => Err(illegal),

        (_, E::Killed) => Ok(S::Killed),
        (S::Running, E::Running) | (S::Paused, E::Paused) => Err(Refusal::Unchanged(state)),
        (_, E::Running) => Ok(S::Running),
        (_, E::Paused) => Ok(S::Paused),

        (S::Running, E::Pause) => Ok(S::Pausing),
        (S::Running, E::Stop) | (S::Paused, E::Stop) => Ok(S::Stopping),
        (S::Running, E::Resume) => Err(Refusal::Unchanged(S::Running)),
        (S::Paused, E::Resume) => Ok(S::Resuming),
        (S::Paused, E::Pause) => Err(Refusal::Unchanged(S::Paused)),

        (S::Starting, E::Failed) => Ok(S::Killed),
        (S::Pausing, E::Failed) => Ok(S::Running),
        (S::Resuming, E::Failed) => Ok(S::Paused),

        (
            S::Starting | S::Pausing | S::Resuming | S::Stopping,
            E::Start | E::Restore | E::Pause | E::Resume | E::Stop,
        ) => Err(Refusal::Busy(state)),
        (S::Running | S::Paused, E::Start | E::Failed) => Err(illegal),
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
