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
mod handoff;
mod plan;
mod report;

pub use report::TickReport;

use std::time::Duration;

use futures::{StreamExt, stream};
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;

use crate::Sandman;
use crate::domain::{Actor, TeamId};
use crate::e2b::{E2bError, MAX_METRICS_BATCH};
use crate::store::{IdleCandidate, IdleDeferral};
use crate::workspace::{PauseOutcome, PauseRequest};

/// What happened to one candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Paused (or found paused); the minutes E2B would have kept it running otherwise.
    Paused {
        minutes_saved: f64,
    },
    SkippedActive,
    Gone,
    /// The pause failed; `flagged` when this failure reached the limit.
    Failed {
        flagged: bool,
    },
    /// Over the failure limit: not retried.
    Flagged,
    /// Not claimed: the tick's deadline came first.
    Deferred,
    /// A RUNNING session without a sandbox id: nothing to pause.
    NoSandbox,
    /// The idle index could not be read (a shard's remaining pages are skipped).
    ReadError,
    /// Busy-aware idle: CPU above the project's threshold, the pause moved one step later.
    BusyDeferred,
    /// Active at the session cap: paused and resumed (or snapshotted and reopened).
    HandedOff,
    /// Not a candidate: E2B metrics calls made for a batch.
    MetricsCalls(u64),
}

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
                        (plan.metrics_calls > 0).then_some(plan::Step::Done(Verdict::MetricsCalls(plan.metrics_calls)));
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

    async fn act(&self, step: plan::Step, now: OffsetDateTime, deadline: Instant, benched: &Benched) -> Verdict {
        match step {
            plan::Step::Done(verdict) => verdict,
            _ if Instant::now() >= deadline => Verdict::Deferred,
            step if step.team().is_some_and(|team| benched.contains(team)) => Verdict::Deferred,
            plan::Step::Pause { candidate, cause } => self.pause_idle(&candidate, cause, now, benched).await,
            plan::Step::Defer {
                candidate,
                cpu,
                idle_at,
            } => self.defer_busy(&candidate, cpu, idle_at, now).await,
            plan::Step::Handoff { candidate } => self.hand_off(&candidate, now, benched).await,
        }
    }

    async fn pause_idle(
        &self,
        candidate: &IdleCandidate,
        cause: String,
        now: OffsetDateTime,
        benched: &Benched,
    ) -> Verdict {
        let sandbox_id = candidate.sandbox_id.clone().unwrap_or_default();
        let request = PauseRequest {
            key: candidate.key.clone(),
            expected_version: candidate.version,
            sandbox_id: sandbox_id.clone(),
            actor: Actor::IdleEnforcer,
            cause,
            idle_by: Some(now),
            snapshot_first: candidate.snapshot_on_idle,
        };
        // Sandbox ids stay out of info-level lines: they address a sandbox.
        let span = tracing::info_span!("pause", project = %candidate.key);
        match self.pause(request).instrument(span).await {
            Ok(PauseOutcome::Paused | PauseOutcome::AlreadyPaused) => Verdict::Paused {
                minutes_saved: minutes_until(now, candidate.timeout_at),
            },
            Ok(outcome) => self.pause_not_done(candidate, &sandbox_id, outcome, benched),
            Err(err) => {
                // Not E2B's answer: the table could not be written (a claim that did not land
                // changed nothing; an outcome that did not land is repaired by the reconciler).
                tracing::error!(project = %candidate.key, sandbox_id, error = %err, "pause could not be recorded");
                Verdict::Failed { flagged: false }
            }
        }
    }

    fn pause_not_done(
        &self,
        candidate: &IdleCandidate,
        sandbox_id: &str,
        outcome: PauseOutcome,
        benched: &Benched,
    ) -> Verdict {
        match outcome {
            PauseOutcome::Paused | PauseOutcome::AlreadyPaused => Verdict::Paused { minutes_saved: 0.0 },
            PauseOutcome::LostRace => Verdict::SkippedActive,
            PauseOutcome::Gone => Verdict::Gone,
            PauseOutcome::Failed(err) => {
                if matches!(err, E2bError::Unauthorized | E2bError::RateLimited { .. }) {
                    tracing::warn!(team = %candidate.key.team, kind = err.kind(), "E2B refuses this team's calls: its other pauses wait for the next tick");
                    benched.insert(&candidate.key.team);
                }
                self.failed(candidate, sandbox_id, &err.to_string())
            }
        }
    }

    async fn defer_busy(
        &self,
        candidate: &IdleCandidate,
        cpu: f64,
        idle_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Verdict {
        let deferral = IdleDeferral {
            key: candidate.key.clone(),
            expected_version: candidate.version,
            read_idle_at: candidate.idle_at,
            idle_at,
            at: now,
            cause: format!("deferred: busy (cpu {cpu:.0}%)"),
        };
        match self.store.defer_idle(&deferral).await {
            Ok(true) => {
                tracing::info!(project = %candidate.key, cpu, "idle pause deferred: busy");
                Verdict::BusyDeferred
            }
            Ok(false) => Verdict::SkippedActive,
            Err(err) => {
                tracing::error!(project = %candidate.key, error = %err, "busy deferral could not be recorded");
                Verdict::Failed { flagged: false }
            }
        }
    }

    fn failed(&self, candidate: &IdleCandidate, sandbox_id: &str, error: &str) -> Verdict {
        let failures = candidate.failures + 1;
        let flagged = failures >= self.config.enforcer.max_failures;
        if flagged {
            tracing::error!(project = %candidate.key, sandbox_id, failures, error, "pause failed again: flagged, no more retries until it is paused by other means");
        } else {
            tracing::warn!(project = %candidate.key, sandbox_id, failures, error, "pause failed; retrying next tick");
        }
        Verdict::Failed { flagged }
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

/// `10m`, or `90s` when not a whole number of minutes: the cause written in the lifecycle log.
fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// How long E2B would have kept billing the sandbox before its own timeout.
fn minutes_until(now: OffsetDateTime, timeout_at: Option<OffsetDateTime>) -> f64 {
    timeout_at.map_or(0.0, |at| ((at - now).as_seconds_f64() / 60.0).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn causes_name_the_idle_timeout() {
        assert_eq!(short_duration(Duration::from_secs(600)), "10m");
        assert_eq!(short_duration(Duration::from_secs(90)), "90s");
    }

    #[test]
    fn minutes_saved_never_go_negative() {
        let now = datetime!(2026-11-01 12:00 UTC);
        assert_eq!(minutes_until(now, Some(datetime!(2026-11-01 12:30 UTC))), 30.0);
        assert_eq!(minutes_until(now, Some(datetime!(2026-11-01 11:00 UTC))), 0.0);
        assert_eq!(minutes_until(now, None), 0.0);
    }
}
