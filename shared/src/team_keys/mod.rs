//! Teams' own E2B keys: registered by a team admin through the API, stored sealed (`seal.rs`) in
//! the team's account record, decrypted only in memory and kept there for a bounded time.
//!
//! Which key a team's E2B calls use, first match wins: the team's registered key, the team's key
//! in the deployment secret (`teamE2bApiKeys`), the deployment's default key (`e2bApiKey`).

mod account;
mod seal;
mod switch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

pub use account::E2bAccount;
pub use seal::{KeyWrapper, SealError, Sealed, SealedFor, parse_master_key};

use crate::Sandman;
use crate::domain::TeamId;
use crate::e2b::{ApiKey, E2b, E2bError};
use crate::error::Error;
use crate::store::{Consistency, Store, TeamKeyRecord};

/// "This team has no registered key" is remembered for at most this long, so a key registered on
/// one instance is used by every instance within it (a key itself is kept for the configured TTL).
const NO_KEY_TTL: Duration = Duration::from_secs(30);

/// The registered keys of an instance: the wrapper that opens them and what it opened lately.
pub struct TeamKeys {
    wrapper: KeyWrapper,
    ttl: Duration,
    cache: Mutex<HashMap<TeamId, Cached>>,
}

struct Cached {
    /// `None`: the team has no registered key (also worth remembering: most teams have none).
    key: Option<ApiKey>,
    at: Instant,
}

impl TeamKeys {
    pub fn new(wrapper: KeyWrapper, ttl: Duration) -> Arc<TeamKeys> {
        Arc::new(TeamKeys {
            wrapper,
            ttl,
            cache: Mutex::default(),
        })
    }

    pub fn wrapper(&self) -> &KeyWrapper {
        &self.wrapper
    }

    /// The team's registered key: from memory while fresh, else read and opened.
    pub async fn key_for(&self, store: &Store, team: &TeamId) -> Result<Option<ApiKey>, Error> {
        if let Some(cached) = self.cached(team) {
            return Ok(cached);
        }
        let key = match store.team_key(team, Consistency::Eventual).await? {
            None => None,
            Some(record) => Some(self.open(team, &record).await?),
        };
        self.remember(team, key.clone());
        Ok(key)
    }

    async fn open(&self, team: &TeamId, record: &TeamKeyRecord) -> Result<ApiKey, Error> {
        let secret = self.wrapper.open(team.as_str(), &record.sealed).await.map_err(|err| {
            tracing::error!(team = %team, error = %err, "a registered E2B key could not be opened");
            E2bError::Unavailable {
                attempts: 1,
                detail: "the team's E2B key could not be decrypted".to_owned(),
            }
        })?;
        Ok(ApiKey::new(secret.expose())?)
    }

    fn cached(&self, team: &TeamId) -> Option<Option<ApiKey>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(team)
            .filter(|cached| cached.at.elapsed() < self.ttl_of(cached))
            .map(|cached| cached.key.clone())
    }

    fn ttl_of(&self, cached: &Cached) -> Duration {
        match cached.key {
            Some(_) => self.ttl,
            None => self.ttl.min(NO_KEY_TTL),
        }
    }

    /// The team's key from a record already read (the reconciler's listing), or from memory.
    pub async fn key_from_record(&self, team: &TeamId, record: &TeamKeyRecord) -> Result<ApiKey, Error> {
        if let Some(Some(key)) = self.cached(team) {
            return Ok(key);
        }
        let key = self.open(team, record).await?;
        self.remember(team, Some(key.clone()));
        Ok(key)
    }

    pub(crate) fn remember(&self, team: &TeamId, key: Option<ApiKey>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, cached| cached.at.elapsed() < self.ttl_of(cached));
        cache.insert(
            team.clone(),
            Cached {
                key,
                at: Instant::now(),
            },
        );
    }
}

/// What `GET /v1/team/e2b` shows: never more of a key than its last four characters.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamKeyStatus {
    pub registered: Option<RegisteredKey>,
    /// Which key the team's E2B calls use now.
    pub in_use: KeySource,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredKey {
    pub last_four: String,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Registered,
    DeploymentTeam,
    DeploymentDefault,
    None,
}

