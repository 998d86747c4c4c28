//! A seeded soak of the whole of Sandman: the real handlers of all four functions, several Lambda
//! instances each, against DynamoDB Local and the E2B emulator on an emulated clock, with faults
//! injected at every boundary; then the system is let settle and checked against the lifecycle's
//! invariants. See `scripts/soak`.

pub mod actors;
pub mod chaos;
pub mod dynamo_faults;
pub mod fleet;
pub mod invariants;
pub mod ledger;
pub mod model;
pub mod quiescence;
pub mod restarts;
pub mod stalls;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actors::{Soak, Tick};
use fleet::{Fleet, STUCK_AFTER};
use ledger::Ledger;
use restarts::DynamoLocal;

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub projects: usize,
    pub operations: u64,
    pub duration: Duration,
    /// Lambda instances per function.
    pub instances: usize,
    /// Concurrent API callers.
    pub workers: usize,
    /// Fault-table entries (by name, e.g. `dynamodb.transaction-conflict`) left out of this run.
    pub skip_faults: Vec<String>,
    /// Times DynamoDB Local is stopped and started again mid-run (`dynamodb.restart`), when
    /// `scripts/soak` said how (see [`restarts::DynamoLocal::from_env`]).
    pub dynamodb_restarts: u32,
}

pub struct Outcome {
    pub report: String,
    pub violations: usize,
}

/// Reconcile rounds allowed after the first before the run counts as not converging.
const EXTRA_ROUNDS: usize = 4;

