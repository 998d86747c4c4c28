//! A typed view of the `AWS::DynamoDB::Table` resource in a CloudFormation / SAM template.

use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;

use super::TableError;

const TABLE_TYPE: &str = "AWS::DynamoDB::Table";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// The resource's logical id in the template (e.g. `Table`).
    pub resource: String,
    pub attributes: Vec<Attribute>,
    pub key: KeySchema,
    pub indexes: Vec<GlobalIndex>,
    /// The attribute DynamoDB's TTL reads, when TTL is enabled.
    pub ttl_attribute: Option<String>,
    /// The change stream's view type (`NEW_AND_OLD_IMAGES`, ...), when the table has a stream.
    pub stream_view_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub kind: AttributeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKind {
    String,
    Number,
    Binary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    pub hash: String,
    pub range: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalIndex {
    pub name: String,
    pub key: KeySchema,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

impl TableDefinition {
    /// Reads the table out of a template's YAML. CloudFormation tags (`!Ref`, `!GetAtt`, `!Sub`)
    /// elsewhere in the template are tolerated; the table's own key and index properties must be
    /// plain values.
    pub fn from_template(yaml: &str) -> Result<Self, TableError> {
        let template: Value = serde_yaml::from_str(yaml)?;
        let resources = template
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or(TableError::NoResources)?;
        let mut tables = resources
            .iter()
            .filter(|(_, resource)| resource.get("Type").and_then(Value::as_str) == Some(TABLE_TYPE));
        let (logical_id, resource) = match (tables.next(), tables.count()) {
            (None, _) => return Err(TableError::NoTable),
            (Some(table), 0) => table,
            (Some(_), others) => return Err(TableError::ManyTables(others + 1)),
        };
        let resource_name = logical_id.as_str().unwrap_or("<non-string id>").to_owned();
        let invalid = |message: String| TableError::InvalidDefinition {
            resource: resource_name.clone(),
            message,
        };
        let properties = resource
            .get("Properties")
            .cloned()
            .ok_or_else(|| invalid("has no Properties".to_owned()))?;
        let cfn: CfnTable = serde_yaml::from_value(properties).map_err(|e| invalid(e.to_string()))?;
        cfn.into_definition(resource_name.clone()).map_err(invalid)
    }

    pub fn from_template_file(path: &Path) -> Result<Self, TableError> {
        let yaml = std::fs::read_to_string(path).map_err(|source| TableError::ReadTemplate {
            path: path.to_owned(),
            source,
        })?;
        Self::from_template(&yaml)
    }

    pub fn index(&self, name: &str) -> Option<&GlobalIndex> {
        self.indexes.iter().find(|index| index.name == name)
    }
}

// CloudFormation's shape of the properties we use; everything else (PITR, SSE, tags) is ignored.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CfnTable {
    attribute_definitions: Vec<CfnAttribute>,
    key_schema: Vec<CfnKeyElement>,
    #[serde(default)]
    global_secondary_indexes: Vec<CfnIndex>,
    time_to_live_specification: Option<CfnTimeToLive>,
    stream_specification: Option<CfnStream>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CfnStream {
    stream_view_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CfnAttribute {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CfnKeyElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CfnIndex {
    index_name: String,
    key_schema: Vec<CfnKeyElement>,
    projection: CfnProjection,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CfnProjection {
    projection_type: Option<String>,
    #[serde(default)]
    non_key_attributes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CfnTimeToLive {
    attribute_name: Option<String>,
    enabled: bool,
}

impl CfnTable {
    fn into_definition(self, resource: String) -> Result<TableDefinition, String> {
        let attributes = self
            .attribute_definitions
            .into_iter()
            .map(|a| {
                let kind = match a.attribute_type.as_str() {
                    "S" => AttributeKind::String,
                    "N" => AttributeKind::Number,
                    "B" => AttributeKind::Binary,
                    other => {
                        return Err(format!("attribute {}: unknown type {other:?}", a.attribute_name));
                    }
                };
                Ok(Attribute {
                    name: a.attribute_name,
                    kind,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let key = key_schema(self.key_schema).map_err(|e| format!("KeySchema: {e}"))?;
        let indexes = self
            .global_secondary_indexes
            .into_iter()
            .map(|index| {
                let key = key_schema(index.key_schema).map_err(|e| format!("index {}: {e}", index.index_name))?;
                let projection =
                    projection(index.projection).map_err(|e| format!("index {}: {e}", index.index_name))?;
                Ok(GlobalIndex {
                    name: index.index_name,
                    key,
                    projection,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let ttl_attribute = self
            .time_to_live_specification
            .filter(|ttl| ttl.enabled)
            .map(|ttl| {
                ttl.attribute_name
                    .ok_or("TimeToLiveSpecification is enabled without AttributeName")
            })
            .transpose()?;
        let definition = TableDefinition {
            resource,
            attributes,
            key,
            indexes,
            ttl_attribute,
            stream_view_type: self.stream_specification.map(|s| s.stream_view_type),
        };
        check_key_attributes_are_defined(&definition)?;
        Ok(definition)
    }
}

fn key_schema(elements: Vec<CfnKeyElement>) -> Result<KeySchema, String> {
    let (mut hash, mut range) = (None, None);
    for element in elements {
        let slot = match element.key_type.as_str() {
            "HASH" => &mut hash,
            "RANGE" => &mut range,
            other => return Err(format!("unknown KeyType {other:?}")),
        };
        if slot.replace(element.attribute_name).is_some() {
            return Err(format!("more than one {} key", element.key_type));
        }
    }
    let hash = hash.ok_or("no HASH key")?;
    Ok(KeySchema { hash, range })
}

fn projection(cfn: CfnProjection) -> Result<Projection, String> {
    match cfn.projection_type.as_deref() {
        // CloudFormation's default when ProjectionType is omitted.
        None | Some("KEYS_ONLY") => Ok(Projection::KeysOnly),
        Some("ALL") => Ok(Projection::All),
        Some("INCLUDE") => Ok(Projection::Include(cfn.non_key_attributes)),
        Some(other) => Err(format!("unknown ProjectionType {other:?}")),
    }
}

fn check_key_attributes_are_defined(definition: &TableDefinition) -> Result<(), String> {
    let keys = std::iter::once(&definition.key).chain(definition.indexes.iter().map(|index| &index.key));
    for name in keys.flat_map(|key| std::iter::once(&key.hash).chain(key.range.as_ref())) {
        if !definition.attributes.iter().any(|a| &a.name == name) {
            return Err(format!("key attribute {name} is not in AttributeDefinitions"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment: { Variables: { TABLE: !Ref Things, URL: !GetAtt Things.Arn } }
  Things:
    Type: AWS::DynamoDB::Table
    Properties:
      SSESpecification: { SSEEnabled: true }
      AttributeDefinitions:
        - { AttributeName: id, AttributeType: S }
        - { AttributeName: at, AttributeType: N }
      KeySchema:
        - { AttributeName: id, KeyType: HASH }
      GlobalSecondaryIndexes:
        - IndexName: byAt
          KeySchema: [{ AttributeName: at, KeyType: HASH }]
          Projection: { ProjectionType: ALL }
"#;

    #[test]
    fn reads_a_table_among_tagged_resources() {
        let definition = TableDefinition::from_template(MINIMAL).unwrap();
        assert_eq!(definition.resource, "Things");
        assert_eq!(
            definition.key,
            KeySchema {
                hash: "id".into(),
                range: None
            }
        );
        assert_eq!(definition.index("byAt").map(|i| &i.projection), Some(&Projection::All));
        assert_eq!(definition.ttl_attribute, None);
    }

    #[test]
    fn a_template_without_a_table_is_an_error() {
        let yaml = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n";
        assert!(matches!(TableDefinition::from_template(yaml), Err(TableError::NoTable)));
    }

    #[test]
    fn an_undefined_key_attribute_is_an_error() {
        let yaml = MINIMAL.replace("AttributeName: at, KeyType: HASH", "AttributeName: nope, KeyType: HASH");
        let error = TableDefinition::from_template(&yaml).unwrap_err();
        assert!(
            error.to_string().contains("nope is not in AttributeDefinitions"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_attribute_type_is_an_error() {
        let yaml = MINIMAL.replace("AttributeType: N", "AttributeType: X");
        let error = TableDefinition::from_template(&yaml).unwrap_err();
        assert!(matches!(error, TableError::InvalidDefinition { .. }), "{error}");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let error = TableDefinition::from_template_file(Path::new("/no/such/template.yaml")).unwrap_err();
        assert!(error.to_string().contains("/no/such/template.yaml"), "{error}");
    }
}
