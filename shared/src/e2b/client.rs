//! The transport: one pooled HTTP client per cold start, a deadline per call, retries per `RetryPolicy`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;

use super::api_key::ApiKey;
use super::request::{Reply, Request};
use super::retry::{AttemptFailure, FailedAttempt, RetryPolicy, parse_retry_after};
use crate::deadline::{Deadline, MIN_E2B_CALL};
use sandman_protocol::e2b::E2bError;

const API_KEY_HEADER: &str = "X-API-Key";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct E2bSettings {
    pub base_url: String,
    /// Bounds all attempts of one call together; the invocation's own deadline may cut it shorter.
    pub call_deadline: Duration,
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// `base_url` may be plain http to a loopback address (the local emulator). Otherwise only
    /// https is accepted: the API key travels with every request.
    pub allow_http_loopback: bool,
}

impl Default for E2bSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.e2b.app".to_owned(),
            call_deadline: Duration::from_secs(20),
            max_attempts: 4,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            allow_http_loopback: false,
        }
    }
}

/// Built once per cold start; cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct E2bClient {
    inner: Arc<Transport>,
}

#[derive(Debug)]
struct Transport {
    http: reqwest::Client,
    base_url: Url,
    call_deadline: Duration,
    policy: RetryPolicy,
}

enum Failure {
    Status(Reply),
    Timeout,
    Connection(reqwest::Error),
}

impl E2bClient {
    pub fn new(settings: E2bSettings) -> Result<Self, E2bError> {
        let invalid = |detail: String| E2bError::InvalidSettings { detail };
        let base_url =
            Url::parse(&settings.base_url).map_err(|e| invalid(format!("base_url {:?}: {e}", settings.base_url)))?;
        let local = settings.allow_http_loopback && base_url.scheme() == "http" && is_loopback(&base_url);
        if base_url.cannot_be_a_base() || !(base_url.scheme() == "https" || local) {
            return Err(invalid(format!(
                "base_url {:?} is not an https URL (http only to a loopback address, when allowed)",
                settings.base_url
            )));
        }
        if settings.max_attempts == 0 {
            return Err(invalid("max_attempts must be at least 1".to_owned()));
        }
        crate::crypto::install();
        let http = reqwest::Client::builder()
            .user_agent(concat!("sandman/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the X-API-Key header to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.call_deadline.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        let policy = RetryPolicy {
            max_attempts: settings.max_attempts,
            base_backoff: settings.base_backoff,
            max_backoff: settings.max_backoff,
        };
        Ok(Self {
            inner: Arc::new(Transport {
                http,
                base_url,
                call_deadline: settings.call_deadline,
                policy,
            }),
        })
    }

    /// Sends `request` until it succeeds (2xx), fails for good, or runs out of attempts or time.
    pub(crate) async fn execute(&self, key: &ApiKey, request: Request<'_>) -> Result<Reply, E2bError> {
        let span = tracing::debug_span!("e2b_call", route = request.route, sandbox_id = request.sandbox_id);
        self.execute_with_retries(key, &request).instrument(span).await
    }

    async fn execute_with_retries(&self, key: &ApiKey, request: &Request<'_>) -> Result<Reply, E2bError> {
        let url = request.url(&self.inner.base_url);
        let started = Instant::now();
        let own = started + self.inner.call_deadline;
        let invocation = Deadline::current();
        let deadline = invocation.map_or(own, |invocation| own.min(invocation.instant()));
        if invocation.is_some_and(|invocation| !invocation.allows(MIN_E2B_CALL)) {
            tracing::warn!("no time left in this invocation for an E2B call; not sent");
            return Err(E2bError::Unavailable {
                attempts: 0,
                detail: "not sent: the invocation's time is up".to_owned(),
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.attempt(key, request, url.clone(), deadline).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let failure = match outcome {
                Ok(reply) => {
                    tracing::debug!(status = reply.status.as_u16(), attempt, elapsed_ms, "E2B answered");
                    return Ok(reply);
                }
                Err(failure) => failure,
            };
            let failed = describe(&failure, attempt);
            let remaining = deadline.saturating_duration_since(Instant::now());
            let policy = &self.inner.policy;
            match policy.next_delay(request.repeat, &failed, remaining, fastrand::f64()) {
                Some(delay) => {
                    tracing::debug!(
                        failure = ?failed.failure,
                        attempt,
                        elapsed_ms,
                        delay_ms = delay.as_millis() as u64,
                        "E2B call failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                None => {
                    tracing::debug!(
                        failure = ?failed.failure,
                        attempt,
                        elapsed_ms,
                        "E2B call failed"
                    );
                    return Err(into_error(failure, &failed));
                }
            }
        }
    }

    async fn attempt(
        &self,
        key: &ApiKey,
        request: &Request<'_>,
        url: Url,
        deadline: Instant,
    ) -> Result<Reply, Failure> {
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), url)
            .header(API_KEY_HEADER, key.header_value().clone());
        if let Some(body) = &request.body {
            builder = builder.header(CONTENT_TYPE, "application/json").body(body.clone());
        }
        let exchange = async {
            let response = builder.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Reply { status, headers, body })
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Err(_elapsed) => Err(Failure::Timeout),
            Ok(Err(error)) if error.is_timeout() => Err(Failure::Timeout),
            Ok(Err(error)) => Err(Failure::Connection(error)),
            Ok(Ok(reply)) if reply.status.is_success() => Ok(reply),
            Ok(Ok(reply)) => Err(Failure::Status(reply)),
        }
    }
}

/// Whether `url` names this machine (`localhost`, 127.0.0.0/8, `::1`): the only hosts a plain-http
/// endpoint is allowed for, and only when the configuration says so.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

fn describe(failure: &Failure, attempt: u32) -> FailedAttempt {
    let (failure, retry_after) = match failure {
        Failure::Status(reply) => {
            let retry_after = reply
                .headers
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, OffsetDateTime::now_utc()));
            (AttemptFailure::Status(reply.status.as_u16()), retry_after)
        }
        Failure::Timeout => (AttemptFailure::Timeout, None),
        Failure::Connection(_) => (AttemptFailure::Connection, None),
    };
    FailedAttempt {
        attempt,
        failure,
        retry_after,
    }
}

