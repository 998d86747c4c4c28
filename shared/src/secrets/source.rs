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
