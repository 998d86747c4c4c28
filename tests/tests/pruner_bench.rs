//! Benchmark, not a test (ignored by default): the DynamoDB capacity one pruner tick consumes over
//! a large fleet, when nothing is due and when 1% of projects are. Prints figures; asserts only
//! that the tick did the work it should (no timings).
//!
//! With DynamoDB Local running (see `functions/snapshot-pruner/README.md`):
//!
//! ```text
//! cargo test -p sandman-tests --release --test pruner_bench -- --ignored --nocapture
//! ```
//!
//! `PRUNER_BENCH_PROJECTS` (10000) and `PRUNER_BENCH_SNAPSHOTS` (20) change the size. Records are
//! seeded with BatchWriteItem, cloned from one project and one snapshot the store wrote, so they
//! have exactly the store's layout; only the snapshots the tick will delete exist in the emulator.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use e2b_emulator::EmulatorConfig;
use futures::StreamExt;
use sandman::domain::{Actor, ProjectKey, ProjectSpec, RetentionPolicy, Snapshot, SnapshotKind, SnapshotStatus};
use sandman::retention::{PassOptions, PruneReport};
use sandman::store::{Capacity, Consistency, SnapshotAdmission, keys};
use sandman_local::testkit::TestStack;
use time::OffsetDateTime;

type Item = HashMap<String, AttributeValue>;

const HOUR: Duration = Duration::from_secs(3600);
const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::N((at.unix_timestamp_nanos() / 1_000_000).to_string())
}

fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn spec(stack: &TestStack, project: &str, keep_last: u32) -> ProjectSpec {
    ProjectSpec {
        retention: RetentionPolicy {
            keep_last,
            max_age: Some(MAX_AGE),
        },
        ..stack.spec(project)
    }
}

async fn raw_item(client: &Client, table: &str, pk: String, sk: String) -> Item {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", text(pk))
        .key("sk", text(sk))
        .send()
        .await
        .expect("get");
    out.item.expect("the template item exists")
}

