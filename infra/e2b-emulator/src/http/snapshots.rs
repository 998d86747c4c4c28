//! Snapshot routes: take one from a sandbox, list them, delete one.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::wire::{self, SnapshotBody, SnapshotInfoBody};
use crate::app::{App, Team};
use crate::error::ApiError;
use crate::sandbox::Transition;
use crate::snapshot::is_valid_name;

/// Briefly holds the sandbox mid-transition (a concurrent pause gets 409), as E2B does.
pub(crate) async fn create(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<SnapshotInfoBody>), ApiError> {
    let body: SnapshotBody = wire::parse_optional(&body)?;
    let name = body.name.filter(|n| !n.is_empty());
    if let Some(name) = &name
        && !is_valid_name(name)
    {
        return Err(ApiError::BadRequest(format!(
            "invalid snapshot name {name:?}: use lowercase letters, digits, '-', '_' or '.'"
        )));
    }
    app.world().begin(&team, &id, Transition::Snapshotting, app.now())?;
    let hold = app.config.snapshot_duration;
    let snapshot = app
        .shared()
        .after(hold, move |shared| {
            shared.world().finish_snapshot(&team, &id, name, shared.now())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(SnapshotInfoBody::from(&snapshot))))
}

pub(crate) async fn list(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let pairs = wire::query_pairs(&uri)?;
    let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let limit = wire::parse_limit(value("limit"))?;
    let after = value("nextToken")
        .filter(|t| !t.is_empty())
        .map(wire::decode_token)
        .transpose()?;
    let (body, next_token) = {
        let world = app.world();
        let snapshots = world.list_snapshots(&team, value("sandboxID"), value("name"));
        let page = wire::paginate(snapshots, false, limit, after);
        let body: Vec<_> = page.items.into_iter().map(SnapshotInfoBody::from).collect();
        (body, page.next_token)
    };
    let mut headers = HeaderMap::new();
    if let Some(token) = next_token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert("x-next-token", token);
    }
    Ok((headers, Json(body)).into_response())
}

/// `DELETE /templates/{id}` with a snapshot id.
pub(crate) async fn delete(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.world().delete_snapshot(&team, &id, app.now())?;
    Ok(StatusCode::NO_CONTENT)
}
