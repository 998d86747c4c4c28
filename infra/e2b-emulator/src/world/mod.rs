//! The emulated E2B: every sandbox, snapshot and webhook, behind one short-held lock.
//!
//! Operations take the caller's team and the emulated `now`; they never await.
//! Lifecycle events are published to the delivery queue as they happen.

mod expiry;
mod forks;
mod sandboxes;
mod snapshots;
mod webhooks;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::delivery::{Publisher, Target};
use crate::error::ApiError;
use crate::events::{EventDetail, EventType, LifecycleEvent};
use crate::sandbox::SandboxView;
use crate::snapshot::SnapshotView;
use crate::webhook::Webhook;

pub(crate) use sandboxes::{ListFilter, NewSandbox};
pub(crate) use webhooks::{NewWebhook, WebhookChanges};

#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub paused_retention: Option<Duration>,
    pub max_timeout: Duration,
    pub session_cap: Option<Duration>,
}

pub(crate) struct World {
    limits: Limits,
    publisher: Publisher,
    sandboxes: HashMap<String, SandboxView>,
    live_by_team: HashMap<String, HashSet<String>>,
    /// When each live sandbox next needs attention (timeout or retention), by time.
    deadlines: BTreeSet<(OffsetDateTime, String)>,
    deadline_of: HashMap<String, OffsetDateTime>,
    /// Keyed by raw template id.
    snapshots: HashMap<String, SnapshotView>,
    /// Deleted ones, in the order they were deleted.
    deleted_snapshots: Vec<SnapshotView>,
    snapshot_names: HashMap<(String, String), String>,
    /// Sandboxes created from each snapshot (raw template id).
    snapshot_children: HashMap<String, HashSet<String>>,
    template_builds: HashMap<String, String>,
    webhooks: HashMap<String, Webhook>,
    events_by_team: HashMap<String, Vec<Arc<LifecycleEvent>>>,
}

impl World {
    pub(crate) fn new(limits: Limits, publisher: Publisher) -> Self {
        Self {
            limits,
            publisher,
            sandboxes: HashMap::new(),
            live_by_team: HashMap::new(),
            deadlines: BTreeSet::new(),
            deadline_of: HashMap::new(),
            snapshots: HashMap::new(),
            deleted_snapshots: Vec::new(),
            snapshot_names: HashMap::new(),
            snapshot_children: HashMap::new(),
            template_builds: HashMap::new(),
            webhooks: HashMap::new(),
            events_by_team: HashMap::new(),
        }
    }

    /// Forgets every sandbox, snapshot, webhook and event.
    pub(crate) fn reset(&mut self) {
        *self = World::new(self.limits.clone(), self.publisher.clone());
    }

    pub(crate) fn sandbox_view(&self, id: &str) -> Option<SandboxView> {
        self.sandboxes.get(id).cloned()
    }

    pub(crate) fn sandbox_views(&self) -> Vec<SandboxView> {
        let mut all: Vec<_> = self.sandboxes.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.sandbox_id).cmp(&(b.created_at, &b.sandbox_id)));
        all
    }

    pub(crate) fn snapshot_views(&self) -> Vec<SnapshotView> {
        let mut all: Vec<_> = self.snapshots.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.template_id).cmp(&(b.created_at, &b.template_id)));
        all
    }

    pub(crate) fn snapshot_history(&self) -> Vec<SnapshotView> {
        let mut all: Vec<_> = self
            .snapshots
            .values()
            .chain(&self.deleted_snapshots)
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.created_at, &a.template_id).cmp(&(b.created_at, &b.template_id)));
        all
    }

    /// Writes a file into a live sandbox (the admin route; any team).
    pub(crate) fn write_file(&mut self, id: &str, path: &str, content: &str) -> Result<(), ApiError> {
        match self.sandboxes.get_mut(id) {
            Some(sandbox) if sandbox.is_live() => {
                sandbox.files.insert(path.to_owned(), content.to_owned());
                Ok(())
            }
            _ => Err(ApiError::SandboxNotFound(id.to_owned())),
        }
    }

    /// A live sandbox of `team`; killed, unknown and foreign sandboxes read as not found.
    fn live(&self, team: &str, id: &str) -> Result<&SandboxView, ApiError> {
        match self.sandboxes.get(id) {
            Some(sandbox) if sandbox.team_id == team && sandbox.is_live() => Ok(sandbox),
            _ => Err(ApiError::SandboxNotFound(id.to_owned())),
        }
    }

    fn live_mut(&mut self, team: &str, id: &str) -> Result<&mut SandboxView, ApiError> {
        match self.sandboxes.get_mut(id) {
            Some(sandbox) if sandbox.team_id == team && sandbox.is_live() => Ok(sandbox),
            _ => Err(ApiError::SandboxNotFound(id.to_owned())),
        }
    }

    /// Records the event and queues it for every enabled webhook of the team that wants it.
    fn emit(&mut self, event_type: EventType, id: &str, at: OffsetDateTime, detail: EventDetail) {
        let Some(sandbox) = self.sandboxes.get(id) else {
            return;
        };
        let event = Arc::new(LifecycleEvent::new(event_type, sandbox, at, detail));
        tracing::info!(sandbox_id = id, event = event_type.as_str(), "lifecycle event");
        let body = Arc::new(serde_json::to_vec(&event.webhook_body).unwrap_or_default());
        for webhook in self.webhooks.values() {
            if webhook.team_id == event.team_id && webhook.wants(event_type) {
                let target = Target {
                    webhook_id: webhook.id.clone(),
                    url: webhook.url.clone(),
                    secret: webhook.secret.clone(),
                };
                self.publisher
                    .publish(&event.id, event_type.as_str(), id, body.clone(), target);
            }
        }
        self.events_by_team
            .entry(event.team_id.clone())
            .or_default()
            .push(event);
    }

    /// Every event emitted so far, of every team, oldest first per team.
    pub(crate) fn event_views(&self) -> Vec<crate::events::EventView> {
        self.events_by_team
            .values()
            .flat_map(|events| events.iter().map(|event| event.view.clone()))
            .collect()
    }

    pub(crate) fn events(&self, team: &str, sandbox_id: Option<&str>) -> Vec<Arc<LifecycleEvent>> {
        let all = self.events_by_team.get(team).map(Vec::as_slice).unwrap_or_default();
        all.iter()
            .filter(|event| sandbox_id.is_none_or(|id| event.sandbox_id == id))
            .cloned()
            .collect()
    }

    fn build_id_for(&mut self, template: &str) -> String {
        self.template_builds
            .entry(template.to_owned())
            .or_insert_with(crate::ids::uuid)
            .clone()
    }

    fn check_timeout(&self, seconds: i64) -> Result<Duration, ApiError> {
        let seconds =
            u64::try_from(seconds).map_err(|_| ApiError::BadRequest("timeout must not be negative".to_owned()))?;
        let timeout = Duration::from_secs(seconds);
        if timeout > self.limits.max_timeout {
            return Err(ApiError::BadRequest(format!(
                "Timeout cannot be greater than {} hours",
                self.limits.max_timeout.as_secs() / 3600
            )));
        }
        Ok(timeout)
    }
}
