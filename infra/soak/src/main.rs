//! `sandman-soak --seed N --projects N --operations N --seconds N [--instances N] [--workers N]
//! [--dynamodb-restarts N] [--skip-fault NAME]...`:
//! runs the soak once, prints its figures and its table of invariants (stderr), exits 1 when an
//! invariant was violated or judged nothing. Restarts of DynamoDB Local (default 1) need
//! `scripts/soak`'s environment: without it, pass `--dynamodb-restarts 0`.

use std::process::ExitCode;
use std::time::Duration;

use sandman_soak::Plan;

fn usage() -> ExitCode {
    eprintln!(
        "usage: sandman-soak [--seed N] [--projects N] [--operations N] [--seconds N] [--instances N] [--workers N] [--dynamodb-restarts N] [--skip-fault NAME]...\n\
         needs AWS_ENDPOINT_URL_DYNAMODB (scripts/soak starts DynamoDB Local and sets it)"
    );
    ExitCode::from(2)
}

fn parse(args: &[String]) -> Option<Plan> {
    let mut plan = Plan {
        seed: 1,
        projects: 200,
        operations: 20_000,
        duration: Duration::from_secs(60),
        instances: 3,
        workers: 16,
        skip_faults: Vec::new(),
        dynamodb_restarts: 1,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let text = args.next()?;
        if flag == "--skip-fault" {
            plan.skip_faults.push(text.clone());
            continue;
        }
        let value: u64 = text.parse().ok()?;
        match flag.as_str() {
            "--seed" => plan.seed = value,
            "--projects" => plan.projects = usize::try_from(value).ok()?.max(1),
            "--operations" => plan.operations = value,
            "--seconds" => plan.duration = Duration::from_secs(value),
            "--instances" => plan.instances = usize::try_from(value).ok()?.max(1),
            "--workers" => plan.workers = usize::try_from(value).ok()?.max(1),
            "--dynamodb-restarts" => plan.dynamodb_restarts = u32::try_from(value).ok()?,
            _ => return None,
        }
    }
    Some(plan)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(plan) = parse(&args) else {
        return usage();
    };
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() {
        return usage();
    }
    // The functions' logs and metric lines go to stdout, as in Lambda; the soak's report to stderr.
    sandman::telemetry::init("soak");
    let outcome = sandman_soak::run(&plan).await;
    eprint!("{}", outcome.report);
    if outcome.failed > 0 {
        eprintln!("FAILED: {} invariant(s) violated or judged nothing", outcome.failed);
        ExitCode::FAILURE
    } else {
        eprintln!("OK: every invariant judged, 0 violations");
        ExitCode::SUCCESS
    }
}
