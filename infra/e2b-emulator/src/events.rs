//! Lifecycle events, as E2B's webhooks (snake_case) and events API (camelCase) carry them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::clock::rfc3339;
use crate::ids;
use crate::sandbox::SandboxView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    #[serde(rename = "sandbox.lifecycle.created")]
    Created,
    #[serde(rename = "sandbox.lifecycle.updated")]
    Updated,
    #[serde(rename = "sandbox.lifecycle.paused")]
    Paused,
    #[serde(rename = "sandbox.lifecycle.resumed")]
    Resumed,
    #[serde(rename = "sandbox.lifecycle.killed")]
    Killed,
    #[serde(rename = "sandbox.lifecycle.checkpointed")]
    Checkpointed,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Created,
        EventType::Updated,
        EventType::Paused,
        EventType::Resumed,
        EventType::Killed,
        EventType::Checkpointed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "sandbox.lifecycle.created",
            EventType::Updated => "sandbox.lifecycle.updated",
            EventType::Paused => "sandbox.lifecycle.paused",
            EventType::Resumed => "sandbox.lifecycle.resumed",
            EventType::Killed => "sandbox.lifecycle.killed",
            EventType::Checkpointed => "sandbox.lifecycle.checkpointed",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|event| event.as_str() == name)
    }

    fn label(self) -> &'static str {
        match self {
            EventType::Created => "create",
            EventType::Updated => "update",
            EventType::Paused => "pause",
            EventType::Resumed => "resume",
            EventType::Killed => "kill",
            EventType::Checkpointed => "checkpoint",
        }
    }
}

/// What happened besides the event type, filled in by the operation that caused it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventDetail {
    pub kill_reason: Option<String>,
    pub set_timeout: Option<OffsetDateTime>,
    pub snapshot_id: Option<String>,
}

/// One lifecycle event as E2B emitted it (whatever became of its deliveries): for a judge of
/// what Sandman was told, e.g. the compute each execution used.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub event_id: String,
    pub event_type: EventType,
    pub sandbox_id: String,
    pub team_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// New on every resume: what E2B bills an execution by.
    pub execution_id: String,
    /// On `paused` and `killed`: the execution's length (ms) and size.
    pub execution: Option<ExecutionView>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExecutionView {
    pub execution_ms: i64,
    pub vcpu_count: u32,
    pub memory_mb: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct LifecycleEvent {
    pub id: String,
    pub event_type: EventType,
    pub sandbox_id: String,
    pub team_id: String,
    /// The whole event as delivered to webhooks (snake_case).
    pub webhook_body: Value,
    /// The same event as the events API returns it (camelCase).
    pub api_body: Value,
    pub view: EventView,
}

impl LifecycleEvent {
    pub(crate) fn new(event_type: EventType, sandbox: &SandboxView, at: OffsetDateTime, detail: EventDetail) -> Self {
        let id = ids::uuid();
        let view = EventView {
            event_id: id.clone(),
            event_type,
            sandbox_id: sandbox.sandbox_id.clone(),
            team_id: sandbox.team_id.clone(),
            at,
            execution_id: sandbox.execution_id.clone(),
            execution: matches!(event_type, EventType::Paused | EventType::Killed).then(|| ExecutionView {
                execution_ms: sandbox.execution_ms(at),
                vcpu_count: sandbox.cpu_count,
                memory_mb: sandbox.memory_mb,
            }),
            metadata: sandbox.metadata.clone(),
        };
        let data = event_data(event_type, sandbox, at, detail);
        let mut webhook_body = json!({
            "id": id,
            "version": "v2",
            "type": event_type.as_str(),
            "timestamp": rfc3339(at),
            "event_category": "lifecycle",
            "event_label": event_type.label(),
            "sandbox_id": sandbox.sandbox_id,
            "sandbox_execution_id": sandbox.execution_id,
            "sandbox_template_id": sandbox.template_id,
            "sandbox_build_id": sandbox.build_id,
            "sandbox_team_id": sandbox.team_id,
        });
        let api_body = json!({
            "id": id,
            "version": "v2",
            "type": event_type.as_str(),
            "timestamp": rfc3339(at),
            "eventCategory": "lifecycle",
            "eventLabel": event_type.label(),
            "eventData": data.clone(),
            "sandboxId": sandbox.sandbox_id,
            "sandboxExecutionId": sandbox.execution_id,
            "sandboxTemplateId": sandbox.template_id,
            "sandboxBuildId": sandbox.build_id,
            "sandboxTeamId": sandbox.team_id,
        });
        if let (Some(data), Some(body)) = (data, webhook_body.as_object_mut()) {
            body.insert("event_data".to_owned(), data);
        }
        Self {
            id,
            event_type,
            sandbox_id: sandbox.sandbox_id.clone(),
            team_id: sandbox.team_id.clone(),
            webhook_body,
            api_body,
            view,
        }
    }
}

fn event_data(event_type: EventType, sandbox: &SandboxView, at: OffsetDateTime, detail: EventDetail) -> Option<Value> {
    let mut data = BTreeMap::<&str, Value>::new();
    if !sandbox.metadata.is_empty() {
        data.insert("sandbox_metadata", json!(sandbox.metadata));
    }
    if matches!(event_type, EventType::Paused | EventType::Killed) {
        data.insert(
            "execution",
            json!({
                "started_at": rfc3339(sandbox.started_at),
                "vcpu_count": sandbox.cpu_count,
                "memory_mb": sandbox.memory_mb,
                "execution_time": sandbox.execution_ms(at),
            }),
        );
    }
    if let Some(reason) = detail.kill_reason {
        data.insert("kill_reason", json!(reason));
    }
    if let Some(end_at) = detail.set_timeout {
        data.insert("set_timeout", json!(rfc3339(end_at)));
    }
    if let Some(snapshot_id) = detail.snapshot_id {
        data.insert("snapshot_id", json!(snapshot_id));
    }
    (!data.is_empty()).then(|| json!(data))
}
