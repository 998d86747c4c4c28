//! After the run: what the API says each team has (its projects, each project's state and current
//! sandbox, its snapshots) against what E2B has. The API is asked as the teams' own callers, with
//! every fault off; the snapshot rows are read from the table only to compare them with E2B's
//! snapshots (the table is judged, not trusted).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use e2b_emulator::{Route, SandboxState};
use futures::StreamExt;
use http::{Method, StatusCode};
use serde_json::Value;

use super::truth::{Truth, history};
use super::*;
use crate::actors::Soak;
use crate::model::Model;

/// API reads at once after the run (each answered by one of the instances).
const READS_AT_ONCE: usize = 8;

/// One existing project, as the API describes it.
#[derive(Debug, Clone)]
pub struct Existing {
    pub account: usize,
    pub name: String,
    pub state: Option<String>,
    pub sandbox_id: Option<String>,
    pub view: Value,
}

/// Every project of every team, as the API lists and describes it; `Err` when the API could not say.
pub async fn projects(soak: &Soak) -> Result<Vec<Existing>, String> {
    let fleet = &soak.fleet;
    let mut all = Vec::new();
    for account in 0..fleet.accounts.len() {
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(next) => format!("/v1/projects?limit=100&cursor={next}"),
                None => "/v1/projects?limit=100".to_owned(),
            };
            let page = fleet.api_as(account, 0, Method::GET, &path, None).await;
            if page.status != StatusCode::OK {
                return Err(format!("GET {path} answered {} {}", page.status, page.json));
            }
            let names: Vec<String> = page.json["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item["projectId"].as_str().map(str::to_owned))
                .collect();
            let views = futures::stream::iter(names.into_iter().enumerate().map(|(n, name)| {
                let path = format!("/v1/projects/{name}");
                let view = fleet.api_as(account, n % fleet.apis.len(), Method::GET, &path, None);
                async move { (name, path, view.await) }
            }))
            .buffered(READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
            for (name, path, view) in views {
                if view.status != StatusCode::OK {
                    return Err(format!("GET {path} answered {} {}", view.status, view.json));
                }
                all.push(Existing {
                    account,
                    name,
                    state: view.json["sandbox"]["state"].as_str().map(str::to_owned),
                    sandbox_id: view.json["sandbox"]["sandboxId"].as_str().map(str::to_owned),
                    view: view.json,
                });
            }
            cursor = page.json["nextCursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(all)
}

/// Every project's state agrees with E2B's state of its sandbox, and none is mid-transition.
/// `judge`: whether to count (after the first reconcile, and at the very end; the rounds between
/// only measure how long convergence took). `when` goes into a violation's example.
pub fn converged(soak: &Soak, truth: &Truth, projects: &[Existing], judge: bool, when: &str) -> usize {
    let mut disagreements = 0;
    for project in projects {
        if judge {
            soak.ledger.judged(CONVERGED, 1);
        }
        let e2b = project.sandbox_id.as_deref().and_then(|id| truth.sandbox(id));
        let state = e2b.map(|v| v.reported_state());
        let agrees = match project.state.as_deref() {
            None => true,
            Some("RUNNING") => state == Some(SandboxState::Running),
            Some("PAUSED") => state == Some(SandboxState::Paused),
            Some("KILLED") => matches!(state, None | Some(SandboxState::Killed)),
            Some(_) => false,
        };
        if !agrees {
            disagreements += 1;
            if judge {
                soak.ledger.violation(
                    CONVERGED,
                    &project.name,
                    format!(
                        "{when}: API {} sandbox {:?} (last error {}), E2B: {}",
                        project.state.as_deref().unwrap_or("-"),
                        project.sandbox_id,
                        project.view["sandbox"]["lastError"],
                        e2b.map_or_else(|| "none".to_owned(), history)
                    ),
                );
            }
        }
    }
    disagreements
}

/// Every live E2B sandbox (running or paused) is the current sandbox of exactly one existing project
/// (one the API does not say is KILLED).
pub fn orphans(soak: &Soak, truth: &Truth, projects: &[Existing]) {
    let mut owners: HashMap<&str, Vec<&Existing>> = HashMap::new();
    for project in projects {
        // Its current sandbox, in whatever state but KILLED (one mid-transition is `converged`'s).
        if let (Some(id), Some(state)) = (project.sandbox_id.as_deref(), project.state.as_deref())
            && state != "KILLED"
        {
            owners.entry(id).or_default().push(project);
        }
    }
    for view in truth.live() {
        soak.ledger.judged(NO_ORPHANS, 1);
        let named = view.metadata.get("sandmanProject").cloned().unwrap_or_default();
        match owners.get(view.sandbox_id.as_str()).map(Vec::len).unwrap_or(0) {
            1 => {}
            0 => {
                let exists = projects.iter().find(|p| p.name == named);
                let fate = exists.map_or_else(
                    || "which does not exist".to_owned(),
                    |p| format!("which is {} with {:?}", p.state.as_deref().unwrap_or("-"), p.sandbox_id),
                );
                soak.ledger.violation(
                    NO_ORPHANS,
                    &named,
                    format!(
                        "{:?} in E2B, made for {named} {fate}{}: {}; {}",
                        view.reported_state(),
                        if view.forked_from.is_some() { " (a fork)" } else { "" },
                        history(view),
                        story(soak, &named, view.created_at)
                    ),
                );
            }
            _ => soak.ledger.violation(
                NO_ORPHANS,
                &named,
                format!(
                    "{} is the current sandbox of {} projects",
                    view.sandbox_id,
                    owners[view.sandbox_id.as_str()].len()
                ),
            ),
        }
    }
}

/// What the API answered about project `name` around `made` (E2B's time): the requests that could
/// have made a sandbox then, and the project's deletions after.
fn story(soak: &Soak, name: &str, made: time::OffsetDateTime) -> String {
    let Some(index) = Model::index_of(name) else {
        return String::new();
    };
    let told: Vec<String> = soak
        .transcript
        .all()
        .into_iter()
        .filter(|a| a.index == Some(index))
        .filter(|a| {
            let made_then = a.e2b_sent <= made && made <= a.e2b_answered + time::Duration::seconds(30);
            made_then || (a.op == "delete-project" && a.e2b_sent >= made - time::Duration::seconds(30))
        })
        .take(4)
        .map(|a| {
            let status = a.status.map_or("given up".to_owned(), |s| s.as_u16().to_string());
            let path = a.json["path"].as_str().unwrap_or("");
            format!(
                "{} asked {} answered {} {status} {path}",
                a.op,
                a.e2b_sent.time(),
                a.e2b_answered.time()
            )
        })
        .collect();
    if told.is_empty() {
        "no request of the project's about then".to_owned()
    } else {
        told.join(", ")
    }
}

/// One snapshot row of the table: (team, project, E2B snapshot, status).
type Row = (String, String, String, String);

async fn rows(soak: &Soak) -> Vec<Row> {
    let fleet = &soak.fleet;
    let mut rows = Vec::new();
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
            rows.push((text("teamId"), text("projectId"), text("e2bSnapshotId"), text("status")));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    rows
}

/// E2B's snapshots are exactly the READY rows of existing projects: none without a row, none of a
/// deleted project, no READY row without its E2B snapshot, and nothing left PENDING or DELETING.
pub async fn snapshots(soak: &Soak, truth: &Truth, projects: &[Existing]) {
    let rows = rows(soak).await;
    let existing: HashSet<(String, &str)> = projects
        .iter()
        .map(|p| (soak.fleet.accounts[p.account].team.to_string(), p.name.as_str()))
        .collect();
    let in_e2b: Vec<_> = truth.snapshots.iter().filter(|s| s.deleted_at.is_none()).collect();
    let e2b_ids: HashSet<&str> = in_e2b
        .iter()
        .flat_map(|s| [s.snapshot_id.as_str(), s.template_id.as_str()])
        .collect();
    let mut row_of: HashMap<&str, &Row> = HashMap::new();
    for row in &rows {
        row_of.insert(row.2.as_str(), row);
    }
    for snapshot in &in_e2b {
        soak.ledger.judged(SNAPSHOTS_AGREE, 1);
        let row = row_of
            .get(snapshot.snapshot_id.as_str())
            .or_else(|| row_of.get(snapshot.template_id.as_str()));
        let source = truth
            .sandbox(&snapshot.source_sandbox_id)
            .and_then(|s| s.metadata.get("sandmanProject").cloned())
            .unwrap_or_default();
        if row.is_none() {
            soak.ledger.violation(
                SNAPSHOTS_AGREE,
                &source,
                format!(
                    "E2B snapshot {} (of {}) has no row",
                    snapshot.snapshot_id, snapshot.source_sandbox_id
                ),
            );
        }
    }
    for (team, project, e2b, status) in &rows {
        soak.ledger.judged(SNAPSHOTS_AGREE, 1);
        let of_existing = existing.contains(&(team.clone(), project.as_str()));
        let problem = match status.as_str() {
            _ if !of_existing => Some(format!("a {status} row for {e2b} of a project that no longer exists")),
            "READY" if !e2b_ids.contains(e2b.as_str()) => Some(format!("READY row for {e2b}, which E2B does not have")),
            "READY" => None,
            other => Some(format!("a row still {other} ({e2b})")),
        };
        if let Some(problem) = problem {
            soak.ledger.violation(SNAPSHOTS_AGREE, project, problem);
        }
    }
}

/// No project keeps more unpinned READY snapshots than its `keepLast` (when the soak knows it),
/// aside from snapshots held for a fork's first open, the one E2B made the project's live sandbox
/// from (kept while that sandbox lives: the restore ladder goes back to it), any other that a
/// live sandbox was made from (a fork's, say: E2B refuses to delete those), and any whose deletion
/// E2B refused (its call log) within `IN_USE_RECHECK`: Sandman looks again only after that long.
pub async fn retention(soak: &Soak, truth: &Truth, projects: &[Existing]) {
    let end = truth.calls.iter().map(|c| c.at).max();
    let refused: HashSet<&str> = truth
        .calls
        .iter()
        .filter(|c| c.route == Route::DeleteSnapshot && c.handler_status == Some(400))
        .filter(|c| end.is_some_and(|end| end - c.at < sandman::retention::IN_USE_RECHECK))
        .filter_map(|c| c.path.rsplit('/').next())
        .collect();
    // The raw E2B template each live sandbox was made from, and each E2B snapshot's template.
    let made_from: HashMap<&str, &str> = projects
        .iter()
        .filter_map(|p| {
            let view = truth.sandbox(p.sandbox_id.as_deref()?)?;
            Some((p.name.as_str(), view.from_snapshot.as_deref()?))
        })
        .collect();
    let in_use: HashSet<&str> = truth.live().filter_map(|v| v.from_snapshot.as_deref()).collect();
    // E2B knows a Sandman snapshot by the name Sandman gives it (`sandman-<id>`, as E2B's own record
    // of the snapshot says); the API does not show E2B's id.
    let template_of = |snapshot_id: &str| {
        let name = sandman::protocol::ops::snapshot::e2b_name(&sandman::domain::SnapshotId::parse(snapshot_id).ok()?);
        truth
            .snapshots
            .iter()
            .find(|s| s.name.as_deref() == Some(name.as_str()))
            .map(|s| s.template_id.clone())
    };
    let held: HashSet<&str> = projects
        .iter()
        .filter_map(|p| p.view["forkOf"]["snapshotId"].as_str())
        .collect();
    let known: Vec<(&Existing, u32)> = projects
        .iter()
        .filter_map(|p| {
            let index = Model::index_of(&p.name)?;
            Some((p, soak.model.project(index).keep_last?))
        })
        .collect();
    let fleet = &soak.fleet;
    let lists = futures::stream::iter(known.into_iter().enumerate().map(|(n, (project, keep_last))| {
        let path = format!("/v1/projects/{}/snapshots?limit=100", project.name);
        let list = fleet.api_as(project.account, n % fleet.apis.len(), Method::GET, &path, None);
        async move { (project, keep_last, list.await) }
    }))
    .buffered(READS_AT_ONCE)
    .collect::<Vec<_>>()
    .await;
    for (project, keep_last, list) in lists {
        let Some(items) = list.json["items"].as_array() else {
            continue;
        };
        soak.ledger.judged(RETENTION, 1);
        let live_source = made_from.get(project.name.as_str()).copied();
        let kept: Vec<&Value> = items
            .iter()
            .filter(|s| s["status"] == "READY" && s["pinned"] == false)
            .filter(|s| !s["snapshotId"].as_str().is_some_and(|id| held.contains(id)))
            .filter(|s| {
                let template = s["snapshotId"].as_str().and_then(template_of);
                let live = template
                    .as_deref()
                    .is_some_and(|t| in_use.contains(t) || refused.contains(t));
                !live && (live_source.is_none() || template.as_deref() != live_source)
            })
            .collect();
        if kept.len() > keep_last as usize {
            let which: Vec<String> = kept
                .iter()
                .map(|s| {
                    let template = s["snapshotId"].as_str().and_then(template_of);
                    format!(
                        "{} {} {} (E2B template {template:?})",
                        s["snapshotId"], s["kind"], s["createdAt"]
                    )
                })
                .collect();
            soak.ledger.violation(
                RETENTION,
                &project.name,
                format!(
                    "{} unpinned READY snapshots kept, keepLast {keep_last}: {}; the project: state {}, sandbox {} (made from {:?})",
                    kept.len(),
                    which.join(", "),
                    project.state.as_deref().unwrap_or("-"),
                    project.sandbox_id.as_deref().unwrap_or("-"),
                    live_source
                ),
            );
        }
    }
}
