//! The AWS calls each function makes, written down for the IAM check (`scripts/check-iam`): with
//! `SANDMAN_RECORD_AWS_CALLS` naming a file, every client a function builds carries a
//! [`CallRecorder`] labelled with the function, which appends one JSON line per distinct call:
//! the service, the operation (each item of a transaction on its own), the table, index and
//! partition key, or the secret, key or queue it names. The check reads the template as IAM would
//! and holds each line against that function's role. Unset (always in Lambda), nothing is attached.
//!
//! A line is written the first time its shape is seen in a process (the same call with another
//! project's key is the same shape: key values are cut after their first `#`), so a soak of a
//! million calls writes a few hundred lines.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{Map, Value, json};

/// The environment variable that turns recording on: the file to append to.
pub const RECORD_CALLS: &str = "SANDMAN_RECORD_AWS_CALLS";

/// Records the calls of one function's clients.
#[derive(Debug, Clone)]
pub struct CallRecorder {
    function: &'static str,
    sink: Arc<Sink>,
}

impl CallRecorder {
    /// The recorder for `function` (a binary's name, e.g. `idle-enforcer`) when
    /// `SANDMAN_RECORD_AWS_CALLS` is set; `None` otherwise.
    pub fn from_env(function: &'static str) -> Option<CallRecorder> {
        let path = std::env::var_os(RECORD_CALLS).filter(|p| !p.is_empty())?;
        Some(CallRecorder {
            function,
            sink: Sink::for_path(PathBuf::from(path))?,
        })
    }

    pub fn function(&self) -> &'static str {
        self.function
    }

    fn record(&self, target: &str, body: &[u8]) {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        for mut call in calls(target, &body) {
            call.insert("function".into(), json!(self.function));
            self.sink.write(&Value::Object(call));
        }
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "SandmanCallRecorder"
    }

    /// Once per call, retries not counted: the request as it is about to be signed and sent.
    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        if let (Some(target), Some(body)) = (request.headers().get("x-amz-target"), request.body().bytes()) {
            self.record(target, body);
        }
        Ok(())
    }
}

/// One file, shared by every recorder of the process that writes to it.
#[derive(Debug)]
struct Sink {
    file: Mutex<File>,
    seen: Mutex<HashSet<String>>,
}

impl Sink {
    fn for_path(path: PathBuf) -> Option<Arc<Sink>> {
        static SINKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Sink>>>> = OnceLock::new();
        let mut sinks = SINKS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sink) = sinks.get(&path) {
            return Some(sink.clone());
        }
        let file = match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(file) => file,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "cannot record AWS calls");
                return None;
            }
        };
        let sink = Arc::new(Sink {
            file: Mutex::new(file),
            seen: Mutex::default(),
        });
        sinks.insert(path, sink.clone());
        Some(sink)
    }

    fn write(&self, call: &Value) {
        let shape = shape(call).to_string();
        if !self.seen.lock().unwrap_or_else(PoisonError::into_inner).insert(shape) {
            return;
        }
        // One write per line on a file opened for appending: lines of several processes never mix.
        let line = format!("{call}\n");
        let _ = self
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(line.as_bytes());
    }
}

/// The call with every table key value cut after its first `#` (`PROJECT#t#p` is `PROJECT#`;
/// a constant such as `E2B_ACCOUNTS` stays) and every index key value dropped (`bySandbox` is
/// queried by sandbox id: one line, not one a sandbox).
fn shape(call: &Value) -> Value {
    let mut shape = call.clone();
    let on_index = shape.get("index").is_some();
    for field in ["key", "keyCondition"] {
        if let Some(Value::Object(values)) = shape.get_mut(field) {
            for value in values.values_mut() {
                if let Some(text) = value.as_str() {
                    *value = if on_index {
                        json!("?")
                    } else {
                        json!(text.find('#').map_or(text, |i| &text[..=i]))
                    };
                }
            }
        }
    }
    shape
}

/// What a request body says it does: `service`, `operation` and what it names. A transaction is
/// one call per item (`operation` `TransactWriteItems`, `part` `Put`, `Update`, …), as IAM
/// authorises it.
fn calls(target: &str, body: &Map<String, Value>) -> Vec<Map<String, Value>> {
    let Some((prefix, operation)) = target.split_once('.') else {
        return Vec::new();
    };
    let service = match prefix {
        p if p.starts_with("DynamoDBStreams") => "dynamodbstreams",
        p if p.starts_with("DynamoDB") => "dynamodb",
        "TrentService" => "kms",
        "secretsmanager" => "secretsmanager",
        "AmazonSQS" => "sqs",
        _ => return Vec::new(),
    };
    let base = |part: Option<&str>| {
        let mut call = Map::new();
        call.insert("service".into(), json!(service));
        call.insert("operation".into(), json!(operation));
        if let Some(part) = part {
            call.insert("part".into(), json!(part));
        }
        call
    };
    if service != "dynamodb" {
        let mut call = base(None);
        for (field, name) in [("SecretId", "secret"), ("KeyId", "key"), ("QueueUrl", "queue")] {
            if let Some(value) = body.get(field) {
                call.insert(name.into(), value.clone());
            }
        }
        if let Some(Value::Object(context)) = body.get("EncryptionContext") {
            call.insert("encryptionContext".into(), json!(context.keys().collect::<Vec<_>>()));
        }
        return vec![call];
    }
    match body.get("TransactItems").and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|item| item.iter())
            .filter_map(|(part, request)| Some((part, request.as_object()?)))
            .map(|(part, request)| describe(base(Some(part)), request))
            .collect(),
        None => vec![describe(base(None), body)],
    }
}

