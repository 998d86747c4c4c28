//! Outbound webhooks: the table's stream in, signed deliveries out (through SQS).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use sandman::Sandman;
use sandman::outbound::Sender;
use sandman::secrets::Function;
use sandman_outbound::sqs::SqsQueue;
use sandman_outbound::{Outbound, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    sandman::telemetry::init("outbound");
    let sandman = Sandman::from_env(Function::Outbound).await?;
    let queue_url = std::env::var("OUTBOUND_QUEUE_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or("environment variable OUTBOUND_QUEUE_URL is required")?;
    let aws = sandman::aws_sdk_config().await;
    let outbound = Outbound {
        sender: Sender::of(&sandman)?,
        queue: SqsQueue::new(sandman_outbound::sqs::client(&aws), queue_url),
        sandman,
    };
    run(service_fn(|event: LambdaEvent<Value>| handle(&outbound, event))).await
}
