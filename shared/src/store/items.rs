//! The stored shape of each item, decoded with serde_dynamo and turned into domain types.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;

use sandman_protocol::adaptive::{AdaptiveIdle, COLD_RESUME_WEIGHT, GapHistogram};

use super::StoreError;
use super::time_ms::from_ms;
use crate::domain::{
    Actor, CapHandoff, IdlePolicy, LifecycleRecord, Project, ProjectId, RetentionPolicy, SandboxRef, Session,
    SessionState, Snapshot, SnapshotId, SnapshotKind, SnapshotStatus, TeamId, Usage,
};

pub(crate) type Item = HashMap<String, AttributeValue>;

pub use sandman_protocol::record::ProjectRecord;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectItem {
    team_id: String,
    project_id: String,
    template_id: String,
    idle_timeout_ms: u64,
    snapshot_on_idle: bool,
    busy_cpu_percent: Option<u8>,
    busy_defer_max_ms: Option<u64>,
    busy_for_max_ms: Option<u64>,
    cap_handoff: Option<String>,
    idle_mode: Option<String>,
    idle_min_ms: Option<u64>,
    idle_max_ms: Option<u64>,
    learned_gaps: Option<String>,
    keep_last: u32,
    max_age_ms: Option<u64>,
    sandbox_timeout_ms: u64,
    #[serde(default)]
    snapshot_before_kill: bool,
    #[serde(default)]
    public_traffic: bool,
    archive_after_ms: Option<u64>,
    delete_after_ms: Option<u64>,
    #[serde(default)]
    delete_pinned: bool,
    fork_project: Option<String>,
    fork_snapshot: Option<String>,
    created_at: i64,
    updated_at: i64,
    version: u64,
    session_id: Option<String>,
    sandbox_id: Option<String>,
    sandbox_domain: Option<String>,
    sandbox_access_token: Option<String>,
    state: Option<String>,
    state_since: Option<i64>,
    lease_until: Option<i64>,
    last_active_at: Option<i64>,
    idle_at: Option<i64>,
    running_since: Option<i64>,
    busy_since: Option<i64>,
    busy_until: Option<i64>,
    timeout_at: Option<i64>,
    paused_at: Option<i64>,
    last_actor: Option<String>,
    last_cause: Option<String>,
    last_error: Option<String>,
    failures: Option<u32>,
    restored_from: Option<String>,
    replaces_session: Option<String>,
    retiring_sandbox: Option<String>,
    last_event_at: Option<i64>,
    usage_run_seconds: Option<f64>,
    usage_vcpu_seconds: Option<f64>,
    usage_memory_mb_seconds: Option<f64>,
    /// The project's launch settings version (`env/`), moved by every change a sandbox takes
    /// only at create.
    #[serde(default)]
    settings_version: u64,
    /// The settings version the session's sandbox was created with.
    sandbox_settings_version: Option<u64>,
    #[serde(default)]
    prune_marks: u64,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Adaptive idle's bounds (`idleMode` "adaptive", `idleMinMs`, `idleMaxMs`), or `None` (fixed).
fn adaptive_idle(it: &ProjectItem) -> Result<Option<AdaptiveIdle>, StoreError> {
    match (it.idle_mode.as_deref(), it.idle_min_ms, it.idle_max_ms) {
        (None, _, _) => Ok(None),
        (Some(IDLE_MODE_ADAPTIVE), Some(min), Some(max)) => Ok(Some(AdaptiveIdle {
            min: Duration::from_millis(min),
            max: Duration::from_millis(max),
            cold_weight: COLD_RESUME_WEIGHT,
        })),
        (Some(mode), _, _) => Err(corrupt(format!("idleMode {mode:?} without its bounds"))),
    }
}

/// `idleMode` of an adaptive project.
pub(crate) const IDLE_MODE_ADAPTIVE: &str = "adaptive";

pub(crate) fn project_record(item: Item) -> Result<ProjectRecord, StoreError> {
    let it: ProjectItem = serde_dynamo::from_item(item).map_err(corrupt)?;
    let adaptive = adaptive_idle(&it)?;
    let idle_gaps = match &it.learned_gaps {
        Some(text) => GapHistogram::decode(text).ok_or_else(|| corrupt("learnedGaps"))?,
        None => GapHistogram::default(),
    };
    let project = Project {
        team_id: TeamId::parse(it.team_id).map_err(corrupt)?,
        project_id: ProjectId::parse(it.project_id).map_err(corrupt)?,
        template_id: it.template_id,
        idle: IdlePolicy {
            idle_timeout: Duration::from_millis(it.idle_timeout_ms),
            snapshot_on_idle: it.snapshot_on_idle,
            busy_cpu_percent: it.busy_cpu_percent,
            max_busy_deferral: it
                .busy_defer_max_ms
                .map_or(IdlePolicy::default().max_busy_deferral, Duration::from_millis),
            max_busy_for: it
                .busy_for_max_ms
                .map_or(IdlePolicy::default().max_busy_for, Duration::from_millis),
            cap_handoff: it
                .cap_handoff
                .as_deref()
                .and_then(CapHandoff::parse)
                .unwrap_or_default(),
            adaptive,
        },
        retention: RetentionPolicy {
            keep_last: it.keep_last,
            max_age: it.max_age_ms.map(Duration::from_millis),
        },
        sandbox_timeout: Duration::from_millis(it.sandbox_timeout_ms),
        snapshot_before_kill: it.snapshot_before_kill,
        public_traffic: it.public_traffic,
        inactivity: crate::domain::InactivityPolicy {
            archive_after: it.archive_after_ms.map(Duration::from_millis),
            delete_after: it.delete_after_ms.map(Duration::from_millis),
            delete_pinned: it.delete_pinned,
        },
        fork_of: match (it.fork_project, it.fork_snapshot) {
            (Some(project), Some(snapshot)) => Some(crate::domain::ForkSource {
                project_id: ProjectId::parse(project).map_err(corrupt)?,
                snapshot_id: SnapshotId::parse(snapshot).map_err(corrupt)?,
            }),
            _ => None,
        },
        idle_gaps,
        created_at: from_ms(it.created_at),
        updated_at: from_ms(it.updated_at),
    };
    let session = match (it.state, it.session_id) {
        (Some(state), Some(session_id)) => Some(Session {
            session_id,
            sandbox: it.sandbox_id.map(|sandbox_id| SandboxRef {
                sandbox_id,
                domain: it.sandbox_domain,
                access_token: it.sandbox_access_token.map(crate::domain::Secret::new),
            }),
            state: SessionState::parse(&state).ok_or_else(|| corrupt(format!("unknown state {state}")))?,
            state_since: from_ms(it.state_since.unwrap_or(it.updated_at)),
            lease_until: it.lease_until.map(from_ms),
            last_active_at: from_ms(it.last_active_at.unwrap_or(it.updated_at)),
            idle_at: it.idle_at.map(from_ms),
            running_since: it.running_since.map(from_ms),
            busy_since: it.busy_since.map(from_ms),
            busy_until: it.busy_until.map(from_ms),
            timeout_at: it.timeout_at.map(from_ms),
            paused_at: it.paused_at.map(from_ms),
            last_actor: it.last_actor.as_deref().and_then(Actor::parse).unwrap_or(Actor::User),
            last_cause: it.last_cause.unwrap_or_default(),
            last_error: it.last_error,
            failures: it.failures.unwrap_or(0),
            restored_from: it.restored_from.map(SnapshotId::parse).transpose().map_err(corrupt)?,
            replaces_session: it.replaces_session,
            retiring: it.retiring_sandbox,
            last_event_at: it.last_event_at.map(from_ms),
            usage: Usage {
                run_seconds: it.usage_run_seconds.unwrap_or(0.0),
                vcpu_seconds: it.usage_vcpu_seconds.unwrap_or(0.0),
                memory_mb_seconds: it.usage_memory_mb_seconds.unwrap_or(0.0),
            },
            settings_version: it.sandbox_settings_version,
        }),
        _ => None,
    };
    Ok(ProjectRecord {
        project,
        session,
        version: it.version,
        settings_version: it.settings_version,
        prune_marks: it.prune_marks,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotItem {
    snapshot_id: String,
    team_id: String,
    project_id: String,
    e2b_snapshot_id: String,
    source_sandbox_id: String,
    description: String,
    kind: String,
    pinned: bool,
    status: String,
    created_at: i64,
    size_bytes: Option<u64>,
    file_count: Option<u64>,
    held_until: Option<i64>,
    fork_holds: Option<i64>,
    fork_held_until: Option<i64>,
}

pub(crate) fn snapshot(item: Item) -> Result<Snapshot, StoreError> {
    let it: SnapshotItem = serde_dynamo::from_item(item).map_err(corrupt)?;
    Ok(Snapshot {
        snapshot_id: SnapshotId::parse(it.snapshot_id).map_err(corrupt)?,
        team_id: TeamId::parse(it.team_id).map_err(corrupt)?,
        project_id: ProjectId::parse(it.project_id).map_err(corrupt)?,
        e2b_snapshot_id: it.e2b_snapshot_id,
        source_sandbox_id: it.source_sandbox_id,
        description: it.description,
        kind: SnapshotKind::parse(&it.kind).ok_or_else(|| corrupt(format!("unknown snapshot kind {}", it.kind)))?,
        pinned: it.pinned,
        status: match it.status.as_str() {
            "DELETING" => SnapshotStatus::Deleting,
            "PENDING" => SnapshotStatus::Pending,
            _ => SnapshotStatus::Ready,
        },
        created_at: from_ms(it.created_at),
        size_bytes: it.size_bytes,
        file_count: it.file_count,
        // A restore's hold, or the forks' while any is counted: whichever ends later.
        held_until: it
            .held_until
            .max(
                it.fork_held_until
                    .filter(|_| it.fork_holds.is_some_and(|holds| holds > 0)),
            )
            .map(from_ms),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventItem {
    at: i64,
    actor: String,
    cause: String,
    from: Option<String>,
    /// Absent only on a settings line of a project without a session.
    to: Option<String>,
    sandbox_id: Option<String>,
}

pub(crate) fn lifecycle_record(item: Item) -> Result<LifecycleRecord, StoreError> {
    let it: EventItem = serde_dynamo::from_item(item).map_err(corrupt)?;
    let state = |name: &str| SessionState::parse(name).ok_or_else(|| corrupt(format!("unknown state {name}")));
    Ok(LifecycleRecord {
        at: from_ms(it.at),
        actor: Actor::parse(&it.actor).ok_or_else(|| corrupt(format!("unknown actor {}", it.actor)))?,
        cause: it.cause,
        from: it.from.as_deref().map(state).transpose()?,
        to: it.to.as_deref().map(state).transpose()?,
        sandbox_id: it.sandbox_id,
    })
}

/// How a snapshot's status is stored (`status`), the inverse of `snapshot`'s reading.
pub(super) fn status_name(status: SnapshotStatus) -> &'static str {
    match status {
        SnapshotStatus::Pending => "PENDING",
        SnapshotStatus::Ready => "READY",
        SnapshotStatus::Deleting => "DELETING",
    }
}
