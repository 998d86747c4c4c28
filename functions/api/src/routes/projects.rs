//! Registering, reading, listing and deleting a team's projects.

use axum::Json;
use axum::extract::State as Shared;
use http::StatusCode;
use sandman::access::Action;
use sandman::domain::Project as StoredProject;
use sandman::domain::{ProjectId, SnapshotId};
use sandman::fork::ForkFrom;
use sandman::store::{Consistency, ProjectSummary};
use sandman::workspace::Status;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, Project, Team, Verified};
use crate::page::{Page, PageQuery, page};
use crate::settings::{IdleView, ProjectSettings};
use crate::views::{SandboxStatus, State};

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_projects))
        .routes(routes!(put_project, get_project, delete_project))
        .routes(routes!(fork_project))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    pub project_id: String,
    pub template_id: String,
    /// The idle timeout now: the fixed one, or with adaptive idle the one learned so far.
    pub idle_timeout_seconds: u64,
    pub idle: IdleView,
    /// Heartbeats closer together than this are throttled: a client need not send them more often.
    pub heartbeat_interval_seconds: u64,
    pub snapshot_on_idle: bool,
    pub snapshot_before_kill: bool,
    pub public_traffic: bool,
    pub sandbox_timeout_seconds: u64,
    pub retention: RetentionView,
    /// Busy-aware idle threshold; absent when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_cpu_percent: Option<u8>,
    pub max_busy_deferral_seconds: u64,
    pub max_busy_for_seconds: u64,
    /// `pause-resume` or `snapshot-reopen`.
    pub cap_handoff: String,
    pub inactivity: InactivityView,
    /// Until its first open: the snapshot a fork restores from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fork_of: Option<ForkView>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    pub sandbox: SandboxStatus,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionView {
    pub keep_last: u32,
    pub max_age_seconds: Option<u64>,
}

/// Inactivity tiers (off unless set): see `InactivitySettings`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InactivityView {
    pub archive_after_seconds: Option<u64>,
    pub delete_after_seconds: Option<u64>,
    pub delete_pinned: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForkView {
    pub project_id: String,
    pub snapshot_id: String,
}

impl ProjectView {
    fn of(project: &StoredProject, status: Status, heartbeat_interval: std::time::Duration) -> Self {
        ProjectView {
            project_id: project.project_id.to_string(),
            template_id: project.template_id.clone(),
            idle_timeout_seconds: project.idle.idle_timeout.as_secs(),
            idle: IdleView::of(project),
            heartbeat_interval_seconds: heartbeat_interval.as_secs(),
            snapshot_on_idle: project.idle.snapshot_on_idle,
            snapshot_before_kill: project.snapshot_before_kill,
            public_traffic: project.public_traffic,
            sandbox_timeout_seconds: project.sandbox_timeout.as_secs(),
            retention: RetentionView {
                keep_last: project.retention.keep_last,
                max_age_seconds: project.retention.max_age.map(|d| d.as_secs()),
            },
            busy_cpu_percent: project.idle.busy_cpu_percent,
            max_busy_deferral_seconds: project.idle.max_busy_deferral.as_secs(),
            max_busy_for_seconds: project.idle.max_busy_for.as_secs(),
            cap_handoff: project.idle.cap_handoff.as_str().to_owned(),
            inactivity: InactivityView {
                archive_after_seconds: project.inactivity.archive_after.map(|d| d.as_secs()),
                delete_after_seconds: project.inactivity.delete_after.map(|d| d.as_secs()),
                delete_pinned: project.inactivity.delete_pinned,
            },
            fork_of: project.fork_of.as_ref().map(|fork| ForkView {
                project_id: fork.project_id.to_string(),
                snapshot_id: fork.snapshot_id.to_string(),
            }),
            created_at: project.created_at,
            updated_at: project.updated_at,
            sandbox: status.into(),
        }
    }
}

/// A line of the team's project list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectLine {
    pub project_id: String,
    pub template_id: String,
    pub state: Option<State>,
    pub sandbox_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub state_since: Option<OffsetDateTime>,
}

impl From<ProjectSummary> for ProjectLine {
    fn from(summary: ProjectSummary) -> Self {
        ProjectLine {
            project_id: summary.project_id.into(),
            template_id: summary.template_id,
            state: summary.state.map(State::from),
            sandbox_id: summary.sandbox_id,
            state_since: summary.state_since,
        }
    }
}

