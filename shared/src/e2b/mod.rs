//! The typed E2B client.
//!
//! Build one [`E2bClient`] per cold start, wrap it in [`E2bAccounts`] with the deployment's keys, and
//! call E2B through the [`E2b`] handle of the team concerned:
//! `sandman.e2b_for_team(&team).await?.pause(sandbox_id).await`
//! (the team's registered key first, then the deployment's).
//! Every call has a deadline and retries what is safe to retry (see [`RetryPolicy`]).

mod accounts;
mod api_key;
mod client;
mod events;
mod pages;
mod request;
mod retry;
mod sandboxes;
mod secrets;
mod snapshots;
mod webhooks;

pub use accounts::{E2b, E2bAccounts, key_fingerprint};
pub use api_key::ApiKey;
pub(crate) use client::is_loopback;
pub use client::{E2bClient, E2bSettings};
pub use events::EVENTS_PAGE;
pub use retry::{AttemptFailure, FailedAttempt, Repeat, RetryPolicy, parse_retry_after};
pub use sandboxes::MAX_METRICS_BATCH;
pub use sandman_protocol::e2b::E2bError;
pub use sandman_protocol::e2b::{
    Connected, LaunchSettings, ListedSandbox, NetworkRule, NetworkRules, NetworkTransform, NewSandbox, OnTimeout,
    Sandbox, SandboxDetail, SandboxFilter, SandboxLifecycle, SandboxMetric, SandboxNetwork, SandboxState, Secret,
    SnapshotInfo, secret_marker,
};
pub use webhooks::{NewWebhook, Webhook, WebhookUpdate};
