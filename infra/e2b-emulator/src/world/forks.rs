//! Forks: a running sandbox checkpointed in place (it keeps its id and expiry and runs on), and
//! new sandboxes started from that full-memory checkpoint.
//!
//! A fork is a copy: the source's template, resources, lifecycle, environment, files (the
//! stand-in for its filesystem and memory) and its **metadata**, which the fork request cannot
//! set. Each fork is announced with a `created` event, as a create is.

use time::OffsetDateTime;

use super::World;
use crate::clock;
use crate::error::ApiError;
use crate::events::{EventDetail, EventType};
use crate::ids;
use crate::sandbox::{SandboxState, SandboxView, Transition};

impl World {
    /// Checks the request, then holds the running source mid-transition (a pause, snapshot or
    /// another fork meanwhile gets 409) while its checkpoint is taken.
    pub(crate) fn begin_fork(
        &mut self,
        team: &str,
        id: &str,
        timeout_secs: i64,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        self.check_timeout(timeout_secs)?;
        self.begin(team, id, Transition::Forking, now)
    }

    /// Ends a fork begun with [`World::begin_fork`]: starts `count` sandboxes from the checkpoint
    /// and lets the source run on. A kill of the source in between wins (404, nothing forked).
    pub(crate) fn finish_fork(
        &mut self,
        team: &str,
        id: &str,
        count: u32,
        timeout_secs: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<SandboxView>, ApiError> {
        let timeout = self.check_timeout(timeout_secs)?;
        let source = self.live(team, id)?.clone();
        if source.transition != Some(Transition::Forking) {
            return Err(ApiError::Conflict(format!("Sandbox \"{id}\" is no longer forking")));
        }
        if let Some(sandbox) = self.sandboxes.get_mut(id) {
            sandbox.transition = None;
        }
        self.reschedule(id);
        let mut forks = Vec::new();
        for _ in 0..count {
            let fork_id = ids::sandbox_id();
            let fork = SandboxView {
                sandbox_id: fork_id.clone(),
                state: SandboxState::Running,
                transition: None,
                envd_access_token: ids::access_token(),
                execution_id: ids::uuid(),
                created_at: now,
                started_at: now,
                end_at: clock::add(now, timeout),
                paused_at: None,
                killed_at: None,
                kill_reason: None,
                forked_from: Some(id.to_owned()),
                history: vec![crate::sandbox::StateChange {
                    at: now,
                    state: SandboxState::Running,
                }],
                ..source.clone()
            };
            if let Some(snapshot) = &source.from_snapshot {
                self.snapshot_children
                    .entry(snapshot.clone())
                    .or_default()
                    .insert(fork_id.clone());
            }
            self.live_by_team
                .entry(team.to_owned())
                .or_default()
                .insert(fork_id.clone());
            self.sandboxes.insert(fork_id.clone(), fork.clone());
            self.emit(EventType::Created, &fork_id, now, EventDetail::default());
            self.reschedule(&fork_id);
            forks.push(fork);
        }
        Ok(forks)
    }
}
