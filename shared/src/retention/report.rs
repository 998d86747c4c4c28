//! What a pruner tick did (or, in a dry run, would have done), for the caller and for CloudWatch.

use serde::Serialize;

use sandman_protocol::prune::{PlannedDeletion, Visit};

use crate::telemetry::Metrics;

/// A dry run lists at most this many deletions; `would_delete` still counts them all.
pub const REPORT_LIMIT: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub dry_run: bool,
    pub projects_visited: u64,
    pub snapshots_deleted: u64,
    pub would_delete: u64,
    /// Projects whose pass failed somewhere; they stay due and the next tick retries.
    pub failures: u64,
    /// The tick deadline came before every due project was visited.
    pub stopped_at_deadline: bool,
    pub duration_ms: u64,
    /// Dry run: what would be deleted (the first `REPORT_LIMIT`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PlannedDeletion>,
}

impl PruneReport {
    pub fn metrics(&self) -> Metrics {
        let mut metrics = Metrics::new("snapshot-pruner");
        metrics.count("ProjectsVisited", self.projects_visited);
        metrics.count("Failures", self.failures);
        if self.dry_run {
            metrics.count("WouldDelete", self.would_delete);
        } else {
            metrics.count("SnapshotsDeleted", self.snapshots_deleted);
        }
        metrics.milliseconds("TickDurationMs", self.duration_ms as f64);
        metrics
    }

    pub(super) fn record(&mut self, visit: Visit) {
        self.projects_visited += 1;
        self.snapshots_deleted += visit.deleted;
        self.would_delete += visit.planned.len() as u64;
        self.failures += u64::from(visit.failed);
        let room = REPORT_LIMIT.saturating_sub(self.planned.len());
        self.planned.extend(visit.planned.into_iter().take(room));
    }
}
