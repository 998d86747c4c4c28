//! E2B's side: every running or paused sandbox of every configured account, Sandman's only.

use std::collections::HashMap;

use crate::Sandman;
use crate::domain::ProjectKey;
use crate::e2b::{E2b, ListedSandbox, SandboxFilter, SandboxState};
use crate::sandbox_metadata;

/// A Sandman sandbox as E2B listed it, and the account that listed it.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub sandbox: ListedSandbox,
    pub account: usize,
    pub owner: ProjectKey,
    pub session_id: Option<String>,
}

pub(crate) struct E2bView {
    pub accounts: Vec<(Option<String>, E2b)>,
    /// Accounts whose listing failed: what they hold is unknown this run.
    pub unlisted: Vec<usize>,
    pub sandboxes: HashMap<String, Listed>,
}

impl E2bView {
    /// Whether the account `e2b` calls was listed, so absence from the list means something.
    pub fn covers(&self, e2b: &E2b) -> bool {
        self.accounts
            .iter()
            .position(|(_, account)| account.same_account(e2b))
            .is_some_and(|i| !self.unlisted.contains(&i))
    }

    pub fn state_of(&self, sandbox_id: &str) -> Option<SandboxState> {
        self.sandboxes.get(sandbox_id).map(|listed| listed.sandbox.state)
    }
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
            accounts: accounts.clone(),
            unlisted: Vec::new(),
            sandboxes: HashMap::new(),
        };
        for (account, listed) in lists.into_iter().enumerate() {
            let label = accounts[account].0.as_deref().unwrap_or("default");
            match listed {
                Ok(sandboxes) => {
                    for sandbox in sandboxes {
                        let Some((owner, session_id)) = sandbox_metadata::owner(&sandbox.metadata) else {
                            continue;
                        };
                        view.sandboxes.insert(
                            sandbox.sandbox_id.clone(),
                            Listed {
                                sandbox,
                                account,
                                owner,
                                session_id,
                            },
                        );
                    }
                }
                Err(err) => {
                    tracing::error!(account = label, error = %err, "listing E2B sandboxes failed; this account is not reconciled this run");
                    view.unlisted.push(account);
                }
            }
        }
        view
    }
}
