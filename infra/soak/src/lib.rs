//! A seeded soak of the whole of Sandman: the real handlers of all five functions, several Lambda
//! instances each, against DynamoDB Local and the E2B emulator on an emulated clock, with faults
//! injected at every boundary; then the system is let settle, and everything is judged by ground
//! truth (see [`judge`]). See `scripts/soak` and `docs/reliability.md`.

pub mod actors;
pub mod chaos;
pub mod dynamo_faults;
pub mod features;
pub mod fleet;
pub mod judge;
pub mod ledger;
pub mod model;
pub mod ops;
pub mod outbound;
pub mod restarts;
pub mod stalls;
pub mod timeline;
pub mod transcript;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actors::Soak;
use fleet::{Fleet, Job};
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
    /// Times DynamoDB Local is stopped and started again mid-run (`dynamodb.restart`); it needs
    /// `scripts/soak`'s environment (see [`restarts::DynamoLocal::from_env`]), and a run asked for
    /// restarts that did not do them all fails.
    pub dynamodb_restarts: u32,
}

pub struct Outcome {
    pub report: String,
    /// Invariants violated or that judged nothing.
    pub failed: usize,
}

pub async fn run(plan: &Plan) -> Outcome {
    let panics = record_panics();
    let ledger = Arc::new(Ledger::default());
    let fleet = Fleet::start(plan.instances, plan.seed, ledger.clone()).await;
    let receiver = outbound::Receiver::start().await;
    let (stop_outbound, outbound_stopped) = tokio::sync::watch::channel(false);
    let mut outbound_tasks = tokio::task::JoinSet::new();
    let outbound = sandman_local::outbound::LocalOutbound::start(&fleet.jobs[0], &mut outbound_tasks, outbound_stopped)
        .await
        .expect("the outbound stream and queue start");
    let soak = Arc::new(Soak::new(
        fleet,
        ledger.clone(),
        receiver,
        plan.projects,
        plan.operations,
    ));
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    soak.register_all(&mut rng).await;
    for account in 0..soak.fleet.accounts.len() {
        soak.endpoint(&mut rng, account).await;
    }

    let started = Instant::now();
    let mut actors = tokio::task::JoinSet::new();
    for _ in 0..plan.workers {
        actors.spawn(soak.clone().api_worker(rng.fork()));
    }
    for (job, every) in [
        (Job::Enforce, Duration::from_millis(400)),
        (Job::Reconcile, Duration::from_millis(1500)),
        (Job::Prune, Duration::from_millis(1500)),
    ] {
        actors.spawn(soak.clone().tick_actor(rng.fork(), job, every));
    }
    actors.spawn(soak.clone().clock_actor(rng.fork()));
    actors.spawn(soak.clone().chaos_actor(rng.fork(), plan.skip_faults.clone()));
    actors.spawn(soak.clone().burst_actor(rng.fork(), plan.duration));
    let restarts_asked = if plan.skip_faults.iter().any(|f| f == "dynamodb.restart") {
        0
    } else {
        plan.dynamodb_restarts
    };
    // Held to the end: the process the soak starts on a restart ends when this is dropped.
    let dynamo = DynamoLocal::from_env().map(Arc::new);
    let restarts = match (&dynamo, restarts_asked) {
        (_, 0) => "DynamoDB Local restarts: none asked for\n".to_owned(),
        (Some(dynamo), asked) => {
            let at = restarts::moments(&mut rng, asked, plan.duration);
            let planned: Vec<String> = at.iter().map(|t| format!("{:.0}s", t.as_secs_f64())).collect();
            actors.spawn(soak.clone().restart_actor(rng.fork(), dynamo.clone(), at));
            format!("DynamoDB Local restarts planned at {}\n", planned.join(", "))
        }
        (None, asked) => {
            ledger.violation(
                judge::DYNAMODB_RESTARTED,
                "",
                format!("{asked} restart(s) asked for, but the soak was not started by scripts/soak (SOAK_DYNAMODB_*)"),
            );
            "DynamoDB Local restarts asked for, but not possible here\n".to_owned()
        }
    };
    let deadline = tokio::time::sleep(plan.duration);
    tokio::pin!(deadline);
    tokio::select! {
        _ = &mut deadline => soak.stop(),
        _ = wait_for_stop(&soak) => {}
    }
    while let Some(ended) = actors.join_next().await {
        if let Err(err) = ended {
            ledger.violation(judge::NO_PANIC, "", format!("an actor ended: {err}"));
        }
    }
    let ran_for = started.elapsed();
    if restarts_asked > 0 {
        ledger.judged(judge::DYNAMODB_RESTARTED, u64::from(restarts_asked));
        let done = ledger.restarts();
        if done < restarts_asked && dynamo.is_some() {
            ledger.violation(
                judge::DYNAMODB_RESTARTED,
                "",
                format!("{done} of {restarts_asked} restart(s) done before the run ended"),
            );
        }
    }

    let calm = soak.fleet.timeline.windows().calm_share(started, started + ran_for);
    let truth = judge::truth::Truth::take(&soak.fleet);
    judge::run(&soak, &truth).await;
    let quiet = judge::quiet::run(&soak, plan.seed).await;
    let _ = stop_outbound.send(true);
    drop(dynamo);
    let dead_letters = outbound.dead_letters().len();

    let mut report = format!(
        "soak: seed {} · {} projects · {} instances per function · {} workers · ran {:.1}s ({} operations, {:.0}% of the time calm){}\n",
        plan.seed,
        plan.projects,
        plan.instances,
        plan.workers,
        ran_for.as_secs_f64(),
        ledger.operation_count(),
        calm * 100.0,
        if plan.skip_faults.is_empty() {
            String::new()
        } else {
            format!(" · without {}", plan.skip_faults.join(", "))
        },
    );
    report.push_str(&restarts);
    let panicked = std::mem::take(&mut *panics.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    ledger.judged(judge::NO_PANIC, 1);
    for seen in panicked {
        ledger.violation(judge::NO_PANIC, "", seen);
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
        "outbound: {} deliveries received, {dead_letters} dead-lettered\n",
        soak.receiver.received().len()
    ));
    report.push_str(&quiet);
    let invariants: Vec<(&str, &str)> = judge::INVARIANTS
        .iter()
        .copied()
        .filter(|(kind, _)| restarts_asked > 0 || *kind != judge::DYNAMODB_RESTARTED)
        .collect();
    let (table, failed) = ledger.invariants(&invariants);
    report.push_str(&table);
    Outcome { report, failed }
}

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
