//! Per-team limits, so one team cannot exhaust the deployment's E2B account or table: projects
//! (checked when a new project is registered), live sandboxes (checked before an open or a
//! resume would start one) and snapshots (checked before a snapshot a user asks for). Counting
//! reads the team's entries of the `byTeam` index, only on those paths; snapshots add one count
//! query per project of the team, so a manual snapshot costs about one read unit per project.
//! Two concurrent requests may each see room for one, so a limit can be passed by the few
//! requests racing at its edge. Automatic snapshots (on idle, before a kill) are never refused:
//! refusing one would lose the sandbox's work; each project's retention bounds them.

use crate::Sandman;
use crate::domain::{ProjectKey, SessionState, TeamId};
use crate::error::Error;
use crate::store::Consistency;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub projects_per_team: u32,
    pub live_sandboxes_per_team: u32,
    pub snapshots_per_team: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            projects_per_team: 100,
            live_sandboxes_per_team: 20,
            snapshots_per_team: 1000,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct TeamCounts {
    projects: u32,
    live: u32,
}

impl Sandman {
    /// Refuses a project the team does not have yet once it has as many as its quota allows.
    pub async fn check_project_quota(&self, key: &ProjectKey) -> Result<(), Error> {
        if self.store.get_project(key, Consistency::Eventual).await?.is_some() {
            return Ok(());
        }
        let limit = self.config.quotas.projects_per_team;
        if self.team_counts(&key.team).await?.projects >= limit {
            return Err(Error::QuotaExceeded(format!(
                "the team has {limit} projects, its limit; delete one first"
            )));
        }
        Ok(())
    }

    /// Refuses to start or resume a sandbox once the team has as many live ones as its quota allows.
    pub async fn check_live_quota(&self, key: &ProjectKey) -> Result<(), Error> {
        let record = self.project(key).await?;
        if record.state().is_some_and(is_live) {
            return Ok(());
        }
        self.check_live_room(&key.team).await
    }

    /// Refuses a new live sandbox for the team (a live fork's) once it has as many as its quota allows.
    pub(crate) async fn check_live_room(&self, team: &TeamId) -> Result<(), Error> {
        let limit = self.config.quotas.live_sandboxes_per_team;
        if self.team_counts(team).await?.live >= limit {
            return Err(Error::QuotaExceeded(format!(
                "the team has {limit} running sandboxes, its limit; pause or kill one first"
            )));
        }
        Ok(())
    }

    /// Refuses a manual snapshot once the team's projects hold as many snapshots as its quota allows.
    pub async fn check_snapshot_quota(&self, key: &ProjectKey) -> Result<(), Error> {
        let limit = self.config.quotas.snapshots_per_team;
        let mut held = 0;
        let mut cursor = None;
        loop {
            let page = self.store.list_projects(&key.team, cursor.as_ref(), 100).await?;
            for project in &page.items {
                let project = ProjectKey::new(key.team.clone(), project.project_id.clone());
                held += self.store.count_snapshots(&project).await?;
                if held >= limit {
                    return Err(Error::QuotaExceeded(format!(
                        "the team has {limit} snapshots, its limit; delete some first"
                    )));
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    async fn team_counts(&self, team: &TeamId) -> Result<TeamCounts, Error> {
        let mut counts = TeamCounts::default();
        let mut cursor = None;
        loop {
            let page = self.store.list_projects(team, cursor.as_ref(), 100).await?;
            counts.projects += page.items.len() as u32;
            counts.live += page.items.iter().filter(|p| p.state.is_some_and(is_live)).count() as u32;
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(counts),
            }
        }
    }
}

fn is_live(state: SessionState) -> bool {
    matches!(
        state,
        SessionState::Starting | SessionState::Running | SessionState::Resuming | SessionState::Pausing
    )
}
