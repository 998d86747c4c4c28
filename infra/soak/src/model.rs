//! What the actors were told, per project: enough to judge afterwards whether an answer was kept
//! (a heartbeat answered `recorded`, the idle timeout in force, the snapshots it knows of). Every
//! time here is E2B's (the emulator's clock), the judge's one clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::StatusCode;
use time::OffsetDateTime;

#[derive(Debug, Default)]
pub struct ProjectModel {
    pub registered: bool,
    /// The idle timeout the table holds, when known: unknown after a settings change that was
    /// abandoned or failed (it may have been applied) or that overlapped another one.
    pub idle_timeout_secs: Option<u64>,
    /// Settings changes sent and not yet answered (or given up on).
    pub settings_in_flight: u32,
    /// Bumped by every settings change sent: one that sees it move meanwhile overlapped another.
    pub settings_sent: u64,
    /// When each settings change was sent and when it was answered (or given up on): the idle
    /// window of a heartbeat is not comparable across one.
    pub settings_changed: Vec<(OffsetDateTime, OffsetDateTime)>,
    pub recorded_heartbeats: Vec<RecordedHeartbeat>,
    pub snapshots: Vec<String>,
    /// What the API said of each snapshot it named: the sandbox it was taken from, and when the
    /// request that made it was sent and answered (a manual snapshot's).
    pub snapshot_sources: HashMap<String, SnapshotSource>,
    /// The retention's `keepLast` the table holds, when known (as `idle_timeout_secs`).
    pub keep_last: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct SnapshotSource {
    pub sandbox_id: String,
    pub made_between: Option<(OffsetDateTime, OffsetDateTime)>,
}

/// A heartbeat answered `recorded`, with the idle timeout in force when it was.
#[derive(Debug, Clone, Copy)]
pub struct RecordedHeartbeat {
    pub sent: OffsetDateTime,
    pub answered: OffsetDateTime,
    pub idle_timeout_secs: u64,
}

impl ProjectModel {
    /// A settings change is being sent: its ticket, for [`ProjectModel::settings_answered`].
    pub fn settings_sent(&mut self) -> u64 {
        self.settings_in_flight += 1;
        self.settings_sent += 1;
        self.settings_sent
    }

    /// What a settings change sent at `sent` (setting `idle`) was answered; `None` when abandoned.
    pub fn settings_answered(
        &mut self,
        ticket: u64,
        sent: OffsetDateTime,
        answered: OffsetDateTime,
        idle: u64,
        keep_last: u32,
        status: Option<StatusCode>,
    ) {
        self.settings_in_flight -= 1;
        // An abandoned PUT's write may still land in DynamoDB a little later.
        self.settings_changed.push((sent, answered + SETTLE_MARGIN));
        let overlapped = self.settings_in_flight > 0 || self.settings_sent != ticket;
        match status {
            Some(StatusCode::OK) => {
                self.registered = true;
                self.idle_timeout_secs = (!overlapped).then_some(idle);
                self.keep_last = (!overlapped).then_some(keep_last);
            }
            // Refused: nothing was written.
            Some(status) if status.is_client_error() && !overlapped => {}
            // Abandoned or failed: it may have been applied.
            _ => {
                self.idle_timeout_secs = None;
                self.keep_last = None;
            }
        }
    }

    /// A heartbeat answered `recorded`: kept for the check only if the idle timeout in force is known.
    pub fn heartbeat_recorded(&mut self, sent: OffsetDateTime, answered: OffsetDateTime) {
        if let (Some(idle), 0) = (self.idle_timeout_secs, self.settings_in_flight) {
            self.recorded_heartbeats.push(RecordedHeartbeat {
                sent,
                answered,
                idle_timeout_secs: idle,
            });
        }
    }

