//! Removing a project: its sandbox (and any other E2B still runs for it), every snapshot (pinned ones too: the project is going away),
//! then the project item. Its lifecycle log expires by TTL.

use std::collections::BTreeMap;

use super::kill::{SnapshotFirst, kill};
use super::project;
use super::snapshot::{delete_snapshot, finish_delete, finish_pending, set_pinned};
use crate::domain::{Actor, ProjectKey, SessionState, SnapshotStatus, metadata};
use crate::e2b::{E2bError, SandboxFilter, SandboxState};
use crate::error::{Error, StoreError};
use crate::port::Port;

/// A failure part-way leaves the project in place, so deleting it again finishes the job.
pub async fn delete_project<P: Port>(port: &P, key: &ProjectKey) -> Result<(), Error> {
    project(port, key).await?;
    kill(port, key, SnapshotFirst::Skip, Actor::User, None).await?;
    kill_strays(port, key).await?;
    for snapshot in port.list_snapshots(key, usize::MAX).await? {
        let deleted = match snapshot.status {
            SnapshotStatus::Deleting => finish_delete(port, key, &snapshot).await,
            // Completed (then deleted) if E2B took it, removed if not.
            SnapshotStatus::Pending => match finish_pending(port, key, &snapshot).await {
                Ok(()) => delete_snapshot(port, key, &snapshot.snapshot_id).await,
                Err(err) => Err(err),
            },
            SnapshotStatus::Ready => {
                if snapshot.pinned {
                    set_pinned(port, key, &snapshot.snapshot_id, false).await?;
                }
                delete_snapshot(port, key, &snapshot.snapshot_id).await
            }
        };
        match deleted {
            // The pruner got there first.
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    // An open racing this deletion would leave a sandbox no project accounts for: the item goes
    // only while it still holds the version read here, with no live session (a claim moves both).
    let reopened = || Error::Conflict("the sandbox was reopened while the project was being deleted; try again".into());
    let last = project(port, key).await?;
    if last.state().is_some_and(|state| state != SessionState::Killed) {
        return Err(reopened());
    }
    match port.delete_project(key, Some(last.version)).await {
        // A fork deleted before its first open no longer needs its source's snapshot. The
        // version held, so no open has cleared the mark (`clear_fork` moves it) since `last`.
        Ok(()) => {
            if let Some(fork) = &last.project.fork_of {
                super::fork::release_fork_hold(port, key, fork).await;
            }
        }
        Err(StoreError::Conflict { .. }) => return Err(reopened()),
        Err(err) => return Err(err.into()),
    }
    tracing::info!(project = %key, "project deleted");
    Ok(())
}

/// Kills every sandbox E2B still has for the project besides the current one: one left by a
/// create that took effect after its invocation was cut would outlive the project and keep
/// E2B from deleting the snapshot it was made from.
async fn kill_strays<P: Port>(port: &P, key: &ProjectKey) -> Result<(), Error> {
    let account = port.account(&key.team).await?;
    let filter = SandboxFilter {
        states: vec![SandboxState::Running, SandboxState::Paused],
        metadata: BTreeMap::from([
            (metadata::TEAM.to_owned(), key.team.to_string()),
            (metadata::PROJECT.to_owned(), key.project.to_string()),
        ]),
    };
    for stray in port.list_sandboxes(&account, &filter).await? {
        // A live fork's sandbox carries this project's metadata but is its fork's.
        if let Some(holder) = port.find_by_sandbox(&stray.sandbox_id).await?
            && holder.project.key() != *key
            && holder.project.team_id == key.team
        {
            continue;
        }
        tracing::warn!(project = %key, sandbox = %stray.sandbox_id, "a sandbox of a project being deleted; killing it");
        match port.kill(&account, &stray.sandbox_id).await {
            Ok(()) | Err(E2bError::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}
