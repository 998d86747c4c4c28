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

use sandman_protocol::enforce::{Step, after_cpu, first_look};
use time::OffsetDateTime;

use crate::Sandman;
use crate::domain::TeamId;
use crate::e2b::MAX_METRICS_BATCH;
use crate::store::{IdleCandidate, StoreError};

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
            match first_look(self, candidate, now) {
                Step::CheckCpu(candidate) => busy_checks.push(candidate),
                step => steps.push(step),
            }
        }
        let (cpu, metrics_calls) = self.read_cpu(&busy_checks).await;
        for candidate in busy_checks {
            let used = cpu.get(candidate.sandbox_id.as_deref().unwrap_or_default()).copied();
            steps.push(after_cpu(self, candidate, used, now));
        }
        Plan { steps, metrics_calls }
    }

    /// The latest CPU of each sandbox, one call per team per 100 ids. A team whose call fails is
    /// left out: its candidates are paused (a pause keeps memory, and the idle policy is the rule).
    async fn read_cpu(&self, candidates: &[IdleCandidate]) -> (HashMap<String, f64>, u64) {
        let mut by_team: HashMap<TeamId, Vec<String>> = HashMap::new();
        for candidate in candidates {
            if let Some(id) = &candidate.sandbox_id {
                by_team.entry(candidate.key.team.clone()).or_default().push(id.clone());
            }
        }
        let mut cpu = HashMap::new();
        let mut calls = 0;
        for (team_id, ids) in by_team {
            let team = team_id.as_str();
            // The team's own account (a registered key first): its sandboxes are there.
            let e2b = match self.e2b_for_team(&team_id).await {
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
