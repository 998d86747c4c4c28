//! Outbound webhooks: a team's endpoints (URL, the events it wants, a signing secret shown once;
//! registered and removed by team admins) and each endpoint's delivery log.

use axum::Json;
use axum::extract::State as Shared;
use http::StatusCode;
use sandman::outbound::{Delivery, Endpoint};
use sandman::store::Consistency;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, Team, TeamEndpoint, Verified};
use crate::page::{Page, PageQuery, page};

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, delete_endpoint))
        .routes(routes!(list_deliveries))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewEndpointBody {
    /// https (plain http only to this machine, on a local stack).
    #[schema(
        max_length = 2048,
        pattern = r"^https://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.[a-z]{2,24}(/[A-Za-z0-9._~-]{0,64}){0,8}$"
    )]
    pub url: String,
    /// The event types to deliver: `sandbox.running`, `sandbox.resumed`, `sandbox.restored`,
    /// `sandbox.paused`, `sandbox.killed`, `snapshot.created`, `snapshot.deleted`, ...
    #[schema(min_items = 1, value_type = Vec<EndpointEvent>)]
    pub events: Vec<String>,
    /// Up to 256 characters.
    #[schema(max_length = 256)]
    pub description: Option<String>,
}

/// The event types an endpoint may ask for (`sandman::outbound::EventType`), for the document.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
enum EndpointEvent {
    #[serde(rename = "sandbox.starting")]
    SandboxStarting,
    #[serde(rename = "sandbox.running")]
    SandboxRunning,
    #[serde(rename = "sandbox.resumed")]
    SandboxResumed,
    #[serde(rename = "sandbox.restored")]
    SandboxRestored,
    #[serde(rename = "sandbox.pausing")]
    SandboxPausing,
    #[serde(rename = "sandbox.paused")]
    SandboxPaused,
    #[serde(rename = "sandbox.resuming")]
    SandboxResuming,
    #[serde(rename = "sandbox.stopping")]
    SandboxStopping,
    #[serde(rename = "sandbox.killed")]
    SandboxKilled,
    #[serde(rename = "snapshot.created")]
    SnapshotCreated,
    #[serde(rename = "snapshot.deleted")]
    SnapshotDeleted,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub endpoint_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        EndpointView {
            endpoint_id: e.endpoint_id,
            url: e.url,
            events: e.events.iter().map(|t| t.as_str().to_owned()).collect(),
            description: e.description,
            created_at: e.created_at,
        }
    }
}

/// A new endpoint and its signing secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_` + base64: verify each delivery's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointList {
    pub items: Vec<EndpointView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    Delivered,
    Retrying,
    DeadLettered,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The `webhook-id` the endpoint received (the same on every attempt).
    pub message_id: String,
    pub event_type: String,
    pub status: DeliveryState,
    pub attempts: u32,
    /// The endpoint's HTTP status at the latest attempt, when it answered.
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_attempt_at: OffsetDateTime,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        use sandman::outbound::DeliveryStatus;
        DeliveryView {
            message_id: d.message_id,
            event_type: d.event_type.as_str().to_owned(),
            status: match d.status {
                DeliveryStatus::Delivered => DeliveryState::Delivered,
                DeliveryStatus::Retrying => DeliveryState::Retrying,
                DeliveryStatus::DeadLettered => DeliveryState::DeadLettered,
            },
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            last_attempt_at: d.last_attempt_at,
        }
    }
}

/// Registers an endpoint (team admins only). The answer carries its signing secret, shown this
/// once; it is stored sealed. The URL must be https to a public address: a name is resolved now
/// and again at every delivery, and any private, loopback, link-local or otherwise non-global
/// address is refused.
#[utoipa::path(post, path = "/v1/webhooks/endpoints", tag = "webhooks", request_body = NewEndpointBody,
    responses((status = 201, body = CreatedEndpoint), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "the token is not a team admin's"),
        (status = 409, body = ErrorBody, description = "the deployment cannot seal signing secrets"),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody, description = "the team has as many endpoints as it may"),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_endpoint(
    Shared(api): Shared<Api>,
    Verified(caller): Verified,
    JsonBody(body): JsonBody<NewEndpointBody>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let (endpoint, secret) = api
        .sandman
        .register_endpoint(&caller, &body.url, &body.events, body.description.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint {
            endpoint: endpoint.into(),
            secret: secret.expose(),
        }),
    ))
}

/// The team's endpoints (never their secrets).
#[utoipa::path(get, path = "/v1/webhooks/endpoints", tag = "webhooks",
    responses((status = 200, body = EndpointList), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_endpoints(Shared(api): Shared<Api>, Team(team): Team) -> Result<Json<EndpointList>, ApiError> {
    let endpoints = api
        .sandman
        .store
        .list_endpoints(&team, Consistency::Eventual)
        .await
        .map_err(sandman::Error::from)?;
    Ok(Json(EndpointList {
        items: endpoints.into_iter().map(EndpointView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/webhooks/endpoints/{endpointId}", tag = "webhooks", params(("endpointId" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_endpoint(
    Shared(api): Shared<Api>,
    TeamEndpoint(team, endpoint_id): TeamEndpoint,
) -> Result<Json<EndpointView>, ApiError> {
    let endpoint = api
        .sandman
        .store
        .get_endpoint(&team, &endpoint_id)
        .await
        .map_err(sandman::Error::from)?
        .ok_or_else(|| ApiError::not_found("endpoint not found"))?;
    Ok(Json(endpoint.into()))
}

/// Stops deliveries to the endpoint (those queued are dropped); its delivery log expires. Team
/// admins only.
#[utoipa::path(delete, path = "/v1/webhooks/endpoints/{endpointId}", tag = "webhooks", params(("endpointId" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "the token is not a team admin's"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_endpoint(
    Shared(api): Shared<Api>,
    TeamEndpoint(_team, endpoint_id): TeamEndpoint,
    Verified(caller): Verified,
) -> Result<StatusCode, ApiError> {
    let deleted = api.sandman.remove_endpoint(&caller, &endpoint_id).await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("endpoint not found"))
    }
}

/// The endpoint's deliveries, newest first: each with its attempts and what the endpoint answered.
#[utoipa::path(get, path = "/v1/webhooks/endpoints/{endpointId}/deliveries", tag = "webhooks", params(("endpointId" = String, Path), PageQuery),
    responses((status = 200, body = Page<DeliveryView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_deliveries(
    Shared(api): Shared<Api>,
    TeamEndpoint(team, endpoint_id): TeamEndpoint,
    query: PageQuery,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    let list = format!("deliveries:{team}:{endpoint_id}");
    let (cursor, limit) = (query.cursor(&api.cursors, &list)?, query.limit()?);
    let store = &api.sandman.store;
    store
        .get_endpoint(&team, &endpoint_id)
        .await
        .map_err(sandman::Error::from)?
        .ok_or_else(|| ApiError::not_found("endpoint not found"))?;
    let found = store
        .list_deliveries(&team, &endpoint_id, cursor.as_ref(), limit)
        .await
        .map_err(sandman::Error::from)?;
    Ok(Json(page(
        found.items,
        found.next,
        &api.cursors,
        &list,
        DeliveryView::from,
    )))
}
