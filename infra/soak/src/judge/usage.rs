//! Usage: each team's counters for a month (`GET /v1/usage?period=`) hold exactly the run time of
//! the executions E2B reported for the team's sandboxes (its `paused` and `killed` events, each
//! execution once: a `killed` after a `paused` reports the same execution again). More is counted
//! twice; less is lost (the report says how much of it was in events E2B never got delivered,
//! which only its events API still holds).

use std::collections::{BTreeMap, HashMap};

use http::{Method, StatusCode};
use sandman::usage::Period;

use super::truth::Truth;
use super::{Soak, USAGE_NOT_LOST, USAGE_NOT_TWICE};

/// Counters are decimal sums of float seconds: this much apart is equal.
const TOLERANCE_SECS: f64 = 0.01;

#[derive(Debug, Default, Clone, Copy)]
struct Executions {
    count: u64,
    seconds: f64,
    /// Of which never delivered to the webhook.
    undelivered: f64,
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

pub async fn judge(soak: &Soak, truth: &Truth) {
    // (team, period) -> executions, each (sandbox, execution id) once.
    let mut by_execution: HashMap<(&str, &str), (&str, Period, f64, bool)> = HashMap::new();
    for event in &truth.events {
        let (Some(execution), Some(team)) = (event.execution, event.metadata.get("sandmanTeam")) else {
            continue;
        };
        let seconds = execution.execution_ms as f64 / 1000.0;
        let undelivered = truth.undelivered(&event.event_id);
        let entry = by_execution
            .entry((event.sandbox_id.as_str(), event.execution_id.as_str()))
            .or_insert((team.as_str(), Period::of(event.at), seconds, undelivered));
        // Delivered once is enough for it to have been countable.
        entry.3 &= undelivered;
    }
    let mut truth_of: BTreeMap<(String, String), Executions> = BTreeMap::new();
    for (team, period, seconds, undelivered) in by_execution.into_values() {
        let executions = truth_of.entry((team.to_owned(), period.to_string())).or_default();
        executions.count += 1;
        executions.seconds += seconds;
        if undelivered {
            executions.undelivered += seconds;
        }
    }
    for ((team, period), executions) in truth_of {
        let Some(account) = soak.fleet.accounts.iter().position(|a| a.team.as_str() == team) else {
            continue;
        };
        let path = format!("/v1/usage?period={period}");
        let answer = soak.fleet.api_as(account, 0, Method::GET, &path, None).await;
        if answer.status != StatusCode::OK {
            soak.ledger.violation(
                USAGE_NOT_LOST,
                &team,
                format!("GET {path} answered {} {}", answer.status, answer.json),
            );
            continue;
        }
        let counted = answer.json["used"]["runSeconds"]
            .as_f64()
            .or_else(|| answer.json["runSeconds"].as_f64())
            .unwrap_or(f64::NAN);
        soak.ledger.judged(USAGE_NOT_TWICE, executions.count);
        soak.ledger.judged(USAGE_NOT_LOST, executions.count);
        let seen = format!(
            "{period}: counted {counted:.1} run seconds; E2B reported {:.1} in {} executions ({:.1} of them in events never delivered)",
            executions.seconds, executions.count, executions.undelivered
        );
        if counted.is_nan() {
            soak.ledger
                .violation(USAGE_NOT_LOST, &team, format!("no runSeconds in {}", answer.json));
        } else if counted > executions.seconds + TOLERANCE_SECS {
            soak.ledger.violation(USAGE_NOT_TWICE, &team, seen);
        } else if counted < executions.seconds - TOLERANCE_SECS {
            soak.ledger.violation(USAGE_NOT_LOST, &team, seen);
        }
    }
}
