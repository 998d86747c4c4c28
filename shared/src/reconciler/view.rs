//! E2B's side: every running or paused sandbox of every configured account, Sandman's only.

use sandman_protocol::reconcile::{Listed, Listing};

use crate::Sandman;
use crate::e2b::{E2b, SandboxFilter, SandboxState};
use crate::sandbox_metadata;

/// E2B's side of one run, and how many accounts it covered.
pub(crate) struct E2bView {
    pub listing: Listing,
    /// The accounts listed this run, for the usage backfill.
    pub listed: Vec<E2b>,
    pub accounts: usize,
    pub unlisted: usize,
    /// Accounts listed only in part (more pages than a run reads).
    pub partial: usize,
}

impl Sandman {
    /// Every distinct account: the deployment's, then each team's registered key, with the teams
    /// whose own key it is (none for the deployment's). Registered teams come from one query of
    /// the small account partition; a key that cannot be opened leaves its account out of this
    /// run (logged), never the others.
    async fn e2b_accounts(&self) -> Vec<(Option<String>, E2b, Vec<String>)> {
        let mut accounts = self.e2b.all_with_owners();
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
                    match accounts.iter_mut().find(|(_, seen, _)| seen.same_account(&e2b)) {
                        Some((_, _, owners)) => owners.push(team.to_string()),
                        None => accounts.push((Some(team.to_string()), e2b, vec![team.to_string()])),
                    }
                }
                Err(err) => {
                    tracing::error!(team = %team, error = %err, "a registered E2B key could not be opened; its account is not reconciled this run")
                }
            }
        }
        accounts
    }

    /// Each account's running and paused sandboxes, at most `list_pages` pages of each (security
    /// review L5: an account with tens of thousands of sandboxes must not take every run). A
    /// team's own account is listed by its team's metadata, so its other sandboxes cost nothing.
    /// An account cut short is reconciled for what was listed, but its sessions are not judged by
    /// their absence from the list (it is not `listed`).
    pub(crate) async fn list_e2b(&self) -> E2bView {
        let accounts = self.e2b_accounts().await;
        let pages = self.config.enforcer.list_pages;
        let lists = futures::future::join_all(accounts.iter().map(|(_, e2b, owners)| {
            let filter = SandboxFilter {
                states: vec![SandboxState::Running, SandboxState::Paused],
                metadata: match owners.as_slice() {
                    [team] => sandbox_metadata::of_team(team),
                    _ => Default::default(),
                },
            };
            async move { e2b.list_sandboxes_up_to(&filter, pages).await }
        }))
        .await;
        let mut view = E2bView {
            listing: Listing::default(),
            listed: Vec::new(),
            accounts: accounts.len(),
            unlisted: 0,
            partial: 0,
        };
        for ((label, e2b, _), listed) in accounts.iter().zip(lists) {
            let label = label.as_deref().unwrap_or("default");
            let account = self.accounts.name(e2b);
            match listed {
                Ok((sandboxes, complete)) => {
                    if complete {
                        view.listing.listed.insert(account.clone());
                    } else {
                        tracing::warn!(
                            account = label,
                            pages,
                            "an E2B account lists more sandboxes than a run reads; reconciled in part"
                        );
                        view.partial += 1;
                    }
                    view.listed.push(e2b.clone());
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
