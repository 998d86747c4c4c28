use std::time::Duration;

use serde::Deserialize;

/// Everything that can go wrong talking to E2B, in terms the rest of Sandman can act on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum E2bError {
    /// 404: the sandbox, snapshot or webhook does not exist (or is not this team's).
    #[error("E2B: not found")]
    NotFound,
    /// 409: the resource is in the wrong state for this call (e.g. already paused).
    #[error("E2B conflict: {message}")]
    Conflict { message: String },
    /// 429 that outlived our retries.
    #[error("E2B rate limited (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, timeouts or connection failures, after every attempt we were allowed.
    #[error("E2B unavailable after {attempts} attempt(s): {detail}")]
    Unavailable { attempts: u32, detail: String },
    /// 400: E2B rejected what we sent.
    #[error("E2B rejected the request: {message}")]
    BadRequest { message: String },
    /// 401 or 403: the team's API key was refused.
    #[error("E2B refused the API key")]
    Unauthorized,
    /// Neither the team nor the deployment has an E2B API key.
    #[error("no E2B API key for this team and no deployment default")]
    NoCredentials,
    /// Any other status.
    #[error("E2B answered {status}: {message}")]
    Unexpected { status: u16, message: String },
    /// A success whose body did not have the documented shape (or, never in practice, a body we
    /// could not encode).
    #[error("E2B JSON for {route} did not (de)serialize: {detail}")]
    Decode { route: &'static str, detail: String },
    /// The client could not be built (bad base URL, bad API key, TLS setup).
    #[error("invalid E2B settings: {detail}")]
    InvalidSettings { detail: String },
}

impl E2bError {
    /// True when the same call may succeed later: worth a retry at a higher level (next tick, queue).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable { .. })
    }

    /// A timeout, a dropped connection, a 5xx or an unreadable success: E2B may have done the
    /// thing. Only the other errors (and a call never sent) are definite refusals that changed nothing.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Unavailable { attempts, .. } => *attempts > 0,
            Self::Unexpected { .. } | Self::Decode { .. } => true,
            _ => false,
        }
    }

    /// The call was never sent: the invocation had no time left for it.
    pub fn was_not_sent(&self) -> bool {
        matches!(self, Self::Unavailable { attempts: 0, .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// A short stable name, for metrics and error bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::BadRequest { .. } => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::NoCredentials => "no_credentials",
            Self::Unexpected { .. } => "unexpected",
            Self::Decode { .. } => "decode",
            Self::InvalidSettings { .. } => "invalid_settings",
        }
    }

    /// What a caller of Sandman may be told: fixed per kind. E2B's own text stays in the logs (it
    /// can tell, for one, whether a template or snapshot of another team exists).
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::NotFound => "not found in E2B; try again",
            Self::Conflict { .. } => "the sandbox is changing state in E2B; try again shortly",
            Self::RateLimited { .. } => "E2B is rate limiting this team; try again later",
            Self::Unavailable { .. } => "E2B is unavailable; try again",
            Self::BadRequest { .. } => "E2B refused the request",
            Self::Unauthorized => "E2B refused this team's API key",
            // The deployment started without its E2B key: the operator's next step, by name.
            Self::NoCredentials => {
                "no E2B API key is set for this team or the deployment: the operator puts one in the field \
                 e2bApiKey of the stack's E2B secret (output E2bSecretArn)"
            }
            Self::Unexpected { .. } | Self::Decode { .. } => "E2B answered unexpectedly",
            Self::InvalidSettings { .. } => "the E2B client is misconfigured",
        }
    }

    /// Maps a non-success answer to an error. `attempts` is how many requests the call made.
    pub fn from_status(status: u16, body: &[u8], retry_after: Option<Duration>, attempts: u32) -> Self {
        let message = error_message(body);
        match status {
            400 => Self::BadRequest { message },
            401 | 403 => Self::Unauthorized,
            404 => Self::NotFound,
            409 => Self::Conflict { message },
            429 => Self::RateLimited { retry_after },
            500..=599 => Self::Unavailable {
                attempts,
                detail: format!("HTTP {status}: {message}"),
            },
            _ => Self::Unexpected { status, message },
        }
    }
}

/// E2B's error body is `{"code": <int>, "message": "..."}`; anything else is shown as (truncated) text.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    const MAX_CHARS: usize = 300;

    let text = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.message,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    text.trim().chars().take(MAX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_message_from_e2b_error_bodies() {
        let body = br#"{"code":409,"message":"Sandbox \"abc\" is already paused"}"#;
        match E2bError::from_status(409, body, None, 1) {
            E2bError::Conflict { message } => {
                assert_eq!(message, "Sandbox \"abc\" is already paused")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn falls_back_to_truncated_text_for_other_bodies() {
        let body = "x".repeat(1000);
        match E2bError::from_status(400, body.as_bytes(), None, 1) {
            E2bError::BadRequest { message } => assert_eq!(message.len(), 300),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn public_messages_never_carry_e2bs_text() {
        let body = br#"{"code":400,"message":"template 'team-a/sandman-x' not found"}"#;
        for status in [400, 404, 409, 418, 500] {
            let err = E2bError::from_status(status, body, None, 1);
            assert!(!err.public_message().contains("sandman-x"), "{status}");
        }
        let long = format!(r#"{{"code":409,"message":"{}"}}"#, "y".repeat(1000));
        match E2bError::from_status(409, long.as_bytes(), None, 1) {
            E2bError::Conflict { message } => assert_eq!(message.len(), 300, "truncated for the logs too"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn maps_every_documented_status() {
        let kind = |status| E2bError::from_status(status, b"", None, 2).kind();
        assert_eq!(kind(400), "bad_request");
        assert_eq!(kind(401), "unauthorized");
        assert_eq!(kind(403), "unauthorized");
        assert_eq!(kind(404), "not_found");
        assert_eq!(kind(409), "conflict");
        assert_eq!(kind(429), "rate_limited");
        assert_eq!(kind(500), "unavailable");
        assert_eq!(kind(503), "unavailable");
        assert_eq!(kind(418), "unexpected");
        assert!(matches!(
            E2bError::from_status(502, b"", None, 4),
            E2bError::Unavailable { attempts: 4, .. }
        ));
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(E2bError::RateLimited { retry_after: None }.is_retryable());
        assert!(
            E2bError::Unavailable {
                attempts: 1,
                detail: String::new()
            }
            .is_retryable()
        );
        assert!(!E2bError::NotFound.is_retryable());
        assert!(E2bError::NotFound.is_not_found());
        assert!(!E2bError::Conflict { message: String::new() }.is_retryable());
    }
}
