//! Secrets, resolved once per cold start: from one Secrets Manager secret in AWS, from the
//! environment locally. Values never reach a log line (`Secret`'s Debug is redacted).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::SecretsSource;

/// A value that must never reach a log line: `Debug` is redacted. Serializes as the plain string,
/// for the few places it is sent on (E2B's webhook registration).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secrets {
    /// The deployment's E2B key, used for teams that did not bring their own.
    #[serde(default)]
    pub e2b_api_key: Option<Secret>,
    #[serde(default)]
    pub team_e2b_api_keys: HashMap<String, Secret>,
    /// Accepted webhook signing secrets: the current one and, while rotating, the previous one.
    #[serde(default)]
    pub webhook_secrets: Vec<Secret>,
    #[serde(default)]
    pub jwt_hs256_secret: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("could not read secret {secret_id}: {message}")]
    Fetch { secret_id: String, message: String },
    #[error("secret {secret_id} is not the expected JSON object: {message}")]
    Malformed { secret_id: String, message: String },
    #[error("environment variable {name} is invalid: {message}")]
    Environment { name: &'static str, message: String },
}

impl Secrets {
    pub async fn load(source: &SecretsSource, aws: &aws_config::SdkConfig) -> Result<Secrets, SecretsError> {
        match source {
            SecretsSource::Environment => Self::from_env(|name| std::env::var(name).ok().filter(|v| !v.is_empty())),
            SecretsSource::SecretsManager { secret_id } => {
                let client = aws_sdk_secretsmanager::Client::new(aws);
                let out = client
                    .get_secret_value()
                    .secret_id(secret_id)
                    .send()
                    .await
                    .map_err(|err| SecretsError::Fetch {
                        secret_id: secret_id.clone(),
                        message: aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string(),
                    })?;
                let text = out.secret_string().unwrap_or_default();
                serde_json::from_str(text).map_err(|err| SecretsError::Malformed {
                    secret_id: secret_id.clone(),
                    message: err.to_string(),
                })
            }
        }
    }

    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Secrets, SecretsError> {
        let team_e2b_api_keys = match get("E2B_TEAM_API_KEYS") {
            Some(json) => serde_json::from_str(&json).map_err(|err| SecretsError::Environment {
                name: "E2B_TEAM_API_KEYS",
                message: format!("expected a JSON object of team id to key: {err}"),
            })?,
            None => HashMap::new(),
        };
        Ok(Secrets {
            e2b_api_key: get("E2B_API_KEY").map(Secret::new),
            team_e2b_api_keys,
            webhook_secrets: get("E2B_WEBHOOK_SECRETS")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(Secret::new)
                        .collect()
                })
                .unwrap_or_default(),
            jwt_hs256_secret: get("JWT_HS256_SECRET").map(Secret::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_deployed_json_shape() {
        let secrets: Secrets = serde_json::from_str(
            r#"{"e2bApiKey":"k","teamE2bApiKeys":{"t1":"k1"},"webhookSecrets":["new","old"],"jwtHs256Secret":"j"}"#,
        )
        .unwrap();
        assert_eq!(secrets.team_e2b_api_keys["t1"].expose(), "k1");
        assert_eq!(secrets.webhook_secrets.len(), 2);
        assert_eq!(format!("{secrets:?}").matches("***").count(), 5, "no value is printed");
    }

    #[test]
    fn environment_lists_are_split_and_bad_json_is_named() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        };
        let secrets = Secrets::from_env(env(&[("E2B_WEBHOOK_SECRETS", "a, b,")])).unwrap();
        assert_eq!(secrets.webhook_secrets, vec![Secret::new("a"), Secret::new("b")]);
        let err = Secrets::from_env(env(&[("E2B_TEAM_API_KEYS", "nope")])).unwrap_err();
        assert!(err.to_string().contains("E2B_TEAM_API_KEYS"));
    }
}
