//! The API's operations on a scope's settings: read and replace env vars; list, put and delete
//! secrets. A value is sealed before it is stored and handed to E2B from memory; an answer carries
//! names and the last four characters, never a value.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::merge::{e2b_secret_name, secret_write_needs_restart};
use super::rules::{SecretSpec, check_secret, check_secret_name, check_secret_room, check_vars, last_four};
use crate::Sandman;
use crate::domain::{ProjectKey, TeamId};
use crate::e2b::E2bError;
use crate::error::Error;
use crate::store::{
    Consistency, Delivery, ProjectNote, Scope, ScopeSettings, SecretWrite, SettingsWrite, StoredSecret,
};
use crate::team_keys::{KeyWrapper, SealedFor};

/// A scope's env vars, as editors read them back.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvView {
    pub vars: BTreeMap<String, String>,
    pub updated_at: Option<OffsetDateTime>,
    pub updated_by: Option<String>,
    /// A sandbox (of this project; of any of the team's projects, for the team's set) runs with
    /// older env vars or secret rules: they apply from its next create or restore.
    pub restart_required: bool,
}

/// One secret as listed: never its value.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretView {
    pub name: String,
    /// `false`: a fork's copy of its source's secret, named but not set.
    pub set: bool,
    pub last_four: Option<String>,
    pub hosts: Vec<String>,
    pub header: String,
    pub prefix: String,
    pub delivery: Delivery,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecretsView {
    pub items: Vec<SecretView>,
    pub restart_required: bool,
}

/// The answer to a secret's write.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretChange {
    pub secret: SecretView,
    pub restart_required: bool,
}

impl From<&StoredSecret> for SecretView {
    fn from(secret: &StoredSecret) -> Self {
        SecretView {
            name: secret.name.clone(),
            set: secret.sealed.is_some(),
            last_four: secret.last_four.clone(),
            hosts: secret.hosts.clone(),
            header: secret.header.clone(),
            prefix: secret.prefix.clone(),
            delivery: secret.delivery,
            updated_at: secret.updated_at,
            updated_by: secret.updated_by.clone(),
        }
    }
}

fn lost_race() -> Error {
    Error::Conflict("the settings were changed concurrently; try again".into())
}

impl Sandman {
    pub(crate) fn secret_seal(&self) -> Result<&KeyWrapper, Error> {
        self.endpoint_seal.as_ref().ok_or_else(|| {
            Error::E2b(E2bError::Unavailable {
                attempts: 1,
                detail: "this function holds no key to seal or open secrets".into(),
            })
        })
    }

    pub async fn env_of(&self, scope: &Scope) -> Result<EnvView, Error> {
        self.check_scope(scope).await?;
        let settings = self.store.settings(scope, Consistency::Strong).await?;
        Ok(EnvView {
            vars: settings.vars,
            updated_at: settings.vars_updated.as_ref().map(|(at, _)| *at),
            updated_by: settings.vars_updated.map(|(_, by)| by),
            restart_required: self.restart_required(scope).await?,
        })
    }

    /// Replaces the scope's env vars (checked whole). The lifecycle log names what changed.
    pub async fn set_env(&self, scope: &Scope, vars: BTreeMap<String, String>, by: &str) -> Result<EnvView, Error> {
        let settings = self.read_for_write(scope).await?;
        check_vars(&vars, &settings.secrets)?;
        let changed: Vec<&str> = vars
            .keys()
            .chain(settings.vars.keys())
            .filter(|name| vars.get(*name) != settings.vars.get(*name))
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let now = self.now();
        if !changed.is_empty() {
            let cause = format!("env vars changed by {by}: {}", changed.join(", "));
            self.write_scope(scope, &settings, Some((&vars, now, by)), Vec::new(), true, cause)
                .await?;
        }
        self.env_of(scope).await
    }

    pub async fn secrets_of(&self, scope: &Scope) -> Result<SecretsView, Error> {
        self.check_scope(scope).await?;
        let settings = self.store.settings(scope, Consistency::Strong).await?;
        Ok(SecretsView {
            items: settings.secrets.iter().map(SecretView::from).collect(),
            restart_required: self.restart_required(scope).await?,
        })
    }

