//! The idle enforcer: every tick, pause each RUNNING session whose idle deadline has passed.
//!
//! Candidates come from the idle index only (`idleAt <= now`, each project's own timeout already
//! folded into `idleAt`; the index also carries `snapshotOnIdle` and `failures`), page by page,
//! all shards interleaved. Each candidate goes through [`Sandman::pause`], whose claim is a
//! conditional write (still RUNNING, same version, still idle): a heartbeat or a concurrent tick
//! between the query and the claim wins, and nothing is sent to E2B.
//!
//! At most `enforcer.concurrency` pauses are in flight. At `enforcer.tick_deadline` the tick stops
//! reading and claiming; pauses already claimed finish, so no session is left PAUSING by the
//! deadline. What was not reached is still idle at the next tick.
//!
//! Teams are independent: each team's sessions are paused with its own E2B key, and a team whose
//! key E2B refuses (401/403) or rate-limits (429) is benched for the rest of the tick: its other
//! candidates are deferred without a call, so its failures never use the tick's time or slots
//! that other teams' pauses need.

mod candidates;
mod report;

pub use report::TickReport;

use std::time::Duration;

use futures::StreamExt;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;

use crate::Sandman;
use crate::domain::{Actor, TeamId};
use crate::e2b::E2bError;
use crate::store::{IdleCandidate, StoreError};
use crate::workspace::{PauseOutcome, PauseRequest};

/// What happened to one candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
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
                .map(|candidate| self.consider(candidate, now, deadline, benched))
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

    async fn consider(
        &self,
        candidate: Result<IdleCandidate, StoreError>,
        now: OffsetDateTime,
        deadline: Instant,
        benched: &Benched,
    ) -> Verdict {
        let candidate = match candidate {
            Ok(candidate) => candidate,
            Err(err) => {
                tracing::error!(error = %err, "reading the idle index failed; the rest of this shard waits for the next tick");
                return Verdict::ReadError;
            }
        };
        let max_failures = self.config.enforcer.max_failures;
        if candidate.failures >= max_failures {
            tracing::warn!(project = %candidate.key, failures = candidate.failures, "flagged: not retrying the pause");
            return Verdict::Flagged;
        }
        let Some(sandbox_id) = candidate.sandbox_id.clone() else {
            tracing::error!(project = %candidate.key, "running session without a sandbox id");
            return Verdict::NoSandbox;
        };
        if Instant::now() >= deadline || benched.contains(&candidate.key.team) {
            return Verdict::Deferred;
        }
        let request = PauseRequest {
            key: candidate.key.clone(),
            expected_version: candidate.version,
            sandbox_id: sandbox_id.clone(),
            actor: Actor::IdleEnforcer,
            cause: format!("idle {}", short_duration(candidate.idle_timeout)),
            idle_by: Some(now),
            snapshot_first: candidate.snapshot_on_idle,
        };
        // Sandbox ids stay out of info-level lines: they address a sandbox.
        let span = tracing::info_span!("pause", project = %candidate.key);
        match self.pause(request).instrument(span).await {
            Ok(PauseOutcome::Paused | PauseOutcome::AlreadyPaused) => Verdict::Paused {
                minutes_saved: minutes_until(now, candidate.timeout_at),
            },
            Ok(PauseOutcome::LostRace) => Verdict::SkippedActive,
            Ok(PauseOutcome::Gone) => Verdict::Gone,
            Ok(PauseOutcome::Failed(err)) => {
                if matches!(err, E2bError::Unauthorized | E2bError::RateLimited { .. }) {
                    tracing::warn!(team = %candidate.key.team, kind = err.kind(), "E2B refuses this team's calls: its other pauses wait for the next tick");
                    benched.insert(&candidate.key.team);
                }
                self.failed(&candidate, &sandbox_id, &err.to_string())
            }
            Err(err) => {
                // Not E2B's answer: the table could not be written (a claim that did not land
                // changed nothing; an outcome that did not land is repaired by the reconciler).
                tracing::error!(project = %candidate.key, sandbox_id, error = %err, "pause could not be recorded");
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
struct Benched(std::sync::Mutex<std::collections::HashSet<TeamId>>);

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
