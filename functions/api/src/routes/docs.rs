//! The API's own description and a liveness probe, both without a token.

use axum::Extension;
use axum::body::Bytes;
use axum::response::IntoResponse;
use http::{HeaderValue, header};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(healthz))
}

/// The OpenAPI document, serialized once when the router is built.
#[derive(Clone)]
pub struct Document(pub Bytes);

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "the OpenAPI document", content_type = "application/json")))]
async fn openapi_json(Extension(document): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        document.0,
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the function is up. It does not call DynamoDB or E2B.
    pub status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}
