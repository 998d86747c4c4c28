//! Quiescence, and what it must leave. Faults off and webhooks settled, the clock past the stuck
//! threshold: one reconcile and one prune, after which every project agrees with E2B (no second
//! chance: later rounds only measure how long convergence took). Then a budget the default team is
//! past: one enforcer tick later E2B runs none of its sandboxes. Then every project idle past its
//! timeout and a lease: one enforcer tick later E2B runs nothing. Then: no orphans, snapshots and
//! usage as E2B has them, retention kept. Every tick here must succeed and fail nothing.

use std::time::{Duration, Instant};

use e2b_emulator::SandboxState;
use http::{Method, StatusCode};
use sandman::domain::CLAIM_LEASE;
use serde_json::{Value, json};

use super::truth::Truth;
use super::*;
use crate::chaos;
use crate::fleet::{Job, STUCK_AFTER};

/// Rounds of reconcile beyond the first, only to measure when it would have converged.
const EXTRA_ROUNDS: usize = 4;

/// The longest idle timeout the soak sets.
const LONGEST_IDLE: Duration = Duration::from_secs(600);

/// Drives the quiescence and judges it; the report's lines about it.
pub async fn run(soak: &Soak, seed: u64) -> String {
    let fleet = &soak.fleet;
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xc0de);
    chaos::all_off(fleet);
    let faults_off = Instant::now();
    settle(soak).await;
    fleet.advance(STUCK_AFTER + Duration::from_secs(60)).await;
    settle(soak).await;
    tick(soak, &mut rng, Job::Reconcile).await;
    tick(soak, &mut rng, Job::Prune).await;
    settle(soak).await;
    let mut report = String::new();
    let first = match state::projects(soak).await {
        Ok(projects) => state::converged(soak, &Truth::take(fleet), &projects, true, "after one reconcile"),
        Err(why) => {
            soak.ledger.violation(CONVERGED, "", why);
            usize::MAX
        }
    };
    let mut converged = (first == 0).then(|| (0, faults_off.elapsed()));
    for round in 1..=EXTRA_ROUNDS {
        if converged.is_some() {
            break;
        }
        fleet.advance(STUCK_AFTER + Duration::from_secs(60)).await;
        tick(soak, &mut rng, Job::Reconcile).await;
        tick(soak, &mut rng, Job::Prune).await;
        settle(soak).await;
        if let Ok(projects) = state::projects(soak).await
            && state::converged(soak, &Truth::take(fleet), &projects, false, "") == 0
        {
            converged = Some((round, faults_off.elapsed()));
        }
    }
    report.push_str(&match converged {
        Some((0, took)) => format!(
            "converged after faults stopped: at one reconcile, {:.1}s\n",
            took.as_secs_f64()
        ),
        Some((rounds, took)) => format!(
            "converged after faults stopped: NOT at one reconcile; {rounds} more, {:.1}s\n",
            took.as_secs_f64()
        ),
        None => format!(
            "did NOT converge within {} reconciles after faults stopped\n",
            EXTRA_ROUNDS + 1
        ),
    });
    report.push_str(&budget(soak, &mut rng).await);
    report.push_str(&idle(soak, &mut rng).await);
    tick(soak, &mut rng, Job::Reconcile).await;
    tick(soak, &mut rng, Job::Prune).await;
    settle(soak).await;
    let truth = Truth::take(fleet);
    match state::projects(soak).await {
        Ok(projects) => {
            state::converged(soak, &truth, &projects, true, "at the end");
            state::orphans(soak, &truth, &projects);
            state::snapshots(soak, &truth, &projects).await;
            state::retention(soak, &truth, &projects).await;
            let live = truth.live().count();
            let paused = truth
                .live()
                .filter(|s| s.reported_state() == SandboxState::Paused)
                .count();
            let kept = truth.snapshots.iter().filter(|s| s.deleted_at.is_none()).count();
            report.push_str(&format!(
                "at the end: {} projects, {live} live E2B sandboxes ({paused} paused), {kept} E2B snapshots\n",
                projects.len()
            ));
        }
        Err(why) => soak.ledger.violation(NO_ORPHANS, "", why),
    }
    usage::judge(soak, &truth).await;
    switch_away(soak).await;
    // Last, so that it helps no convergence above.
    super::listings::one_account_down(soak, &mut rng).await;
    report
}

