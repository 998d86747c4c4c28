//! A local stand-in for E2B: its REST API (sandboxes, snapshots, webhook management)
//! over an in-memory world with an emulated clock, signed lifecycle webhooks, and
//! knobs for latency and faults. See `README.md` beside this crate.

mod app;
mod calls;
mod clock;
mod config;
mod delivery;
mod emulator;
mod error;
mod events;
mod faults;
mod http;
mod ids;
mod sandbox;
mod secrets;
mod snapshot;
mod webhook;
mod world;

pub use calls::{RecordedCall, key_fingerprint};
pub use config::{ConfigError, DEFAULT_API_KEY, DEFAULT_TEAM_ID, EmulatorConfig, TeamAccount};
pub use delivery::{DeliveryOutcome, WebhookDelivery, webhook_signature};
pub use emulator::Emulator;
pub use events::{EventType, EventView, ExecutionView};
pub use faults::{Fault, FaultHit, FaultKind, Route, WebhookFaults};
pub use sandbox::{OnTimeout, SandboxState, SandboxView, StateChange, Transition};
pub use secrets::{NetworkRule, NetworkRules, NetworkTransform, SecretMeta};
pub use snapshot::SnapshotView;
