//! Issue #31's done-when figures on a CI-sized synthetic set (20 projects, 21 days, seed 1), as
//! claims about the simulated outcome. Where a target is not met, the figure reached is asserted
//! instead (so it cannot silently get worse), next to the evidence of why (docs/ADAPTIVE.md).

use std::sync::OnceLock;

use sandman_sim::policy::{self, Policy};
use sandman_sim::report::{self, Row, Verdict};
use sandman_sim::synth;
use sandman_sim::trace::Trace;

struct Run {
    trace: Trace,
    rows: Vec<Row>,
    verdict: Verdict,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let trace = synth::generate(20, 21, 1);
        let rows = report::run(&trace, &policy::standard());
        let verdict = Verdict::of(&rows).expect("every policy the verdict needs ran");
        Run { trace, rows, verdict }
    })
}

fn row(name: &str) -> &'static Row {
    run().rows.iter().find(|r| r.policy.name == name).unwrap()
}

/// The share of returns after an hour away that found the sandbox running, for one kind.
fn warm_share(kind: &str, policy: &Policy) -> (u64, f64) {
    let trace = &run().trace;
    let end = trace.span().unwrap().1;
    let (mut returns, mut warm) = (0, 0);
    for project in trace.projects.iter().filter(|p| p.kind == kind) {
        let out = sandman_sim::engine::simulate(policy, &project.events, end);
        returns += out.returns_away;
        warm += out.returns_away_warm;
    }
    (returns, warm as f64 / returns.max(1) as f64)
}

#[test]
fn adaptive_idle_has_fewer_cold_resumes_than_fixed_ten_minutes() {
    let fixed = row(policy::BASELINE);
    assert!(
        fixed.outcome.cold_resumes > 1000,
        "judged {} cold resumes",
        fixed.outcome.cold_resumes
    );
    let v = &run().verdict;
    // Target: -30% at no more running minutes. Reached: about -28% at +5% (not met).
    assert!(v.adaptive_cold_vs_fixed10 <= -0.25, "{v:?}");
    assert!(v.adaptive_running_vs_fixed10 <= 0.06, "{v:?}");
    // Why the target is out of reach here: even knowing each project's whole trace, one timeout
    // per project within fixed 10m's running time spares fewer than 20% of its cold resumes.
    let (cold, running) = report::hindsight_ceiling(&run().trace, fixed.outcome.running_secs);
    assert!(running <= fixed.outcome.running_secs);
    let ceiling = (cold as f64 - fixed.outcome.cold_resumes as f64) / fixed.outcome.cold_resumes as f64;
    assert!((-0.20..0.0).contains(&ceiling), "hindsight ceiling {ceiling:+.3}");
}

#[test]
fn the_hybrid_histogram_does_not_beat_adaptive_on_both_counts() {
    let v = &run().verdict;
    assert!(!v.hybrid_beats_adaptive_on_both, "{v:?}");
    // It buys fewer cold resumes with far more running time.
    let (hybrid, adaptive) = (row("hybrid histogram"), row("adaptive"));
    assert!(hybrid.outcome.cold_resumes < adaptive.outcome.cold_resumes);
    assert!(hybrid.running_minutes() > 1.2 * adaptive.running_minutes());
}

#[test]
fn warm_up_meets_predictable_returns_for_little_running_time() {
    let v = &run().verdict;
    // Target met: at most 10% more running minutes than adaptive alone.
    assert!(v.warmup_running_vs_adaptive <= 0.10, "{v:?}");
    assert!(
        v.warmup_running_vs_adaptive > 0.0,
        "a warm-up that never runs judged nothing: {v:?}"
    );
    let warm = row("adaptive + warm-up");
    assert!(
        warm.outcome.warmups_used * 2 > warm.outcome.warmups,
        "most warm-ups are used: {:?}",
        warm.outcome
    );
    // Target (60% of all returns after an hour) not met: about 25%, as agents' and hobbyists'
    // returns come at random times. The predictable kinds:
    let policy = &warm.policy;
    let (nightly_returns, nightly) = warm_share("nightly", policy);
    let (developer_returns, developer) = warm_share("developer", policy);
    assert!(
        nightly_returns > 30 && developer_returns > 100,
        "judged {nightly_returns} and {developer_returns}"
    );
    assert!(nightly >= 0.6, "nightly jobs: {nightly:.2}");
    assert!(developer >= 0.3, "developers: {developer:.2}");
    assert!(v.warmup_warm_returns >= 0.2, "{v:?}");
    // Without warm-up, next to none of them are.
    assert!(warm_share("nightly", &row("adaptive").policy).1 < 0.05);
}
