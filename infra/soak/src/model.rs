//! What the actors were told, per project: enough to judge afterwards whether an answer was kept
//! (a heartbeat answered `recorded`, the idle timeout in force, the snapshots it knows of).

use std::sync::Mutex;

use time::OffsetDateTime;

#[derive(Debug, Default)]
pub struct ProjectModel {
    pub registered: bool,
    pub idle_timeout_secs: u64,
    /// Clock times at which the settings changed (the idle window is then not comparable).
    pub settings_changed: Vec<OffsetDateTime>,
    /// Heartbeats answered `recorded`: the clock when sent and when answered.
    pub recorded_heartbeats: Vec<(OffsetDateTime, OffsetDateTime)>,
    pub snapshots: Vec<String>,
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
