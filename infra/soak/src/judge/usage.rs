//! Usage: each team's counters for a month (`GET /v1/usage?period=`), and each project's whose
//! sandboxes are all its own, hold exactly the run time of the executions E2B reported for them (its `paused` and `killed` events, each
//! execution once: a `killed` after a `paused` reports the same execution again). More is counted
//! twice; less is lost (the report says how much of it was in events E2B never got delivered,
//! which only its events API still holds).

use std::collections::{BTreeMap, HashMap, HashSet};

use http::{Method, StatusCode};
use sandman::usage::Period;

use super::truth::Truth;
use super::{Soak, USAGE_NOT_LOST, USAGE_NOT_TWICE};
use crate::model::Model;

/// Counters are decimal sums of float seconds: this much apart is equal.
const TOLERANCE_SECS: f64 = 0.01;

#[derive(Debug, Default, Clone, Copy)]
struct Executions {
    count: u64,
    seconds: f64,
    /// Of which never delivered to the webhook.
    undelivered: f64,
    /// Of which reported by two events (a `killed` after a `paused`), counted once here.
    reported_twice: f64,
}

/// What E2B reported team `team` used in the month of `now`, at the default rates: each
/// execution once.
pub fn cost_usd(truth: &Truth, team: &str, now: time::OffsetDateTime) -> f64 {
    let period = Period::of(now);
    let mut executions: HashMap<(&str, &str), sandman::domain::Usage> = HashMap::new();
    for event in &truth.events {
        let (Some(execution), Some(true)) = (event.execution, event.metadata.get("sandmanTeam").map(|t| t == team))
        else {
            continue;
        };
        if Period::of(event.at) != period {
            continue;
        }
        let seconds = execution.execution_ms as f64 / 1000.0;
        executions.insert(
            (event.sandbox_id.as_str(), event.execution_id.as_str()),
            sandman::domain::Usage {
                run_seconds: seconds,
                vcpu_seconds: f64::from(execution.vcpu_count) * seconds,
                memory_mb_seconds: f64::from(execution.memory_mb) * seconds,
            },
        );
    }
    let rates = sandman::usage::Rates::default();
    executions.values().map(|usage| rates.cost_usd(usage)).sum()
}

/// One execution as E2B reported it (each once, however many events reported it).
struct Execution<'a> {
    team: &'a str,
    /// The project its metadata names (a fork's names its source's: `forked`).
    project: Option<&'a str>,
    forked: bool,
    period: Period,
    seconds: f64,
    undelivered: bool,
    reports: u32,
}

fn executions(truth: &Truth) -> Vec<Execution<'_>> {
    let mut by_execution: HashMap<(&str, &str), Execution<'_>> = HashMap::new();
    for event in &truth.events {
        let (Some(execution), Some(team)) = (event.execution, event.metadata.get("sandmanTeam")) else {
            continue;
        };
        let undelivered = truth.undelivered(&event.event_id);
        let entry = by_execution
            .entry((event.sandbox_id.as_str(), event.execution_id.as_str()))
            .or_insert_with(|| Execution {
                team,
                project: event.metadata.get("sandmanProject").map(String::as_str),
                forked: truth
                    .sandbox(&event.sandbox_id)
                    .is_some_and(|s| s.forked_from.is_some()),
                period: Period::of(event.at),
                seconds: execution.execution_ms as f64 / 1000.0,
                undelivered,
                reports: 0,
            });
        // Delivered once is enough for it to have been countable.
        entry.undelivered &= undelivered;
        entry.reports += 1;
    }
    by_execution.into_values().collect()
}

fn add(totals: &mut Executions, execution: &Execution<'_>) {
    totals.count += 1;
    totals.seconds += execution.seconds;
    if execution.undelivered {
        totals.undelivered += execution.seconds;
    }
    if execution.reports > 1 {
        totals.reported_twice += execution.seconds;
    }
}

/// Each team's counters, and each project's whose executions are all its own: never deleted
/// (nor asked to be), never forked from or into.
pub async fn judge(soak: &Soak, truth: &Truth) {
    let executions = executions(truth);
    let mut of_team: BTreeMap<(String, String), Executions> = BTreeMap::new();
    let mut of_project: BTreeMap<(String, String), Executions> = BTreeMap::new();
    for execution in &executions {
        add(
            of_team
                .entry((execution.team.to_owned(), execution.period.to_string()))
                .or_default(),
            execution,
        );
        if let (Some(project), false) = (execution.project, execution.forked) {
            add(
                of_project
                    .entry((project.to_owned(), execution.period.to_string()))
                    .or_default(),
                execution,
            );
        }
    }
    // Projects some of whose executions may not be their own: deleted (or asked to be), forked
    // from or into.
    let mut tangled: HashSet<String> = HashSet::new();
    for answer in soak.transcript.all() {
        if answer.op == "delete-project" || answer.op.starts_with("fork") {
            tangled.extend(answer.index.map(Model::name));
        }
        if answer.op.starts_with("fork") {
            tangled.insert(answer.detail.clone());
        }
    }
    let entangled =
        |name: &str| tangled.contains(name) || Model::index_of(name).is_none_or(|i| soak.model.is_fork_slot(i));
    for ((team, period), totals) in of_team {
        let Some(account) = soak.fleet.accounts.iter().position(|a| a.team.as_str() == team) else {
            continue;
        };
        compare(
            soak,
            account,
            &team,
            &format!("/v1/usage?period={period}"),
            &period,
            totals,
        )
        .await;
    }
    for ((project, period), totals) in of_project {
        let Some(index) = Model::index_of(&project).filter(|_| !entangled(&project)) else {
            continue;
        };
        let path = format!("/v1/projects/{project}/usage?period={period}");
        compare(soak, soak.fleet.account_of(index), &project, &path, &period, totals).await;
    }
}

/// What the API's counters at `path` say against what E2B reported.
async fn compare(soak: &Soak, account: usize, whose: &str, path: &str, period: &str, executions: Executions) {
    let answer = soak.fleet.api_as(account, 0, Method::GET, path, None).await;
    soak.ledger.judged(USAGE_NOT_TWICE, executions.count);
    soak.ledger.judged(USAGE_NOT_LOST, executions.count);
    if answer.status != StatusCode::OK {
        soak.ledger.violation(
            USAGE_NOT_LOST,
            whose,
            format!("GET {path} answered {} {}", answer.status, answer.json),
        );
        return;
    }
    let counted = answer.json["used"]["runSeconds"].as_f64().unwrap_or(f64::NAN);
    let seen = format!(
        "{period}: counted {counted:.1} run seconds; E2B reported {:.1} in {} executions ({:.1} of them in events never \
         delivered; {:.1} reported twice, by a `killed` after a `paused`)",
        executions.seconds, executions.count, executions.undelivered, executions.reported_twice
    );
    if counted.is_nan() {
        soak.ledger
            .violation(USAGE_NOT_LOST, whose, format!("no used.runSeconds in {}", answer.json));
    } else if counted > executions.seconds + TOLERANCE_SECS {
        soak.ledger.violation(USAGE_NOT_TWICE, whose, seen);
    } else if counted < executions.seconds - TOLERANCE_SECS {
        soak.ledger.violation(USAGE_NOT_LOST, whose, seen);
    }
}
