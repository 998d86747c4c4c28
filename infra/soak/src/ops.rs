//! What a caller does to one project: the operations, their weights, and what each answer teaches
//! the model (the snapshots it knows of, the settings in force, heartbeats recorded).

use http::{Method, StatusCode};
use serde_json::json;

use crate::actors::Soak;
use crate::model::{Model, SnapshotSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Open,
    Heartbeat,
    Status,
    Pause,
    Resume,
    Kill,
    Snapshot,
    ListSnapshots,
    Pin,
    DeleteSnapshot,
    Restore,
    Settings,
    DeleteProject,
    /// A delete of the project sent together with an open of it.
    DeleteWhileOpening,
    Fork,
    /// The project's sandbox works hard (E2B's CPU metrics), or asks to be held awake.
    Busy,
    /// The team's budget (team admins).
    Budget,
    /// The team's E2B key: rotated within its account, or moved to another (team admins).
    AccountSwitch,
    /// An outbound webhook endpoint registered or deleted.
    Endpoint,
}

const OPS: [(Op, u32); 19] = [
    (Op::Open, 18),
    (Op::Heartbeat, 22),
    (Op::Status, 4),
    (Op::Pause, 6),
    (Op::Resume, 5),
    (Op::Kill, 5),
    (Op::Snapshot, 6),
    (Op::ListSnapshots, 3),
    (Op::Pin, 3),
    (Op::DeleteSnapshot, 3),
    (Op::Restore, 4),
    (Op::Settings, 3),
    (Op::DeleteProject, 1),
    (Op::DeleteWhileOpening, 1),
    (Op::Fork, 3),
    (Op::Busy, 2),
    (Op::Budget, 1),
    (Op::AccountSwitch, 3),
    (Op::Endpoint, 1),
];

pub fn pick(rng: &mut fastrand::Rng) -> Op {
    let total: u32 = OPS.iter().map(|(_, w)| w).sum();
    let mut pick = rng.u32(0..total);
    OPS.iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map(|(op, _)| *op)
        .expect("the weights cover the pick")
}

impl Soak {
    pub async fn operate(&self, rng: &mut fastrand::Rng, index: usize, op: Op) {
        let project = Model::name(index);
        let base = format!("/v1/projects/{project}");
        match op {
            Op::Open => {
                self.call(rng, index, "open", Method::POST, &format!("{base}/sandbox"), None)
                    .await;
            }
            Op::Heartbeat => self.heartbeat(rng, index, None).await,
            Op::Status => {
                self.call(rng, index, "status", Method::GET, &format!("{base}/sandbox"), None)
                    .await;
            }
            Op::Pause => {
                let path = format!("{base}/sandbox/pause");
                self.call(rng, index, "pause", Method::POST, &path, None).await;
            }
            Op::Resume => {
                let path = format!("{base}/sandbox/resume");
                self.call(rng, index, "resume", Method::POST, &path, None).await;
            }
            Op::Kill => {
                let path = format!("{base}/sandbox?snapshot={}", rng.bool());
                let reply = self.call(rng, index, "kill", Method::DELETE, &path, None).await;
                if let Some(snapshot) = reply.as_ref().map(|r| &r.json["snapshot"]).filter(|s| s.is_object()) {
                    self.learn_snapshot(index, snapshot, None);
                    if let Some(id) = snapshot["snapshotId"].as_str() {
                        let mut model = self.model.project(index);
                        if !model.snapshots.iter().any(|s| s == id) {
                            model.snapshots.push(id.to_owned());
                        }
                    }
                }
            }
            Op::Snapshot => {
                let body = json!({"description": "soak"});
                let path = format!("{base}/snapshots");
                let sent = self.fleet.e2b_now();
                let reply = self.call(rng, index, "snapshot", Method::POST, &path, Some(body)).await;
                if let Some(reply) = reply.filter(|r| r.status == StatusCode::CREATED) {
                    let window = (sent, self.fleet.e2b_now());
                    self.learn_snapshot(index, &reply.json, Some(window));
                }
            }
            Op::Restore if self.model.project(index).snapshots.is_empty() => {
                // Nothing known to restore yet: open, take one, and restore it.
                for step in [Op::Open, Op::Snapshot, Op::Restore] {
                    if step != Op::Restore || !self.model.project(index).snapshots.is_empty() {
                        Box::pin(self.operate(rng, index, step)).await;
                    }
                }
            }
            Op::Pin | Op::DeleteSnapshot if self.model.project(index).snapshots.is_empty() => {
                // Nothing known to act on yet: look first.
                Box::pin(self.operate(rng, index, Op::ListSnapshots)).await;
            }
            Op::ListSnapshots => {
                let path = format!("{base}/snapshots");
                let reply = self.call(rng, index, "list-snapshots", Method::GET, &path, None).await;
                if let Some(items) = reply.as_ref().and_then(|r| r.json["items"].as_array()) {
                    self.model.project(index).snapshots = items
                        .iter()
                        .filter_map(|s| s["snapshotId"].as_str())
                        .map(str::to_owned)
                        .collect();
                    for item in items {
                        self.learn_snapshot(index, item, None);
                    }
                }
            }
            Op::Pin | Op::DeleteSnapshot | Op::Restore => {
                let known = self.model.project(index).snapshots.clone();
                if known.is_empty() {
                    return;
                }
                let snapshot = known[rng.usize(0..known.len())].clone();
                let path = format!("{base}/snapshots/{snapshot}");
                let account = self.fleet.account_of(index);
                let (op, method, path, body) = match op {
                    Op::Pin => ("pin", Method::PATCH, path, Some(json!({"pinned": rng.bool()}))),
                    Op::DeleteSnapshot => ("delete-snapshot", Method::DELETE, path, None),
                    _ => ("restore", Method::POST, format!("{path}/restore"), None),
                };
                let member = crate::actors::As::Member;
                self.call_as(rng, account, member, op, Some(index), method, &path, body, snapshot)
                    .await;
            }
            Op::Settings => self.settings(rng, index, true).await,
            Op::DeleteProject => self.delete_project(rng, index).await,
            Op::DeleteWhileOpening => self.delete_while_opening(rng, index).await,
            Op::Fork => self.fork(rng, index).await,
            Op::Busy => self.busy(rng, index).await,
            Op::Budget => self.budget(rng, index).await,
            Op::AccountSwitch => self.account_switch(rng, index).await,
            Op::Endpoint => self.endpoint(rng, index).await,
        }
    }

