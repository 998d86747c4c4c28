//! A project's (or a team's) env vars and secrets: one head item (`SETTINGS`: the env vars, and the
//! scope's revision, which every change moves conditionally, so two writers never both win) and
//! one item per secret (`SETTINGS#SECRET#{name}`), its value sealed (`team_keys/seal.rs`), never in
//! clear. One query reads a scope. Layout and cost: `TABLE.md`.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnConsumedCapacity, TransactWriteItem, Update,
};
use time::OffsetDateTime;

use super::accounts::{binary, bytes};
use super::expr::{n, s};
use super::items::Item;
use super::query::{number, text};
use super::sessions::EVENT_LOG_TTL;
use super::time_ms::{from_ms, to_ms, ttl_seconds};
use super::{Consistency, Store, StoreError, keys};
use crate::domain::{Actor, ProjectKey, SessionState, TeamId};
use crate::team_keys::Sealed;

/// Whose settings: a project's own, or its team's (inherited by every project of the team).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Project(ProjectKey),
    Team(TeamId),
}

impl Scope {
    pub fn team(&self) -> &TeamId {
        match self {
            Scope::Project(key) => &key.team,
            Scope::Team(team) => team,
        }
    }

    /// What a sealed value and an E2B secret name are bound to besides the team.
    pub fn label(&self) -> String {
        match self {
            Scope::Project(key) => format!("project:{}", key.project),
            Scope::Team(_) => "team".to_owned(),
        }
    }

    fn pk(&self) -> String {
        match self {
            Scope::Project(key) => keys::project_pk(key),
            Scope::Team(team) => keys::team_pk(team),
        }
    }
}

/// How a secret reaches a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// By reference: E2B's secrets API holds the value and its egress proxy fills the marker in
    /// the header rules for the secret's hosts. The value never enters the sandbox.
    Proxy,
    /// As an env var, where the E2B account has no secrets API: the value lives in the sandbox,
    /// its paused memory and its snapshots.
    Env,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Proxy => "proxy",
            Delivery::Env => "env",
        }
    }

    fn parse(text: &str) -> Option<Delivery> {
        [Delivery::Proxy, Delivery::Env]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}

/// Which revision of a secret an E2B account (named by its key's fingerprint) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub account: String,
    pub revision: u64,
}

/// A secret as stored. Its `Debug` shows no value (`Sealed`'s is a length).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSecret {
    pub name: String,
    /// `None`: named but not set (a fork's copy of its source's secret, to be set again).
    pub sealed: Option<Sealed>,
    /// The value's length in bytes (0 when not set).
    pub size: u64,
    pub last_four: Option<String>,
    pub hosts: Vec<String>,
    pub header: String,
    pub prefix: String,
    pub delivery: Delivery,
    /// Moved by every write of this secret.
    pub revision: u64,
    pub synced: Option<Synced>,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
    /// For a fork's unset copy: the project it was forked from.
    pub forked_from: Option<String>,
}

/// A scope's settings as read: `revision` 0 when nothing was ever set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeSettings {
    pub revision: u64,
    pub vars: BTreeMap<String, String>,
    /// When and by whom the env vars were last set.
    pub vars_updated: Option<(OffsetDateTime, String)>,
    pub secrets: Vec<StoredSecret>,
}

impl ScopeSettings {
    pub fn secret(&self, name: &str) -> Option<&StoredSecret> {
        self.secrets.iter().find(|secret| secret.name == name)
    }
}

/// One change of a scope's settings: one transaction, applied only if the scope is still at
/// `read_revision` (and, for a project, only while the project exists).
#[derive(Debug)]
pub struct SettingsWrite<'a> {
    pub scope: &'a Scope,
    pub read_revision: u64,
    /// New env vars, with when and by whom.
    pub vars: Option<(&'a BTreeMap<String, String>, OffsetDateTime, &'a str)>,
    pub secrets: Vec<SecretWrite>,
    /// A project scope's item: its settings version moved (`bump`) or only checked, and a line in
    /// its lifecycle log.
    pub project: Option<ProjectNote>,
}

#[derive(Debug)]
pub enum SecretWrite {
    Put(Box<StoredSecret>),
    Delete(String),
}

/// A settings change in a project's lifecycle log: who changed which names, never a value.
#[derive(Debug, Clone)]
pub struct ProjectNote {
    /// Moves the project's settings version: its sandbox needs a restart to take the change.
    pub bump: bool,
    pub cause: String,
    /// The session's state, written as `from` and `to` (nothing moved); `None` without a session.
    pub state: Option<SessionState>,
    pub at: OffsetDateTime,
}