pub async fn run(plan: &Plan) -> Outcome {
    let panics = record_panics();
    let ledger = Arc::new(Ledger::default());
    let fleet = Fleet::start(plan.instances, plan.seed, ledger.clone()).await;
    let soak = Arc::new(Soak::new(fleet, ledger.clone(), plan.projects, plan.operations));
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    soak.register_all(&mut rng).await;

    let started = Instant::now();
    let mut actors = tokio::task::JoinSet::new();
    for _ in 0..plan.workers {
        actors.spawn(soak.clone().api_worker(rng.fork()));
    }
    for (tick, every) in [
        (Tick::Enforce, Duration::from_millis(400)),
        (Tick::Reconcile, Duration::from_millis(1500)),
        (Tick::Prune, Duration::from_millis(1500)),
    ] {
        actors.spawn(soak.clone().tick_actor(rng.fork(), tick, every));
    }
    actors.spawn(soak.clone().clock_actor(rng.fork()));
    actors.spawn(soak.clone().chaos_actor(rng.fork(), plan.skip_faults.clone()));
    let dynamo = DynamoLocal::from_env().map(Arc::new);
    let restarts = match &dynamo {
        Some(dynamo) if plan.dynamodb_restarts > 0 && !plan.skip_faults.iter().any(|f| f == "dynamodb.restart") => {
            let at = restarts::moments(&mut rng, plan.dynamodb_restarts, plan.duration);
            let planned = at
                .iter()
                .map(|t| format!("{:.0}s", t.as_secs_f64()))
                .collect::<Vec<_>>();
            actors.spawn(soak.clone().restart_actor(rng.fork(), dynamo.clone(), at));
            format!("DynamoDB Local restarts planned at {}\n", planned.join(", "))
        }
        Some(_) => "DynamoDB Local not restarted (none asked for)\n".to_owned(),
        None => "DynamoDB Local not restarted (run through scripts/soak to restart it)\n".to_owned(),
    };
    let deadline = tokio::time::sleep(plan.duration);
    tokio::pin!(deadline);
    tokio::select! {
        _ = &mut deadline => soak.stop(),
        _ = wait_for_stop(&soak) => {}
    }
    while let Some(ended) = actors.join_next().await {
        if let Err(err) = ended {
            ledger.violation(TASK_FAILED, "", err.to_string());
        }
    }
    let ran_for = started.elapsed();

    // Quiescence: faults off, webhooks delivered, leases and the stuck threshold passed, one reconcile
    // and one prune.
    chaos::all_off(&soak.fleet);
    let faults_off = Instant::now();
    settle(&soak).await;
    soak.fleet.advance(STUCK_AFTER + Duration::from_secs(60)).await;
    settle(&soak).await;
    let mut quiet_rng = fastrand::Rng::with_seed(plan.seed ^ 0xc0de);
    // PENDING snapshot rows (their writer cut short, or E2B's answer lost) are the pruner's to finish.
    soak.tick_quietly(&mut quiet_rng, Tick::Reconcile).await;
    soak.tick_quietly(&mut quiet_rng, Tick::Prune).await;
    settle(&soak).await;
    let (findings, figures) = quiescence::check_state(&soak).await;
    let first_check = findings.len();
    for found in findings {
        ledger.violation(found.kind, found.project, found.seen);
    }
    for found in quiescence::check_heartbeats(&soak).await {
        ledger.violation(found.kind, found.project, found.seen);
    }

    // Convergence: how many more reconciles (and how long) until E2B and the table agree.
    let mut converged = (first_check == 0).then(|| (0, faults_off.elapsed()));
    for round in 1..=EXTRA_ROUNDS {
        if converged.is_some() {
            break;
        }
        soak.fleet.advance(STUCK_AFTER + Duration::from_secs(60)).await;
        soak.tick_quietly(&mut quiet_rng, Tick::Reconcile).await;
        soak.tick_quietly(&mut quiet_rng, Tick::Prune).await;
        settle(&soak).await;
        if quiescence::check_state(&soak).await.0.is_empty() {
            converged = Some((round, faults_off.elapsed()));
        }
    }

    let mut report = format!(
        "soak: seed {} · {} projects · {} instances per function · {} workers · ran {:.1}s ({} operations){}\n",
        plan.seed,
        plan.projects,
        plan.instances,
        plan.workers,
        ran_for.as_secs_f64(),
        ledger.operation_count(),
        if plan.skip_faults.is_empty() {
            String::new()
        } else {
            format!(" · without {}", plan.skip_faults.join(", "))
        },
    );
    report.push_str(&restarts);
    for seen in panics
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drain(..)
    {
        ledger.violation(PANICKED, "", seen);
    }
    report.push_str(&ledger.report());
    let hits = soak.fleet.emulator.fault_hits();
    report.push_str(&format!(
        "E2B calls hit by a fault ({}):\n",
        hits.iter().map(|h| h.count).sum::<u64>()
    ));
    for hit in hits {
        report.push_str(&format!("  {:>7}  {:?} {:?}\n", hit.count, hit.route, hit.kind));
    }
    report.push_str(&format!(
        "at quiescence: {} live E2B sandboxes ({} paused orphans), {} E2B snapshots, {} DELETING rows\n",
        figures.live_sandboxes, figures.paused_orphans, figures.snapshots, figures.deleting_rows
    ));
    report.push_str(&match converged {
        Some((0, took)) => format!(
            "converged after faults stopped: at the first check (one reconcile), {:.1}s\n",
            took.as_secs_f64()
        ),
        Some((rounds, took)) => format!(
            "converged after faults stopped: {rounds} reconcile(s) beyond the first, {:.1}s\n",
            took.as_secs_f64()
        ),
        None => format!(
            "did NOT converge within {} reconciles after faults stopped\n",
            EXTRA_ROUNDS + 1
        ),
    });
    Outcome {
        report,
        violations: ledger.violation_count(),
    }
}

pub const PANICKED: &str = "a panic";
pub const TASK_FAILED: &str = "an actor ended with a panic or was cancelled";

/// Every panic of the run, wherever it happens (a handler's panic ends only its task, which no
/// answer would show): each is a violation. The default hook still prints it.
fn record_panics() -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(info.to_string());
        previous(info);
    }));
    seen
}

async fn wait_for_stop(soak: &Soak) {
    while !soak.stopping() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until the emulator has no webhook queued or in flight.
async fn settle(soak: &Soak) {
    let _ = tokio::time::timeout(Duration::from_secs(30), soak.fleet.emulator.settle_webhooks()).await;
}
