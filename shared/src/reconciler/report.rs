use std::time::Duration;

use serde::Serialize;

use super::{OrphanAction, Outcome};
use crate::domain::SessionState;
use crate::telemetry::Metrics;

/// What one reconciliation run found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Sandman sandboxes E2B reported (running or paused), all accounts.
    pub listed: u64,
    /// E2B accounts listed (each reconciled this run), and those whose listing failed (not).
    pub accounts_listed: u64,
    pub accounts_unlisted: u64,
    /// Accounts listed only in part: more sandboxes than `RECONCILE_MAX_LIST_PAGES` pages.
    pub accounts_partial: u64,
    /// RUNNING sessions in the table.
    pub running: u64,
    /// Sessions stuck in a transitional state past `stuck_after`.
    pub stuck: u64,
    pub consistent: u64,
    /// Table corrected to PAUSED / KILLED / RUNNING because E2B said so (stuck ones excluded).
    pub drift_paused: u64,
    pub drift_killed: u64,
    pub drift_running: u64,
    pub stuck_repaired: u64,
    pub orphans_paused: u64,
    pub orphans_killed: u64,
    pub orphans_reported: u64,
    pub raced: u64,
    pub skipped: u64,
    /// E2B events read for usage no delivery brought, and executions counted from them.
    pub usage_events_read: u64,
    pub usage_backfilled: u64,
    /// Teams whose live count was compared with E2B, and those recounted from their sessions.
    pub live_checked: u64,
    pub live_recounted: u64,
    pub errors: u64,
    /// The table's running sessions could not be read: nothing was reconciled.
    pub aborted: bool,
    #[serde(serialize_with = "as_millis")]
    pub duration: Duration,
}

impl ReconcileReport {
    pub(super) fn record(&mut self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Consistent => &mut self.consistent,
            Outcome::Repaired { stuck: true, .. } => &mut self.stuck_repaired,
            Outcome::Repaired {
                to: SessionState::Paused,
                ..
            } => &mut self.drift_paused,
            Outcome::Repaired {
                to: SessionState::Killed,
                ..
            } => &mut self.drift_killed,
            Outcome::Repaired { .. } => &mut self.drift_running,
            Outcome::Orphan(OrphanAction::Paused) => &mut self.orphans_paused,
            Outcome::Orphan(OrphanAction::Killed) => &mut self.orphans_killed,
            Outcome::Orphan(OrphanAction::Reported) => &mut self.orphans_reported,
            Outcome::Raced => &mut self.raced,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Error => &mut self.errors,
        };
        *counter += 1;
    }

    /// Corrections of the table, stuck sessions included.
    pub fn repaired(&self) -> u64 {
        self.drift_paused + self.drift_killed + self.drift_running + self.stuck_repaired
    }

    pub fn orphans(&self) -> u64 {
        self.orphans_paused + self.orphans_killed + self.orphans_reported
    }

    pub fn metrics(&self) -> Metrics {
        let mut metrics = Metrics::new("idle-enforcer");
        for (name, value) in [
            ("ReconcileListed", self.listed),
            ("ReconcileAccountsListed", self.accounts_listed),
            ("ReconcileAccountsUnlisted", self.accounts_unlisted),
            ("ReconcileAccountsPartial", self.accounts_partial),
            ("ReconcileRunning", self.running),
            ("ReconcileStuck", self.stuck),
            ("DriftPaused", self.drift_paused),
            ("DriftKilled", self.drift_killed),
            ("DriftRunning", self.drift_running),
            ("StuckRepaired", self.stuck_repaired),
            ("OrphansPaused", self.orphans_paused),
            ("OrphansKilled", self.orphans_killed),
            ("OrphansReported", self.orphans_reported),
            ("ReconcileRaced", self.raced),
            ("ReconcileSkipped", self.skipped),
            ("UsageEventsRead", self.usage_events_read),
            ("UsageBackfilled", self.usage_backfilled),
            ("LiveRecounted", self.live_recounted),
            ("ReconcileErrors", self.errors),
        ] {
            metrics.count(name, value);
        }
        metrics.milliseconds("ReconcileDurationMs", self.duration.as_secs_f64() * 1000.0);
        metrics
    }
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}
