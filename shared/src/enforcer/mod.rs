//! The idle enforcer: every tick, pause each RUNNING session whose idle deadline has passed.
//!
//! Candidates come from the idle index only (`idleAt <= now`, each project's own timeout already
//! folded into `idleAt`; the index also carries `snapshotOnIdle` and `failures`), page by page,
//! all shards interleaved. Each candidate goes through [`Sandman::pause`], whose claim is a
//! conditional write (still RUNNING, same version, still idle): a heartbeat or a concurrent tick
//! between the query and the claim wins, and nothing is sent to E2B.
//!
//! Before pausing, candidates are planned a batch (100) at a time (`plan.rs`): busy-aware projects'
//! sandboxes have their CPU read from E2B in one metrics call per batch and team, and a busy one is
//! deferred instead of paused; a session whose continuous run nears E2B's cap is handed off
//! (`handoff.rs`).
//!
//! Teams are independent: each team's sessions are paused with its own E2B key, and a team whose
//! key E2B refuses (401/403) or rate-limits (429) is benched for the rest of the tick: its other
//! candidates are deferred without a call, so its failures never use the tick's time or slots
//! that other teams' pauses need.
//!
//! At most `enforcer.concurrency` pauses are in flight. At `enforcer.tick_deadline` the tick stops
//! reading and claiming; pauses already claimed finish, so no session is left PAUSING by the
//! deadline. What was not reached is still idle at the next tick.

mod candidates;
mod plan;
mod report;

pub use report::TickReport;
pub use sandman_protocol::enforce::{HANDOFF_CAUSE, Verdict};

use futures::{StreamExt, stream};
use sandman_protocol::enforce::{Acted, Step, defer_busy, hand_off, pause_idle};
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;

use crate::Sandman;
use crate::domain::TeamId;
use crate::e2b::MAX_METRICS_BATCH;

impl Sandman {
    /// One enforcer tick. Never fails as a whole: problems are counted in the report and logged.
    pub async fn enforce_idle(&self) -> TickReport {
        let started = Instant::now();
        let deadline = self.claiming_until(self.config.enforcer.tick_deadline);
        let now = self.now();
        let span = tracing::info_span!("idle_tick", now = %now);
        async move {
            let concurrency = self.config.enforcer.concurrency.max(1);
            let benched = Benched::default();
            let benched = &benched;
            let mut report = self
                .idle_candidates_stream(now)
                .take_while(|_| std::future::ready(Instant::now() < deadline))
                .chunks(MAX_METRICS_BATCH)
                .then(|batch| {
                    // An owned handle: a future borrowing `self` here defeats the Send inference.
                    let sandman = self.clone();
                    async move { sandman.plan(batch, now).await }
                })
                .flat_map(|plan| {
                    let calls =
                        (plan.metrics_calls > 0).then_some(Step::Done(Verdict::MetricsCalls(plan.metrics_calls)));
                    stream::iter(calls.into_iter().chain(plan.steps))
                })
                .map(|step| self.act(step, now, deadline, benched))
                .buffer_unordered(concurrency)
                .fold(TickReport::default(), |mut report, verdict| {
                    report.record(verdict);
                    std::future::ready(report)
                })
                .await;
            report.deadline_reached = Instant::now() >= deadline;
            report.duration = started.elapsed();
            tracing::info!(
                candidates = report.candidates,
                paused = report.paused,
                busy_deferred = report.busy_deferred,
                handoffs = report.handoffs,
                metrics_calls = report.metrics_calls,
                skipped_active = report.skipped_active,
                failed = report.failed,
                flagged = report.flagged,
                gone = report.gone,
                deferred = report.deferred,
                deadline_reached = report.deadline_reached,
                duration_ms = report.duration.as_millis() as u64,
                "idle tick done"
            );
            report
        }
        .instrument(span)
        .await
    }

    async fn act(&self, step: Step, now: OffsetDateTime, deadline: Instant, benched: &Benched) -> Verdict {
        let team = step.team().cloned();
        let acted: Acted = match step {
            Step::Done(verdict) => return verdict,
            _ if Instant::now() >= deadline => return Verdict::Deferred,
            step if step.team().is_some_and(|team| benched.contains(team)) => return Verdict::Deferred,
            Step::Pause { candidate, cause } => {
                // Sandbox ids stay out of info-level lines: they address a sandbox.
                let span = tracing::info_span!("pause", project = %candidate.key);
                pause_idle(self, &candidate, cause, now).instrument(span).await
            }
            Step::Defer {
                candidate,
                cpu,
                idle_at,
            } => defer_busy(self, &candidate, cpu, idle_at, now).await.into(),
            Step::Handoff { candidate } => {
                let span = tracing::info_span!("handoff", project = %candidate.key);
                hand_off(self, &candidate, now).instrument(span).await
            }
            // The plan reads CPU before any step is acted on.
            Step::CheckCpu(_) => return Verdict::Failed { flagged: false },
        };
        if acted.bench_team
            && let Some(team) = &team
        {
            benched.insert(team);
        }
        acted.verdict
    }
}

/// Teams whose E2B account refused or rate-limited a call during this tick.
#[derive(Default)]
pub(super) struct Benched(std::sync::Mutex<std::collections::HashSet<TeamId>>);

impl Benched {
    fn insert(&self, team: &TeamId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(team.clone());
    }

    fn contains(&self, team: &TeamId) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(team)
    }
}
