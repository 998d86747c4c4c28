//! The naive peer's table and the three ways a tick finds idle sessions, each page's consumed
//! capacity read from DynamoDB (included by `naive_bench.rs` with `#[path]`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use sandman::store::{Store, keys};
use sandman_local::table::{
    Attribute, AttributeKind, GlobalIndex, KeySchema, Projection, create_table_from, table_definition,
};
use sandman_local::testkit::TestStack;
use serde_json::json;
use time::OffsetDateTime;

use super::bench_kit::Item;
use super::kit::MINUTE;

pub const NAIVE_INDEX: &str = "byState";
/// The least AWS bills for one query or scan page (eventually consistent); DynamoDB Local
/// reports 0 for a page that read nothing.
pub const MIN_BILLED_RCU: f64 = 0.5;
/// Items per page of Sandman's idle index, as the enforcer reads it.
const SANDMAN_PAGE: i32 = 100;

/// Read capacity of one tick's search for idle sessions.
#[derive(Debug, Default)]
pub struct Tick {
    /// As DynamoDB Local reported it.
    pub reported: f64,
    /// As AWS bills it: at least `MIN_BILLED_RCU` per call.
    pub billed: f64,
    pub calls: u64,
    pub items: usize,
    pub idle: usize,
}

impl Tick {
    fn page(&mut self, reported: f64, items: usize) {
        self.reported += reported;
        self.billed += reported.max(MIN_BILLED_RCU);
        self.calls += 1;
        self.items += items;
    }

    pub fn figures(&self) -> serde_json::Value {
        json!({ "rcuReported": self.reported, "rcuBilled": self.billed, "calls": self.calls, "itemsRead": self.items })
    }
}

/// The naive layout: Sandman's items, one GSI on (`state`, `lastActiveAt`) projecting what a tick
/// needs (the idle index's attributes, so the comparison is about keys, not projections).
pub async fn naive_table(client: &Client) -> String {
    let mut definition = table_definition().expect("template table");
    let idle = definition.index(keys::IDLE_INDEX).expect("idle index").clone();
    let mut projected = match idle.projection {
        Projection::Include(names) => names,
        other => panic!("the idle index projects {other:?}, expected INCLUDE"),
    };
    projected.retain(|name| name != "lastActiveAt");
    if !projected.iter().any(|name| name == "idleTimeoutMs") {
        projected.push("idleTimeoutMs".into());
    }
    definition.attributes = vec![
        attribute("pk", AttributeKind::String),
        attribute("sk", AttributeKind::String),
        attribute("state", AttributeKind::String),
        attribute("lastActiveAt", AttributeKind::Number),
    ];
    definition.indexes = vec![GlobalIndex {
        name: NAIVE_INDEX.into(),
        key: KeySchema {
            hash: "state".into(),
            range: Some("lastActiveAt".into()),
        },
        projection: Projection::Include(projected),
    }];
    let name = format!("naive-{}-{}", std::process::id(), unique_suffix());
    create_table_from(client, &name, &definition)
        .await
        .expect("naive table");
    name
}

fn attribute(name: &str, kind: AttributeKind) -> Attribute {
    Attribute {
        name: name.into(),
        kind,
    }
}

/// Sandman's tick: every shard of the idle index, page by page, through the store as the
/// enforcer reads it (sequentially here, so each page's capacity is its own).
pub async fn sandman_tick(store: &Store, now: OffsetDateTime) -> Tick {
    let mut tick = Tick::default();
    for shard in keys::idle_shards() {
        let mut cursor = None;
        loop {
            let before = store.capacity().total().read_units;
            let page = store
                .idle_page(&shard, now, SANDMAN_PAGE, cursor.as_ref())
                .await
                .expect("idle page");
            tick.page(store.capacity().total().read_units - before, page.items.len());
            tick.idle += page.items.len();
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    tick
}

/// The naive tick: every RUNNING session from the `state` index, filtered in code.
pub async fn naive_tick(client: &Client, table: &str, now: OffsetDateTime) -> Tick {
    let mut tick = Tick::default();
    let mut start: Option<Item> = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .index_name(NAIVE_INDEX)
            .key_condition_expression("#state = :running")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", AttributeValue::S("RUNNING".into()))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .expect("naive query");
        tick.page(units(out.consumed_capacity()), out.items().len());
        tick.idle += out.items().iter().filter(|item| idle(item, now)).count();
        start = out.last_evaluated_key;
        if start.is_none() {
            return tick;
        }
    }
}

/// The other naive tick: a Scan of the whole table, filtered in code.
pub async fn scan_tick(client: &Client, table: &str, now: OffsetDateTime) -> Tick {
    let mut tick = Tick::default();
    let mut start: Option<Item> = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .expect("scan");
        tick.page(units(out.consumed_capacity()), out.items().len());
        let running = |item: &&Item| {
            item.get("state")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|s| s == "RUNNING")
        };
        tick.idle += out
            .items()
            .iter()
            .filter(running)
            .filter(|item| idle(item, now))
            .count();
        start = out.last_evaluated_key;
        if start.is_none() {
            return tick;
        }
    }
}

