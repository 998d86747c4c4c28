//! E2B lifecycle webhooks: how Sandman learns what E2B did on its own (timeouts, auto-pauses,
//! kills, resumes started elsewhere). The signature, the body and the account are checked by
//! `sandman::webhook` before anything here runs; this is what a verified event does.

mod apply;
mod decide;
mod event;

pub use apply::{Receipt, WebhookFailure, apply, backfill_usage, session_of};
pub use decide::{CLOCK_SKEW, DEDUPE_FOR, Decision, Ignored, Rules, TIMEOUT_TOLERANCE, decide, saved};
pub use event::{EventKind, Execution, LifecycleEvent, MalformedEvent};
