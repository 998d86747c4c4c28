//! Snapshot retention and inactivity tiers: E2B snapshots never expire on their own, so an hourly
//! pass deletes those a project's `RetentionPolicy` no longer keeps, archives sandboxes paused past
//! `archiveAfter` and deletes the snapshots of projects inactive past `deleteAfter`. `plan` and
//! `tier_plan` are the rules (pure); `pass` applies them to one project.

mod pass;
mod plan;
#[cfg(test)]
mod plan_tests;
mod tiers;

pub use pass::{PENDING_GRACE, PassOptions, PlannedDeletion, Visit, pass};
pub use plan::{Doomed, IN_USE_RECHECK, Plan, Reason, plan};
pub use tiers::{TierPlan, TierStep, tier_plan};
