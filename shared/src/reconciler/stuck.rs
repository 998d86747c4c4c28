//! Sessions left mid-action (the process died, or E2B's answer and its webhook were both lost):
//! read from the sparse `transit` index once their claim's lease has lapsed, and settled from what
//! E2B says (`sandman_protocol::reconcile::repair_stuck`).

use time::OffsetDateTime;

use super::PAGE_SIZE;
use crate::Sandman;
use crate::store::{StoreError, TransitSession, keys};

impl Sandman {
    /// Sessions that entered a transitional state more than one claim lease ago.
    pub(super) async fn stuck_sessions(&self, now: OffsetDateTime) -> Result<Vec<TransitSession>, StoreError> {
        let entered_by = now - sandman_protocol::reconcile::STUCK_AFTER;
        let mut stuck = Vec::new();
        for shard in keys::transit_shards() {
            let mut cursor = None;
            loop {
                let page = self
                    .store
                    .transit_page(&shard, entered_by, PAGE_SIZE, cursor.as_ref())
                    .await?;
                stuck.extend(page.items);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(stuck)
    }
}
