//! The domain: what a project, its session and its snapshots are, and the one state machine
//! every writer (API, webhook, enforcer, reconciler) goes through.

mod ids;
mod lifecycle;
pub mod metadata;
mod project;
mod secret;
mod session;
mod snapshot;
mod state;

pub use ids::{ID_PATTERN, IdError, ProjectId, ProjectKey, SnapshotId, TeamId};
pub use lifecycle::{Actor, LifecycleRecord};
pub use project::{CapHandoff, ForkSource, IdlePolicy, InactivityPolicy, Project, ProjectSpec, RetentionPolicy};
pub use secret::Secret;
pub use session::{CLAIM_LEASE, SandboxRef, Session, Usage, is_live};
pub use snapshot::{Snapshot, SnapshotKind, SnapshotStatus};
pub use state::{Refusal, SessionEvent, SessionState, transition};
