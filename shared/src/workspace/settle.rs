//! Writing the outcome of an E2B call. A webhook may have recorded the same outcome first (E2B's
//! event can beat its own HTTP answer), so a conflict whose winner reached the same state is success.

use crate::Sandman;
use crate::domain::SessionState;
use crate::error::Error;
use crate::store::{SessionWrite, StoreError, Written};

impl Sandman {
    /// Applies `write`; on a conflict, succeeds if the session already is in `write`'s target state.
    pub(crate) async fn settle(&self, write: SessionWrite) -> Result<Written, Error> {
        let target = write
            .event
            .and_then(|event| crate::domain::transition(write.from, event).ok());
        match self.store.write_session(&write).await {
            Ok(written) => Ok(written),
            Err(StoreError::Conflict { .. }) => {
                let current = self.project(&write.key).await?;
                match (current.state(), target) {
                    (Some(now), Some(target)) if now == target => Ok(Written {
                        version: current.version,
                        state: Some(now),
                    }),
                    _ => Err(Error::Conflict(format!(
                        "the sandbox moved to {} while Sandman was changing it",
                        current.state().map_or("nothing", SessionState::as_str)
                    ))),
                }
            }
            Err(err) => Err(err.into()),
        }
    }
}
