//! Settings across a project's life: a fork gets its source's env vars and its secrets' names
//! (never their values: each is to be set again), and a deleted project's settings go with it.

use super::merge::e2b_secret_name;
use crate::Sandman;
use crate::domain::ProjectKey;
use crate::error::Error;
use crate::store::{Consistency, Delivery, Scope, SecretWrite, SettingsWrite, StoredSecret};

impl Sandman {
    /// Gives `fork` the env vars of `source` and the names, hosts and headers of its secrets,
    /// unset. A fork that has settings of its own already keeps them.
    pub(crate) async fn copy_settings_to_fork(&self, source: &ProjectKey, fork: &ProjectKey) -> Result<(), Error> {
        let from = self
            .store
            .settings(&Scope::Project(source.clone()), Consistency::Strong)
            .await?;
        let scope = Scope::Project(fork.clone());
        let to = self.store.settings(&scope, Consistency::Strong).await?;
        if from.revision == 0 || to.revision > 0 {
            return Ok(());
        }
        let now = self.now();
        let by = format!("fork of {}", source.project);
        let secrets = from
            .secrets
            .iter()
            .map(|secret| {
                SecretWrite::Put(Box::new(StoredSecret {
                    sealed: None,
                    size: 0,
                    last_four: None,
                    synced: None,
                    delivery: Delivery::Proxy,
                    revision: 1,
                    updated_at: now,
                    updated_by: by.clone(),
                    forked_from: Some(source.project.to_string()),
                    ..secret.clone()
                }))
            })
            .collect();
        let write = SettingsWrite {
            scope: &scope,
            read_revision: 0,
            vars: Some((&from.vars, now, &by)),
            secrets,
            project: None,
        };
        // Lost to a write of the fork's own: its settings are its own.
        self.store.write_settings(&write).await?;
        Ok(())
    }

    /// Removes a deleted project's settings, and its secrets from E2B.
    pub(crate) async fn forget_settings(&self, key: &ProjectKey) -> Result<(), Error> {
        let scope = Scope::Project(key.clone());
        let settings = self.store.settings(&scope, Consistency::Strong).await?;
        let proxied: Vec<&StoredSecret> = settings
            .secrets
            .iter()
            .filter(|secret| secret.sealed.is_some() && secret.delivery == Delivery::Proxy)
            .collect();
        if !proxied.is_empty() {
            let e2b = self.e2b_for_team(&key.team).await?;
            for secret in proxied {
                e2b.delete_secret(&e2b_secret_name(&scope, &secret.name)).await?;
            }
        }
        self.store.delete_settings(&scope).await?;
        Ok(())
    }
}
