//! The typed E2B client.
//!
//! Build one [`E2bClient`] per cold start, wrap it in [`E2bAccounts`] with the deployment's keys, and
//! call E2B through the [`E2b`] handle of the team concerned:
//! `accounts.for_team(team_id)?.pause(sandbox_id).await`.
//! Every call has a deadline and retries what is safe to retry (see [`RetryPolicy`]).

mod accounts;
mod client;
mod error;
mod pages;
mod request;
mod retry;
mod sandboxes;
mod snapshots;
mod types;
mod webhooks;

pub use accounts::{ApiKey, E2b, E2bAccounts, key_fingerprint};
pub(crate) use client::is_loopback;
pub use client::{E2bClient, E2bSettings};
pub use error::E2bError;
pub use retry::{AttemptFailure, FailedAttempt, Repeat, RetryPolicy, parse_retry_after};
pub use sandboxes::MAX_METRICS_BATCH;
pub use types::{
    Connected, ListedSandbox, NewSandbox, OnTimeout, Sandbox, SandboxDetail, SandboxFilter, SandboxLifecycle,
    SandboxMetric, SandboxNetwork, SandboxState, Secret, SnapshotInfo,
};
pub use webhooks::{NewWebhook, Webhook, WebhookUpdate};
