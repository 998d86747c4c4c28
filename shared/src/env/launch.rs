//! What a new sandbox of a project is given (`Port::launch_settings`): its env vars, and the
//! egress rules that carry its secrets by reference. A proxy-delivered secret E2B's account does
//! not hold at its current revision is opened in memory and handed to E2B first.

use std::collections::BTreeMap;

use super::merge::{e2b_secret_name, merge, placeholder};
use crate::Sandman;
use crate::domain::ProjectKey;
use crate::e2b::{E2b, E2bError, LaunchSettings, NetworkRule, NetworkTransform, Secret, secret_marker};
use crate::error::Error;
use crate::store::{Consistency, Delivery, Scope, StoredSecret};
use crate::team_keys::SealedFor;

impl Sandman {
    pub(crate) async fn launch_settings_for(&self, e2b: &E2b, key: &ProjectKey) -> Result<LaunchSettings, Error> {
        // The version first: a change landing between the two reads shows as a restart required,
        // never the other way round.
        let version = self
            .store
            .get_project(key, Consistency::Strong)
            .await?
            .ok_or(Error::NotFound("project"))?
            .settings_version;
        let (project_scope, team_scope) = (Scope::Project(key.clone()), Scope::Team(key.team.clone()));
        let project = self.store.settings(&project_scope, Consistency::Strong).await?;
        let team = self.store.settings(&team_scope, Consistency::Strong).await?;
        let merged = merge(&team_scope, &team, &project_scope, &project);
        let mut launch = LaunchSettings {
            env_vars: merged.vars.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
            rules: BTreeMap::new(),
            version,
        };
        // Only the API holds the seal: another function creating a sandbox (the enforcer's
        // snapshot-reopen handoff) delivers what needs no opening and reports the rest as a
        // restart required, rather than failing the create.
        let (account, can_open) = (e2b.fingerprint(), self.endpoint_seal.is_some());
        let mut left_out = 0;
        for (scope, secret) in merged.secrets {
            if secret.sealed.is_none() {
                continue; // named (a fork's copy), not set
            }
            let held_now = secret
                .synced
                .as_ref()
                .is_some_and(|s| s.account == account && s.revision == secret.revision);
            let needs_opening = secret.delivery == Delivery::Env || !held_now;
            if needs_opening && !can_open {
                left_out += 1;
                continue;
            }
            let delivery = match secret.delivery {
                Delivery::Proxy => self.sync(e2b, &scope, secret).await?,
                Delivery::Env => Delivery::Env,
            };
            match delivery {
                Delivery::Proxy => {
                    let marker = secret_marker(&e2b_secret_name(&scope, &secret.name));
                    for host in &secret.hosts {
                        let headers = BTreeMap::from([(secret.header.clone(), format!("{}{marker}", secret.prefix))]);
                        launch.rules.entry(host.clone()).or_default().push(NetworkRule {
                            transform: NetworkTransform { headers },
                        });
                    }
                    launch
                        .env_vars
                        .insert(secret.name.clone(), Secret::new(placeholder(&secret.name)));
                }
                Delivery::Env => {
                    let value = self.open_secret(&scope, secret).await?;
                    launch.env_vars.insert(secret.name.clone(), value);
                }
            }
        }
        if left_out > 0 {
            tracing::warn!(project = %key, left_out, "a sandbox created without secrets this function cannot open");
            launch.version = 0;
        }
        Ok(launch)
    }

    /// Makes sure E2B's account holds the secret's current revision; `Env` when it has no
    /// secrets API (the secret then goes as an env var from here on).
    async fn sync(&self, e2b: &E2b, scope: &Scope, secret: &StoredSecret) -> Result<Delivery, Error> {
        let account = e2b.fingerprint();
        if secret
            .synced
            .as_ref()
            .is_some_and(|s| s.account == account && s.revision == secret.revision)
        {
            return Ok(Delivery::Proxy);
        }
        let held = secret.synced.as_ref().is_some_and(|s| s.account == account);
        if !held && !e2b.has_secrets_api().await? {
            self.store
                .mark_env_delivery(scope, &secret.name, secret.revision)
                .await?;
            return Ok(Delivery::Env);
        }
        let value = self.open_secret(scope, secret).await?;
        match e2b
            .put_secret(&e2b_secret_name(scope, &secret.name), &value, held)
            .await
        {
            Ok(()) => {
                // Lost to a newer write: that writer syncs its own revision.
                self.store
                    .mark_synced(scope, &secret.name, secret.revision, &account)
                    .await?;
                Ok(Delivery::Proxy)
            }
            Err(E2bError::NotFound) => {
                self.store
                    .mark_env_delivery(scope, &secret.name, secret.revision)
                    .await?;
                Ok(Delivery::Env)
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn open_secret(&self, scope: &Scope, secret: &StoredSecret) -> Result<Secret, Error> {
        let sealed = secret.sealed.as_ref().ok_or(Error::NotFound("secret"))?;
        let owner = SealedFor::Secret {
            team: scope.team().as_str(),
            scope: &scope.label(),
            name: &secret.name,
        };
        let opened = self.secret_seal()?.open_for(owner, sealed).await.map_err(|err| {
            tracing::error!(secret = %secret.name, error = %err, "a secret could not be opened");
            Error::E2b(E2bError::Unavailable {
                attempts: 1,
                detail: "a secret could not be decrypted".into(),
            })
        })?;
        Ok(Secret::new(opened.expose()))
    }
}
