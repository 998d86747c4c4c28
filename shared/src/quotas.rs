//! Per-team limits, so one team cannot exhaust the deployment's E2B account or table: projects
//! (checked when a new project is registered) and live sandboxes (checked before an open or a
//! resume would start one), counted from the team's entries of the `byTeam` index, only on those
//! paths; two concurrent requests may each see room for one, so these can be passed by the few
//! requests racing at their edge.
//!
//! Snapshots are counted exactly instead (a counter changed in the same transaction as every
//! snapshot row, `store/counters.rs`), every kind: a snapshot a user asks for (and a fork of a
//! running sandbox) past the quota is refused; an automatic one (before a kill or an idle pause,
//! an archive) never is, since that would lose work: the team's oldest unpinned snapshots are
//! deleted to make room (`snapshot_quota.rs`). Pins are limited per project, exactly the same way.

use crate::Sandman;
use crate::domain::{ProjectKey, SessionState, TeamId};
use crate::error::Error;
use crate::store::Consistency;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub projects_per_team: u32,
    pub live_sandboxes_per_team: u32,
    pub snapshots_per_team: u32,
    /// Pinned snapshots are never pruned, so each project may pin only so many.
    pub pinned_snapshots_per_project: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            projects_per_team: 100,
            live_sandboxes_per_team: 20,
            snapshots_per_team: 1000,
            pinned_snapshots_per_project: 5,
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
