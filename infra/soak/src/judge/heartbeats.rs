//! The enforcer never pauses a sandbox that was kept active: a pause E2B did at an enforcer
//! instance's call (its call log) must not fall inside the idle window of a heartbeat the API
//! answered `recorded` for that sandbox's project, when the sandbox was the one E2B ran for the
//! project at that heartbeat. Not judged across a settings change, a user's pause, kill, restore or
//! delete, a budget (the enforcer pauses a team past it) or a session-cap handoff; the window is
//! shortened by the clocks' largest skew.

use std::collections::HashMap;
use std::time::Duration;

use e2b_emulator::{Route, SandboxState};
use time::OffsetDateTime;

use super::truth::{Truth, history};
use super::{HEARTBEAT_WINDOW, Soak};
use crate::chaos::MAX_SKEW_MS;
use crate::fleet::{SESSION_CAP, SESSION_CAP_MARGIN};
use crate::model::Model;

/// A budget pause may come one enforcer tick (a few emulated minutes here) after the budget changed.
const BUDGET_MARGIN: Duration = Duration::from_secs(300);

pub fn judge(soak: &Soak, truth: &Truth) {
    let transcript = soak.transcript.all();
    // Which project each sandbox was made for or named to.
    let mut project_of: HashMap<&str, usize> = HashMap::new();
    for view in truth.sandboxes.values() {
        if let Some(index) = view.metadata.get("sandmanProject").and_then(|p| Model::index_of(p))
            && view.forked_from.is_none()
        {
            project_of.insert(&view.sandbox_id, index);
        }
    }
    // A fork's answer is about its source project but names the new project's sandbox.
    for answer in transcript.iter().filter(|a| a.ok() && !a.op.starts_with("fork")) {
        if let (Some(index), Some((sandbox, _))) = (answer.index, answer.sandbox())
            && let Some(view) = truth.sandbox(sandbox)
        {
            project_of.entry(&view.sandbox_id).or_insert(index);
        }
    }
    let budgets = budget_windows(&transcript);
    // What the users did to each project that makes a pause fair (by project).
    let mut acted: HashMap<usize, Vec<(OffsetDateTime, OffsetDateTime)>> = HashMap::new();
    for answer in &transcript {
        if let Some(index) = answer.index
            && matches!(
                answer.op,
                "pause" | "kill" | "delete-project" | "restore" | "settings" | "register"
            )
        {
            acted
                .entry(index)
                .or_default()
                .push((answer.e2b_sent, answer.e2b_answered));
        }
    }
    let slack = Duration::from_millis(MAX_SKEW_MS.unsigned_abs()) + Duration::from_secs(5);
    for pause in truth.done("enforce-", Route::PauseSandbox) {
        let Some(sandbox_id) = Truth::sandbox_of(pause) else {
            continue;
        };
        let (Some(&index), Some(view)) = (project_of.get(sandbox_id), truth.sandbox(sandbox_id)) else {
            continue;
        };
        let at = pause.received_at;
        let model = soak.model.project(index);
        if model.recorded_heartbeats.is_empty() {
            continue;
        }
        soak.ledger.judged(HEARTBEAT_WINDOW, 1);
        let Some(hb) = model.contradicted_by(at, slack) else {
            continue;
        };
        drop(model);
        let project = Model::name(index);
        let user_acted = acted
            .get(&index)
            .is_some_and(|spans| spans.iter().any(|(sent, answered)| *sent <= at && *answered >= hb.sent));
        let team_local = soak.fleet.account_of(index) == 0;
        let budgeted = team_local
            && budgets
                .iter()
                .any(|(from, to)| *from <= at && at <= *to + BUDGET_MARGIN);
        let run_began = view
            .history
            .iter()
            .take_while(|c| c.at <= at)
            .filter(|c| c.state == SandboxState::Running)
            .last()
            .map(|c| c.at);
        let handoff = run_began.is_some_and(|began| at - began >= SESSION_CAP - SESSION_CAP_MARGIN - slack);
        let was_its_sandbox = view.state_at(hb.answered) == Some(SandboxState::Running);
        if user_acted || budgeted || handoff || !was_its_sandbox {
            continue;
        }
        soak.ledger.violation(
            HEARTBEAT_WINDOW,
            &project,
            format!(
                "heartbeat sent {}, answered recorded {} (idle timeout {}s); {} paused it at {}: {}",
                hb.sent.time(),
                hb.answered.time(),
                hb.idle_timeout_secs,
                pause.caller.as_deref().unwrap_or("?"),
                at.time(),
                history(view)
            ),
        );
    }
}

/// When the default team had a budget (from a PUT sent until a DELETE answered 204).
fn budget_windows(transcript: &[crate::transcript::Answer]) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut windows = Vec::new();
    let mut open: Option<OffsetDateTime> = None;
    let mut sorted: Vec<_> = transcript.iter().filter(|a| a.op == "budget").collect();
    sorted.sort_by_key(|a| a.e2b_sent);
    for answer in sorted {
        let removed = answer.detail == "none" && answer.status == Some(http::StatusCode::NO_CONTENT);
        match (open, removed) {
            (None, false) => open = Some(answer.e2b_sent),
            (Some(from), true) => {
                windows.push((from, answer.e2b_answered));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(from) = open {
        windows.push((from, OffsetDateTime::now_utc() + time::Duration::days(3650)));
    }
    windows
}