/// The second team tries to move to another E2B account while E2B holds its sandboxes and
/// snapshots: refused, as [`super::answers::switches`] judges the run's attempts.
async fn switch_away(soak: &Soak) {
    let fleet = &soak.fleet;
    let body = json!({"apiKey": crate::fleet::ELSEWHERE.1});
    let sent = fleet.e2b_now();
    let answer = fleet.api_as_admin(1, 0, Method::PUT, "/v1/team/e2b", Some(body)).await;
    let truth = Truth::take(fleet);
    if !(truth.holds("team-own", sent) && truth.holds("team-own", fleet.e2b_now())) {
        return;
    }
    soak.ledger.judged(SWITCH_REFUSED, 1);
    if !answer.status.is_client_error() {
        soak.ledger.violation(
            SWITCH_REFUSED,
            "",
            format!(
                "after the run, moving team-own to {} while E2B holds its sandboxes answered {} {}",
                crate::fleet::ELSEWHERE.0,
                answer.status.as_u16(),
                answer.json
            ),
        );
    }
}

/// Waits (bounded) until the emulator has no webhook queued or in flight.
async fn settle(soak: &Soak) {
    let settled = tokio::time::timeout(Duration::from_secs(30), soak.fleet.emulator.settle_webhooks()).await;
    soak.ledger.judged(QUIET_TICKS, 1);
    if settled.is_err() {
        soak.ledger.violation(
            QUIET_TICKS,
            "",
            "E2B's webhooks still pending 30 s after faults stopped",
        );
    }
}

/// One tick, never cut short: it must succeed and report no failure.
async fn tick(soak: &Soak, rng: &mut fastrand::Rng, job: Job) -> Value {
    let done = soak.tick(rng, job, false).await;
    soak.ledger.judged(QUIET_TICKS, 1);
    let answer = match done {
        Some(Ok(answer)) => answer,
        Some(Err(why)) => {
            soak.ledger
                .violation(QUIET_TICKS, "", format!("{} tick failed: {why}", job.caller()));
            return Value::Null;
        }
        None => return Value::Null,
    };
    let report = if job == Job::Prune { &answer } else { &answer["report"] };
    let failing: &[&str] = match job {
        Job::Enforce => &["failed", "flagged", "errors", "readErrors", "deferred"],
        Job::Reconcile => &["errors", "accountsUnlisted"],
        Job::Prune => &["failures"],
    };
    let failed: Vec<String> = failing
        .iter()
        .filter(|field| report[**field].as_u64().unwrap_or(0) > 0)
        .map(|field| format!("{field} {}", report[*field]))
        .collect();
    let cut = [
        &report["deadlineReached"],
        &report["stoppedAtDeadline"],
        &report["aborted"],
    ]
    .iter()
    .any(|flag| flag.as_bool() == Some(true));
    let budgets_failed = answer["budgets"]["failures"].as_u64().unwrap_or(0);
    if !failed.is_empty() || cut || budgets_failed > 0 {
        soak.ledger.violation(
            QUIET_TICKS,
            "",
            format!(
                "{} tick after faults stopped: {} (budgets {budgets_failed}): {report}",
                job.caller(),
                failed.join(", ")
            ),
        );
    }
    answer
}

