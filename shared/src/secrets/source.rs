//! Where deployed secrets are read from: Secrets Manager in Lambda; anything that maps a secret id
//! to its text in tests (the start-up tests feed the secrets exactly as template.yaml creates them).

use std::collections::HashMap;
use std::future::Future;

pub trait SecretReader {
    /// The secret's text. The error is shown to the operator: it must not carry the value.
    fn read(&self, secret_id: &str) -> impl Future<Output = Result<String, String>> + Send;
}

#[derive(Clone)]
pub struct SecretsManagerReader(aws_sdk_secretsmanager::Client);

impl SecretsManagerReader {
    /// `function`'s reader (its calls recorded under its name when `SANDMAN_RECORD_AWS_CALLS` is set).
    pub fn new(aws: &aws_types::SdkConfig, function: &'static str) -> Self {
        let mut config = aws_sdk_secretsmanager::config::Builder::from(aws);
        if let Some(recorder) = crate::aws::CallRecorder::from_env(function) {
            config = config.interceptor(recorder);
        }
        Self(aws_sdk_secretsmanager::Client::from_conf(config.build()))
    }
}

impl SecretReader for SecretsManagerReader {
    async fn read(&self, secret_id: &str) -> Result<String, String> {
        let out = self
            .0
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|err| aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string())?;
        out.secret_string()
            .map(str::to_owned)
            .ok_or_else(|| "the secret has no SecretString".to_owned())
    }
}

/// Secrets by id, held in memory.
impl SecretReader for HashMap<String, String> {
    async fn read(&self, secret_id: &str) -> Result<String, String> {
        self.get(secret_id).cloned().ok_or_else(|| "no such secret".to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsSource {
    /// Local runs and tests: `E2B_API_KEY`, `E2B_TEAM_API_KEYS`, `E2B_WEBHOOK_SECRETS`, `JWT_HS256_SECRET`.
    Environment,
    /// Deployed: Secrets Manager secrets, one per concern; a function is given the ARNs of those it reads.
    SecretsManager(SecretArns),
}

/// The ARNs in `SANDMAN_E2B_SECRET_ARN`, `SANDMAN_WEBHOOK_SECRET_ARN`, `SANDMAN_JWT_SECRET_ARN`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretArns {
    pub e2b: Option<String>,
    pub webhook: Option<String>,
    pub jwt: Option<String>,
}

impl SecretArns {
    pub fn get(&self, kind: SecretKind) -> Option<&str> {
        match kind {
            SecretKind::E2b => self.e2b.as_deref(),
            SecretKind::Webhook => self.webhook.as_deref(),
            SecretKind::Jwt => self.jwt.as_deref(),
        }
    }
}

/// The deployed secrets, one per concern, so IAM can grant each function only what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// `{"e2bApiKey": "...", "teamE2bApiKeys": {"team": "..."}}`
    E2b,
    /// `{"webhookSecret": "...", "previousWebhookSecrets": ["..."]}`
    Webhook,
    /// `{"jwtHs256Secret": "...", "previousJwtHs256Secrets": ["..."]}`
    Jwt,
}

impl SecretKind {
    pub const ALL: [SecretKind; 3] = [SecretKind::E2b, SecretKind::Webhook, SecretKind::Jwt];

    /// The environment variable that holds this secret's ARN (template.yaml sets it per function).
    pub fn arn_variable(self) -> &'static str {
        match self {
            SecretKind::E2b => "SANDMAN_E2B_SECRET_ARN",
            SecretKind::Webhook => "SANDMAN_WEBHOOK_SECRET_ARN",
            SecretKind::Jwt => "SANDMAN_JWT_SECRET_ARN",
        }
    }
}
