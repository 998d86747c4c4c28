//! The live count's repair (`store/live.rs`): after a run's checks, each team with sandboxes or
//! running sessions has its live count compared with what E2B runs for it; a team whose count
//! disagrees is recounted from its sessions. Steady state costs one strong read per such team; a
//! recount, a read of the team's projects. A team whose E2B account was not fully listed waits.

use std::collections::BTreeSet;

use sandman_protocol::port::Port;
use sandman_protocol::reconcile::Listing;
use tokio::time::Instant;

use crate::Sandman;
use crate::domain::TeamId;
use crate::e2b::SandboxState;
use sandman_protocol::record::IdleCandidate;

/// What the repair did: teams compared, recounted, and errors.
#[derive(Debug, Default)]
pub(super) struct LiveRepair {
    pub checked: u64,
    pub recounted: u64,
    pub errors: u64,
}

impl Sandman {
    pub(super) async fn repair_live_counts(
        &self,
        running: &[IdleCandidate],
        listing: &Listing,
        deadline: Instant,
    ) -> LiveRepair {
        let teams: BTreeSet<&TeamId> = running
            .iter()
            .map(|session| &session.key.team)
            .chain(listing.sandboxes.values().map(|listed| &listed.owner.team))
            .collect();
        let mut repair = LiveRepair::default();
        for team in teams {
            if Instant::now() >= deadline {
                break;
            }
            match self.repair_live_count(team, listing).await {
                Ok(Some(recounted)) => {
                    repair.checked += 1;
                    repair.recounted += u64::from(recounted);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(team = %team, error = %err, "the live count could not be checked");
                    repair.errors += 1;
                }
            }
        }
        repair
    }

    /// `None`: the team's account was not fully listed; otherwise whether it was recounted.
    async fn repair_live_count(&self, team: &TeamId, listing: &Listing) -> Result<Option<bool>, crate::Error> {
        let account = self.account(team).await?;
        if !listing.covers(&account) {
            return Ok(None);
        }
        let runs = listing
            .sandboxes
            .values()
            .filter(|listed| {
                &listed.owner.team == team && listed.account == account && listed.sandbox.state == SandboxState::Running
            })
            .count();
        let seen = self.store.live_count(team).await?;
        if seen.live == i64::try_from(runs).ok() {
            return Ok(Some(false));
        }
        Ok(Some(self.store.recount_live(team, seen).await?.is_some()))
    }
}