/// The sandboxes E2B runs for `team` (by the metadata Sandman gives them).
fn running_for(truth: &Truth, team: Option<&str>) -> Vec<String> {
    truth
        .live()
        .filter(|s| s.reported_state() == SandboxState::Running)
        .filter(|s| team.is_none_or(|t| s.metadata.get("sandmanTeam").map(String::as_str) == Some(t)))
        .map(|s| s.sandbox_id.clone())
        .collect()
}

/// The default team is put past its budget (half of what E2B reported it used): one enforcer
/// tick later, E2B runs none of its sandboxes. A few of its projects are opened first.
async fn budget(soak: &Soak, rng: &mut fastrand::Rng) -> String {
    let fleet = &soak.fleet;
    for index in (0..soak.model.regular).step_by(2).take(4) {
        let path = format!("/v1/projects/{}/sandbox", crate::model::Model::name(index));
        let _ = fleet.api_as(0, 0, Method::POST, &path, None).await;
    }
    let truth = Truth::take(fleet);
    let cost = usage::cost_usd(&truth, "team-local", fleet.e2b_now());
    if cost <= 0.0 {
        return "budget: the default team used nothing E2B reported; not judged\n".to_owned();
    }
    let budget = cost / 2.0;
    let set = fleet
        .api_as_admin(0, 0, Method::PUT, "/v1/budget", Some(json!({"monthlyUsd": budget})))
        .await;
    let running_before = running_for(&truth, Some("team-local")).len();
    tick(soak, rng, Job::Enforce).await;
    settle(soak).await;
    let still = running_for(&Truth::take(fleet), Some("team-local"));
    soak.ledger.judged(BUDGET_ENFORCED, 1);
    if set.status != StatusCode::OK || !still.is_empty() {
        soak.ledger.violation(
            BUDGET_ENFORCED,
            "team-local",
            format!(
                "E2B reported ${cost:.4} used; budget ${budget:.4} ({}); {} of {running_before} sandboxes still running one enforcer tick later: {:?}",
                set.status.as_u16(),
                still.len(),
                still.iter().take(5).collect::<Vec<_>>()
            ),
        );
    }
    let _ = fleet.api_as_admin(0, 0, Method::DELETE, "/v1/budget", None).await;
    format!(
        "budget: E2B reported ${cost:.4}; a budget of ${budget:.4} left {} of {running_before} running\n",
        still.len()
    )
}

/// Every project idle past the longest idle timeout and a lease (CPUs calm): one enforcer tick
/// later E2B runs nothing.
async fn idle(soak: &Soak, rng: &mut fastrand::Rng) -> String {
    let fleet = &soak.fleet;
    for index in (1..soak.model.regular).step_by(2).take(4) {
        let path = format!("/v1/projects/{}/sandbox", crate::model::Model::name(index));
        let _ = fleet.api_as(1, 0, Method::POST, &path, None).await;
    }
    for sandbox in fleet.emulator.sandboxes() {
        if sandbox.is_live() {
            fleet.emulator.set_cpu(&sandbox.sandbox_id, None);
        }
    }
    let before = running_for(&Truth::take(fleet), None);
    fleet.advance(LONGEST_IDLE + CLAIM_LEASE + Duration::from_secs(5)).await;
    tick(soak, rng, Job::Enforce).await;
    settle(soak).await;
    let truth = Truth::take(fleet);
    let still = running_for(&truth, None);
    soak.ledger.judged(IDLE_PAUSED, before.len() as u64);
    for id in &still {
        let view = truth.sandbox(id);
        let project = view
            .and_then(|v| v.metadata.get("sandmanProject").cloned())
            .unwrap_or_default();
        soak.ledger.violation(
            IDLE_PAUSED,
            &project,
            format!(
                "still running in E2B one enforcer tick after {}s idle: {}",
                (LONGEST_IDLE + CLAIM_LEASE).as_secs(),
                view.map_or_else(|| id.clone(), truth::history)
            ),
        );
    }
    format!(
        "idle: {} running before the idle tick, {} still running after\n",
        before.len(),
        still.len()
    )
}
