//! Snapshot retention: E2B snapshots never expire on their own, so an hourly pass deletes those a
//! project's `RetentionPolicy` no longer keeps. `plan` is the rule (pure); `pass` applies it to
//! the projects the sparse `prune` index says are due, and to nothing else.

mod pass;
mod plan;
#[cfg(test)]
mod plan_tests;
mod report;
mod tiers;

pub use pass::{PENDING_GRACE, PassOptions};
pub use plan::{Doomed, IN_USE_RECHECK, Plan, Reason, plan};
pub use report::{PlannedDeletion, PruneReport, REPORT_LIMIT};
pub use tiers::{TierPlan, TierStep, tier_plan};
