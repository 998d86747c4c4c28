//! DynamoDB faults below the SDK: an HTTP client that answers some requests itself, as DynamoDB
//! does when it throttles or cancels a transaction on a conflict (before the write is applied), or
//! passes a write through and then answers 500 (after it was applied, as a dropped response is).
//! The SDK parses these answers like DynamoDB's own, so its retry policy and the store's error
//! mapping see exactly what they would see in AWS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::ledger::Ledger;

/// How often (per mille of requests) each DynamoDB fault fires while the chaos actor has it on.
#[derive(Debug, Default)]
pub struct DynamoChaos {
    enabled: AtomicBool,
    throttle: AtomicU32,
    conflict: AtomicU32,
    applied_then_500: AtomicU32,
    /// Until when DynamoDB refuses connections (an outage of its own length, as a restart is).
    unreachable_until: std::sync::Mutex<Option<std::time::Instant>>,
    rng: std::sync::Mutex<Option<fastrand::Rng>>,
    armed: std::sync::Mutex<Vec<Armed>>,
}

/// A fault a deterministic test asked for: the request of `operation` after `skip` others fails.
#[derive(Debug)]
struct Armed {
    operation: &'static str,
    skip: u32,
    fault: DynamoFault,
}

#[derive(Debug, Clone, Copy)]
pub enum DynamoFault {
    Throttle,
    TransactionConflict,
    AppliedThen500,
    /// No connection: what the SDK sees while DynamoDB (Local) restarts.
    Unreachable,
}

impl DynamoFault {
    pub fn name(self) -> &'static str {
        match self {
            DynamoFault::Throttle => "dynamodb.throttle",
            DynamoFault::TransactionConflict => "dynamodb.transaction-conflict",
            DynamoFault::AppliedThen500 => "dynamodb.applied-then-500",
            DynamoFault::Unreachable => "dynamodb.unreachable",
        }
    }
}

impl DynamoChaos {
    pub fn new(seed: u64) -> Arc<DynamoChaos> {
        let chaos = DynamoChaos::default();
        *chaos.rng.lock().expect("fresh lock") = Some(fastrand::Rng::with_seed(seed));
        Arc::new(chaos)
    }

