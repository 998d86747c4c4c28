//! Snapshots: taken from a running sandbox, restorable by create, deletable when unused.

use time::OffsetDateTime;

use super::World;
use crate::error::ApiError;
use crate::events::{EventDetail, EventType};
use crate::ids;
use crate::sandbox::{SandboxState, Transition};
use crate::snapshot::{DEFAULT_TAG, SnapshotRef, SnapshotView, team_namespace};

impl World {
    pub(super) fn find_snapshot(&self, team: &str, reference: &SnapshotRef<'_>) -> Option<&SnapshotView> {
        let by_id = self.snapshots.get(reference.base).filter(|s| s.team_id == team);
        let namespace_ok = reference.namespace.is_none_or(|ns| ns == team_namespace(team));
        let by_name = || {
            let key = (team.to_owned(), reference.base.to_owned());
            self.snapshot_names.get(&key).and_then(|id| self.snapshots.get(id))
        };
        match reference.namespace {
            None => by_id.or_else(by_name),
            Some(_) if namespace_ok => by_name(),
            Some(_) => None,
        }
    }

    /// Ends a snapshot begun with [`World::begin`]: records it and lets the sandbox run on.
    /// A name already in use gets a new build of the same snapshot template.
    pub(crate) fn finish_snapshot(
        &mut self,
        team: &str,
        id: &str,
        name: Option<String>,
        now: OffsetDateTime,
    ) -> Result<SnapshotView, ApiError> {
        let sandbox = self.live(team, id)?;
        if sandbox.transition != Some(Transition::Snapshotting) {
            return Err(ApiError::Conflict(format!(
                "Sandbox \"{id}\" is no longer snapshotting"
            )));
        }
        let (cpu_count, memory_mb, disk_size_mb) = (sandbox.cpu_count, sandbox.memory_mb, sandbox.disk_size_mb);
        let files = sandbox.files.clone();
        let existing = name
            .as_ref()
            .and_then(|n| self.snapshot_names.get(&(team.to_owned(), n.clone())))
            .cloned();
        let template_id = existing.unwrap_or_else(ids::template_id);
        let (snapshot_id, names) = match &name {
            Some(name) => {
                let full = format!("{}/{name}:{DEFAULT_TAG}", team_namespace(team));
                (full.clone(), vec![full])
            }
            None => (format!("{template_id}:{DEFAULT_TAG}"), Vec::new()),
        };
        let snapshot = SnapshotView {
            snapshot_id: snapshot_id.clone(),
            template_id: template_id.clone(),
            names,
            name: name.clone(),
            team_id: team.to_owned(),
            source_sandbox_id: id.to_owned(),
            build_id: ids::uuid(),
            cpu_count,
            memory_mb,
            disk_size_mb,
            created_at: now,
            files,
            deleted_at: None,
        };
        if let Some(name) = name {
            self.snapshot_names.insert((team.to_owned(), name), template_id.clone());
        }
        self.snapshots.insert(template_id, snapshot.clone());
        if let Some(sandbox) = self.sandboxes.get_mut(id) {
            sandbox.transition = None;
        }
        let detail = EventDetail {
            snapshot_id: Some(snapshot_id),
            ..EventDetail::default()
        };
        self.emit(EventType::Checkpointed, id, now, detail);
        self.reschedule(id);
        Ok(snapshot)
    }

    /// Unordered; the caller sorts and paginates.
    pub(crate) fn list_snapshots(
        &self,
        team: &str,
        sandbox_id: Option<&str>,
        name: Option<&str>,
    ) -> Vec<&SnapshotView> {
        let named = name.map(SnapshotRef::parse);
        let wanted = named
            .as_ref()
            .map(|r| self.find_snapshot(team, r).map(|s| s.template_id.clone()));
        self.snapshots
            .values()
            .filter(|s| s.team_id == team)
            .filter(|s| sandbox_id.is_none_or(|id| s.source_sandbox_id == id))
            .filter(|s| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.as_deref() == Some(s.template_id.as_str()))
            })
            .collect()
    }

    /// Refused (400, as E2B does) while a sandbox created from it runs.
    pub(crate) fn delete_snapshot(&mut self, team: &str, reference: &str, now: OffsetDateTime) -> Result<(), ApiError> {
        let parsed = SnapshotRef::parse(reference);
        let Some(snapshot) = self.find_snapshot(team, &parsed).cloned() else {
            return Err(ApiError::NotFound(format!("template '{reference}' not found")));
        };
        let children = self.snapshot_children.get(&snapshot.template_id);
        let in_use = children.is_some_and(|ids| {
            ids.iter()
                .filter_map(|id| self.sandboxes.get(id))
                .any(|s| s.state == SandboxState::Running)
        });
        if in_use {
            return Err(ApiError::BadRequest(
                "cannot delete template because there are running sandboxes using it".to_owned(),
            ));
        }
        self.snapshots.remove(&snapshot.template_id);
        self.deleted_snapshots.push(SnapshotView {
            deleted_at: Some(now),
            ..snapshot.clone()
        });
        self.snapshot_children.remove(&snapshot.template_id);
        if let Some(name) = snapshot.name {
            self.snapshot_names.remove(&(team.to_owned(), name));
        }
        Ok(())
    }
}
