//! Runs around every API call: applies due expiries, injected faults and API-key
//! authentication, then records the call.

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::app::{App, Team};
use crate::calls::RecordedCall;
use crate::error::ApiError;
use crate::faults::{Route, Verdict};

const MAX_BODY_BYTES: usize = 1 << 20;

/// Who called, from a `/callers/{caller}/…` prefix (see [`strip_caller`]).
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub String);

/// A fork whose results are to be per-fork errors with this status (`Fault::fork_error_next`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForkFailure(pub StatusCode);

/// `/callers/{caller}/sandboxes/…` is `/sandboxes/…` called by `caller`: a client that puts its
/// name in its base URL is told apart in the call log. Runs before routing.
pub(crate) fn strip_caller(mut request: Request) -> Request {
    let Some(rest) = request.uri().path().strip_prefix("/callers/") else {
        return request;
    };
    let (caller, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let caller = caller.to_owned();
    let mut stripped = format!("/{tail}");
    if let Some(query) = request.uri().query() {
        stripped.push('?');
        stripped.push_str(query);
    }
    if let Ok(uri) = stripped.parse() {
        *request.uri_mut() = uri;
        request.extensions_mut().insert(Caller(caller));
    }
    request
}

/// What is known of a call before it is answered.
struct Draft {
    route: Route,
    method: String,
    path: String,
    query: Option<String>,
    body: Option<serde_json::Value>,
    team_id: Option<String>,
    key_fingerprint: Option<String>,
    caller: Option<String>,
    received_at: OffsetDateTime,
}

impl Draft {
    /// Records the call as answered now with `response` (the handler answered `handler_status`).
    fn record(self, app: &App, response: &Response, handler_status: Option<u16>) {
        let status = response.status().as_u16();
        tracing::info!(method = %self.method, path = %self.path, route = ?self.route, status,
            team = self.team_id.as_deref(), "api call");
        app.calls.record(RecordedCall {
            route: self.route,
            method: self.method,
            path: self.path,
            query: self.query,
            body: self.body,
            status,
            handler_status,
            caller: self.caller,
            received_at: self.received_at,
            team_id: self.team_id,
            key_fingerprint: self.key_fingerprint,
            at: app.now(),
        });
    }
}

pub(crate) async fn gate(State(app): State<App>, request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let route = Route::classify(request.method(), matched.as_deref());
    let presented = request.headers().get("x-api-key").and_then(|value| value.to_str().ok());
    let key_fingerprint = presented.map(crate::calls::key_fingerprint);
    let team = presented.and_then(|key| app.team_for_key(key));
    let mut draft = Draft {
        route,
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        body: None,
        team_id: team.as_ref().map(|t| t.0.clone()),
        key_fingerprint,
        caller: request.extensions().get::<Caller>().map(|c| c.0.clone()),
        received_at: app.now(),
    };

    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        let response = ApiError::BadRequest("request body too large".to_owned()).into_response();
        draft.record(&app, &response, None);
        return response;
    };
    draft.body = serde_json::from_slice(&bytes).ok();
    let verdict = app.faults.intercept(route, team.as_ref().map(|t| t.0.as_str())).await;
    let team = match (&verdict, team) {
        (Verdict::Refuse(_), _) | (_, None) => {
            let response = match verdict {
                Verdict::Refuse(fault) => fault.into_response(),
                _ => ApiError::Unauthorized.into_response(),
            };
            draft.record(&app, &response, None);
            return response;
        }
        (_, Some(team)) => team,
    };
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert::<Team>(team);
    match verdict {
        Verdict::ApplyLate(after) => {
            // Done in a task of its own: a caller that gives up meanwhile does not stop it.
            let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
            let late = app.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let (response, status) = handle(&late, request, next).await;
                draft.record(&late, &response, Some(status));
                let _ = answer_tx.send(response);
            });
            answer_rx
                .await
                .unwrap_or_else(|_| ApiError::Internal("the late call was lost".to_owned()).into_response())
        }
        Verdict::AppliedThenHang(hang) => {
            let (response, status) = handle(&app, request, next).await;
            // Recorded now: done, whether or not the caller waits out the hang.
            draft.record(&app, &response, Some(status));
            tokio::time::sleep(hang).await;
            response
        }
        Verdict::AppliedThenFail(fault) => {
            let (_, status) = handle(&app, request, next).await;
            let response = fault.into_response();
            draft.record(&app, &response, Some(status));
            response
        }
        Verdict::ForkError(status) => {
            request.extensions_mut().insert(ForkFailure(status));
            let (response, status) = handle(&app, request, next).await;
            draft.record(&app, &response, Some(status));
            response
        }
        Verdict::Pass | Verdict::Refuse(_) => {
            let (response, status) = handle(&app, request, next).await;
            draft.record(&app, &response, Some(status));
            response
        }
    }
}

/// Applies what is due, then the handler: its answer and status.
async fn handle(app: &App, request: Request, next: Next) -> (Response, u16) {
    app.sweep();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    (response, status)
}
