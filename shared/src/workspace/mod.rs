//! A project's workspace: open it (get-or-create), keep it alive, pause, resume, kill, and read
//! its status. Every move goes through the state machine and a conditional store write.

mod activity;
mod kill;
mod lease;
mod open;
mod pause;
mod settle;
mod status;

pub use activity::{Activity, ActivityThrottle};
pub use kill::Killed;
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
