//! The table's change stream, as Lambda hands it over (DynamoDB JSON images), and which changes an
//! app hears about: a lifecycle-log line written (INSERT of `EVENT#`), a snapshot that became
//! READY, a snapshot row removed after it was READY or DELETING (with why, when the team's
//! snapshot quota took it: `reason`). The event source mapping's
//! filter (template.yaml) lets only these through; `classify` decides again, so the local stack's
//! poller, which has no filter, delivers exactly what AWS would.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::EventType;
use crate::domain::{ProjectId, SessionState, TeamId};
use crate::store::keys;

pub type Image = HashMap<String, serde_dynamo::AttributeValue>;

#[derive(Debug, Deserialize)]
pub struct StreamBatch {
    #[serde(rename = "Records")]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventName")]
    pub event_name: String,
    pub dynamodb: Change,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    #[serde(default)]
    pub keys: Image,
    pub new_image: Option<Image>,
    pub old_image: Option<Image>,
}

/// One change an app may hear about, ready to fan out to the team's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEvent {
    /// `webhook-id`: the same for every delivery of this change, retries and duplicates included.
    pub id: String,
    pub event_type: EventType,
    pub team: TeamId,
    /// The delivery body (`type`, `timestamp`, `data`).
    pub body: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("stream record without {0}")]
    Missing(&'static str),
    #[error("stream record with a malformed {0}")]
    Malformed(&'static str),
}

fn text<'a>(image: &'a Image, name: &'static str) -> Option<&'a str> {
    match image.get(name) {
        Some(serde_dynamo::AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

fn required<'a>(image: &'a Image, name: &'static str) -> Result<&'a str, StreamError> {
    text(image, name).ok_or(StreamError::Missing(name))
}

fn millis(image: &Image, name: &'static str) -> Result<OffsetDateTime, StreamError> {
    let Some(serde_dynamo::AttributeValue::N(value)) = image.get(name) else {
        return Err(StreamError::Missing(name));
    };
    let ms: i128 = value.parse().map_err(|_| StreamError::Malformed(name))?;
    OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).map_err(|_| StreamError::Malformed(name))
}

fn state(image: &Image, name: &'static str) -> Result<Option<SessionState>, StreamError> {
    text(image, name)
        .map(|value| SessionState::parse(value).ok_or(StreamError::Malformed(name)))
        .transpose()
}

/// `PROJECT#{team}#{project}`: ids never contain `#`.
fn project_of(pk: &str) -> Result<(TeamId, ProjectId), StreamError> {
    let (team, project) = pk
        .strip_prefix("PROJECT#")
        .and_then(|rest| rest.split_once('#'))
        .ok_or(StreamError::Malformed("pk"))?;
    Ok((
        TeamId::parse(team).map_err(|_| StreamError::Malformed("pk"))?,
        ProjectId::parse(project).map_err(|_| StreamError::Malformed("pk"))?,
    ))
}

fn body(event_type: EventType, at: OffsetDateTime, data: Value) -> String {
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({ "type": event_type, "timestamp": at, "data": data }).to_string()
}

/// The event a change stands for, if an app hears about it at all.
pub fn classify(record: &StreamRecord, now: OffsetDateTime) -> Result<Option<OutboundEvent>, StreamError> {
    let keys_image = &record.dynamodb.keys;
    let sk = required(keys_image, "sk")?;
    let pk = required(keys_image, "pk")?;
    let status = |image: &Option<Image>| image.as_ref().and_then(|i| text(i, "status").map(str::to_owned));
    match record.event_name.as_str() {
        "INSERT" if sk.starts_with(keys::EVENT_PREFIX) => {
            let image = record
                .dynamodb
                .new_image
                .as_ref()
                .ok_or(StreamError::Missing("NewImage"))?;
            // A settings change (env vars, secrets: `store/settings.rs`) moves no sandbox: apps
            // are not told of it (its names stay in the project's own log).
            if matches!(image.get("settings"), Some(serde_dynamo::AttributeValue::Bool(true))) {
                return Ok(None);
            }
            let (team, project) = project_of(pk)?;
            let to = state(image, "to")?.ok_or(StreamError::Missing("to"))?;
            let from = state(image, "from")?;
            let restored_from = text(image, "restoredFrom");
            let event_type = EventType::of_transition(from, to, restored_from.is_some());
            let data = json!({
                "projectId": project,
                "from": from.map(SessionState::as_str),
                "to": to.as_str(),
                "actor": required(image, "actor")?,
                "cause": required(image, "cause")?,
                "sandboxId": text(image, "sandboxId"),
                "restoredFrom": restored_from,
            });
            let id = format!("msg_{}", &sk[keys::EVENT_PREFIX.len()..]);
            let at = millis(image, "at")?;
            Ok(Some(OutboundEvent {
                id,
                event_type,
                team,
                body: body(event_type, at, data),
            }))
        }
        "MODIFY"
            if sk.starts_with(keys::SNAPSHOT_PREFIX)
                && status(&record.dynamodb.new_image).as_deref() == Some("READY")
                && status(&record.dynamodb.old_image).as_deref() == Some("PENDING") =>
        {
            snapshot_event(
                pk,
                sk,
                EventType::SnapshotCreated,
                record.dynamodb.new_image.as_ref(),
                now,
            )
        }
        "REMOVE"
            if sk.starts_with(keys::SNAPSHOT_PREFIX)
                && matches!(
                    status(&record.dynamodb.old_image).as_deref(),
                    Some("READY" | "DELETING")
                ) =>
        {
            snapshot_event(
                pk,
                sk,
                EventType::SnapshotDeleted,
                record.dynamodb.old_image.as_ref(),
                now,
            )
        }
        _ => Ok(None),
    }
}

fn snapshot_event(
    pk: &str,
    sk: &str,
    event_type: EventType,
    image: Option<&Image>,
    now: OffsetDateTime,
) -> Result<Option<OutboundEvent>, StreamError> {
    let (team, project) = project_of(pk)?;
    let snapshot_id = &sk[keys::SNAPSHOT_PREFIX.len()..];
    let image = image.ok_or(StreamError::Missing("image"))?;
    let mut data = json!({
        "projectId": project,
        "snapshotId": snapshot_id,
        "kind": text(image, "kind"),
        "description": text(image, "description"),
    });
    let verb = if event_type == EventType::SnapshotCreated {
        "created"
    } else {
        // Why, when it was not the user's nor its project's retention (`team-snapshot-quota`).
        data["reason"] = json!(text(image, "deleteReason"));
        "deleted"
    };
    let id = format!("msg_snapshot_{snapshot_id}_{verb}");
    Ok(Some(OutboundEvent {
        id,
        event_type,
        team,
        body: body(event_type, now, data),
    }))
}
