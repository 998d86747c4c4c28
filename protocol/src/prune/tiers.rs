//! Inactivity tiers, applied by the retention pass to the projects the `prune` index says are due:
//! a sandbox paused longer than `archiveAfter` is archived (a snapshot holding its paused state is
//! taken unless one exists, then it is killed: E2B keeps nothing paused for it, and the next open
//! restores the snapshot); the snapshots of a project inactive longer than `deleteAfter` are
//! deleted (pinned ones only when the policy says so). Every pause and kill marks its project due,
//! and a pass schedules the next tier, so nothing reads a project with nothing to do.

use time::OffsetDateTime;

use crate::domain::{Actor, InactivityPolicy, ProjectKey, SessionState, Snapshot, SnapshotId, SnapshotStatus};
use crate::error::{Error, StoreError};
use crate::ops::kill::{SnapshotFirst, kill_as_read};
use crate::ops::project;
use crate::ops::snapshot::{finish_delete, set_pinned};
use crate::port::Port;
use crate::record::ProjectRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierStep {
    Nothing,
    /// Paused past `archive_after`; `snapshot_first` unless a READY snapshot was taken since the pause.
    Archive {
        snapshot_first: bool,
    },
    /// Inactive past `delete_after`: these snapshots go.
    Delete(Vec<SnapshotId>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPlan {
    pub step: TierStep,
    /// When the next tier falls due, if one is pending.
    pub next_due: Option<OffsetDateTime>,
}

/// The pure rule: what the project's inactivity policy asks for now, and when next.
pub fn tier_plan(record: &ProjectRecord, snapshots: &[Snapshot], now: OffsetDateTime) -> TierPlan {
    let policy: InactivityPolicy = record.project.inactivity;
    let nothing = TierPlan {
        step: TierStep::Nothing,
        next_due: None,
    };
    let session = record.session.as_ref();
    let state = session.map(|s| s.state);
    if let (Some(after), Some(SessionState::Paused)) = (policy.archive_after, state) {
        let paused_at = session
            .and_then(|s| s.paused_at)
            .unwrap_or_else(|| session.map_or(now, |s| s.state_since));
        let due = paused_at + after;
        if due > now {
            return TierPlan {
                step: TierStep::Nothing,
                next_due: Some(due),
            };
        }
        let holds_state = snapshots
            .iter()
            .any(|s| s.status == SnapshotStatus::Ready && s.created_at >= paused_at);
        return TierPlan {
            step: TierStep::Archive {
                snapshot_first: !holds_state,
            },
            next_due: None,
        };
    }
    let Some(after) = policy.delete_after else {
        return nothing;
    };
    if !matches!(state, None | Some(SessionState::Paused | SessionState::Killed)) {
        return nothing;
    }
    let doomed: Vec<SnapshotId> = snapshots
        .iter()
        .filter(|s| s.status == SnapshotStatus::Ready && (policy.delete_pinned || !s.pinned))
        .map(|s| s.snapshot_id.clone())
        .collect();
    if doomed.is_empty() {
        return nothing;
    }
    let last_active = session.map_or(record.project.updated_at, |s| s.last_active_at);
    let due = last_active + after;
    if due > now {
        return TierPlan {
            step: TierStep::Nothing,
            next_due: Some(due),
        };
    }
    TierPlan {
        step: TierStep::Delete(doomed),
        next_due: None,
    }
}

/// Applies one tier step. Answers how many snapshots were deleted.
pub(crate) async fn apply_tier<P: Port>(
    port: &P,
    record: &ProjectRecord,
    step: &TierStep,
    snapshots: &[Snapshot],
) -> Result<u32, Error> {
    let key = &record.project.key();
    match step {
        TierStep::Nothing => Ok(0),
        TierStep::Archive { snapshot_first } => {
            // One claim, from the PAUSED session the plan read: STOPPING while E2B wakes the
            // sandbox for its snapshot (E2B snapshots a running sandbox) and kills it. A user who
            // reopened it since wins: the claim fails and the archive waits for the next pause.
            let reason = "archive: paused longer than the project's archiveAfter";
            let snapshot = if *snapshot_first {
                SnapshotFirst::Required
            } else {
                SnapshotFirst::Skip
            };
            match kill_as_read(port, record.clone(), snapshot, Actor::Pruner, Some(reason)).await {
                Ok(_) => tracing::info!(project = %key, snapshot_first, "archived"),
                Err(Error::Conflict(why)) => {
                    tracing::info!(project = %key, why, "not archived: the project moved since the pass read it")
                }
                Err(err) => return Err(err),
            }
            Ok(0)
        }
        TierStep::Delete(doomed) => {
            let mut deleted = 0;
            for snapshot in snapshots.iter().filter(|s| doomed.contains(&s.snapshot_id)) {
                if delete_for_inactivity(port, key, snapshot).await? {
                    deleted += 1;
                }
            }
            if deleted > 0 {
                let record = project(port, key).await?;
                let cause = format!("deleteAfter: {deleted} snapshot(s) of an inactive project deleted");
                if let Some(state) = record.state() {
                    port.note_event(key, Actor::Pruner, &cause, state).await?;
                }
            }
            Ok(deleted)
        }
    }
}

/// `Ok(false)`: held by a restore or a fork, or deleted meanwhile.
async fn delete_for_inactivity<P: Port>(port: &P, key: &ProjectKey, snapshot: &Snapshot) -> Result<bool, Error> {
    if snapshot.pinned {
        set_pinned(port, key, &snapshot.snapshot_id, false).await?;
    }
    let marked = match port.mark_deleting(key, &snapshot.snapshot_id).await {
        Ok(marked) => marked,
        Err(StoreError::Conflict { .. } | StoreError::NotFound) => return Ok(false),
        Err(err) => return Err(err.into()),
    };
    finish_delete(port, key, &marked).await?;
    tracing::info!(project = %key, snapshot = %snapshot.snapshot_id, "snapshot deleted: project inactive past deleteAfter");
    Ok(true)
}

#[cfg(test)]
#[path = "tiers_tests.rs"]
mod tests;