impl Store {
    /// Every item of the scope's settings (one query; a scope holds at most a few hundred KB).
    pub async fn settings(&self, scope: &Scope, consistency: Consistency) -> Result<ScopeSettings, StoreError> {
        let mut settings = ScopeSettings::default();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(scope.pk()))
                .expression_attribute_values(":prefix", s(keys::SETTINGS_SK))
                .consistent_read(consistency == Consistency::Strong)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(super::error::dynamo)?;
            self.capacity.record_read(out.consumed_capacity());
            for item in out.items() {
                match text(item, "sk").as_deref() {
                    Some(keys::SETTINGS_SK) => read_head(item, &mut settings)?,
                    Some(sk) if sk.starts_with(keys::SECRET_PREFIX) => settings.secrets.push(stored_secret(item)?),
                    _ => {}
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(settings),
            }
        }
    }

    /// Applies `write`; `Ok(false)` when the scope moved since it was read, or the project is gone.
    pub async fn write_settings(&self, write: &SettingsWrite<'_>) -> Result<bool, StoreError> {
        let pk = write.scope.pk();
        let mut items = vec![
            TransactWriteItem::builder()
                .update(self.head_update(write, &pk)?)
                .build(),
        ];
        for secret in &write.secrets {
            items.push(match secret {
                SecretWrite::Put(secret) => {
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(secret_item(&pk, secret)))
                        .build()
                        .map_err(super::error::build)?;
                    TransactWriteItem::builder().put(put).build()
                }
                SecretWrite::Delete(name) => {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .key("pk", s(&pk))
                        .key("sk", s(keys::secret_sk(name)))
                        .build()
                        .map_err(super::error::build)?;
                    TransactWriteItem::builder().delete(delete).build()
                }
            });
        }
        if let (Scope::Project(key), Some(note)) = (write.scope, &write.project) {
            items.extend(self.note_items(key, note)?);
        }
        let units = 2.0 * items.len() as f64;
        self.transact_if(items, units).await
    }

    /// A team's settings change, in one of its projects: its settings version moved (when the
    /// change needs a restart) and a lifecycle-log line, only while the project exists.
    pub async fn note_settings(&self, key: &ProjectKey, note: &ProjectNote) -> Result<bool, StoreError> {
        self.transact_if(self.note_items(key, note)?, 4.0).await
    }

    /// E2B's account `account` holds `revision` of the secret (only while it is the secret's).
    pub async fn mark_synced(
        &self,
        scope: &Scope,
        name: &str,
        revision: u64,
        account: &str,
    ) -> Result<bool, StoreError> {
        self.update_secret(
            scope,
            name,
            revision,
            "SET e2bAccount = :account, e2bRevision = :rev",
            Some(account),
        )
        .await
    }

    /// The account has no secrets API: this revision of the secret goes as an env var.
    pub async fn mark_env_delivery(&self, scope: &Scope, name: &str, revision: u64) -> Result<bool, StoreError> {
        self.update_secret(
            scope,
            name,
            revision,
            "SET delivery = :env REMOVE e2bAccount, e2bRevision",
            None,
        )
        .await
    }

    /// Removes every settings item of the scope (a project being deleted).
    pub async fn delete_settings(&self, scope: &Scope) -> Result<(), StoreError> {
        let settings = self.settings(scope, Consistency::Strong).await?;
        let pk = scope.pk();
        let sks = settings
            .secrets
            .iter()
            .map(|secret| keys::secret_sk(&secret.name))
            .chain((settings.revision > 0).then(|| keys::SETTINGS_SK.to_owned()));
        for sk in sks {
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(sk))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(super::error::dynamo)?;
            self.capacity.record_write(out.consumed_capacity());
        }
        Ok(())
    }

    async fn update_secret(
        &self,
        scope: &Scope,
        name: &str,
        revision: u64,
        expression: &str,
        account: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(scope.pk()))
            .key("sk", s(keys::secret_sk(name)))
            .update_expression(expression)
            .condition_expression("revision = :rev")
            .expression_attribute_values(":rev", n(revision))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        request = match account {
            Some(account) => request.expression_attribute_values(":account", s(account)),
            None => request.expression_attribute_values(":env", s(Delivery::Env.as_str())),
        };
        Ok(self.conditional_update(request.send().await)?.is_some())
    }

    fn head_update(&self, write: &SettingsWrite<'_>, pk: &str) -> Result<Update, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(keys::SETTINGS_SK))
            .expression_attribute_values(":next", n(write.read_revision + 1));
        let mut sets = vec!["revision = :next".to_owned()];
        if let Some((vars, at, by)) = write.vars {
            let map = vars.iter().map(|(k, v)| (k.clone(), s(v))).collect();
            update = update
                .expression_attribute_values(":vars", AttributeValue::M(map))
                .expression_attribute_values(":at", n(to_ms(at)))
                .expression_attribute_values(":by", s(by));
            sets.push("vars = :vars, varsUpdatedAt = :at, varsUpdatedBy = :by".to_owned());
        }
        update = match write.read_revision {
            0 => update.condition_expression("attribute_not_exists(revision)"),
            read => update
                .condition_expression("revision = :read")
                .expression_attribute_values(":read", n(read)),
        };
        update
            .update_expression(format!("SET {}", sets.join(", ")))
            .build()
            .map_err(super::error::build)
    }

    fn note_items(&self, key: &ProjectKey, note: &ProjectNote) -> Result<Vec<TransactWriteItem>, StoreError> {
        let pk = keys::project_pk(key);
        let project = if note.bump {
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(keys::PROJECT_SK))
                .update_expression("ADD settingsVersion :one")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":one", n(1))
                .build()
                .map_err(super::error::build)?;
            TransactWriteItem::builder().update(update).build()
        } else {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(keys::PROJECT_SK))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(super::error::build)?;
            TransactWriteItem::builder().condition_check(check).build()
        };
        let mut line: Item = [
            ("pk", s(&pk)),
            ("sk", s(keys::next_event_sk())),
            ("at", n(to_ms(note.at))),
            ("actor", s(Actor::User.as_str())),
            ("cause", s(&note.cause)),
            // A settings change, not a transition: outbound webhooks pass over it.
            ("settings", AttributeValue::Bool(true)),
            ("expiresAt", n(ttl_seconds(note.at + EVENT_LOG_TTL))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(state) = note.state {
            line.insert("from".into(), s(state.as_str()));
            line.insert("to".into(), s(state.as_str()));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(line))
            .build()
            .map_err(super::error::build)?;
        Ok(vec![project, TransactWriteItem::builder().put(put).build()])
    }
}