fn into_error(failure: Failure, failed: &FailedAttempt) -> E2bError {
    let attempts = failed.attempt;
    match failure {
        Failure::Status(reply) => {
            E2bError::from_status(reply.status.as_u16(), &reply.body, failed.retry_after, attempts)
        }
        Failure::Timeout => E2bError::Unavailable {
            attempts,
            detail: "no answer within the call deadline".to_owned(),
        },
        Failure::Connection(error) => E2bError::Unavailable {
            attempts,
            detail: error_chain(&error),
        },
    }
}

/// reqwest's top-level message is generic ("error sending request"); the cause says what happened.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unusable_settings() {
        for (base_url, allow_http_loopback) in [
            ("not a url", true),
            ("mailto:ops@example.com", true),
            ("ftp://example.com", true),
            ("http://api.e2b.app", false),
            ("http://api.e2b.app", true),
            ("http://127.0.0.1:4010", false),
        ] {
            let settings = E2bSettings {
                base_url: base_url.into(),
                allow_http_loopback,
                ..E2bSettings::default()
            };
            assert!(
                matches!(E2bClient::new(settings), Err(E2bError::InvalidSettings { .. })),
                "{base_url}"
            );
        }
        let local = E2bSettings {
            base_url: "http://127.0.0.1:4010".into(),
            allow_http_loopback: true,
            ..E2bSettings::default()
        };
        assert!(E2bClient::new(local).is_ok());
        let no_attempts = E2bSettings {
            max_attempts: 0,
            ..E2bSettings::default()
        };
        assert!(E2bClient::new(no_attempts).is_err());
    }
}
