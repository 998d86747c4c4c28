//! Webhook management and the events polling API (e2b-argus-openapi.yml).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;

use super::wire;
use crate::app::{App, Team};
use crate::error::ApiError;
use crate::webhook::WebhookDetail;
use crate::world::{NewWebhook, WebhookChanges};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookCreateBody {
    name: String,
    url: String,
    events: Vec<String>,
    signature_secret: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookConfigurationBody {
    enabled: Option<bool>,
    name: Option<String>,
    url: Option<String>,
    events: Option<Vec<String>>,
    signature_secret: Option<String>,
}

pub(crate) async fn create(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookDetail>), ApiError> {
    let body: WebhookCreateBody = wire::parse(&body)?;
    let new = NewWebhook {
        name: body.name,
        url: body.url,
        events: body.events,
        secret: body.signature_secret,
        enabled: body.enabled,
    };
    let webhook = app.world().add_webhook(&team, new, app.now())?;
    Ok((StatusCode::CREATED, Json(webhook)))
}

pub(crate) async fn list(State(app): State<App>, Extension(Team(team)): Extension<Team>) -> Json<Vec<WebhookDetail>> {
    Json(app.world().webhooks_of(&team))
}

pub(crate) async fn get_one(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
) -> Result<Json<WebhookDetail>, ApiError> {
    Ok(Json(app.world().webhook(&team, &id)?))
}

pub(crate) async fn update(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<WebhookDetail>, ApiError> {
    let body: WebhookConfigurationBody = wire::parse(&body)?;
    let changes = WebhookChanges {
        name: body.name,
        url: body.url,
        events: body.events,
        secret: body.signature_secret,
        enabled: body.enabled,
    };
    Ok(Json(app.world().update_webhook(&team, &id, changes)?))
}

pub(crate) async fn delete(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.world().delete_webhook(&team, &id)?;
    Ok(StatusCode::OK)
}

/// `GET /events/sandboxes/{id}`: the events of one sandbox, killed ones included.
pub(crate) async fn sandbox_events(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Vec<Value>>, ApiError> {
    let known = app.world().sandbox_view(&id).is_some_and(|s| s.team_id == team);
    if !known {
        return Err(ApiError::SandboxNotFound(id));
    }
    events_page(&app, &team, Some(&id), &uri)
}

/// `GET /events/sandboxes`: the events of every sandbox of the team.
pub(crate) async fn team_events(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    uri: Uri,
) -> Result<Json<Vec<Value>>, ApiError> {
    events_page(&app, &team, None, &uri)
}

fn events_page(app: &App, team: &str, sandbox_id: Option<&str>, uri: &Uri) -> Result<Json<Vec<Value>>, ApiError> {
    let pairs = wire::query_pairs(uri)?;
    let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let offset = match value("offset") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest("offset must be >= 0".to_owned()))?,
    };
    let limit = match value("limit") {
        None => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| ApiError::BadRequest("limit must be between 1 and 100".to_owned()))?,
    };
    let ascending = value("orderAsc") == Some("true");
    let types: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "types")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut events = app.world().events(team, sandbox_id);
    events.retain(|e| types.is_empty() || types.contains(&e.event_type.as_str()));
    if !ascending {
        events.reverse();
    }
    Ok(Json(
        events
            .iter()
            .skip(offset)
            .take(limit)
            .map(|e| e.api_body.clone())
            .collect(),
    ))
}
