use super::expr::s;
use super::items::lifecycle_record;
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
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::project_pk(key)))
            .expression_attribute_values(":prefix", s(keys::EVENT_PREFIX))
            .scan_index_forward(false);
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
        use super::time_ms::{to_ms, ttl_seconds};
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(keys::project_pk(key)))
            .item("sk", s(keys::next_event_sk()))
            .item("at", super::expr::n(to_ms(at)))
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
