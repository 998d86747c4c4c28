//! Stand-ins for the AWS services the local stack cannot run: Secrets Manager, KMS and SQS, on one
//! loopback port, speaking the JSON protocols the SDK clients speak (`X-Amz-Target`). They let a
//! test run a function's deployed cold start and calls (`Sandman::cold_start`, `SqsQueue`) through
//! the real clients and their call recorders. They are not the services: KMS here wraps nothing
//! (its "ciphertext" is the data key and its context in the clear), and SQS only keeps what it
//! was sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Services {
    /// Secret text by ARN (or name).
    secrets: Mutex<HashMap<String, String>>,
    /// Every message body sent, by queue URL.
    sent: Mutex<Vec<(String, String)>>,
    /// Every visibility change: receipt handle and seconds.
    hidden: Mutex<Vec<(String, i64)>>,
    /// Operations answered, by `X-Amz-Target`.
    answered: Mutex<Vec<String>>,
}

pub struct AwsStandIns {
    pub url: String,
    services: Arc<Services>,
    server: JoinHandle<()>,
}

impl AwsStandIns {
    /// Serves on a free loopback port, with `secrets` (ARN to text) as the stack creates them.
    pub async fn start(secrets: HashMap<String, String>) -> std::io::Result<AwsStandIns> {
        let services = Arc::new(Services {
            secrets: Mutex::new(secrets),
            ..Services::default()
        });
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback(answer).with_state(services.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(AwsStandIns { url, services, server })
    }

    /// What the operator does with `put-secret-value`.
    pub fn put_secret(&self, arn: &str, text: &str) {
        lock(&self.services.secrets).insert(arn.to_owned(), text.to_owned());
    }

    pub fn secret(&self, arn: &str) -> Option<String> {
        lock(&self.services.secrets).get(arn).cloned()
    }

    /// The bodies sent to the queue at `queue_url`.
    pub fn sent(&self, queue_url: &str) -> Vec<String> {
        lock(&self.services.sent)
            .iter()
            .filter(|(queue, _)| queue == queue_url)
            .map(|(_, body)| body.clone())
            .collect()
    }

    pub fn visibility_changes(&self) -> Vec<(String, i64)> {
        lock(&self.services.hidden).clone()
    }

    /// How many requests of `target` (e.g. `secretsmanager.GetSecretValue`) were answered.
    pub fn count(&self, target: &str) -> usize {
        lock(&self.services.answered).iter().filter(|t| *t == target).count()
    }
}

impl Drop for AwsStandIns {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn answer(State(services): State<Arc<Services>>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    lock(&services.answered).push(target.clone());
    let field = |name: &str| request[name].as_str().unwrap_or_default().to_owned();
    match target.as_str() {
        "secretsmanager.GetSecretValue" => {
            let id = field("SecretId");
            match lock(&services.secrets).get(&id) {
                Some(text) => ok(json!({"ARN": id, "Name": id, "SecretString": text, "VersionId": "1"})),
                None => error(
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret.",
                ),
            }
        }
        "TrentService.GenerateDataKey" => {
            let mut key = ulid::Ulid::new().0.to_be_bytes().to_vec();
            key.extend(ulid::Ulid::new().0.to_be_bytes());
            let sealed = json!({"key": field("KeyId"), "context": request["EncryptionContext"], "plaintext": STANDARD.encode(&key)});
            ok(json!({
                "KeyId": field("KeyId"),
                "Plaintext": STANDARD.encode(&key),
                "CiphertextBlob": STANDARD.encode(sealed.to_string()),
            }))
        }
        "TrentService.Decrypt" => {
            let sealed = STANDARD
                .decode(field("CiphertextBlob"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .unwrap_or(Value::Null);
            if sealed["context"] != request["EncryptionContext"] {
                return error("InvalidCiphertextException", "the encryption context does not match");
            }
            ok(json!({"KeyId": sealed["key"], "Plaintext": sealed["plaintext"]}))
        }
        "AmazonSQS.SendMessageBatch" => {
            let queue = field("QueueUrl");
            let mut successful = Vec::new();
            for entry in request["Entries"].as_array().into_iter().flatten() {
                let body = entry["MessageBody"].as_str().unwrap_or_default().to_owned();
                lock(&services.sent).push((queue.clone(), body));
                successful.push(
                    json!({"Id": entry["Id"], "MessageId": ulid::Ulid::new().to_string(), "MD5OfMessageBody": ""}),
                );
            }
            ok(json!({"Successful": successful, "Failed": []}))
        }
        "AmazonSQS.ChangeMessageVisibility" => {
            let seconds = request["VisibilityTimeout"].as_i64().unwrap_or_default();
            lock(&services.hidden).push((field("ReceiptHandle"), seconds));
            ok(json!({}))
        }
        _ => error("UnknownOperationException", "not stood in for"),
    }
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

fn error(kind: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}
