use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::SessionState;

/// Who moved a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Actor {
    User,
    IdleEnforcer,
    Webhook,
    Reconciler,
    /// The snapshot pruner applying a project's inactivity tiers.
    Pruner,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::IdleEnforcer => "idle-enforcer",
            Self::Webhook => "webhook",
            Self::Reconciler => "reconciler",
            Self::Pruner => "pruner",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::User,
            Self::IdleEnforcer,
            Self::Webhook,
            Self::Reconciler,
            Self::Pruner,
        ]
        .into_iter()
        .find(|a| a.as_str() == value)
    }
}

/// One line of a project's append-only lifecycle log: a transition, or a change of the project's
/// settings (env vars, secrets: who changed which names, never a value), which moves nothing and
/// names the state the session was in (`None` for both when the project has no session).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub cause: String,
    pub from: Option<SessionState>,
    /// Always set on a transition.
    pub to: Option<SessionState>,
    pub sandbox_id: Option<String>,
}
