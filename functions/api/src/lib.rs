//! Sandman's HTTP API: one axum `Router` that runs inside Lambda (`lambda_http::run`) behind an
//! API Gateway HTTP API and, unchanged, as a local server (`axum::serve`). Handlers are thin: they
//! parse and validate, make one call on the core (`Sandman`), and answer JSON.

mod dashboard;
mod error;
mod etag;
mod extract;
mod json_shape;
mod openapi;
mod page;
pub mod rate;
mod routes;
mod settings;
mod views;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use http::StatusCode;
use sandman::Sandman;
use sandman::auth::Verifier;
use sandman::deadline::{API_BUDGET, Deadline};

pub use error::ApiError;

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every handler shares: built once per cold start.
#[derive(Clone)]
pub struct Api {
    pub sandman: Sandman,
    pub verifier: Arc<Verifier>,
    /// Each team's request rate in this instance.
    pub rates: Arc<rate::TeamRates>,
    /// Tags page cursors, so only cursors the API issued come back.
    pub cursors: sandman::crypto::Tagger,
}

/// What the Lambda runs: the token verifier from the deployment's auth settings and secrets, then
/// the router. Fails at cold start when no way to verify tokens is configured.
pub fn app(sandman: Sandman) -> Result<Router, sandman::auth::AuthError> {
    let verifier = Verifier::new(&sandman.config.auth, &sandman.secrets)?;
    Ok(router(sandman, verifier))
}

pub fn router(sandman: Sandman, verifier: Verifier) -> Router {
    let api = Api {
        rates: Arc::new(rate::TeamRates::new(sandman.config.request_rates.clone())),
        cursors: sandman::crypto::Tagger::for_deployment("page cursors", &sandman.secrets),
        sandman,
        verifier: Arc::new(verifier),
    };
    let (router, document) = routes::all().split_for_parts();
    let document = openapi::finish(document);
    let document = openapi::for_deployment(document, api.sandman.config.templates.closed_set());
    let document = serde_json::to_vec(&document).map(Bytes::from).unwrap_or_default();
    router
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::Extension(routes::Document(document)))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(nosniff))
        .layer(middleware::from_fn(budget))
        .layer(middleware::from_fn(log_request))
        .with_state(api)
}

/// The OpenAPI document the router serves at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::finish(routes::all().into_openapi())
}

/// Every request works within `API_BUDGET`, and within its Lambda invocation's deadline (less a
/// margin) when it has one: an open that runs out answers "in progress" instead of being cut.
async fn budget(request: Request, next: Next) -> Response {
    let mut deadline = Deadline::after(API_BUDGET);
    if let Some(context) = request
        .extensions()
        .get::<lambda_http::Context>()
        .filter(|c| c.deadline > 0)
    {
        deadline = deadline.min(Deadline::from_lambda_ms(context.deadline));
    }
    deadline.scope(next.run(request)).await
}

/// No answer may be read as anything but its declared type: JSON as JSON, the dashboard's
/// script as a script.
async fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    response
}

async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let route = route.as_deref().unwrap_or("-");
    if status >= 500 {
        tracing::warn!(%method, route, status, ms, "request failed");
    } else {
        tracing::info!(%method, route, status, ms, "request");
    }
    response
}
