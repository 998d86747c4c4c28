//! template.yaml as CloudFormation deploys it, for tests of the deployed configuration: each
//! function's environment (Globals merged with its own, intrinsic functions resolved to
//! representative values), the secrets as the stack creates them, the IAM grants on them, and the
//! metrics that alarms and the dashboard read.

pub mod aws_cli;
pub mod cors;
mod metrics;
pub mod standins;

use std::collections::{BTreeMap, HashMap};

use serde_yaml::Value;

pub use metrics::{MetricFilter, MetricRead};

pub const STACK: &str = "sandman";
pub const REGION: &str = "us-east-1";
const SECRET_TYPE: &str = "AWS::SecretsManager::Secret";

pub struct Deployment {
    pub(crate) resources: serde_yaml::Mapping,
    globals: Value,
    parameters: HashMap<String, String>,
}

/// One `AWS::Serverless::Function` as deployed.
#[derive(Debug, Clone)]
pub struct DeployedFunction {
    pub logical_id: String,
    /// `BuildProperties.Binary`, e.g. `webhook`.
    pub binary: String,
    pub environment: BTreeMap<String, String>,
    /// The secrets (ARNs) its policies allow `secretsmanager:GetSecretValue` on.
    pub readable_secrets: Vec<String>,
}

impl Deployment {
    /// `parameters` stand in for what the deployer answers; the others take their `Default`.
    pub fn from_template(yaml: &str, parameters: &[(&str, &str)]) -> Result<Deployment, String> {
        let doc: Value = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        let mut values: HashMap<String, String> = HashMap::new();
        for (name, parameter) in doc.get("Parameters").and_then(Value::as_mapping).into_iter().flatten() {
            let name = name.as_str().unwrap_or_default().to_owned();
            if let Some(default) = parameter.get("Default").and_then(scalar) {
                values.insert(name, default);
            }
        }
        for (name, value) in parameters {
            values.insert((*name).to_owned(), (*value).to_owned());
        }
        Ok(Deployment {
            resources: doc
                .get("Resources")
                .and_then(Value::as_mapping)
                .cloned()
                .ok_or("the template has no Resources")?,
            globals: doc.get("Globals").cloned().unwrap_or(Value::Null),
            parameters: values,
        })
    }

    fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resources.get(logical_id)?.get("Type")?.as_str()
    }

    /// What `!Ref` gives: a parameter's value, a pseudo parameter, or a resource's physical id.
    pub fn reference(&self, name: &str) -> Option<String> {
        match name {
            "AWS::StackName" => return Some(STACK.into()),
            "AWS::Region" => return Some(REGION.into()),
            "AWS::URLSuffix" => return Some("amazonaws.com".into()),
            "AWS::AccountId" => return Some("123456789012".into()),
            "AWS::NoValue" => return None,
            _ => {}
        }
        if let Some(value) = self.parameters.get(name) {
            return Some(value.clone());
        }
        if self.resource_type(name).is_none() && self.generated_by_sam(name) {
            return Some(format!("{STACK}-{name}"));
        }
        match self.resource_type(name)? {
            SECRET_TYPE => Some(format!(
                "arn:aws:secretsmanager:{REGION}:123456789012:secret:{STACK}-{name}"
            )),
            _ => Some(format!("{STACK}-{name}")),
        }
    }

    /// A resource SAM makes for a function's event: its schedule's rule is `<Function><Event>`.
    fn generated_by_sam(&self, name: &str) -> bool {
        self.resources.iter().any(|(id, resource)| {
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            id.as_str().zip(events).is_some_and(|(id, events)| {
                events
                    .keys()
                    .filter_map(Value::as_str)
                    .any(|event| format!("{id}{event}") == name)
            })
        })
    }

    /// A property's value with `!Ref`, `!GetAtt` and `!Sub` resolved; `None` for `AWS::NoValue`.
    pub fn resolve(&self, value: &Value) -> Option<String> {
        let Value::Tagged(tagged) = value else {
            return scalar(value);
        };
        let argument = tagged.value.as_str();
        match tagged.tag.to_string().as_str() {
            "!Ref" => self.reference(argument?),
            "!GetAtt" => Some(format!("{STACK}-{}", argument?.replace('.', "-"))),
            "!Sub" => Some(self.substitute(argument?)),
            _ => None,
        }
    }

    /// `!Sub`: `${Name}` and `${Resource.Attribute}` replaced, `${!Literal}` kept as `${Literal}`.
    pub fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let name = &rest[start + 2..start + len];
            match name.strip_prefix('!') {
                Some(literal) => out.push_str(&format!("${{{literal}}}")),
                None if name.contains('.') => out.push_str(&format!("{STACK}-{}", name.replace('.', "-"))),
                None => out.push_str(&self.reference(name).unwrap_or_default()),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }

    pub fn functions(&self) -> Vec<DeployedFunction> {
        let global_env = self.globals.get("Function").and_then(variables);
        let mut functions = Vec::new();
        for (id, resource) in &self.resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let properties = resource.get("Properties").cloned().unwrap_or(Value::Null);
            let mut environment = BTreeMap::new();
            for vars in [global_env, variables(&properties)].into_iter().flatten() {
                for (name, value) in vars {
                    if let (Some(name), Some(value)) = (name.as_str(), self.resolve(value)) {
                        environment.insert(name.to_owned(), value);
                    }
                }
            }
            functions.push(DeployedFunction {
                logical_id: id.as_str().unwrap_or_default().to_owned(),
                binary: resource
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| b.get("Binary"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                environment,
                readable_secrets: self.secret_grants(&properties),
            });
        }
        functions
    }

    fn secret_grants(&self, properties: &Value) -> Vec<String> {
        let statements = properties
            .get("Policies")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|policy| policy.get("Statement").and_then(Value::as_sequence))
            .flatten();
        let mut arns = Vec::new();
        for statement in statements {
            let actions = statement.get("Action").map(as_list).unwrap_or_default();
            if actions
                .iter()
                .any(|a| a.as_str() == Some("secretsmanager:GetSecretValue"))
            {
                let resources = statement.get("Resource").map(as_list).unwrap_or_default();
                arns.extend(resources.iter().filter_map(|r| self.resolve(r)));
            }
        }
        arns
    }

    /// Each secret's text as the stack creates it, by ARN: its `SecretString`, or its
    /// `GenerateSecretString` template with the generated field filled as Secrets Manager would.
    pub fn secrets(&self) -> HashMap<String, String> {
        let mut secrets = HashMap::new();
        for (id, resource) in &self.resources {
            if resource.get("Type").and_then(Value::as_str) != Some(SECRET_TYPE) {
                continue;
            }
            let Some(arn) = id.as_str().and_then(|id| self.reference(id)) else {
                continue;
            };
            let properties = resource.get("Properties");
            let text = if let Some(literal) = properties.and_then(|p| p.get("SecretString")).and_then(Value::as_str) {
                literal.to_owned()
            } else if let Some(generate) = properties.and_then(|p| p.get("GenerateSecretString")) {
                generated(generate)
            } else {
                continue;
            };
            secrets.insert(arn, text);
        }
        secrets
    }
}

/// `GenerateSecretString`: the template's JSON with `GenerateStringKey` set to a random string of
/// `PasswordLength` (32 when absent) letters and digits (the generator's alphabet here).
fn generated(generate: &Value) -> String {
    let template = generate
        .get("SecretStringTemplate")
        .and_then(Value::as_str)
        .unwrap_or("{}");
    let mut doc: serde_json::Value = serde_json::from_str(template).unwrap_or_else(|_| serde_json::json!({}));
    let length = generate.get("PasswordLength").and_then(Value::as_u64).unwrap_or(32) as usize;
    let mut value = String::new();
    while value.len() < length {
        value.push_str(&ulid::Ulid::new().to_string());
    }
    value.truncate(length);
    if let (Some(key), Some(fields)) = (
        generate.get("GenerateStringKey").and_then(Value::as_str),
        doc.as_object_mut(),
    ) {
        fields.insert(key.to_owned(), serde_json::Value::String(value));
    }
    doc.to_string()
}

fn variables(properties: &Value) -> Option<&serde_yaml::Mapping> {
    properties.get("Environment")?.get("Variables")?.as_mapping()
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    }
}
