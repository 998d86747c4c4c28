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
