use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::expr::s;
use super::items::lifecycle_record;
use super::{Cursor, Page, Store, StoreError, keys};
use crate::domain::{LifecycleRecord, ProjectKey};

impl Store {
    /// A project's lifecycle log, newest first.
    pub async fn list_events(&self, key: &ProjectKey, cursor: Option<&Cursor>, limit: i32) -> Result<Page<LifecycleRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::project_pk(key)))
            .expression_attribute_values(":prefix", s(keys::EVENT_PREFIX))
            .scan_index_forward(false)
            .set_exclusive_start_key(cursor.map(Cursor::to_key).transpose()?)
            .limit(limit)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        self.capacity.record_read(out.consumed_capacity());
        let items = out.items.unwrap_or_default().into_iter().map(lifecycle_record).collect::<Result<_, _>>()?;
        Ok(Page { items, next: Cursor::from_key(out.last_evaluated_key.as_ref()) })
    }
}
