//! Running every policy over a trace, the table, and the done-when figures.

use crate::engine::{Outcome, simulate};
use crate::policy::{BASELINE, Policy};
use crate::trace::Trace;

/// E2B's list prices (as in `shared/src/usage/rates.rs`): per vCPU-second and per GiB-second.
pub const VCPU_SECOND_USD: f64 = 0.000_014;
pub const GIB_SECOND_USD: f64 = 0.000_004_5;
/// The sandbox size costed: E2B's default, 2 vCPU and 512 MiB.
pub const VCPUS: f64 = 2.0;
pub const GIB: f64 = 0.5;

#[derive(Debug, Clone)]
pub struct Row {
    pub policy: Policy,
    pub outcome: Outcome,
}

impl Row {
    pub fn running_minutes(&self) -> f64 {
        self.outcome.running_secs as f64 / 60.0
    }

    pub fn cost_usd(&self) -> f64 {
        self.outcome.running_secs as f64 * (VCPUS * VCPU_SECOND_USD + GIB * GIB_SECOND_USD)
    }

    /// Share of returns after an hour or more away that found the sandbox running.
    pub fn warm_returns(&self) -> f64 {
        if self.outcome.returns_away == 0 {
            return 0.0;
        }
        self.outcome.returns_away_warm as f64 / self.outcome.returns_away as f64
    }
}

/// Every policy over every project; the trace ends at its last activity.
pub fn run(trace: &Trace, policies: &[Policy]) -> Vec<Row> {
    let end = trace.span().map_or(0, |(_, last)| last);
    policies
        .iter()
        .map(|policy| {
            let mut outcome = Outcome::default();
            for project in &trace.projects {
                outcome += simulate(policy, &project.events, end);
            }
            Row {
                policy: policy.clone(),
                outcome,
            }
        })
        .collect()
}

/// Per kind of project (the synthetic archetypes, or the input's name): cold resumes, running
/// hours and warm returns of each policy, to see where each wins and loses.
pub fn by_kind(trace: &Trace, policies: &[Policy]) -> String {
    let mut kinds: Vec<&str> = trace.projects.iter().map(|p| p.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut out =
        String::from("| kind | policy | cold resumes | running h | returns ≥1h (warm) |\n|---|---|---:|---:|---:|\n");
    for kind in kinds {
        let subset = Trace {
            projects: trace.projects.iter().filter(|p| p.kind == kind).cloned().collect(),
        };
        // The whole trace's end, so that each kind is costed over the same time.
        let end = trace.span().map_or(0, |(_, last)| last);
        for policy in policies {
            let mut o = Outcome::default();
            for project in &subset.projects {
                o += simulate(policy, &project.events, end);
            }
            out += &format!(
                "| {kind} | {} | {} | {:.0} | {} ({}) |\n",
                policy.name,
                o.cold_resumes,
                o.running_secs as f64 / 3600.0,
                o.returns_away,
                o.returns_away_warm
            );
        }
    }
    out
}

pub fn table(rows: &[Row]) -> String {
    let base = rows.iter().find(|r| r.policy.name == BASELINE);
    let mut out = String::from(
        "| policy | cold resumes | vs fixed 10m | running h | vs fixed 10m | paused h | E2B $ | writes | returns ≥1h warm | warm-ups (used) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let delta = |value: f64, of: Option<f64>| match of {
        Some(of) if of > 0.0 => format!("{:+.0}%", 100.0 * (value - of) / of),
        _ => "-".to_string(),
    };
    for row in rows {
        let o = &row.outcome;
        out += &format!(
            "| {} | {} | {} | {:.0} | {} | {:.0} | {:.2} | {} | {:.0}% | {} ({}) |\n",
            row.policy.name,
            o.cold_resumes,
            delta(o.cold_resumes as f64, base.map(|b| b.outcome.cold_resumes as f64)),
            row.running_minutes() / 60.0,
            delta(row.running_minutes(), base.map(Row::running_minutes)),
            o.paused_secs as f64 / 3600.0,
            row.cost_usd(),
            o.writes,
            100.0 * row.warm_returns(),
            o.warmups,
            o.warmups_used,
        );
    }
    out
}

/// The done-when figures, as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Adaptive's cold resumes and running minutes, relative to fixed 10 minutes (-0.3 = 30% fewer).
    pub adaptive_cold_vs_fixed10: f64,
    pub adaptive_running_vs_fixed10: f64,
    /// Whether the hybrid histogram has both fewer cold resumes and fewer running minutes.
    pub hybrid_beats_adaptive_on_both: bool,
    /// Adaptive with warm-up: share of returns after an hour that found it running, and its
    /// running minutes relative to adaptive alone.
    pub warmup_warm_returns: f64,
    pub warmup_running_vs_adaptive: f64,
}

