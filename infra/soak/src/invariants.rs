//! The invariants checked while the soak runs: each answer the API gave must be true of E2B and
//! the table at the moment it was given.

use e2b_emulator::SandboxState;
use http::StatusCode;
use sandman::domain::SnapshotId;
use time::OffsetDateTime;

use crate::fleet::{Fleet, Reply};
use crate::ledger::Ledger;
use crate::model::Model;
use crate::stalls::Watched;

pub const API_5XX: &str = "api answered a 5xx it does not document as retryable";
pub const OPEN_NOT_RUNNING: &str = "open answered running with a sandbox E2B does not run";
pub const RESTORE_OTHER_SOURCE: &str = "restore of S answered with a sandbox not made from S";
pub const RECONCILE_STALLED: &str = "a reconcile left out an E2B account whose list calls worked";

/// The API documents 503 (and 429) as "try again later"; any other 5xx is a defect.
pub fn api_answer(ledger: &Ledger, kind: &str, path: &str, reply: &Reply) {
    let status = reply.status;
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        let project = path.split('/').nth(3).unwrap_or("").to_owned();
        let error = &reply.json["error"];
        ledger.violation(
            API_5XX,
            project,
            format!(
                "{kind} {path} -> {} {} {}",
                status.as_u16(),
                error["code"],
                error["message"]
            ),
        );
    }
}

/// An open answered 200/running hands back a sandbox that E2B runs now, or that someone paused or
/// killed after the open was sent (a concurrent pause or kill may win the race afterwards).
pub fn opened_runs(fleet: &Fleet, ledger: &Ledger, project: &str, reply: &Reply, sent: OffsetDateTime) {
    if reply.status != StatusCode::OK || reply.json["sandbox"]["state"] != "running" {
        return;
    }
    let Some(sandbox_id) = reply.json["sandbox"]["sandboxId"].as_str() else {
        ledger.violation(OPEN_NOT_RUNNING, project, format!("no sandboxId in {}", reply.json));
        return;
    };
    let path = reply.json["path"].as_str().unwrap_or("?");
    match fleet.emulator.sandbox(sandbox_id) {
        None => ledger.violation(OPEN_NOT_RUNNING, project, format!("{path}: E2B never had {sandbox_id}")),
        Some(view) => {
            let stopped_before = match view.reported_state() {
                SandboxState::Running => None,
                SandboxState::Paused => view.paused_at.filter(|at| *at < sent).map(|at| ("paused", at)),
                SandboxState::Killed => view.killed_at.filter(|at| *at < sent).map(|at| ("killed", at)),
            };
            if let Some((what, at)) = stopped_before {
                ledger.violation(
                    OPEN_NOT_RUNNING,
                    project,
                    format!("{path}: {sandbox_id} was {what} at {at}, before the open was sent at {sent}"),
                );
            }
        }
    }
}

/// A restore of S answered 200 runs a sandbox E2B created from S.
pub async fn restored_from(fleet: &Fleet, ledger: &Ledger, index: usize, snapshot: &str, reply: &Reply) {
    if reply.status != StatusCode::OK {
        return;
    }
    let project = Model::name(index);
    if reply.json["restoredFrom"].as_str() != Some(snapshot) {
        ledger.violation(
            RESTORE_OTHER_SOURCE,
            &project,
            format!("asked for {snapshot}, answered {}", reply.json),
        );
        return;
    }
    let (Some(sandbox_id), Ok(id)) = (reply.json["sandbox"]["sandboxId"].as_str(), SnapshotId::parse(snapshot)) else {
        return;
    };
    let Ok(Some(row)) = fleet.checker.get_snapshot(&fleet.key_at(index), &id).await else {
        return;
    };
    // The row names the snapshot as E2B's API does (`team/name:tag`); a sandbox records the raw
    // template behind it. A snapshot deleted since cannot be compared.
    let Some(source) = fleet
        .emulator
        .snapshots()
        .into_iter()
        .find(|s| s.snapshot_id == row.e2b_snapshot_id || s.template_id == row.e2b_snapshot_id)
    else {
        return;
    };
    let made_from = fleet.emulator.sandbox(sandbox_id).and_then(|view| view.from_snapshot);
    if made_from.as_deref() != Some(source.template_id.as_str()) {
        ledger.violation(
            RESTORE_OTHER_SOURCE,
            &project,
            format!(
                "{snapshot} is E2B snapshot {} (template {}), but sandbox {sandbox_id} was made from {made_from:?}",
                row.e2b_snapshot_id, source.template_id
            ),
        );
    }
}

/// A reconcile that ran while one account's list calls failed (and nothing else stood in the
/// way: see [`crate::stalls`]) listed every other account.
pub fn accounts_listed(fleet: &Fleet, ledger: &Ledger, watched: &Watched, answer: &serde_json::Value) {
    let accounts = fleet.accounts.len();
    let Some(floor) = fleet.watch.floor(watched, accounts) else {
        return;
    };
    ledger.check(if floor < accounts {
        "reconcile while one account's lists failed"
    } else {
        "reconcile while every account's lists worked"
    });
    let report = &answer["report"];
    let listed = report["accountsListed"].as_u64().unwrap_or(0);
    if listed < floor as u64 {
        ledger.violation(
            RECONCILE_STALLED,
            "",
            format!(
                "listed {listed} of {accounts} accounts, at most {} failing: {report}",
                accounts - floor
            ),
        );
    }
}
