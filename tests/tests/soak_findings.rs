//! What the soak (`scripts/soak`, issue 13) found, each as a deterministic test: the same fault at
//! the same point, on DynamoDB Local and the E2B emulator. Each failed on the code the soak found it
//! in and guards its fix.

use std::sync::Arc;

use e2b_emulator::SandboxState;
use http::{Method, StatusCode};
use sandman::domain::SessionState;
use sandman::store::Consistency;
use sandman_soak::dynamo_faults::DynamoFault;
use sandman_soak::fleet::Fleet;
use sandman_soak::ledger::Ledger;
use serde_json::json;

async fn fleet_with(project: &str) -> Fleet {
    let fleet = Fleet::start(1, 1, Arc::new(Ledger::default())).await;
    let path = format!("/v1/projects/{project}");
    let registered = fleet
        .api(0, Method::PUT, &path, Some(json!({"templateId": "base"})))
        .await;
    assert_eq!(registered.status, StatusCode::OK, "{registered:?}");
    fleet
}

/// The open's claim (no session → STARTING) is the first transaction; recording the created
/// sandbox (STARTING → RUNNING) the second. DynamoDB cancels the second on a conflict with
/// another transaction: nothing was written, and a retry would succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_conflict_after_the_create_is_retried_not_a_500_nor_a_stranded_session() {
    let fleet = fleet_with("conflicted").await;
    fleet
        .chaos
        .arm("TransactWriteItems", 1, DynamoFault::TransactionConflict);

    let opened = fleet
        .api(0, Method::POST, "/v1/projects/conflicted/sandbox", None)
        .await;

    let record = fleet
        .checker
        .get_project(&fleet.key("conflicted"), Consistency::Strong)
        .await
        .expect("readable")
        .expect("the project exists");
    let session = record.session.expect("the open made a session");
    let sandbox = session.sandbox.as_ref().map(|s| s.sandbox_id.clone());
    let running: Vec<_> = fleet
        .emulator
        .sandboxes()
        .into_iter()
        .filter(|s| s.state == SandboxState::Running)
        .map(|s| s.sandbox_id)
        .collect();
    assert_eq!(running.len(), 1, "one open makes one sandbox: {running:?}");
    assert_eq!(session.state, SessionState::Running, "{session:?}");
    assert_eq!(
        sandbox.as_ref(),
        running.first(),
        "the table records the sandbox E2B runs"
    );
    assert_ne!(opened.status, StatusCode::INTERNAL_SERVER_ERROR, "{opened:?}");
}

/// DynamoDB throttles (or answers 500) past the SDK's three attempts. The API documents 503
/// `storage_unavailable` for this ("try again later"); it answers 500 `internal`, because the
/// store marks every service error but "...Throughput..." as not retryable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_throttling_past_the_sdk_retries_answers_503_storage_unavailable() {
    let fleet = fleet_with("throttled").await;
    for fault in [DynamoFault::Throttle, DynamoFault::AppliedThen500] {
        for _ in 0..3 {
            fleet.chaos.arm("GetItem", 0, fault);
        }

        let status = fleet.api(0, Method::GET, "/v1/projects/throttled/sandbox", None).await;

        assert_eq!(status.status, StatusCode::SERVICE_UNAVAILABLE, "{fault:?}: {status:?}");
        assert_eq!(
            status.json["error"]["code"], "storage_unavailable",
            "{fault:?}: {status:?}"
        );
    }
}
