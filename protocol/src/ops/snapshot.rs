//! Runtime snapshots: saved in E2B, recorded in the table. Retention lives in `retention`.

use super::project;
use crate::domain::{ProjectKey, SessionState, Snapshot, SnapshotId, SnapshotKind, SnapshotStatus};
use crate::e2b::E2bError;
use crate::error::{Error, StoreError};
use crate::port::Port;
use crate::record::{ProjectRecord, SnapshotAdmission};

/// Saves the project's current sandbox. A PENDING record is written before E2B is asked, and
/// completed (READY) or removed after, so no E2B snapshot exists that the table does not know:
/// a request that dies in between, or an ambiguous E2B failure, leaves a PENDING record that
/// the pruner finishes (`finish_pending`).
///
/// Every snapshot counts against the team's quota, in the row's own write. A manual one past it
/// is refused before E2B is asked; an automatic one is taken all the same, and the team's oldest
/// unpinned snapshots make room (`Port::make_room`).
pub async fn create_snapshot<P: Port>(
    port: &P,
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
    let account = port.account(&key.team).await?;
    let snapshot_id = SnapshotId::parse(port.new_id()).map_err(|err| Error::Conflict(err.to_string()))?;
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
        created_at: port.now(),
        size_bytes: None,
        file_count: None,
        held_until: None,
    };
    let limit = port.rules().snapshots_per_team;
    let over_quota = match port.put_snapshot(&snapshot, SnapshotAdmission::Within(limit)).await {
        Ok(()) => false,
        Err(StoreError::LimitReached) if kind != SnapshotKind::Manual => {
            port.put_snapshot(&snapshot, SnapshotAdmission::Always).await?;
            true
        }
        Err(StoreError::LimitReached) => {
            return Err(Error::QuotaExceeded(format!(
                "the team has {limit} snapshots, its limit; delete some first"
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let taken = port
        .create_e2b_snapshot(&account, &snapshot.source_sandbox_id, &e2b_name(&snapshot.snapshot_id))
        .await;
    let info = match taken {
        Ok(info) => info,
        Err(err) if err.may_have_taken_effect() => {
            tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, error = %err, "snapshot outcome unknown; left PENDING for the pruner");
            return Err(err.into());
        }
        Err(err) => {
            port.delete_snapshot_row(&key, &snapshot.snapshot_id).await?;
            return Err(err.into());
        }
    };
    match port
        .complete_snapshot(&key, &snapshot.snapshot_id, &info.snapshot_id)
        .await
    {
        Ok(()) => {}
        // The row is not PENDING any more: completed already (this write's own first attempt,
        // its answer lost, or the pruner's `finish_pending`), or given up on meanwhile (the
        // pruner found nothing in E2B yet, or the project is being deleted).
        Err(StoreError::NotFound) => match port.get_snapshot(&key, &snapshot.snapshot_id).await? {
            Some(row) if row.status == SnapshotStatus::Ready => {
                if over_quota {
                    port.make_room(&row).await;
                }
                return Ok(row);
            }
            Some(_) => {
                return Err(Error::Conflict("the snapshot is being deleted".into()));
            }
            None => {
                tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, "the pending row was removed while E2B took the snapshot; deleting it");
                match port.delete_e2b_snapshot(&account, &info.snapshot_id).await {
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
        port.make_room(&snapshot).await;
    }
    Ok(snapshot)
}

/// A PENDING record its writer left behind: READY if E2B took the snapshot (found by the name
/// Sandman gave it, among the source sandbox's snapshots), removed if E2B has none.
pub async fn finish_pending<P: Port>(port: &P, key: &ProjectKey, pending: &Snapshot) -> Result<(), Error> {
    let name = e2b_name(&pending.snapshot_id);
    let account = port.account(&key.team).await?;
    let taken = match port.list_e2b_snapshots(&account, &pending.source_sandbox_id).await {
        Ok(listed) => listed
            .into_iter()
            .find(|info| info.names.iter().any(|n| n.contains(&name)) || info.snapshot_id.contains(&name)),
        Err(E2bError::NotFound) => None,
        Err(err) => return Err(err.into()),
    };
    match taken {
        Some(info) => {
            tracing::warn!(project = %key, snapshot = %pending.snapshot_id, "a pending snapshot E2B took: completed");
            port.complete_snapshot(key, &pending.snapshot_id, &info.snapshot_id)
                .await?
        }
        None => {
            tracing::warn!(project = %key, snapshot = %pending.snapshot_id, "a pending snapshot E2B never took: removed");
            port.delete_snapshot_row(key, &pending.snapshot_id).await?
        }
    }
    Ok(())
}

pub async fn snapshot<P: Port>(port: &P, key: &ProjectKey, id: &SnapshotId) -> Result<Snapshot, Error> {
    port.get_snapshot(key, id).await?.ok_or(Error::NotFound("snapshot"))
}

/// Pins are limited per project: a pinned snapshot is never pruned, by retention or by the
/// team's quota. Unpinning may put the project over its retention policy: it is marked due for a
/// pass.
pub async fn set_pinned<P: Port>(port: &P, key: &ProjectKey, id: &SnapshotId, pinned: bool) -> Result<Snapshot, Error> {
    let limit = port.rules().pins_per_project;
    let snapshot = port.set_pinned(key, id, pinned, limit).await.map_err(|err| match err {
        StoreError::NotFound => Error::NotFound("snapshot"),
        StoreError::LimitReached => Error::QuotaExceeded(format!(
            "the project has {limit} pinned snapshot(s), its limit; unpin one first"
        )),
        other => other.into(),
    })?;
    if !pinned {
        port.mark_prune_due(key).await?;
    }
    Ok(snapshot)
}

/// Deletes a snapshot: marked DELETING, then deleted in E2B (a 404 there is fine), then the
/// record. Pinned snapshots and the one the live sandbox was restored from are refused.
pub async fn delete_snapshot<P: Port>(port: &P, key: &ProjectKey, id: &SnapshotId) -> Result<(), Error> {
    let snapshot = snapshot(port, key, id).await?;
    if snapshot.status == SnapshotStatus::Pending {
        // Its E2B snapshot may be on its way: the writer (or the pruner) finishes it first.
        return Err(Error::Conflict(
            "the snapshot is still being taken; try again shortly".into(),
        ));
    }
    if snapshot.pinned {
        return Err(Error::Conflict("the snapshot is pinned; unpin it first".into()));
    }
    let record = project(port, key).await?;
    if in_use(&record, id) {
        return Err(Error::Conflict(
            "the project's live sandbox was restored from this snapshot".into(),
        ));
    }
    port.mark_deleting(key, id).await.map_err(|err| match err {
        StoreError::NotFound => Error::NotFound("snapshot"),
        StoreError::Conflict { .. } => {
            Error::Conflict("the snapshot is pinned or being restored; try again later".into())
        }
        other => other.into(),
    })?;
    finish_delete(port, key, &snapshot).await
}

/// The E2B half and the record half of a deletion already marked DELETING. Safe to repeat.
pub async fn finish_delete<P: Port>(port: &P, key: &ProjectKey, snapshot: &Snapshot) -> Result<(), Error> {
    let account = port.account(&key.team).await?;
    match port.delete_e2b_snapshot(&account, &snapshot.e2b_snapshot_id).await {
        Ok(()) | Err(E2bError::NotFound) => {}
        // E2B refuses while a sandbox made from it runs (one the table no longer calls current).
        Err(E2bError::BadRequest { message }) => {
            tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, error = %message, "E2B refused to delete the snapshot");
            // It is still E2B's, and usable: READY again (else it stays DELETING, and due).
            if port.unmark_deleting(key, &snapshot.snapshot_id).await.is_err() {
                port.mark_prune_due(key).await.ok();
            }
            return Err(Error::Conflict(
                "a sandbox made from this snapshot still runs in E2B; try again later".into(),
            ));
        }
        Err(err) => {
            // The record stays DELETING; the pruner's next pass over this project retries.
            port.mark_prune_due(key).await.ok();
            return Err(err.into());
        }
    }
    port.delete_snapshot_row(key, &snapshot.snapshot_id).await?;
    Ok(())
}

/// E2B refuses to delete a snapshot while a sandbox created from it runs.
pub fn in_use(record: &ProjectRecord, id: &SnapshotId) -> bool {
    record
        .session
        .as_ref()
        .is_some_and(|s| s.state != SessionState::Killed && s.restored_from.as_ref() == Some(id))
}

/// The name Sandman gives a snapshot in E2B, which finds it again when its answer was lost.
pub fn e2b_name(id: &SnapshotId) -> String {
    format!("sandman-{}", id.as_str().to_lowercase())
}
