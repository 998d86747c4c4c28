//! E2B lifecycle webhooks: how Sandman learns what E2B did on its own (timeouts, auto-pauses,
//! kills, resumes started elsewhere).
//!
//! Receiving one is: verify the signature over the raw body, parse the event, find the session it
//! concerns, decide what it means ([`decide`], pure), and write that through the state machine with
//! the event's dedupe mark in the same transaction. The first two and the decision are CPU work
//! callable on their own ([`verify_and_parse`], [`decide`]): the receiver's cost without DynamoDB.

mod account;
mod apply;
mod error;
pub mod signature;

pub use apply::Delivery;
pub use error::WebhookError;
pub use sandman_protocol::webhook::{
    DEDUPE_FOR, Decision, EventKind, Execution, Ignored, LifecycleEvent, MalformedEvent, Receipt, Rules,
    TIMEOUT_TOLERANCE, decide,
};
pub use signature::{SignatureError, sign};

use crate::secrets::Secret;

/// Event ids become part of a DynamoDB key; E2B's are UUIDs.
const MAX_ID_LEN: usize = 200;

/// A delivery whose signature verified: the event and the id that makes its effect happen once.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    pub event: LifecycleEvent,
    /// The event id; when E2B sent none, a hash of the signed body. Never the `e2b-delivery-id`
    /// header alone: it is not signed, and it changes on every attempt.
    pub dedupe_id: String,
}

/// Checks the signature against every accepted secret, then parses. Nothing is parsed before the
/// signature verifies.
pub fn verify_and_parse(secrets: &[Secret], delivery: &Delivery<'_>) -> Result<VerifiedEvent, WebhookError> {
    signature::verify(secrets, delivery.signature, delivery.body)?;
    let event = LifecycleEvent::parse(delivery.body).map_err(|err| WebhookError::Malformed(err.to_string()))?;
    let dedupe_id = match &event.id {
        Some(id) => id.clone(),
        None => body_digest(delivery.body),
    };
    if dedupe_id.len() > MAX_ID_LEN {
        return Err(WebhookError::Malformed(format!(
            "the event id is longer than {MAX_ID_LEN} bytes"
        )));
    }
    Ok(VerifiedEvent { event, dedupe_id })
}

/// Events older than this are refused: well inside `DEDUPE_FOR`, so a replay either finds its
/// dedupe mark or is too old to be applied.
pub const MAX_EVENT_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Clock skew tolerated on events stamped in the future.
const MAX_EVENT_SKEW: std::time::Duration = std::time::Duration::from_secs(300);
const _: () = assert!(MAX_EVENT_AGE.as_secs() < DEDUPE_FOR.as_secs());

/// Refuses an event stamped too long ago (a replay) or too far ahead.
pub fn check_age(event: &LifecycleEvent, now: time::OffsetDateTime) -> Result<(), WebhookError> {
    if event.timestamp < now - MAX_EVENT_AGE || event.timestamp > now + MAX_EVENT_SKEW {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

fn body_digest(body: &[u8]) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    format!(
        "sha256-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}