    /// DynamoDB refuses every connection for `length` (real time), then is back by itself.
    pub fn outage(&self, length: std::time::Duration) {
        *self
            .unreachable_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now() + length);
        self.enabled.store(true, Ordering::Relaxed);
    }

    fn unreachable(&self) -> bool {
        self.unreachable_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|until| std::time::Instant::now() < until)
    }

    /// Sets one fault's rate (per mille; for `Unreachable`, the outage's length in ms); 0 turns it off.
    pub fn set(&self, fault: DynamoFault, per_mille: u32) {
        let slot = match fault {
            DynamoFault::Throttle => &self.throttle,
            DynamoFault::TransactionConflict => &self.conflict,
            DynamoFault::AppliedThen500 => &self.applied_then_500,
            DynamoFault::Unreachable => {
                self.outage(std::time::Duration::from_millis(u64::from(per_mille)));
                return;
            }
        };
        slot.store(per_mille, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Fails the `skip + 1`-th next request of `operation` (e.g. `TransactWriteItems`) with `fault`.
    pub fn arm(&self, operation: &'static str, skip: u32, fault: DynamoFault) {
        let mut armed = self.armed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        armed.push(Armed { operation, skip, fault });
    }

    fn take_armed(&self, operation: &str) -> Option<DynamoFault> {
        let mut armed = self.armed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = armed.iter().position(|a| a.operation == operation)?;
        if armed[index].skip > 0 {
            armed[index].skip -= 1;
            return None;
        }
        Some(armed.remove(index).fault)
    }

    pub fn off(&self) {
        self.enabled.store(false, Ordering::Relaxed);
        for slot in [&self.throttle, &self.conflict, &self.applied_then_500] {
            slot.store(0, Ordering::Relaxed);
        }
        *self
            .unreachable_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn roll(&self, per_mille: &AtomicU32) -> bool {
        let rate = per_mille.load(Ordering::Relaxed);
        if rate == 0 {
            return false;
        }
        let mut rng = self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rng.as_mut().is_some_and(|rng| rng.u32(0..1000) < rate)
    }

    fn pick(&self, operation: &str) -> Option<DynamoFault> {
        if let Some(fault) = self.take_armed(operation) {
            return Some(fault);
        }
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        if self.unreachable() {
            return Some(DynamoFault::Unreachable);
        }
        let writes = matches!(
            operation,
            "TransactWriteItems" | "UpdateItem" | "PutItem" | "DeleteItem" | "BatchWriteItem"
        );
        if operation == "TransactWriteItems" && self.roll(&self.conflict) {
            return Some(DynamoFault::TransactionConflict);
        }
        if writes && self.roll(&self.applied_then_500) {
            return Some(DynamoFault::AppliedThen500);
        }
        if operation != "DescribeTable" && self.roll(&self.throttle) {
            return Some(DynamoFault::Throttle);
        }
        None
    }
}

/// A client over `clean`'s configuration whose requests pass through `chaos`.
pub fn faulty_client(clean: &Client, chaos: Arc<DynamoChaos>, ledger: Arc<Ledger>) -> Client {
    let inner = sandman::aws::ReqwestHttpClient::default();
    let http = http_client_fn(move |settings, components| {
        use aws_smithy_runtime_api::client::http::HttpClient;
        SharedHttpConnector::new(FaultyConnector {
            inner: inner.http_connector(settings, components),
            chaos: chaos.clone(),
            ledger: ledger.clone(),
        })
    });
    // DynamoDB's own retry policy, with shorter waits: the soak's clock runs far faster than real time.
    let retry = aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_initial_backoff(std::time::Duration::from_millis(20))
        .with_max_backoff(std::time::Duration::from_millis(500));
    let config = clean
        .config()
        .to_builder()
        .http_client(http)
        .retry_config(retry)
        .build();
    Client::from_conf(config)
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    chaos: Arc<DynamoChaos>,
    ledger: Arc<Ledger>,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit_once('.'))
            .map(|(_, op)| op.to_owned())
            .unwrap_or_default();
        let Some(fault) = self.chaos.pick(&operation) else {
            return self.inner.call(request);
        };
        self.ledger.fault(fault.name());
        match fault {
            DynamoFault::Throttle => HttpConnectorFuture::ready(Ok(error_response(
                400,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput (soak)",
                None,
            ))),
            DynamoFault::TransactionConflict => {
                let items = request
                    .body()
                    .bytes()
                    .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
                    .and_then(|body| body["TransactItems"].as_array().map(Vec::len))
                    .unwrap_or(1);
                HttpConnectorFuture::ready(Ok(error_response(
                    400,
                    "TransactionCanceledException",
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict] (soak)",
                    Some(items),
                )))
            }
            DynamoFault::Unreachable => HttpConnectorFuture::ready(Err(ConnectorError::io(
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "DynamoDB is restarting (soak)").into(),
            ))),
            DynamoFault::AppliedThen500 => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _applied = sent.await?;
                    Ok(error_response(
                        500,
                        "InternalServerError",
                        "Internal server error (soak)",
                        None,
                    ))
                })
            }
        }
    }
}

fn error_response(status: u16, error_type: &str, message: &str, conflict_items: Option<usize>) -> HttpResponse {
    let mut body = serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{error_type}"),
        "message": message,
    });
    if let Some(items) = conflict_items {
        let reasons: Vec<_> = (0..items)
            .map(|i| {
                if i == 0 {
                    serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                } else {
                    serde_json::json!({"Code": "None"})
                }
            })
            .collect();
        body["CancellationReasons"] = serde_json::Value::Array(reasons);
    }
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("a valid status"),
        SdkBody::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_fault_skips_then_fires_once_and_only_for_its_operation() {
        let chaos = DynamoChaos::new(1);
        chaos.arm("TransactWriteItems", 1, DynamoFault::TransactionConflict);
        assert!(chaos.pick("GetItem").is_none());
        assert!(chaos.pick("TransactWriteItems").is_none());
        assert!(matches!(
            chaos.pick("TransactWriteItems"),
            Some(DynamoFault::TransactionConflict)
        ));
        assert!(chaos.pick("TransactWriteItems").is_none());
    }

    #[test]
    fn rates_fire_only_while_on() {
        let chaos = DynamoChaos::new(1);
        chaos.set(DynamoFault::Throttle, 1000);
        assert!(matches!(chaos.pick("Query"), Some(DynamoFault::Throttle)));
        chaos.off();
        assert!(chaos.pick("Query").is_none());
    }

    #[test]
    fn an_outage_refuses_every_operation_then_ends_by_itself() {
        let chaos = DynamoChaos::new(1);
        chaos.outage(std::time::Duration::from_millis(50));
        assert!(matches!(chaos.pick("GetItem"), Some(DynamoFault::Unreachable)));
        assert!(matches!(
            chaos.pick("TransactWriteItems"),
            Some(DynamoFault::Unreachable)
        ));
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert!(chaos.pick("GetItem").is_none());
    }
}
