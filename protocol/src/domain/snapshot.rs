use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ProjectId, SnapshotId, TeamId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotKind {
    Manual,
    AutoBeforeKill,
    AutoBeforePause,
}

impl SnapshotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::AutoBeforeKill => "auto-before-kill",
            Self::AutoBeforePause => "auto-before-pause",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Manual, Self::AutoBeforeKill, Self::AutoBeforePause]
            .into_iter()
            .find(|k| k.as_str() == value)
    }
}

/// `Pending` is written before E2B is asked to snapshot, and `Deleting` before the E2B snapshot is
/// deleted, so a crash in between leaves a record that nothing restores from and the next pruner
/// tick finishes (completes or removes a pending one, deletes a deleting one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotStatus {
    Pending,
    Ready,
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub snapshot_id: SnapshotId,
    pub team_id: TeamId,
    pub project_id: ProjectId,
    /// E2B's id: a snapshot is a template, and restoring it is creating a sandbox from it.
    pub e2b_snapshot_id: String,
    pub source_sandbox_id: String,
    pub description: String,
    pub kind: SnapshotKind,
    pub pinned: bool,
    pub status: SnapshotStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_count: Option<u64>,
    /// Until when a restore or a fork holds it: nothing deletes it meanwhile. Never shown.
    #[serde(skip)]
    pub held_until: Option<OffsetDateTime>,
}
