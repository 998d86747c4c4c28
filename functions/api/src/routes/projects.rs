//! Registering, reading, listing and deleting a team's projects.

use std::time::Duration;

use axum::Json;
use axum::extract::State as Shared;
use http::StatusCode;
use sandman::config::ProjectDefaults;
use sandman::domain::{
    IdlePolicy, Project as StoredProject, ProjectKey, ProjectSpec, RetentionPolicy,
};
use sandman::store::{Consistency, ProjectSummary};
use sandman::workspace::Status;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, Project, Team};
use crate::page::{Page, PageQuery, page};
use crate::views::{SandboxStatus, State};

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_projects))
        .routes(routes!(put_project, get_project, delete_project))
}

/// A project's settings. `PUT` replaces them: an omitted field takes the deployment's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectSettings {
    /// The E2B template new sandboxes start from when there is no snapshot to restore.
    pub template_id: String,
    /// Idle time after which the sandbox is paused, 60 to 86400 seconds.
    pub idle_timeout_seconds: Option<u64>,
    /// Save a snapshot before each idle pause.
    pub snapshot_on_idle: Option<bool>,
    /// Save a snapshot before the sandbox is killed (unless the kill says otherwise).
    pub snapshot_before_kill: Option<bool>,
    /// The E2B timeout given on create and resume, 60 to 86400 seconds.
    pub sandbox_timeout_seconds: Option<u64>,
    pub retention: Option<RetentionSettings>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionSettings {
    /// Unpinned snapshots kept, 0 to 1000.
    pub keep_last: Option<u32>,
    /// Unpinned snapshots older than this are deleted, 3600 seconds to 3 years.
    pub max_age_seconds: Option<u64>,
}

const TIMEOUT_SECONDS: std::ops::RangeInclusive<u64> = 60..=86_400;
const MAX_AGE_SECONDS: std::ops::RangeInclusive<u64> = 3_600..=3 * 365 * 86_400;

