//! Runtime snapshots: saved in E2B, recorded in the table (`sandman_protocol::ops::snapshot` has
//! the rules). Retention lives in `retention`.

use sandman_protocol::ops::snapshot as ops;

use crate::Sandman;
use crate::domain::{ProjectKey, Snapshot, SnapshotId, SnapshotKind};
use crate::error::Error;
use crate::store::{Cursor, Page, ProjectRecord};

pub use sandman_protocol::ops::snapshot::in_use;

impl Sandman {
    /// Saves the project's current sandbox. A PENDING record is written before E2B is asked, and
    /// completed (READY) or removed after, so no E2B snapshot exists that the table does not know.
    pub async fn create_snapshot(
        &self,
        record: &ProjectRecord,
        kind: SnapshotKind,
        description: String,
    ) -> Result<Snapshot, Error> {
        ops::create_snapshot(self, record, kind, description).await
    }

    /// A PENDING record its writer left behind: READY if E2B took the snapshot, removed if not.
    pub async fn finish_pending(&self, key: &ProjectKey, pending: &Snapshot) -> Result<(), Error> {
        ops::finish_pending(self, key, pending).await
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
        ops::snapshot(self, key, id).await
    }

    /// Pins are limited per project (`SANDMAN_MAX_PINNED_SNAPSHOTS_PER_PROJECT`): a pinned
    /// snapshot is never pruned, by retention or by the team's quota. Unpinning may put the
    /// project over its retention policy: it is marked due for a pass.
    pub async fn set_pinned(&self, key: &ProjectKey, id: &SnapshotId, pinned: bool) -> Result<Snapshot, Error> {
        ops::set_pinned(self, key, id, pinned).await
    }

    /// Deletes a snapshot: marked DELETING, then deleted in E2B, then the record. Pinned snapshots
    /// and the one the live sandbox was restored from are refused.
    pub async fn delete_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), Error> {
        ops::delete_snapshot(self, key, id).await
    }

    /// The E2B half and the record half of a deletion already marked DELETING. Safe to repeat.
    pub async fn finish_delete(&self, key: &ProjectKey, snapshot: &Snapshot) -> Result<(), Error> {
        ops::finish_delete(self, key, snapshot).await
    }
}

/// A new snapshot id: a ULID, so sorting ids sorts by creation time.
pub fn new_snapshot_id() -> SnapshotId {
    SnapshotId::parse(ulid::Ulid::new().to_string()).expect("a ULID is a valid id")
}
