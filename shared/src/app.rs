//! Everything a function needs, built once per cold start and shared by every invocation.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::e2b::{ApiKey, E2bAccounts, E2bClient, E2bError, E2bSettings};
use crate::secrets::{Secrets, SecretsError};
use crate::store::Store;
use crate::workspace::ActivityThrottle;

#[derive(Clone)]
pub struct Sandman {
    pub store: Store,
    pub e2b: E2bAccounts,
    pub config: Arc<Config>,
    pub secrets: Arc<Secrets>,
    pub clock: Clock,
    pub(crate) activity: Arc<ActivityThrottle>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("E2B client: {0}")]
    E2b(#[from] E2bError),
}

impl Sandman {
    /// Config from the environment, AWS clients from the default chain, secrets from their source.
    pub async fn from_env() -> Result<Sandman, StartupError> {
        let config = Config::from_env()?;
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(crate::tls::aws_http_client())
            .load()
            .await;
        let secrets = Secrets::load(&config.secrets, &aws).await?;
        let store = Store::new(aws_sdk_dynamodb::Client::new(&aws), config.table.clone());
        Self::new(store, config, secrets, Clock::System)
    }

    pub fn new(store: Store, config: Config, secrets: Secrets, clock: Clock) -> Result<Sandman, StartupError> {
        let client = E2bClient::new(E2bSettings {
            base_url: config.e2b_api_url.clone(),
            ..E2bSettings::default()
        })?;
        let default_key = secrets
            .e2b_api_key
            .as_ref()
            .map(|k| ApiKey::new(k.expose()))
            .transpose()?;
        let team_keys = secrets
            .team_e2b_api_keys
            .iter()
            .map(|(team, key)| Ok((team.clone(), ApiKey::new(key.expose())?)))
            .collect::<Result<HashMap<_, _>, E2bError>>()?;
        Ok(Sandman {
            store,
            e2b: E2bAccounts::new(client, default_key, team_keys),
            config: Arc::new(config),
            secrets: Arc::new(secrets),
            clock,
            activity: Arc::default(),
        })
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}
