//! Everything a function needs, built once per cold start and shared by every invocation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;

use crate::aws::aws_sdk_config;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, KeyWrapConfig, SecretsSource};
use crate::e2b::{ApiKey, E2bAccounts, E2bClient, E2bError, E2bSettings};
use crate::policy::Rules;
use crate::port::AccountHandles;
use crate::secrets::{Function, SecretReader, Secrets, SecretsError, SecretsManagerReader};
use crate::store::Store;
use crate::team_keys::{KeyWrapper, TeamKeys};
use crate::workspace::ActivityThrottle;

#[derive(Clone)]
pub struct Sandman {
    pub store: Store,
    pub e2b: E2bAccounts,
    pub config: Arc<Config>,
    pub secrets: Arc<Secrets>,
    /// Teams' registered E2B keys; `None` when the deployment does not accept them.
    pub team_keys: Option<Arc<TeamKeys>>,
    /// Seals and opens outbound endpoints' signing secrets (the same wrapper as team keys, each
    /// value bound to its endpoint); only the API and the outbound function hold it.
    pub endpoint_seal: Option<KeyWrapper>,
    pub clock: Clock,
    pub(crate) activity: Arc<ActivityThrottle>,
    /// The protocol's rules, from `config`.
    pub(crate) rules: Arc<Rules>,
    /// The E2B accounts operations were handed, by name.
    pub(crate) accounts: AccountHandles,
    /// Reads the E2B secret again while the deployment has no E2B key (`ensure_e2b_key`).
    e2b_key_reload: Option<Arc<KeyReload>>,
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
    /// What each function's `main` calls: config from the environment, AWS clients from the
    /// environment Lambda sets (`aws`), then `start`.
    pub async fn from_env(function: Function) -> Result<Sandman, StartupError> {
        let config = Config::from_env()?;
        let aws = aws_sdk_config().await;
        Self::cold_start(function, config, &aws).await
    }

    /// `from_env` once the configuration is read: the function's clients over `aws` (each
    /// recorded under the function's name when `SANDMAN_RECORD_AWS_CALLS` is set), its secrets
    /// from Secrets Manager, then `start`. Tests run it against stand-ins of the AWS services.
    pub async fn cold_start(
        function: Function,
        config: Config,
        aws: &crate::aws::SdkConfig,
    ) -> Result<Sandman, StartupError> {
        let label = function.binary();
        let store = Store::new(crate::aws::dynamodb_client(aws, label), config.table.clone());
        let kms = crate::aws::kms_client(aws, label);
        let mut sandman = Self::start(function, config, &SecretsManagerReader::new(aws, label), store).await?;
        sandman.attach_kms(kms);
        Ok(sandman)
    }

    /// For operator commands run outside Lambda (`sandman-local register-account-webhook`): the
    /// configuration from the environment, these secrets, and the AWS clients of the caller.
    pub async fn for_operator(secrets: Secrets) -> Result<Sandman, StartupError> {
        let config = Config::from_env()?;
        let aws = aws_sdk_config().await;
        let store = Store::new(aws_sdk_dynamodb::Client::new(&aws), config.table.clone());
        let mut sandman = Self::new(store, config, secrets, Clock::System)?;
        sandman.attach_kms(aws_sdk_kms::Client::new(&aws));
        Ok(sandman)
    }

    /// The cold start once the environment is read: the function's own secrets, checked, then the
    /// clients. Tests run it with the secrets exactly as template.yaml creates them.
    pub async fn start<R>(function: Function, config: Config, reader: &R, store: Store) -> Result<Sandman, StartupError>
    where
        R: SecretReader + Clone + Send + Sync + 'static,
    {
        let secrets = Secrets::load(function, &config.secrets, reader).await?;
        let arns = match &config.secrets {
            SecretsSource::SecretsManager(arns) if function.calls_e2b() => Some(arns.clone()),
            _ => None,
        };
        let mut sandman = Self::new(store, config, secrets, Clock::System)?;
        if !function.calls_e2b() {
            // The webhook function never holds a way to open a team's key.
            sandman.team_keys = None;
        }
        if let Some(arns) = arns {
            let reader = reader.clone();
            sandman.e2b_key_reload = Some(Arc::new(KeyReload {
                read: Box::new(move || {
                    let (reader, arns) = (reader.clone(), arns.clone());
                    Box::pin(async move { Secrets::read_e2b(&arns, &reader).await })
                }),
                last_try: Mutex::new(None),
            }));
        }
        match function {
            // It signs every delivery with a sealed secret: without a wrapper it could sign none.
            Function::Outbound if sandman.endpoint_seal.is_none() => {
                return Err(StartupError::Config(ConfigError::MissingFor {
                    name: "SANDMAN_TEAM_KEYS_WRAP",
                    because: "by the outbound function: endpoints' signing secrets are sealed (kms when deployed)",
                }));
            }
            Function::Api | Function::Outbound => {}
            _ => sandman.endpoint_seal = None,
        }
        Ok(sandman)
    }

    /// True when the deployment holds an E2B key. A deployment started before its key was set
    /// reads the E2B secret again, at most once a minute per instance while the key is missing
    /// (one Secrets Manager call; none at all once a key is there), so a key put in later is used
    /// without a redeploy.
    pub async fn ensure_e2b_key(&self) -> bool {
        if self.e2b.is_configured() {
            return true;
        }
        let Some(reload) = &self.e2b_key_reload else {
            return false;
        };
        {
            let now = self.now();
            let mut last_try = reload.last_try.lock().unwrap_or_else(PoisonError::into_inner);
            if last_try.is_some_and(|at| now - at < E2B_KEY_RETRY) {
                return false;
            }
            *last_try = Some(now);
        }
        match (reload.read)().await {
            Ok((default, teams)) => {
                let default = default.and_then(|key| ApiKey::new(key.expose()).ok());
                let teams = teams
                    .into_iter()
                    .filter_map(|(team, key)| Some((team, ApiKey::new(key.expose()).ok()?)))
                    .collect();
                self.e2b.install(default, teams);
                if self.e2b.is_configured() {
                    tracing::info!("the E2B key is set: read from the E2B secret");
                }
            }
            Err(err) => tracing::warn!(error = %err, "reading the E2B secret again failed"),
        }
        self.e2b.is_configured()
    }