fn read_head(item: &Item, settings: &mut ScopeSettings) -> Result<(), StoreError> {
    settings.revision = number(item, "revision").unwrap_or(0).max(0) as u64;
    if let Some(AttributeValue::M(vars)) = item.get("vars") {
        for (name, value) in vars {
            let value = value
                .as_s()
                .map_err(|_| StoreError::Corrupt(format!("settings: env var {name} is not a string")))?;
            settings.vars.insert(name.clone(), value.clone());
        }
    }
    if let (Some(at), Some(by)) = (number(item, "varsUpdatedAt"), text(item, "varsUpdatedBy")) {
        settings.vars_updated = Some((from_ms(at), by));
    }
    Ok(())
}

fn secret_item(pk: &str, secret: &StoredSecret) -> Item {
    let mut item: Item = [
        ("pk", s(pk)),
        ("sk", s(keys::secret_sk(&secret.name))),
        ("name", s(&secret.name)),
        ("size", n(secret.size)),
        ("hosts", AttributeValue::L(secret.hosts.iter().map(s).collect())),
        ("header", s(&secret.header)),
        ("prefix", s(&secret.prefix)),
        ("delivery", s(secret.delivery.as_str())),
        ("revision", n(secret.revision)),
        ("updatedAt", n(to_ms(secret.updated_at))),
        ("updatedBy", s(&secret.updated_by)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(sealed) = &secret.sealed {
        item.insert("wrap".into(), s(&sealed.wrap));
        item.insert("wrappedKey".into(), binary(&sealed.wrapped_key));
        item.insert("nonce".into(), binary(&sealed.nonce));
        item.insert("ciphertext".into(), binary(&sealed.ciphertext));
    }
    if let Some(last_four) = &secret.last_four {
        item.insert("lastFour".into(), s(last_four));
    }
    if let Some(synced) = &secret.synced {
        item.insert("e2bAccount".into(), s(&synced.account));
        item.insert("e2bRevision".into(), n(synced.revision));
    }
    if let Some(source) = &secret.forked_from {
        item.insert("forkedFrom".into(), s(source));
    }
    item
}

fn stored_secret(item: &Item) -> Result<StoredSecret, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("secret item: {what}"));
    let sealed = match bytes(item, "ciphertext") {
        None => None,
        Some(ciphertext) => Some(Sealed {
            wrap: text(item, "wrap").ok_or_else(|| corrupt("no wrap"))?,
            wrapped_key: bytes(item, "wrappedKey").ok_or_else(|| corrupt("no wrappedKey"))?,
            nonce: bytes(item, "nonce").ok_or_else(|| corrupt("no nonce"))?,
            ciphertext,
        }),
    };
    let hosts = match item.get("hosts") {
        Some(AttributeValue::L(hosts)) => hosts.iter().filter_map(|h| h.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    };
    let count = |name: &str| number(item, name).map(|v| v.max(0) as u64);
    Ok(StoredSecret {
        name: text(item, "name").ok_or_else(|| corrupt("no name"))?,
        sealed,
        size: count("size").unwrap_or(0),
        last_four: text(item, "lastFour"),
        hosts,
        header: text(item, "header").unwrap_or_default(),
        prefix: text(item, "prefix").unwrap_or_default(),
        delivery: text(item, "delivery")
            .as_deref()
            .and_then(Delivery::parse)
            .ok_or_else(|| corrupt("unknown delivery"))?,
        revision: count("revision").unwrap_or(0),
        synced: match (text(item, "e2bAccount"), count("e2bRevision")) {
            (Some(account), Some(revision)) => Some(Synced { account, revision }),
            _ => None,
        },
        updated_at: from_ms(number(item, "updatedAt").unwrap_or(0)),
        updated_by: text(item, "updatedBy").unwrap_or_default(),
        forked_from: text(item, "forkedFrom"),
    })
}
