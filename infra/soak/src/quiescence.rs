//! The invariants checked once the run is over and the system has settled: E2B and the table agree
//! on every sandbox and snapshot, nothing is mid-transition, and no enforcer pause contradicts a
//! heartbeat the API answered as recorded. The checker may scan the test table; product code never does.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use e2b_emulator::SandboxState;
use sandman::domain::{Actor, SessionState};
use sandman::store::{Consistency, ProjectRecord};

use crate::actors::Soak;
use crate::model::Model;

pub const RUNNING_ORPHAN: &str = "a running E2B sandbox is no project's current sandbox";
pub const SHARED_SANDBOX: &str = "an E2B sandbox is the current sandbox of two projects";
pub const STATE_MISMATCH: &str = "the table's state disagrees with E2B's";
pub const MID_TRANSITION: &str = "a session is still mid-transition after quiescence";
pub const SNAPSHOT_NO_ROW: &str = "an E2B snapshot has no row";
pub const ROW_NO_SNAPSHOT: &str = "a READY snapshot row has no E2B snapshot";
pub const ENFORCER_VS_HEARTBEAT: &str = "the enforcer paused a session inside the idle window of a recorded heartbeat";

pub struct Finding {
    pub kind: &'static str,
    pub project: String,
    pub seen: String,
}

#[derive(Debug, Default)]
pub struct Figures {
    pub paused_orphans: usize,
    pub deleting_rows: usize,
    pub live_sandboxes: usize,
    pub snapshots: usize,
}

fn finding(kind: &'static str, project: impl Into<String>, seen: impl Into<String>) -> Finding {
    Finding {
        kind,
        project: project.into(),
        seen: seen.into(),
    }
}

/// Whether E2B team `team_id` is one of the soak's accounts.
fn soaked(soak: &Soak, team_id: &str) -> bool {
    soak.fleet
        .accounts
        .iter()
        .any(|account| account.team.as_str() == team_id)
}

/// Sandboxes and snapshots, E2B against the table.
pub async fn check_state(soak: &Soak) -> (Vec<Finding>, Figures) {
    let fleet = &soak.fleet;
    let mut found = Vec::new();
    let mut figures = Figures::default();
    let mut records: Vec<(String, ProjectRecord)> = Vec::new();
    for index in 0..soak.model.projects.len() {
        let name = Model::name(index);
        match fleet
            .checker
            .get_project(&fleet.key_at(index), Consistency::Strong)
            .await
        {
            Ok(Some(record)) => records.push((name, record)),
            Ok(None) => {}
            Err(err) => found.push(finding(STATE_MISMATCH, name, format!("unreadable: {err}"))),
        }
    }
    let mut owners: HashMap<String, Vec<String>> = HashMap::new();
    for (name, record) in &records {
        if let Some(sandbox) = record.session.as_ref().and_then(|s| s.sandbox.as_ref()) {
            owners.entry(sandbox.sandbox_id.clone()).or_default().push(name.clone());
        }
    }
    let sandboxes: HashMap<String, _> = fleet
        .emulator
        .sandboxes()
        .into_iter()
        .filter(|s| soaked(soak, &s.team_id))
        .map(|s| (s.sandbox_id.clone(), s))
        .collect();
    for view in sandboxes
        .values()
        .filter(|s| s.reported_state() != SandboxState::Killed)
    {
        figures.live_sandboxes += 1;
        let project = view.metadata.get("sandmanProject").cloned().unwrap_or_default();
        match owners.get(&view.sandbox_id).map(Vec::len).unwrap_or(0) {
            0 if view.reported_state() == SandboxState::Running => found.push(finding(
                RUNNING_ORPHAN,
                project,
                format!("{} running since {}", view.sandbox_id, view.started_at),
            )),
            0 => figures.paused_orphans += 1,
            1 => {}
            _ => found.push(finding(
                SHARED_SANDBOX,
                project,
                format!("{} is current for {:?}", view.sandbox_id, owners[&view.sandbox_id]),
            )),
        }
    }
    for (name, record) in &records {
        let Some(session) = &record.session else { continue };
        let sandbox_id = session.sandbox.as_ref().map(|s| s.sandbox_id.as_str());
        let e2b = sandbox_id.and_then(|id| sandboxes.get(id)).map(|v| v.reported_state());
        let agrees = match session.state {
            SessionState::Running => e2b == Some(SandboxState::Running),
            SessionState::Paused => e2b == Some(SandboxState::Paused),
            SessionState::Killed => matches!(e2b, None | Some(SandboxState::Killed)),
            transitional => {
                found.push(finding(
                    MID_TRANSITION,
                    name,
                    format!(
                        "{} since {} (sandbox {sandbox_id:?}, E2B {e2b:?}, last {} {})",
                        transitional.as_str(),
                        session.state_since,
                        session.last_actor.as_str(),
                        session.last_cause
                    ),
                ));
                continue;
            }
        };
        if !agrees {
            found.push(finding(
                STATE_MISMATCH,
                name,
                format!(
                    "table {} sandbox {sandbox_id:?} (last {} {}), E2B {e2b:?}",
                    session.state.as_str(),
                    session.last_actor.as_str(),
                    session.last_cause
                ),
            ));
        }
    }
    check_snapshots(soak, &mut found, &mut figures).await;
    (found, figures)
}