    /// With `SANDMAN_TEAM_KEYS_WRAP=kms`, team keys open through this client (built from the
    /// function's AWS configuration, once per cold start).
    pub fn attach_kms(&mut self, client: aws_sdk_kms::Client) {
        let crate::config::KeyWrapConfig::Kms { key_id } = &self.config.team_keys.wrap else {
            return;
        };
        let wrapper = KeyWrapper::Kms {
            client,
            key_id: key_id.clone(),
        };
        if self.team_keys.is_some() {
            self.team_keys = Some(TeamKeys::new(wrapper.clone(), self.config.team_keys.cache_ttl));
        }
        if self.endpoint_seal.is_some() {
            self.endpoint_seal = Some(wrapper);
        }
    }

    pub fn new(store: Store, config: Config, secrets: Secrets, clock: Clock) -> Result<Sandman, StartupError> {
        let client = E2bClient::new(E2bSettings {
            base_url: config.e2b_api_url.clone(),
            call_deadline: config.e2b_call_deadline,
            allow_http_loopback: config.e2b_allow_http_loopback,
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
        let wrapper = match &config.team_keys.wrap {
            KeyWrapConfig::Off => None,
            KeyWrapConfig::Local(master) => Some(KeyWrapper::Local(master.clone())),
            // A client without credentials until `attach_kms` gives the function's own: a KMS call
            // before then fails (closed), it never falls back to another key.
            KeyWrapConfig::Kms { key_id } => Some(KeyWrapper::Kms {
                client: unconfigured_kms(),
                key_id: key_id.clone(),
            }),
        };
        let registered = wrapper
            .clone()
            .map(|wrapper| TeamKeys::new(wrapper, config.team_keys.cache_ttl));
        let rules = Rules {
            stuck_after: config.enforcer.stuck_after,
            orphan_policy: config.enforcer.orphan_policy,
            max_failures: config.enforcer.max_failures,
            session_caps: config.session_cap.clone(),
            heartbeat_interval_max: config.heartbeat_interval_max,
            live_per_team: config.quotas.live_sandboxes_per_team,
            snapshots_per_team: config.quotas.snapshots_per_team,
            pins_per_project: config.quotas.pinned_snapshots_per_project,
        };
        Ok(Sandman {
            store,
            team_keys: registered,
            endpoint_seal: wrapper,
            e2b: E2bAccounts::new(client, default_key, team_keys),
            config: Arc::new(config),
            secrets: Arc::new(secrets),
            clock,
            activity: Arc::default(),
            rules: Arc::new(rules),
            accounts: AccountHandles::default(),
            e2b_key_reload: None,
        })
    }

    /// This `Sandman` as `function`'s instance: the same configuration, clients and caches, its
    /// DynamoDB calls recorded under the function's name when `SANDMAN_RECORD_AWS_CALLS` is set.
    /// The local stack and the soak build every function's core this way.
    pub fn as_function(&self, function: Function) -> Sandman {
        Sandman {
            store: self.store.recorded_as(function.binary()),
            ..self.clone()
        }
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// The longest one claimed item of a scheduled tick can take: a snapshot and a pause, each one
    /// E2B call, and the writes after them.
    pub fn worst_item(&self) -> std::time::Duration {
        self.config.e2b_call_deadline * 2 + crate::deadline::LAMBDA_MARGIN
    }

    /// Until when a scheduled tick that may run for `tick` may claim new work: its own deadline,
    /// or earlier when its invocation's deadline leaves less than one worst-case item after it.
    pub fn claiming_until(&self, tick: std::time::Duration) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let own = now + tick;
        match crate::deadline::Deadline::current() {
            Some(invocation) => own.min(invocation.instant().checked_sub(self.worst_item()).unwrap_or(now)),
            None => own,
        }
    }
}

/// How long an instance without an E2B key waits before reading the E2B secret again.
const E2B_KEY_RETRY: time::Duration = time::Duration::seconds(60);

type E2bKeys = (Option<crate::secrets::Secret>, HashMap<String, crate::secrets::Secret>);

struct KeyReload {
    read: Box<dyn Fn() -> BoxFuture<'static, Result<E2bKeys, SecretsError>> + Send + Sync>,
    last_try: Mutex<Option<time::OffsetDateTime>>,
}

/// What a scheduled function does when the deployment has no E2B key yet: nothing, but say so
/// in the log and in one metric (`E2bKeyMissing`, alarmed), and succeed, so no tick is
/// dead-lettered while the operator has not put the key in.
pub fn skip_without_e2b_key(function: &str) -> serde_json::Value {
    tracing::warn!(
        function,
        "skipped: no E2B API key is set (field e2bApiKey of the stack's E2B secret, output E2bSecretArn)"
    );
    key_missing_metrics(function).emit();
    serde_json::json!({ "skipped": "no E2B API key is set" })
}

/// The metrics of a tick skipped for want of an E2B key.
pub fn key_missing_metrics(function: &str) -> crate::telemetry::Metrics {
    let mut metrics = crate::telemetry::Metrics::new(function);
    metrics.count("E2bKeyMissing", 1);
    metrics
}

fn unconfigured_kms() -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .build(),
    )
}
