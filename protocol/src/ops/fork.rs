//! Forking a project: a new project of the same team whose first open restores a snapshot of the
//! source (a chosen one, the newest by default, or one taken of the running sandbox now). The
//! snapshot is held until that first open, so neither the pruner nor a delete takes it first;
//! from then on the fork has its own sandbox, snapshots and log.
//!
//! `from: live` uses E2B's own fork (`POST /sandboxes/{id}/fork`) instead: the new project starts
//! RUNNING at once with a copy of the source's running sandbox (`workspace/fork_live.rs`). Its
//! sandbox carries the source's metadata (E2B copies it, and cannot change it), so webhooks and
//! the reconciler resolve a sandbox whose metadata names a session that does not hold it by the
//! sandbox id (`bySandbox`), never moving the source.

use std::time::Duration;

use super::snapshot::{create_snapshot, snapshot};
use super::{fork_live, project};
use crate::domain::{
    ForkSource, ProjectId, ProjectKey, ProjectSpec, SessionState, Snapshot, SnapshotId, SnapshotKind, SnapshotStatus,
};
use crate::error::{Error, StoreError};
use crate::port::{Consistency, Port};
use crate::record::ProjectRecord;

/// How long a fork's source snapshot is held waiting for the fork's first open.
pub const FORK_HOLD: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForkFrom {
    /// A snapshot of the source: the given one, or its newest READY one.
    Snapshot(Option<SnapshotId>),
    /// A snapshot of the source's running sandbox, taken now.
    Running,
    /// E2B's fork of the source's running sandbox: the new project runs at once, with its memory.
    Live,
}

pub async fn fork<P: Port>(
    port: &P,
    source: &ProjectKey,
    project_id: ProjectId,
    from: ForkFrom,
) -> Result<ProjectRecord, Error> {
    let new = ProjectKey::new(source.team.clone(), project_id);
    if new == *source {
        return Err(Error::Conflict("a fork needs a project id of its own".into()));
    }
    let record = project(port, source).await?;
    if port.read(&new, Consistency::Strong).await?.is_some() {
        return Err(Error::Conflict(format!("project {} exists already", new.project)));
    }
    port.project_room(&new).await?;
    let p = &record.project;
    let spec = ProjectSpec {
        key: new.clone(),
        template_id: p.template_id.clone(),
        idle: p.idle,
        retention: p.retention,
        sandbox_timeout: p.sandbox_timeout,
        snapshot_before_kill: p.snapshot_before_kill,
        public_traffic: p.public_traffic,
        inactivity: p.inactivity,
    };
    let snapshot = match from {
        ForkFrom::Live => return fork_live::fork_live(port, &record, spec).await,
        ForkFrom::Snapshot(Some(id)) => snapshot(port, source, &id).await?,
        ForkFrom::Snapshot(None) => newest_ready(port, source).await?,
        ForkFrom::Running => {
            if record.state() != Some(SessionState::Running) {
                return Err(Error::Conflict(
                    "the source's sandbox is not running; fork from a snapshot".into(),
                ));
            }
            let description = format!("fork to {}", new.project);
            create_snapshot(port, &record, SnapshotKind::Manual, description).await?
        }
    };
    if snapshot.status != SnapshotStatus::Ready {
        return Err(Error::Conflict("the snapshot is not ready".into()));
    }
    port.hold_for_fork(source, &snapshot.snapshot_id, port.now() + FORK_HOLD)
        .await
        .map_err(|err| match err {
            StoreError::NotFound => Error::Conflict("the snapshot is being deleted".into()),
            other => other.into(),
        })?;
    let fork = ForkSource {
        project_id: source.project.clone(),
        snapshot_id: snapshot.snapshot_id.clone(),
    };
    match port.create_project(&spec, Some(&fork)).await {
        Ok(created) => {
            tracing::info!(project = %new, source = %source, snapshot = %snapshot.snapshot_id, "forked");
            Ok(created)
        }
        Err(StoreError::Conflict { .. }) => {
            release_fork_hold(port, &new, &fork).await;
            Err(Error::Conflict(format!("project {} exists already", new.project)))
        }
        Err(err) => Err(err.into()),
    }
}

async fn newest_ready<P: Port>(port: &P, key: &ProjectKey) -> Result<Snapshot, Error> {
    port.list_snapshots(key, 20)
        .await?
        .into_iter()
        .find(|s| s.status == SnapshotStatus::Ready)
        .ok_or_else(|| {
            Error::Conflict("the project has no snapshot to fork from; take one, or fork its running sandbox".into())
        })
}

/// The snapshot a fork's first open restores, if the project is a fork not yet opened.
pub(crate) async fn fork_snapshot<P: Port>(port: &P, record: &ProjectRecord) -> Result<Option<Snapshot>, Error> {
    let Some(fork) = &record.project.fork_of else {
        return Ok(None);
    };
    let source = ProjectKey::new(record.project.team_id.clone(), fork.project_id.clone());
    match port.get_snapshot(&source, &fork.snapshot_id).await? {
        Some(snapshot) if snapshot.status == SnapshotStatus::Ready => Ok(Some(snapshot)),
        _ => {
            tracing::warn!(project = %record.project.key(), "the fork's source snapshot is gone; opening from the template");
            Ok(None)
        }
    }
}

/// After the fork's first sandbox: the project stops being a fork and its source's snapshot
/// is released, by whichever open cleared the mark. Failures only leave a hold that lapses on
/// its own.
pub(crate) async fn fork_opened<P: Port>(port: &P, key: &ProjectKey, fork: &ForkSource) {
    match port.clear_fork(key).await {
        Ok(true) => release_fork_hold(port, key, fork).await,
        Ok(false) => {}
        Err(err) => tracing::warn!(project = %key, error = %err, "could not clear the fork mark"),
    }
}

/// Takes back the hold fork `key` put on its source's snapshot: once per fork, from the write
/// that ended its need (its first open's `clear_fork`, its deletion unopened, or its creation
/// lost).
pub(crate) async fn release_fork_hold<P: Port>(port: &P, key: &ProjectKey, fork: &ForkSource) {
    let source = ProjectKey::new(key.team.clone(), fork.project_id.clone());
    if let Err(err) = port.release_fork_hold(&source, &fork.snapshot_id).await {
        tracing::warn!(project = %key, error = %err, "the fork's hold lapses on its own");
        return;
    }
    // Retention may have kept the snapshot only for the fork: the source's pruner looks again
    // now (failing that, it looks when the hold would have lapsed).
    match port.mark_prune_due(&source).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(err) => tracing::warn!(project = %source, error = %err, "the source is looked at when the hold lapses"),
    }
}
