//! Every `TransactWriteItems` goes through here. Each logical write carries one idempotency token
//! (`ClientRequestToken`) across all its attempts, so a retry of a write that already won (its
//! answer lost to a timeout or a dropped connection) is answered as won, not as a conflict.
//! Transaction conflicts, throttling and 5xx are retried with capped, jittered backoff; a
//! condition that failed is never retried.

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsOutput};
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};

use super::{Store, StoreError};

const ATTEMPTS: u32 = 6;
const BASE_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub(crate) type TransactError = SdkError<TransactWriteItemsError, HttpResponse>;

impl Store {
    /// A transaction whose conditions decide whether it applies: `Ok(false)` when one failed (its
    /// `failed_units`, what DynamoDB bills for a refused transaction, are counted), `Ok(true)` when
    /// it applied.
    pub(crate) async fn transact_if(
        &self,
        items: Vec<TransactWriteItem>,
        failed_units: f64,
    ) -> Result<bool, StoreError> {
        match self.transact(items).await {
            Ok(out) => {
                self.capacity.record_write(out.consumed_capacity());
                Ok(true)
            }
            Err(err) if super::error::condition_failed(&err) || cancelled_by_condition(&err) => {
                self.capacity.record_failed_write(failed_units);
                Ok(false)
            }
            Err(err) => Err(super::error::dynamo(err)),
        }
    }

    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<TransactWriteItemsOutput, TransactError> {
        let token = ulid::Ulid::new().to_string();
        let mut attempt = 1;
        loop {
            let out = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match out {
                Err(err) if attempt < ATTEMPTS && is_transient(&err) => {
                    let ceiling = BASE_BACKOFF.saturating_mul(1 << attempt).min(MAX_BACKOFF);
                    tracing::debug!(attempt, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "transaction retried");
                    tokio::time::sleep(ceiling.mul_f64(fastrand::f64())).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// A failure the same transaction may get past: it lost a race with another transaction (not a
/// condition), was throttled, or its answer never came.
pub(crate) fn is_transient(err: &TransactError) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            let codes: Vec<&str> = cancel.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
            !codes.contains(&"ConditionalCheckFailed")
                && codes.iter().any(|code| {
                    matches!(
                        *code,
                        "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                    )
                })
        }
        Some(other) => matches!(
            other.code(),
            Some(
                "TransactionInProgressException"
                    | "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
            )
        ),
        None => matches!(
            err,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
    }
}

/// A transaction's failure once its attempts are spent. One it could still get past (it kept
/// meeting other transactions, was throttled, or got no answer) is DynamoDB saying "try again
/// later", as its other transient errors are.
pub(crate) fn spent(err: TransactError) -> StoreError {
    let transient = is_transient(&err);
    match super::error::dynamo(err) {
        StoreError::Dynamo { message, retryable } => StoreError::Dynamo {
            message,
            retryable: retryable || transient,
        },
        other => other,
    }
}

/// A transaction cancelled because one of its conditions failed (not a race or a throttle).
pub(crate) fn cancelled_by_condition(err: &TransactError) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => cancel
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}
