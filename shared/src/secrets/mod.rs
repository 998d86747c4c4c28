//! Secrets, resolved and checked once per cold start. Deployed, they live in three Secrets Manager
//! secrets (E2B keys, webhook signing, JWT signing) and each function reads only the ones it needs
//! (`Function::reads`); locally they come from the environment. Values never reach a log line or an
//! error message: `Secret`'s Debug is redacted and every error names the field, never the value.

mod fields;
mod source;

use std::collections::HashMap;
use std::fmt;

pub use fields::{MIN_SECRET_BYTES, Problem};
pub use source::{SecretArns, SecretKind, SecretReader, SecretsManagerReader, SecretsSource};

pub use sandman_protocol::domain::Secret;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// The deployment's E2B key, used for teams that did not bring their own.
    pub e2b_api_key: Option<Secret>,
    pub team_e2b_api_keys: HashMap<String, Secret>,
    /// Accepted webhook signing secrets: the current one first, then those still accepted while rotating.
    pub webhook_secrets: Vec<Secret>,
    pub jwt_hs256_secret: Option<Secret>,
    /// HS256 secrets still accepted while tokens signed with them live out (rotation); tokens
    /// are only ever minted with `jwt_hs256_secret`.
    pub jwt_hs256_previous: Vec<Secret>,
}

/// The Lambda functions, by what each needs from the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Api,
    Webhook,
    IdleEnforcer,
    SnapshotPruner,
    Outbound,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::Api,
        Function::Webhook,
        Function::IdleEnforcer,
        Function::SnapshotPruner,
        Function::Outbound,
    ];

    /// The binary's name (template.yaml's `BuildProperties: Binary`).
    pub fn binary(self) -> &'static str {
        match self {
            Function::Api => "api",
            Function::Webhook => "webhook",
            Function::IdleEnforcer => "idle-enforcer",
            Function::SnapshotPruner => "snapshot-pruner",
            Function::Outbound => "outbound",
        }
    }

    /// The secrets this function reads; the template grants it exactly these. The webhook function
    /// never sees an E2B or JWT key: it only checks signatures and writes the table.
    pub fn reads(self) -> &'static [SecretKind] {
        match self {
            Function::Api => &[SecretKind::E2b, SecretKind::Jwt],
            Function::Webhook => &[SecretKind::Webhook],
            Function::IdleEnforcer | Function::SnapshotPruner => &[SecretKind::E2b],
            // Endpoint signing secrets are the teams' own, in their endpoint items.
            Function::Outbound => &[],
        }
    }

    pub fn calls_e2b(self) -> bool {
        self.reads().contains(&SecretKind::E2b)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.binary())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the {function} function reads a secret whose ARN is in {variable}, and {variable} is not set")]
    NoSecretArn { function: Function, variable: &'static str },
    #[error("could not read secret {secret_id}: {message}")]
    Fetch { secret_id: String, message: String },
    /// Only the position is given: serde's own message may quote part of the text.
    #[error("secret {secret_id} is not a JSON object (line {line}, column {column})")]
    NotJson {
        secret_id: String,
        line: usize,
        column: usize,
    },
    #[error("{field} in {place} {problem}")]
    Invalid {
        place: String,
        field: String,
        problem: Problem,
    },
    #[error("the {function} function calls E2B and no E2B API key is set: {hint}")]
    NoE2bKey { function: Function, hint: String },
    #[error("the webhook function has no signing secret to check deliveries with: {hint}")]
    NoWebhookSecret { hint: String },
}

impl Secrets {
    /// What a function reads at cold start: its secrets from their source, each value checked
    /// (empty is "not set"; short or placeholder values are refused), then what it cannot run without.
    pub async fn load(
        function: Function,
        source: &SecretsSource,
        reader: &impl SecretReader,
    ) -> Result<Secrets, SecretsError> {
        let secrets = match source {
            SecretsSource::Environment => fields::from_environment(|name| std::env::var(name).ok())?,
            SecretsSource::SecretsManager(arns) => {
                let mut secrets = Secrets::default();
                for &kind in function.reads() {
                    let secret_id = arns.get(kind).ok_or(SecretsError::NoSecretArn {
                        function,
                        variable: kind.arn_variable(),
                    })?;
                    let text = reader.read(secret_id).await.map_err(|message| SecretsError::Fetch {
                        secret_id: secret_id.to_owned(),
                        message,
                    })?;
                    fields::read_document(kind, secret_id, &text, &mut secrets)?;
                }
                secrets
            }
        };
        secrets.require(function, source)?;
        Ok(secrets)
    }

    fn require(&self, function: Function, source: &SecretsSource) -> Result<(), SecretsError> {
        let arn = |kind: SecretKind| match source {
            SecretsSource::SecretsManager(arns) => arns.get(kind).unwrap_or_default().to_owned(),
            SecretsSource::Environment => String::new(),
        };
        let local = matches!(source, SecretsSource::Environment);
        if function.calls_e2b() && self.e2b_api_key.is_none() && self.team_e2b_api_keys.is_empty() {
            if local {
                let hint = "set E2B_API_KEY (or E2B_TEAM_API_KEYS)".to_owned();
                return Err(SecretsError::NoE2bKey { function, hint });
            }
            // Deployed, the key is put in after the first deploy: the function starts without it,
            // reads the secret again while it is missing (`Sandman::ensure_e2b_key`), and until
            // then answers 503 `e2b_not_configured` or skips its ticks.
            tracing::warn!(
                %function,
                secret = arn(SecretKind::E2b),
                "no E2B API key is set yet: put it in the field e2bApiKey of this secret (docs/deploy.md, \"Set the E2B key\")"
            );
        }
        if function == Function::Webhook && self.webhook_secrets.is_empty() {
            let hint = if local {
                "set E2B_WEBHOOK_SECRETS".to_owned()
            } else {
                format!("set webhookSecret in secret {}", arn(SecretKind::Webhook))
            };
            return Err(SecretsError::NoWebhookSecret { hint });
        }
        Ok(())
    }

    /// The deployed E2B secret read again, checked as at a cold start: its default key and
    /// teams' keys (both empty while the operator has not put a key in).
    pub async fn read_e2b(
        arns: &SecretArns,
        reader: &impl SecretReader,
    ) -> Result<(Option<Secret>, HashMap<String, Secret>), SecretsError> {
        let secret_id = arns.get(SecretKind::E2b).ok_or(SecretsError::NoSecretArn {
            function: Function::Api,
            variable: SecretKind::E2b.arn_variable(),
        })?;
        let text = reader.read(secret_id).await.map_err(|message| SecretsError::Fetch {
            secret_id: secret_id.to_owned(),
            message,
        })?;
        let mut secrets = Secrets::default();
        fields::read_document(SecretKind::E2b, secret_id, &text, &mut secrets)?;
        Ok((secrets.e2b_api_key, secrets.team_e2b_api_keys))
    }

    /// The local environment's variables, parsed but not checked (`make dev` fills in defaults).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Secrets, SecretsError> {
        fields::parse_environment(get)
    }
}

#[cfg(test)]
mod tests;
