//! Delivering one event to one endpoint: what the queue carries, one signed POST, and what the
//! endpoint's delivery log keeps of each attempt.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{EventType, headers};
use crate::domain::TeamId;
use crate::store::{Store, StoreError};

/// Attempts per delivery; the queue's `maxReceiveCount` (template.yaml) is the same number, so the
/// attempt that fails last is the one the log calls `dead-lettered`.
pub const MAX_ATTEMPTS: u32 = 5;
/// One POST, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One event for one endpoint: the queue's message. The secret is not in it: the sender reads
/// the endpoint, so a deleted endpoint gets nothing more and a message in the queue holds nothing
/// secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub team: TeamId,
    pub endpoint_id: String,
    pub message_id: String,
    pub event_type: EventType,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered,
    /// Failed; the queue will try again.
    Retrying,
    /// Failed for the last time: the message is in the dead-letter queue.
    DeadLettered,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::DeadLettered => "dead-lettered",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Delivered, Self::Retrying, Self::DeadLettered]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// A delivery as its endpoint's log holds it (after its latest attempt).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub team: TeamId,
    pub endpoint_id: String,
    pub message_id: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_attempt_at: OffsetDateTime,
}

/// What one attempt came to, for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Try again after this long (the queue hides the message until then).
    Retry(Duration),
    /// The last attempt failed: the queue dead-letters the message at its next receive.
    Exhausted,
    /// Nothing to do: the endpoint is gone or no longer wants this event.
    Dropped,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Backoff before attempt `attempt + 1`: `base`, then four times longer each time.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(4u32.saturating_pow(attempt.saturating_sub(1)))
        .min(Duration::from_secs(12 * 3600))
}

/// Sends deliveries; built once per cold start.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    retry_base: Duration,
}

impl Sender {
    pub fn new(retry_base: Duration) -> Result<Sender, SendError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            // A redirect could lead anywhere, and the signature would follow it.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Sandman-Webhooks/1")
            .build()
            .map_err(SendError::Client)?;
        Ok(Sender { http, retry_base })
    }

    /// Attempt number `attempt` (1-based: the queue's receive count) of `job`, recorded in the
    /// endpoint's delivery log.
    pub async fn attempt(
        &self,
        store: &Store,
        job: &DeliveryJob,
        attempt: u32,
        now: OffsetDateTime,
    ) -> Result<Attempt, SendError> {
        let Some(endpoint) = store.get_endpoint(&job.team, &job.endpoint_id).await? else {
            return Ok(Attempt::Dropped);
        };
        if !endpoint.wants(job.event_type) {
            return Ok(Attempt::Dropped);
        }
        let mut request = self
            .http
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers(
            &endpoint.secret,
            &job.message_id,
            now.unix_timestamp(),
            job.body.as_bytes(),
        ) {
            request = request.header(name, value);
        }
        let (code, error) = match request.body(job.body.clone()).send().await {
            Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
            Ok(response) => (
                Some(response.status().as_u16()),
                Some(format!("the endpoint answered {}", response.status())),
            ),
            Err(err) if err.is_timeout() => (None, Some(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))),
            Err(err) if err.is_connect() => (None, Some("could not connect".to_owned())),
            Err(_) => (None, Some("the request failed".to_owned())),
        };
        let status = match (&error, attempt >= MAX_ATTEMPTS) {
            (None, _) => DeliveryStatus::Delivered,
            (Some(_), false) => DeliveryStatus::Retrying,
            (Some(_), true) => DeliveryStatus::DeadLettered,
        };
        tracing::info!(
            endpoint = %job.endpoint_id, message = %job.message_id, event = %job.event_type,
            attempt, status = status.as_str(), code, error = error.as_deref(), "outbound delivery"
        );
        store
            .record_delivery(&Delivery {
                team: job.team.clone(),
                endpoint_id: job.endpoint_id.clone(),
                message_id: job.message_id.clone(),
                event_type: job.event_type,
                status,
                attempts: attempt,
                last_status_code: code,
                last_error: error,
                created_at: now,
                last_attempt_at: now,
            })
            .await?;
        Ok(match status {
            DeliveryStatus::Delivered => Attempt::Delivered,
            DeliveryStatus::Retrying => Attempt::Retry(backoff(self.retry_base, attempt)),
            DeliveryStatus::DeadLettered => Attempt::Exhausted,
        })
    }
}

/// The deliveries one event makes: one per endpoint of its team that wants it.
pub async fn fan_out(store: &Store, event: &super::OutboundEvent) -> Result<Vec<DeliveryJob>, StoreError> {
    let endpoints = store
        .list_endpoints(&event.team, crate::store::Consistency::Eventual)
        .await?;
    Ok(endpoints
        .into_iter()
        .filter(|e| e.wants(event.event_type))
        .map(|e| DeliveryJob {
            team: event.team.clone(),
            endpoint_id: e.endpoint_id,
            message_id: event.id.clone(),
            event_type: event.event_type,
            body: event.body.clone(),
        })
        .collect())
}