fn idle(item: &Item, now: OffsetDateTime) -> bool {
    let number = |name: &str| -> i64 {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or_default()
    };
    number("lastActiveAt") + number("idleTimeoutMs") <= (now.unix_timestamp_nanos() / 1_000_000) as i64
}

fn units(consumed: Option<&ConsumedCapacity>) -> f64 {
    consumed.and_then(ConsumedCapacity::capacity_units).unwrap_or_default()
}

/// What one recorded heartbeat costs, measured.
#[derive(Debug, Clone)]
pub struct Heartbeats {
    /// Through Sandman (`Sandman::activity` on a fresh instance: one read, one conditional write).
    pub rcu: f64,
    pub wcu: f64,
    /// The same write, per index (`ReturnConsumedCapacity::INDEXES`).
    pub table_wcu: f64,
    pub idle_index_wcu: f64,
    /// The naive layout's heartbeat (`lastActiveAt` is its index's sort key).
    pub naive_table_wcu: f64,
    pub naive_index_wcu: f64,
    /// The idle index entry's size (approximate, as DynamoDB counts it), with and without the
    /// attributes nothing reads from it (`lastActiveAt`).
    pub idle_entry_bytes: usize,
    pub idle_entry_bytes_with_last_active: usize,
    /// The whole session item.
    pub item_bytes: usize,
}

impl Heartbeats {
    pub fn figures(&self) -> serde_json::Value {
        json!({
            "rcu": self.rcu, "wcu": self.wcu,
            "tableWcu": self.table_wcu, "idleIndexWcu": self.idle_index_wcu,
            "naiveTableWcu": self.naive_table_wcu, "naiveIndexWcu": self.naive_index_wcu,
            "idleEntryBytes": self.idle_entry_bytes, "idleEntryBytesWithLastActiveAt": self.idle_entry_bytes_with_last_active,
            "itemBytes": self.item_bytes,
        })
    }
}

/// Measures one recorded heartbeat on the stack's prototype session, then the same write with a
/// per-index breakdown in both layouts.
pub async fn heartbeat_costs(stack: &TestStack, prototype: &Item) -> Heartbeats {
    let key = stack.key("prototype");
    stack.clock.advance(MINUTE);
    let before = stack.store().capacity().total();
    let activity = stack.sandman.activity(&key).await.expect("heartbeat");
    let after = stack.store().capacity().total();
    assert!(
        matches!(activity, sandman::workspace::Activity::Recorded { .. }),
        "a heartbeat a minute later is recorded: {activity:?}"
    );

    let client = &stack.table.client;
    let sandman_write = indexed_heartbeat(
        client,
        &stack.table.name,
        prototype,
        Some("idleAt = idleTimeoutMs + :at"),
    )
    .await;
    let naive = naive_table(client).await;
    client
        .put_item()
        .table_name(&naive)
        .set_item(Some(prototype.clone()))
        .send()
        .await
        .expect("naive prototype");
    let naive_write = indexed_heartbeat(client, &naive, prototype, None).await;

    let definition = table_definition().expect("template table");
    let projected = match &definition.index(keys::IDLE_INDEX).expect("idle index").projection {
        Projection::Include(names) => names.clone(),
        other => panic!("the idle index projects {other:?}, expected INCLUDE"),
    };
    let entry = |extra: &[&str]| {
        let names = ["pk", "sk", "idleShard", "idleAt"]
            .into_iter()
            .chain(extra.iter().copied());
        let names: Vec<&str> = names.chain(projected.iter().map(String::as_str)).collect();
        item_bytes(prototype, &names)
    };
    let with_last_active = if projected.iter().any(|n| n == "lastActiveAt") {
        entry(&[])
    } else {
        entry(&["lastActiveAt"])
    };
    let heartbeats = Heartbeats {
        rcu: after.read_units - before.read_units,
        wcu: after.write_units - before.write_units,
        table_wcu: sandman_write.0,
        idle_index_wcu: sandman_write.1.get(keys::IDLE_INDEX).copied().unwrap_or_default(),
        naive_table_wcu: naive_write.0,
        naive_index_wcu: naive_write.1.get(NAIVE_INDEX).copied().unwrap_or_default(),
        idle_entry_bytes: entry(&[]),
        idle_entry_bytes_with_last_active: with_last_active,
        item_bytes: item_bytes(prototype, &prototype.keys().map(String::as_str).collect::<Vec<_>>()),
    };
    println!(
        "Recorded heartbeat through Sandman: {:.1} RCU + {:.1} WCU (table {:.1}, idle index {:.1}, other indexes {:.1}); naive layout: table {:.1} + state index {:.1} WCU",
        heartbeats.rcu,
        heartbeats.wcu,
        heartbeats.table_wcu,
        heartbeats.idle_index_wcu,
        sandman_write.1.values().sum::<f64>() - heartbeats.idle_index_wcu,
        heartbeats.naive_table_wcu,
        heartbeats.naive_index_wcu,
    );
    println!(
        "Idle index entry: ~{} bytes as projected; ~{} bytes with lastActiveAt, which no reader takes from the index",
        heartbeats.idle_entry_bytes, heartbeats.idle_entry_bytes_with_last_active
    );
    heartbeats
}

