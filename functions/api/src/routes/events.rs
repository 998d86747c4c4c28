//! A project's lifecycle log: who moved its sandbox from which state to which, and why.

use axum::Json;
use axum::extract::State as Shared;
use sandman::domain::{Actor, LifecycleRecord};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Project;
use crate::page::{Page, PageQuery, page};
use crate::views::State;

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Who {
    User,
    IdleEnforcer,
    Webhook,
    Reconciler,
    Pruner,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub actor: Who,
    pub cause: String,
    /// Null for a project's first sandbox.
    pub from: Option<State>,
    /// Null only on a settings change (env vars, secrets) of a project that has no sandbox yet.
    pub to: Option<State>,
    pub sandbox_id: Option<String>,
}

impl From<LifecycleRecord> for EventView {
    fn from(event: LifecycleRecord) -> Self {
        EventView {
            at: event.at,
            actor: match event.actor {
                Actor::User => Who::User,
                Actor::IdleEnforcer => Who::IdleEnforcer,
                Actor::Webhook => Who::Webhook,
                Actor::Reconciler => Who::Reconciler,
                Actor::Pruner => Who::Pruner,
            },
            cause: event.cause,
            from: event.from.map(State::from),
            to: event.to.map(State::from),
            sandbox_id: event.sandbox_id,
        }
    }
}

/// Newest first.
#[utoipa::path(get, path = "/v1/projects/{projectId}/events", tag = "events", params(("projectId" = String, Path), PageQuery),
    responses((status = 200, body = Page<EventView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_events(
    Shared(api): Shared<Api>,
    Project(key): Project,
    query: PageQuery,
) -> Result<Json<Page<EventView>>, ApiError> {
    let list = format!("events:{key}");
    let (cursor, limit) = (query.cursor(&api.cursors, &list)?, query.limit()?);
    // The log outlives its project until it expires: a deleted project has no events to show.
    let found = api.sandman.project_events(&key, cursor.as_ref(), limit).await?;
    Ok(Json(page(
        found.items,
        found.next,
        &api.cursors,
        &list,
        EventView::from,
    )))
}
