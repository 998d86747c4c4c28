//! Snapshot retention: E2B snapshots never expire on their own, so an hourly pass deletes those a
//! project's `RetentionPolicy` no longer keeps. The rules and one project's pass are the protocol's
//! (`sandman_protocol::prune`); the tick here applies them to the projects the sparse `prune` index
//! says are due, and to nothing else.

mod pass;
mod report;

pub use report::{PruneReport, REPORT_LIMIT};
pub use sandman_protocol::prune::{
    Doomed, IN_USE_RECHECK, PENDING_GRACE, PassOptions, Plan, PlannedDeletion, Reason, TierPlan, TierStep, plan,
    tier_plan,
};
