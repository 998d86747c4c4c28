//! What to do with each idle candidate, decided a batch at a time so busy-aware projects cost one
//! E2B metrics call per 100 candidates (per team), not one per candidate.
//!
//! A candidate came due either because it is idle or because its session-cap handoff is due: the
//! idle index's `idleAt` is the earlier of the two (activity writes it so), and the cause is
//! decided here. `idleAt` at or past the handoff deadline means the handoff came first: the
//! sandbox is active and is handed off. Otherwise it is idle: paused, unless its project is
//! busy-aware and E2B reports its CPU above the threshold (and deferrals have not run past their
//! bound), in which case the pause is deferred by one step.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::Sandman;
use crate::domain::IdlePolicy;
use crate::e2b::MAX_METRICS_BATCH;
use crate::store::{IdleCandidate, StoreError};

/// One candidate's next step.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Decided without E2B: flagged, without a sandbox, or the index could not be read.
    Done(super::Verdict),
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
    pub(super) fn team(&self) -> Option<&crate::domain::TeamId> {
        match self {
            Step::Done(_) => None,
            Step::Pause { candidate, .. } | Step::Defer { candidate, .. } | Step::Handoff { candidate } => {
                Some(&candidate.key.team)
            }
        }
    }
}

/// A batch's plan and the metrics calls it took.
pub(super) struct Plan {
    pub steps: Vec<Step>,
    pub metrics_calls: u64,
}

impl Sandman {
    pub(super) async fn plan(&self, batch: Vec<Result<IdleCandidate, StoreError>>, now: OffsetDateTime) -> Plan {
        let mut steps = Vec::with_capacity(batch.len());
        let mut busy_checks: Vec<IdleCandidate> = Vec::new();
        for candidate in batch {
            let candidate = match candidate {
                Ok(candidate) => candidate,
                Err(err) => {
                    tracing::error!(error = %err, "reading the idle index failed; the rest of this shard waits for the next tick");
                    steps.push(Step::Done(super::Verdict::ReadError));
                    continue;
                }
            };
            if candidate.failures >= self.config.enforcer.max_failures {
                tracing::warn!(project = %candidate.key, failures = candidate.failures, "flagged: not retrying the pause");
                steps.push(Step::Done(super::Verdict::Flagged));
                continue;
            }
            if candidate.sandbox_id.is_none() {
                tracing::error!(project = %candidate.key, "running session without a sandbox id");
                steps.push(Step::Done(super::Verdict::NoSandbox));
                continue;
            }
            let handoff_at = self.handoff_at(&candidate);
            if handoff_at.is_some_and(|at| at <= now && candidate.idle_at >= at) {
                steps.push(Step::Handoff { candidate });
            } else if self.may_defer(&candidate, now) {
                busy_checks.push(candidate);
            } else {
                let cause = idle_cause(&candidate, now);
                steps.push(Step::Pause { candidate, cause });
            }
        }
        let (cpu, metrics_calls) = self.read_cpu(&busy_checks).await;
        for candidate in busy_checks {
            let threshold = f64::from(candidate.busy_cpu_percent.unwrap_or(100));
            match cpu.get(candidate.sandbox_id.as_deref().unwrap_or_default()) {
                Some(&used) if used > threshold => {
                    let handoff_at = self.handoff_at(&candidate);
                    if handoff_at.is_some_and(|at| at <= now) {
                        // Busy past the handoff deadline: hand off rather than let the cap end it.
                        steps.push(Step::Handoff { candidate });
                        continue;
                    }
                    let step = policy_of(&candidate).busy_deferral_step();
                    let idle_at = handoff_at.map_or(now + step, |at| at.min(now + step));
                    steps.push(Step::Defer {
                        candidate,
                        cpu: used,
                        idle_at,
                    });
                }
                _ => {
                    let cause = idle_cause(&candidate, now);
                    steps.push(Step::Pause { candidate, cause });
                }
            }
        }
        Plan { steps, metrics_calls }
    }

    /// When the candidate's sandbox is handed off before E2B's cap, if its team has one.
    fn handoff_at(&self, candidate: &IdleCandidate) -> Option<OffsetDateTime> {
        self.handoff_deadline(candidate.key.team.as_str(), candidate.running_since)
    }

    /// Busy-aware and still inside the deferral bound.
    fn may_defer(&self, candidate: &IdleCandidate, now: OffsetDateTime) -> bool {
        candidate.busy_cpu_percent.is_some()
            && candidate
                .busy_since
                .is_none_or(|since| now - since < candidate.max_busy_deferral)
    }

    /// The latest CPU of each sandbox, one call per team per 100 ids. A team whose call fails is
    /// left out: its candidates are paused (a pause keeps memory, and the idle policy is the rule).
    async fn read_cpu(&self, candidates: &[IdleCandidate]) -> (HashMap<String, f64>, u64) {
        let mut by_team: HashMap<String, Vec<String>> = HashMap::new();
        for candidate in candidates {
            if let Some(id) = &candidate.sandbox_id {
                by_team
                    .entry(candidate.key.team.as_str().to_owned())
                    .or_default()
                    .push(id.clone());
            }
        }
        let mut cpu = HashMap::new();
        let mut calls = 0;
        for (team, ids) in by_team {
            let e2b = match self.e2b.for_team(&team) {
                Ok(e2b) => e2b,
                Err(err) => {
                    tracing::warn!(team, error = %err, "no E2B account to read metrics with");
                    continue;
                }
            };
            for batch in ids.chunks(MAX_METRICS_BATCH) {
                calls += 1;
                let ids: Vec<&str> = batch.iter().map(String::as_str).collect();
                match e2b.batch_cpu(&ids).await {
                    Ok(found) => cpu.extend(found),
                    Err(err) => {
                        tracing::warn!(team, error = %err, "metrics could not be read; pausing these idle sandboxes")
                    }
                }
            }
        }
        (cpu, calls)
    }
}

/// `idle 10m`, and why busy deferrals stopped when they did.
fn idle_cause(candidate: &IdleCandidate, now: OffsetDateTime) -> String {
    let idle = format!("idle {}", super::short_duration(candidate.idle_timeout));
    match candidate.busy_since {
        Some(since) if candidate.busy_cpu_percent.is_some() && now - since >= candidate.max_busy_deferral => format!(
            "{idle}; busy for {} without activity (the bound)",
            super::short_duration(candidate.max_busy_deferral)
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
