//! Outbound webhooks in the local stack: the deployed handler (`sandman_outbound::handle`) fed
//! exactly as Lambda feeds it, from DynamoDB Local's stream of the table and from an in-process
//! queue that behaves like the template's SQS queue (a failed message comes back after the
//! backoff the handler set, and is dead-lettered on the receive after `MAX_ATTEMPTS`). SQS itself
//! cannot run here; everything from the stream record's JSON to the delivery log is the real path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use lambda_runtime::{Context, LambdaEvent};
use sandman::Sandman;
use sandman::outbound::{DeliveryJob, MAX_ATTEMPTS, Sender};
use sandman_outbound::{Outbound, Queue, QueueError, handle};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::testkit;

/// How often each shard of the stream is read (Lambda polls a stream about 4 times a second).
const POLL_EVERY: Duration = Duration::from_millis(250);

/// A message in the local queue.
#[derive(Debug, Clone)]
struct Queued {
    message_id: String,
    body: String,
    receives: u32,
}

#[derive(Clone)]
pub struct LocalQueue {
    incoming: mpsc::UnboundedSender<Queued>,
    /// The delay the handler asked for, by receipt handle (ChangeMessageVisibility).
    hidden_for: Arc<Mutex<HashMap<String, Duration>>>,
}

impl Queue for LocalQueue {
    async fn send(&self, jobs: Vec<DeliveryJob>) -> Result<(), QueueError> {
        for job in jobs {
            let body = serde_json::to_string(&job).map_err(|e| QueueError(e.to_string()))?;
            let message_id = ulid::Ulid::new().to_string();
            self.incoming
                .send(Queued {
                    message_id,
                    body,
                    receives: 0,
                })
                .map_err(|_| QueueError("the local queue has stopped".into()))?;
        }
        Ok(())
    }

    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        self.hidden_for
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(receipt_handle.to_owned(), delay);
        Ok(())
    }
}

/// The running stream poller and queue; dead letters are kept for whoever looks (tests, `make dev`).
pub struct LocalOutbound {
    dead_letters: Arc<Mutex<Vec<DeliveryJob>>>,
}

impl LocalOutbound {
    /// Starts reading the table's stream from now on, and the queue.
    pub async fn start(
        sandman: &Sandman,
        tasks: &mut JoinSet<()>,
        stopped: watch::Receiver<bool>,
    ) -> Result<LocalOutbound, String> {
        let (incoming, queued) = mpsc::unbounded_channel();
        let queue = LocalQueue {
            incoming: incoming.clone(),
            hidden_for: Arc::default(),
        };
        let outbound = Arc::new(Outbound {
            sender: Sender::of(sandman).map_err(|e| e.to_string())?,
            queue: queue.clone(),
            sandman: sandman.clone(),
        });
        let dead_letters: Arc<Mutex<Vec<DeliveryJob>>> = Arc::default();
        let stream_arn = stream_arn(sandman.store.table()).await?;
        let streams = streams_client();
        let shards = Shards::open(&streams, &stream_arn).await?;
        tasks.spawn(poll_stream(
            streams,
            stream_arn,
            shards,
            outbound.clone(),
            stopped.clone(),
        ));
        tasks.spawn(run_queue(queued, incoming, outbound, dead_letters.clone(), stopped));
        Ok(LocalOutbound { dead_letters })
    }

    /// Deliveries that failed `MAX_ATTEMPTS` times (the dead-letter queue's contents).
    pub fn dead_letters(&self) -> Vec<DeliveryJob> {
        self.dead_letters.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn stream_arn(table: &str) -> Result<String, String> {
    let described = testkit::local_client()
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            format!(
                "DescribeTable {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            )
        })?;
    described
        .table()
        .and_then(|t| t.latest_stream_arn())
        .map(str::to_owned)
        .ok_or_else(|| format!("table {table} has no stream (template.yaml's StreamSpecification)"))
}

fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let credentials = aws_sdk_dynamodbstreams::config::Credentials::new(
        env("AWS_ACCESS_KEY_ID", "test"),
        env("AWS_SECRET_ACCESS_KEY", "test"),
        None,
        None,
        "sandman-local",
    );
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new(env(
            "AWS_REGION",
            "us-east-1",
        )))
        .endpoint_url(testkit::local_endpoint())
        .credentials_provider(credentials)
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// Each shard's next iterator; shards seen when the poller started are read from their end.
struct Shards {
    iterators: HashMap<String, Option<String>>,
}

impl Shards {
    async fn open(streams: &aws_sdk_dynamodbstreams::Client, arn: &str) -> Result<Shards, String> {
        let mut shards = Shards {
            iterators: HashMap::new(),
        };
        shards.discover(streams, arn, ShardIteratorType::Latest).await?;
        Ok(shards)
    }

