//! The DynamoDB table, defined once in `template.yaml` and created from that same definition in
//! DynamoDB Local (tests, the dev stack).
//!
//! ```no_run
//! # async fn example(client: &aws_sdk_dynamodb::Client) -> Result<(), sandman_local::table::TableError> {
//! sandman_local::table::create_table(client, "sandman-dev").await?;
//! # Ok(()) }
//! ```

mod create;
mod definition;

use std::path::PathBuf;

use aws_sdk_dynamodb::error::DisplayErrorContext;

pub use create::{create_table, create_table_from};
pub use definition::{Attribute, AttributeKind, GlobalIndex, KeySchema, Projection, TableDefinition};

/// `template.yaml` from the repository root, as compiled into this crate.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// The table defined in the embedded `template.yaml`.
pub fn table_definition() -> Result<TableDefinition, TableError> {
    TableDefinition::from_template(TEMPLATE)
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read the template {path}: {source}")]
    ReadTemplate { path: PathBuf, source: std::io::Error },
    #[error("the template is not valid YAML: {0}")]
    TemplateYaml(#[from] serde_yaml::Error),
    #[error("the template has no `Resources` mapping")]
    NoResources,
    #[error("the template has no AWS::DynamoDB::Table resource")]
    NoTable,
    #[error("the template has {0} AWS::DynamoDB::Table resources; expected exactly one")]
    ManyTables(usize),
    #[error("table resource {resource}: {message}")]
    InvalidDefinition { resource: String, message: String },
    #[error("cannot build the {operation} request: {source}")]
    Request {
        operation: &'static str,
        source: aws_sdk_dynamodb::error::BuildError,
    },
    #[error("DynamoDB {operation} on table {table} failed: {}", DisplayErrorContext(source.as_ref()))]
    Dynamo {
        operation: &'static str,
        table: String,
        source: Box<aws_sdk_dynamodb::Error>,
    },
    #[error("table {table} did not become ACTIVE: {}", DisplayErrorContext(source.as_ref()))]
    NotActive {
        table: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
