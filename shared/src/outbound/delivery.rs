//! Delivering one event to one endpoint: what the queue carries, one signed POST, and what the
//! endpoint's delivery log keeps of each attempt.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::address::{self, PublicOnly};
use super::{Endpoint, EventType, SigningSecret, StoredSecret, headers};
use crate::domain::TeamId;
use crate::store::{Store, StoreError};
use crate::team_keys::{KeyWrapper, SealedFor};

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
    allow_loopback: bool,
    secrets: Secrets,
}

impl Sender {
    /// A sender to public addresses only, that opens no sealed secret (endpoints registered
    /// before secrets were sealed only).
    pub fn new(retry_base: Duration) -> Result<Sender, SendError> {
        Self::build(retry_base, false, None)
    }

    /// The deployment's sender: its retry base, whether endpoints may be loopback (the local
    /// stack), and its wrapper for sealed signing secrets.
    pub fn of(sandman: &crate::Sandman) -> Result<Sender, SendError> {
        let outbound = &sandman.config.outbound;
        Self::build(
            outbound.retry_base,
            outbound.allow_http_loopback,
            sandman.endpoint_seal.clone(),
        )
    }

    fn build(retry_base: Duration, allow_loopback: bool, sealer: Option<KeyWrapper>) -> Result<Sender, SendError> {
        crate::crypto::install();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            // A redirect could lead anywhere, and the signature would follow it.
            .redirect(reqwest::redirect::Policy::none())
            // Straight to the checked address: no proxy in between.
            .no_proxy()
            .dns_resolver(PublicOnly { allow_loopback })
            .user_agent("Sandman-Webhooks/1")
            .build()
            .map_err(SendError::Client)?;
        Ok(Sender {
            http,
            retry_base,
            allow_loopback,
            secrets: Secrets::new(sealer),
        })
    }

    /// Attempt number `attempt` (1-based: the queue's receive count) of `job`, recorded in the
    /// endpoint's delivery log. The endpoint's address is checked again first: an IP literal
    /// here, a name after DNS (`PublicOnly`).
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
        let (code, error) = match self.send(&endpoint, job, now).await {
            Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
            Ok(response) => (
                Some(response.status().as_u16()),
                Some(format!("the endpoint answered {}", response.status())),
            ),
            Err(failure) => (None, Some(failure)),
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

    /// One signed POST, or why none was answered (in words the delivery log can show the team).
    async fn send(
        &self,
        endpoint: &Endpoint,
        job: &DeliveryJob,
        now: OffsetDateTime,
    ) -> Result<reqwest::Response, String> {
        let url = reqwest::Url::parse(&endpoint.url).map_err(|_| "the endpoint's URL is malformed".to_owned())?;
        let host = url.host().ok_or_else(|| "the endpoint's URL has no host".to_owned())?;
        address::check_host(&host, self.allow_loopback).map_err(|refused| format!("refused: {refused}"))?;
        let scheme_allowed = url.scheme() == "https" || (url.scheme() == "http" && self.allow_loopback);
        if !scheme_allowed {
            return Err("the endpoint's URL is not https".to_owned());
        }
        let secret = self.secrets.open(endpoint).await?;
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers(&secret, &job.message_id, now.unix_timestamp(), job.body.as_bytes()) {
            request = request.header(name, value);
        }
        request.body(job.body.clone()).send().await.map_err(|err| {
            if let Some(refused) = address::refusal_in(&err) {
                format!("refused: {refused}")
            } else if err.is_timeout() {
                format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
            } else if err.is_connect() {
                "could not connect".to_owned()
            } else {
                "the request failed".to_owned()
            }
        })
    }
}

/// Endpoints' signing secrets, opened once per instance: a secret never changes for its endpoint
/// id, and a deleted endpoint is not read, so what was opened stays right.
#[derive(Clone)]
struct Secrets {
    sealer: Option<KeyWrapper>,
    opened: Arc<Mutex<HashMap<(TeamId, String), SigningSecret>>>,
}

/// Opened secrets kept per instance, at most (a team has at most its endpoint limit).
const OPENED_KEPT: usize = 1024;

impl Secrets {
    fn new(sealer: Option<KeyWrapper>) -> Self {
        Secrets {
            sealer,
            opened: Arc::default(),
        }
    }

    async fn open(&self, endpoint: &Endpoint) -> Result<SigningSecret, String> {
        let sealed = match &endpoint.secret {
            StoredSecret::Clear(secret) => return Ok(secret.clone()),
            StoredSecret::Sealed(sealed) => sealed,
        };
        let key = (endpoint.team.clone(), endpoint.endpoint_id.clone());
        if let Some(secret) = self.opened.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(secret.clone());
        }
        let unavailable = "the endpoint's signing secret could not be opened; Sandman retries".to_owned();
        let Some(sealer) = &self.sealer else {
            tracing::error!(endpoint = %endpoint.endpoint_id, "a sealed signing secret and no wrapper to open it (SANDMAN_TEAM_KEYS_WRAP)");
            return Err(unavailable);
        };
        let owner = SealedFor::EndpointSecret {
            team: endpoint.team.as_str(),
            endpoint: &endpoint.endpoint_id,
        };
        let opened = sealer.open_for(owner, sealed).await.map_err(|err| {
            tracing::error!(endpoint = %endpoint.endpoint_id, error = %err, "an endpoint's signing secret could not be opened");
            unavailable.clone()
        })?;
        let secret = SigningSecret::parse(opened.expose()).map_err(|_| unavailable.clone())?;
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if opened.len() >= OPENED_KEPT {
            opened.clear();
        }
        opened.insert(key, secret.clone());
        Ok(secret)
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
