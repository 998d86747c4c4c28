//! Sandman's lifecycle protocol, with no I/O: the state machine, what each writer decides, and every
//! operation as an `async fn` over a [`port::Port`]. `sandman` runs these with DynamoDB and E2B;
//! `sandman-model` runs the very same code under a model checker, with every answer E2B and the
//! store could give and a Lambda cut between any two steps.
//!
//! # Layout
//! - `adaptive/`: adaptive idle and warm-up: what a project learns from its gaps and returns.
//! - `domain/`: projects, sessions, snapshots, ids, and the state machine (`STATE_MACHINE.md`).
//! - `e2b/`: what E2B's calls send and answer, and how a failure is classified.
//! - `record/`: the stored session and the conditional writes that move it (`apply`: their meaning).
//! - `port.rs`: the effects an operation may ask for. `policy.rs`: the deployment's rules.
//! - `ops/`: open, resume, restore, pause, kill, heartbeat, snapshots, forks, project delete.
//! - `webhook/`: what an E2B event means for the session. `reconcile/`: the reconciler's checks.
//! - `enforce/`: the idle enforcer's plan and actions. `prune/`: retention and inactivity tiers.
//! - `error.rs`: the store's and the operations' errors.

pub mod adaptive;
pub mod domain;
pub mod e2b;
pub mod enforce;
pub mod error;
pub mod ops;
pub mod policy;
pub mod port;
pub mod prune;
pub mod reconcile;
pub mod record;
pub mod webhook;

pub use error::{BadCursor, Error, StoreError};
