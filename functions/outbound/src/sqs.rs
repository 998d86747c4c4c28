//! The deployed queue: SQS.

use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use sandman::outbound::DeliveryJob;

use crate::{Queue, QueueError};

pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// The outbound function's SQS client (its calls recorded when `SANDMAN_RECORD_AWS_CALLS` is set).
pub fn client(aws: &sandman::aws::SdkConfig) -> aws_sdk_sqs::Client {
    let mut config = aws_sdk_sqs::config::Builder::from(aws);
    if let Some(recorder) = sandman::aws::CallRecorder::from_env("outbound") {
        config = config.interceptor(recorder);
    }
    aws_sdk_sqs::Client::from_conf(config.build())
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        SqsQueue { client, url }
    }
}

/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

impl Queue for SqsQueue {
    async fn send(&self, jobs: Vec<DeliveryJob>) -> Result<(), QueueError> {
        for chunk in jobs.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    let body = serde_json::to_string(job).map_err(|e| QueueError(e.to_string()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| QueueError(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
            if let Some(failed) = out.failed().first() {
                return Err(QueueError(format!(
                    "{} of {} messages not queued ({})",
                    out.failed().len(),
                    chunk.len(),
                    failed.code()
                )));
            }
        }
        Ok(())
    }

    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        let seconds = i32::try_from(delay.min(MAX_VISIBILITY).as_secs()).unwrap_or(i32::MAX);
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}
