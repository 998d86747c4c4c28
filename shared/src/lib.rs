//! Sandman's core. Functions wire these pieces; every rule lives here.

pub mod access;
mod app;
pub mod auth;
pub mod aws;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod deadline;
pub use sandman_protocol::domain;
pub mod e2b;
pub mod enforcer;
pub mod env;
pub mod error;
pub use sandman_protocol::policy;
pub mod outbound;
mod port;
pub mod quotas;
pub mod reconciler;
pub mod retention;
pub use sandman_protocol::domain::metadata as sandbox_metadata;
pub mod secrets;
mod snapshot_quota;
pub mod snapshots;
pub mod store;
pub mod team_keys;
pub mod telemetry;
pub mod templates;
pub mod usage;
pub mod webhook;
pub mod workspace;

pub use app::{Sandman, StartupError, key_missing_metrics, skip_without_e2b_key};
pub use aws::aws_sdk_config;
pub use error::Error;

pub use sandman_protocol as protocol;

/// Forks of a project (`Sandman::fork`).
pub mod fork {
    pub use sandman_protocol::ops::fork::{FORK_HOLD, ForkFrom};
}
