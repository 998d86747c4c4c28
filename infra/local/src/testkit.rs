//! Test helpers: a fresh table in DynamoDB Local, made from `template.yaml`, for each test.
//!
//! `make test` starts DynamoDB Local and exports `AWS_ENDPOINT_URL_DYNAMODB` (and test
//! credentials); these helpers panic with a clear message when it is not running.

use std::sync::OnceLock;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

use crate::table::create_table;

/// A table of its own for one test: same keys, indexes and TTL as the deployed table.
#[derive(Debug, Clone)]
pub struct TestTable {
    pub client: Client,
    pub name: String,
}

impl TestTable {
    /// Creates `test-<ulid>` in DynamoDB Local. Panics when DynamoDB Local is not reachable.
    pub async fn create() -> TestTable {
        let client = local_client();
        let name = format!("test-{}", ulid::Ulid::new().to_string().to_lowercase());
        if let Err(error) = create_table(&client, &name).await {
            panic!(
                "creating table {name} in DynamoDB Local ({}) failed: {error}",
                local_endpoint()
            );
        }
        TestTable { client, name }
    }

    /// Every item of the table, sorted by key, to compare before and after something that must
    /// change nothing. A test-only scan: the table holds one test's few items.
    pub async fn contents(&self) -> Vec<String> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scanning the test table");
            for item in page.items() {
                let sorted: std::collections::BTreeMap<_, _> = item.iter().collect();
                items.push(format!("{sorted:?}"));
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        items.sort();
        items
    }
}

/// A DynamoDB client for DynamoDB Local, from `AWS_ENDPOINT_URL_DYNAMODB`.
///
/// The configuration is read once per process. Each call builds its own client (and so its own
/// connection pool): a pool must not outlive the Tokio runtime it was made on, and every
/// `#[tokio::test]` has its own runtime.
pub fn local_client() -> Client {
    static CONFIG: OnceLock<aws_sdk_dynamodb::Config> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let credentials = Credentials::new(
            env("AWS_ACCESS_KEY_ID", "test"),
            env("AWS_SECRET_ACCESS_KEY", "test"),
            None,
            None,
            "sandman-testkit",
        );
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(env("AWS_REGION", "us-east-1")))
            .endpoint_url(local_endpoint())
            .credentials_provider(credentials)
            .build()
    });
    Client::from_conf(config.clone())
}

/// The DynamoDB Local endpoint `make test` exported.
pub fn local_endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => panic!(
            "DynamoDB Local is not running — run `make test` \
             (AWS_ENDPOINT_URL_DYNAMODB is not set; scripts/lib/dynamodb-local.sh starts it)"
        ),
    }
}
pub use crate::fixture::TestStack;
