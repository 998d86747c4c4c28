//! Sandbox operations: create, read, list, pause, connect/resume, timeouts, kill.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::World;
use crate::clock;
use crate::error::ApiError;
use crate::events::{EventDetail, EventType};
use crate::ids;
use crate::sandbox::{OnTimeout, SandboxState, SandboxView, Transition};
use crate::snapshot::{SnapshotRef, team_namespace};

pub(crate) const KILL_REASON_REQUEST: &str = "request";

const DEFAULT_CPU_COUNT: u32 = 2;
const DEFAULT_MEMORY_MB: u32 = 512;
const DEFAULT_DISK_SIZE_MB: u32 = 10240;

#[derive(Debug, Clone)]
pub(crate) struct NewSandbox {
    pub template: String,
    pub timeout_secs: i64,
    pub on_timeout: OnTimeout,
    pub auto_resume: bool,
    pub metadata: BTreeMap<String, String>,
    pub env_vars: BTreeMap<String, String>,
    pub network_rules: crate::secrets::NetworkRules,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ListFilter {
    pub states: Vec<SandboxState>,
    pub metadata: Vec<(String, String)>,
    pub template: Option<String>,
    pub started_after: Option<OffsetDateTime>,
}

impl World {
    pub(crate) fn create(
        &mut self,
        team: &str,
        request: NewSandbox,
        now: OffsetDateTime,
    ) -> Result<SandboxView, ApiError> {
        if request.template.trim().is_empty() {
            return Err(ApiError::BadRequest("templateID is required".to_owned()));
        }
        let timeout = self.check_timeout(request.timeout_secs)?;
        let reference = SnapshotRef::parse(&request.template);
        let snapshot = self.find_snapshot(team, &reference).cloned();
        if snapshot.is_none() && reference.must_exist(&team_namespace(team)) {
            return Err(ApiError::NotFound(format!("template '{}' not found", request.template)));
        }
        let (template_id, build_id, resources) = match &snapshot {
            Some(s) => (
                s.template_id.clone(),
                s.build_id.clone(),
                (s.cpu_count, s.memory_mb, s.disk_size_mb),
            ),
            None => (
                request.template.clone(),
                self.build_id_for(&request.template),
                (DEFAULT_CPU_COUNT, DEFAULT_MEMORY_MB, DEFAULT_DISK_SIZE_MB),
            ),
        };
        let id = ids::sandbox_id();
        let sandbox = SandboxView {
            sandbox_id: id.clone(),
            team_id: team.to_owned(),
            template_id,
            build_id,
            from_snapshot: snapshot.as_ref().map(|s| s.template_id.clone()),
            state: SandboxState::Running,
            transition: None,
            on_timeout: request.on_timeout,
            auto_resume: request.auto_resume,
            metadata: request.metadata,
            env_vars: request.env_vars,
            network_rules: request.network_rules,
            cpu_count: resources.0,
            memory_mb: resources.1,
            disk_size_mb: resources.2,
            envd_access_token: ids::access_token(),
            execution_id: ids::uuid(),
            created_at: now,
            started_at: now,
            end_at: clock::add(now, timeout),
            paused_at: None,
            killed_at: None,
            kill_reason: None,
            cpu_used_pct: None,
            files: snapshot.as_ref().map(|s| s.files.clone()).unwrap_or_default(),
            forked_from: None,
            history: vec![crate::sandbox::StateChange {
                at: now,
                state: SandboxState::Running,
            }],
        };
        if let Some(snapshot) = &snapshot {
            self.snapshot_children
                .entry(snapshot.template_id.clone())
                .or_default()
                .insert(id.clone());
        }
        self.live_by_team.entry(team.to_owned()).or_default().insert(id.clone());
        self.sandboxes.insert(id.clone(), sandbox.clone());
        self.emit(EventType::Created, &id, now, EventDetail::default());
        self.reschedule(&id);
        Ok(sandbox)
    }

    pub(crate) fn get(&self, team: &str, id: &str) -> Result<SandboxView, ApiError> {
        self.live(team, id).cloned()
    }

    /// Unordered; the caller sorts and paginates.
    pub(crate) fn list(&self, team: &str, filter: &ListFilter) -> Vec<&SandboxView> {
        let Some(ids) = self.live_by_team.get(team) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| self.sandboxes.get(id))
            .filter(|s| filter.states.is_empty() || filter.states.contains(&s.reported_state()))
            .filter(|s| filter.metadata.iter().all(|(k, v)| s.metadata.get(k) == Some(v)))
            .filter(|s| filter.template.as_ref().is_none_or(|t| &s.template_id == t))
            .filter(|s| filter.started_after.is_none_or(|after| s.started_at >= after))
            .collect()
    }

    /// Starts a transition (pause, snapshot or fork) on a running, idle sandbox. A pausing sandbox
    /// already reads as paused, and its history says so from now (`now`).
    pub(crate) fn begin(
        &mut self,
        team: &str,
        id: &str,
        transition: Transition,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let sandbox = self.live_mut(team, id)?;
        sandbox.ensure_running()?;
        sandbox.transition = Some(transition);
        if transition == Transition::Pausing {
            sandbox.record(now, SandboxState::Paused);
        }
        self.reschedule(id);
        Ok(())
    }

