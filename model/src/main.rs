//! `sandman-model [ci|full] [--depth N] [--threads N]`: explores the bound, prints its figures
//! (states, depth, time) and each invariant's judged count, and a trace for each violation.
//! Exits 1 on a violation or on an invariant that judged nothing.

use std::process::ExitCode;
use std::time::Instant;

use sandman_model::config::Config;
use sandman_model::invariants::{Invariant, Tally};
use sandman_model::model::SandmanModel;
use sandman_model::trace;
use stateright::{Checker, Model};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut preset = "ci".to_string();
    let mut depth = None;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--depth" => depth = args.next().and_then(|d| d.parse().ok()),
            "--threads" => threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(threads),
            name => preset = name.to_owned(),
        }
    }
    let only = std::env::var("MODEL_SCENARIO").ok();
    let Some(scenarios) = Config::bound(&preset) else {
        eprintln!("unknown bound {preset:?}: ci or full");
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let totals = Tally::default();
    let (mut states, mut unique, mut failed) = (0, 0, false);
    for mut config in scenarios {
        if only.as_deref().is_some_and(|only| only != config.name) {
            continue;
        }
        if let Some(depth) = depth {
            config.depth = depth;
        }
        let (name, depth) = (config.name.clone(), config.depth);
        let model = SandmanModel::new(config);
        let tally = model.tally.clone();
        let began = Instant::now();
        let checker = model
            .checker()
            .threads(threads)
            .target_max_depth(depth)
            .spawn_bfs()
            .join();
        println!(
            "{name:<24} {:>10} states {:>10} unique  depth {:>2}  {:>7.1} s",
            checker.state_count(),
            checker.unique_state_count(),
            checker.max_depth(),
            began.elapsed().as_secs_f64()
        );
        states += checker.state_count();
        unique += checker.unique_state_count();
        totals.add(&tally);
        for (invariant, path) in checker.discoveries() {
            failed = true;
            println!("\nVIOLATION of {invariant} in scenario {name}:");
            print!("{}", trace::describe(checker.model(), &path.into_vec()));
            println!();
        }
    }
    println!(
        "total: {states} states ({unique} unique), bound {preset}, 1 team x 2 projects, {threads} threads, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("{:<28} {:>12} {:>10}", "invariant", "judged", "violated");
    for invariant in Invariant::ALL {
        let (judged, broken) = (totals.judged(invariant), totals.broken(invariant));
        println!("{:<28} {judged:>12} {broken:>10}", invariant.name());
        if judged == 0 {
            println!(
                "  {} judged nothing: a check that judged nothing fails",
                invariant.name()
            );
            failed = true;
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
