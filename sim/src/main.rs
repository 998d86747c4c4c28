//! `sandman-sim`: prints the policy table for a trace, and the done-when figures.
//!
//! ```text
//! sandman-sim [--projects N] [--days D] [--seed S]   synthetic (default 100 projects, 28 days)
//! sandman-sim --csv FILE                             project,timestamp,kind
//! sandman-sim --azure FILE...                        Azure Functions 2019 per-minute files
//! ```

use std::process::ExitCode;

use sandman_sim::{input, policy, report, synth, trace::Trace};

fn usage(error: &str) -> ExitCode {
    eprintln!("sandman-sim: {error}");
    eprintln!("usage: sandman-sim [--projects N] [--days D] [--seed S] | --csv FILE | --azure FILE...");
    ExitCode::from(2)
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn load(args: &[String]) -> Result<(Trace, String), String> {
    let (mut projects, mut days, mut seed) = (100usize, 28i64, 1u64);
    let number = |value: Option<&String>, flag: &str| -> Result<u64, String> {
        value
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a whole number"))
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--projects" => projects = number(args.get(i + 1), "--projects")? as usize,
            "--days" => days = number(args.get(i + 1), "--days")? as i64,
            "--seed" => seed = number(args.get(i + 1), "--seed")?,
            "--csv" => {
                let path = args.get(i + 1).ok_or("--csv needs a file")?;
                let trace = input::read_csv(path, &read(path)?).map_err(|e| e.to_string())?;
                return Ok((trace, format!("CSV {path}")));
            }
            "--azure" => {
                let files = &args[i + 1..];
                if files.is_empty() {
                    return Err("--azure needs at least one file".into());
                }
                let mut trace = Trace::default();
                for (n, path) in files.iter().enumerate() {
                    let day = input::azure_day(path).unwrap_or(n as i64 + 1);
                    input::read_azure_day(path, &read(path)?, day, &mut trace).map_err(|e| e.to_string())?;
                }
                return Ok((
                    trace.normalized(),
                    format!("Azure Functions 2019, {} file(s)", files.len()),
                ));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
        i += 2;
    }
    if projects == 0 || days == 0 {
        return Err("--projects and --days must be positive".into());
    }
    Ok((
        synth::generate(projects, days, seed),
        format!("synthetic: {projects} projects, {days} days, seed {seed}"),
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (trace, described) = match load(&args) {
        Ok(loaded) => loaded,
        Err(error) => return usage(&error),
    };
    println!(
        "Trace: {described} ({} projects with activity, {} activities)\n",
        trace.projects.len(),
        trace.events()
    );
    let mut policies = policy::standard();
    // SIM_WEIGHTS=5,10,30: adaptive with those cost weights (minutes) too.
    if let Some(weights) = std::env::var_os("SIM_WEIGHTS") {
        for weight in weights
            .to_string_lossy()
            .split(',')
            .filter_map(|w| w.trim().parse().ok())
        {
            policies.push(policy::adaptive_weighted(weight));
        }
    }
    let rows = report::run(&trace, &policies);
    print!("{}", report::table(&rows));
    if std::env::var_os("SIM_BY_KIND").is_some() {
        let policies: Vec<_> = policy::standard()
            .into_iter()
            .filter(|p| ["fixed 10m", "adaptive", "hybrid histogram", "adaptive + warm-up"].contains(&p.name.as_str()))
            .collect();
        println!("\n{}", report::by_kind(&trace, &policies));
    }
    if std::env::var_os("SIM_CEILING").is_some()
        && let Some(base) = rows.iter().find(|r| r.policy.name == policy::BASELINE)
    {
        let (cold, running) = report::hindsight_ceiling(&trace, base.outcome.running_secs);
        println!(
            "\nHindsight ceiling of one fixed timeout per project, within fixed 10m's running time: {cold} cold resumes ({:+.1}%), {:.0} running h",
            100.0 * (cold as f64 - base.outcome.cold_resumes as f64) / base.outcome.cold_resumes as f64,
            running as f64 / 3600.0
        );
    }
    if let Some(verdict) = report::Verdict::of(&rows) {
        println!("\nDone-when targets:");
        for (line, met) in verdict.targets() {
            println!("- [{}] {line}", if met { "met" } else { "NOT MET" });
        }
    }
    ExitCode::SUCCESS
}
