//! Webhook delivery: signing, retries and injected delivery faults, off the request path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::faults::{WebhookFaults, lock};
use crate::ids;

/// E2B's `e2b-signature`: standard base64 of SHA-256(secret ++ body), `=` padding removed.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(secret.as_bytes());
    hasher.update(body);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(hasher.finalize())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Non-2xx, timeout or network error.
    Failed,
    /// Swallowed by an injected `drop_next` fault; never sent.
    Dropped,
}

/// One delivery attempt (or one dropped delivery).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookDelivery {
    pub delivery_id: String,
    pub webhook_id: String,
    pub url: String,
    pub event_id: String,
    pub event_type: String,
    pub sandbox_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub outcome: DeliveryOutcome,
    pub status: Option<u16>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Where one event goes: a registered webhook's URL and secret.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub event_id: String,
    pub event_type: &'static str,
    pub sandbox_id: String,
    pub body: Arc<Vec<u8>>,
    pub target: Target,
    /// The faults in force when the event was published decide its fate.
    fate: Fate,
    ready_at: Instant,
    /// Sent concurrently after a random wait of up to this (`WebhookFaults::concurrent`).
    spread: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Dropped,
    /// Held for reordering, for at least `hold`.
    Held {
        hold: Duration,
        copies: u8,
    },
    Sent {
        copies: u8,
    },
}

/// The cheap handle that lifecycle code publishes jobs through.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    tx: mpsc::UnboundedSender<Job>,
    core: Arc<Core>,
}

#[derive(Debug)]
struct Core {
    /// Built on first use: building it loads TLS roots, which an emulator that never
    /// delivers a webhook should not pay for (nor wait on at exit).
    client: OnceLock<Result<reqwest::Client, String>>,
    timeout: Duration,
    clock: Arc<Clock>,
    faults: Mutex<WebhookFaults>,
    log: Mutex<Vec<WebhookDelivery>>,
    /// Deliveries queued, held, in flight or waiting to retry.
    pending: watch::Sender<usize>,
    flush: Notify,
    retries: Mutex<JoinSet<()>>,
    retry_delay: Duration,
    max_retries: u32,
}

pub(crate) struct DeliverySettings {
    pub retry_delay: Duration,
    pub max_retries: u32,
    pub timeout: Duration,
}

const REORDER_WINDOW: Duration = Duration::from_millis(100);

