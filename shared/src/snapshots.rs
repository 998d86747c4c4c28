//! Runtime snapshots: saved in E2B, recorded in the table. Retention lives in `retention`.

use crate::Sandman;
use crate::domain::{ProjectKey, SessionState, Snapshot, SnapshotId, SnapshotKind, SnapshotStatus};
use crate::e2b::E2bError;
use crate::error::Error;
use crate::store::{Cursor, Page, ProjectRecord, SnapshotAdmission, StoreError};

impl Sandman {
    /// Saves the project's current sandbox. A PENDING record is written before E2B is asked, and
    /// completed (READY) or removed after, so no E2B snapshot exists that the table does not know:
    /// a request that dies in between, or an ambiguous E2B failure, leaves a PENDING record that
    /// the pruner finishes (`finish_pending`).
    ///
    /// Every snapshot counts against the team's quota, in the record's own transaction. A manual
    /// one past it is refused before E2B is asked; an automatic one is taken all the same, and the
    /// team's oldest unpinned snapshots make room (`snapshot_quota.rs`).
    pub async fn create_snapshot(
        &self,
        record: &ProjectRecord,
        kind: SnapshotKind,
        description: String,
    ) -> Result<Snapshot, Error> {
        let key = record.project.key();
        let sandbox = record
            .session
            .as_ref()
            .filter(|s| s.state != SessionState::Killed)
            .and_then(|s| s.sandbox.clone())
            .ok_or_else(|| Error::Conflict("the project has no live sandbox to snapshot".into()))?;
        let e2b = self.e2b_for(&key).await?;
        let snapshot_id = SnapshotId::generate();
        let mut snapshot = Snapshot {
            e2b_snapshot_id: e2b_name(&snapshot_id),
            snapshot_id,
            team_id: key.team.clone(),
            project_id: key.project.clone(),
            source_sandbox_id: sandbox.sandbox_id,
            description,
            kind,
            pinned: false,
            status: SnapshotStatus::Pending,
            created_at: self.now(),
            size_bytes: None,
            file_count: None,
        };
        let limit = self.config.quotas.snapshots_per_team;
        let over_quota = match self
            .store
            .put_snapshot(&snapshot, SnapshotAdmission::Within(limit))
            .await
        {
            Ok(()) => false,
            Err(StoreError::LimitReached) if kind != SnapshotKind::Manual => {
                self.store.put_snapshot(&snapshot, SnapshotAdmission::Always).await?;
                true
            }
            Err(StoreError::LimitReached) => {
                return Err(Error::QuotaExceeded(format!(
                    "the team has {limit} snapshots, its limit; delete some first"
                )));
            }
            Err(err) => return Err(err.into()),
        };
        let taken = e2b
            .create_snapshot(&snapshot.source_sandbox_id, Some(&e2b_name(&snapshot.snapshot_id)))
            .await;
        let info = match taken {
            Ok(info) => info,
            Err(err) if err.may_have_taken_effect() => {
                tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, error = %err, "snapshot outcome unknown; left PENDING for the pruner");
                return Err(err.into());
            }
            Err(err) => {
                self.store.delete_snapshot_record(&key, &snapshot.snapshot_id).await?;
                return Err(err.into());
            }
        };
        match self
            .store
            .complete_snapshot(&key, &snapshot.snapshot_id, &info.snapshot_id)
            .await
        {
            Ok(()) => {}
            // The row is not PENDING any more: completed already (this write's own first attempt,
            // its answer lost, or the pruner's `finish_pending`), or given up on meanwhile (the
            // pruner found nothing in E2B yet, or the project is being deleted).
            Err(StoreError::NotFound) => match self.store.get_snapshot(&key, &snapshot.snapshot_id).await? {
                Some(row) if row.status == SnapshotStatus::Ready => {
                    if over_quota {
                        self.make_room(&row).await;
                    }
                    return Ok(row);
                }
                Some(_) => {
                    return Err(Error::Conflict("the snapshot is being deleted".into()));
                }
                None => {
                    tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, "the pending row was removed while E2B took the snapshot; deleting it");
                    match e2b.delete_snapshot(&info.snapshot_id).await {
                        Ok(()) | Err(E2bError::NotFound) => {}
                        Err(err) => {
                            tracing::error!(project = %key, snapshot = %info.snapshot_id, error = %err, "could not delete a snapshot the table does not know")
                        }
                    }
                    return Err(Error::Conflict(
                        "the snapshot was given up on while E2B took it; try again".into(),
                    ));
                }
            },
            Err(err) => return Err(err.into()),
        }
        snapshot.e2b_snapshot_id = info.snapshot_id;
        snapshot.status = SnapshotStatus::Ready;
        tracing::info!(project = %key, snapshot = %snapshot.snapshot_id, kind = kind.as_str(), "snapshot saved");
        if over_quota {
            self.make_room(&snapshot).await;
        }
        Ok(snapshot)
    }

    /// A PENDING record its writer left behind: READY if E2B took the snapshot (found by the name
    /// Sandman gave it, among the source sandbox's snapshots), removed if E2B has none.
    pub async fn finish_pending(&self, key: &ProjectKey, pending: &Snapshot) -> Result<(), Error> {
        let name = e2b_name(&pending.snapshot_id);
        let taken = match self
            .e2b_for(key)
            .await?
            .list_snapshots(&pending.source_sandbox_id)
            .await
        {
            Ok(listed) => listed
                .into_iter()
                .find(|info| info.names.iter().any(|n| n.contains(&name)) || info.snapshot_id.contains(&name)),
            Err(E2bError::NotFound) => None,
            Err(err) => return Err(err.into()),
        };
        match taken {
            Some(info) => {
                tracing::warn!(project = %key, snapshot = %pending.snapshot_id, "a pending snapshot E2B took: completed");
                self.store
                    .complete_snapshot(key, &pending.snapshot_id, &info.snapshot_id)
                    .await?
            }
            None => {
                tracing::warn!(project = %key, snapshot = %pending.snapshot_id, "a pending snapshot E2B never took: removed");
                self.store.delete_snapshot_record(key, &pending.snapshot_id).await?
            }
        }
        Ok(())
    }

    pub async fn list_snapshots(
        &self,
        key: &ProjectKey,
        cursor: Option<&Cursor>,
        limit: i32,
    ) -> Result<Page<Snapshot>, Error> {
        self.project(key).await?;
        Ok(self.store.list_snapshots(key, cursor, limit).await?)
    }

    pub async fn snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Result<Snapshot, Error> {
        self.store
            .get_snapshot(key, id)
            .await?
            .ok_or(Error::NotFound("snapshot"))
    }

    /// Pins are limited per project (`SANDMAN_MAX_PINNED_SNAPSHOTS_PER_PROJECT`): a pinned
    /// snapshot is never pruned, by retention or by the team's quota. Unpinning may put the
    /// project over its retention policy: it is marked due for a pass.
    pub async fn set_pinned(&self, key: &ProjectKey, id: &SnapshotId, pinned: bool) -> Result<Snapshot, Error> {
        let limit = self.config.quotas.pinned_snapshots_per_project;
        let snapshot = self
            .store
            .set_pinned(key, id, pinned, limit)
            .await
            .map_err(|err| match err {
                StoreError::NotFound => Error::NotFound("snapshot"),
                StoreError::LimitReached => Error::QuotaExceeded(format!(
                    "the project has {limit} pinned snapshot(s), its limit; unpin one first"
                )),
                other => other.into(),
            })?;
        if !pinned {
            self.store.set_prune_at(key, Some(self.now())).await?;
        }
        Ok(snapshot)
    }

    /// Deletes a snapshot: marked DELETING, then deleted in E2B (a 404 there is fine), then the
    /// record. Pinned snapshots and the one the live sandbox was restored from are refused.
    pub async fn delete_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), Error> {
        let snapshot = self.snapshot(key, id).await?;
        if snapshot.pinned {
            return Err(Error::Conflict("the snapshot is pinned; unpin it first".into()));
        }
        let record = self.project(key).await?;
        if in_use(&record, id) {
            return Err(Error::Conflict(
                "the project's live sandbox was restored from this snapshot".into(),
            ));
        }
        self.store
            .mark_deleting_at(key, id, self.now())
            .await
            .map_err(|err| match err {
                StoreError::NotFound => Error::NotFound("snapshot"),
                StoreError::Conflict { .. } => {
                    Error::Conflict("the snapshot is pinned or being restored; try again later".into())
                }
                other => other.into(),
            })?;
        self.finish_delete(key, &snapshot).await
    }

    /// The E2B half and the record half of a deletion already marked DELETING. Safe to repeat.
    pub async fn finish_delete(&self, key: &ProjectKey, snapshot: &Snapshot) -> Result<(), Error> {
        match self
            .e2b_for(key)
            .await?
            .delete_snapshot(&snapshot.e2b_snapshot_id)
            .await
        {
            Ok(()) | Err(E2bError::NotFound) => {}
            // E2B refuses while a sandbox made from it runs (one the table no longer calls current).
            Err(E2bError::BadRequest { message }) => {
                tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, error = %message, "E2B refused to delete the snapshot");
                self.store.set_prune_at(key, Some(self.now())).await.ok();
                return Err(Error::Conflict(
                    "a sandbox made from this snapshot still runs in E2B; try again later".into(),
                ));
            }
            Err(err) => {
                // The record stays DELETING; the pruner's next pass over this project retries.
                self.store.set_prune_at(key, Some(self.now())).await.ok();
                return Err(err.into());
            }
        }
        self.store.delete_snapshot_record(key, &snapshot.snapshot_id).await?;
        Ok(())
    }
}

/// E2B refuses to delete a snapshot while a sandbox created from it runs.
pub(crate) fn in_use(record: &ProjectRecord, id: &SnapshotId) -> bool {
    record
        .session
        .as_ref()
        .is_some_and(|s| s.state != SessionState::Killed && s.restored_from.as_ref() == Some(id))
}

/// The name Sandman gives a snapshot in E2B, which finds it again when its answer was lost.
fn e2b_name(id: &SnapshotId) -> String {
    format!("sandman-{}", id.as_str().to_lowercase())
}