async fn check_snapshots(soak: &Soak, found: &mut Vec<Finding>, figures: &mut Figures) {
    let fleet = &soak.fleet;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut start = None;
    loop {
        let page = fleet
            .table
            .client
            .scan()
            .table_name(&fleet.table.name)
            .filter_expression("begins_with(sk, :snapshot)")
            .expression_attribute_values(":snapshot", AttributeValue::S("SNAPSHOT#".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("the checker scans the test table");
        for item in page.items() {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            rows.push((text("projectId"), text("e2bSnapshotId"), text("status")));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    let known: HashSet<&str> = rows.iter().map(|(_, e2b, _)| e2b.as_str()).collect();
    let snapshots: Vec<_> = fleet
        .emulator
        .snapshots()
        .into_iter()
        .filter(|s| soaked(soak, &s.team_id))
        .collect();
    figures.snapshots = snapshots.len();
    let mut in_e2b = HashSet::new();
    for view in &snapshots {
        in_e2b.insert(view.snapshot_id.clone());
        in_e2b.insert(view.template_id.clone());
        if !known.contains(view.snapshot_id.as_str()) && !known.contains(view.template_id.as_str()) {
            let project = fleet
                .emulator
                .sandbox(&view.source_sandbox_id)
                .and_then(|s| s.metadata.get("sandmanProject").cloned())
                .unwrap_or_default();
            found.push(finding(
                SNAPSHOT_NO_ROW,
                project,
                format!(
                    "{} taken from {} at {}",
                    view.snapshot_id, view.source_sandbox_id, view.created_at
                ),
            ));
        }
    }
    for (project, e2b, status) in &rows {
        if status == "DELETING" {
            figures.deleting_rows += 1;
        } else if !in_e2b.contains(e2b) {
            found.push(finding(ROW_NO_SNAPSHOT, project, format!("{status} row for {e2b}")));
        }
    }
}

/// No enforcer pause inside the idle window of a heartbeat answered `recorded` before it, unless
/// the project's settings changed in between (then the window is not known).
pub async fn check_heartbeats(soak: &Soak) -> Vec<Finding> {
    let fleet = &soak.fleet;
    let mut found = Vec::new();
    for index in 0..soak.model.projects.len() {
        if soak.model.project(index).recorded_heartbeats.is_empty() {
            continue;
        }
        let name = Model::name(index);
        let key = fleet.key_at(index);
        let mut cursor = None;
        let mut pauses = Vec::new();
        for _ in 0..20 {
            let Ok(page) = fleet.checker.list_events(&key, cursor.as_ref(), 100).await else {
                break;
            };
            pauses.extend(
                page.items
                    .into_iter()
                    .filter(|e| e.actor == Actor::IdleEnforcer && e.from == Some(SessionState::Running)),
            );
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        for pause in &pauses {
            let contradicted = soak.model.project(index).contradicted_by(pause.at);
            if let Some(hb) = contradicted {
                found.push(finding(
                    ENFORCER_VS_HEARTBEAT,
                    &name,
                    format!(
                        "heartbeat sent {}, answered recorded {}; enforcer paused {:?} at {} (idle timeout {}s)",
                        hb.sent, hb.answered, pause.sandbox_id, pause.at, hb.idle_timeout_secs
                    ),
                ));
            }
        }
    }
    found
}
