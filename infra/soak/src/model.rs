//! What the actors were told, per project: enough to judge afterwards whether an answer was kept
//! (a heartbeat answered `recorded`, the idle timeout in force, the snapshots it knows of).

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
            }
            // Refused: nothing was written.
            Some(status) if status.is_client_error() && !overlapped => {}
            // Abandoned or failed: it may have been applied.
            _ => self.idle_timeout_secs = None,
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
    /// pause inside its idle window, and no settings change in between.
    pub fn contradicted_by(&self, paused_at: OffsetDateTime) -> Option<RecordedHeartbeat> {
        self.recorded_heartbeats.iter().copied().find(|hb| {
            hb.answered <= paused_at
                && paused_at < hb.sent + Duration::from_secs(hb.idle_timeout_secs)
                && !self
                    .settings_changed
                    .iter()
                    .any(|(sent, settled)| *settled >= hb.sent && *sent <= paused_at)
        })
    }
}

/// How long after a settings change was answered (or abandoned) its write may still land.
const SETTLE_MARGIN: Duration = Duration::from_secs(30);

pub struct Model {
    pub projects: Vec<Mutex<ProjectModel>>,
}

impl Model {
    pub fn new(projects: usize) -> Model {
        Model {
            projects: (0..projects).map(|_| Mutex::default()).collect(),
        }
    }

    pub fn name(index: usize) -> String {
        format!("soak-{index:04}")
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
        model.settings_answered(ticket, at(0), at(1), 120, Some(StatusCode::OK));
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(100), at(101), 60, None);

        model.heartbeat_recorded(at(300), at(301));

        assert!(model.contradicted_by(at(365)).is_none(), "the idle timeout is unknown");
    }

    #[test]
    fn a_pause_inside_a_known_window_is_a_finding_and_outside_it_is_not() {
        let mut model = ProjectModel::default();
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(0), at(1), 120, Some(StatusCode::OK));
        model.heartbeat_recorded(at(300), at(301));

        assert!(model.contradicted_by(at(365)).is_some());
        assert!(model.contradicted_by(at(421)).is_none());
    }

    #[test]
    fn overlapping_settings_changes_leave_the_timeout_unknown() {
        let mut model = ProjectModel::default();
        let first = model.settings_sent();
        let second = model.settings_sent();
        model.settings_answered(second, at(0), at(2), 600, Some(StatusCode::OK));
        model.settings_answered(first, at(0), at(3), 60, Some(StatusCode::OK));

        assert_eq!(model.idle_timeout_secs, None);
    }

    #[test]
    fn a_settings_change_between_heartbeat_and_pause_makes_them_incomparable() {
        let mut model = ProjectModel::default();
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(0), at(1), 600, Some(StatusCode::OK));
        model.heartbeat_recorded(at(300), at(301));
        let ticket = model.settings_sent();
        model.settings_answered(ticket, at(310), at(311), 60, Some(StatusCode::OK));

        assert!(model.contradicted_by(at(400)).is_none());
    }
}