impl Publisher {
    /// Starts the dispatcher task; the returned handle aborts it.
    pub(crate) fn start(clock: Arc<Clock>, settings: DeliverySettings) -> (Publisher, tokio::task::JoinHandle<()>) {
        let core = Arc::new(Core {
            client: OnceLock::new(),
            timeout: settings.timeout,
            clock,
            faults: Mutex::new(WebhookFaults::default()),
            log: Mutex::new(Vec::new()),
            pending: watch::Sender::new(0),
            flush: Notify::new(),
            retries: Mutex::new(JoinSet::new()),
            retry_delay: settings.retry_delay,
            max_retries: settings.max_retries,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(dispatch_loop(core.clone(), rx));
        (Publisher { tx, core }, task)
    }

    pub(crate) fn publish(
        &self,
        event_id: &str,
        event_type: &'static str,
        sandbox_id: &str,
        body: Arc<Vec<u8>>,
        target: Target,
    ) {
        let (fate, delay, spread) = {
            let mut faults = lock(&self.core.faults);
            let fate = if faults.drop_next > 0 {
                faults.drop_next -= 1;
                Fate::Dropped
            } else {
                let copies = if faults.duplicate { 2 } else { 1 };
                match faults.reorder {
                    true => Fate::Held {
                        hold: faults.delay.max(REORDER_WINDOW),
                        copies,
                    },
                    false => Fate::Sent { copies },
                }
            };
            (fate, faults.delay, faults.concurrent.then_some(faults.jitter))
        };
        // A held job's hold is its delay; once flushed it goes out at once.
        let ready_at = match fate {
            Fate::Held { .. } => Instant::now(),
            _ => Instant::now() + delay,
        };
        let job = Job {
            event_id: event_id.to_owned(),
            event_type,
            sandbox_id: sandbox_id.to_owned(),
            body,
            target,
            fate,
            ready_at,
            spread,
        };
        self.core.pending.send_modify(|n| *n += 1);
        if self.tx.send(job).is_err() {
            self.core.pending.send_modify(|n| *n = n.saturating_sub(1));
        }
    }

    pub(crate) fn set_faults(&self, faults: WebhookFaults) {
        *lock(&self.core.faults) = faults;
        self.core.flush.notify_one();
    }

    pub(crate) fn faults(&self) -> WebhookFaults {
        lock(&self.core.faults).clone()
    }

    pub(crate) fn deliveries(&self) -> Vec<WebhookDelivery> {
        lock(&self.core.log).clone()
    }

    pub(crate) fn clear_deliveries(&self) {
        lock(&self.core.log).clear();
    }

    /// Waits until nothing is queued, held, in flight or waiting to retry.
    pub(crate) async fn settle(&self) {
        let mut pending = self.core.pending.subscribe();
        self.core.flush.notify_one();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    pub(crate) fn stop_retries(&self) {
        lock(&self.core.retries).abort_all();
    }
}

async fn dispatch_loop(core: Arc<Core>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut held: Vec<Job> = Vec::new();
    let mut flush_at: Option<Instant> = None;
    loop {
        let hold_deadline = flush_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        // Biased: everything already queued is taken in before a flush, so a flush
        // releases every event held so far.
        tokio::select! {
            biased;
            job = rx.recv() => {
                let Some(job) = job else { break };
                match job.fate {
                    Fate::Dropped => {
                        core.record_dropped(&job);
                        core.finish_one();
                    }
                    Fate::Held { hold, .. } => {
                        if held.is_empty() {
                            flush_at = Some(Instant::now() + hold);
                        }
                        held.push(job);
                    }
                    Fate::Sent { .. } => core.clone().dispatch(job).await,
                }
            }
            _ = tokio::time::sleep_until(hold_deadline), if flush_at.is_some() => {
                flush_at = None;
                core.clone().dispatch_newest_first(&mut held).await;
            }
            _ = core.flush.notified() => {
                flush_at = None;
                core.clone().dispatch_newest_first(&mut held).await;
            }
        }
    }
}

impl Core {
    async fn dispatch_newest_first(self: Arc<Self>, held: &mut Vec<Job>) {
        while let Some(job) = held.pop() {
            self.clone().dispatch(job).await;
        }
    }

    /// Sends the first attempt in order, or hands it to its own task when deliveries are
    /// concurrent; failures retry in the background.
    async fn dispatch(self: Arc<Self>, job: Job) {
        let Some(jitter) = job.spread else {
            return self.send(job).await;
        };
        let core = self.clone();
        let mut tasks = lock(&self.retries);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            tokio::time::sleep(jitter.mul_f64(fastrand::f64())).await;
            core.send(job).await;
        });
    }

    async fn send(self: Arc<Self>, job: Job) {
        tokio::time::sleep_until(job.ready_at).await;
        let copies = match job.fate {
            Fate::Sent { copies } | Fate::Held { copies, .. } => copies,
            Fate::Dropped => 1,
        };
        if copies > 1 {
            self.pending.send_modify(|n| *n += usize::from(copies - 1));
        }
        for _ in 0..copies {
            let delivered = self.attempt(&job, 1).await;
            if delivered || self.max_retries == 0 {
                self.finish_one();
            } else {
                let core = self.clone();
                let job = job.clone();
                let mut retries = lock(&self.retries);
                while retries.try_join_next().is_some() {}
                retries.spawn(async move { core.retry(job).await });
            }
        }
    }

    async fn retry(self: Arc<Self>, job: Job) {
        for attempt in 2..=self.max_retries.saturating_add(1) {
            tokio::time::sleep(self.retry_delay).await;
            if self.attempt(&job, attempt).await {
                break;
            }
        }
        self.finish_one();
    }

    async fn attempt(&self, job: &Job, attempt: u32) -> bool {
        let delivery_id = ids::uuid();
        let headers = BTreeMap::from([
            ("content-type".to_owned(), "application/json".to_owned()),
            ("e2b-webhook-id".to_owned(), job.target.webhook_id.clone()),
            ("e2b-delivery-id".to_owned(), delivery_id.clone()),
            ("e2b-signature-version".to_owned(), "v1".to_owned()),
            (
                "e2b-signature".to_owned(),
                webhook_signature(&job.target.secret, &job.body),
            ),
        ]);
        let at = self.clock.now();
        let (outcome, status, error) = match self.client() {
            Err(err) => (DeliveryOutcome::Failed, None, Some(err)),
            Ok(client) => {
                let mut request = client.post(&job.target.url).body(job.body.as_ref().clone());
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        (DeliveryOutcome::Delivered, Some(response.status().as_u16()), None)
                    }
                    Ok(response) => (DeliveryOutcome::Failed, Some(response.status().as_u16()), None),
                    Err(err) => (DeliveryOutcome::Failed, None, Some(err.to_string())),
                }
            }
        };
        tracing::debug!(
            url = %job.target.url, event = job.event_type, sandbox_id = %job.sandbox_id,
            attempt, ?outcome, ?status, "webhook delivery"
        );
        lock(&self.log).push(WebhookDelivery {
            delivery_id,
            webhook_id: job.target.webhook_id.clone(),
            url: job.target.url.clone(),
            event_id: job.event_id.clone(),
            event_type: job.event_type.to_owned(),
            sandbox_id: job.sandbox_id.clone(),
            attempt,
            headers,
            body: String::from_utf8_lossy(&job.body).into_owned(),
            outcome,
            status,
            error,
            at,
        });
        outcome == DeliveryOutcome::Delivered
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(self.timeout)
                    .build()
                    .map_err(|err| err.to_string())
            })
            .clone()
    }

    fn record_dropped(&self, job: &Job) {
        lock(&self.log).push(WebhookDelivery {
            delivery_id: ids::uuid(),
            webhook_id: job.target.webhook_id.clone(),
            url: job.target.url.clone(),
            event_id: job.event_id.clone(),
            event_type: job.event_type.to_owned(),
            sandbox_id: job.sandbox_id.clone(),
            attempt: 0,
            headers: BTreeMap::new(),
            body: String::from_utf8_lossy(&job.body).into_owned(),
            outcome: DeliveryOutcome::Dropped,
            status: None,
            error: None,
            at: self.clock.now(),
        });
    }

    fn finish_one(&self) {
        self.pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_unpadded_standard_base64_of_plain_sha256() {
        // SHA-256("secret" ++ "{}"), computed independently and base64-encoded.
        let signature = webhook_signature("secret", b"{}");
        assert!(!signature.ends_with('='));
        assert_eq!(signature.len(), 43);
        assert_ne!(signature, webhook_signature("other", b"{}"));
    }
}
