//! A pruner tick: visit the projects the `prune` index says are due, apply `plan` to each, and
//! tell the index when each is next due. A tick with nothing due reads one empty page per shard.
//!
//! Deleting is resumable: the record is marked DELETING before the E2B snapshot is deleted and
//! removed after, so a tick that dies halfway leaves no READY record pointing at nothing, and the
//! project stays due (its `pruneAt` is only moved once a pass has fully succeeded).

use std::collections::{HashMap, HashSet};
use tokio::time::Instant;

use futures::StreamExt;
use time::OffsetDateTime;
use tracing::Instrument;

use super::plan::{Reason, plan};
use super::report::{PlannedDeletion, PruneReport, Visit};
use super::tiers::tier_plan;
use crate::Sandman;
use crate::domain::{ProjectKey, Snapshot, SnapshotId, SnapshotStatus};
use crate::error::Error;
use crate::snapshots::in_use;
use crate::store::{Consistency, PruneCandidate, StoreError, keys};

/// Projects read from the index per query.
const PAGE_SIZE: i32 = 50;
/// Projects visited at once.
const CONCURRENCY: usize = 8;
/// Deletions per project per tick; a project with more stays due and the next tick goes on.
const MAX_DELETES_PER_VISIT: usize = 100;

/// A PENDING snapshot younger than this may still have its writer at work.
pub const PENDING_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOptions {
    /// Report what would be deleted; write nothing, call nothing in E2B.
    pub dry_run: bool,
}

impl Sandman {
    /// One pruner tick over every due project, until done or until `config.pruner.tick_deadline`
    /// (no project is started after it). Fails only when the index cannot be read; a project
    /// whose pass fails is counted in `failures` and stays due.
    pub async fn prune(&self, options: PassOptions) -> Result<PruneReport, Error> {
        let started = Instant::now();
        let deadline = self.claiming_until(self.config.pruner.tick_deadline);
        let now = self.now();
        let mut report = PruneReport {
            dry_run: options.dry_run,
            ..PruneReport::default()
        };
        // A project whose pass failed is due again at once and may come round in this tick's pages.
        let mut seen = HashSet::new();
        'shards: for shard in keys::prune_shards() {
            let mut cursor = None;
            loop {
                if Instant::now() >= deadline {
                    report.stopped_at_deadline = true;
                    break 'shards;
                }
                let page = self.store.prune_page(&shard, now, PAGE_SIZE, cursor.as_ref()).await?;
                let due: Vec<PruneCandidate> = page.items.into_iter().filter(|c| seen.insert(c.key.clone())).collect();
                let expected = due.len();
                let visits: Vec<Visit> = futures::stream::iter(due)
                    .take_while(|_| std::future::ready(Instant::now() < deadline))
                    .map(|candidate| self.visit(candidate, now, options))
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
                let stopped = visits.len() < expected;
                visits.into_iter().for_each(|visit| report.record(visit));
                if stopped {
                    report.stopped_at_deadline = true;
                    break 'shards;
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            dry_run = report.dry_run,
            visited = report.projects_visited,
            deleted = report.snapshots_deleted,
            would_delete = report.would_delete,
            failures = report.failures,
            stopped_at_deadline = report.stopped_at_deadline,
            "prune tick done"
        );
        Ok(report)
    }

    async fn visit(&self, candidate: PruneCandidate, now: OffsetDateTime, options: PassOptions) -> Visit {
        let key = candidate.key.clone();
        let span = tracing::info_span!("retention", projectId = %key);
        match self.retention_pass(candidate, now, options).instrument(span).await {
            Ok(visit) => visit,
            Err(err) => {
                tracing::warn!(project = %key, error = %err, "retention pass failed; the project stays due");
                Visit {
                    failed: true,
                    ..Visit::default()
                }
            }
        }
    }

    async fn retention_pass(
        &self,
        candidate: PruneCandidate,
        now: OffsetDateTime,
        options: PassOptions,
    ) -> Result<Visit, Error> {
        let key = &candidate.key;
        let Some(record) = self.store.get_project(key, Consistency::Strong).await? else {
            return Ok(Visit::default());
        };
        let mut snapshots = self.store.all_snapshots(key).await?;
        let (stale_pending, rest): (Vec<Snapshot>, Vec<Snapshot>) = snapshots
            .into_iter()
            .partition(|s| s.status == SnapshotStatus::Pending && now - s.created_at >= PENDING_GRACE);
        snapshots = rest;
        if !options.dry_run {
            for pending in &stale_pending {
                self.finish_pending(key, pending).await?;
            }
            if !stale_pending.is_empty() {
                snapshots = self.store.all_snapshots(key).await?;
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
        let mut visit = Visit::default();
        for (id, reason) in doomed.iter().take(MAX_DELETES_PER_VISIT) {
            let Some(snapshot) = by_id.get(id) else {
                continue;
            };
            match self.delete_for_retention(key, snapshot, *reason).await {
                Ok(true) => visit.deleted += 1,
                Ok(false) => {}
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
        let next_due = earliest(plan.next_due, pending_due);
        let mut next_due = next_due;
        if !visit.failed && !record.project.inactivity.is_off() {
            let snapshots = self.store.all_snapshots(key).await?;
            let tiers = tier_plan(&record, &snapshots, now);
            match self.apply_tier(key, &tiers.step, &snapshots).await {
                Ok(deleted) => visit.deleted += u64::from(deleted),
                Err(err) => {
                    tracing::warn!(project = %key, error = %err, "an inactivity tier failed; the project stays due");
                    visit.failed = true;
                }
            }
            next_due = earliest(next_due, tiers.next_due);
        }
        let finished = doomed.len() <= MAX_DELETES_PER_VISIT && !visit.failed;
        if finished && !self.store.reschedule_prune(key, candidate.due_at, next_due).await? {
            tracing::debug!(project = %key, "the project was marked due during the pass; it stays due");
        }
        Ok(visit)
    }

    /// Marks and deletes one snapshot. `Ok(false)`: it was pinned or deleted meanwhile.
    async fn delete_for_retention(&self, key: &ProjectKey, snapshot: &Snapshot, reason: Reason) -> Result<bool, Error> {
        let marked = match reason {
            Reason::Unfinished => snapshot.clone(),
            Reason::BeyondKeepLast | Reason::OlderThanMaxAge => {
                match self
                    .store
                    .mark_deleting_at(key, &snapshot.snapshot_id, self.now())
                    .await
                {
                    Ok(marked) => marked,
                    Err(StoreError::Conflict { .. } | StoreError::NotFound) => return Ok(false),
                    Err(err) => return Err(err.into()),
                }
            }
        };
        self.finish_delete(key, &marked).await?;
        tracing::info!(project = %key, snapshot = %snapshot.snapshot_id, reason = ?reason, "snapshot deleted by retention");
        Ok(true)
    }
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
