//! The outbound webhooks function. Two event sources, one binary:
//! - the table's stream (filtered to lifecycle-log lines and snapshot changes): each change becomes
//!   one queue message per endpoint of its team that wants it;
//! - the delivery queue: each message is one signed POST; a failure hides the message for a
//!   growing backoff and reports it failed, and the queue dead-letters it after
//!   `MAX_ATTEMPTS` receives.
//!
//! Nothing on a lifecycle's path waits for any of it: the transition is committed before the
//! stream sees it.

use std::future::Future;
use std::time::Duration;

use lambda_runtime::LambdaEvent;
use sandman::Sandman;
use sandman::outbound::{Attempt, DeliveryJob, Sender, StreamBatch, classify, fan_out};
use serde::Deserialize;
use serde_json::{Value, json};

pub mod sqs;

/// Where deliveries wait: SQS when deployed, an in-process queue in the local stack.
pub trait Queue: Send + Sync {
    /// Enqueues every job, or fails (the stream batch is then retried).
    fn send(&self, jobs: Vec<DeliveryJob>) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Hides a received message for `delay` before its next attempt.
    fn retry_after(&self, receipt_handle: &str, delay: Duration)
    -> impl Future<Output = Result<(), QueueError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("an event from neither a DynamoDB stream nor SQS")]
    UnknownSource,
    #[error("malformed {0} event: {1}")]
    Malformed(&'static str, serde_json::Error),
    #[error(transparent)]
    Store(#[from] sandman::store::StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<OutboundError> for lambda_runtime::Diagnostic {
    fn from(err: OutboundError) -> Self {
        let error_type = match err {
            OutboundError::UnknownSource => "OutboundError.UnknownSource",
            OutboundError::Malformed(..) => "OutboundError.Malformed",
            OutboundError::Store(_) => "OutboundError.Store",
            OutboundError::Queue(_) => "OutboundError.Queue",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

/// Everything an invocation needs, built once per cold start.
pub struct Outbound<Q> {
    pub sandman: Sandman,
    pub sender: Sender,
    pub queue: Q,
}

pub async fn handle<Q: Queue>(outbound: &Outbound<Q>, event: LambdaEvent<Value>) -> Result<Value, OutboundError> {
    let source = event.payload["Records"][0]["eventSource"].as_str().unwrap_or_default();
    match source {
        "aws:dynamodb" => {
            let batch: StreamBatch =
                serde_json::from_value(event.payload).map_err(|e| OutboundError::Malformed("stream", e))?;
            let queued = fan_out_batch(outbound, &batch).await?;
            Ok(json!({ "queued": queued }))
        }
        "aws:sqs" => {
            let batch: SqsBatch =
                serde_json::from_value(event.payload).map_err(|e| OutboundError::Malformed("SQS", e))?;
            Ok(deliver_batch(outbound, batch).await)
        }
        _ => Err(OutboundError::UnknownSource),
    }
}

/// Every change in the batch to the queue. A store or queue failure fails the batch (Lambda
/// retries it; a message queued twice is delivered twice with the same `webhook-id`). A record
/// that is not an event (or is malformed) is skipped, never retried forever.
async fn fan_out_batch<Q: Queue>(outbound: &Outbound<Q>, batch: &StreamBatch) -> Result<usize, OutboundError> {
    let mut jobs = Vec::new();
    for record in &batch.records {
        match classify(record, outbound.sandman.now()) {
            Ok(Some(event)) => jobs.extend(fan_out(&outbound.sandman.store, &event).await?),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "stream record skipped"),
        }
    }
    let queued = jobs.len();
    if !jobs.is_empty() {
        outbound.queue.send(jobs).await?;
    }
    Ok(queued)
}

#[derive(Debug, Deserialize)]
pub struct SqsBatch {
    #[serde(rename = "Records")]
    pub records: Vec<SqsMessage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    #[serde(default)]
    pub attributes: SqsAttributes,
}

#[derive(Debug, Default, Deserialize)]
pub struct SqsAttributes {
    #[serde(rename = "ApproximateReceiveCount")]
    pub approximate_receive_count: Option<String>,
}

/// Each message one attempt, concurrently; the failed ones reported (`ReportBatchItemFailures`).
async fn deliver_batch<Q: Queue>(outbound: &Outbound<Q>, batch: SqsBatch) -> Value {
    let attempts = batch.records.iter().map(|message| deliver(outbound, message));
    let failed: Vec<Value> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .zip(&batch.records)
        .filter(|(delivered, _)| !delivered)
        .map(|(_, message)| json!({ "itemIdentifier": message.message_id }))
        .collect();
    json!({ "batchItemFailures": failed })
}

/// Whether the message is done with (delivered, or nothing to deliver).
async fn deliver<Q: Queue>(outbound: &Outbound<Q>, message: &SqsMessage) -> bool {
    let job: DeliveryJob = match serde_json::from_str(&message.body) {
        Ok(job) => job,
        Err(err) => {
            tracing::error!(message = %message.message_id, error = %err, "malformed delivery message dropped");
            return true;
        }
    };
    let attempt = message
        .attributes
        .approximate_receive_count
        .as_deref()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let sandman = &outbound.sandman;
    match outbound
        .sender
        .attempt(&sandman.store, &job, attempt, sandman.now())
        .await
    {
        Ok(Attempt::Delivered | Attempt::Dropped) => true,
        Ok(Attempt::Retry(delay)) => {
            if let Err(err) = outbound.queue.retry_after(&message.receipt_handle, delay).await {
                tracing::warn!(error = %err, "backoff not set; the queue's visibility timeout applies");
            }
            false
        }
        Ok(Attempt::Exhausted) => false,
        Err(err) => {
            tracing::error!(message = %message.message_id, error = %err, "delivery not attempted");
            false
        }
    }
}
