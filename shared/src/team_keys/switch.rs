//! Switching a team's E2B account. A team's sandboxes and snapshots live in the E2B account that
//! made them: a key of another account cannot reach them (an open would start afresh, losing the
//! work, while the old sandboxes kept running or sat paused). So a key change that cannot reach
//! what the team holds is refused; a new key of the same account (a rotation) is not.

use crate::Sandman;
use crate::domain::{ProjectKey, SessionState, SnapshotStatus, TeamId};
use crate::e2b::{E2b, E2bError};
use crate::error::Error;

/// What a team holds in its current E2B account, read from the table.
#[derive(Debug, Default, PartialEq)]
struct Holdings {
    /// The ids of its sandboxes that are not killed, the likeliest to be found first.
    sandboxes: Vec<String>,
    /// Sessions whose sandbox E2B has not named yet (being created).
    unnamed: usize,
    /// The E2B ids of its READY snapshots.
    snapshots: Vec<String>,
}

impl Holdings {
    fn is_empty(&self) -> bool {
        self.sandboxes.is_empty() && self.unnamed == 0 && self.snapshots.is_empty()
    }

    /// `unreachable`: why the key switched to would not reach them ("the new key cannot reach").
    fn refusal(&self, unreachable: &str) -> String {
        let sandboxes = self.sandboxes.len() + self.unnamed;
        format!(
            "the team has {sandboxes} running or paused sandbox(es) and {} snapshot(s) in its current E2B \
             account, which {unreachable}: kill those sandboxes and delete those snapshots (or \
             delete their projects) first, or use another key of the same E2B account",
            self.snapshots.len()
        )
    }
}

impl Sandman {
    /// Refuses to move `team`'s E2B calls to `target` (`None`: no key at all) while the team holds
    /// sandboxes or READY snapshots that `target` cannot reach. E2B is asked with `target` about
    /// one of them: a sandbox if there is one, else a snapshot. An answer that is neither "found"
    /// nor "not found" (5xx, timeout) is the E2B error itself: nothing is decided on a guess.
    /// `unreachable` ends the refusal's sentence about what is held ("the new key cannot reach").
    pub(super) async fn check_account_switch(
        &self,
        team: &TeamId,
        target: Option<&E2b>,
        unreachable: &str,
    ) -> Result<(), Error> {
        let holdings = self.holdings(team).await?;
        if holdings.is_empty() {
            return Ok(());
        }
        let reachable = match target {
            Some(e2b) => reaches(e2b, &holdings).await?,
            None => false,
        };
        if reachable {
            return Ok(());
        }
        tracing::info!(
            team = %team,
            sandboxes = holdings.sandboxes.len() + holdings.unnamed,
            snapshots = holdings.snapshots.len(),
            "refused an E2B key that cannot reach the team's sandboxes or snapshots"
        );
        Err(Error::AccountInUse(holdings.refusal(unreachable)))
    }

    /// The team's projects from the team index (their session state and sandbox id are projected
    /// there), then each project's snapshots: about one read unit per project.
    async fn holdings(&self, team: &TeamId) -> Result<Holdings, Error> {
        let mut holdings = Holdings::default();
        let mut sandboxes = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.list_projects(team, cursor.as_ref(), 100).await?;
            for project in page.items {
                let key = ProjectKey::new(team.clone(), project.project_id.clone());
                let snapshots = self.store.all_snapshots(&key).await?;
                holdings.snapshots.extend(
                    snapshots
                        .into_iter()
                        .filter(|snapshot| snapshot.status == SnapshotStatus::Ready)
                        .map(|snapshot| snapshot.e2b_snapshot_id),
                );
                match (project.state.and_then(probe_order), project.sandbox_id) {
                    (Some(order), Some(sandbox)) => sandboxes.push((order, sandbox)),
                    (Some(_), None) => holdings.unnamed += 1,
                    (None, _) => {}
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        sandboxes.sort_by_key(|(order, _)| *order);
        holdings.sandboxes = sandboxes.into_iter().map(|(_, sandbox)| sandbox).collect();
        Ok(holdings)
    }
}

/// Which sandboxes to ask E2B about first; `None` for a session with no sandbox in E2B. E2B answers
/// 404 for a sandbox being killed, so a stopping one is asked about last.
fn probe_order(state: SessionState) -> Option<u8> {
    match state {
        SessionState::Running => Some(0),
        SessionState::Paused => Some(1),
        SessionState::Pausing | SessionState::Resuming => Some(2),
        SessionState::Starting => Some(3),
        SessionState::Stopping => Some(4),
        SessionState::Killed => None,
    }
}

/// Whether `e2b`'s account holds what the team holds: one call about one sandbox or snapshot.
async fn reaches(e2b: &E2b, holdings: &Holdings) -> Result<bool, Error> {
    if let Some(sandbox) = holdings.sandboxes.first() {
        return match e2b.get_sandbox(sandbox).await {
            Ok(_) => Ok(true),
            Err(E2bError::NotFound) => Ok(false),
            Err(err) => Err(err.into()),
        };
    }
    if let Some(snapshot) = holdings.snapshots.first() {
        return Ok(e2b.has_snapshot(snapshot).await?);
    }
    // Only sandboxes still being created, in the current account: nothing to ask E2B about yet.
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_what_is_held_and_what_to_do() {
        let holdings = Holdings {
            sandboxes: vec!["sbx-1".into()],
            unnamed: 1,
            snapshots: vec!["snap".into()],
        };
        let message = holdings.refusal("the new key cannot reach");
        assert!(
            message.contains("2 running or paused sandbox(es) and 1 snapshot(s)"),
            "{message}"
        );
        assert!(message.contains("the new key cannot reach"), "{message}");
        assert!(message.contains("same E2B account"), "{message}");
        assert!(Holdings::default().is_empty());
    }

    #[test]
    fn running_sandboxes_are_asked_about_first_and_killed_ones_never() {
        assert!(probe_order(SessionState::Running) < probe_order(SessionState::Paused));
        assert!(probe_order(SessionState::Paused) < probe_order(SessionState::Stopping));
        assert_eq!(probe_order(SessionState::Killed), None);
    }
}
