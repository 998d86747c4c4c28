//! Test controls over HTTP, so the binary can be driven from a shell or Python.
//! No API key needed; never recorded as calls.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::calls::RecordedCall;
use crate::clock::rfc3339;
use crate::delivery::WebhookDelivery;
use crate::error::ApiError;
use crate::faults::{Fault, Route, WebhookFaults};
use crate::sandbox::SandboxView;
use crate::snapshot::SnapshotView;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/admin/clock", get(clock))
        .route("/admin/clock/advance", post(advance_clock))
        .route("/admin/faults", get(faults).post(set_fault).delete(clear_faults))
        .route(
            "/admin/webhook-faults",
            get(webhook_faults)
                .post(set_webhook_faults)
                .delete(clear_webhook_faults),
        )
        .route("/admin/calls", get(calls).delete(clear_calls))
        .route("/admin/sandboxes", get(sandboxes))
        .route("/admin/sandboxes/{id}", get(sandbox))
        .route("/admin/sandboxes/{id}/metrics", post(set_metrics))
        .route("/admin/session-cap", get(session_cap).post(set_session_cap))
        .route("/admin/sandboxes/{id}/files", post(write_file))
        .route("/admin/snapshots", get(snapshots))
        .route("/admin/deliveries", get(deliveries).delete(clear_deliveries))
        .route("/admin/webhooks/settle", post(settle))
        .route("/admin/reset", post(reset))
        .route("/admin/teams/{team}/revoke", post(revoke).delete(restore))
}

async fn revoke(State(app): State<App>, Path(team): Path<String>) -> StatusCode {
    if app.set_revoked(&team, true) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn restore(State(app): State<App>, Path(team): Path<String>) -> StatusCode {
    if app.set_revoked(&team, false) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

fn clock_body(app: &App) -> Value {
    json!({ "now": rfc3339(app.now()) })
}

async fn clock(State(app): State<App>) -> Json<Value> {
    Json(clock_body(&app))
}

const MAX_ADVANCE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `{"seconds": 90}` or `{"ms": 1500}`.
#[derive(Debug, Default, Deserialize)]
struct AdvanceBody {
    seconds: Option<f64>,
    ms: Option<u64>,
}

async fn advance_clock(State(app): State<App>, Json(body): Json<AdvanceBody>) -> Result<Json<Value>, ApiError> {
    let by = match (body.seconds, body.ms) {
        (Some(seconds), None) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| ApiError::BadRequest("seconds must be a non-negative number".to_owned()))?,
        (None, Some(ms)) => Duration::from_millis(ms),
        _ => {
            return Err(ApiError::BadRequest("give exactly one of seconds or ms".to_owned()));
        }
    };
    if by > MAX_ADVANCE {
        return Err(ApiError::BadRequest("advance by at most 100 years".to_owned()));
    }
    app.advance_clock(by);
    Ok(Json(clock_body(&app)))
}

async fn faults(State(app): State<App>) -> Json<HashMap<Route, Fault>> {
    Json(app.faults.all())
}

/// `{"route": "CreateSandbox", "fail_next": 2, "error_status": 503, "latency": 100}`.
#[derive(Debug, Deserialize)]
struct RouteFault {
    route: Route,
    #[serde(flatten)]
    fault: Fault,
}

async fn set_fault(State(app): State<App>, Json(body): Json<RouteFault>) -> StatusCode {
    app.faults.set(body.route, body.fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(app): State<App>) -> StatusCode {
    app.faults.clear();
    StatusCode::NO_CONTENT
}

async fn webhook_faults(State(app): State<App>) -> Json<WebhookFaults> {
    Json(app.publisher.faults())
}

async fn set_webhook_faults(State(app): State<App>, Json(faults): Json<WebhookFaults>) -> StatusCode {
    app.publisher.set_faults(faults);
    StatusCode::NO_CONTENT
}

async fn clear_webhook_faults(State(app): State<App>) -> StatusCode {
    app.publisher.set_faults(WebhookFaults::default());
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct CallsQuery {
    route: Option<Route>,
}

async fn calls(State(app): State<App>, Query(query): Query<CallsQuery>) -> Json<Vec<RecordedCall>> {
    Json(match query.route {
        Some(route) => app.calls.to(route),
        None => app.calls.all(),
    })
}

async fn clear_calls(State(app): State<App>) -> StatusCode {
    app.calls.clear();
    StatusCode::NO_CONTENT
}

async fn sandboxes(State(app): State<App>) -> Json<Vec<SandboxView>> {
    Json(app.world().sandbox_views())
}

async fn sandbox(State(app): State<App>, Path(id): Path<String>) -> Result<Json<SandboxView>, ApiError> {
    app.world()
        .sandbox_view(&id)
        .map(Json)
        .ok_or(ApiError::SandboxNotFound(id))
}

/// `{"cpu_used_pct": 80}`; `null` goes back to the synthetic load.
#[derive(Debug, Deserialize)]
struct MetricsBody {
    cpu_used_pct: Option<f64>,
}

async fn set_metrics(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<MetricsBody>,
) -> Result<StatusCode, ApiError> {
    if body.cpu_used_pct.is_some_and(|pct| !(0.0..=100.0).contains(&pct)) {
        return Err(ApiError::BadRequest(
            "cpu_used_pct must be between 0 and 100".to_owned(),
        ));
    }
    app.world().set_cpu(&id, body.cpu_used_pct)?;
    Ok(StatusCode::NO_CONTENT)
}

fn session_cap_body(cap: Option<Duration>) -> Value {
    json!({ "seconds": cap.map(|cap| cap.as_secs()) })
}

async fn session_cap(State(app): State<App>) -> Json<Value> {
    Json(session_cap_body(app.world().session_cap()))
}

/// `{"seconds": 3600}`, or `{"seconds": null}` for no cap. Applies to running sandboxes at once.
#[derive(Debug, Deserialize)]
struct SessionCapBody {
    seconds: Option<u64>,
}

async fn set_session_cap(State(app): State<App>, Json(body): Json<SessionCapBody>) -> Json<Value> {
    let cap = body.seconds.map(Duration::from_secs);
    app.world().set_session_cap(cap);
    app.sweep();
    Json(session_cap_body(cap))
}

#[derive(serde::Deserialize)]
struct FileWrite {
    path: String,
    content: String,
}

async fn write_file(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(file): Json<FileWrite>,
) -> Result<axum::http::StatusCode, ApiError> {
    app.world().write_file(&id, &file.path, &file.content)?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn snapshots(State(app): State<App>) -> Json<Vec<SnapshotView>> {
    Json(app.world().snapshot_views())
}

async fn deliveries(State(app): State<App>) -> Json<Vec<WebhookDelivery>> {
    Json(app.publisher.deliveries())
}

async fn clear_deliveries(State(app): State<App>) -> StatusCode {
    app.publisher.clear_deliveries();
    StatusCode::NO_CONTENT
}

async fn settle(State(app): State<App>) -> Json<Value> {
    app.publisher.settle().await;
    Json(json!({ "settled": true }))
}

async fn reset(State(app): State<App>) -> StatusCode {
    app.reset();
    StatusCode::NO_CONTENT
}
