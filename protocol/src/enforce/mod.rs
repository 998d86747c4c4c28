//! The idle enforcer's rules for one candidate: what to do with it (`plan`), and doing it (pause,
//! defer while busy, or hand off before E2B's session cap). A tick (in `sandman::enforcer`) reads
//! the idle index, reads CPU for the busy-aware candidates in batches, and runs these.

mod handoff;
mod plan;

pub use handoff::{HANDOFF_CAUSE, hand_off};
pub use plan::{Step, after_cpu, first_look, short_duration};

use time::OffsetDateTime;

use crate::domain::Actor;
use crate::e2b::E2bError;
use crate::ops::pause::{PauseOutcome, PauseRequest, pause};
use crate::port::Port;
use crate::record::{IdleCandidate, IdleDeferral};

/// What happened to one candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
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

/// A verdict, and whether E2B refused the team's key or rate-limited it (its other candidates then
/// wait for the next tick).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acted {
    pub verdict: Verdict,
    pub bench_team: bool,
}

impl From<Verdict> for Acted {
    fn from(verdict: Verdict) -> Self {
        Acted {
            verdict,
            bench_team: false,
        }
    }
}

/// Pauses an idle candidate, claimed only while its idle deadline (as of `now`) still holds.
pub async fn pause_idle<P: Port>(port: &P, candidate: &IdleCandidate, cause: String, now: OffsetDateTime) -> Acted {
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
    match pause(port, request).await {
        Ok(PauseOutcome::Paused | PauseOutcome::AlreadyPaused) => Verdict::Paused {
            minutes_saved: minutes_until(now, candidate.timeout_at),
        }
        .into(),
        Ok(outcome) => pause_not_done(port, candidate, &sandbox_id, outcome),
        Err(err) => {
            // Not E2B's answer: the table could not be written (a claim that did not land
            // changed nothing; an outcome that did not land is repaired by the reconciler).
            tracing::error!(project = %candidate.key, sandbox_id, error = %err, "pause could not be recorded");
            Verdict::Failed { flagged: false }.into()
        }
    }
}

pub(crate) fn pause_not_done<P: Port>(
    port: &P,
    candidate: &IdleCandidate,
    sandbox_id: &str,
    outcome: PauseOutcome,
) -> Acted {
    match outcome {
        PauseOutcome::Paused | PauseOutcome::AlreadyPaused => Verdict::Paused { minutes_saved: 0.0 }.into(),
        PauseOutcome::LostRace => Verdict::SkippedActive.into(),
        PauseOutcome::Gone => Verdict::Gone.into(),
        PauseOutcome::Failed(err) => {
            let bench_team = matches!(err, E2bError::Unauthorized | E2bError::RateLimited { .. });
            if bench_team {
                tracing::warn!(team = %candidate.key.team, kind = err.kind(), "E2B refuses this team's calls: its other pauses wait for the next tick");
            }
            Acted {
                verdict: failed(port, candidate, sandbox_id, &err.to_string()),
                bench_team,
            }
        }
    }
}

/// Defers a busy candidate's pause to `idle_at`, only while the idle deadline it was read with holds.
pub async fn defer_busy<P: Port>(
    port: &P,
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
    match port.defer_idle(&deferral).await {
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

fn failed<P: Port>(port: &P, candidate: &IdleCandidate, sandbox_id: &str, error: &str) -> Verdict {
    let failures = candidate.failures + 1;
    let flagged = failures >= port.rules().max_failures;
    if flagged {
        tracing::error!(project = %candidate.key, sandbox_id, failures, error, "pause failed again: flagged, no more retries until it is paused by other means");
    } else {
        tracing::warn!(project = %candidate.key, sandbox_id, failures, error, "pause failed; retrying next tick");
    }
    Verdict::Failed { flagged }
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
    fn minutes_saved_never_go_negative() {
        let now = datetime!(2026-11-01 12:00 UTC);
        assert_eq!(minutes_until(now, Some(datetime!(2026-11-01 12:30 UTC))), 30.0);
        assert_eq!(minutes_until(now, Some(datetime!(2026-11-01 11:00 UTC))), 0.0);
        assert_eq!(minutes_until(now, None), 0.0);
    }
}
