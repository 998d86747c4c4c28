//! Fleets of RUNNING sessions written straight into the table (BatchWriteItem), each a copy of a
//! real session's item, for the enforcer's large-tick test and benchmark.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::StreamExt;
use sandman::domain::ProjectKey;
use sandman::e2b::{ApiKey, E2bAccounts, E2bClient, E2bSettings, NewSandbox, SandboxNetwork};
use sandman::sandbox_metadata;
use sandman::store::keys;
use sandman_local::testkit::TestStack;
use time::OffsetDateTime;

use super::{MINUTE, running};

pub type Item = HashMap<String, AttributeValue>;

/// One seeded session: which project, which sandbox, and when it becomes idle.
pub struct Seed {
    pub key: ProjectKey,
    pub sandbox_id: String,
    pub idle_at: OffsetDateTime,
}

/// The stored item of a real RUNNING session, made through Sandman: seeds copy its shape.
pub async fn prototype(stack: &TestStack) -> Item {
    let (key, _) = running(stack, "prototype", 10 * MINUTE, false).await;
    let out = stack
        .table
        .client
        .get_item()
        .table_name(&stack.table.name)
        .key("pk", AttributeValue::S(keys::project_pk(&key)))
        .key("sk", AttributeValue::S(keys::PROJECT_SK.into()))
        .send()
        .await
        .expect("prototype read");
    out.item.expect("the prototype exists")
}

/// The deployment's E2B account on a client with the production deadlines (30 s a call, four
/// attempts): a fleet's thousand calls must not fail because a busy machine answers slowly.
pub fn patient_accounts(stack: &TestStack) -> E2bAccounts {
    let client = E2bClient::new(E2bSettings {
        base_url: stack.emulator.base_url(),
        allow_http_loopback: true,
        ..E2bSettings::default()
    })
    .expect("E2B client");
    let key = ApiKey::new(stack.emulator.api_key()).expect("key");
    E2bAccounts::new(client, Some(key), Default::default())
}

/// `count` running sandboxes created in the emulator for projects `<prefix>-<i>`.
pub async fn sandboxes(stack: &TestStack, prefix: &str, count: usize) -> Vec<(ProjectKey, String)> {
    let e2b = patient_accounts(stack).default_account().expect("a default account");
    futures::stream::iter(0..count)
        .map(|i| {
            let (e2b, key) = (e2b.clone(), stack.key(&format!("{prefix}-{i}")));
            async move {
                let new = NewSandbox {
                    template_id: "base".into(),
                    timeout: Duration::from_secs(3600),
                    auto_pause: true,
                    metadata: sandbox_metadata::for_session(&key, "fleet"),
                    env_vars: Default::default(),
                    secure: true,
                    network: SandboxNetwork {
                        allow_public_traffic: false,
                        rules: Default::default(),
                    },
                };
                let sandbox = e2b.create_sandbox(&new).await.expect("sandbox created");
                (key, sandbox.sandbox_id)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

/// Writes the seeds with BatchWriteItem (25 items a call, 16 calls in flight).
pub async fn seed(stack: &TestStack, prototype: &Item, seeds: impl Iterator<Item = Seed>) {
    let items: Vec<Item> = seeds.map(|seed| item(prototype, &seed)).collect();
    let batches: Vec<Vec<Item>> = items.chunks(25).map(<[Item]>::to_vec).collect();
    futures::stream::iter(batches)
        .for_each_concurrent(16, |batch| write_batch(stack, batch))
        .await;
}

async fn write_batch(stack: &TestStack, batch: Vec<Item>) {
    let mut requests: Vec<WriteRequest> = batch
        .into_iter()
        .map(|item| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().expect("put"))
                .build()
        })
        .collect();
    while !requests.is_empty() {
        let out = stack
            .table
            .client
            .batch_write_item()
            .request_items(stack.table.name.clone(), requests)
            .send()
            .await
            .expect("batch write");
        requests = out
            .unprocessed_items
            .and_then(|mut left| left.remove(&stack.table.name))
            .unwrap_or_default();
    }
}

fn item(prototype: &Item, seed: &Seed) -> Item {
    let ms = |at: OffsetDateTime| AttributeValue::N((at.unix_timestamp_nanos() / 1_000_000).to_string());
    let s = |v: String| AttributeValue::S(v);
    let mut item = prototype.clone();
    let last_active = seed.idle_at - 10 * MINUTE;
    for (name, value) in [
        ("pk", s(keys::project_pk(&seed.key))),
        ("projectId", s(seed.key.project.to_string())),
        ("projectKey", s(seed.key.project.to_string())),
        ("idleShard", s(keys::idle_shard(&seed.key))),
        ("pruneShard", s(keys::prune_shard(&seed.key))),
        ("sandboxId", s(seed.sandbox_id.clone())),
        ("sandboxKey", s(seed.sandbox_id.clone())),
        ("idleAt", ms(seed.idle_at)),
        ("lastActiveAt", ms(last_active)),
    ] {
        item.insert(name.into(), value);
    }
    item
}
