//! The AWS SDK's configuration, read from what Lambda puts in a function's environment: the region,
//! the execution role's credentials, and `AWS_ENDPOINT_URL[_<SERVICE>]` (DynamoDB Local and tests).
//! It goes over reqwest, the HTTP client the functions carry for E2B anyway.
//!
//! aws-config's default chain (profile files, SSO, STS web identity, ECS and IMDS providers) and the
//! SDK's own hyper client (with HTTP/2) are a second copy of what Lambda never needs; leaving them
//! out keeps every function binary under its size limit. Operator commands run on a developer's
//! machine get the full chain back through the `credential-chain` feature when no keys are in the
//! environment.

mod http;
mod record;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
pub use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

pub use http::ReqwestHttpClient;
pub use record::{CallRecorder, RECORD_CALLS};

/// `function`'s DynamoDB client over `aws` (recorded when `SANDMAN_RECORD_AWS_CALLS` is set).
/// A call that hangs is cut: each attempt after 5 s, the call with its retries after 15 s, so a
/// request fails as `storage_unavailable` well inside the API's 25 s instead of at the Lambda
/// timeout (DynamoDB answers in milliseconds; E2B calls keep their own deadline).
pub fn dynamodb_client(aws: &SdkConfig, function: &'static str) -> aws_sdk_dynamodb::Client {
    let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(std::time::Duration::from_secs(5))
        .operation_timeout(std::time::Duration::from_secs(15))
        .build();
    let mut config = aws_sdk_dynamodb::config::Builder::from(aws).timeout_config(timeouts);
    if let Some(recorder) = CallRecorder::from_env(function) {
        config = config.interceptor(recorder);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// `client` with `function`'s recorder added (when recording): the local stack and the soak
/// build one DynamoDB client and give each function its own recorded copy.
pub fn recorded_dynamodb(client: &aws_sdk_dynamodb::Client, function: &'static str) -> aws_sdk_dynamodb::Client {
    match CallRecorder::from_env(function) {
        Some(recorder) => {
            aws_sdk_dynamodb::Client::from_conf(client.config().to_builder().interceptor(recorder).build())
        }
        None => client.clone(),
    }
}

/// `function`'s KMS client over `aws` (recorded when `SANDMAN_RECORD_AWS_CALLS` is set).
pub fn kms_client(aws: &SdkConfig, function: &'static str) -> aws_sdk_kms::Client {
    let mut config = aws_sdk_kms::config::Builder::from(aws);
    if let Some(recorder) = CallRecorder::from_env(function) {
        config = config.interceptor(recorder);
    }
    aws_sdk_kms::Client::from_conf(config.build())
}

/// What every AWS client a function builds comes from.
pub async fn aws_sdk_config() -> SdkConfig {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    #[cfg(feature = "credential-chain")]
    if env_credentials(&env).is_none() {
        return aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(ReqwestHttpClient::default())
            .load()
            .await;
    }
    from_env(&env)
}

/// The configuration `aws_sdk_config` builds in Lambda, from `env` instead of the process's
/// environment (tests point it at DynamoDB Local and stand-ins of the other services).
pub fn sdk_config_from(env: &dyn Fn(&str) -> Option<String>) -> SdkConfig {
    from_env(env)
}

fn from_env(env: &dyn Fn(&str) -> Option<String>) -> SdkConfig {
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region.map(Region::new))
        .http_client(ReqwestHttpClient::default())
        .service_config(EndpointUrls::read(env));
    if let Some(credentials) = env_credentials(env) {
        builder = builder.credentials_provider(SharedCredentialsProvider::new(credentials));
    }
    if let Some(url) = env(ENDPOINT_URL) {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

/// The execution role's credentials, as Lambda sets them for the whole life of an instance.
fn env_credentials(env: &dyn Fn(&str) -> Option<String>) -> Option<Credentials> {
    let key = env("AWS_ACCESS_KEY_ID")?;
    let secret = env("AWS_SECRET_ACCESS_KEY")?;
    Some(Credentials::new(
        key,
        secret,
        env("AWS_SESSION_TOKEN"),
        None,
        "environment",
    ))
}

const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// `AWS_ENDPOINT_URL_<SERVICE>` for each service, as the SDK names them (`DynamoDB Streams` is
/// `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`), read once. Any other setting the SDK asks for is unset.
#[derive(Debug)]
struct EndpointUrls(Vec<(String, String)>);

impl EndpointUrls {
    fn read(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let services = ["DynamoDB", "DynamoDB Streams", "KMS", "Secrets Manager", "SQS"];
        let urls = services
            .iter()
            .filter_map(|service| {
                let name = format!("{ENDPOINT_URL}_{}", service.to_uppercase().replace(' ', "_"));
                env(&name).map(|url| ((*service).to_owned(), url))
            })
            .collect();
        Self(urls)
    }
}

impl LoadServiceConfig for EndpointUrls {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != ENDPOINT_URL {
            return None;
        }
        self.0
            .iter()
            .find(|(service, _)| service == key.service_id())
            .map(|(_, url)| url.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> SdkConfig {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_env(&move |name| vars.get(name).cloned())
    }

    /// The endpoint a client of `service` gets, as the generated clients look it up.
    fn endpoint(aws: &SdkConfig, service: &str) -> Option<String> {
        let key = ServiceConfigKey::builder()
            .service_id(service)
            .env(ENDPOINT_URL)
            .profile("endpoint_url")
            .build()
            .unwrap();
        aws.service_config()
            .and_then(|urls| urls.load_config(key))
            .or_else(|| aws.endpoint_url().map(str::to_owned))
    }

    #[test]
    fn region_credentials_and_endpoints_come_from_the_environment() {
        let aws = config(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "http://127.0.0.1:8001"),
        ]);
        assert_eq!(aws.region().map(Region::as_ref), Some("eu-west-1"));
        assert!(aws.credentials_provider().is_some());
        assert_eq!(endpoint(&aws, "DynamoDB").as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(
            endpoint(&aws, "DynamoDB Streams").as_deref(),
            Some("http://127.0.0.1:8001")
        );
        assert_eq!(endpoint(&aws, "KMS"), None, "only the service named gets the endpoint");
    }

    #[test]
    fn the_global_endpoint_and_default_region_are_fallbacks() {
        let aws = config(&[
            ("AWS_DEFAULT_REGION", "us-east-2"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ]);
        assert_eq!(aws.region().map(Region::as_ref), Some("us-east-2"));
        assert_eq!(endpoint(&aws, "KMS").as_deref(), Some("http://127.0.0.1:4566"));
    }
}