    /// Ends a pause begun with [`World::begin`]; a kill in between wins.
    pub(crate) fn finish_pause(&mut self, team: &str, id: &str, now: OffsetDateTime) -> Result<(), ApiError> {
        let sandbox = self.live(team, id)?;
        if sandbox.transition != Some(Transition::Pausing) {
            return Err(ApiError::Conflict(format!("Sandbox \"{id}\" is no longer pausing")));
        }
        self.mark_paused(id, now);
        Ok(())
    }

    /// Running: extends the TTL only (`false`). Paused: resumes with a fresh TTL (`true`).
    pub(crate) fn connect(
        &mut self,
        team: &str,
        id: &str,
        timeout_secs: i64,
        now: OffsetDateTime,
    ) -> Result<(SandboxView, bool), ApiError> {
        let timeout = self.check_timeout(timeout_secs)?;
        let sandbox = self.live(team, id)?;
        sandbox.ensure_idle()?;
        if sandbox.state == SandboxState::Paused {
            self.resume(id, timeout, now);
            return Ok((self.live(team, id)?.clone(), true));
        }
        let wanted = clock::add(now, timeout);
        if wanted > sandbox.end_at {
            self.set_end(id, wanted, now);
        }
        Ok((self.live(team, id)?.clone(), false))
    }

    /// The deprecated `/resume`: only a paused sandbox may be resumed.
    pub(crate) fn resume_paused(
        &mut self,
        team: &str,
        id: &str,
        timeout_secs: i64,
        now: OffsetDateTime,
    ) -> Result<SandboxView, ApiError> {
        let timeout = self.check_timeout(timeout_secs)?;
        let sandbox = self.live(team, id)?;
        sandbox.ensure_idle()?;
        if sandbox.state != SandboxState::Paused {
            return Err(ApiError::Conflict(format!("Sandbox \"{id}\" is already running")));
        }
        self.resume(id, timeout, now);
        self.live(team, id).cloned()
    }

    fn resume(&mut self, id: &str, timeout: Duration, now: OffsetDateTime) {
        let Some(sandbox) = self.sandboxes.get_mut(id) else {
            return;
        };
        sandbox.state = SandboxState::Running;
        sandbox.record(now, SandboxState::Running);
        sandbox.paused_at = None;
        sandbox.started_at = now;
        sandbox.end_at = clock::add(now, timeout);
        sandbox.execution_id = ids::uuid();
        self.emit(EventType::Resumed, id, now, EventDetail::default());
        self.reschedule(id);
    }

    /// Overwrites the TTL from now; it may shorten it.
    pub(crate) fn set_timeout(
        &mut self,
        team: &str,
        id: &str,
        timeout_secs: i64,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let timeout = self.check_timeout(timeout_secs)?;
        self.running_for_ttl(team, id)?;
        self.set_end(id, clock::add(now, timeout), now);
        Ok(())
    }

    /// Extends the TTL to at least `now + duration`; never shortens it.
    pub(crate) fn refresh(
        &mut self,
        team: &str,
        id: &str,
        duration: Duration,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let end_at = self.running_for_ttl(team, id)?.end_at;
        let wanted = clock::add(now, duration);
        if wanted > end_at {
            self.set_end(id, wanted, now);
        }
        Ok(())
    }

    /// TTL changes apply to running sandboxes; E2B doesn't find paused ones there.
    fn running_for_ttl(&self, team: &str, id: &str) -> Result<&SandboxView, ApiError> {
        let sandbox = self.live(team, id)?;
        match (sandbox.state, sandbox.transition) {
            (_, Some(Transition::Pausing)) => Err(ApiError::Conflict(format!("Sandbox \"{id}\" is pausing"))),
            (SandboxState::Running, _) => Ok(sandbox),
            _ => Err(ApiError::NotFound(format!(
                "Sandbox \"{id}\" is paused, connect to resume it"
            ))),
        }
    }

    fn set_end(&mut self, id: &str, end_at: OffsetDateTime, now: OffsetDateTime) {
        let Some(sandbox) = self.sandboxes.get_mut(id) else {
            return;
        };
        sandbox.end_at = end_at;
        let detail = EventDetail {
            set_timeout: Some(end_at),
            ..EventDetail::default()
        };
        self.emit(EventType::Updated, id, now, detail);
        self.reschedule(id);
    }

    /// Sets (or with `None` clears) the CPU use the metrics routes report for a sandbox.
    pub(crate) fn set_cpu(&mut self, id: &str, cpu_used_pct: Option<f64>) -> Result<(), ApiError> {
        match self.sandboxes.get_mut(id) {
            Some(sandbox) => {
                sandbox.cpu_used_pct = cpu_used_pct;
                Ok(())
            }
            None => Err(ApiError::SandboxNotFound(id.to_owned())),
        }
    }

    /// `PUT /sandboxes/{id}/network`: a running sandbox only (a paused one answers 409).
    pub(crate) fn set_network_rules(
        &mut self,
        team: &str,
        id: &str,
        rules: crate::secrets::NetworkRules,
    ) -> Result<(), ApiError> {
        let sandbox = self.live_mut(team, id)?;
        if sandbox.state != SandboxState::Running {
            return Err(ApiError::Conflict(format!("sandbox {id} is not running")));
        }
        sandbox.network_rules = rules;
        Ok(())
    }

    pub(crate) fn kill(&mut self, team: &str, id: &str, now: OffsetDateTime) -> Result<(), ApiError> {
        self.live(team, id)?;
        self.mark_killed(id, now, KILL_REASON_REQUEST);
        Ok(())
    }
}
