use super::signature::SignatureError;
use crate::store::StoreError;

/// Why a delivery was not acknowledged. The receiver maps each to a status: E2B retries any
/// failure, so only what a retry may fix is a 5xx.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The body passed the signature check but is not a lifecycle event.
    #[error("{0}")]
    Malformed(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Other writers kept changing the session while the event was being applied.
    #[error("the session kept changing while the event was applied")]
    Contended,
    /// The event's timestamp is older than `MAX_EVENT_AGE` (or too far ahead): a replay.
    #[error("the event is too old (or dated in the future) to be applied")]
    Stale,
    /// Signed for this URL's account, but about a sandbox of another E2B team, or a project this
    /// account does not serve: nothing is changed.
    #[error("{0}")]
    WrongAccount(String),
}

impl WebhookError {
    /// Stable, for the `{"error": {"code": ...}}` body and for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Signature(SignatureError::NoSecrets) => "not_configured",
            Self::Signature(_) => "invalid_signature",
            Self::Malformed(_) => "malformed_event",
            Self::Store(_) => "storage_unavailable",
            Self::Contended => "contended",
            Self::Stale => "stale_event",
            Self::WrongAccount(_) => "wrong_account",
        }
    }

    /// Whether a redelivery may succeed (and the answer must make E2B retry).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::Store(_) | Self::Contended | Self::Signature(SignatureError::NoSecrets)
        )
    }
}
