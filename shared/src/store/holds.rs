//! Holds on a snapshot row: what keeps retention and a user's delete off a snapshot something
//! still needs. Two kinds, kept apart so that neither ends the other:
//! - a restore's (`heldUntil`), written in the restore's claim transaction, for one claim lease;
//!   restores of a project are serialised by its claim, so one attribute serves;
//! - forks' (`forkHolds`, a count, and `forkHeldUntil`, only ever moved later): each fork not yet
//!   opened adds one and takes it back once, when its first open clears its mark or when it is
//!   deleted unopened. A count no release brings to zero still lapses at `forkHeldUntil`.
//!
//! A row is held while `heldUntil` is ahead, or while `forkHolds` is above zero and
//! `forkHeldUntil` ahead (`NOT_HELD` says when it is not).

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};
use time::OffsetDateTime;

use super::expr::{n, s};
use super::items::status_name;
use super::time_ms::to_ms;
use super::{Store, StoreError, keys};
use crate::domain::{ProjectKey, SnapshotId, SnapshotStatus};

/// The condition (with `:now` and `:zero`) under which nothing holds a snapshot row.
pub(super) const NOT_HELD: &str = "(attribute_not_exists(heldUntil) OR heldUntil <= :now) \
     AND (attribute_not_exists(forkHolds) OR forkHolds <= :zero OR forkHeldUntil <= :now)";

impl Store {
    /// One more fork holds a READY snapshot, until at least `until`. `NotFound` when it is
    /// missing or not READY (pending, or being deleted).
    pub async fn hold_for_fork(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // The horizon only moves later: an earlier fork's hold must not end sooner for this one.
        let extends = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)))
            .update_expression("ADD forkHolds :one SET forkHeldUntil = :until")
            .condition_expression(
                "attribute_exists(pk) AND #status = :ready \
                 AND (attribute_not_exists(forkHeldUntil) OR forkHeldUntil < :until)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":until", n(to_ms(until)))
            .expression_attribute_values(":ready", s(status_name(SnapshotStatus::Ready)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let current = match extends {
            Ok(out) => {
                self.capacity.record_write(out.consumed_capacity());
                return Ok(());
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    self.capacity.record_failed_write(1.0);
                    failed.item().cloned()
                }
                _ => return Err(super::error::dynamo(err)),
            },
        };
        let ready = current
            .as_ref()
            .and_then(|item| item.get("status"))
            .and_then(|status| status.as_s().ok())
            .is_some_and(|status| status == status_name(SnapshotStatus::Ready));
        if !ready {
            return Err(StoreError::NotFound);
        }
        // A later horizon is there already: only the count moves.
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)))
            .update_expression("ADD forkHolds :one")
            .condition_expression("attribute_exists(pk) AND #status = :ready")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ready", s(status_name(SnapshotStatus::Ready)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match self.conditional_update(counted)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    /// A fork takes its hold back (once: its caller's own write decides that). Nothing held, or
    /// the row gone, changes nothing.
    pub async fn release_fork_hold(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)))
            .update_expression("ADD forkHolds :minus")
            .condition_expression("forkHolds > :zero")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_update(out)?;
        Ok(())
    }

    /// Ends a restore's hold (the restore finished, either way). Forks' holds stay.
    pub async fn release_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)))
            .update_expression("REMOVE heldUntil")
            .condition_expression("attribute_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_update(out)?;
        Ok(())
    }
}
