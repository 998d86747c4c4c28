//! The API's answers, judged against E2B's record at the time they were given: what an answer
//! says ran (or was paused, or restored) is held against the sandbox's state history between the
//! request and the answer; statuses against the fault timeline.

use std::collections::HashSet;

use e2b_emulator::{EventType, SandboxState};
use http::StatusCode;

use super::truth::{Truth, history};
use super::*;
use crate::actors::Soak;
use crate::model::Model;
use crate::timeline::{AFTER_FAULT, Windows};
use crate::transcript::Answer;

/// Operations whose answer may say a sandbox runs.
const OPENING: [&str; 6] = ["open", "burst-open", "resume", "restore", "heartbeat", "fork-live"];

/// The share of calm opens that must answer 200/202 or a documented 4xx.
const OPENS_FLOOR: f64 = 0.99;

pub fn judge(soak: &Soak, truth: &Truth) {
    let ledger = &soak.ledger;
    let windows = soak.fleet.timeline.windows();
    let transcript = soak.transcript.all();
    let used = [accounts_used(&transcript, 0), accounts_used(&transcript, 1)];
    let (mut calm_opens, mut failed_opens) = (0u64, Vec::new());
    for answer in transcript.iter() {
        let Some(status) = answer.status else { continue };
        let project = answer.index.map(Model::name).unwrap_or_default();
        statuses(soak, &windows, answer, status, &project);
        if matches!(answer.op, "open" | "burst-open") && !windows.faulty(answer.sent, answer.answered, AFTER_FAULT) {
            calm_opens += 1;
            let documented = matches!(status.as_u16(), 200 | 202 | 402 | 404 | 409 | 429);
            if !documented {
                failed_opens.push(format!("{project} {} {}", status.as_u16(), answer.json["error"]));
            }
        }
        running(soak, truth, answer, &project);
        paused(soak, truth, answer, &project);
        restored(soak, truth, answer, &project);
        own(soak, truth, &used, answer, &project);
    }
    ledger.judged(OPENS_PROGRESS, calm_opens);
    let ratio = 1.0 - failed_opens.len() as f64 / calm_opens.max(1) as f64;
    if ratio < OPENS_FLOOR {
        ledger.violation(
            OPENS_PROGRESS,
            "",
            format!(
                "{:.1}% of {calm_opens} calm opens succeeded (floor {:.0}%); failed: {}",
                ratio * 100.0,
                OPENS_FLOOR * 100.0,
                failed_opens.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ),
        );
    }
    for (sent, answered, status) in soak.fleet.timeline.webhook_answers() {
        ledger.judged(WEBHOOK_5XX, 1);
        if status.is_server_error() && !windows.faulty(sent, answered, AFTER_FAULT) {
            ledger.violation(WEBHOOK_5XX, "", format!("{} with no fault on", status.as_u16()));
        }
    }
}

fn statuses(soak: &Soak, windows: &Windows, answer: &Answer, status: StatusCode, project: &str) {
    let ledger = &soak.ledger;
    let seen = || {
        format!(
            "{} {} -> {} {}",
            answer.op,
            answer.path,
            status.as_u16(),
            answer.json["error"]
        )
    };
    ledger.judged(API_5XX, 1);
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        ledger.violation(API_5XX, project, seen());
    }
    ledger.judged(SERVICE_UNAVAILABLE, 1);
    if status == StatusCode::SERVICE_UNAVAILABLE && !windows.faulty(answer.sent, answer.answered, AFTER_FAULT) {
        ledger.violation(SERVICE_UNAVAILABLE, project, seen());
    }
}

/// An answer that says RUNNING: E2B ran the sandbox at some instant between request and answer.
fn running(soak: &Soak, truth: &Truth, answer: &Answer, project: &str) {
    if !OPENING.contains(&answer.op) || !answer.ok() {
        return;
    }
    let Some((sandbox_id, "RUNNING")) = answer.sandbox() else {
        return;
    };
    soak.ledger.judged(RUNNING_ANSWER, 1);
    let how = answer.json["path"]
        .as_str()
        .or(answer.json["outcome"].as_str())
        .unwrap_or("");
    match truth.sandbox(sandbox_id) {
        None => soak.ledger.violation(
            RUNNING_ANSWER,
            project,
            format!("{} {how}: E2B never had {sandbox_id}", answer.op),
        ),
        Some(view) if !view.was_in(SandboxState::Running, answer.e2b_sent, answer.e2b_answered) => {
            let fate = match view.state_at(answer.e2b_sent) {
                Some(SandboxState::Paused) => truth.fate_of_event(sandbox_id, EventType::Paused, answer.e2b_sent),
                Some(SandboxState::Killed) => truth.fate_of_event(sandbox_id, EventType::Killed, answer.e2b_sent),
                _ => String::new(),
            };
            soak.ledger.violation(
                RUNNING_ANSWER,
                project,
                format!(
                    "{} {how} answered RUNNING (asked {}, answered {}); {fate}; E2B: {}",
                    answer.op,
                    answer.e2b_sent.time(),
                    answer.e2b_answered.time(),
                    history(view)
                ),
            );
        }
        Some(_) => {}
    }
}

