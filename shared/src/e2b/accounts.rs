//! Whose key a call is made with. Sandman never assumes one global E2B key: each team may bring its own.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::api_key::ApiKey;
use super::client::E2bClient;
use super::request::{Reply, Request};
use sandman_protocol::e2b::E2bError;

/// The E2B credentials of a deployment: a key per team, and optionally a default for teams without one.
/// Every clone shares them: keys put in later (`install`, when a deployment started before its E2B
/// key was set) reach every holder at once.
#[derive(Clone, Debug)]
pub struct E2bAccounts {
    client: E2bClient,
    keys: Arc<RwLock<Keys>>,
}

#[derive(Debug, Default)]
struct Keys {
    default: Option<E2b>,
    teams: HashMap<String, E2b>,
}

impl E2bAccounts {
    pub fn new(client: E2bClient, default_key: Option<ApiKey>, team_keys: HashMap<String, ApiKey>) -> Self {
        let accounts = Self {
            client,
            keys: Arc::default(),
        };
        accounts.install(default_key, team_keys);
        accounts
    }

    /// Replaces the deployment's keys (the E2B secret read again).
    pub fn install(&self, default_key: Option<ApiKey>, team_keys: HashMap<String, ApiKey>) {
        let handle = |key| E2b::new(self.client.clone(), key);
        let keys = Keys {
            default: default_key.map(handle),
            teams: team_keys.into_iter().map(|(team, key)| (team, handle(key))).collect(),
        };
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// True once the deployment holds any E2B key (its default, or a team's).
    pub fn is_configured(&self) -> bool {
        let keys = self.read();
        keys.default.is_some() || !keys.teams.is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The team's own key, else the deployment default.
    pub fn for_team(&self, team_id: &str) -> Result<E2b, E2bError> {
        let keys = self.read();
        if let Some(e2b) = keys.teams.get(team_id) {
            return Ok(e2b.clone());
        }
        keys.default.clone().ok_or_else(|| {
            tracing::warn!(team_id, "no E2B API key for team and no default");
            E2bError::NoCredentials
        })
    }

    /// E2B as seen with `key` (a team's registered key), through the same client.
    pub fn with_key(&self, key: ApiKey) -> E2b {
        E2b::new(self.client.clone(), key)
    }

    /// Which of the deployment's keys `team` would use.
    pub fn configured_source(&self, team_id: &str) -> crate::team_keys::KeySource {
        use crate::team_keys::KeySource;
        let keys = self.read();
        match (keys.teams.contains_key(team_id), &keys.default) {
            (true, _) => KeySource::DeploymentTeam,
            (false, Some(_)) => KeySource::DeploymentDefault,
            (false, None) => KeySource::None,
        }
    }

    /// The deployment default key (e.g. to register the deployment's webhook).
    pub fn default_account(&self) -> Result<E2b, E2bError> {
        self.read().default.clone().ok_or(E2bError::NoCredentials)
    }

    /// Every distinct E2B account: the default (`None`), then each team key that differs from it
    /// and from the others (`Some(team)`), in a stable order. Listing each once sees every sandbox.
    pub fn all(&self) -> Vec<(Option<String>, E2b)> {
        let keys = self.read();
        let mut teams: Vec<_> = keys.teams.iter().collect();
        teams.sort_by(|a, b| a.0.cmp(b.0));
        let mut all: Vec<(Option<String>, E2b)> = keys.default.iter().map(|e2b| (None, e2b.clone())).collect();
        for (team, e2b) in teams {
            if !all.iter().any(|(_, seen)| seen.same_account(e2b)) {
                all.push((Some(team.clone()), e2b.clone()));
            }
        }
        all
    }

    /// `all`, each account with the teams whose own key it is: none for the deployment's default
    /// account (every team without a key of its own uses it).
    pub fn all_with_owners(&self) -> Vec<(Option<String>, E2b, Vec<String>)> {
        let all = self.all();
        let keys = self.read();
        all.into_iter()
            .map(|(label, e2b)| {
                let owners = match &label {
                    None => Vec::new(),
                    Some(_) => {
                        let mut owners: Vec<String> = keys
                            .teams
                            .iter()
                            .filter(|(_, key)| key.same_account(&e2b))
                            .map(|(team, _)| team.clone())
                            .collect();
                        owners.sort();
                        owners
                    }
                };
                (label, e2b, owners)
            })
            .collect()
    }
}

/// The first 8 bytes of SHA-256 of a key, in hex: what logs and call logs may show of a key.
pub fn key_fingerprint(key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// E2B as seen with one key. Cheap to clone; every E2B call is a method on it.
#[derive(Clone, Debug)]
pub struct E2b {
    inner: Arc<Account>,
}

#[derive(Debug)]
struct Account {
    client: E2bClient,
    key: ApiKey,
}

impl E2b {
    pub fn new(client: E2bClient, key: ApiKey) -> Self {
        Self {
            inner: Arc::new(Account { client, key }),
        }
    }

    pub(crate) async fn send(&self, request: Request<'_>) -> Result<Reply, E2bError> {
        self.inner.client.execute(&self.inner.key, request).await
    }

    /// A short, stable, non-reversible name for the key (for logs and the reconciler's labels).
    pub fn fingerprint(&self) -> String {
        key_fingerprint(self.inner.key.header_value().as_bytes())
    }

    /// Both handles use the same API key, so they see the same E2B team.
    pub fn same_account(&self, other: &E2b) -> bool {
        self.inner.key.header_value() == other.inner.key.header_value()
    }

    #[cfg(test)]
    fn key(&self) -> &ApiKey {
        &self.inner.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2b::E2bSettings;

    fn accounts(default: Option<&str>) -> E2bAccounts {
        let client = E2bClient::new(E2bSettings::default()).unwrap();
        let teams = HashMap::from([("team-a".to_owned(), ApiKey::new("key-a").unwrap())]);
        E2bAccounts::new(client, default.map(|k| ApiKey::new(k).unwrap()), teams)
    }

    #[test]
    fn all_lists_each_distinct_key_once() {
        let client = E2bClient::new(E2bSettings::default()).unwrap();
        let teams = HashMap::from([
            ("team-b".to_owned(), ApiKey::new("key-b").unwrap()),
            ("team-a".to_owned(), ApiKey::new("key-a").unwrap()),
            ("team-c".to_owned(), ApiKey::new("key-default").unwrap()),
        ]);
        let accounts = E2bAccounts::new(client, Some(ApiKey::new("key-default").unwrap()), teams);
        let labels: Vec<_> = accounts.all().into_iter().map(|(team, _)| team).collect();
        assert_eq!(labels, [None, Some("team-a".to_owned()), Some("team-b".to_owned())]);
        let c = accounts.for_team("team-c").unwrap();
        assert!(c.same_account(&accounts.default_account().unwrap()));
        assert!(!c.same_account(&accounts.for_team("team-a").unwrap()));
    }

    #[test]
    fn keys_are_never_shown() {
        let key = ApiKey::new("e2b_secret_123").unwrap();
        assert!(!format!("{key:?} {key}").contains("secret"));
        let e2b = accounts(Some("e2b_default_456")).for_team("other").unwrap();
        assert!(!format!("{e2b:?}").contains("456"));
    }

    #[test]
    fn rejects_keys_that_cannot_be_a_header() {
        assert!(ApiKey::new("").is_err());
        assert!(ApiKey::new("   ").is_err());
        assert!(ApiKey::new("line\nbreak").is_err());
    }

    #[test]
    fn team_key_wins_then_default_then_nothing() {
        let with_default = accounts(Some("key-default"));
        assert_eq!(with_default.for_team("team-a").unwrap().key().header_value(), "key-a");
        assert_eq!(
            with_default.for_team("team-b").unwrap().key().header_value(),
            "key-default"
        );
        let without = accounts(None);
        assert!(without.for_team("team-a").is_ok());
        assert!(matches!(without.for_team("team-b"), Err(E2bError::NoCredentials)));
    }
}
