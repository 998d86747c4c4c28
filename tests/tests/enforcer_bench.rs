//! Benchmark of the idle enforcer (ignored by default: it prints figures, asserts no timings).
//!
//! ```sh
//! cargo test -p sandman-tests --test enforcer_bench -- --ignored --nocapture
//! ```
//! with DynamoDB Local running (`AWS_ENDPOINT_URL_DYNAMODB`, as `make test` exports it).
//! `ENFORCER_BENCH_SIZES=10000,100000` chooses the fleet sizes.
//!
//! It prints, per fleet size, the read capacity units and queries of one tick with nothing idle
//! and with 1% idle, and the wall time of a tick pausing 1,000 idle sandboxes that the emulator
//! holds, each pause answered after 200 ms.

#[path = "bench_kit/mod.rs"]
mod bench_kit;
#[path = "heap_kit/mod.rs"]
mod heap_kit;
#[path = "enforcer_kit/mod.rs"]
mod kit;

use std::time::{Duration, Instant};

use bench_kit::{Seed, prototype, seed_stack};
use e2b_emulator::{Fault, Route};
use futures::StreamExt;
use kit::{MINUTE, e2b, stack};
use sandman::domain::ProjectKey;
use sandman::e2b::NewSandbox;
use sandman::sandbox_metadata;
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
}

/// Capacity a tick reads with nothing idle, then with 1% idle, in a fleet of `size` RUNNING sessions.
async fn tick_reads(size: usize) {
    let stack = stack(&[]).await;
    let prototype = prototype(&stack).await;
    let now = stack.clock.now();
    let idle_every = 100;
    let seeds = (0..size).map(|i| Seed {
        key: stack.key(&format!("bench-{i}")),
        sandbox_id: format!("absent-{i}"),
        // 1% becomes idle a minute from now, the rest in an hour.
        idle_at: now + if i % idle_every == 0 { MINUTE } else { 60 * MINUTE },
    });
    let started = Instant::now();
    seed_stack(&stack, &prototype, seeds).await;
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
        "[{size} sessions] tick, 1% idle ({} sandboxes E2B no longer has): {:.1} RCU in {} queries, {} candidates, {} gone, {:.0} ms",
        size / idle_every,
        busy.0,
        busy.1,
        busy.2.candidates,
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
    let e2b = e2b(&stack);
    let now = stack.clock.now();
    let started = Instant::now();
    let sandboxes: Vec<(ProjectKey, String)> = futures::stream::iter(0..count)
        .map(|i| {
            let (e2b, key) = (e2b.clone(), stack.key(&format!("idle-{i}")));
            async move {
                let new = NewSandbox {
                    template_id: "base".into(),
                    timeout: Duration::from_secs(3600),
                    auto_pause: true,
                    metadata: sandbox_metadata::for_session(&key, "bench"),
                    env_vars: Default::default(),
                };
                let sandbox = e2b.create_sandbox(&new).await.expect("sandbox created");
                (key, sandbox.sandbox_id)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let seeds = sandboxes.into_iter().map(|(key, sandbox_id)| Seed {
        key,
        sandbox_id,
        idle_at: now - MINUTE,
    });
    seed_stack(&stack, &prototype, seeds).await;
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
    let heap = heap_kit::start();
    let report = stack.sandman.enforce_idle().await;
    let peak_heap_mib = heap_kit::peak_since(heap) as f64 / 1_048_576.0;
    println!(
        "[pause {count}] peak heap during the tick: {peak_heap_mib:.1} MiB above what was live before (this process also runs the E2B emulator, so an upper bound)"
    );
    bench_kit::record_figures(
        "enforcer",
        serde_json::json!({
            "pauses": report.paused, "pauseLatencyMs": latency.as_millis() as u64,
            "tickSeconds": report.duration.as_secs_f64(), "peakHeapMiB": peak_heap_mib,
        }),
    );
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