    async fn discover(
        &mut self,
        streams: &aws_sdk_dynamodbstreams::Client,
        arn: &str,
        from: ShardIteratorType,
    ) -> Result<(), String> {
        let described = streams.describe_stream().stream_arn(arn).send().await.map_err(|e| {
            format!(
                "DescribeStream: {}",
                aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)
            )
        })?;
        let shards = described.stream_description().map(|d| d.shards()).unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            if self.iterators.contains_key(id) {
                continue;
            }
            let iterator = shard_iterator(streams, arn, id, from.clone()).await?;
            self.iterators.insert(id.to_owned(), iterator);
        }
        Ok(())
    }
}

async fn shard_iterator(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    shard: &str,
    from: ShardIteratorType,
) -> Result<Option<String>, String> {
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(from)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetShardIterator: {}",
                aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(iterator.shard_iterator().map(str::to_owned))
}

async fn poll_stream(
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    mut shards: Shards,
    outbound: Arc<Outbound<LocalQueue>>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if let Err(err) = shards.discover(&streams, &arn, ShardIteratorType::TrimHorizon).await {
            tracing::warn!(error = %err, "local stream: shards not listed");
        }
        for (shard, iterator) in shards.iterators.iter_mut() {
            let Some(current) = iterator.clone() else { continue };
            let page = match streams.get_records().shard_iterator(&current).send().await {
                Ok(page) => page,
                Err(err) => {
                    // DynamoDB Local refuses to read a shard that has never held a record
                    // (TrimmedDataAccessException) through an iterator taken while it was empty:
                    // such a shard is read from its start once it has one.
                    if let Ok(Some(fresh)) = shard_iterator(&streams, &arn, shard, ShardIteratorType::TrimHorizon).await
                    {
                        *iterator = Some(fresh);
                    }
                    tracing::debug!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&err), "local stream: GetRecords failed");
                    continue;
                }
            };
            if !page.records().is_empty() {
                let event = json!({ "Records": page.records().iter().map(record_json).collect::<Vec<_>>() });
                // As Lambda does with a failed batch: the same records again at the next poll.
                if let Err(err) = handle(&outbound, LambdaEvent::new(event, Context::default())).await {
                    tracing::warn!(error = %err, "local stream: batch failed; retried");
                    continue;
                }
            }
            *iterator = page.next_shard_iterator().map(str::to_owned);
        }
    }
}

/// A stream record as Lambda's event carries it: DynamoDB JSON images.
fn record_json(record: &aws_sdk_dynamodbstreams::types::Record) -> Value {
    let change = record.dynamodb();
    let image = |image: Option<&HashMap<String, AttributeValue>>| {
        image.map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| (name.clone(), attribute_json(value)))
                .collect::<serde_json::Map<_, _>>()
        })
    };
    json!({
        "eventSource": "aws:dynamodb",
        "eventName": record.event_name().map(|n| n.as_str()).unwrap_or_default(),
        "dynamodb": {
            "Keys": image(change.and_then(|c| c.keys())),
            "NewImage": image(change.and_then(|c| c.new_image())),
            "OldImage": image(change.and_then(|c| c.old_image())),
        },
    })
}

fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(list) => json!({ "SS": list }),
        AttributeValue::Ns(list) => json!({ "NS": list }),
        AttributeValue::L(list) => json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({
            "M": map.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<serde_json::Map<_, _>>()
        }),
        // Sandman stores no binary attributes.
        _ => json!({ "NULL": true }),
    }
}

/// The queue's consumer: each message is one SQS-shaped invocation of the handler, as the event
/// source mapping would make it (batch size 1 here).
async fn run_queue(
    mut queued: mpsc::UnboundedReceiver<Queued>,
    requeue: mpsc::UnboundedSender<Queued>,
    outbound: Arc<Outbound<LocalQueue>>,
    dead_letters: Arc<Mutex<Vec<DeliveryJob>>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut inflight = JoinSet::new();
    loop {
        let mut message = tokio::select! {
            message = queued.recv() => match message { Some(m) => m, None => break },
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        message.receives += 1;
        if message.receives > MAX_ATTEMPTS {
            tracing::warn!(message = %message.message_id, "local queue: dead-lettered after {MAX_ATTEMPTS} receives");
            if let Ok(job) = serde_json::from_str(&message.body) {
                dead_letters.lock().unwrap_or_else(|p| p.into_inner()).push(job);
            }
            continue;
        }
        let (outbound, requeue) = (outbound.clone(), requeue.clone());
        inflight.spawn(async move {
            let receipt = ulid::Ulid::new().to_string();
            let event = json!({ "Records": [{
                "eventSource": "aws:sqs",
                "messageId": message.message_id,
                "receiptHandle": receipt,
                "body": message.body,
                "attributes": { "ApproximateReceiveCount": message.receives.to_string() },
            }]});
            let failed = match handle(&outbound, LambdaEvent::new(event, Context::default())).await {
                Ok(answer) => answer["batchItemFailures"].as_array().is_some_and(|f| !f.is_empty()),
                Err(_) => true,
            };
            if failed {
                let delay = outbound
                    .queue
                    .hidden_for
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&receipt)
                    .unwrap_or(outbound.sandman.config.outbound.retry_base);
                tokio::time::sleep(delay).await;
                let _ = requeue.send(message);
            }
        });
        while inflight.try_join_next().is_some() {}
    }
    inflight.abort_all();
}
