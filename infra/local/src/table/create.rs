//! Creates a table from a [`TableDefinition`] with the AWS SDK (in DynamoDB Local, or an account).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection as SdkProjection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::{AttributeKind, KeySchema, Projection, TableDefinition, TableError, table_definition};

const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Creates `table_name` as `template.yaml` defines the table (keys, indexes, on-demand billing),
/// waits until it is ACTIVE and enables TTL.
pub async fn create_table(client: &Client, table_name: &str) -> Result<(), TableError> {
    create_table_from(client, table_name, &table_definition()?).await
}

pub async fn create_table_from(
    client: &Client,
    table_name: &str,
    definition: &TableDefinition,
) -> Result<(), TableError> {
    let dynamo_error = |operation| {
        move |e: aws_sdk_dynamodb::Error| TableError::Dynamo {
            operation,
            table: table_name.to_owned(),
            source: Box::new(e),
        }
    };
    let attributes = definition
        .attributes
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(&a.name)
                .attribute_type(scalar_type(a.kind))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(request_error("CreateTable"))?;
    let indexes = definition
        .indexes
        .iter()
        .map(|index| {
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.key)?))
                .projection(projection(&index.projection))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(request_error("CreateTable"))?;
    client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&definition.key).map_err(request_error("CreateTable"))?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .set_stream_specification(
            definition
                .stream_view_type
                .as_deref()
                .map(|view| {
                    aws_sdk_dynamodb::types::StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(view.into())
                        .build()
                })
                .transpose()
                .map_err(request_error("CreateTable"))?,
        )
        .send()
        .await
        .map_err(|e| dynamo_error("CreateTable")(e.into()))?;

    client
        .wait_until_table_exists()
        .table_name(table_name)
        .wait(ACTIVE_TIMEOUT)
        .await
        .map_err(|e| TableError::NotActive {
            table: table_name.to_owned(),
            source: Box::new(e),
        })?;

    if let Some(attribute) = &definition.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(request_error("UpdateTimeToLive"))?;
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| dynamo_error("UpdateTimeToLive")(e.into()))?;
    }
    tracing::debug!(table = table_name, "created table from template");
    Ok(())
}

fn request_error(operation: &'static str) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> TableError {
    move |source| TableError::Request { operation, source }
}

fn scalar_type(kind: AttributeKind) -> ScalarAttributeType {
    match kind {
        AttributeKind::String => ScalarAttributeType::S,
        AttributeKind::Number => ScalarAttributeType::N,
        AttributeKind::Binary => ScalarAttributeType::B,
    }
}

fn key_schema(key: &KeySchema) -> Result<Vec<KeySchemaElement>, aws_sdk_dynamodb::error::BuildError> {
    let hash = KeySchemaElement::builder()
        .attribute_name(&key.hash)
        .key_type(KeyType::Hash)
        .build()?;
    let range = key
        .range
        .as_ref()
        .map(|name| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::Range)
                .build()
        })
        .transpose()?;
    Ok(std::iter::once(hash).chain(range).collect())
}

fn projection(projection: &Projection) -> SdkProjection {
    let builder = SdkProjection::builder();
    match projection {
        Projection::All => builder.projection_type(ProjectionType::All),
        Projection::KeysOnly => builder.projection_type(ProjectionType::KeysOnly),
        Projection::Include(attributes) => builder
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(attributes.clone())),
    }
    .build()
}
