use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use time::OffsetDateTime;

use super::counters::{Counter, Tally};
use super::expr::{n, s};
use super::items::{Item, snapshot, status_name};
use super::query::{number, project_key};
use super::time_ms::{from_ms, to_ms};
use super::{Consistency, Cursor, Page, Store, StoreError, keys};
use crate::domain::{ProjectKey, Snapshot, SnapshotId, SnapshotStatus};

pub use sandman_protocol::record::{PruneCandidate, SnapshotAdmission};

/// Marks a project due for a retention pass at `:at`, and counts the mark: a pass that read fewer
/// marks does not reschedule it (two marks in one millisecond share a `pruneAt`).
const MARK_PRUNE_DUE: &str =
    "SET pruneShard = :shard, pruneAt = :at, pruneMarks = if_not_exists(pruneMarks, :zero) + :one";
impl Store {
    /// Records a snapshot and, in the same transaction, marks its project due for a retention pass
    /// and counts it against its team. `NotFound`: the project is gone; `LimitReached`: the team
    /// holds as many as `Within` allows.
    pub async fn put_snapshot(&self, snap: &Snapshot, admission: SnapshotAdmission) -> Result<(), StoreError> {
        let key = ProjectKey::new(snap.team_id.clone(), snap.project_id.clone());
        let mut item: Item = [
            ("pk", s(keys::project_pk(&key))),
            ("sk", s(keys::snapshot_sk(&snap.snapshot_id))),
            ("snapshotId", s(snap.snapshot_id.as_str())),
            ("teamId", s(snap.team_id.as_str())),
            ("projectId", s(snap.project_id.as_str())),
            ("e2bSnapshotId", s(&snap.e2b_snapshot_id)),
            ("sourceSandboxId", s(&snap.source_sandbox_id)),
            ("description", s(&snap.description)),
            ("kind", s(snap.kind.as_str())),
            ("pinned", AttributeValue::Bool(snap.pinned)),
            ("status", s(status_name(snap.status))),
            ("createdAt", n(to_ms(snap.created_at))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(size) = snap.size_bytes {
            item.insert("sizeBytes".into(), n(size));
        }
        if let Some(files) = snap.file_count {
            item.insert("fileCount".into(), n(files));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(super::error::build)?;
        let mark = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(&key)))
            .key("sk", s(keys::PROJECT_SK))
            .update_expression(MARK_PRUNE_DUE)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":shard", s(keys::prune_shard(&key)))
            .expression_attribute_values(":at", n(to_ms(snap.created_at)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(super::error::build)?;
        let team = Counter::TeamSnapshots(&snap.team_id);
        let below = match admission {
            SnapshotAdmission::Within(limit) => Some(limit),
            SnapshotAdmission::Always => None,
        };
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(mark).build(),
            self.count_change(team, 1, below)?,
        ];
        match self.counted(items, &[(2, team)]).await? {
            Tally::Applied => Ok(()),
            Tally::Refused(2) => Err(StoreError::LimitReached),
            Tally::Refused(1) => Err(StoreError::NotFound),
            Tally::Refused(_) => Err(StoreError::Corrupt(format!(
                "snapshot {} exists already",
                snap.snapshot_id
            ))),
        }
    }

    pub async fn get_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Result<Option<Snapshot>, StoreError> {
        let item = self
            .item(keys::project_pk(key), keys::snapshot_sk(id), Consistency::Strong)
            .await?;
        item.map(snapshot).transpose()
    }

    /// A project's snapshots, newest first (snapshot ids are ULIDs).
    pub async fn list_snapshots(
        &self,
        key: &ProjectKey,
        cursor: Option<&Cursor>,
        limit: i32,
    ) -> Result<Page<Snapshot>, StoreError> {
        self.snapshots_page(key, cursor, limit, false).await
    }

    async fn snapshots_page(
        &self,
        key: &ProjectKey,
        cursor: Option<&Cursor>,
        limit: i32,
        consistent: bool,
    ) -> Result<Page<Snapshot>, StoreError> {
        let query = self
            .client
            .query()
            .consistent_read(consistent)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::project_pk(key)))
            .expression_attribute_values(":prefix", s(keys::SNAPSHOT_PREFIX))
            .scan_index_forward(false);
        self.page(query, cursor, limit, |item| snapshot(item.clone())).await
    }

    /// Every snapshot of a project, newest first, read strongly: the pruner and a project's delete
    /// decide from it, and an eventually consistent read could miss one recorded just before (the
    /// pruner would then reschedule the project past it, and `keepLast` would not hold).
    pub async fn all_snapshots(&self, key: &ProjectKey) -> Result<Vec<Snapshot>, StoreError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.snapshots_page(key, cursor.as_ref(), 100, true).await?;
            all.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Pins (within `limit` pinned snapshots per project) or unpins a READY snapshot, changing the
    /// project's pin count in the same transaction. `NotFound`: no such READY snapshot;
    /// `LimitReached`: the project has `limit` pinned already. Pinning a pinned snapshot (or
    /// unpinning an unpinned one) changes nothing.
    pub async fn set_pinned(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        pinned: bool,
        limit: u32,
    ) -> Result<Snapshot, StoreError> {
        let change = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)))
            .update_expression("SET pinned = :to")
            .condition_expression("#status = :ready AND pinned = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", AttributeValue::Bool(pinned))
            .expression_attribute_values(":from", AttributeValue::Bool(!pinned))
            .expression_attribute_values(":ready", s(status_name(SnapshotStatus::Ready)))
            .build()
            .map_err(super::error::build)?;
        let pins = Counter::ProjectPins(key);
        let count = match pinned {
            true => self.count_change(pins, 1, Some(limit))?,
            false => self.count_change(pins, -1, None)?,
        };
        let items = vec![TransactWriteItem::builder().update(change).build(), count];
        match self.counted(items, &[(1, pins)]).await? {
            Tally::Refused(1) => return Err(StoreError::LimitReached),
            Tally::Applied | Tally::Refused(_) => {}
        }
        match self.get_snapshot(key, id).await? {
            Some(snapshot) if snapshot.status == SnapshotStatus::Ready && snapshot.pinned == pinned => Ok(snapshot),
            _ => Err(StoreError::NotFound),
        }
    }

    /// A pending snapshot E2B has taken: READY, with E2B's id. `NotFound` unless it was pending.
    pub async fn complete_snapshot(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        e2b_snapshot_id: &str,
    ) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)))
            .update_expression("SET #status = :ready, e2bSnapshotId = :e2b")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ready", s(status_name(SnapshotStatus::Ready)))
            .expression_attribute_values(":pending", s(status_name(SnapshotStatus::Pending)))
            .expression_attribute_values(":e2b", s(e2b_snapshot_id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match self.conditional_update(out)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    /// Marks an unpinned snapshot as being deleted, before its E2B snapshot is deleted. Refused
    /// (`Conflict`) when it is pinned or held for a restore past `now`, `NotFound` when it does not
    /// exist. Idempotent.
    pub async fn mark_deleting_at(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        now: OffsetDateTime,
    ) -> Result<Snapshot, StoreError> {
        self.mark_deleting_for(key, id, now, None).await
    }

    /// `mark_deleting_at`, with why it goes (`deleteReason`, carried into its `snapshot.deleted`
    /// event) when that is not the user's or its project's retention.
    pub async fn mark_deleting_for(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        now: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<Snapshot, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)));
        // The DELETING row is itself in the prune index (it carries its project's ids) until it
        // is removed: whatever befalls the deleter after this write, the pruner finishes it.
        let request = request
            .expression_attribute_values(":shard", s(keys::prune_shard(key)))
            .expression_attribute_values(":due", n(to_ms(now)));
        let request = match reason {
            Some(reason) => request
                .update_expression(
                    "SET #status = :deleting, deleteReason = :reason, pruneShard = :shard, pruneAt = :due",
                )
                .expression_attribute_values(":reason", s(reason)),
            None => request.update_expression("SET #status = :deleting, pruneShard = :shard, pruneAt = :due"),
        };
        let out = request
            .condition_expression(format!(
                "attribute_exists(pk) AND pinned = :false AND #status <> :pending AND {}",
                super::holds::NOT_HELD
            ))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":deleting", s(status_name(SnapshotStatus::Deleting)))
            .expression_attribute_values(":pending", s(status_name(SnapshotStatus::Pending)))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(to_ms(now)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.capacity.record_write(out.consumed_capacity());
                snapshot(out.attributes.unwrap_or_default())
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) if failed.item().is_some() => {
                    Err(StoreError::Conflict { current: None })
                }
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Err(StoreError::NotFound),
                _ => Err(super::error::dynamo(err)),
            },
        }
    }

    /// A DELETING row back to READY (and out of the prune index), while it is still DELETING.
    pub async fn unmark_deleting(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)))
            .update_expression("SET #status = :ready REMOVE pruneShard, pruneAt, deleteReason")
            .condition_expression("#status = :deleting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ready", s(status_name(SnapshotStatus::Ready)))
            .expression_attribute_values(":deleting", s(status_name(SnapshotStatus::Deleting)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_update(out)?;
        Ok(())
    }

    /// Removes a snapshot row and gives its place in the team's count back, in one transaction.
    /// A row already gone changes nothing.
    pub async fn delete_snapshot_record(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(super::error::build)?;
        let team = Counter::TeamSnapshots(&key.team);
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.count_change(team, -1, None)?,
        ];
        match self.counted(items, &[(1, team)]).await? {
            Tally::Applied | Tally::Refused(0) => Ok(()),
            Tally::Refused(_) => Err(StoreError::Corrupt("the team's snapshot count".into())),
        }
    }

    /// One page of one prune-index shard: projects due for a retention pass at or before `now`.
    pub async fn prune_page(
        &self,
        shard: &str,
        now: OffsetDateTime,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<PruneCandidate>, StoreError> {
        let query = self
            .client
            .query()
            .index_name(keys::PRUNE_INDEX)
            .key_condition_expression("pruneShard = :shard AND pruneAt <= :now")
            .expression_attribute_values(":shard", s(shard))
            .expression_attribute_values(":now", n(to_ms(now)));
        self.page(query, cursor, limit, |item| {
            let due_at = number(item, "pruneAt")
                .map(from_ms)
                .ok_or_else(|| StoreError::Corrupt("prune index entry: no pruneAt".into()))?;
            Ok(PruneCandidate {
                key: project_key(item, "prune")?,
                due_at,
            })
        })
        .await
    }

    /// When the project next needs a retention pass (`None`: not until it gains a snapshot).
    pub async fn set_prune_at(&self, key: &ProjectKey, at: Option<OffsetDateTime>) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::PROJECT_SK))
            .condition_expression("attribute_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let request = match at {
            Some(at) => request
                .update_expression(MARK_PRUNE_DUE)
                .expression_attribute_values(":shard", s(keys::prune_shard(key)))
                .expression_attribute_values(":at", n(to_ms(at)))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1)),
            None => request.update_expression("REMOVE pruneShard, pruneAt"),
        };
        match self.conditional_update(request.send().await)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    /// After a retention pass: the project is next due at `next` (`None`: it leaves the index),
    /// but only if `pruneAt` is still `seen` and `pruneMarks` still the `marks` the pass read
    /// before listing. A snapshot recorded, a policy changed or a hold released during the pass
    /// marked it again, and the project stays due. Answers whether it was rescheduled.
    pub async fn reschedule_prune(
        &self,
        key: &ProjectKey,
        seen: OffsetDateTime,
        marks: u64,
        next: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        // Marks, not times: two marks can share a millisecond, and so a `pruneAt`.
        let condition = match marks {
            0 => "pruneAt = :seen AND attribute_not_exists(pruneMarks)",
            _ => "pruneAt = :seen AND pruneMarks = :marks",
        };
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::PROJECT_SK))
            .condition_expression(condition)
            .expression_attribute_values(":seen", n(to_ms(seen)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let request = match marks {
            0 => request,
            _ => request.expression_attribute_values(":marks", n(marks)),
        };
        // `pruneLast` (the mark before `pruneMarks`) goes with the first pass over the project.
        let request = match next {
            Some(at) => request
                .update_expression("SET pruneAt = :at REMOVE pruneLast")
                .expression_attribute_values(":at", n(to_ms(at))),
            None => request.update_expression("REMOVE pruneShard, pruneAt, pruneLast"),
        };
        match self.conditional_update(request.send().await)? {
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }
}
