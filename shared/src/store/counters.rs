//! Counts kept exact by changing them in the same transaction as the rows they count: a team's
//! snapshots (`TEAM#{team}` / `SNAPSHOTS`, `snapshotCount`) and a project's pinned snapshots
//! (`PROJECT#{team}#{project}` / `PINNED`, `pinnedCount`). Reading one is one GetItem; nothing
//! counts by scanning.
//!
//! A counter that does not exist yet (a team that had snapshots before counting began, or a new
//! one) is seeded once from the rows it counts. Every counted write requires the counter to
//! exist (`attribute_exists`), so while it is missing no counted row can change: the seed's count
//! is exact, and a write that met the missing counter seeds it and is tried again.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, Select, TransactWriteItem, Update};

use super::expr::{n, s};
use super::transact::{TransactError, is_transient, spent};
use super::{Consistency, Store, StoreError, keys};
use crate::domain::{ProjectKey, TeamId};

/// How often a counted write seeds its counter and tries again before giving up.
const SEED_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter<'a> {
    TeamSnapshots(&'a TeamId),
    ProjectPins(&'a ProjectKey),
}

impl Counter<'_> {
    fn pk(&self) -> String {
        match self {
            Counter::TeamSnapshots(team) => keys::team_pk(team),
            Counter::ProjectPins(key) => keys::project_pk(key),
        }
    }

    fn sk(&self) -> &'static str {
        match self {
            Counter::TeamSnapshots(_) => keys::SNAPSHOT_COUNT_SK,
            Counter::ProjectPins(_) => keys::PINNED_COUNT_SK,
        }
    }

    fn attribute(&self) -> &'static str {
        match self {
            Counter::TeamSnapshots(_) => "snapshotCount",
            Counter::ProjectPins(_) => "pinnedCount",
        }
    }
}

/// What a counted transaction came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tally {
    Applied,
    /// The condition of the item at this position failed (for a counter: its limit was reached).
    Refused(usize),
}

impl Store {
    /// The change of a counter by `delta`, for a counted transaction; with `below`, only while
    /// the count is under it.
    pub(crate) fn count_change(
        &self,
        counter: Counter<'_>,
        delta: i64,
        below: Option<u32>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut condition = "attribute_exists(#count)".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(counter.pk()))
            .key("sk", s(counter.sk()))
            .update_expression("SET #count = #count + :delta")
            .expression_attribute_names("#count", counter.attribute())
            .expression_attribute_values(":delta", n(delta));
        if let Some(limit) = below {
            condition.push_str(" AND #count < :limit");
            update = update.expression_attribute_values(":limit", n(limit));
        }
        let update = update
            .condition_expression(condition)
            .build()
            .map_err(super::error::build)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs `items`, whose items at `counters` are counter changes (`count_change`). A failed
    /// condition of another item is `Refused` with its position; otherwise a counter found missing
    /// is seeded and the transaction tried again, and one at its limit is `Refused`.
    pub(crate) async fn counted(
        &self,
        items: Vec<TransactWriteItem>,
        counters: &[(usize, Counter<'_>)],
    ) -> Result<Tally, StoreError> {
        let failed_units = 2.0 * items.len() as f64;
        let mut attempt = 1;
        loop {
            let err = match self.transact(items.clone()).await {
                Ok(out) => {
                    self.capacity.record_write(out.consumed_capacity());
                    return Ok(Tally::Applied);
                }
                Err(err) => err,
            };
            let Some(failed) = failed_conditions(&err) else {
                return Err(spent(err));
            };
            self.capacity.record_failed_write(failed_units);
            // A row's own condition decides first: the counters' do not matter then.
            if let Some(&position) = failed.iter().find(|p| !counters.iter().any(|(c, _)| c == *p)) {
                return Ok(Tally::Refused(position));
            }
            for &(position, counter) in counters.iter().filter(|(p, _)| failed.contains(p)) {
                if self.count(counter).await?.is_some() {
                    return Ok(Tally::Refused(position));
                }
                self.seed(counter).await?;
            }
            if attempt >= SEED_ATTEMPTS {
                return Err(StoreError::Dynamo {
                    message: "a counter could not be seeded".into(),
                    retryable: true,
                });
            }
            attempt += 1;
        }
    }

    /// The counter's value (`None`: not seeded yet), read strongly.
    pub(crate) async fn count(&self, counter: Counter<'_>) -> Result<Option<i64>, StoreError> {
        let item = self
            .item(counter.pk(), counter.sk().to_owned(), Consistency::Strong)
            .await?;
        Ok(item.and_then(|item| super::query::number(&item, counter.attribute())))
    }

    /// How many snapshots the team holds (any status), as counted.
    pub async fn team_snapshot_count(&self, team: &TeamId) -> Result<u64, StoreError> {
        let count = self.count(Counter::TeamSnapshots(team)).await?;
        Ok(count.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Counts the rows once and stores the count, unless another writer seeded it first.
    async fn seed(&self, counter: Counter<'_>) -> Result<(), StoreError> {
        let rows = match counter {
            Counter::TeamSnapshots(team) => {
                let mut rows = 0;
                let mut cursor = None;
                loop {
                    let page = self.list_projects(team, cursor.as_ref(), 100).await?;
                    for project in &page.items {
                        let key = ProjectKey::new(team.clone(), project.project_id.clone());
                        rows += self.count_rows(&key, None).await?;
                    }
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break rows,
                    }
                }
            }
            Counter::ProjectPins(key) => self.count_rows(key, Some("pinned = :true")).await?,
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(counter.pk()))
            .key("sk", s(counter.sk()))
            .update_expression("SET #count = :rows")
            .condition_expression("attribute_not_exists(#count)")
            .expression_attribute_names("#count", counter.attribute())
            .expression_attribute_values(":rows", n(rows))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_update(out)?;
        tracing::info!(counter = counter.attribute(), pk = %counter.pk(), rows, "counter seeded");
        Ok(())
    }

    /// A project's snapshot rows (those matching `filter`), counted with strongly consistent
    /// reads: about one read unit per 4 KB of its snapshot rows.
    async fn count_rows(&self, key: &ProjectKey, filter: Option<&str>) -> Result<u64, StoreError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(keys::project_pk(key)))
                .expression_attribute_values(":prefix", s(keys::SNAPSHOT_PREFIX))
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            if let Some(filter) = filter {
                query = query
                    .filter_expression(filter)
                    .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true));
            }
            let out = query.send().await.map_err(super::error::dynamo)?;
            self.capacity.record_read(out.consumed_capacity());
            count += u64::try_from(out.count()).unwrap_or(0);
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(count);
            }
        }
    }
}

/// The positions whose conditions failed, when that is why the transaction was cancelled (not a
/// conflict or a throttle that outlasted the retries).
fn failed_conditions(err: &TransactError) -> Option<Vec<usize>> {
    if is_transient(err) {
        return None;
    }
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            let failed: Vec<usize> = cancel
                .cancellation_reasons()
                .iter()
                .enumerate()
                .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
                .map(|(position, _)| position)
                .collect();
            (!failed.is_empty()).then_some(failed)
        }
        _ => None,
    }
}
