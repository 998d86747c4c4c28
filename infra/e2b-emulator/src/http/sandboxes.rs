//! Sandbox routes: create, get, list, pause, connect/resume, fork, timeout, refresh, kill.

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::gate::ForkFailure;
use super::wire::{
    self, ForkBody, ForkResultBody, NewSandboxBody, PauseBody, RefreshBody, SandboxBody, SandboxDetailBody, TimeoutBody,
};
use crate::app::{App, Team};
use crate::error::ApiError;
use crate::sandbox::{OnTimeout, SandboxState, Transition};
use crate::world::{ListFilter, NewSandbox};

/// The spec's default TTL for create and the deprecated resume.
const SPEC_DEFAULT_TIMEOUT_SECS: i64 = 15;
/// What current SDKs' connect falls back to when no timeout is sent.
const CONNECT_DEFAULT_TIMEOUT_SECS: i64 = 300;
const MAX_REFRESH_SECS: i64 = 3600;
/// The spec's bounds on `count` in a fork request.
const MAX_FORK_COUNT: i64 = 100;

pub(crate) async fn create(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    body: Bytes,
) -> Result<(StatusCode, Json<SandboxBody>), ApiError> {
    let body: NewSandboxBody = wire::parse(&body)?;
    let lifecycle = body.lifecycle.unwrap_or_default();
    let auto_pause = body.auto_pause.unwrap_or(false) || lifecycle.on_timeout == Some(OnTimeout::Pause);
    let auto_resume = body
        .auto_resume
        .map(|a| a.enabled)
        .or(lifecycle.auto_resume)
        .unwrap_or(false);
    if auto_resume && body.auto_pause_memory == Some(false) {
        return Err(ApiError::BadRequest(
            "autoResume cannot be combined with autoPauseMemory=false".to_owned(),
        ));
    }
    let request = NewSandbox {
        template: body.template_id.unwrap_or_default(),
        timeout_secs: body.timeout.unwrap_or(SPEC_DEFAULT_TIMEOUT_SECS),
        on_timeout: if auto_pause { OnTimeout::Pause } else { OnTimeout::Kill },
        auto_resume,
        metadata: body.metadata.unwrap_or_default(),
        env_vars: body.env_vars.unwrap_or_default(),
        network_rules: body.network.map(|n| n.rules).unwrap_or_default(),
    };
    let sandbox = app.world().create(&team, request, app.now())?;
    Ok((StatusCode::CREATED, Json(SandboxBody::from(&sandbox))))
}

pub(crate) async fn get_one(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
) -> Result<Json<SandboxDetailBody>, ApiError> {
    let sandbox = app.world().get(&team, &id)?;
    Ok(Json(SandboxDetailBody::detail(&sandbox)))
}

/// `GET /v2/sandboxes`: running and paused by default, paginated with `X-Next-Token`.
pub(crate) async fn list(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let pairs = wire::query_pairs(&uri)?;
    let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut filter = list_filter(&pairs)?;
    filter.template = value("template").map(str::to_owned);
    filter.started_after = value("startedAfter").map(parse_time).transpose()?;
    let ascending = match value("order") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("invalid order {other:?}"))),
    };
    let limit = wire::parse_limit(value("limit"))?;
    let after = value("nextToken")
        .filter(|t| !t.is_empty())
        .map(wire::decode_token)
        .transpose()?;

    let (body, next_token) = {
        let world = app.world();
        let page = wire::paginate(world.list(&team, &filter), ascending, limit, after);
        let body: Vec<_> = page.items.into_iter().map(SandboxDetailBody::listed).collect();
        (body, page.next_token)
    };
    let mut headers = HeaderMap::new();
    if let Some(token) = next_token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert("x-next-token", token);
    }
    Ok((headers, Json(body)).into_response())
}

/// The deprecated `GET /sandboxes`: every running sandbox, unpaginated.
pub(crate) async fn list_running(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    uri: Uri,
) -> Result<Json<Vec<SandboxDetailBody>>, ApiError> {
    let pairs = wire::query_pairs(&uri)?;
    let mut filter = list_filter(&pairs)?;
    filter.states = vec![SandboxState::Running];
    let world = app.world();
    let page = wire::paginate(world.list(&team, &filter), false, usize::MAX, None);
    Ok(Json(page.items.into_iter().map(SandboxDetailBody::listed).collect()))
}

fn list_filter(pairs: &[(String, String)]) -> Result<ListFilter, ApiError> {
    let mut filter = ListFilter::default();
    for (key, value) in pairs {
        match key.as_str() {
            "state" => {
                for state in value.split(',').filter(|s| !s.is_empty()) {
                    filter.states.push(match state {
                        "running" => SandboxState::Running,
                        "paused" => SandboxState::Paused,
                        other => {
                            return Err(ApiError::BadRequest(format!("invalid state {other:?}")));
                        }
                    });
                }
            }
            "metadata" => filter.metadata.extend(parse_metadata_query(value)?),
            _ => {}
        }
    }
    Ok(filter)
}