/// A DynamoDB request's table, index, and the key values it names: `key` for an item (its
/// `Key`, or a put's `Item` key attributes), `keyCondition` for a query's equalities.
fn describe(mut call: Map<String, Value>, request: &Map<String, Value>) -> Map<String, Value> {
    for (field, name) in [("TableName", "table"), ("IndexName", "index")] {
        if let Some(value) = request.get(field) {
            call.insert(name.into(), value.clone());
        }
    }
    let key = request
        .get("Key")
        .or_else(|| request.get("Item"))
        .and_then(Value::as_object);
    if let Some(key) = key {
        let values: Map<String, Value> = ["pk", "sk"]
            .into_iter()
            .filter_map(|name| Some((name.to_owned(), scalar(key.get(name)?)?)))
            .collect();
        call.insert("key".into(), Value::Object(values));
    }
    if let Some(expression) = request.get("KeyConditionExpression").and_then(Value::as_str) {
        call.insert("keyCondition".into(), Value::Object(equalities(expression, request)));
    }
    call
}

/// `a = :v` terms of a key condition, names and values resolved (`begins_with`, ranges skipped).
fn equalities(expression: &str, request: &Map<String, Value>) -> Map<String, Value> {
    let names = request.get("ExpressionAttributeNames").and_then(Value::as_object);
    let values = request.get("ExpressionAttributeValues").and_then(Value::as_object);
    let mut found = Map::new();
    for term in expression.replace(" and ", " AND ").split(" AND ") {
        let Some((name, value)) = term.split_once('=') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.ends_with(['<', '>', '!']) || name.contains('(') {
            continue;
        }
        let name = names.and_then(|n| n.get(name)).and_then(Value::as_str).unwrap_or(name);
        if let Some(value) = values.and_then(|v| v.get(value)).and_then(scalar) {
            found.insert(name.to_owned(), value);
        }
    }
    found
}

/// A DynamoDB attribute value's string or number.
fn scalar(value: &Value) -> Option<Value> {
    let value = value.as_object()?;
    value.get("S").or_else(|| value.get("N")).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_transaction_is_one_call_per_item_with_its_partition_key() {
        let calls = calls(
            "DynamoDB_20120810.TransactWriteItems",
            &body(
                r#"{"TransactItems": [
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "PROJECT#a#b"}, "sk": {"S": "EVENT#1"}, "x": {"N": "1"}}}},
                {"Update": {"TableName": "t", "Key": {"pk": {"S": "TEAM#a"}, "sk": {"S": "USAGE#2026-12"}}}},
                {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "BUDGET#REACHED"}, "sk": {"S": "a"}}}}]}"#,
            ),
        );
        let parts: Vec<_> = calls
            .iter()
            .map(|c| (c["part"].clone(), c["key"]["pk"].clone()))
            .collect();
        assert_eq!(
            parts,
            [
                (json!("Put"), json!("PROJECT#a#b")),
                (json!("Update"), json!("TEAM#a")),
                (json!("ConditionCheck"), json!("BUDGET#REACHED"))
            ]
        );
        assert_eq!(shape(&Value::Object(calls[0].clone()))["key"]["pk"], "PROJECT#");
    }

    #[test]
    fn a_query_names_its_index_and_the_partition_it_reads() {
        let calls = calls(
            "DynamoDB_20120810.Query",
            &body(
                r##"{"TableName": "t", "IndexName": "byTeam", "KeyConditionExpression": "#k = :team AND begins_with(projectKey, :p)",
                "ExpressionAttributeNames": {"#k": "teamKey"},
                "ExpressionAttributeValues": {":team": {"S": "TEAM#a"}, ":p": {"S": "P"}}}"##,
            ),
        );
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["index"], "byTeam");
        assert_eq!(calls[0]["keyCondition"], json!({"teamKey": "TEAM#a"}));
        let range = equalities(
            "pk = :pk AND sk >= :from",
            &body(r#"{"ExpressionAttributeValues": {":pk": {"S": "X"}, ":from": {"S": "Y"}}}"#),
        );
        assert_eq!(Value::Object(range), json!({"pk": "X"}), "a range is not an equality");
    }

    #[test]
    fn other_services_name_their_secret_key_or_queue() {
        let kms = calls(
            "TrentService.Decrypt",
            &body(r#"{"KeyId": "arn:k", "CiphertextBlob": "AAAA", "EncryptionContext": {"sandmanTeam": "a"}}"#),
        );
        assert_eq!(kms[0]["key"], "arn:k");
        assert_eq!(kms[0]["encryptionContext"], json!(["sandmanTeam"]));
        let sqs = calls(
            "AmazonSQS.SendMessageBatch",
            &body(r#"{"QueueUrl": "https://q/1/outbound"}"#),
        );
        assert_eq!(
            (sqs[0]["service"].as_str(), sqs[0]["queue"].as_str()),
            (Some("sqs"), Some("https://q/1/outbound"))
        );
        assert!(calls("Unknown.Thing", &Map::new()).is_empty());
    }
}
