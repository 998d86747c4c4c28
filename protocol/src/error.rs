//! The protocol's errors: what a store write or read can answer (`StoreError`), and what an
//! operation answers when it cannot do what was asked (`Error`), which the API maps to a status.

use crate::domain::Refusal;
use crate::e2b::E2bError;
use crate::record::ProjectRecord;

#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// Another writer changed the session since it was read; `current` is what it holds now
    /// (when the store returned it).
    #[error("the session was changed by another writer")]
    Conflict { current: Option<Box<ProjectRecord>> },
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The webhook event (or delivery) was applied before.
    #[error("this event was already applied")]
    Duplicate,
    /// A claim that would start compute found the team at its live-sandbox quota.
    #[error("the team runs as many sandboxes as its quota allows ({limit})")]
    LiveQuota { limit: u32 },
    /// A counted limit (the team's snapshots, a project's pins) would be passed; nothing changed.
    #[error("a limit was reached")]
    LimitReached,
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
    /// The store could not be reached or refused the call; `retryable` when trying again later may work.
    #[error("DynamoDB call failed: {message}")]
    Dynamo { message: String, retryable: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the pagination cursor is not one this API returned")]
pub struct BadCursor;

/// What Sandman's operations answer when they cannot do what was asked. The API maps each to a
/// status code; scheduled functions log and count them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The session is mid-transition or another writer won a race; trying again later may work.
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// A per-team limit (projects, live sandboxes, snapshots, pins) would be passed; nothing was changed.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The caller's token does not carry the role this action needs.
    #[error("{0}")]
    Forbidden(String),
    /// The team's monthly budget is reached: nothing starts or resumes until the period ends.
    #[error("{0}")]
    BudgetReached(String),
    /// A change of the team's E2B key would strand its sandboxes or snapshots in the account
    /// they live in; nothing was changed.
    #[error("{0}")]
    AccountInUse(String),
    #[error("E2B: {0}")]
    E2b(#[from] E2bError),
    #[error("storage: {0}")]
    Store(StoreError),
}

impl Error {
    /// What may be stored where callers read it (a session's `lastError`): E2B's own text never.
    pub fn public_message(&self) -> String {
        match self {
            Error::E2b(err) => err.public_message().to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Error::NotFound("project"),
            StoreError::Conflict { .. } => Error::Conflict("the sandbox was changed concurrently; try again".into()),
            StoreError::Refused(refusal) => Error::from(refusal),
            StoreError::LiveQuota { limit } => Error::QuotaExceeded(format!(
                "the team has {limit} running sandboxes, its limit; pause or kill one first"
            )),
            StoreError::LimitReached => Error::QuotaExceeded("a per-team limit was reached".into()),
            StoreError::BadCursor(bad) => Error::Invalid {
                field: "cursor",
                message: bad.to_string(),
            },
            other => Error::Store(other),
        }
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Error::Conflict(refusal.to_string())
    }
}
