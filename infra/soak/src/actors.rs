//! The actors: users calling the API (on a random instance each time), the scheduled functions
//! ticking on overlapping timers, the clock, and chaos. All stop together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::chaos;
use crate::fleet::{Fleet, Reply};
use crate::invariants;
use crate::ledger::Ledger;
use crate::model::Model;
use crate::restarts::DynamoLocal;

/// Not the system's fault, but the run cannot be judged after it.
pub const DYNAMODB_NOT_BACK: &str = "DynamoDB Local did not come back after a restart";

pub struct Soak {
    pub fleet: Fleet,
    pub ledger: Arc<Ledger>,
    pub model: Model,
    stop: AtomicBool,
    ops_left: AtomicI64,
}

#[derive(Debug, Clone, Copy)]
enum Op {
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
}

const OPS: [(Op, u32); 13] = [
    (Op::Open, 20),
    (Op::Heartbeat, 25),
    (Op::Status, 5),
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
];

const MAX_TICKS_IN_FLIGHT: usize = 2;

#[derive(Debug, Clone, Copy)]
pub enum Tick {
    Enforce,
    Reconcile,
    Prune,
}

impl Soak {
    pub fn new(fleet: Fleet, ledger: Arc<Ledger>, projects: usize, operations: u64) -> Soak {
        Soak {
            fleet,
            ledger,
            model: Model::new(projects),
            stop: AtomicBool::new(false),
            ops_left: AtomicI64::new(i64::try_from(operations).unwrap_or(i64::MAX)),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Registers every project before the actors start, so most operations find one.
    pub async fn register_all(&self, rng: &mut fastrand::Rng) {
        use futures::StreamExt;
        let rngs: Vec<_> = (0..self.model.projects.len()).map(|_| rng.fork()).collect();
        futures::stream::iter(rngs.into_iter().enumerate())
            .for_each_concurrent(16, |(index, mut rng)| async move {
                self.settings(&mut rng, index, false).await
            })
            .await;
    }

    /// One API call about the soak's project `index`, as a caller of its team.
    pub async fn call(
        &self,
        rng: &mut fastrand::Rng,
        index: usize,
        kind: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Reply> {
        let instance = rng.usize(0..self.fleet.apis.len());
        let account = self.fleet.account_of(index);
        let answer = self.fleet.api_as(account, instance, method, path, body);
        let started = std::time::Instant::now();
        let reply = chaos::invoke(rng, &self.ledger, "api", answer, true).await;
        self.ledger.timing(kind, started.elapsed());
        let Some(reply) = reply else {
            self.ledger.operation(kind, "abandoned");
            return None;
        };
        let detail = [
            &reply.json["path"],
            &reply.json["outcome"],
            &reply.json["error"]["code"],
        ]
        .into_iter()
        .find_map(Value::as_str)
        .unwrap_or("");
        self.ledger
            .operation(kind, &format!("{} {detail}", reply.status.as_u16()));
        invariants::api_answer(&self.ledger, kind, path, &reply);
        Some(reply)
    }

    pub async fn api_worker(self: Arc<Self>, mut rng: fastrand::Rng) {
        let total: u32 = OPS.iter().map(|(_, w)| w).sum();
        while !self.stopping() {
            if self.ops_left.fetch_sub(1, Ordering::Relaxed) <= 0 {
                self.stop();
                return;
            }
            let index = rng.usize(0..self.model.projects.len());
            if !self.model.project(index).registered {
                self.settings(&mut rng, index, false).await;
                continue;
            }
            let mut pick = rng.u32(0..total);
            let op = OPS
                .iter()
                .find(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .map(|(op, _)| *op)
                .expect("the weights cover the pick");
            self.operate(&mut rng, index, op).await;
        }
    }

    async fn operate(&self, rng: &mut fastrand::Rng, index: usize, op: Op) {
        let project = Model::name(index);
        let base = format!("/v1/projects/{project}");
        match op {
            Op::Open => {
                let e2b_before = self.fleet.emulator.now();
                if let Some(reply) = self
                    .call(rng, index, "open", Method::POST, &format!("{base}/sandbox"), None)
                    .await
                {
                    invariants::opened_runs(&self.fleet, &self.ledger, &project, &reply, e2b_before);
                }
            }
            Op::Heartbeat => {
                let sent = self.fleet.clock.now();
                let reply = self
                    .call(
                        rng,
                        index,
                        "heartbeat",
                        Method::POST,
                        &format!("{base}/sandbox/activity"),
                        None,
                    )
                    .await;
                if let Some(reply) = reply
                    && reply.json["outcome"] == "recorded"
                {
                    let answered = self.fleet.clock.now();
                    self.model.project(index).heartbeat_recorded(sent, answered);
                }
            }
            Op::Status => {
                self.call(rng, index, "status", Method::GET, &format!("{base}/sandbox"), None)
                    .await;
            }
            Op::Pause => {
                self.call(
                    rng,
                    index,
                    "pause",
                    Method::POST,
                    &format!("{base}/sandbox/pause"),
                    None,
                )
                .await;
            }
            Op::Resume => {
                self.call(
                    rng,
                    index,
                    "resume",
                    Method::POST,
                    &format!("{base}/sandbox/resume"),
                    None,
                )
                .await;
            }
            Op::Kill => {
                let path = format!("{base}/sandbox?snapshot={}", rng.bool());
                self.call(rng, index, "kill", Method::DELETE, &path, None).await;
            }
            Op::Snapshot => {
                let body = json!({"description": "soak"});
                let reply = self
                    .call(
                        rng,
                        index,
                        "snapshot",
                        Method::POST,
                        &format!("{base}/snapshots"),
                        Some(body),
                    )
                    .await;
                if let Some(id) = reply.as_ref().and_then(|r| r.json["snapshotId"].as_str()) {
                    self.model.project(index).snapshots.push(id.to_owned());
                }
            }
            Op::ListSnapshots => {
                let reply = self
                    .call(
                        rng,
                        index,
                        "list-snapshots",
                        Method::GET,
                        &format!("{base}/snapshots"),
                        None,
                    )
                    .await;
                if let Some(items) = reply.as_ref().and_then(|r| r.json["items"].as_array()) {
                    let ids = items.iter().filter_map(|s| s["snapshotId"].as_str()).map(str::to_owned);
                    self.model.project(index).snapshots = ids.collect();
                }
            }
            Op::Pin | Op::DeleteSnapshot | Op::Restore => {
                let known = self.model.project(index).snapshots.clone();
                if known.is_empty() {
                    return;
                }
                let snapshot = known[rng.usize(0..known.len())].clone();
                let path = format!("{base}/snapshots/{snapshot}");
                match op {
                    Op::Pin => {
                        let body = json!({"pinned": rng.bool()});
                        self.call(rng, index, "pin", Method::PATCH, &path, Some(body)).await;
                    }
                    Op::DeleteSnapshot => {
                        self.call(rng, index, "delete-snapshot", Method::DELETE, &path, None)
                            .await;
                    }
                    _ => {
                        let reply = self
                            .call(rng, index, "restore", Method::POST, &format!("{path}/restore"), None)
                            .await;
                        if let Some(reply) = reply {
                            invariants::restored_from(&self.fleet, &self.ledger, index, &snapshot, &reply).await;
                        }
                    }
                }
            }
            Op::Settings => self.settings(rng, index, true).await,
            Op::DeleteProject => {
                let reply = self
                    .call(rng, index, "delete-project", Method::DELETE, &base, None)
                    .await;
                if reply.is_some_and(|r| r.status == StatusCode::NO_CONTENT) {
                    let mut model = self.model.project(index);
                    model.registered = false;
                    model.snapshots.clear();
                }
            }
        }
    }

    /// Registers a project or changes its settings (a PUT replaces them).
    async fn settings(&self, rng: &mut fastrand::Rng, index: usize, change: bool) {
        let idle = [60, 120, 300, 600][rng.usize(0..4)];
        let body = json!({
            "templateId": "base",
            "idleTimeoutSeconds": idle,
            "snapshotOnIdle": rng.u32(0..4) == 0,
            "snapshotBeforeKill": rng.bool(),
            "retention": {"keepLast": rng.u32(1..5)},
        });
        let kind = if change { "settings" } else { "register" };
        let path = format!("/v1/projects/{}", Model::name(index));
        let sent = self.fleet.clock.now();
        let ticket = self.model.project(index).settings_sent();
        let reply = self.call(rng, index, kind, Method::PUT, &path, Some(body)).await;
        let answered = self.fleet.clock.now();
        self.model
            .project(index)
            .settings_answered(ticket, sent, answered, idle, reply.map(|r| r.status));
    }

    /// Ticks of one kind on a jittered timer, overlapping each other (a slow tick does not hold
    /// the next one back, as with EventBridge), but at most `MAX_TICKS_IN_FLIGHT` at once.
    pub async fn tick_actor(self: Arc<Self>, mut rng: fastrand::Rng, tick: Tick, every: Duration) {
        let mut running = JoinSet::new();
        while !self.stopping() {
            let jitter = rng.u64(0..=every.as_millis() as u64);
            tokio::time::sleep(every / 2 + Duration::from_millis(jitter / 2)).await;
            while running.try_join_next().is_some() {}
            if running.len() >= MAX_TICKS_IN_FLIGHT {
                continue;
            }
            let soak = self.clone();
            let mut tick_rng = rng.fork();
            running.spawn(async move { soak.tick(&mut tick_rng, tick, true).await });
        }
        while running.join_next().await.is_some() {}
    }

    /// The quiescence reconcile: on the first instance, never cut short.
    pub async fn tick_quietly(&self, rng: &mut fastrand::Rng, tick: Tick) {
        self.tick(rng, tick, false).await;
    }

    pub async fn tick(&self, rng: &mut fastrand::Rng, tick: Tick, abandonable: bool) {
        let function = match tick {
            Tick::Prune => sandman::secrets::Function::SnapshotPruner,
            Tick::Enforce | Tick::Reconcile => sandman::secrets::Function::IdleEnforcer,
        };
        let sandman = &self.fleet.jobs[rng.usize(0..self.fleet.jobs.len())].as_function(function);
        let started = std::time::Instant::now();
        let (name, outcome) = match tick {
            Tick::Enforce => {
                let run = sandman_idle_enforcer::run(sandman, &Value::Null);
                let done = chaos::invoke(rng, &self.ledger, "enforce", run, abandonable).await;
                ("tick enforce", done.map(|r| r.is_ok()))
            }
            Tick::Reconcile => {
                let input = json!({"task": "reconcile"});
                let watched = self.fleet.watch.begin();
                let run = sandman_idle_enforcer::run(sandman, &input);
                let done = chaos::invoke(rng, &self.ledger, "reconcile", run, abandonable).await;
                if let Some(Ok(answer)) = &done {
                    invariants::accounts_listed(&self.fleet, &self.ledger, &watched, answer);
                }
                ("tick reconcile", done.map(|r| r.is_ok()))
            }
            Tick::Prune => {
                let run = sandman_snapshot_pruner::tick(sandman, &Value::Null);
                let done = chaos::invoke(rng, &self.ledger, "prune", run, abandonable).await;
                ("tick prune", done.map(|r| r.is_ok()))
            }
        };
        let outcome = match outcome {
            None => "abandoned",
            Some(true) => "ok",
            Some(false) => "failed",
        };
        self.ledger.operation(name, outcome);
        self.ledger.timing(name, started.elapsed());
    }

    /// Emulated time runs far faster than real time: idle timeouts, leases and the stuck
    /// threshold all pass many times in a run.
    pub async fn clock_actor(self: Arc<Self>, mut rng: fastrand::Rng) {
        while !self.stopping() {
            tokio::time::sleep(Duration::from_millis(25)).await;
            self.fleet.advance(Duration::from_secs(rng.u64(1..5))).await;
        }
    }

    /// Stops and starts DynamoDB Local at `at` (from the start of the run), each time down for a
    /// seeded 0.5–3 s before the new process starts (which takes seconds more). A restart under way
    /// when the run stops is finished: the checks after the run need DynamoDB.
    pub async fn restart_actor(self: Arc<Self>, mut rng: fastrand::Rng, dynamo: Arc<DynamoLocal>, at: Vec<Duration>) {
        let started = tokio::time::Instant::now();
        for moment in at {
            while !self.stopping() && started.elapsed() < moment {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if self.stopping() {
                return;
            }
            let down = Duration::from_millis(rng.u64(500..3000));
            self.ledger.fault("dynamodb.restart");
            self.fleet.watch.restarting(true);
            match dynamo.restart(down).await {
                Ok(unreachable) => self.ledger.timing("dynamodb.restart", unreachable),
                Err(why) => self.ledger.violation(DYNAMODB_NOT_BACK, "", why),
            }
            self.fleet.watch.restarting(false);
        }
    }

    pub async fn chaos_actor(self: Arc<Self>, mut rng: fastrand::Rng, skip: Vec<String>) {
        while !self.stopping() {
            tokio::time::sleep(Duration::from_millis(rng.u64(300..1200))).await;
            chaos::step(&self.fleet, &mut rng, &self.ledger, &skip);
        }
        chaos::all_off(&self.fleet);
    }
}
