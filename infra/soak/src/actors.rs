//! The actors: users calling the API (on a random instance each time), the scheduled functions
//! ticking on overlapping timers, the clock, bursts of opens, and chaos. All stop together. Every
//! answer goes to the transcript, judged after the run against E2B's own record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::chaos::{self, Weather};
use crate::fleet::{Fleet, Job, Reply};
use crate::ledger::Ledger;
use crate::model::Model;
use crate::outbound::Receiver;
use crate::restarts::DynamoLocal;
use crate::transcript::{Answer, Transcript};

pub struct Soak {
    pub fleet: Fleet,
    pub ledger: Arc<Ledger>,
    pub model: Model,
    pub transcript: Transcript,
    pub receiver: Receiver,
    stop: AtomicBool,
    ops_left: AtomicI64,
    /// The reconciler instances free now (each reconcile tick has one to itself).
    reconcilers: Slots,
    /// The reconcile ticks that completed, for the judge of E2B's listings.
    pub ticks: crate::judge::listings::Ticks,
}

const MAX_TICKS_IN_FLIGHT: usize = 2;

/// Which of a function's instances are free.
struct Slots(std::sync::Mutex<Vec<usize>>);

impl Slots {
    fn new(instances: usize) -> Slots {
        Slots(std::sync::Mutex::new((0..instances).collect()))
    }

    fn take(&self) -> Option<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    fn put_back(&self, slot: usize) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(0, slot);
    }
}

/// Who makes the call: a member of the project's team, or one of its admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Member,
    Admin,
}

