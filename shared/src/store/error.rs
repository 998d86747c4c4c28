use std::error::Error as StdError;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use sandman_protocol::StoreError;

/// A DynamoDB call that failed, as the store answers it.
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

/// A request the SDK could not build.
pub(crate) fn build(err: impl std::fmt::Display) -> StoreError {
    StoreError::Dynamo {
        message: format!("request could not be built: {err}"),
        retryable: false,
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
