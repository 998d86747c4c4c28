//! Sandman's idle index against the naive peer, in one run on one DynamoDB Local (ignored by
//! default: it prints figures and asserts no timings). `scripts/bench naive` runs it.
//!
//! The same fleet is seeded into two tables: Sandman's (from `template.yaml`, items copied from a
//! session Sandman wrote) and the naive layout (one GSI, partition key `state`, sort key
//! `lastActiveAt`). A tick then finds the idle sessions three ways: Sandman's sharded sparse
//! `idle` index, the naive index queried for every RUNNING session and filtered in code, and a
//! Scan. Each page's consumed capacity is read from DynamoDB (`ReturnConsumedCapacity`); AWS
//! bills at least 0.5 RCU for every query or scan page, where DynamoDB Local reports 0 for an
//! empty one, so both figures are printed and the ratio uses the billed one.
//!
//! It also measures what one recorded heartbeat writes (per index, `INDEXES`), the fleet size at
//! which each layout's index partition reaches DynamoDB's 1,000 WCU/s, and heartbeat capacity per
//! active project-hour before (a fixed 30 s interval) and after (`IdlePolicy::heartbeat_interval`).
//! `NAIVE_BENCH_SIZES=10000,100000` chooses the fleet sizes.

#[path = "bench_kit/mod.rs"]
mod bench_kit;
#[path = "enforcer_kit/mod.rs"]
mod kit;
#[path = "naive_kit/mod.rs"]
mod naive_kit;

use std::time::{Duration, Instant};

use bench_kit::{Seed, prototype, record_figures, seed};
use kit::{MINUTE, stack};
use naive_kit::{Heartbeats, Tick, heartbeat_costs, lifecycle_costs, naive_table, naive_tick, sandman_tick, scan_tick};
use sandman::domain::IdlePolicy;
use serde_json::json;

