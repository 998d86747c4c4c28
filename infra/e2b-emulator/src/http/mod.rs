//! The HTTP surface: E2B's API behind the gate, plus admin controls and health.

mod admin;
mod gate;
mod metrics;
mod sandboxes;
mod secrets;
mod snapshots;
mod webhooks;
pub(crate) mod wire;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};

use crate::app::App;
use crate::error::ApiError;

pub(crate) use gate::strip_caller;

pub(crate) fn router(app: App) -> Router {
    let api = Router::new()
        .route("/sandboxes", get(sandboxes::list_running).post(sandboxes::create))
        .route("/v2/sandboxes", get(sandboxes::list).post(sandboxes::create))
        .route("/sandboxes/metrics", get(metrics::batch))
        .route("/sandboxes/{id}", get(sandboxes::get_one).delete(sandboxes::kill))
        .route("/sandboxes/{id}/pause", post(sandboxes::pause))
        .route("/sandboxes/{id}/connect", post(sandboxes::connect))
        .route("/v2/sandboxes/{id}/connect", post(sandboxes::connect_v2))
        .route("/sandboxes/{id}/resume", post(sandboxes::resume))
        .route("/sandboxes/{id}/fork", post(sandboxes::fork))
        .route("/sandboxes/{id}/timeout", post(sandboxes::set_timeout))
        .route("/sandboxes/{id}/refreshes", post(sandboxes::refresh))
        .route("/sandboxes/{id}/metrics", get(metrics::metrics))
        .route("/sandboxes/{id}/network", put(secrets::set_network))
        .route("/secrets", get(secrets::list).post(secrets::create))
        .route(
            "/secrets/{id}",
            get(secrets::get_one).post(secrets::update).delete(secrets::delete),
        )
        .route("/sandboxes/{id}/snapshots", post(snapshots::create))
        .route("/snapshots", get(snapshots::list))
        .route("/templates/{id}", delete(snapshots::delete))
        .route("/events/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/events/webhooks/{id}",
            get(webhooks::get_one).patch(webhooks::update).delete(webhooks::delete),
        )
        .route("/events/sandboxes", get(webhooks::team_events))
        .route("/events/sandboxes/{id}", get(webhooks::sandbox_events))
        .layer(from_fn_with_state(app.clone(), gate::gate));

    Router::new()
        .merge(api)
        .merge(admin::routes())
        .route("/health", get(|| async { StatusCode::OK }))
        .fallback(|| async { ApiError::NotFound("no such route".to_owned()) })
        .with_state(app)
}