    /// A heartbeat (with `busy_for` seconds held awake, if given); one answered `recorded` is kept
    /// for the judge with the idle timeout in force.
    pub async fn heartbeat(&self, rng: &mut fastrand::Rng, index: usize, busy_for: Option<u64>) {
        let path = format!("/v1/projects/{}/sandbox/activity", Model::name(index));
        let body = busy_for.map(|seconds| json!({"busyForSeconds": seconds}));
        let sent = self.fleet.e2b_now();
        let reply = self.call(rng, index, "heartbeat", Method::POST, &path, body).await;
        if let Some(reply) = reply
            && reply.json["outcome"] == "recorded"
        {
            let answered = self.fleet.e2b_now();
            self.model.project(index).heartbeat_recorded(sent, answered);
        }
    }

    /// What an answer says of a snapshot: the sandbox it was taken from (and when, for a manual one).
    fn learn_snapshot(
        &self,
        index: usize,
        view: &serde_json::Value,
        window: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    ) {
        let (Some(id), Some(source)) = (view["snapshotId"].as_str(), view["sourceSandboxId"].as_str()) else {
            return;
        };
        let mut model = self.model.project(index);
        if window.is_some() && !model.snapshots.iter().any(|s| s == id) {
            model.snapshots.push(id.to_owned());
        }
        let known = model.snapshot_sources.entry(id.to_owned()).or_default();
        known.sandbox_id = source.to_owned();
        if window.is_some() {
            *known = SnapshotSource {
                sandbox_id: source.to_owned(),
                made_between: window,
            };
        }
    }

    async fn delete_project(&self, rng: &mut fastrand::Rng, index: usize) {
        let path = format!("/v1/projects/{}", Model::name(index));
        let reply = self
            .call(rng, index, "delete-project", Method::DELETE, &path, None)
            .await;
        if reply.is_some_and(|r| r.status == StatusCode::NO_CONTENT) {
            let mut model = self.model.project(index);
            model.registered = false;
            model.snapshots.clear();
            // A project made in this slot again (a fork) has settings of its own.
            model.idle_timeout_secs = None;
            model.keep_last = None;
        }
    }

    /// An open and a delete of the same project at once: whichever wins, nothing may be left
    /// running or paused in E2B for a project that is gone.
    async fn delete_while_opening(&self, rng: &mut fastrand::Rng, index: usize) {
        let path = format!("/v1/projects/{}/sandbox", Model::name(index));
        let (mut open_rng, mut delete_rng) = (rng.fork(), rng.fork());
        let open = self.call(&mut open_rng, index, "open", Method::POST, &path, None);
        let (_, ()) = tokio::join!(open, self.delete_project(&mut delete_rng, index));
    }

    /// Registers a project or changes its settings (a PUT replaces them). Some projects get short
    /// E2B timeouts (E2B pauses them itself, before the enforcer), busy-aware idle, a session-cap
    /// handoff by snapshot, inactivity tiers.
    pub async fn settings(&self, rng: &mut fastrand::Rng, index: usize, change: bool) {
        let idle = [60, 120, 300, 600][rng.usize(0..4)];
        let keep_last = rng.u32(1..5);
        let sandbox_timeout = [60, 120, 300, 3600, 3600][rng.usize(0..5)];
        let mut body = json!({
            "templateId": "base",
            "idleTimeoutSeconds": idle,
            "snapshotOnIdle": rng.u32(0..4) == 0,
            "snapshotBeforeKill": rng.bool(),
            "retention": {"keepLast": keep_last},
            "sandboxTimeoutSeconds": sandbox_timeout,
        });
        if rng.u32(0..4) == 0 {
            body["busyCpuPercent"] = json!(50);
            body["maxBusyDeferralSeconds"] = json!(600);
        }
        if rng.u32(0..3) == 0 {
            body["capHandoff"] = json!(["pause-resume", "snapshot-reopen"][rng.usize(0..2)]);
        }
        if rng.u32(0..4) == 0 {
            let archive = [60, 300, 1200][rng.usize(0..3)];
            let mut inactivity = json!({"archiveAfterSeconds": archive});
            if rng.bool() {
                inactivity["deleteAfterSeconds"] = json!(86_400);
                inactivity["deletePinned"] = json!(rng.bool());
            }
            body["inactivity"] = inactivity;
        }
        let op = if change { "settings" } else { "register" };
        let path = format!("/v1/projects/{}", Model::name(index));
        let sent = self.fleet.e2b_now();
        let ticket = self.model.project(index).settings_sent();
        let reply = self.call(rng, index, op, Method::PUT, &path, Some(body)).await;
        let answered = self.fleet.e2b_now();
        self.model
            .project(index)
            .settings_answered(ticket, sent, answered, idle, keep_last, reply.map(|r| r.status));
    }
}
