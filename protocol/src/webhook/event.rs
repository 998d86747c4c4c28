//! A lifecycle event as E2B delivers it. Webhooks carry snake_case; the events API and older docs
//! carry camelCase for the same fields: both are accepted.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Created,
    Updated,
    Paused,
    Resumed,
    Killed,
    Checkpointed,
    Other,
}

impl EventKind {
    pub fn parse(name: &str) -> EventKind {
        match name.strip_prefix("sandbox.lifecycle.").unwrap_or(name) {
            "created" => Self::Created,
            "updated" => Self::Updated,
            "paused" => Self::Paused,
            "resumed" => Self::Resumed,
            "killed" => Self::Killed,
            "checkpointed" => Self::Checkpointed,
            _ => Self::Other,
        }
    }
}

/// What E2B reports a sandbox execution used, on `paused` and `killed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Execution {
    #[serde(alias = "vcpuCount")]
    pub vcpu_count: f64,
    #[serde(alias = "memoryMb", alias = "memoryMB")]
    pub memory_mb: f64,
    /// Milliseconds.
    #[serde(alias = "executionTime")]
    pub execution_time: f64,
}

// Parsed figures are finite (JSON has no NaN), so equality is total and hashing the bits agrees with it.
impl Eq for Execution {}

impl std::hash::Hash for Execution {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for figure in [self.vcpu_count, self.memory_mb, self.execution_time] {
            figure.to_bits().hash(state);
        }
    }
}

impl Execution {
    /// Negative figures count as zero: usage (and the budgets read from it) only ever grows.
    fn clamped(self) -> Execution {
        Execution {
            vcpu_count: self.vcpu_count.max(0.0),
            memory_mb: self.memory_mb.max(0.0),
            execution_time: self.execution_time.max(0.0),
        }
    }

    pub fn usage(&self) -> Usage {
        let seconds = (self.execution_time / 1000.0).max(0.0);
        Usage {
            run_seconds: seconds,
            vcpu_seconds: self.vcpu_count * seconds,
            memory_mb_seconds: self.memory_mb * seconds,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LifecycleEvent {
    /// E2B's event id; the same on every delivery attempt of the event.
    pub id: Option<String>,
    pub kind: EventKind,
    /// The type as sent, for logs and for kinds Sandman does not know.
    pub type_name: String,
    pub timestamp: OffsetDateTime,
    pub sandbox_id: String,
    /// The E2B team that owns the sandbox (`sandbox_team_id`): the account that sent the event.
    pub e2b_team_id: Option<String>,
    pub execution_id: Option<String>,
    /// The string entries of the sandbox's metadata (Sandman's own keys among them).
    pub metadata: BTreeMap<String, String>,
    pub execution: Option<Execution>,
    pub kill_reason: Option<String>,
    pub set_timeout: Option<OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MalformedEvent(String);

impl LifecycleEvent {
    pub fn parse(body: &[u8]) -> Result<LifecycleEvent, MalformedEvent> {
        let wire: WireEvent = serde_json::from_slice(body).map_err(|err| MalformedEvent(err.to_string()))?;
        if wire.sandbox_id.trim().is_empty() {
            return Err(MalformedEvent("sandbox_id is empty".into()));
        }
        let data = wire.event_data.unwrap_or_default();
        let metadata = data
            .sandbox_metadata
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(key, value)| match value {
                serde_json::Value::String(text) => Some((key, text)),
                _ => None,
            })
            .collect();
        Ok(LifecycleEvent {
            id: wire.id.filter(|id| !id.is_empty()),
            kind: EventKind::parse(&wire.event_type),
            type_name: wire.event_type,
            // Sessions store times in milliseconds: compared at that precision, a redelivery is
            // never "newer" than what it left behind.
            timestamp: wire
                .timestamp
                .replace_millisecond(wire.timestamp.millisecond())
                .unwrap_or(wire.timestamp),
            sandbox_id: wire.sandbox_id,
            e2b_team_id: wire.sandbox_team_id.filter(|team| !team.is_empty()),
            execution_id: wire.sandbox_execution_id,
            metadata,
            execution: data.execution.map(Execution::clamped),
            kill_reason: data.kill_reason,
            set_timeout: data.set_timeout,
        })
    }

    /// The compute to add to the session's usage, if the event reports any.
    pub fn usage(&self) -> Option<Usage> {
        match self.kind {
            EventKind::Paused | EventKind::Killed => self.execution.map(|e| e.usage()).filter(|u| u.run_seconds > 0.0),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct WireEvent {
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    #[serde(alias = "sandboxId")]
    sandbox_id: String,
    #[serde(default, alias = "sandboxTeamId")]
    sandbox_team_id: Option<String>,
    #[serde(default, alias = "sandboxExecutionId")]
    sandbox_execution_id: Option<String>,
    #[serde(default, alias = "eventData")]
    event_data: Option<WireEventData>,
}

#[derive(Default, Deserialize)]
struct WireEventData {
    #[serde(default, alias = "sandboxMetadata")]
    sandbox_metadata: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    execution: Option<Execution>,
    #[serde(default, alias = "killReason")]
    kill_reason: Option<String>,
    #[serde(default, alias = "setTimeout", with = "time::serde::rfc3339::option")]
    set_timeout: Option<OffsetDateTime>,
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
