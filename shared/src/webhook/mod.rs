//! E2B lifecycle webhooks: how Sandman learns what E2B did on its own (timeouts, auto-pauses,
//! kills, resumes started elsewhere).
//!
//! Receiving one is: verify the signature over the raw body, parse the event, find the session it
//! concerns, decide what it means ([`decide`], pure), and write that through the state machine with
//! the event's dedupe mark in the same transaction. The first two and the decision are CPU work
//! callable on their own ([`verify_and_parse`], [`decide`]): the receiver's cost without DynamoDB.

mod apply;
mod decide;
mod error;
mod event;
pub mod signature;

pub use apply::{Delivery, Receipt};
pub use decide::{DEDUPE_FOR, Decision, Ignored, Rules, TIMEOUT_TOLERANCE, decide};
pub use error::WebhookError;
pub use event::{EventKind, Execution, LifecycleEvent, MalformedEvent};
pub use signature::{SignatureError, sign};

use crate::secrets::Secret;

/// Event ids become part of a DynamoDB key; E2B's are UUIDs.
const MAX_ID_LEN: usize = 200;

/// A delivery whose signature verified: the event and the id that makes its effect happen once.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    pub event: LifecycleEvent,
    /// The event id; the delivery id when E2B sent none.
    pub dedupe_id: String,
}

/// Checks the signature against every accepted secret, then parses. Nothing is parsed before the
/// signature verifies.
pub fn verify_and_parse(secrets: &[Secret], delivery: &Delivery<'_>) -> Result<VerifiedEvent, WebhookError> {
    signature::verify(secrets, delivery.signature, delivery.body)?;
    let event = LifecycleEvent::parse(delivery.body).map_err(|err| WebhookError::Malformed(err.to_string()))?;
    let dedupe_id = event
        .id
        .clone()
        .or_else(|| {
            delivery
                .delivery_id
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(String::from)
        })
        .ok_or_else(|| WebhookError::Malformed("the event has no id and the delivery no e2b-delivery-id".into()))?;
    if dedupe_id.len() > MAX_ID_LEN {
        return Err(WebhookError::Malformed(format!(
            "the event id is longer than {MAX_ID_LEN} bytes"
        )));
    }
    Ok(VerifiedEvent { event, dedupe_id })
}
