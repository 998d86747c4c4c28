//! The one way the store reads a page: a query, its capacity recorded, its items decoded, and the
//! cursor for the next page.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::items::Item;
use super::{Cursor, Page, Store, StoreError};
use crate::domain::{ProjectId, ProjectKey, TeamId};

impl Store {
    pub(crate) async fn page<T>(
        &self,
        query: QueryFluentBuilder,
        cursor: Option<&Cursor>,
        limit: i32,
        decode: impl Fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let out = query
            .table_name(&self.table)
            .set_exclusive_start_key(cursor.map(Cursor::to_key).transpose()?)
            .limit(limit)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_read(out.consumed_capacity());
        let items = out.items().iter().map(decode).collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next: Cursor::from_key(out.last_evaluated_key()),
        })
    }
}

impl Store {
    /// One item by its key, its capacity recorded.
    pub(crate) async fn item(
        &self,
        pk: String,
        sk: String,
        consistency: super::Consistency,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk))
            .consistent_read(consistency == super::Consistency::Strong)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_read(out.consumed_capacity());
        Ok(out.item)
    }
}

pub(crate) fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(crate) fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// The project an index entry belongs to, from its projected `teamId` and `projectId`.
pub(crate) fn project_key(item: &Item, index: &str) -> Result<ProjectKey, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("{index} index entry: {what}"));
    let id = |name: &str| text(item, name).ok_or_else(|| corrupt(format!("no {name}")));
    let team = TeamId::parse(id("teamId")?).map_err(|e| corrupt(e.to_string()))?;
    let project = ProjectId::parse(id("projectId")?).map_err(|e| corrupt(e.to_string()))?;
    Ok(ProjectKey::new(team, project))
}
