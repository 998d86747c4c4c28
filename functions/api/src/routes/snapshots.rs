//! A project's snapshots: take one, list them, pin, restore and delete.

use axum::Json;
use axum::extract::State as Shared;
use axum::response::Response;
use http::StatusCode;
use sandman::domain::{Actor, SnapshotKind};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, Project, ProjectSnapshot};
use crate::page::{Page, PageQuery, page};
use crate::views::{OpenResult, SnapshotView};

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create_snapshot, list_snapshots))
        .routes(routes!(pin_snapshot, delete_snapshot))
        .routes(routes!(restore_snapshot))
}

const MAX_DESCRIPTION: usize = 500;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSnapshot {
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotChange {
    /// Pinned snapshots are never pruned nor deleted (unpin first); a project may pin only so
    /// many (`SANDMAN_MAX_PINNED_SNAPSHOTS_PER_PROJECT`, default 5).
    pub pinned: bool,
}

/// Saves the running or paused sandbox as a snapshot. Every snapshot of the team counts against its
/// quota (`SANDMAN_MAX_SNAPSHOTS_PER_TEAM`): past it this answers 429 (automatic snapshots are
/// still taken, and the team's oldest unpinned ones make room).
#[utoipa::path(post, path = "/v1/projects/{projectId}/snapshots", tag = "snapshots", params(("projectId" = String, Path)), request_body = NewSnapshot,
    responses((status = 201, body = SnapshotView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "no live sandbox"), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_snapshot(
    Shared(api): Shared<Api>,
    Project(key): Project,
    JsonBody(new): JsonBody<NewSnapshot>,
) -> Result<(StatusCode, Json<SnapshotView>), ApiError> {
    if new.description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    let record = api.sandman.project(&key).await?;
    let snapshot = api
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, new.description)
        .await?;
    Ok((StatusCode::CREATED, Json(snapshot.into())))
}

/// Newest first.
#[utoipa::path(get, path = "/v1/projects/{projectId}/snapshots", tag = "snapshots", params(("projectId" = String, Path), PageQuery),
    responses((status = 200, body = Page<SnapshotView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_snapshots(
    Shared(api): Shared<Api>,
    Project(key): Project,
    query: PageQuery,
) -> Result<Json<Page<SnapshotView>>, ApiError> {
    let list = format!("snapshots:{key}");
    let found = api
        .sandman
        .list_snapshots(&key, query.cursor(&api.cursors, &list)?.as_ref(), query.limit()?)
        .await?;
    Ok(Json(page(
        found.items,
        found.next,
        &api.cursors,
        &list,
        SnapshotView::from,
    )))
}

#[utoipa::path(patch, path = "/v1/projects/{projectId}/snapshots/{snapshotId}", tag = "snapshots",
    params(("projectId" = String, Path), ("snapshotId" = String, Path)), request_body = SnapshotChange,
    responses((status = 200, body = SnapshotView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "the project has as many pinned snapshots as it may")),
    security(("bearer" = [])))]
async fn pin_snapshot(
    Shared(api): Shared<Api>,
    ProjectSnapshot(key, id): ProjectSnapshot,
    JsonBody(change): JsonBody<SnapshotChange>,
) -> Result<Json<SnapshotView>, ApiError> {
    Ok(Json(api.sandman.set_pinned(&key, &id, change.pinned).await?.into()))
}

#[utoipa::path(delete, path = "/v1/projects/{projectId}/snapshots/{snapshotId}", tag = "snapshots",
    params(("projectId" = String, Path), ("snapshotId" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "pinned, or a sandbox made from it still runs"), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_snapshot(
    Shared(api): Shared<Api>,
    ProjectSnapshot(key, id): ProjectSnapshot,
) -> Result<StatusCode, ApiError> {
    api.sandman.delete_snapshot(&key, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the project's sandbox with one restored from this snapshot (the current one is
/// killed first, saved if the project says so); it runs from this snapshot or the restore fails.
#[utoipa::path(post, path = "/v1/projects/{projectId}/snapshots/{snapshotId}/restore", tag = "snapshots",
    params(("projectId" = String, Path), ("snapshotId" = String, Path)),
    responses((status = 200, body = OpenResult), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn restore_snapshot(
    Shared(api): Shared<Api>,
    ProjectSnapshot(key, id): ProjectSnapshot,
) -> Result<Response, ApiError> {
    Ok(super::sandbox::opened(
        api.sandman.restore(&key, &id, Actor::User).await?.into(),
    ))
}
