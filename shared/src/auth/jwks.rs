//! The signing keys of an identity provider, from its JWKS URL: fetched on the first token that
//! needs them (once per cold start), then again only when a token names a key id we do not know,
//! and then at most once per `min_refresh` so forged key ids cannot make us hammer the provider.

use std::str::FromStr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::AuthError;

#[derive(Debug, Clone)]
pub struct JwksSettings {
    pub url: String,
    /// Least time between two fetches once keys are known.
    pub min_refresh: Duration,
    /// Least time between two attempts while no keys could be fetched yet.
    pub retry_after_failure: Duration,
    pub timeout: Duration,
    /// Keys older than this are not used: they are fetched again, and while that fails tokens
    /// that need them cannot be checked (a revoked key does not live on in a warm instance).
    pub max_age: Duration,
}

impl JwksSettings {
    pub fn new(url: String) -> Self {
        Self {
            url,
            min_refresh: Duration::from_secs(300),
            retry_after_failure: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            max_age: Duration::from_secs(3600),
        }
    }
}

struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Default)]
struct Cache {
    keys: Option<Vec<Key>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    last_error: Option<String>,
}

pub(super) struct Jwks {
    settings: JwksSettings,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    /// One fetch at a time; requests arriving meanwhile wait and reuse its result.
    refresh: tokio::sync::Mutex<()>,
}

impl Jwks {
    pub(super) fn new(settings: JwksSettings) -> Result<Jwks, AuthError> {
        crate::crypto::install();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .build()
            .map_err(|err| AuthError::KeysUnavailable(format!("HTTP client: {err}")))?;
        Ok(Jwks {
            settings,
            http,
            cache: RwLock::default(),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    pub(super) async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.cached(kid, alg) {
            return Ok(key);
        }
        let _one_fetch = self.refresh.lock().await;
        if let Some(key) = self.cached(kid, alg) {
            return Ok(key);
        }
        if self.refresh_due() {
            let fetched = self.fetch().await;
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            cache.attempted_at = Some(Instant::now());
            match fetched {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), "JWKS fetched");
                    cache.keys = Some(keys);
                    cache.fetched_at = cache.attempted_at;
                    cache.last_error = None;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "JWKS fetch failed");
                    cache.last_error = Some(err);
                }
            }
        }
        if let Some(key) = self.cached(kid, alg) {
            return Ok(key);
        }
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        match (self.fresh(&cache), &cache.last_error) {
            (false, Some(err)) => Err(AuthError::KeysUnavailable(err.clone())),
            _ => Err(AuthError::Rejected(
                "the token's signing key is not one of the provider's keys".into(),
            )),
        }
    }

    fn cached(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let usable = |k: &&Key| k.key.family() == alg.family() && k.alg.is_none_or(|a| a == alg);
        if !self.fresh(&cache) {
            return None;
        }
        let keys = cache.keys.as_ref()?;
        match kid {
            Some(kid) => keys
                .iter()
                .filter(usable)
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| k.key.clone()),
            // Without a key id, only an unambiguous key will do.
            None => {
                let mut candidates = keys.iter().filter(usable);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only.key.clone()),
                    _ => None,
                }
            }
        }
    }

    fn fresh(&self, cache: &Cache) -> bool {
        cache.keys.is_some() && cache.fetched_at.is_some_and(|at| at.elapsed() < self.settings.max_age)
    }

    fn refresh_due(&self) -> bool {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let wait = if self.fresh(&cache) {
            self.settings.min_refresh
        } else {
            self.settings.retry_after_failure
        };
        cache.attempted_at.is_none_or(|at| at.elapsed() >= wait)
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let response = self
            .http
            .get(&self.settings.url)
            .send()
            .await
            .map_err(|err| format!("GET {}: {err}", self.settings.url))?;
        if !response.status().is_success() {
            return Err(format!("GET {} answered {}", self.settings.url, response.status()));
        }
        let set: Set = response
            .json()
            .await
            .map_err(|err| format!("{} is not a JWKS: {err}", self.settings.url))?;
        // A key we cannot use (an encryption key, an unknown key type) is skipped, not fatal.
        Ok(set
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(usable_key)
            .collect())
    }
}

fn usable_key(jwk: Jwk) -> Option<Key> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        Some(alg) => Some(Algorithm::from_str(&alg.to_string()).ok()?),
        None => None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id,
        alg,
        key,
    })
}
