//! Every operation on a project's workspace, each an `async fn` over a [`Port`]: open (get-or-create),
//! resume, restore, pause, kill, heartbeat, snapshots, fork, delete.
//!
//! # Layout
//! - `claim.rs`: `claim` and `Claimed`: every operation below claims the session (a conditional
//!   write into a transitional state), calls E2B, and records E2B's answer through it.
//! - `open.rs`: `open` (the ladder) and `resume`. `start.rs`: a new sandbox from snapshots, else
//!   the template (`create_ladder`). `restore.rs`: one claim with its snapshot hold.
//! - `pause.rs`, `kill.rs` (with `SnapshotFirst`), `activity.rs` (heartbeats).
//! - `lease.rs`: settling a claim whose lease lapsed, from what E2B reports.
//! - `snapshot.rs`: taking, finishing and deleting snapshots. `fork.rs`, `fork_live.rs`: forks.
//! - `delete.rs`: deleting a project and everything E2B still has for it.

pub mod activity;
mod claim;
pub mod delete;
pub mod fork;
mod fork_live;
mod idle_deadline;
pub mod kill;
pub mod lease;
pub mod open;
mod opened;
pub mod pause;
pub mod restore;
pub mod snapshot;
mod start;

use crate::domain::ProjectKey;
use crate::error::{Error, StoreError};
use crate::port::{Consistency, Port};
use crate::record::ProjectRecord;

/// The project as it is now, read strongly: for decisions that lead to writes.
pub async fn project<P: Port>(port: &P, key: &ProjectKey) -> Result<ProjectRecord, Error> {
    port.read(key, Consistency::Strong)
        .await?
        .ok_or(Error::NotFound("project"))
}

/// The project that holds `sandbox_id`, given `named` (already read): the project its metadata
/// names, under `named_key`. When `named` does not hold it (it is missing, or its current sandbox
/// is another), the sandbox is looked up by id (`bySandbox`): a live fork's sandbox carries its
/// source's metadata. Only another project of the same team is taken; otherwise `named` is
/// returned as it was. No read when `named` holds the sandbox.
pub async fn holder_of<P: Port>(
    port: &P,
    named_key: &ProjectKey,
    named: Option<ProjectRecord>,
    sandbox_id: &str,
) -> Result<Option<ProjectRecord>, StoreError> {
    if named.as_ref().and_then(ProjectRecord::sandbox_id) == Some(sandbox_id) {
        return Ok(named);
    }
    match port.find_by_sandbox(sandbox_id).await? {
        Some(holder) if holder.project.team_id == named_key.team && holder.project.key() != *named_key => {
            Ok(Some(holder))
        }
        _ => Ok(named),
    }
}
