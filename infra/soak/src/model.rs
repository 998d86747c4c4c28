//! What the actors were told, per project: enough to judge afterwards whether an answer was kept
//! (a heartbeat answered `recorded`, the idle timeout in force, the snapshots it knows of).

use std::sync::Mutex;

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