impl ProjectSettings {
    fn into_spec(
        self,
        key: ProjectKey,
        defaults: &ProjectDefaults,
    ) -> Result<ProjectSpec, ApiError> {
        let template_id = self.template_id.trim().to_string();
        if template_id.is_empty()
            || template_id.len() > 128
            || !template_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ApiError::invalid(
                "templateId",
                "templateId must be 1 to 128 visible ASCII characters",
            ));
        }
        let seconds = |field: &'static str,
                       value: Option<u64>,
                       default: Duration,
                       range: std::ops::RangeInclusive<u64>| match value {
            None => Ok(default),
            Some(s) if range.contains(&s) => Ok(Duration::from_secs(s)),
            Some(_) => Err(ApiError::invalid(
                field,
                format!("{field} must be from {} to {}", range.start(), range.end()),
            )),
        };
        let retention = self.retention.unwrap_or(RetentionSettings {
            keep_last: None,
            max_age_seconds: None,
        });
        let keep_last = retention.keep_last.unwrap_or(defaults.keep_last);
        if keep_last > 1000 {
            return Err(ApiError::invalid(
                "retention.keepLast",
                "retention.keepLast must be from 0 to 1000",
            ));
        }
        let max_age = match retention.max_age_seconds {
            None => None,
            Some(s) => Some(seconds(
                "retention.maxAgeSeconds",
                Some(s),
                Duration::ZERO,
                MAX_AGE_SECONDS,
            )?),
        };
        Ok(ProjectSpec {
            key,
            template_id,
            idle: IdlePolicy {
                idle_timeout: seconds(
                    "idleTimeoutSeconds",
                    self.idle_timeout_seconds,
                    defaults.idle_timeout,
                    TIMEOUT_SECONDS,
                )?,
                snapshot_on_idle: self.snapshot_on_idle.unwrap_or(false),
            },
            retention: RetentionPolicy { keep_last, max_age },
            sandbox_timeout: seconds(
                "sandboxTimeoutSeconds",
                self.sandbox_timeout_seconds,
                defaults.sandbox_timeout,
                TIMEOUT_SECONDS,
            )?,
            snapshot_before_kill: self.snapshot_before_kill.unwrap_or(false),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    pub project_id: String,
    pub template_id: String,
    pub idle_timeout_seconds: u64,
    pub snapshot_on_idle: bool,
    pub snapshot_before_kill: bool,
    pub sandbox_timeout_seconds: u64,
    pub retention: RetentionView,
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

impl ProjectView {
    fn of(project: &StoredProject, status: Status) -> Self {
        ProjectView {
            project_id: project.project_id.to_string(),
            template_id: project.template_id.clone(),
            idle_timeout_seconds: project.idle.idle_timeout.as_secs(),
            snapshot_on_idle: project.idle.snapshot_on_idle,
            snapshot_before_kill: project.snapshot_before_kill,
            sandbox_timeout_seconds: project.sandbox_timeout.as_secs(),
            retention: RetentionView {
                keep_last: project.retention.keep_last,
                max_age_seconds: project.retention.max_age.map(|d| d.as_secs()),
            },
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
/// sandbox's idle deadline follows a new idle timeout.
#[utoipa::path(put, path = "/v1/projects/{projectId}", tag = "projects", request_body = ProjectSettings,
    params(("projectId" = String, Path, description = "1 to 128 of letters, digits, '-', '_', '.'")),
    responses((status = 200, body = ProjectView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_project(
    Shared(api): Shared<Api>,
    Project(key): Project,
    JsonBody(settings): JsonBody<ProjectSettings>,
) -> Result<Json<ProjectView>, ApiError> {
    let spec = settings.into_spec(key, &api.sandman.config.defaults)?;
    let record = api
        .sandman
        .store
        .put_project(&spec, api.sandman.now())
        .await
        .map_err(sandman::Error::from)?;
    Ok(Json(ProjectView::of(&record.project, Status::of(&record))))
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
        .list_projects(&team, query.cursor(&list)?.as_ref(), query.limit()?)
        .await
        .map_err(sandman::Error::from)?;
    Ok(Json(page(
        found.items,
        found.next,
        &list,
        ProjectLine::from,
    )))
}

#[utoipa::path(get, path = "/v1/projects/{projectId}", tag = "projects",
    params(("projectId" = String, Path)),
    responses((status = 200, body = ProjectView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_project(
    Shared(api): Shared<Api>,
    Project(key): Project,
) -> Result<Json<ProjectView>, ApiError> {
    let record = api
        .sandman
        .store
        .get_project(&key, Consistency::Eventual)
        .await
        .map_err(sandman::Error::from)?;
    let record = record.ok_or_else(|| ApiError::not_found("project not found"))?;
    Ok(Json(ProjectView::of(&record.project, Status::of(&record))))
}

/// Kills the sandbox (without saving it), deletes every snapshot, pinned ones included, then the
/// project. Should it fail part-way, the project remains and deleting it again finishes the job.
#[utoipa::path(delete, path = "/v1/projects/{projectId}", tag = "projects",
    params(("projectId" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_project(
    Shared(api): Shared<Api>,
    Project(key): Project,
) -> Result<StatusCode, ApiError> {
    api.sandman.delete_project(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandman::domain::{ProjectId, TeamId};

    fn defaults() -> ProjectDefaults {
        ProjectDefaults {
            idle_timeout: Duration::from_secs(600),
            sandbox_timeout: Duration::from_secs(1800),
            keep_last: 10,
        }
    }

    fn key() -> ProjectKey {
        ProjectKey::new(TeamId::parse("t").unwrap(), ProjectId::parse("p").unwrap())
    }

    fn settings(json: serde_json::Value) -> Result<ProjectSpec, ApiError> {
        serde_json::from_value::<ProjectSettings>(json)
            .expect("parses")
            .into_spec(key(), &defaults())
    }

    #[test]
    fn omitted_fields_take_the_defaults() {
        let spec = settings(serde_json::json!({"templateId": "base"})).unwrap();
        assert_eq!(spec.idle.idle_timeout, Duration::from_secs(600));
        assert_eq!(spec.sandbox_timeout, Duration::from_secs(1800));
        assert_eq!(
            spec.retention,
            RetentionPolicy {
                keep_last: 10,
                max_age: None
            }
        );
        assert!(!spec.snapshot_before_kill && !spec.idle.snapshot_on_idle);
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let field = |json| format!("{:?}", settings(json).unwrap_err());
        assert!(
            field(serde_json::json!({"templateId": "base", "idleTimeoutSeconds": 59}))
                .contains("idleTimeoutSeconds")
        );
        assert!(
            field(serde_json::json!({"templateId": "base", "sandboxTimeoutSeconds": 86401}))
                .contains("sandboxTimeoutSeconds")
        );
        assert!(
            field(serde_json::json!({"templateId": "base", "retention": {"keepLast": 1001}}))
                .contains("retention.keepLast")
        );
        assert!(
            field(serde_json::json!({"templateId": "base", "retention": {"maxAgeSeconds": 10}}))
                .contains("retention.maxAgeSeconds")
        );
        assert!(field(serde_json::json!({"templateId": " "})).contains("templateId"));
    }
}
