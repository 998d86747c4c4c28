//! The webhook receiver: E2B's lifecycle events, behind a Lambda function URL (or `axum::serve`
//! locally). Thin: the raw body and two headers go to `Sandman::receive_webhook`; its answer comes
//! back as JSON with a status E2B understands (only 5xx is worth a redelivery).

mod metrics;

pub use metrics::metrics_for;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sandman::Sandman;
use sandman::sandbox_metadata;
use sandman::store::StoreError;
use sandman::team_keys::E2bAccount;
use sandman::webhook::{Delivery, Receipt, WebhookError, verify_and_parse};
use serde_json::json;
use tracing::Instrument;

/// E2B's lifecycle events are a few KB; anything past this is refused with 413 before it is read.
pub const BODY_LIMIT: usize = 32 * 1024;

/// `POST /accounts/default` and `/accounts/teams/{teamId}`: each E2B account's own URL, signed
/// with that account's own secret (any other `/accounts/...` path is 404, before the body is
/// read). `POST` on any other path (function URLs post to `/`, a local stack may mount it
/// elsewhere): the deployment's original URL, the default account's, signed with the deployment
/// secret itself.
pub fn router(sandman: Sandman) -> Router {
    Router::new()
        .route("/", post(receive))
        .route("/accounts/{*account}", post(receive_for_account))
        .route("/{*path}", post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sandman)
}

async fn receive(State(sandman): State<Sandman>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&sandman, None, &headers, &body).await
}

async fn receive_for_account(
    State(sandman): State<Sandman>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match E2bAccount::from_webhook_path(uri.path()) {
        Some(account) => handle(&sandman, Some(&account), &headers, &body).await,
        None => {
            let body = json!({"error": {"code": "not_found", "message": "no such webhook account"}});
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
    }
}

async fn handle(sandman: &Sandman, account: Option<&E2bAccount>, headers: &HeaderMap, body: &Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let delivery = Delivery {
        signature: header("e2b-signature"),
        delivery_id: header("e2b-delivery-id"),
        body,
    };
    let span = tracing::info_span!(
        "webhook",
        account = account.map(tracing::field::display),
        deliveryId = delivery.delivery_id,
        projectId = tracing::field::Empty,
        eventType = tracing::field::Empty
    );
    let result = async {
        let secrets: Vec<_> = match account {
            Some(account) => sandman
                .secrets
                .webhook_secrets
                .iter()
                .map(|s| account.webhook_secret(s))
                .collect(),
            None => sandman.secrets.webhook_secrets.clone(),
        };
        let verified = verify_and_parse(&secrets, &delivery)?;
        let span = tracing::Span::current();
        span.record("eventType", verified.event.type_name.as_str());
        tracing::debug!(sandbox_id = verified.event.sandbox_id.as_str(), "webhook event");
        if let Some((key, _)) = sandbox_metadata::owner(&verified.event.metadata) {
            span.record("projectId", tracing::field::display(&key));
        }
        sandman.apply_account_webhook(account, &verified).await
    }
    .instrument(span.clone())
    .await;
    span.in_scope(|| log(&result));
    metrics_for(&result).emit();
    answer(result)
}

fn log(result: &Result<Receipt, WebhookError>) {
    match result {
        Ok(receipt) => tracing::info!(?receipt, "webhook acknowledged"),
        Err(err) if err.retryable() => {
            tracing::error!(error = %err, code = err.code(), "webhook failed; E2B will redeliver")
        }
        Err(err) => tracing::warn!(error = %err, code = err.code(), "webhook refused"),
    }
}

fn answer(result: Result<Receipt, WebhookError>) -> Response {
    match result {
        Ok(receipt) => (StatusCode::OK, axum::Json(receipt)).into_response(),
        Err(err) => {
            let message = match &err {
                WebhookError::Store(_) => "storage is unavailable; retry later".to_string(),
                other => other.to_string(),
            };
            let body = json!({"error": {"code": err.code(), "message": message}});
            (status_of(&err), axum::Json(body)).into_response()
        }
    }
}

fn status_of(err: &WebhookError) -> StatusCode {
    match err {
        WebhookError::Signature(sandman::webhook::SignatureError::NoSecrets) => StatusCode::INTERNAL_SERVER_ERROR,
        WebhookError::Signature(_) => StatusCode::UNAUTHORIZED,
        WebhookError::Malformed(_) | WebhookError::Stale => StatusCode::BAD_REQUEST,
        WebhookError::WrongAccount(_) => StatusCode::FORBIDDEN,
        WebhookError::Store(StoreError::Dynamo { .. }) | WebhookError::Contended => StatusCode::SERVICE_UNAVAILABLE,
        WebhookError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandman::webhook::SignatureError;

    #[test]
    fn only_what_a_retry_may_fix_is_a_server_error() {
        let cases = [
            (WebhookError::Signature(SignatureError::Missing), 401),
            (WebhookError::Signature(SignatureError::Mismatch), 401),
            (WebhookError::Signature(SignatureError::NoSecrets), 500),
            (WebhookError::Malformed("x".into()), 400),
            (
                WebhookError::Store(StoreError::Dynamo {
                    message: "down".into(),
                    retryable: true,
                }),
                503,
            ),
            (WebhookError::Contended, 503),
            (WebhookError::WrongAccount("x".into()), 403),
        ];
        for (err, status) in cases {
            assert_eq!(status_of(&err).as_u16(), status, "{err:?}");
            assert_eq!(status >= 500, err.retryable(), "{err:?}");
        }
    }
}