/// Registers the project, or replaces its settings. Its sandbox is left as it is; a running
/// sandbox's idle deadline follows a new idle timeout. `publicTraffic: true` needs a team admin's
/// token.
#[utoipa::path(put, path = "/v1/projects/{projectId}", tag = "projects", request_body = ProjectSettings,
    params(("projectId" = String, Path, description = "1 to 128 of letters, digits, '-', '_', '.'")),
    responses((status = 200, body = ProjectView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "publicTraffic: true, and the token is not a team admin's"),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_project(
    Shared(api): Shared<Api>,
    Project(key): Project,
    Verified(caller): Verified,
    JsonBody(settings): JsonBody<ProjectSettings>,
) -> Result<Json<ProjectView>, ApiError> {
    let spec = settings.into_spec(key, &api.sandman.config)?;
    if spec.public_traffic {
        api.sandman.authorize(&caller, Action::PublicSandboxes)?;
    }
    api.sandman.check_project_quota(&spec.key).await?;
    let record = api
        .sandman
        .store
        .put_project(&spec, api.sandman.now())
        .await
        .map_err(sandman::Error::from)?;
    Ok(Json(ProjectView::of(
        &record.project,
        Status::of(&record),
        api.sandman.heartbeat_interval(&record.project),
    )))
}

/// The team's projects with their sandbox state, in project id order.
#[utoipa::path(get, path = "/v1/projects", tag = "projects", params(PageQuery),
    responses((status = 200, body = Page<ProjectLine>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_projects(
    Shared(api): Shared<Api>,
    Team(team): Team,
    query: PageQuery,
) -> Result<Json<Page<ProjectLine>>, ApiError> {
    let list = format!("projects:{team}");
    let found = api
        .sandman
        .store
        .list_projects(&team, query.cursor(&api.cursors, &list)?.as_ref(), query.limit()?)
        .await
        .map_err(sandman::Error::from)?;
    Ok(Json(page(
        found.items,
        found.next,
        &api.cursors,
        &list,
        ProjectLine::from,
    )))
}

#[utoipa::path(get, path = "/v1/projects/{projectId}", tag = "projects",
    params(("projectId" = String, Path)),
    responses((status = 200, body = ProjectView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_project(Shared(api): Shared<Api>, Project(key): Project) -> Result<Json<ProjectView>, ApiError> {
    let record = api
        .sandman
        .store
        .get_project(&key, Consistency::Eventual)
        .await
        .map_err(sandman::Error::from)?;
    let record = record.ok_or_else(|| ApiError::not_found("project not found"))?;
    Ok(Json(ProjectView::of(
        &record.project,
        Status::of(&record),
        api.sandman.heartbeat_interval(&record.project),
    )))
}

/// Kills the sandbox (without saving it), deletes every snapshot, pinned ones included, then the
/// project. Should it fail part-way, the project remains and deleting it again finishes the job.
#[utoipa::path(delete, path = "/v1/projects/{projectId}", tag = "projects",
    params(("projectId" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_project(Shared(api): Shared<Api>, Project(key): Project) -> Result<StatusCode, ApiError> {
    api.sandman.delete_project(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ForkMode {
    /// From a snapshot of the source: `snapshotId`, or its newest ready one (the default).
    Snapshot,
    /// From the source's running sandbox: a snapshot of it is taken now (it keeps running).
    Running,
    /// E2B's fork of the source's running sandbox (it keeps running): the new project is RUNNING
    /// at once with the source's files, memory and processes. The source must be RUNNING.
    Live,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForkRequest {
    /// The new project's id (same team, same settings as the source).
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", min_length = 1, max_length = 128)]
    pub project_id: String,
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", min_length = 1, max_length = 128)]
    pub snapshot_id: Option<String>,
    /// `snapshot` (default), `running` or `live`.
    pub from: Option<ForkMode>,
}

/// Forks the project: a new project of the same team and settings whose first open restores the
/// chosen snapshot (held until then, so retention cannot take it), after which it has its own
/// sandbox, snapshots and log. The project quota applies. With `from: live` the new project is
/// instead RUNNING at once with E2B's fork of the source's running sandbox (memory and processes
/// kept; the live-sandbox quota and the team's budget apply, as for an open); a source that is not
/// RUNNING answers 409.
#[utoipa::path(post, path = "/v1/projects/{projectId}/fork", tag = "projects", request_body = ForkRequest,
    params(("projectId" = String, Path, description = "the source project")),
    responses((status = 201, body = ProjectView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 402, body = ErrorBody, description = "from: live, and the team's budget is reached"),
        (status = 409, body = ErrorBody, description = "the new project exists, nothing to fork from, or (from: live) the source is not running"), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn fork_project(
    Shared(api): Shared<Api>,
    Project(source): Project,
    JsonBody(request): JsonBody<ForkRequest>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    let project =
        ProjectId::parse(request.project_id).map_err(|err| ApiError::invalid("projectId", err.to_string()))?;
    let snapshot = request
        .snapshot_id
        .map(SnapshotId::parse)
        .transpose()
        .map_err(|err| ApiError::invalid("snapshotId", err.to_string()))?;
    let from = match (request.from.unwrap_or(ForkMode::Snapshot), snapshot) {
        (ForkMode::Snapshot, snapshot) => ForkFrom::Snapshot(snapshot),
        (ForkMode::Running, None) => ForkFrom::Running,
        (ForkMode::Live, None) => ForkFrom::Live,
        (ForkMode::Running, Some(_)) => {
            return Err(ApiError::conflict(
                "snapshotId goes with from: snapshot, not from: running",
            ));
        }
        (ForkMode::Live, Some(_)) => {
            return Err(ApiError::conflict(
                "snapshotId goes with from: snapshot, not from: live",
            ));
        }
    };
    let record = api.sandman.fork(&source, project, from).await?;
    Ok((
        StatusCode::CREATED,
        Json(ProjectView::of(
            &record.project,
            Status::of(&record),
            api.sandman.heartbeat_interval(&record.project),
        )),
    ))
}
