//! A project's workspace: open it (get-or-create), keep it alive, pause, resume, restore, kill,
//! and read its status. Every move goes through the state machine and a conditional store write.
//!
//! # Layout
//! - `claim.rs`: `Claimed`, the session a won claim hands back; every operation below records
//!   E2B's answer through it (`running`, `paused`, `killed`, `failed`).
//! - `open.rs`: `Sandman::open` (the ladder) and `Sandman::resume`.
//! - `start.rs`: a new sandbox from snapshots, else the template (`create_ladder`).
//! - `restore.rs`: `Sandman::restore`, one claim with its snapshot hold; the old sandbox goes last.
//! - `pause.rs`: `Sandman::pause` (the API's and the idle enforcer's).
//! - `kill.rs`: `Sandman::kill`, with `SnapshotFirst`.
//! - `fork_live.rs`: a live fork (`Sandman::fork` with `ForkFrom::Live`): E2B's fork of the
//!   source's running sandbox, claimed STARTING first; an ambiguous fork adopts what it made.
//! - `lease.rs`: settling a claim whose lease lapsed, from what E2B reports.
//! - `activity.rs`, `status.rs`, `settle.rs`: heartbeats, the status read, recording an outcome.

mod activity;
mod claim;
mod fork_live;
mod kill;
mod lease;
mod open;
mod pause;
mod restore;
mod settle;
mod start;
mod status;

pub use activity::{Activity, ActivityThrottle};
pub use kill::{Killed, SnapshotFirst};
pub use open::{OpenPath, Opened};
pub use pause::{PauseOutcome, PauseRequest};
pub use status::{Status, poll_after};

use crate::Sandman;
use crate::domain::ProjectKey;
use crate::e2b::E2b;
use crate::error::Error;
use crate::store::{Consistency, ProjectRecord};

impl Sandman {
    /// The E2B account of the project's team.
    pub async fn e2b_for(&self, key: &ProjectKey) -> Result<E2b, Error> {
        self.e2b_for_team(&key.team).await
    }

    /// The project as it is now, read strongly: for decisions that lead to writes.
    pub async fn project(&self, key: &ProjectKey) -> Result<ProjectRecord, Error> {
        self.store
            .get_project(key, Consistency::Strong)
            .await?
            .ok_or(Error::NotFound("project"))
    }
}