/// `user=abc&app=prod`, each key and value URL-encoded once more.
fn parse_metadata_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let invalid = || ApiError::BadRequest(format!("invalid metadata filter {query:?}"));
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(invalid)?;
            let key = wire::percent_decode(key).ok_or_else(invalid)?;
            let value = wire::percent_decode(value).ok_or_else(invalid)?;
            Ok((key, value))
        })
        .collect()
}

fn parse_time(value: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::BadRequest(format!("invalid timestamp {value:?}")))
}

pub(crate) async fn pause(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let _: PauseBody = wire::parse_optional(&body)?;
    app.world().begin(&team, &id, Transition::Pausing, app.now())?;
    let hold = app.config.pause_duration;
    app.shared()
        .after(hold, move |shared| {
            shared.world().finish_pause(&team, &id, shared.now())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sandboxes/{id}/fork`: checkpoints the running sandbox in place (held mid-transition
/// for `snapshot_duration`, as a snapshot is) and starts `count` sandboxes from the checkpoint.
/// 404 unknown or killed, 409 paused or mid-transition; 201 with one result per fork.
pub(crate) async fn fork(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    failure: Option<Extension<ForkFailure>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Vec<ForkResultBody>>), ApiError> {
    let body: ForkBody = wire::parse_optional(&body)?;
    let timeout = body.timeout.unwrap_or(SPEC_DEFAULT_TIMEOUT_SECS);
    let count = body.count.unwrap_or(1);
    let count = u32::try_from(count)
        .ok()
        .filter(|c| (1..=MAX_FORK_COUNT as u32).contains(c))
        .ok_or_else(|| ApiError::BadRequest(format!("count must be between 1 and {MAX_FORK_COUNT}")))?;
    if let Some(Extension(ForkFailure(status))) = failure {
        // E2B's per-fork failure: 201, each result an error, nothing started.
        app.world().get(&team, &id)?;
        let error = serde_json::json!({
            "code": status.as_u16(),
            "message": format!("fork of {id} failed to start (injected)"),
        });
        let results = (0..count)
            .map(|_| ForkResultBody {
                sandbox: None,
                error: Some(error.clone()),
            })
            .collect();
        return Ok((StatusCode::CREATED, Json(results)));
    }
    app.world().begin_fork(&team, &id, timeout, app.now())?;
    let hold = app.config.snapshot_duration;
    let forks = app
        .shared()
        .after(hold, move |shared| {
            shared.world().finish_fork(&team, &id, count, timeout, shared.now())
        })
        .await?;
    let results = forks
        .iter()
        .map(|fork| ForkResultBody {
            sandbox: Some(SandboxBody::from(fork)),
            error: None,
        })
        .collect();
    Ok((StatusCode::CREATED, Json(results)))
}

/// `POST /sandboxes/{id}/connect`: the spec requires a timeout.
pub(crate) async fn connect(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<SandboxBody>), ApiError> {
    let body: TimeoutBody = wire::parse(&body)?;
    let timeout = body
        .timeout
        .ok_or_else(|| ApiError::BadRequest("timeout is required".to_owned()))?;
    connect_with(&app, &team, &id, timeout)
}

/// `POST /v2/sandboxes/{id}/connect`: the timeout is optional (5 minutes).
pub(crate) async fn connect_v2(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<SandboxBody>), ApiError> {
    let body: TimeoutBody = wire::parse_optional(&body)?;
    connect_with(&app, &team, &id, body.timeout.unwrap_or(CONNECT_DEFAULT_TIMEOUT_SECS))
}

fn connect_with(app: &App, team: &str, id: &str, timeout: i64) -> Result<(StatusCode, Json<SandboxBody>), ApiError> {
    let (sandbox, resumed) = app.world().connect(team, id, timeout, app.now())?;
    let status = if resumed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(SandboxBody::from(&sandbox))))
}

/// The deprecated `POST /sandboxes/{id}/resume`.
pub(crate) async fn resume(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<SandboxBody>), ApiError> {
    let body: TimeoutBody = wire::parse_optional(&body)?;
    let timeout = body.timeout.unwrap_or(SPEC_DEFAULT_TIMEOUT_SECS);
    let sandbox = app.world().resume_paused(&team, &id, timeout, app.now())?;
    Ok((StatusCode::CREATED, Json(SandboxBody::from(&sandbox))))
}

pub(crate) async fn set_timeout(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let body: TimeoutBody = wire::parse(&body)?;
    let timeout = body
        .timeout
        .ok_or_else(|| ApiError::BadRequest("timeout is required".to_owned()))?;
    app.world().set_timeout(&team, &id, timeout, app.now())?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn refresh(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let body: RefreshBody = wire::parse_optional(&body)?;
    let secs = body.duration.unwrap_or(0);
    let secs = u64::try_from(secs)
        .ok()
        .filter(|s| *s <= MAX_REFRESH_SECS as u64)
        .ok_or_else(|| ApiError::BadRequest("duration must be between 0 and 3600".to_owned()))?;
    app.world().refresh(&team, &id, Duration::from_secs(secs), app.now())?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn kill(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.world().kill(&team, &id, app.now())?;
    Ok(StatusCode::NO_CONTENT)
}
