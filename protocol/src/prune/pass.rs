//! One project's retention pass: the pruner (`sandman::retention`) visits the projects the `prune`
//! index says are due and runs this on each. Deleting is resumable: the record is marked DELETING
//! before the E2B snapshot is deleted and removed after, so a pass that dies halfway leaves no READY
//! record pointing at nothing, and the project stays due (its `pruneAt` is only moved once a pass
//! has fully succeeded).

use std::collections::HashMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::plan::{Reason, plan};
use super::tiers::{TierStep, apply_tier, tier_plan};
use crate::domain::{ProjectId, ProjectKey, Snapshot, SnapshotId, SnapshotStatus, TeamId};
use crate::error::{Error, StoreError};
use crate::ops::snapshot::{finish_delete, finish_pending, in_use};
use crate::port::{Consistency, Port};
use crate::record::PruneCandidate;

/// Deletions per project per tick; a project with more stays due and the next tick goes on.
const MAX_DELETES_PER_VISIT: usize = 100;

/// A PENDING snapshot younger than this may still have its writer at work.
pub const PENDING_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOptions {
    /// Report what would be deleted; write nothing, call nothing in E2B.
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedDeletion {
    pub team_id: TeamId,
    pub project_id: ProjectId,
    pub snapshot_id: SnapshotId,
    pub reason: Reason,
}

/// One project's pass.
#[derive(Debug, Default)]
pub struct Visit {
    pub deleted: u64,
    pub failed: bool,
    pub planned: Vec<PlannedDeletion>,
}

pub async fn pass<P: Port>(
    port: &P,
    candidate: PruneCandidate,
    now: OffsetDateTime,
    options: PassOptions,
) -> Result<Visit, Error> {
    let key = &candidate.key;
    let Some(mut record) = port.read(key, Consistency::Strong).await? else {
        return Ok(Visit::default());
    };
    let mut visit = Visit::default();
    let mut tier_due = None;
    let mut tier_acted = false;
    if !options.dry_run && !record.project.inactivity.is_off() {
        // The tiers first: the snapshot an archive takes is then kept or pruned by this pass.
        let snapshots = port.list_snapshots(key, usize::MAX).await?;
        let tiers = tier_plan(&record, &snapshots, now);
        match apply_tier(port, &record, &tiers.step, &snapshots).await {
            Ok(deleted) => visit.deleted += u64::from(deleted),
            Err(err) => {
                tracing::warn!(project = %key, error = %err, "an inactivity tier failed; the project stays due");
                visit.failed = true;
            }
        }
        tier_due = tiers.next_due;
        if tiers.step != TierStep::Nothing {
            // Read again before listing: its marks then count the archive's snapshot.
            match port.read(key, Consistency::Strong).await? {
                Some(now_record) => record = now_record,
                None => return Ok(visit),
            }
            tier_acted = true;
        }
    }
    let mut snapshots = port.list_snapshots(key, usize::MAX).await?;
    if tier_acted {
        // The marks just read include the tier's own writes: the next tier is scheduled from the
        // project as it now is (one that is due already keeps it due).
        let next = tier_plan(&record, &snapshots, now);
        tier_due = match next.step {
            TierStep::Nothing => next.next_due,
            _ => Some(now),
        };
    }
    let (stale_pending, rest): (Vec<Snapshot>, Vec<Snapshot>) = snapshots
        .into_iter()
        .partition(|s| s.status == SnapshotStatus::Pending && now - s.created_at >= PENDING_GRACE);
    snapshots = rest;
    if !options.dry_run {
        for pending in &stale_pending {
            finish_pending(port, key, pending).await?;
        }
        if !stale_pending.is_empty() {
            snapshots = port.list_snapshots(key, usize::MAX).await?;
        }
    }
    let live_source = record
        .session
        .as_ref()
        .and_then(|s| s.restored_from.as_ref())
        .filter(|id| in_use(&record, id));
    let plan = plan(&snapshots, record.project.retention, now, live_source);
    let doomed: Vec<(&SnapshotId, Reason)> = plan
        .unfinished
        .iter()
        .map(|id| (id, Reason::Unfinished))
        .chain(plan.delete.iter().map(|d| (&d.snapshot_id, d.reason)))
        .collect();
    if options.dry_run {
        let planned = doomed.iter().map(|(id, reason)| planned(key, id, *reason)).collect();
        return Ok(Visit {
            planned,
            ..Visit::default()
        });
    }
    let by_id: HashMap<&SnapshotId, &Snapshot> = snapshots.iter().map(|s| (&s.snapshot_id, s)).collect();
    let mut kept_by_e2b = false;
    let mut held_until = None;
    for (id, reason) in doomed.iter().take(MAX_DELETES_PER_VISIT) {
        let Some(snapshot) = by_id.get(id) else {
            continue;
        };
        match delete_for_retention(port, key, snapshot, *reason, now).await {
            Ok(Deletion::Done) => visit.deleted += 1,
            Ok(Deletion::Skipped) => {}
            Ok(Deletion::Held(until)) => held_until = earliest(held_until, Some(until)),
            Ok(Deletion::KeptByE2b) => kept_by_e2b = true,
            Err(err) => {
                tracing::warn!(project = %key, snapshot = %id, error = %err, "deleting a snapshot failed; the next tick retries");
                visit.failed = true;
            }
        }
    }
    // A pending snapshot still in its grace period brings the project back when it ends.
    let pending_due = snapshots
        .iter()
        .filter(|s| s.status == SnapshotStatus::Pending)
        .map(|s| s.created_at + PENDING_GRACE)
        .min();
    // Held since the listing: due again when the hold lapses, if its release has not marked it.
    let next_due = earliest(earliest(plan.next_due, pending_due), held_until);
    // E2B keeps a snapshot while a sandbox made from it runs: looked at again later.
    let next_due = match kept_by_e2b {
        true => earliest(next_due, Some(now + super::plan::IN_USE_RECHECK)),
        false => next_due,
    };
    let next_due = earliest(next_due, tier_due);
    let finished = doomed.len() <= MAX_DELETES_PER_VISIT && !visit.failed;
    if finished
        && !port
            .reschedule_prune(key, candidate.due_at, record.prune_marks, next_due)
            .await?
    {
        tracing::debug!(project = %key, "the project was marked due during the pass; it stays due");
    }
    Ok(visit)
}

/// What became of one snapshot the plan would delete.
enum Deletion {
    Done,
    /// Pinned or deleted meanwhile (an unpin marks the project due).
    Skipped,
    /// Held by a restore or a fork since the listing, until then.
    Held(OffsetDateTime),
    /// E2B keeps it while a sandbox made from it runs (a fork's, say): READY again, not a failure.
    KeptByE2b,
}

async fn delete_for_retention<P: Port>(
    port: &P,
    key: &ProjectKey,
    snapshot: &Snapshot,
    reason: Reason,
    now: OffsetDateTime,
) -> Result<Deletion, Error> {
    let marked = match reason {
        Reason::Unfinished => snapshot.clone(),
        Reason::BeyondKeepLast | Reason::OlderThanMaxAge => {
            match port.mark_deleting(key, &snapshot.snapshot_id).await {
                Ok(marked) => marked,
                Err(StoreError::NotFound) => return Ok(Deletion::Skipped),
                Err(StoreError::Conflict { .. }) => {
                    let now_held = port.get_snapshot(key, &snapshot.snapshot_id).await?;
                    return Ok(match now_held.and_then(|s| s.held_until).filter(|until| *until > now) {
                        Some(until) => Deletion::Held(until),
                        None => Deletion::Skipped,
                    });
                }
                Err(err) => return Err(err.into()),
            }
        }
    };
    match finish_delete(port, key, &marked).await {
        Ok(()) => {}
        Err(Error::Conflict(why)) => {
            tracing::info!(project = %key, snapshot = %snapshot.snapshot_id, why, "snapshot kept by E2B for now");
            return Ok(Deletion::KeptByE2b);
        }
        Err(err) => return Err(err),
    }
    tracing::info!(project = %key, snapshot = %snapshot.snapshot_id, reason = ?reason, "snapshot deleted by retention");
    Ok(Deletion::Done)
}

fn earliest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn planned(key: &ProjectKey, id: &SnapshotId, reason: Reason) -> PlannedDeletion {
    PlannedDeletion {
        team_id: key.team.clone(),
        project_id: key.project.clone(),
        snapshot_id: id.clone(),
        reason,
    }
}
