//! What to do with each idle candidate, pure: decided in two looks, so busy-aware projects cost one
//! E2B metrics call per 100 candidates (per team), read between the looks.
//!
//! A candidate came due either because it is idle or because its session-cap handoff is due: the
//! idle index's `idleAt` is the earlier of the two (activity writes it so), and the cause is
//! decided here. `idleAt` at or past the handoff deadline means the handoff came first: the
//! sandbox is active and is handed off. Otherwise it is idle: paused, unless its project is
//! busy-aware and E2B reports its CPU above the threshold (and deferrals have not run past their
//! bound), in which case the pause is deferred by one step.

use std::time::Duration;

use time::OffsetDateTime;

use super::Verdict;
use crate::domain::IdlePolicy;
use crate::ops::activity::handoff_deadline;
use crate::port::Port;
use crate::record::IdleCandidate;

/// One candidate's next step.
#[derive(Debug, Clone)]
pub enum Step {
    /// Decided without E2B: flagged, without a sandbox, or the index could not be read.
    Done(Verdict),
    /// Busy-aware: its CPU is read (a batch at a time), then [`after_cpu`] decides.
    CheckCpu(IdleCandidate),
    Pause {
        candidate: IdleCandidate,
        cause: String,
    },
    Defer {
        candidate: IdleCandidate,
        cpu: f64,
        idle_at: OffsetDateTime,
    },
    Handoff {
        candidate: IdleCandidate,
    },
}

impl Step {
    /// The team whose E2B account the step calls, if it calls one.
    pub fn team(&self) -> Option<&crate::domain::TeamId> {
        match self {
            Step::Done(_) => None,
            Step::CheckCpu(candidate)
            | Step::Pause { candidate, .. }
            | Step::Defer { candidate, .. }
            | Step::Handoff { candidate } => Some(&candidate.key.team),
        }
    }
}

/// The first look at a candidate, before any CPU is read.
pub fn first_look<P: Port>(port: &P, candidate: IdleCandidate, now: OffsetDateTime) -> Step {
    if candidate.failures >= port.rules().max_failures {
        tracing::warn!(project = %candidate.key, failures = candidate.failures, "flagged: not retrying the pause");
        return Step::Done(Verdict::Flagged);
    }
    if candidate.sandbox_id.is_none() {
        tracing::error!(project = %candidate.key, "running session without a sandbox id");
        return Step::Done(Verdict::NoSandbox);
    }
    let handoff_at = handoff_deadline(port, candidate.key.team.as_str(), candidate.running_since);
    if handoff_at.is_some_and(|at| at <= now && candidate.idle_at >= at) {
        Step::Handoff { candidate }
    } else if may_defer(&candidate, now) {
        Step::CheckCpu(candidate)
    } else {
        let cause = idle_cause(&candidate, now);
        Step::Pause { candidate, cause }
    }
}

/// A busy-aware candidate once its CPU was read (`None`: it could not be: the idle policy rules).
pub fn after_cpu<P: Port>(port: &P, candidate: IdleCandidate, cpu: Option<f64>, now: OffsetDateTime) -> Step {
    let threshold = f64::from(candidate.busy_cpu_percent.unwrap_or(100));
    match cpu {
        Some(used) if used > threshold => {
            let handoff_at = handoff_deadline(port, candidate.key.team.as_str(), candidate.running_since);
            if handoff_at.is_some_and(|at| at <= now) {
                // Busy past the handoff deadline: hand off rather than let the cap end it.
                return Step::Handoff { candidate };
            }
            let step = policy_of(&candidate).busy_deferral_step();
            let idle_at = handoff_at.map_or(now + step, |at| at.min(now + step));
            Step::Defer {
                candidate,
                cpu: used,
                idle_at,
            }
        }
        _ => {
            let cause = idle_cause(&candidate, now);
            Step::Pause { candidate, cause }
        }
    }
}

/// Busy-aware and still inside the deferral bound.
fn may_defer(candidate: &IdleCandidate, now: OffsetDateTime) -> bool {
    candidate.busy_cpu_percent.is_some()
        && candidate
            .busy_since
            .is_none_or(|since| now - since < candidate.max_busy_deferral)
}

/// `idle 10m`, and why busy deferrals stopped when they did.
fn idle_cause(candidate: &IdleCandidate, now: OffsetDateTime) -> String {
    let idle = format!("idle {}", short_duration(candidate.idle_timeout));
    match candidate.busy_since {
        Some(since) if candidate.busy_cpu_percent.is_some() && now - since >= candidate.max_busy_deferral => format!(
            "{idle}; busy for {} without activity (the bound)",
            short_duration(candidate.max_busy_deferral)
        ),
        _ => idle,
    }
}

fn policy_of(candidate: &IdleCandidate) -> IdlePolicy {
    IdlePolicy {
        idle_timeout: candidate.idle_timeout,
        ..IdlePolicy::default()
    }
}

/// `10m`, or `90s` when not a whole number of minutes: the cause written in the lifecycle log.
pub fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_the_idle_timeout() {
        assert_eq!(short_duration(Duration::from_secs(600)), "10m");
        assert_eq!(short_duration(Duration::from_secs(90)), "90s");
    }
}
