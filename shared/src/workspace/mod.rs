//! A project's workspace: open it (get-or-create), keep it alive, pause, resume, restore, kill,
//! fork, delete, and read its status. The rules are the protocol's (`sandman_protocol::ops`); each
//! method here runs one operation with this `Sandman` as its port, within the caller's deadline.
//!
//! # Layout
//! - `mod.rs`: the operations, one protocol call each.
//! - `activity.rs`: the per-instance heartbeat memory (`ActivityThrottle`).
//! - `status.rs`: the status read a frontend polls (one read, no E2B).

mod activity;
mod status;

pub use activity::ActivityThrottle;
pub use sandman_protocol::ops::activity::Activity;
pub use sandman_protocol::ops::kill::{Killed, SnapshotFirst};
pub use sandman_protocol::ops::open::{OpenPath, Opened};
pub use sandman_protocol::ops::pause::{PauseOutcome, PauseRequest, UserPause};
pub use status::{Status, poll_after};

use std::time::Duration;

use sandman_protocol::ops;

use crate::Sandman;
use crate::deadline::{Deadline, MIN_E2B_CALL};
use crate::domain::{Actor, ProjectId, ProjectKey, SnapshotId};
use crate::e2b::E2b;
use crate::error::Error;
use crate::fork::ForkFrom;
use crate::store::ProjectRecord;

impl Sandman {
    /// The E2B account of the project's team.
    pub async fn e2b_for(&self, key: &ProjectKey) -> Result<E2b, Error> {
        self.e2b_for_team(&key.team).await
    }

    /// The project as it is now, read strongly: for decisions that lead to writes.
    pub async fn project(&self, key: &ProjectKey) -> Result<ProjectRecord, Error> {
        ops::project(self, key).await
    }

    /// Get-or-create, within the caller's deadline and within one claim lease. When the time runs
    /// out mid-way the claim is left to its lease and the answer is `InProgress`: poll the status.
    pub async fn open(&self, key: &ProjectKey, actor: Actor) -> Result<Opened, Error> {
        match ops::open::open(self, key, actor).await {
            Err(Error::E2b(err)) if !Deadline::current_allows(MIN_E2B_CALL) || err.was_not_sent() => {
                tracing::warn!(project = %key, error = %err, "open ran out of time; the claim's lease settles it");
                Ok(Opened {
                    path: OpenPath::InProgress,
                    record: self.project(key).await?,
                    restored_from: None,
                    fallback_reason: None,
                })
            }
            other => other,
        }
    }

    /// Resumes a paused sandbox (user's resume, or activity on a paused sandbox).
    pub async fn resume(&self, key: &ProjectKey, actor: Actor) -> Result<Opened, Error> {
        self.resume_because(key, actor, "resume requested").await
    }

    /// [`Sandman::resume`] with the cause its claim writes in the lifecycle log.
    pub async fn resume_because(&self, key: &ProjectKey, actor: Actor, cause: &str) -> Result<Opened, Error> {
        ops::open::resume(self, key, actor, cause).await
    }

    /// Replaces the project's sandbox with one restored from `snapshot`: it runs from that
    /// snapshot or fails, nothing stands in. Within one claim lease.
    pub async fn restore(&self, key: &ProjectKey, snapshot: &SnapshotId, actor: Actor) -> Result<Opened, Error> {
        ops::restore::restore(self, key, snapshot, actor).await
    }

    pub async fn pause(&self, request: PauseRequest) -> Result<PauseOutcome, Error> {
        ops::pause::pause(self, request).await
    }

    /// A user's pause: see [`sandman_protocol::ops::pause::pause_by_user`].
    pub async fn pause_by_user(&self, key: &ProjectKey) -> Result<UserPause, Error> {
        ops::pause::pause_by_user(self, key).await
    }

    pub async fn kill(
        &self,
        key: &ProjectKey,
        snapshot: impl Into<SnapshotFirst>,
        actor: Actor,
    ) -> Result<Killed, Error> {
        ops::kill::kill(self, key, snapshot.into(), actor, None).await
    }

    /// As `kill`; `reason` (a policy's) names the kill in the lifecycle log.
    pub async fn kill_because(
        &self,
        key: &ProjectKey,
        snapshot: impl Into<SnapshotFirst>,
        actor: Actor,
        reason: Option<&str>,
    ) -> Result<Killed, Error> {
        ops::kill::kill(self, key, snapshot.into(), actor, reason).await
    }

    /// A heartbeat: see [`sandman_protocol::ops::activity::activity`].
    pub async fn activity(&self, key: &ProjectKey) -> Result<Activity, Error> {
        ops::activity::activity(self, key, None).await
    }

    /// Activity that also holds the sandbox awake for `busy_for`.
    pub async fn activity_busy(&self, key: &ProjectKey, busy_for: Option<Duration>) -> Result<Activity, Error> {
        ops::activity::activity(self, key, busy_for).await
    }

    pub async fn fork(&self, source: &ProjectKey, project: ProjectId, from: ForkFrom) -> Result<ProjectRecord, Error> {
        let record = ops::fork::fork(self, source, project, from).await?;
        self.copy_settings_to_fork(source, &record.project.key()).await?;
        Ok(record)
    }

    /// Removes a project: its sandbox and every snapshot. A failure part-way leaves the project in
    /// place, so deleting it again finishes the job.
    pub async fn delete_project(&self, key: &ProjectKey) -> Result<(), Error> {
        ops::delete::delete_project(self, key).await?;
        self.forget_settings(key).await?;
        tracing::info!(project = %key, "project deleted");
        Ok(())
    }

    /// How often a heartbeat on `project` is written: its idle policy's interval, within the
    /// deployment's bound.
    pub fn heartbeat_interval(&self, project: &crate::domain::Project) -> Duration {
        ops::activity::heartbeat_interval(self, project)
    }

    /// When a run that began at `running_since` is handed off before `team`'s session cap.
    pub fn handoff_deadline(
        &self,
        team: &str,
        running_since: Option<time::OffsetDateTime>,
    ) -> Option<time::OffsetDateTime> {
        ops::activity::handoff_deadline(self, team, running_since)
    }
}