/// DynamoDB's write throughput limit of one partition.
const PARTITION_WCU_PER_SECOND: f64 = 1000.0;
/// The heartbeat interval before it followed the idle timeout.
const FIXED_INTERVAL: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn naive_peer_benchmark() {
    let sizes: Vec<usize> = std::env::var("NAIVE_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let lifecycle = lifecycle_costs().await;
    let mut ticks = Vec::new();
    for size in sizes {
        let (fleet_ticks, heartbeats) = fleet(size).await;
        ticks.extend(fleet_ticks);
        // Recorded after each fleet, so a long run that is stopped keeps what it measured.
        record_figures(
            "naive",
            json!({
                "ticks": ticks, "heartbeat": heartbeats.figures(), "throttling": throttling(&heartbeats),
                "perProjectHour": per_project_hour(&heartbeats), "lifecycle": lifecycle,
            }),
        );
    }
}

/// Seeds `size` RUNNING sessions into both layouts and measures ticks at 0%, 1% and 10% idle.
async fn fleet(size: usize) -> (Vec<serde_json::Value>, Heartbeats) {
    let stack = stack(&[]).await;
    let prototype = prototype(&stack).await;
    let heartbeats = heartbeat_costs(&stack, &prototype).await;
    let naive = naive_table(&stack.table.client).await;
    let now = stack.clock.now();
    // Deadlines staggered so that 1% is idle two minutes from now, and 10% four minutes from now.
    let seeds = (0..size).map(|i| Seed {
        key: stack.key(&format!("fleet-{i}")),
        sandbox_id: format!("sandbox-{i}"),
        idle_at: now
            + match (i % 100, i % 10) {
                (0, _) => MINUTE,
                (_, 0) => 3 * MINUTE,
                _ => 60 * MINUTE,
            },
    });
    let started = Instant::now();
    let tables = [stack.table.name.as_str(), naive.as_str()];
    seed(&stack.table.client, &tables, &prototype, seeds).await;
    println!(
        "[{size} sessions] seeded into both tables ({} items) in {:.1} s",
        2 * size,
        started.elapsed().as_secs_f64()
    );

    let mut figures = Vec::new();
    for (label, at) in [("0%", now), ("1%", now + 2 * MINUTE), ("10%", now + 4 * MINUTE)] {
        let sandman = sandman_tick(stack.store(), at).await;
        let by_state = naive_tick(&stack.table.client, &naive, at).await;
        let scan = scan_tick(&stack.table.client, &naive, at).await;
        assert_eq!(sandman.idle, by_state.idle, "both layouts find the same idle sessions");
        assert_eq!(sandman.idle, scan.idle, "a scan finds the same idle sessions");
        print_tick(size, label, &sandman, &by_state, &scan);
        figures.push(json!({
            "sessions": size, "idle": label, "idleSessions": sandman.idle,
            "sandman": sandman.figures(), "naiveQuery": by_state.figures(), "scan": scan.figures(),
            "ratioNaiveQuery": by_state.billed / sandman.billed, "ratioScan": scan.billed / sandman.billed,
        }));
    }
    (figures, heartbeats)
}

fn print_tick(size: usize, label: &str, sandman: &Tick, naive: &Tick, scan: &Tick) {
    println!(
        "[{size} sessions, {label} idle] {} idle sessions found by each:",
        sandman.idle
    );
    for (name, tick) in [
        ("sandman idle index", sandman),
        ("naive state index", naive),
        ("scan", scan),
    ] {
        println!(
            "    {name:<19} {:>9.1} RCU billed ({:>9.1} reported by DynamoDB Local) in {:>4} calls, {:>6} items read",
            tick.billed, tick.reported, tick.calls, tick.items
        );
    }
    println!(
        "    naive query / sandman = {:.0}x, scan / sandman = {:.0}x (billed RCU; pauses write the same in both)",
        naive.billed / sandman.billed,
        scan.billed / sandman.billed
    );
}

/// The fleet size at which heartbeats alone fill one index partition's 1,000 WCU/s: the naive
/// index keeps every RUNNING session under one partition key, Sandman's spreads them over its shards.
fn throttling(heartbeats: &Heartbeats) -> serde_json::Value {
    let shards = f64::from(sandman::store::keys::IDLE_SHARDS);
    let mut rows = Vec::new();
    println!("Fleet size at which heartbeats reach {PARTITION_WCU_PER_SECOND} WCU/s on one index partition:");
    for (label, interval) in [
        ("fixed 30 s".to_owned(), FIXED_INTERVAL),
        ("policy, 10 min idle".to_owned(), policy(10).heartbeat_interval()),
    ] {
        let per_session = |index_wcu: f64| index_wcu / interval.as_secs_f64();
        let naive = PARTITION_WCU_PER_SECOND / per_session(heartbeats.naive_index_wcu);
        let sandman = shards * PARTITION_WCU_PER_SECOND / per_session(heartbeats.idle_index_wcu);
        println!(
            "    heartbeat every {:>3} s ({label}): naive {naive:>9.0} sessions, sandman {sandman:>9.0} ({shards} shards)",
            interval.as_secs()
        );
        rows.push(json!({ "interval": label, "intervalSeconds": interval.as_secs(), "naiveSessions": naive, "sandmanSessions": sandman }));
    }
    json!(rows)
}

/// DynamoDB capacity of recorded heartbeats per active project-hour, at three idle timeouts.
fn per_project_hour(heartbeats: &Heartbeats) -> serde_json::Value {
    let mut rows = Vec::new();
    println!(
        "Recorded heartbeats per active project-hour ({:.1} RCU + {:.1} WCU each, measured):",
        heartbeats.rcu, heartbeats.wcu
    );
    for minutes in [1, 10, 60] {
        let after = policy(minutes).heartbeat_interval();
        let writes = |interval: Duration| 3600.0 / interval.as_secs_f64();
        let (before_writes, after_writes) = (writes(FIXED_INTERVAL), writes(after));
        println!(
            "    idle timeout {minutes:>2} min: before {before_writes:>5.0} writes = {:>6.0} WCU + {:>5.0} RCU; after (every {} s) {after_writes:>5.0} writes = {:>6.0} WCU + {:>5.0} RCU",
            before_writes * heartbeats.wcu,
            before_writes * heartbeats.rcu,
            after.as_secs(),
            after_writes * heartbeats.wcu,
            after_writes * heartbeats.rcu,
        );
        rows.push(json!({
            "idleTimeoutMinutes": minutes,
            "before": { "intervalSeconds": FIXED_INTERVAL.as_secs(), "writes": before_writes, "wcu": before_writes * heartbeats.wcu, "rcu": before_writes * heartbeats.rcu },
            "after": { "intervalSeconds": after.as_secs(), "writes": after_writes, "wcu": after_writes * heartbeats.wcu, "rcu": after_writes * heartbeats.rcu },
        }));
    }
    json!(rows)
}

fn policy(idle_minutes: u64) -> IdlePolicy {
    IdlePolicy {
        idle_timeout: MINUTE * idle_minutes as u32,
        ..IdlePolicy::default()
    }
}