/// A heartbeat's write (`lastActiveAt` plus `also`), with consumed capacity per table and index.
async fn indexed_heartbeat(
    client: &Client,
    table: &str,
    item: &Item,
    also: Option<&str>,
) -> (f64, HashMap<String, f64>) {
    let at = item["lastActiveAt"]
        .as_n()
        .expect("lastActiveAt")
        .parse::<i64>()
        .expect("ms")
        + 120_000;
    let out = client
        .update_item()
        .table_name(table)
        .key("pk", item["pk"].clone())
        .key("sk", item["sk"].clone())
        .update_expression(match also {
            Some(also) => format!("SET lastActiveAt = :at, {also}"),
            None => "SET lastActiveAt = :at".to_owned(),
        })
        .expression_attribute_values(":at", AttributeValue::N(at.to_string()))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .expect("heartbeat write");
    let consumed = out.consumed_capacity.expect("consumed capacity");
    let table_units = consumed.table.and_then(|t| t.capacity_units).unwrap_or_default();
    let indexes = consumed
        .global_secondary_indexes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, c)| (name, c.capacity_units.unwrap_or_default()))
        .collect();
    (table_units, indexes)
}

/// DynamoDB's size of these attributes of `item`: each name's bytes plus its value's.
fn item_bytes(item: &Item, names: &[&str]) -> usize {
    names
        .iter()
        .filter_map(|name| item.get(*name).map(|value| name.len() + value_bytes(value)))
        .sum()
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        // Numbers: about one byte per two significant digits, plus one.
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        _ => 0,
    }
}

/// Capacity of one idle pause (an enforcer tick that finds one idle session, on an otherwise
/// empty index) and of the open that resumes it, on a stack of their own.
pub async fn lifecycle_costs() -> serde_json::Value {
    let stack = super::kit::stack(&[]).await;
    let (key, _) = super::kit::running(&stack, "lifecycle", 10 * MINUTE, false).await;
    let meter = || stack.store().capacity().total();
    let before = meter();
    let quiet = stack.sandman.enforce_idle().await;
    let idle_tick = meter();
    stack.clock.advance(11 * MINUTE);
    let report = stack.sandman.enforce_idle().await;
    assert_eq!(report.paused, 1, "the idle session is paused: {report:?}");
    let paused = meter();
    stack
        .sandman
        .open(&key, sandman::domain::Actor::User)
        .await
        .expect("the project reopens");
    let resumed = meter();
    let pause = (
        paused.read_units - idle_tick.read_units,
        paused.write_units - idle_tick.write_units,
    );
    let resume = (
        resumed.read_units - paused.read_units,
        resumed.write_units - paused.write_units,
    );
    println!(
        "Idle pause: {:.1} RCU + {:.1} WCU (the tick's reads included); resume by open: {:.1} RCU + {:.1} WCU; an empty tick took {:.0} ms ({:.1} RCU reported)",
        pause.0,
        pause.1,
        resume.0,
        resume.1,
        quiet.duration.as_secs_f64() * 1000.0,
        idle_tick.read_units - before.read_units
    );
    json!({
        "pause": { "rcu": pause.0, "wcu": pause.1 },
        "resume": { "rcu": resume.0, "wcu": resume.1 },
        "emptyTickMs": quiet.duration.as_secs_f64() * 1000.0,
    })
}

/// A table-name suffix unique within this process.
fn unique_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
