//! Keeping a team within its snapshot quota when an automatic snapshot (before a kill or an idle
//! pause, an archive) takes it past: that snapshot is never refused, since refusing it would lose
//! the sandbox's work, so the team's oldest unpinned snapshots are deleted instead, in E2B and in
//! the table. Each deletion is a line in its project's lifecycle log, and its `snapshot.deleted`
//! event carries `"reason": "team-snapshot-quota"`.
//!
//! Which go first: unpinned READY snapshots, oldest first, each project's newest one last (it is
//! the first rung of that project's restore ladder); never a pinned one, one held for a restore or
//! a fork, or the one a live sandbox was restored from. When nothing else can go (everything left
//! is pinned or in use) the team stays over its quota, and says so in the log; pins are limited
//! per project, so this bounds what a team holds too.
//!
//! Cost, only when a team passes its quota: one strongly consistent read of its count, the team's
//! projects from `byTeam`, one query of each project's snapshots, and per deletion a read of its
//! project, the usual deletion (E2B and two transactions) and a log line.

use crate::Sandman;
use crate::domain::{Actor, ProjectKey, Snapshot, SnapshotStatus};
use crate::error::Error;
use crate::snapshots::in_use;
use crate::store::{Consistency, StoreError};

/// The `deleteReason` of a snapshot deleted to keep its team within its quota.
pub const QUOTA_REASON: &str = "team-snapshot-quota";

/// A snapshot that may go, and how it ranks: older first, a project's newest last.
struct Candidate {
    key: ProjectKey,
    snapshot: Snapshot,
    newest_of_project: bool,
}

impl Sandman {
    /// After an automatic snapshot that took its team past the quota: delete the team's oldest
    /// unpinned snapshots until it is within. Failures are logged, never returned: the snapshot
    /// that was taken stands.
    pub(crate) async fn make_room(&self, taken: &Snapshot) {
        let project = ProjectKey::new(taken.team_id.clone(), taken.project_id.clone());
        match self.prune_for_quota(&project, taken).await {
            Ok((0, 0)) => {}
            Ok((pruned, 0)) => {
                tracing::info!(project = %project, pruned, "snapshots pruned to keep the team within its quota")
            }
            Ok((pruned, left)) => tracing::warn!(
                project = %project, pruned, over = left,
                "the team stays over its snapshot quota: the rest is pinned or in use"
            ),
            Err(err) => tracing::warn!(project = %project, error = %err, "pruning for the snapshot quota failed"),
        }
    }

    /// How many snapshots were deleted, and by how many the team is still over.
    async fn prune_for_quota(&self, project: &ProjectKey, taken: &Snapshot) -> Result<(u64, u64), Error> {
        let limit = u64::from(self.config.quotas.snapshots_per_team);
        let mut over = self
            .store
            .team_snapshot_count(&project.team)
            .await?
            .saturating_sub(limit);
        if over == 0 {
            return Ok((0, 0));
        }
        let mut pruned = 0;
        for candidate in self.quota_candidates(project, taken).await? {
            if over == 0 {
                break;
            }
            if self.prune_one(&candidate, project, limit).await? {
                pruned += 1;
                over -= 1;
            }
        }
        Ok((pruned, over))
    }

    /// The team's snapshots that may go, in the order they go.
    async fn quota_candidates(&self, project: &ProjectKey, taken: &Snapshot) -> Result<Vec<Candidate>, Error> {
        let team = &project.team;
        let mut candidates = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.list_projects(team, cursor.as_ref(), 100).await?;
            for summary in page.items {
                let key = ProjectKey::new(team.clone(), summary.project_id);
                let ready: Vec<Snapshot> = self
                    .store
                    .all_snapshots(&key)
                    .await?
                    .into_iter()
                    .filter(|s| s.status == SnapshotStatus::Ready)
                    .collect();
                let newest = ready
                    .iter()
                    .max_by_key(|s| (s.created_at, s.snapshot_id.clone()))
                    .map(|s| s.snapshot_id.clone());
                candidates.extend(
                    ready
                        .into_iter()
                        .filter(|s| !s.pinned && s.snapshot_id != taken.snapshot_id)
                        .map(|snapshot| Candidate {
                            newest_of_project: newest.as_ref() == Some(&snapshot.snapshot_id),
                            key: key.clone(),
                            snapshot,
                        }),
                );
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        candidates.sort_by_key(|c| {
            (
                c.newest_of_project,
                c.snapshot.created_at,
                c.snapshot.snapshot_id.clone(),
            )
        });
        Ok(candidates)
    }

    /// Deletes one candidate, unless it turns out to be in use, pinned or held meanwhile
    /// (`Ok(false)`), and notes it in its project's lifecycle log.
    async fn prune_one(&self, candidate: &Candidate, made_by: &ProjectKey, limit: u64) -> Result<bool, Error> {
        let (key, id) = (&candidate.key, &candidate.snapshot.snapshot_id);
        let Some(record) = self.store.get_project(key, Consistency::Strong).await? else {
            return Ok(false);
        };
        if in_use(&record, id) {
            return Ok(false);
        }
        let marked = match self
            .store
            .mark_deleting_for(key, id, self.now(), Some(QUOTA_REASON))
            .await
        {
            Ok(marked) => marked,
            Err(StoreError::Conflict { .. } | StoreError::NotFound) => return Ok(false),
            Err(err) => return Err(err.into()),
        };
        self.finish_delete(key, &marked).await?;
        tracing::info!(project = %key, snapshot = %id, "snapshot deleted: the team's snapshot quota");
        if let Some(state) = record.state() {
            let cause = format!(
                "snapshot {id} deleted: the team's snapshot quota ({limit}) was passed by an automatic snapshot of project {}",
                made_by.project
            );
            self.store
                .note_event(key, Actor::Pruner, &cause, state, self.now())
                .await?;
        }
        Ok(true)
    }
}
