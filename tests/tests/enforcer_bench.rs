//! Benchmark of the idle enforcer (ignored by default: it prints figures, asserts no timings).
//!
//! ```sh
//! cargo test -p sandman-tests --test enforcer_bench -- --ignored --nocapture
//! ```
//! with DynamoDB Local running (`AWS_ENDPOINT_URL_DYNAMODB`, as `make test` exports it).
//! `ENFORCER_BENCH_SIZES=10000,100000` chooses the fleet sizes.
//!
//! It prints, per fleet size, the read capacity units and queries of one tick with nothing idle
//! and with 1% idle (every project busy-aware, so the idle ones cost E2B metrics calls), the wall
//! time of a tick pausing 1,000 idle sandboxes that the emulator holds, each pause answered after
//! 200 ms, and the E2B metrics calls a tick makes for 1,000 busy-aware idle candidates.

#[path = "enforcer_kit/mod.rs"]
mod kit;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2b_emulator::{Fault, Route};
use kit::fleet::{Seed, prototype, sandboxes, seed};
use kit::{MINUTE, stack};
use sandman::store::keys;
use sandman_local::testkit::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn enforcer_benchmark() {
    let sizes: Vec<usize> = std::env::var("ENFORCER_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    for size in sizes {
        tick_reads(size).await;
    }
    pauses_with_latency(1_000, Duration::from_millis(200)).await;
    busy_candidates(1_000).await;
}

/// Makes every seeded project busy-aware (`busyCpuPercent` 50).
fn busy_aware(mut prototype: kit::fleet::Item) -> kit::fleet::Item {
    prototype.insert("busyCpuPercent".into(), AttributeValue::N("50".into()));
    prototype
}

/// Capacity a tick reads with nothing idle, then with 1% idle, in a fleet of `size` RUNNING sessions.
async fn tick_reads(size: usize) {
    let stack = stack(&[]).await;
    let prototype = busy_aware(prototype(&stack).await);
    let now = stack.clock.now();
    let idle_every = 100;
    let seeds = (0..size).map(|i| Seed {
        key: stack.key(&format!("bench-{i}")),
        sandbox_id: format!("absent-{i}"),
        // 1% becomes idle a minute from now, the rest in an hour.
        idle_at: now + if i % idle_every == 0 { MINUTE } else { 60 * MINUTE },
    });
    let started = Instant::now();
    seed(&stack, &prototype, seeds).await;
    println!("[{size} sessions] seeded in {:.1} s", started.elapsed().as_secs_f64());

    let quiet = measured_tick(&stack).await;
    println!(
        "[{size} sessions] tick, 0 idle: {:.1} RCU in {} queries ({} shards), {} candidates, {:.0} ms",
        quiet.0,
        quiet.1,
        keys::IDLE_SHARDS,
        quiet.2.candidates,
        quiet.2.duration.as_secs_f64() * 1000.0
    );
    stack.clock.advance(2 * MINUTE);
    let busy = measured_tick(&stack).await;
    println!(
        "[{size} sessions] tick, 1% idle ({} busy-aware sandboxes E2B no longer has): {:.1} RCU in {} queries, {} candidates, {} E2B metrics calls, {} gone, {:.0} ms",
        size / idle_every,
        busy.0,
        busy.1,
        busy.2.candidates,
        busy.2.metrics_calls,
        busy.2.gone,
        busy.2.duration.as_secs_f64() * 1000.0
    );
}

/// Read units and read calls (queries) one tick consumed.
async fn measured_tick(stack: &TestStack) -> (f64, u64, sandman::enforcer::TickReport) {
    let before = stack.store().capacity().total();
    let report = stack.sandman.enforce_idle().await;
    let after = stack.store().capacity().total();
    // Calls count reads and writes; each pause writes twice (claim, outcome) and reads nothing.
    let writes = 2 * (report.paused + report.gone + report.failed);
    (
        after.read_units - before.read_units,
        after.calls - before.calls - writes,
        report,
    )
}

/// Wall time of one tick pausing `count` idle sandboxes, each pause taking `latency` in E2B.
async fn pauses_with_latency(count: usize, latency: Duration) {
    let stack = stack(&[]).await;
    let prototype = prototype(&stack).await;
    let now = stack.clock.now();
    let started = Instant::now();
    let sandboxes = sandboxes(&stack, "idle", count).await;
    let seeds = sandboxes.into_iter().map(|(key, sandbox_id)| Seed {
        key,
        sandbox_id,
        idle_at: now - MINUTE,
    });
    seed(&stack, &prototype, seeds).await;
    println!(
        "[pause {count}] {count} sandboxes created in the emulator and seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    measured_reconcile(&stack, "all running").await;
    stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            latency,
            ..Fault::default()
        },
    );
    let report = stack.sandman.enforce_idle().await;
    println!(
        "[pause {count}] one tick, {} ms per pause, concurrency {}: {} paused, {} failed, {} deferred in {:.2} s (deadline {} s)",
        latency.as_millis(),
        stack.sandman.config.enforcer.concurrency,
        report.paused,
        report.failed,
        report.deferred,
        report.duration.as_secs_f64(),
        stack.sandman.config.enforcer.tick_deadline.as_secs()
    );
    stack.emulator.clear_faults();
    measured_reconcile(&stack, "all paused").await;
}

/// E2B metrics calls for `count` busy-aware idle candidates whose sandboxes the emulator holds,
/// every other one busy (80% CPU): the busy are deferred, the rest paused.
async fn busy_candidates(count: usize) {
    let stack = stack(&[]).await;
    let prototype = busy_aware(prototype(&stack).await);
    let now = stack.clock.now();
    let sandboxes = sandboxes(&stack, "busy", count).await;
    for (i, (_, sandbox_id)) in sandboxes.iter().enumerate() {
        stack.emulator.set_cpu(sandbox_id, (i % 2 == 0).then_some(80.0));
    }
    let seeds = sandboxes.into_iter().map(|(key, sandbox_id)| Seed {
        key,
        sandbox_id,
        idle_at: now - MINUTE,
    });
    seed(&stack, &prototype, seeds).await;
    stack.emulator.clear_calls();
    let report = stack.sandman.enforce_idle().await;
    let per_thousand = report.metrics_calls as f64 * 1000.0 / report.candidates.max(1) as f64;
    println!(
        "[busy {count}] one tick: {} candidates, {} E2B metrics calls ({per_thousand:.0} per 1,000 idle candidates), {} deferred as busy, {} paused in {:.2} s",
        report.candidates,
        report.metrics_calls,
        report.busy_deferred,
        report.paused,
        report.duration.as_secs_f64()
    );
}

/// What a reconciliation of a consistent fleet costs: table reads, and E2B calls.
async fn measured_reconcile(stack: &TestStack, label: &str) {
    stack.emulator.clear_calls();
    let before = stack.store().capacity().total();
    let report = stack.sandman.reconcile().await;
    let after = stack.store().capacity().total();
    let e2b_calls = stack.emulator.calls();
    let lists = e2b_calls.iter().filter(|c| c.route == Route::ListSandboxes).count();
    println!(
        "[reconcile, {label}] {} running in the table, {} Sandman sandboxes listed: {:.1} RCU in {} reads, {} E2B list pages, {} other E2B calls, {} repaired, {:.0} ms",
        report.running,
        report.listed,
        after.read_units - before.read_units,
        after.calls - before.calls,
        lists,
        e2b_calls.len() - lists,
        report.repaired(),
        report.duration.as_secs_f64() * 1000.0
    );
}