impl Soak {
    pub fn new(fleet: Fleet, ledger: Arc<Ledger>, receiver: Receiver, projects: usize, operations: u64) -> Soak {
        let instances = fleet.instances;
        Soak {
            fleet,
            ledger,
            model: Model::new(projects),
            transcript: Transcript::default(),
            receiver,
            stop: AtomicBool::new(false),
            ops_left: AtomicI64::new(i64::try_from(operations).unwrap_or(i64::MAX)),
            reconcilers: Slots::new(instances),
            ticks: Default::default(),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Registers every regular project before the actors start, so most operations find one.
    pub async fn register_all(&self, rng: &mut fastrand::Rng) {
        use futures::StreamExt;
        let rngs: Vec<_> = (0..self.model.regular).map(|_| rng.fork()).collect();
        futures::stream::iter(rngs.into_iter().enumerate())
            .for_each_concurrent(16, |(index, mut rng)| async move {
                self.settings(&mut rng, index, false).await
            })
            .await;
    }

    /// One API call as a caller of `account`'s team, about the soak's project `index` if any; the
    /// answer (or that it was given up on) goes to the transcript.
    #[allow(clippy::too_many_arguments)]
    pub async fn call_as(
        &self,
        rng: &mut fastrand::Rng,
        account: usize,
        who: As,
        op: &'static str,
        index: Option<usize>,
        method: Method,
        path: &str,
        body: Option<Value>,
        detail: String,
    ) -> Option<Reply> {
        let instance = rng.usize(0..self.fleet.apis.len());
        let answer = self
            .fleet
            .api_with(account, who == As::Admin, instance, method, path, body);
        let (sent, e2b_sent) = (Instant::now(), self.fleet.e2b_now());
        let reply = chaos::invoke(rng, &self.ledger, "api", answer, true).await;
        let (answered, e2b_answered) = (Instant::now(), self.fleet.e2b_now());
        self.ledger.timing(op, answered - sent);
        let outcome = match &reply {
            None => "abandoned".to_owned(),
            Some(reply) => {
                let detail = [
                    &reply.json["path"],
                    &reply.json["outcome"],
                    &reply.json["error"]["code"],
                ]
                .into_iter()
                .find_map(Value::as_str)
                .unwrap_or("");
                format!("{} {detail}", reply.status.as_u16())
            }
        };
        self.ledger.operation(op, &outcome);
        self.transcript.push(Answer {
            op,
            index,
            path: path.to_owned(),
            sent,
            answered,
            e2b_sent,
            e2b_answered,
            status: reply.as_ref().map(|r| r.status),
            json: reply.as_ref().map_or(Value::Null, |r| r.json.clone()),
            detail,
        });
        // Told to try again later, a client waits a little (as the API's clients do).
        if reply.as_ref().is_some_and(|r| matches!(r.status.as_u16(), 429 | 503)) {
            tokio::time::sleep(Duration::from_millis(rng.u64(200..600))).await;
        }
        reply
    }

    /// One API call about the soak's project `index`, as a member of its team.
    pub async fn call(
        &self,
        rng: &mut fastrand::Rng,
        index: usize,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Reply> {
        let account = self.fleet.account_of(index);
        self.call_as(
            rng,
            account,
            As::Member,
            op,
            Some(index),
            method,
            path,
            body,
            String::new(),
        )
        .await
    }

    /// One caller. Its schedule (which project, which operation, and the seed of everything the
    /// operation draws) comes from `schedule` alone, so a seed replays the same schedule per
    /// caller whatever the answers; what varies is how the callers interleave with each other, with
    /// the ticks and the faults, and so what each operation finds.
    ///
    /// A caller works on one project for a while (three times in four it stays on the last one),
    /// as a user in a session does: it opens it, keeps it alive, snapshots and restores it.
    pub async fn api_worker(self: Arc<Self>, mut schedule: fastrand::Rng) {
        let mut index = schedule.usize(0..self.model.workable());
        while !self.stopping() {
            if self.ops_left.fetch_sub(1, Ordering::Relaxed) <= 0 {
                self.stop();
                return;
            }
            let (stay, other) = (schedule.u32(0..4) != 0, schedule.usize(0..self.model.workable()));
            if !stay {
                index = other;
            }
            let op = crate::ops::pick(&mut schedule);
            let mut rng = fastrand::Rng::with_seed(schedule.u64(..));
            if !self.model.project(index).registered {
                // A fork slot is filled by a fork only; a regular project deleted is registered again.
                if !self.model.is_fork_slot(index) {
                    self.settings(&mut rng, index, false).await;
                }
                continue;
            }
            self.operate(&mut rng, index, op).await;
        }
    }

    /// Ticks of one kind on a jittered timer, overlapping each other (a slow tick does not hold
    /// the next one back, as with EventBridge), but at most `MAX_TICKS_IN_FLIGHT` at once.
    pub async fn tick_actor(self: Arc<Self>, mut rng: fastrand::Rng, job: Job, every: Duration) {
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
            running.spawn(async move { soak.tick(&mut tick_rng, job, true).await });
        }
        while running.join_next().await.is_some() {}
    }

    /// One tick of `job` on a random instance of it; its answer (`None`: cut at its deadline).
    pub async fn tick(&self, rng: &mut fastrand::Rng, job: Job, abandonable: bool) -> Option<Result<Value, String>> {
        let instances = self.fleet.jobs_for(job);
        let sandman = &instances[rng.usize(0..instances.len())];
        let started = Instant::now();
        let done = match job {
            Job::Enforce => {
                let run = sandman_idle_enforcer::run(sandman, &Value::Null);
                chaos::invoke(rng, &self.ledger, "enforce", run, abandonable)
                    .await
                    .map(|r| r.map_err(|e| e.to_string()))
            }
            Job::Reconcile => {
                // An instance no other reconcile uses now: E2B's call log tells its calls apart.
                let Some(slot) = self.reconcilers.take() else {
                    self.ledger.operation("tick reconcile", "skipped (every instance busy)");
                    return None;
                };
                let sandman = &self.fleet.jobs_for(Job::Reconcile)[slot];
                let input = json!({"task": "reconcile"});
                let watched = self.fleet.watch.begin();
                let e2b_began = self.fleet.e2b_now();
                let run = sandman_idle_enforcer::run(sandman, &input);
                let done = chaos::invoke(rng, &self.ledger, "reconcile", run, abandonable).await;
                let ended = self.fleet.e2b_now();
                self.reconcilers.put_back(slot);
                if let Some(Ok(_)) = &done {
                    let tick = crate::judge::listings::ReconcileTick {
                        floor: self.fleet.watch.floor(&watched, self.fleet.accounts.len()),
                        caller: format!("{}-{slot}", Job::Reconcile.caller()),
                        began: e2b_began,
                        ended,
                    };
                    crate::judge::listings::record(self, tick);
                }
                done.map(|r| r.map_err(|e| e.to_string()))
            }
            Job::Prune => {
                let run = sandman_snapshot_pruner::tick(sandman, &Value::Null);
                chaos::invoke(rng, &self.ledger, "prune", run, abandonable)
                    .await
                    .map(|r| {
                        r.map(|report| serde_json::to_value(report).unwrap_or_default())
                            .map_err(|e| e.to_string())
                    })
            }
        };
        let outcome = match &done {
            None => "abandoned",
            Some(Ok(_)) => "ok",
            Some(Err(_)) => "failed",
        };
        let name = format!("tick {}", job.caller());
        self.ledger.operation(&name, outcome);
        self.ledger.timing(&name, started.elapsed());
        done
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
            self.fleet.timeline.begin("dynamodb.restart");
            match dynamo.restart(down).await {
                Ok(unreachable) => {
                    self.ledger.timing("dynamodb.restart", unreachable);
                    self.ledger.restarted();
                }
                Err(why) => self.ledger.violation(crate::judge::DYNAMODB_RESTARTED, "", why),
            }
            self.fleet.timeline.end("dynamodb.restart");
            self.fleet.watch.restarting(false);
        }
    }

    /// Storms of bursts (see [`chaos::step`]) and calm stretches, in turn.
    pub async fn chaos_actor(self: Arc<Self>, mut rng: fastrand::Rng, skip: Vec<String>) {
        let mut weather = Weather::Storm(rng.u32(2..6));
        while !self.stopping() {
            tokio::time::sleep(Duration::from_millis(rng.u64(300..1200))).await;
            let (next, turned_calm) = weather.next(&mut rng);
            weather = next;
            match weather {
                Weather::Storm(_) => chaos::step(&self.fleet, &mut rng, &self.ledger, &skip),
                Weather::Calm(_) => chaos::calm(&self.fleet, turned_calm),
            }
        }
        chaos::all_off(&self.fleet);
    }

    /// `BURSTS` times in the run: one team registers `BURST` fresh projects and opens them all
    /// at once (the live-sandbox quota must hold, however they race).
    pub async fn burst_actor(self: Arc<Self>, mut rng: fastrand::Rng, run_for: Duration) {
        let started = tokio::time::Instant::now();
        for round in 0..crate::model::BURSTS {
            let at = run_for.mul_f64((round as f64 + 0.5) / crate::model::BURSTS as f64 * 0.8);
            while !self.stopping() && started.elapsed() < at {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if self.stopping() {
                return;
            }
            self.burst(&mut rng, round).await;
        }
    }
}
