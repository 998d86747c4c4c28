//! A project's sandbox: open it, poll it, keep it alive, pause, resume and kill it.

use axum::Json;
use axum::extract::{Query, State as Shared};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sandman::domain::Actor;
use sandman::workspace::{Activity, SnapshotFirst, Status, UserPause};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::etag::{entity_tag, matches_any};
use crate::extract::{JsonBody, Project};
use crate::views::{OpenResult, SandboxStatus, SnapshotView, State};

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(open, status, kill))
        .routes(routes!(activity))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

/// 200 once the sandbox runs, 202 while another request is still bringing it up.
pub(crate) fn opened(result: OpenResult) -> Response {
    let code = if result.sandbox.state == Some(State::Running) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (code, Json(result)).into_response()
}

/// Get-or-create: running → as is; paused → resumed; none or killed → restored from the newest
/// snapshot that restores, else created from the template. Concurrent opens share one E2B action.
#[utoipa::path(post, path = "/v1/projects/{projectId}/sandbox", tag = "sandbox", params(("projectId" = String, Path)),
    responses((status = 200, body = OpenResult), (status = 202, body = OpenResult, description = "in progress: poll the status"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open(Shared(api): Shared<Api>, Project(key): Project) -> Result<Response, ApiError> {
    Ok(opened(api.sandman.open(&key, Actor::User).await?.into()))
}

/// From the table only (one eventually consistent read), never from E2B. Send the `ETag` back
/// as `If-None-Match` to get a 304 while nothing changed.
#[utoipa::path(get, path = "/v1/projects/{projectId}/sandbox", tag = "sandbox", params(("projectId" = String, Path)),
    responses((status = 200, body = SandboxStatus, headers(("ETag" = String))), (status = 304, description = "unchanged"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn status(Shared(api): Shared<Api>, Project(key): Project, headers: HeaderMap) -> Result<Response, ApiError> {
    let status = SandboxStatus::from(api.sandman.status(&key).await?);
    let body = serde_json::to_vec(&status)
        .map_err(|err| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", err.to_string()))?;
    let etag = entity_tag(&body);
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if matches_any(headers.get(header::IF_NONE_MATCH), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((
        cache,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Heartbeat {
    /// Within the heartbeat interval of the last one: nothing was written.
    Throttled,
    Recorded,
    /// The sandbox was paused and has been resumed.
    Woke,
    /// Nothing to keep alive: starting, stopping, killed or never opened.
    Ignored,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityResult {
    pub outcome: Heartbeat,
    /// Whether E2B's timeout was pushed back (it is, once less than half of it is left).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_timeout: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// After `woke`: how it was opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened: Option<OpenResult>,
}

/// Optional body of an activity call.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityBody {
    /// Hold the sandbox awake this long (1 to 86400 seconds, capped by the project's
    /// `maxBusyForSeconds`) without further heartbeats: for a long job. Always recorded.
    #[schema(minimum = 1, maximum = 86400)]
    #[serde(default, deserialize_with = "crate::json_shape::whole")]
    pub busy_for_seconds: Option<u64>,
}

/// A heartbeat from the frontend: keeps a running sandbox from being paused as idle, wakes a
/// paused one. Cheap to send often: most heartbeats touch neither DynamoDB nor E2B. The body is
/// optional; `busyForSeconds` holds the sandbox awake for a long job.
#[utoipa::path(post, path = "/v1/projects/{projectId}/sandbox/activity", tag = "sandbox", params(("projectId" = String, Path)),
    request_body(content = ActivityBody, content_type = "application/json", description = "optional"),
    responses((status = 200, body = ActivityResult), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn activity(
    Shared(api): Shared<Api>,
    Project(key): Project,
    JsonBody(body): JsonBody<ActivityBody>,
) -> Result<Json<ActivityResult>, ApiError> {
    let busy_for = match body.busy_for_seconds {
        None => None,
        Some(seconds @ 1..=86_400) => Some(std::time::Duration::from_secs(seconds)),
        Some(_) => {
            return Err(ApiError::invalid(
                "busyForSeconds",
                "busyForSeconds must be from 1 to 86400",
            ));
        }
    };
    let result = |outcome, extended_timeout, state, opened| ActivityResult {
        outcome,
        extended_timeout,
        state,
        opened,
    };
    Ok(Json(match api.sandman.activity_busy(&key, busy_for).await? {
        Activity::Throttled => result(Heartbeat::Throttled, None, None, None),
        Activity::Recorded { extended_timeout } => {
            result(Heartbeat::Recorded, Some(extended_timeout), Some(State::Running), None)
        }
        Activity::Woke(opened) => {
            let opened = OpenResult::from(*opened);
            result(Heartbeat::Woke, None, opened.sandbox.state, Some(opened))
        }
        Activity::Ignored(state) => result(Heartbeat::Ignored, None, state.map(State::from), None),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Pause {
    Paused,
    AlreadyPaused,
    /// E2B no longer had the sandbox: it is recorded as killed.
    Gone,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseResult {
    pub outcome: Pause,
    pub sandbox: SandboxStatus,
}

#[utoipa::path(post, path = "/v1/projects/{projectId}/sandbox/pause", tag = "sandbox", params(("projectId" = String, Path)),
    responses((status = 200, body = PauseResult), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not running, or changed meanwhile"), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn pause(Shared(api): Shared<Api>, Project(key): Project) -> Result<Json<PauseResult>, ApiError> {
    let outcome = match api.sandman.pause_by_user(&key).await? {
        UserPause::Paused => Pause::Paused,
        UserPause::AlreadyPaused => Pause::AlreadyPaused,
        UserPause::Gone => Pause::Gone,
    };
    let sandbox = Status::of(&api.sandman.project(&key).await?).into();
    Ok(Json(PauseResult { outcome, sandbox }))
}

#[utoipa::path(post, path = "/v1/projects/{projectId}/sandbox/resume", tag = "sandbox", params(("projectId" = String, Path)),
    responses((status = 200, body = OpenResult), (status = 202, body = OpenResult), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not paused"), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn resume(Shared(api): Shared<Api>, Project(key): Project) -> Result<Response, ApiError> {
    Ok(opened(api.sandman.resume(&key, Actor::User).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KillQuery {
    /// `true`: save a snapshot first, and keep the sandbox if that fails; `false`: don't;
    /// absent: as the project's `snapshotBeforeKill` says, best effort.
    #[param(value_type = Option<bool>)]
    snapshot: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KillResult {
    /// There was no live sandbox to kill.
    pub already_killed: bool,
    pub snapshot: Option<SnapshotView>,
}

#[utoipa::path(delete, path = "/v1/projects/{projectId}/sandbox", tag = "sandbox", params(("projectId" = String, Path), KillQuery),
    responses((status = 200, body = KillResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn kill(
    Shared(api): Shared<Api>,
    Project(key): Project,
    query: Result<Query<KillQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<KillResult>, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::invalid("query", err.body_text()))?;
    let snapshot = match query.snapshot.as_deref() {
        None => SnapshotFirst::ProjectDefault,
        Some("true") => SnapshotFirst::Required,
        Some("false") => SnapshotFirst::Skip,
        Some(_) => {
            return Err(ApiError::invalid("snapshot", "snapshot must be true or false"));
        }
    };
    let killed = api.sandman.kill(&key, snapshot, Actor::User).await?;
    Ok(Json(KillResult {
        already_killed: killed.already,
        snapshot: killed.snapshot.map(SnapshotView::from),
    }))
}