    /// The recorded heartbeat an enforcer pause at `paused_at` contradicts: answered before it, the
    /// pause inside its idle window less `slack` (the clocks' largest skew), and no settings change
    /// in between.
    pub fn contradicted_by(&self, paused_at: OffsetDateTime, slack: Duration) -> Option<RecordedHeartbeat> {
        self.recorded_heartbeats.iter().copied().find(|hb| {
            hb.answered <= paused_at
                && paused_at + slack < hb.sent + Duration::from_secs(hb.idle_timeout_secs)
                && !self
                    .settings_changed
                    .iter()
                    .any(|(sent, settled)| *settled >= hb.sent && *sent <= paused_at)
        })
    }
}

/// How long after a settings change was answered (or abandoned) its write may still land.
const SETTLE_MARGIN: Duration = Duration::from_secs(30);

/// The soak's projects by index: `regular` ones the callers work on (registered at the start),
/// then `forks` slots only forks fill, then the burst slots (`BURSTS` bursts of `BURST` projects
/// of one team each, opened all at once).
pub struct Model {
    pub projects: Vec<Mutex<ProjectModel>>,
    pub regular: usize,
    pub forks: usize,
}

/// Parallel opens of one team's fresh projects in one burst, and bursts in a run.
pub const BURST: usize = 40;
pub const BURSTS: usize = 2;

impl Model {
    pub fn new(regular: usize) -> Model {
        let forks = (regular / 10).max(4);
        let total = regular + forks + BURST * 2 * BURSTS;
        Model {
            projects: (0..total).map(|_| Mutex::default()).collect(),
            regular,
            forks,
        }
    }

    /// The slots the callers pick from: the regular projects and the fork slots.
    pub fn workable(&self) -> usize {
        self.regular + self.forks
    }

    pub fn is_fork_slot(&self, index: usize) -> bool {
        (self.regular..self.workable()).contains(&index)
    }

    /// The projects of burst `round` (all of account `round % 2`, so of one team).
    pub fn burst(&self, round: usize) -> Vec<usize> {
        let start = self.workable() + round * BURST * 2;
        (start..start + BURST * 2).filter(|i| i % 2 == round % 2).collect()
    }

    pub fn name(index: usize) -> String {
        format!("soak-{index:04}")
    }

    /// The index of the soak's project `name`.
    pub fn index_of(name: &str) -> Option<usize> {
        name.strip_prefix("soak-")?.parse().ok()
    }

    pub fn project(&self, index: usize) -> std::sync::MutexGuard<'_, ProjectModel> {
        self.projects[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-28 03:00 UTC);

    fn at(seconds: i64) -> OffsetDateTime {
        T0 + time::Duration::seconds(seconds)
    }

    /// The soak's first enforcer-vs-heartbeat findings: a PUT to 60 s abandoned (it had been
    /// applied), the model still judging by 120 s, an enforcer pause 65 s after a heartbeat.
    #[test]
    fn after_an_abandoned_settings_change_heartbeats_are_not_judged_by_the_old_timeout() {
        let mut model = ProjectModel::default();
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(0), at(1), 120, 2, Some(StatusCode::OK));
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(100), at(101), 60, 2, None);

        model.heartbeat_recorded(at(300), at(301));

        assert!(
            model.contradicted_by(at(365), Duration::ZERO).is_none(),
            "the idle timeout is unknown"
        );
    }

    #[test]
    fn a_pause_inside_a_known_window_is_a_finding_and_outside_it_is_not() {
        let mut model = ProjectModel::default();
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(0), at(1), 120, 2, Some(StatusCode::OK));
        model.heartbeat_recorded(at(300), at(301));

        assert!(model.contradicted_by(at(365), Duration::ZERO).is_some());
        assert!(
            model.contradicted_by(at(365), Duration::from_secs(60)).is_none(),
            "within the slack"
        );
        assert!(model.contradicted_by(at(421), Duration::ZERO).is_none());
    }

    #[test]
    fn overlapping_settings_changes_leave_the_timeout_unknown() {
        let mut model = ProjectModel::default();
        let first = model.settings_sent();
        let second = model.settings_sent();
        model.settings_answered(second, at(0), at(2), 600, 2, Some(StatusCode::OK));
        model.settings_answered(first, at(0), at(3), 60, 2, Some(StatusCode::OK));

        assert_eq!(model.idle_timeout_secs, None);
    }

    #[test]
    fn a_settings_change_between_heartbeat_and_pause_makes_them_incomparable() {
        let mut model = ProjectModel::default();
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(0), at(1), 600, 2, Some(StatusCode::OK));
        model.heartbeat_recorded(at(300), at(301));
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(310), at(311), 60, 2, Some(StatusCode::OK));

        assert!(model.contradicted_by(at(400), Duration::ZERO).is_none());
    }
}
