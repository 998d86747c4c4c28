//! Removing a project: its sandbox, every snapshot (pinned ones too: the project is going away),
//! then the project item. Its lifecycle log expires by TTL.

use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionState, SnapshotStatus};
use crate::error::Error;

impl Sandman {
    /// A failure part-way leaves the project in place, so deleting it again finishes the job.
    pub async fn delete_project(&self, key: &ProjectKey) -> Result<(), Error> {
        self.project(key).await?;
        self.kill(key, crate::workspace::SnapshotFirst::Skip, Actor::User)
            .await?;
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
}