impl Sandman {
    /// The E2B account of `team`: its registered key, its configured key, or the default.
    pub async fn e2b_for_team(&self, team: &TeamId) -> Result<E2b, Error> {
        if let Some(keys) = &self.team_keys
            && let Some(key) = keys.key_for(&self.store, team).await?
        {
            return Ok(self.e2b.with_key(key));
        }
        // A deployment started without its E2B key finds it here once it is put in.
        self.ensure_e2b_key().await;
        Ok(self.e2b.for_team(team.as_str())?)
    }

    /// Checks the key with E2B (one page of one sandbox: a 401 means E2B refuses it), seals it
    /// and stores it. A key E2B refuses is not stored; nor is one E2B could not be asked about, nor
    /// one of another E2B account while the team holds sandboxes or snapshots in its current one.
    pub async fn register_team_key(&self, team: &TeamId, plaintext: &str) -> Result<TeamKeyStatus, Error> {
        let keys = self.team_keys.as_ref().ok_or_else(not_enabled)?;
        let invalid = |message: &str| Error::Invalid {
            field: "apiKey",
            message: message.to_owned(),
        };
        let plaintext = plaintext.trim();
        if !(8..=256).contains(&plaintext.len()) {
            return Err(invalid("an E2B API key is 8 to 256 characters"));
        }
        let key = ApiKey::new(plaintext).map_err(|_| invalid("an E2B API key is visible ASCII"))?;
        let account = self.e2b.with_key(key.clone());
        match account.check_key().await {
            Ok(()) => {}
            Err(E2bError::Unauthorized) => return Err(invalid("E2B refused this key")),
            Err(err) => return Err(err.into()),
        }
        self.check_account_switch(team, Some(&account), "the new key cannot reach")
            .await?;
        let sealed = keys.wrapper.seal(team.as_str(), plaintext).await.map_err(|err| {
            tracing::error!(team = %team, error = %err, "sealing an E2B key failed");
            Error::E2b(E2bError::Unavailable {
                attempts: 1,
                detail: "the key could not be encrypted".to_owned(),
            })
        })?;
        let record = TeamKeyRecord {
            sealed,
            last_four: last_four(plaintext),
            updated_at: self.now(),
        };
        self.store.put_team_key(team, &record).await?;
        keys.remember(team, Some(key));
        tracing::info!(team = %team, "team E2B key registered");
        self.team_key_status(team).await
    }

    pub async fn team_key_status(&self, team: &TeamId) -> Result<TeamKeyStatus, Error> {
        let registered = match &self.team_keys {
            Some(_) => self.store.team_key(team, Consistency::Strong).await?,
            None => None,
        };
        let in_use = match (&registered, self.e2b.configured_source(team.as_str())) {
            (Some(_), _) => KeySource::Registered,
            (None, source) => source,
        };
        Ok(TeamKeyStatus {
            registered: registered.map(|record| RegisteredKey {
                last_four: record.last_four,
                updated_at: record.updated_at,
            }),
            in_use,
        })
    }

    /// Forgets the team's registered key; its calls fall back to the deployment's keys, unless
    /// those cannot reach the sandboxes and snapshots the team holds. Other instances stop using
    /// it within the cache's time to live. Without a registered key nothing changes: the account
    /// record may still hold the E2B team of a configured key's webhook.
    pub async fn forget_team_key(&self, team: &TeamId) -> Result<bool, Error> {
        let keys = self.team_keys.as_ref().ok_or_else(not_enabled)?;
        if self.store.team_key(team, Consistency::Strong).await?.is_none() {
            keys.remember(team, None);
            return Ok(false);
        }
        let fallback = self.e2b.for_team(team.as_str()).ok();
        let unreachable = match fallback {
            Some(_) => "the deployment's key for this team cannot reach",
            None => "no other key can reach (the deployment has none for this team)",
        };
        self.check_account_switch(team, fallback.as_ref(), unreachable).await?;
        let existed = self.store.delete_team_key(team).await?;
        keys.remember(team, None);
        Ok(existed)
    }
}

fn not_enabled() -> Error {
    Error::Conflict(
        "this deployment does not accept teams' own E2B keys (SANDMAN_TEAM_KEYS_WRAP is not set)".to_owned(),
    )
}

/// The last four characters: enough to tell keys apart, never enough to use one.
fn last_four(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_last_four_characters_are_kept() {
        assert_eq!(super::last_four("e2b_abcdef123456"), "3456");
        assert_eq!(super::last_four("abc"), "abc");
    }
}