/// A pause answered paused (or already paused): E2B did not run the sandbox at some instant
/// between request and answer.
fn paused(soak: &Soak, truth: &Truth, answer: &Answer, project: &str) {
    if answer.op != "pause" || answer.status != Some(StatusCode::OK) {
        return;
    }
    let outcome = answer.json["outcome"].as_str().unwrap_or("");
    if !matches!(outcome, "paused" | "already-paused") {
        return;
    }
    let Some((sandbox_id, _)) = answer.sandbox() else {
        return;
    };
    soak.ledger.judged(PAUSED_ANSWER, 1);
    let stopped = truth.sandbox(sandbox_id).is_some_and(|view| {
        [SandboxState::Paused, SandboxState::Killed]
            .into_iter()
            .any(|state| view.was_in(state, answer.e2b_sent, answer.e2b_answered))
    });
    if !stopped {
        let what = truth
            .sandbox(sandbox_id)
            .map_or_else(|| format!("no {sandbox_id}"), history);
        soak.ledger.violation(
            PAUSED_ANSWER,
            project,
            format!(
                "pause answered {outcome} (asked {}), E2B: {what}",
                answer.e2b_sent.time()
            ),
        );
    }
}

/// A restore of S answered 200: the sandbox is one E2B made from a snapshot of the sandbox the API
/// said S was taken from (within the time the request that took S ran, when that is known).
fn restored(soak: &Soak, truth: &Truth, answer: &Answer, project: &str) {
    let (Some(index), true) = (
        answer.index,
        answer.op == "restore" && answer.status == Some(StatusCode::OK),
    ) else {
        return;
    };
    let asked = &answer.detail;
    if answer.json["restoredFrom"].as_str() != Some(asked) {
        soak.ledger.judged(RESTORE_SOURCE, 1);
        soak.ledger.violation(
            RESTORE_SOURCE,
            project,
            format!("asked for {asked}, answered {}", answer.json),
        );
        return;
    }
    let Some(source) = soak.model.project(index).snapshot_sources.get(asked).cloned() else {
        return;
    };
    let Some((sandbox_id, _)) = answer.sandbox() else {
        return;
    };
    soak.ledger.judged(RESTORE_SOURCE, 1);
    let candidates: HashSet<&str> = truth
        .snapshots
        .iter()
        .filter(|s| s.source_sandbox_id == source.sandbox_id)
        .filter(|s| {
            source
                .made_between
                .is_none_or(|(from, to)| from <= s.created_at && s.created_at <= to)
        })
        .map(|s| s.template_id.as_str())
        .collect();
    let made_from = truth.sandbox(sandbox_id).and_then(|view| view.from_snapshot.clone());
    if !made_from.as_deref().is_some_and(|t| candidates.contains(t)) {
        soak.ledger.violation(
            RESTORE_SOURCE,
            project,
            format!(
                "{asked} was taken of {} ({} such E2B snapshot(s)), but {sandbox_id} was made from {made_from:?}",
                source.sandbox_id,
                candidates.len()
            ),
        );
    }
}

/// The E2B accounts the project's team may have used: its own, and any it was moved to (a move
/// not refused: answered 2xx, or given up on).
fn accounts_used(transcript: &[Answer], account: usize) -> HashSet<String> {
    let own = ["team-local", "team-own"][account].to_owned();
    let mut used = HashSet::from([own]);
    if account == 1 {
        used.extend(
            transcript
                .iter()
                .filter(|a| a.op == "account-switch" && a.status.is_none_or(|s| s.is_success()))
                .map(|a| a.detail.clone()),
        );
    }
    used
}

/// A sandbox named to a team lives in an E2B account of the team's and was made for that project
/// (its metadata names it), or is a fork (which carries its source's metadata).
fn own(soak: &Soak, truth: &Truth, used: &[HashSet<String>; 2], answer: &Answer, project: &str) {
    let (Some(index), true) = (answer.index, answer.ok()) else {
        return;
    };
    let Some((sandbox_id, _)) = answer.sandbox() else {
        return;
    };
    soak.ledger.judged(OWN_SANDBOX, 1);
    let Some(view) = truth.sandbox(sandbox_id) else {
        soak.ledger.violation(
            OWN_SANDBOX,
            project,
            format!(
                "{} named {sandbox_id}, which none of the soak's E2B accounts ever had",
                answer.op
            ),
        );
        return;
    };
    let account = soak.fleet.account_of(index);
    let team = soak.fleet.accounts[account].team.as_str();
    let in_account = used[account].contains(&view.team_id);
    let named = view.metadata.get("sandmanProject").map(String::as_str);
    let for_project = named == Some(project) || view.forked_from.is_some();
    let of_team = view.metadata.get("sandmanTeam").map(String::as_str) == Some(team);
    if !(in_account && for_project && of_team) {
        soak.ledger.violation(
            OWN_SANDBOX,
            project,
            format!(
                "{} named {sandbox_id}: E2B account {}, metadata {:?}",
                answer.op, view.team_id, view.metadata
            ),
        );
    }
}

/// A move of the second team to another E2B account (or back to the deployment's) while E2B holds
/// its sandboxes or snapshots in its own account, throughout the request, must be refused.
pub fn switches(soak: &Soak, truth: &Truth) {
    for answer in soak.transcript.all() {
        let (Some(status), true) = (answer.status, answer.op == "account-switch") else {
            continue;
        };
        if answer.detail == "team-own" || status.is_server_error() {
            continue;
        }
        if !(truth.holds("team-own", answer.e2b_sent) && truth.holds("team-own", answer.e2b_answered)) {
            continue;
        }
        soak.ledger.judged(SWITCH_REFUSED, 1);
        if status.is_success() {
            soak.ledger.violation(
                SWITCH_REFUSED,
                "",
                format!(
                    "moved team-own to {} while E2B held its sandboxes or snapshots",
                    answer.detail
                ),
            );
        }
    }
}
