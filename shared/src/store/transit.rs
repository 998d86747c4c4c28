//! The `transit` index: sessions in a transitional state (STARTING, PAUSING, RESUMING,
//! STOPPING), sorted by when they entered it. A Sandman action normally leaves such a state within
//! seconds; the reconciler reads only the ones older than its threshold, so the read is
//! proportional to what is stuck, not to the fleet.

use time::OffsetDateTime;

use super::expr::{n, s};
use super::items::Item;
use super::query::{number, project_key, text};
use super::time_ms::{from_ms, to_ms};
use super::{Cursor, Page, Store, StoreError, keys};
use crate::domain::SessionState;

pub use sandman_protocol::record::TransitSession;

impl Store {
    /// One page of one `transit` shard: sessions that entered their transitional state at or
    /// before `entered_by`, oldest first.
    pub async fn transit_page(
        &self,
        shard: &str,
        entered_by: OffsetDateTime,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<TransitSession>, StoreError> {
        let query = self
            .client
            .query()
            .index_name(keys::TRANSIT_INDEX)
            .key_condition_expression("transitShard = :shard AND stateSince <= :by")
            .expression_attribute_values(":shard", s(shard))
            .expression_attribute_values(":by", n(to_ms(entered_by)));
        self.page(query, cursor, limit, transit_session).await
    }
}

fn transit_session(item: &Item) -> Result<TransitSession, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("transit index entry: {what}"));
    Ok(TransitSession {
        key: project_key(item, "transit")?,
        state: text(item, "state")
            .as_deref()
            .and_then(SessionState::parse)
            .ok_or_else(|| corrupt("no known state"))?,
        sandbox_id: text(item, "sandboxId"),
        version: number(item, "version").ok_or_else(|| corrupt("no version"))?.max(0) as u64,
        state_since: from_ms(number(item, "stateSince").ok_or_else(|| corrupt("no stateSince"))?),
    })
}
