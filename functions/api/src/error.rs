//! Every error the API answers, as `{"error": {"code", "message"}}` with its status. The core's
//! `Error` is mapped to a status here and nowhere else.

use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use sandman::auth::AuthError;
use sandman::e2b::E2bError;
use sandman::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
    retry_after: Option<Duration>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_request`, `unauthorized`, `not_found`, `conflict`, ...
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, for `invalid_request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The team is over its request rate (`rate.rs`).
    pub fn rate_limited(limited: crate::rate::Limited) -> Self {
        let rate = limited.rate;
        ApiError {
            retry_after: Some(limited.retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this team makes more than {} requests a second (bursts of {}); try again after Retry-After",
                    rate.per_second, rate.burst
                ),
            )
        }
    }

    fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "unexpected failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred",
        )
    }
}

impl From<sandman::Error> for ApiError {
    fn from(err: sandman::Error) -> Self {
        use sandman::Error;
        match err {
            Error::NotFound(what) => Self::not_found(format!("{what} not found")),
            Error::Conflict(message) => Self::conflict(message),
            Error::Invalid { field, message } => Self::invalid(field, message),
            Error::QuotaExceeded(message) => Self::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", message),
            Error::Forbidden(message) => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            Error::BudgetReached(message) => Self::new(StatusCode::PAYMENT_REQUIRED, "budget_exceeded", message),
            Error::AccountInUse(message) => Self::new(StatusCode::CONFLICT, "account_in_use", message),
            Error::E2b(err) => e2b(err),
            Error::Store(StoreError::Dynamo {
                message,
                retryable: true,
            }) => {
                tracing::warn!(error = %message, "storage unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "storage is unavailable; try again",
                )
            }
            Error::Store(other) => Self::internal(other),
        }
    }
}

fn e2b(err: E2bError) -> ApiError {
    let status = match &err {
        E2bError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        E2bError::Unavailable { .. } | E2bError::NoCredentials | E2bError::InvalidSettings { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        // E2B disagrees with what the table says about the sandbox: the caller may try again.
        E2bError::NotFound | E2bError::Conflict { .. } => StatusCode::CONFLICT,
        E2bError::BadRequest { .. }
        | E2bError::Unauthorized
        | E2bError::Unexpected { .. }
        | E2bError::Decode { .. } => StatusCode::BAD_GATEWAY,
    };
    // E2B's own text (truncated) goes to the log only; the caller gets the fixed message.
    tracing::warn!(error = %err, kind = err.kind(), "E2B call failed");
    let retry_after = match &err {
        E2bError::RateLimited { retry_after } => Some(retry_after.unwrap_or(Duration::from_secs(1))),
        _ => None,
    };
    let code = match &err {
        E2bError::RateLimited { .. } => "e2b_rate_limited",
        E2bError::Unavailable { .. } => "e2b_unavailable",
        E2bError::NoCredentials | E2bError::InvalidSettings { .. } => "e2b_not_configured",
        E2bError::NotFound => "e2b_not_found",
        E2bError::Conflict { .. } => "e2b_conflict",
        _ => "e2b_error",
    };
    ApiError {
        retry_after,
        ..ApiError::new(status, code, err.public_message())
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::MissingToken | AuthError::Rejected(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", err.to_string())
            }
            AuthError::KeysUnavailable(_) => {
                tracing::warn!(error = %err, "cannot verify tokens");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "auth_unavailable",
                    "tokens cannot be verified right now; try again",
                )
            }
            AuthError::NotConfigured | AuthError::Signing(_) => Self::internal(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up: never sooner than the wait.
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from((after.as_secs_f64().ceil() as u64).max(1)),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_get_their_status() {
        let status = |err: sandman::Error| ApiError::from(err).status;
        assert_eq!(status(sandman::Error::NotFound("project")), StatusCode::NOT_FOUND);
        assert_eq!(status(sandman::Error::Conflict("busy".into())), StatusCode::CONFLICT);
        assert_eq!(
            status(sandman::Error::Invalid {
                field: "cursor",
                message: "bad".into()
            }),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(E2bError::RateLimited { retry_after: None }.into()),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status(
                E2bError::Unavailable {
                    attempts: 3,
                    detail: "HTTP 503".into()
                }
                .into()
            ),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(E2bError::Unauthorized.into()), StatusCode::BAD_GATEWAY);
        assert_eq!(
            status(sandman::Error::Store(StoreError::Dynamo {
                message: "throttled".into(),
                retryable: true
            })),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(sandman::Error::Store(StoreError::Corrupt("x".into()))),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn rate_limits_tell_when_to_retry() {
        let response = ApiError::from(sandman::Error::E2b(E2bError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        }))
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