async fn batch_write(client: &Client, table: &str, items: Vec<Item>) {
    let chunks: Vec<Vec<Item>> = items.chunks(25).map(<[Item]>::to_vec).collect();
    futures::stream::iter(chunks)
        .map(|chunk| async move {
            let mut pending: Vec<WriteRequest> = chunk
                .into_iter()
                .map(|item| {
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build().expect("put"))
                        .build()
                })
                .collect();
            while !pending.is_empty() {
                let out = client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .expect("batch write");
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

fn delta(before: Capacity, after: Capacity) -> Capacity {
    Capacity {
        read_units: after.read_units - before.read_units,
        write_units: after.write_units - before.write_units,
        calls: after.calls - before.calls,
    }
}

async fn measured_tick(stack: &TestStack) -> (PruneReport, Capacity, Duration) {
    let before = stack.store().capacity().total();
    let started = Instant::now();
    let report = stack
        .sandman
        .prune(PassOptions::default())
        .await
        .expect("the tick runs");
    (
        report,
        delta(before, stack.store().capacity().total()),
        started.elapsed(),
    )
}

fn print_tick(label: &str, report: &PruneReport, used: Capacity, took: Duration) {
    println!(
        "  {label:<24} {:>9.1} RCU {:>9.1} WCU {:>6} calls | visited {:>5}, deleted {:>5}, failures {} | {:>6} ms",
        used.read_units,
        used.write_units,
        used.calls,
        report.projects_visited,
        report.snapshots_deleted,
        report.failures,
        took.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: seeds 210,000 items; run with --ignored --nocapture"]
async fn pruner_tick_capacity() {
    let projects = env_or("PRUNER_BENCH_PROJECTS", 10_000);
    let per_project = env_or("PRUNER_BENCH_SNAPSHOTS", 20);
    let due = (projects / 100).max(1);
    let to_delete = per_project / 2;
    let stack = TestStack::start_with(
        EmulatorConfig {
            snapshot_duration: Duration::ZERO,
            ..EmulatorConfig::default()
        },
        |_| None,
    )
    .await;
    let (client, table) = (&stack.table.client, stack.table.name.as_str());
    let now = stack.clock.now();

    // The E2B snapshots the 1% tick deletes: the oldest half of each due project's snapshots.
    let source = stack.key("e2b-source");
    stack.register(&stack.spec("e2b-source")).await;
    stack
        .sandman
        .open(&source, Actor::User)
        .await
        .expect("a sandbox to snapshot");
    let record = stack.sandman.project(&source).await.unwrap();
    let sandbox = record.session.and_then(|s| s.sandbox).expect("a sandbox").sandbox_id;
    let e2b = stack.sandman.e2b_for(&source).await.unwrap();
    let e2b_ids: Vec<String> = futures::stream::iter(0..due * to_delete)
        .map(|_| async {
            e2b.create_snapshot(&sandbox, None)
                .await
                .expect("E2B snapshot")
                .snapshot_id
        })
        .buffer_unordered(8)
        .collect()
        .await;
    stack.store().delete_project(&source, None).await.unwrap();

    // Templates written by the store itself, then cloned.
    let template = stack.key("template");
    stack.register(&spec(&stack, "template", per_project as u32)).await;
    let snapshot = Snapshot {
        snapshot_id: sandman::snapshots::new_snapshot_id(),
        team_id: template.team.clone(),
        project_id: template.project.clone(),
        e2b_snapshot_id: "template".into(),
        source_sandbox_id: "sbx-template".into(),
        description: "saved before an idle pause".into(),
        kind: SnapshotKind::AutoBeforePause,
        pinned: false,
        status: SnapshotStatus::Ready,
        created_at: now,
        size_bytes: Some(512 * 1024 * 1024),
        file_count: Some(12_000),
        held_until: None,
    };
    stack
        .store()
        .put_snapshot(&snapshot, SnapshotAdmission::Always)
        .await
        .unwrap();
    let project_template = raw_item(client, table, keys::project_pk(&template), keys::PROJECT_SK.into()).await;
    let snapshot_template = raw_item(
        client,
        table,
        keys::project_pk(&template),
        keys::snapshot_sk(&snapshot.snapshot_id),
    )
    .await;
    stack
        .store()
        .delete_snapshot_record(&template, &snapshot.snapshot_id)
        .await
        .unwrap();
    stack.store().delete_project(&template, None).await.unwrap();

    let started = Instant::now();
    let key = |n: usize| stack.key(&format!("p{n:05}"));
    let oldest = now - HOUR * per_project as u32;
    let mut project_items = Vec::with_capacity(projects);
    let mut snapshot_items = Vec::with_capacity(projects * per_project);
    let mut e2b_ids = e2b_ids.into_iter();
    for n in 0..projects {
        let key: ProjectKey = key(n);
        let pk = text(keys::project_pk(&key));
        let mut item = project_template.clone();
        item.insert("pk".into(), pk.clone());
        item.insert("projectId".into(), text(key.project.as_str()));
        item.insert("projectKey".into(), text(key.project.as_str()));
        item.insert("pruneShard".into(), text(keys::prune_shard(&key)));
        // Steady state after a pass: due again when the oldest snapshot turns 30 days old.
        item.insert("pruneAt".into(), ms(oldest + MAX_AGE));
        project_items.push(item);
        for i in 0..per_project {
            let id = sandman::snapshots::new_snapshot_id();
            let mut item = snapshot_template.clone();
            item.insert("pk".into(), pk.clone());
            item.insert("sk".into(), text(keys::snapshot_sk(&id)));
            item.insert("snapshotId".into(), text(id.as_str()));
            item.insert("projectId".into(), text(key.project.as_str()));
            item.insert("createdAt".into(), ms(oldest + HOUR * i as u32));
            let e2b_id = if n < due && i < to_delete { e2b_ids.next() } else { None };
            item.insert(
                "e2bSnapshotId".into(),
                text(e2b_id.unwrap_or_else(|| format!("e2b-{n}-{i}"))),
            );
            snapshot_items.push(item);
        }
    }
    batch_write(client, table, project_items).await;
    batch_write(client, table, snapshot_items).await;
    println!(
        "\npruner tick over {projects} projects x {per_project} snapshots ({} items, seeded in {:.1} s)",
        projects * (per_project + 1),
        started.elapsed().as_secs_f64()
    );
    let sample = stack
        .store()
        .get_project(&key(projects - 1), Consistency::Strong)
        .await
        .unwrap()
        .expect("seeded");
    assert_eq!(
        stack.store().all_snapshots(&sample.project.key()).await.unwrap().len(),
        per_project
    );

    let (report, used, took) = measured_tick(&stack).await;
    print_tick("nothing due:", &report, used, took);
    assert_eq!((report.projects_visited, report.snapshots_deleted), (0, 0));

    // 1%: their owners tighten the policy to the last half, which marks them due.
    for n in 0..due {
        stack
            .store()
            .put_project(
                &spec(&stack, &format!("p{n:05}"), (per_project - to_delete) as u32),
                now,
            )
            .await
            .unwrap();
    }
    let in_e2b = stack.emulator.snapshots().len();
    let (report, used, took) = measured_tick(&stack).await;
    print_tick(
        &format!("{due} due ({} deletions):", due * to_delete),
        &report,
        used,
        took,
    );
    assert_eq!(
        (report.projects_visited, report.snapshots_deleted, report.failures),
        (due as u64, (due * to_delete) as u64, 0)
    );
    assert_eq!(stack.emulator.snapshots().len(), in_e2b - due * to_delete);
    println!(
        "  {:<24} {:>9.2} RCU {:>9.2} WCU",
        "per due project:",
        used.read_units / due as f64,
        used.write_units / due as f64
    );

    let (report, used, took) = measured_tick(&stack).await;
    print_tick("next tick, nothing due:", &report, used, took);
    assert_eq!(report.projects_visited, 0);
}
