//! What the usage backfill keeps: per E2B account, the newest event time it has read through
//! (`ACCOUNT#<fingerprint>` / `EVENTS`, `seenUntil`), and whether an execution was counted (its
//! marker, written by `count_usage`). One small item per account; a check is half a read unit.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use time::OffsetDateTime;

use super::expr::{n, s};
use super::query::number;
use super::time_ms::{from_ms, to_ms};
use super::{Consistency, Store, StoreError, keys};
use crate::domain::TeamId;

impl Store {
    /// Whether `execution` of `team` was counted (an eventually consistent read of its marker).
    pub async fn execution_counted(&self, team: &TeamId, execution: &str) -> Result<bool, StoreError> {
        let marker = self
            .item(
                keys::execution_pk(team, execution),
                keys::WEBHOOK_SK.to_owned(),
                Consistency::Eventual,
            )
            .await?;
        Ok(marker.is_some())
    }

    /// Whether a delivery of event `event_id` changed a session (its dedupe mark: an eventually
    /// consistent read, half a read unit).
    pub async fn webhook_applied(&self, event_id: &str) -> Result<bool, StoreError> {
        let mark = self
            .item(
                keys::webhook_pk(event_id),
                keys::WEBHOOK_SK.to_owned(),
                Consistency::Eventual,
            )
            .await?;
        Ok(mark.is_some())
    }

    /// Until when the account's events were read (`None`: never).
    pub async fn events_seen(&self, fingerprint: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        let item = self
            .item(
                keys::account_pk(fingerprint),
                keys::EVENTS_SEEN_SK.to_owned(),
                Consistency::Eventual,
            )
            .await?;
        Ok(item.and_then(|item| number(&item, "seenUntil")).map(from_ms))
    }

    /// Moves the account's mark forward to `until` (never back: two runs at once keep the later).
    pub async fn set_events_seen(&self, fingerprint: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::account_pk(fingerprint)))
            .key("sk", s(keys::EVENTS_SEEN_SK))
            .update_expression("SET seenUntil = :until")
            .condition_expression("attribute_not_exists(seenUntil) OR seenUntil < :until")
            .expression_attribute_values(":until", n(to_ms(until)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_update(out)?;
        Ok(())
    }
}
