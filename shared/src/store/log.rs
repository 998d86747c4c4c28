use time::OffsetDateTime;

use super::expr::{n, s};
use super::items::lifecycle_record;
use super::time_ms::to_ms;
use super::{Cursor, Page, Store, StoreError, keys};
use crate::domain::{LifecycleRecord, ProjectKey};

impl Store {
    /// A project's lifecycle log, newest first.
    pub async fn list_events(
        &self,
        key: &ProjectKey,
        cursor: Option<&Cursor>,
        limit: i32,
    ) -> Result<Page<LifecycleRecord>, StoreError> {
        self.list_events_since(key, None, cursor, limit).await
    }

    /// The log's lines at or after `since` (a project re-created with an old id does not show the
    /// earlier project's lines, which expire by TTL): a filter, so those lines cost their reads
    /// only in that rare case.
    pub async fn list_events_since(
        &self,
        key: &ProjectKey,
        since: Option<OffsetDateTime>,
        cursor: Option<&Cursor>,
        limit: i32,
    ) -> Result<Page<LifecycleRecord>, StoreError> {
        let mut query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::project_pk(key)))
            .expression_attribute_values(":prefix", s(keys::EVENT_PREFIX))
            .scan_index_forward(false);
        if let Some(since) = since {
            query = query
                .filter_expression("#at >= :since")
                .expression_attribute_names("#at", "at")
                .expression_attribute_values(":since", n(to_ms(since)));
        }
        self.page(query, cursor, limit, |item| lifecycle_record(item.clone()))
            .await
    }
}

impl Store {
    /// A line in a project's lifecycle log that moves nothing (a policy noting what it saw, such as
    /// a budget passing 80%): `from` and `to` are both the state the session is in.
    pub async fn note_event(
        &self,
        key: &ProjectKey,
        actor: crate::domain::Actor,
        cause: &str,
        state: crate::domain::SessionState,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        use super::time_ms::ttl_seconds;
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(keys::project_pk(key)))
            .item("sk", s(keys::next_event_sk()))
            .item("at", n(to_ms(at)))
            .item("actor", s(actor.as_str()))
            .item("cause", s(cause))
            .item("from", s(state.as_str()))
            .item("to", s(state.as_str()))
            .item(
                "expiresAt",
                super::expr::n(ttl_seconds(at + super::sessions::EVENT_LOG_TTL)),
            )
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_write(out.consumed_capacity());
        Ok(())
    }
}
