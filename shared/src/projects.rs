//! Removing a project: its sandbox (and any other E2B still runs for it), every snapshot (pinned ones too: the project is going away),
//! then the project item. Its lifecycle log expires by TTL.

use std::collections::BTreeMap;

use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionState, SnapshotStatus};
use crate::e2b::{E2bError, SandboxFilter, SandboxState};
use crate::error::Error;
use crate::sandbox_metadata;

impl Sandman {
    /// A failure part-way leaves the project in place, so deleting it again finishes the job.
    pub async fn delete_project(&self, key: &ProjectKey) -> Result<(), Error> {
        self.project(key).await?;
        self.kill(key, crate::workspace::SnapshotFirst::Skip, Actor::User)
            .await?;
        self.kill_strays(key).await?;
        for snapshot in self.store.all_snapshots(key).await? {
            let deleted = match snapshot.status {
                SnapshotStatus::Deleting => self.finish_delete(key, &snapshot).await,
                // Completed (then deleted) if E2B took it, removed if not.
                SnapshotStatus::Pending => match self.finish_pending(key, &snapshot).await {
                    Ok(()) => self.delete_snapshot(key, &snapshot.snapshot_id).await,
                    Err(err) => Err(err),
                },
                SnapshotStatus::Ready => {
                    if snapshot.pinned {
                        self.set_pinned(key, &snapshot.snapshot_id, false).await?;
                    }
                    self.delete_snapshot(key, &snapshot.snapshot_id).await
                }
            };
            match deleted {
                // The pruner got there first.
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        // An open racing this deletion would leave a sandbox no project accounts for.
        if self
            .project(key)
            .await?
            .state()
            .is_some_and(|state| state != SessionState::Killed)
        {
            return Err(Error::Conflict(
                "the sandbox was reopened while the project was being deleted; try again".into(),
            ));
        }
        self.store.delete_project(key).await?;
        tracing::info!(project = %key, "project deleted");
        Ok(())
    }

    /// Kills every sandbox E2B still has for the project besides the current one: one left by a
    /// create that took effect after its invocation was cut would outlive the project and keep
    /// E2B from deleting the snapshot it was made from.
    async fn kill_strays(&self, key: &ProjectKey) -> Result<(), Error> {
        let e2b = self.e2b_for(key).await?;
        let filter = SandboxFilter {
            states: vec![SandboxState::Running, SandboxState::Paused],
            metadata: BTreeMap::from([
                (sandbox_metadata::TEAM.to_owned(), key.team.to_string()),
                (sandbox_metadata::PROJECT.to_owned(), key.project.to_string()),
            ]),
        };
        for stray in e2b.list_sandboxes(&filter).await? {
            // A live fork's sandbox carries this project's metadata but is its fork's.
            if let Some(holder) = self.store.find_by_sandbox(&stray.sandbox_id).await?
                && holder.project.key() != *key
                && holder.project.team_id == key.team
            {
                continue;
            }
            tracing::warn!(project = %key, sandbox = %stray.sandbox_id, "a sandbox of a project being deleted; killing it");
            match e2b.kill(&stray.sandbox_id).await {
                Ok(()) | Err(E2bError::NotFound) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }
}
