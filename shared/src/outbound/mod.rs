//! Webhooks Sandman sends to a team's app: each lifecycle change as a Standard Webhooks message
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`). This module is the message and its
//! signature; the TypeScript package's verifier is tested against it (`sandman-local
//! webhook-sample`).

pub mod address;
mod delivery;
mod endpoints;
mod events;
mod register;
mod signature;
pub mod stream;

use serde::Serialize;
use time::OffsetDateTime;

pub use delivery::{
    Attempt, Delivery, DeliveryJob, DeliveryStatus, MAX_ATTEMPTS, REQUEST_TIMEOUT, SendError, Sender, backoff, fan_out,
};
pub use endpoints::{
    Endpoint, EndpointError, MAX_ENDPOINTS_PER_TEAM, NewEndpoint, StoredSecret, check_url, generate_secret,
    new_endpoint_id,
};
pub use events::EventType;
pub use signature::{SigningSecret, SigningSecretError, VerifyError, sign, verify};
pub use stream::{OutboundEvent, StreamBatch, StreamError, StreamRecord, classify};

use crate::domain::{LifecycleRecord, SessionState};

/// The event type an app subscribes to, from a lifecycle transition.
pub fn event_type(from: Option<SessionState>, to: SessionState) -> &'static str {
    EventType::of_transition(from, to, false).as_str()
}

/// The JSON body of one delivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message<'a> {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub data: MessageData<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageData<'a> {
    pub project_id: &'a str,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub actor: &'static str,
    pub cause: &'a str,
    pub sandbox_id: Option<&'a str>,
}

impl<'a> Message<'a> {
    /// The message of a transition; `None` for a settings line of a project without a session
    /// (apps are not told of settings changes: `stream.rs` passes over them).
    pub fn of(project_id: &'a str, record: &'a LifecycleRecord) -> Option<Self> {
        let to = record.to?;
        Some(Message {
            event_type: event_type(record.from, to),
            timestamp: record.at,
            data: MessageData {
                project_id,
                from: record.from.map(SessionState::as_str),
                to: to.as_str(),
                actor: record.actor.as_str(),
                cause: &record.cause,
                sandbox_id: record.sandbox_id.as_deref(),
            },
        })
    }
}

/// The three headers of a signed delivery, in sending order.
pub fn headers(secret: &SigningSecret, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", sign(secret, id, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests;
