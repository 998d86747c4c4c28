use std::time::Duration;

use serde::Serialize;

use super::Verdict;
use crate::telemetry::Metrics;

/// What one tick did. Emitted as EMF metrics by the function, returned as its answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickReport {
    /// Idle sessions read from the index (flagged ones included).
    pub candidates: u64,
    /// Paused now, or found already paused by E2B.
    pub paused: u64,
    /// Idle but busy (CPU above the project's `busyCpuPercent`): the pause was deferred.
    pub busy_deferred: u64,
    /// Active sandboxes handed off before E2B's session cap.
    pub handoffs: u64,
    /// E2B batch metrics calls (one per 100 busy-aware candidates of a team).
    pub metrics_calls: u64,
    /// Activity or another writer changed the session between the query and the claim.
    pub skipped_active: u64,
    /// Pauses that failed; the session is RUNNING again and is retried next tick.
    pub failed: u64,
    /// Sessions over `max_failures`, not retried (including those that reached it this tick).
    pub flagged: u64,
    /// E2B no longer had the sandbox; the session is KILLED.
    pub gone: u64,
    /// Read but not claimed because the deadline came first.
    pub deferred: u64,
    /// RUNNING sessions without a sandbox id.
    pub errors: u64,
    /// Failed idle-index reads (that shard's remaining pages wait for the next tick).
    pub read_errors: u64,
    /// Running minutes E2B would have billed before each paused sandbox's own timeout.
    pub idle_minutes_saved: f64,
    pub deadline_reached: bool,
    #[serde(serialize_with = "as_millis")]
    pub duration: Duration,
}

impl TickReport {
    pub(super) fn record(&mut self, verdict: Verdict) {
        if !matches!(verdict, Verdict::ReadError | Verdict::MetricsCalls(_)) {
            self.candidates += 1;
        }
        match verdict {
            Verdict::Paused { minutes_saved } => {
                self.paused += 1;
                self.idle_minutes_saved += minutes_saved;
            }
            Verdict::SkippedActive => self.skipped_active += 1,
            Verdict::Gone => self.gone += 1,
            Verdict::Failed { flagged } => {
                self.failed += 1;
                self.flagged += u64::from(flagged);
            }
            Verdict::Flagged => self.flagged += 1,
            Verdict::Deferred => self.deferred += 1,
            Verdict::NoSandbox => self.errors += 1,
            Verdict::ReadError => self.read_errors += 1,
            Verdict::BusyDeferred => self.busy_deferred += 1,
            Verdict::HandedOff => self.handoffs += 1,
            Verdict::MetricsCalls(calls) => self.metrics_calls += calls,
        }
    }

    /// The tick's EMF metrics (namespace `Sandman`). `PauseFailures` (failed + flagged) is the
    /// name the template's alarm watches: an idle sandbox that cannot be paused keeps costing.
    pub fn metrics(&self) -> Metrics {
        let mut metrics = Metrics::new("idle-enforcer");
        for (name, value) in [
            ("Candidates", self.candidates),
            ("Paused", self.paused),
            ("SkippedActive", self.skipped_active),
            ("Failed", self.failed),
            ("Flagged", self.flagged),
            ("Gone", self.gone),
            ("Deferred", self.deferred),
            ("Errors", self.errors),
            ("ReadErrors", self.read_errors),
            ("BusyDeferred", self.busy_deferred),
            ("Handoffs", self.handoffs),
            ("MetricsCalls", self.metrics_calls),
            ("PauseFailures", self.failed + self.flagged),
        ] {
            metrics.count(name, value);
        }
        metrics.count("IdleMinutesSaved", self.idle_minutes_saved.round() as u64);
        metrics.milliseconds("TickDurationMs", self.duration.as_secs_f64() * 1000.0);
        metrics
    }
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_verdict_and_names_the_alarm_metric() {
        let mut report = TickReport::default();
        for verdict in [
            Verdict::Paused { minutes_saved: 12.4 },
            Verdict::Paused { minutes_saved: 0.0 },
            Verdict::SkippedActive,
            Verdict::Failed { flagged: false },
            Verdict::Failed { flagged: true },
            Verdict::Flagged,
            Verdict::Gone,
            Verdict::Deferred,
            Verdict::ReadError,
            Verdict::BusyDeferred,
            Verdict::HandedOff,
            Verdict::MetricsCalls(2),
        ] {
            report.record(verdict);
        }
        assert_eq!(
            (report.candidates, report.paused, report.failed, report.flagged),
            (10, 2, 2, 2)
        );
        assert_eq!((report.busy_deferred, report.handoffs, report.metrics_calls), (1, 1, 2));
        let doc = report.metrics().to_emf(0);
        assert_eq!(doc["PauseFailures"], 4.0);
        assert_eq!(doc["IdleMinutesSaved"], 12.0);
        assert_eq!(doc["ReadErrors"], 1.0);
        assert_eq!(doc["Function"], "idle-enforcer");
    }
}