    /// Seals and stores the secret, then hands it to E2B's secrets API (so a running sandbox's
    /// next request to its hosts carries the new value), or marks it for env delivery where the
    /// account has no secrets API.
    pub async fn put_secret(
        &self,
        scope: &Scope,
        name: &str,
        spec: SecretSpec,
        by: &str,
    ) -> Result<SecretChange, Error> {
        check_secret_name(name)?;
        let spec = check_secret(spec)?;
        let settings = self.read_for_write(scope).await?;
        let value = spec.value.expose();
        check_secret_room(&settings, name, value.len())?;
        let owner = SealedFor::Secret {
            team: scope.team().as_str(),
            scope: &scope.label(),
            name,
        };
        let sealed = self.secret_seal()?.seal_for(owner, value).await.map_err(|err| {
            tracing::error!(error = %err, "a secret could not be sealed");
            Error::E2b(E2bError::Unavailable {
                attempts: 1,
                detail: "the secret could not be encrypted".into(),
            })
        })?;
        let old = settings.secret(name);
        let restart = secret_write_needs_restart(old, &spec.hosts, &spec.header, &spec.prefix);
        let secret = StoredSecret {
            name: name.to_owned(),
            sealed: Some(sealed),
            size: value.len() as u64,
            last_four: last_four(value),
            hosts: spec.hosts.clone(),
            header: spec.header.clone(),
            prefix: spec.prefix.clone(),
            delivery: old.map_or(Delivery::Proxy, |old| old.delivery),
            revision: old.map_or(1, |old| old.revision + 1),
            synced: None,
            updated_at: self.now(),
            updated_by: by.to_owned(),
            forked_from: None,
        };
        let cause = format!("secret {name} set by {by}");
        let revision = secret.revision;
        let mut stored = secret.clone();
        self.write_scope(
            scope,
            &settings,
            None,
            vec![SecretWrite::Put(Box::new(secret))],
            restart,
            cause,
        )
        .await?;
        // E2B's copy: the account holds the new version from here on.
        let e2b = self.e2b_for_team(scope.team()).await?;
        let e2b_name = e2b_secret_name(scope, name);
        let account = e2b.fingerprint();
        let held = old
            .and_then(|old| old.synced.as_ref())
            .is_some_and(|s| s.account == account);
        // Asked first (no value sent) unless E2B holds it already: an account without the API
        // is never sent a value.
        let outcome = if held || e2b.has_secrets_api().await? {
            e2b.put_secret(&e2b_name, &spec.value, held).await
        } else {
            Err(E2bError::NotFound)
        };
        match outcome {
            Ok(()) => {
                self.store.mark_synced(scope, name, revision, &account).await?;
                stored.delivery = Delivery::Proxy;
            }
            Err(E2bError::NotFound) => {
                self.store.mark_env_delivery(scope, name, revision).await?;
                stored.delivery = Delivery::Env;
            }
            Err(err) => return Err(err.into()),
        }
        Ok(SecretChange {
            secret: SecretView::from(&stored),
            restart_required: self.restart_required(scope).await?,
        })
    }

    /// Removes the secret here and from E2B: a marker naming it resolves no more, so a running
    /// sandbox's requests stop carrying it at once.
    pub async fn delete_secret(&self, scope: &Scope, name: &str, by: &str) -> Result<bool, Error> {
        check_secret_name(name)?;
        let settings = self.read_for_write(scope).await?;
        let Some(old) = settings.secret(name) else {
            return Err(Error::NotFound("secret"));
        };
        let proxied = old.delivery == Delivery::Proxy;
        let cause = format!("secret {name} deleted by {by}");
        self.write_scope(
            scope,
            &settings,
            None,
            vec![SecretWrite::Delete(name.to_owned())],
            true,
            cause,
        )
        .await?;
        if proxied {
            let e2b = self.e2b_for_team(scope.team()).await?;
            e2b.delete_secret(&e2b_secret_name(scope, name)).await?;
        }
        self.restart_required(scope).await
    }

    async fn check_scope(&self, scope: &Scope) -> Result<(), Error> {
        if let Scope::Project(key) = scope
            && self.store.get_project(key, Consistency::Eventual).await?.is_none()
        {
            return Err(Error::NotFound("project"));
        }
        Ok(())
    }

    async fn read_for_write(&self, scope: &Scope) -> Result<ScopeSettings, Error> {
        self.check_scope(scope).await?;
        Ok(self.store.settings(scope, Consistency::Strong).await?)
    }

    /// One conditional write of the scope, a lifecycle line in the project's log (in each of the
    /// team's projects' logs for the team's set), its settings version moved when `restart`.
    async fn write_scope(
        &self,
        scope: &Scope,
        settings: &ScopeSettings,
        vars: Option<(&BTreeMap<String, String>, OffsetDateTime, &str)>,
        secrets: Vec<SecretWrite>,
        restart: bool,
        cause: String,
    ) -> Result<(), Error> {
        let at = self.now();
        let project = match scope {
            Scope::Project(key) => Some(self.settings_note(key, restart, &cause, at).await?),
            Scope::Team(_) => None,
        };
        let write = SettingsWrite {
            scope,
            read_revision: settings.revision,
            vars,
            secrets,
            project,
        };
        if !self.store.write_settings(&write).await? {
            return Err(lost_race());
        }
        if let Scope::Team(team) = scope {
            for key in self.team_projects(team).await? {
                let note = self.settings_note(&key, restart, &format!("team {cause}"), at).await?;
                // A project deleted meanwhile has no log to write to.
                self.store.note_settings(&key, &note).await?;
            }
        }
        Ok(())
    }

    async fn settings_note(
        &self,
        key: &ProjectKey,
        bump: bool,
        cause: &str,
        at: OffsetDateTime,
    ) -> Result<ProjectNote, Error> {
        let record = self.store.get_project(key, Consistency::Eventual).await?;
        Ok(ProjectNote {
            bump,
            cause: cause.to_owned(),
            state: record.and_then(|r| r.session).map(|s| s.state),
            at,
        })
    }

    async fn team_projects(&self, team: &TeamId) -> Result<Vec<ProjectKey>, Error> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.list_projects(team, cursor.as_ref(), 100).await?;
            keys.extend(
                page.items
                    .into_iter()
                    .map(|summary| ProjectKey::new(team.clone(), summary.project_id)),
            );
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Whether a sandbox of the scope runs with settings older than the project's.
    pub async fn restart_required(&self, scope: &Scope) -> Result<bool, Error> {
        let keys = match scope {
            Scope::Project(key) => vec![key.clone()],
            Scope::Team(team) => self.team_projects(team).await?,
        };
        for key in keys {
            if let Some(record) = self.store.get_project(&key, Consistency::Strong).await?
                && record
                    .session
                    .as_ref()
                    .is_some_and(|session| session.restart_required(record.settings_version))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
