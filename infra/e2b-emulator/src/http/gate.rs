//! Runs around every API call: applies due expiries, injected faults and API-key
//! authentication, then records the call.

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::calls::RecordedCall;
use crate::error::ApiError;
use crate::faults::{Route, Verdict};

const MAX_BODY_BYTES: usize = 1 << 20;

pub(crate) async fn gate(State(app): State<App>, request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let route = Route::classify(request.method(), matched.as_deref());
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let presented = request.headers().get("x-api-key").and_then(|value| value.to_str().ok());
    let key_fingerprint = presented.map(crate::calls::key_fingerprint);
    let team = presented.and_then(|key| app.team_for_key(key));

    let (parts, body) = request.into_parts();
    let (response, body_json) = match to_bytes(body, MAX_BODY_BYTES).await {
        Err(_) => (
            ApiError::BadRequest("request body too large".to_owned()).into_response(),
            None,
        ),
        Ok(bytes) => {
            let body_json = serde_json::from_slice(&bytes).ok();
            let response = match (
                app.faults.intercept(route, team.as_ref().map(|t| t.0.as_str())).await,
                &team,
            ) {
                (Verdict::Refuse(fault), _) => fault.into_response(),
                (_, None) => ApiError::Unauthorized.into_response(),
                (verdict, Some(team)) => {
                    app.sweep();
                    let mut request = Request::from_parts(parts, Body::from(bytes));
                    request.extensions_mut().insert(team.clone());
                    let answer = next.run(request).await;
                    match verdict {
                        Verdict::AppliedThenFail(fault) => fault.into_response(),
                        Verdict::AppliedThenHang(hang) => {
                            tokio::time::sleep(hang).await;
                            answer
                        }
                        Verdict::Pass | Verdict::Refuse(_) => answer,
                    }
                }
            };
            (response, body_json)
        }
    };

    let status = response.status().as_u16();
    tracing::info!(%method, %path, ?route, status, team = team.as_ref().map(|t| t.0.as_str()), "api call");
    app.calls.record(RecordedCall {
        route,
        method,
        path,
        query,
        body: body_json,
        status,
        team_id: team.map(|t| t.0),
        key_fingerprint,
        at: app.now(),
    });
    response
}