impl Verdict {
    pub fn of(rows: &[Row]) -> Option<Verdict> {
        let find = |name: &str| rows.iter().find(|r| r.policy.name == name);
        let (fixed, adaptive, hybrid, warm) = (
            find(BASELINE)?,
            find("adaptive")?,
            find("hybrid histogram")?,
            find("adaptive + warm-up")?,
        );
        let ratio = |a: f64, b: f64| (a - b) / b;
        Some(Verdict {
            adaptive_cold_vs_fixed10: ratio(adaptive.outcome.cold_resumes as f64, fixed.outcome.cold_resumes as f64),
            adaptive_running_vs_fixed10: ratio(adaptive.running_minutes(), fixed.running_minutes()),
            hybrid_beats_adaptive_on_both: hybrid.outcome.cold_resumes < adaptive.outcome.cold_resumes
                && hybrid.running_minutes() < adaptive.running_minutes(),
            warmup_warm_returns: warm.warm_returns(),
            warmup_running_vs_adaptive: ratio(warm.running_minutes(), adaptive.running_minutes()),
        })
    }

    /// Each done-when target, with whether it is met.
    pub fn targets(&self) -> Vec<(String, bool)> {
        vec![
            (
                format!(
                    "adaptive: {:+.1}% cold resumes vs fixed 10m (target <= -30%)",
                    100.0 * self.adaptive_cold_vs_fixed10
                ),
                self.adaptive_cold_vs_fixed10 <= -0.30,
            ),
            (
                format!(
                    "adaptive: {:+.1}% running minutes vs fixed 10m (target <= 0%)",
                    100.0 * self.adaptive_running_vs_fixed10
                ),
                self.adaptive_running_vs_fixed10 <= 0.0,
            ),
            (
                format!(
                    "hybrid histogram beats adaptive on both: {}",
                    self.hybrid_beats_adaptive_on_both
                ),
                !self.hybrid_beats_adaptive_on_both,
            ),
            (
                format!(
                    "warm-up: {:.1}% of returns after >= 1 h found it running (target >= 60%)",
                    100.0 * self.warmup_warm_returns
                ),
                self.warmup_warm_returns >= 0.60,
            ),
            (
                format!(
                    "warm-up: {:+.1}% running minutes vs adaptive alone (target <= +10%)",
                    100.0 * self.warmup_running_vs_adaptive
                ),
                self.warmup_running_vs_adaptive <= 0.10,
            ),
        ]
    }
}

/// The hindsight ceiling of any per-project fixed timeout: each project gets the one timeout
/// (from 2 to 60 minutes) that, knowing its whole trace in advance, trades running time for cold
/// resumes at one common exchange rate; the rate is the highest whose total running time stays
/// within `running_budget_secs`. Answers (cold resumes, running seconds). No learning policy that
/// picks one timeout per project can do better on both at once.
pub fn hindsight_ceiling(trace: &Trace, running_budget_secs: i64) -> (u64, i64) {
    use std::time::Duration;
    let end = trace.span().map_or(0, |(_, last)| last);
    let grid = [2u64, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60];
    let outcomes: Vec<Vec<Outcome>> = trace
        .projects
        .iter()
        .map(|project| {
            grid.iter()
                .map(|m| {
                    let policy = Policy {
                        name: format!("fixed {m}m"),
                        idle: crate::policy::Idle::Fixed(Duration::from_secs(m * 60)),
                        warmup: None,
                    };
                    simulate(&policy, &project.events, end)
                })
                .collect()
        })
        .collect();
    let choose = |rate: f64| -> (u64, i64) {
        outcomes.iter().fold((0, 0), |(cold, running), options| {
            let best = options
                .iter()
                .min_by(|a, b| {
                    let cost = |o: &Outcome| o.running_secs as f64 + rate * o.cold_resumes as f64;
                    cost(a).total_cmp(&cost(b))
                })
                .expect("the grid is not empty");
            (cold + best.cold_resumes, running + best.running_secs)
        })
    };
    let (mut low, mut high) = (0.0, 1e7);
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        if choose(mid).1 <= running_budget_secs {
            low = mid;
        } else {
            high = mid;
        }
    }
    choose(low)
}
