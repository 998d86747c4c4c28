//! E2B's side: every running or paused sandbox of every configured account, Sandman's only.

use sandman_protocol::reconcile::{Listed, Listing};

use crate::Sandman;
use crate::e2b::{E2b, SandboxFilter, SandboxState};
use crate::sandbox_metadata;

/// E2B's side of one run, and how many accounts it covered.
pub(crate) struct E2bView {
    pub listing: Listing,
    pub accounts: usize,
    pub unlisted: usize,
}

impl Sandman {
    /// Every distinct account: the deployment's, then each team's registered key. Registered
    /// teams come from one query of the small account partition; a key that cannot be opened
    /// leaves its account out of this run (logged), never the others.
    async fn e2b_accounts(&self) -> Vec<(Option<String>, E2b)> {
        let mut accounts = self.e2b.all();
        let Some(keys) = &self.team_keys else {
            return accounts;
        };
        let teams = match self.store.registered_teams().await {
            Ok(teams) => teams,
            Err(err) => {
                tracing::error!(error = %err, "listing registered E2B accounts failed; only the deployment's are reconciled this run");
                return accounts;
            }
        };
        for (team, record) in teams {
            match keys.key_from_record(&team, &record).await {
                Ok(key) => {
                    let e2b = self.e2b.with_key(key);
                    if !accounts.iter().any(|(_, seen)| seen.same_account(&e2b)) {
                        accounts.push((Some(team.to_string()), e2b));
                    }
                }
                Err(err) => {
                    tracing::error!(team = %team, error = %err, "a registered E2B key could not be opened; its account is not reconciled this run")
                }
            }
        }
        accounts
    }

    pub(crate) async fn list_e2b(&self) -> E2bView {
        let accounts = self.e2b_accounts().await;
        let filter = SandboxFilter {
            states: vec![SandboxState::Running, SandboxState::Paused],
            metadata: Default::default(),
        };
        let lists = futures::future::join_all(accounts.iter().map(|(_, e2b)| e2b.list_sandboxes(&filter))).await;
        let mut view = E2bView {
            listing: Listing::default(),
            accounts: accounts.len(),
            unlisted: 0,
        };
        for ((label, e2b), listed) in accounts.iter().zip(lists) {
            let label = label.as_deref().unwrap_or("default");
            let account = self.accounts.name(e2b);
            match listed {
                Ok(sandboxes) => {
                    view.listing.listed.insert(account.clone());
                    for sandbox in sandboxes {
                        let Some((owner, session_id)) = sandbox_metadata::owner(&sandbox.metadata) else {
                            continue;
                        };
                        view.listing.sandboxes.insert(
                            sandbox.sandbox_id.clone(),
                            Listed {
                                sandbox,
                                account: account.clone(),
                                owner,
                                session_id,
                            },
                        );
                    }
                }
                Err(err) => {
                    tracing::error!(account = label, error = %err, "listing E2B sandboxes failed; this account is not reconciled this run");
                    view.unlisted += 1;
                }
            }
        }
        view
    }
}
