//! Seeding for the benchmarks (included with `#[path]`): sessions copied from one that Sandman
//! itself wrote, written with BatchWriteItem, many calls in flight.

#![allow(dead_code)]

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::StreamExt;
use sandman::domain::ProjectKey;
use sandman::store::keys;
use sandman_local::testkit::TestStack;
use time::OffsetDateTime;

use super::kit::{MINUTE, running};

pub type Item = HashMap<String, AttributeValue>;

/// Concurrent BatchWriteItem calls while seeding.
const SEED_CONCURRENCY: usize = 24;

/// One seeded session: which project, which sandbox, and when it becomes idle.
pub struct Seed {
    pub key: ProjectKey,
    pub sandbox_id: String,
    pub idle_at: OffsetDateTime,
}

/// The stored item of a real RUNNING session with a 10-minute idle timeout, made through
/// Sandman: seeds copy its shape.
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

/// Writes the seeds into each of `tables` (25 items a call, many calls in flight).
pub async fn seed(client: &Client, tables: &[&str], prototype: &Item, seeds: impl Iterator<Item = Seed>) {
    let items: Vec<Item> = seeds.map(|seed| item(prototype, &seed)).collect();
    let batches = tables
        .iter()
        .flat_map(|table| items.chunks(25).map(move |chunk| (*table, chunk.to_vec())));
    futures::stream::iter(batches)
        .for_each_concurrent(SEED_CONCURRENCY, |(table, batch)| write_batch(client, table, batch))
        .await;
}

/// Seeds into the stack's own table.
pub async fn seed_stack(stack: &TestStack, prototype: &Item, seeds: impl Iterator<Item = Seed>) {
    seed(&stack.table.client, &[stack.table.name.as_str()], prototype, seeds).await;
}

async fn write_batch(client: &Client, table: &str, batch: Vec<Item>) {
    let mut requests: Vec<WriteRequest> = batch
        .into_iter()
        .map(|item| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().expect("put"))
                .build()
        })
        .collect();
    while !requests.is_empty() {
        let out = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .expect("batch write");
        requests = out
            .unprocessed_items
            .and_then(|mut left| left.remove(table))
            .unwrap_or_default();
    }
}

/// The prototype with this seed's keys, sandbox and times (the prototype's idle timeout is 10 minutes).
pub fn item(prototype: &Item, seed: &Seed) -> Item {
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

/// Records one benchmark's measured figures under `section` in the checked-in figures file
/// (`tests/figures/measured.json`, or `SANDMAN_FIGURES`), which `scripts/bench cost` reads.
pub fn record_figures(section: &str, figures: serde_json::Value) {
    let path = std::env::var("SANDMAN_FIGURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/figures/measured.json").into());
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    all.insert(section.into(), figures);
    let text = serde_json::to_string_pretty(&all).expect("figures serialise");
    if let Some(dir) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(dir).expect("figures folder");
    }
    std::fs::write(&path, text + "\n").expect("figures written");
    println!("(figures recorded under \"{section}\" in {path})");
}
