use std::error::Error as StdError;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::items::ProjectRecord;
use crate::domain::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// Another writer changed the session since it was read; `current` is what it holds now
    /// (when DynamoDB returned it).
    #[error("the session was changed by another writer")]
    Conflict { current: Option<Box<ProjectRecord>> },
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The webhook event (or delivery) was applied before.
    #[error("this event was already applied")]
    Duplicate,
    #[error(transparent)]
    BadCursor(#[from] super::cursor::BadCursor),
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
    /// A counted limit (the team's snapshots, a project's pins) would be passed; nothing changed.
    #[error("a limit was reached")]
    LimitReached,
    #[error("DynamoDB call failed: {message}")]
    Dynamo { message: String, retryable: bool },
}

impl StoreError {
    pub(crate) fn dynamo<E: StdError + ProvideErrorMetadata + 'static, R: std::fmt::Debug>(
        err: SdkError<E, R>,
    ) -> StoreError {
        let retryable = match &err {
            SdkError::ConstructionFailure(_) => false,
            SdkError::ServiceError(service) => service.err().code().is_some_and(is_transient_code),
            _ => true,
        };
        StoreError::Dynamo {
            message: DisplayErrorContext(&err).to_string(),
            retryable,
        }
    }

    pub(crate) fn build(err: impl std::fmt::Display) -> StoreError {
        StoreError::Dynamo {
            message: format!("request could not be built: {err}"),
            retryable: false,
        }
    }
}

/// DynamoDB's error codes that say "try again": throttling, its own faults, and transactions that
/// met another in flight. The SDK has retried these already; the caller may still, later.
fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException"
    )
}

/// Whether DynamoDB refused a write because its condition did not hold (any operation).
pub(crate) fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException")
}
