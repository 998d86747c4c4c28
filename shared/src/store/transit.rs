//! The `transit` index: sessions in a transitional state (STARTING, PAUSING, RESUMING,
//! STOPPING), sorted by when they entered it. A Sandman action normally leaves such a state within
//! seconds; the reconciler reads only the ones older than its threshold, so the read is
//! proportional to what is stuck, not to the fleet.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use time::OffsetDateTime;

use super::expr::{n, s};
use super::items::Item;
use super::time_ms::{from_ms, to_ms};
use super::{Cursor, Page, Store, StoreError, keys};
use crate::domain::{ProjectId, ProjectKey, SessionState, TeamId};

/// A session in a transitional state, as the `transit` index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitSession {
    pub key: ProjectKey,
    pub state: SessionState,
    pub sandbox_id: Option<String>,
    pub version: u64,
    pub state_since: OffsetDateTime,
}

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
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::TRANSIT_INDEX)
            .key_condition_expression("transitShard = :shard AND stateSince <= :by")
            .expression_attribute_values(":shard", s(shard))
            .expression_attribute_values(":by", n(to_ms(entered_by)))
            .set_exclusive_start_key(cursor.map(Cursor::to_key).transpose()?)
            .limit(limit)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        self.capacity.record_read(out.consumed_capacity());
        let items = out.items().iter().map(transit_session).collect::<Result<_, _>>()?;
        Ok(Page { items, next: Cursor::from_key(out.last_evaluated_key()) })
    }
}

fn transit_session(item: &Item) -> Result<TransitSession, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("transit index entry: {what}"));
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    let team = TeamId::parse(text("teamId").ok_or_else(|| corrupt("no teamId"))?).map_err(|e| corrupt(&e.to_string()))?;
    let project = ProjectId::parse(text("projectId").ok_or_else(|| corrupt("no projectId"))?).map_err(|e| corrupt(&e.to_string()))?;
    let state = text("state").as_deref().and_then(SessionState::parse).ok_or_else(|| corrupt("no known state"))?;
    Ok(TransitSession {
        key: ProjectKey::new(team, project),
        state,
        sandbox_id: text("sandboxId"),
        version: number("version").ok_or_else(|| corrupt("no version"))?.max(0) as u64,
        state_since: from_ms(number("stateSince").ok_or_else(|| corrupt("no stateSince"))?),
    })
}
