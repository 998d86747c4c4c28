//! What the soak (`scripts/soak`, issue 13) found, each as a deterministic test: the same fault at
//! the same point, on DynamoDB Local and the E2B emulator. Each failed on the code the soak found it
//! in and guards its fix.

use std::sync::Arc;

use e2b_emulator::{Fault, Route, SandboxState};
use http::{Method, StatusCode};
use sandman::domain::{SessionState, SnapshotId};
use sandman::e2b::{NewSandbox, SandboxNetwork};
use sandman::sandbox_metadata;
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
    assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
    assert_eq!(opened.json["path"], "created", "{opened:?}");
    assert_eq!(
        opened.json["sandbox"]["sandboxId"].as_str(),
        running.first().map(String::as_str)
    );
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

async fn open_and_snapshot(fleet: &Fleet, project: &str) -> (String, String) {
    let opened = fleet
        .api(0, Method::POST, &format!("/v1/projects/{project}/sandbox"), None)
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
    let saved = fleet
        .api(
            0,
            Method::POST,
            &format!("/v1/projects/{project}/snapshots"),
            Some(json!({"description": "s"})),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{saved:?}");
    let id = saved.json["snapshotId"].as_str().expect("an id").to_owned();
    let e2b_id = saved.json["e2bSnapshotId"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            fleet
                .emulator
                .snapshots()
                .pop()
                .expect("E2B took the snapshot")
                .snapshot_id
        });
    (id, e2b_id)
}

/// A sandbox made from the snapshot that the table does not know as current: a restore whose
/// create took effect although its invocation was cut (or E2B answered 5xx).
async fn stray_sandbox_from(fleet: &Fleet, project: &str, e2b_snapshot: &str) -> String {
    let e2b = fleet.jobs[0].e2b.for_team(fleet.team.as_str()).expect("the account");
    let stray = e2b
        .create_sandbox(&NewSandbox {
            template_id: e2b_snapshot.to_owned(),
            timeout: std::time::Duration::from_secs(600),
            auto_pause: true,
            metadata: sandbox_metadata::for_session(&fleet.key(project), "a-cut-restore"),
            env_vars: Default::default(),
            secure: true,
            network: SandboxNetwork {
                allow_public_traffic: false,
                rules: Default::default(),
            },
        })
        .await
        .expect("E2B makes the stray sandbox");
    stray.sandbox_id
}

/// Seen by the soak as `delete-project -> 502 e2b_error`: E2B refuses to delete a snapshot while a
/// sandbox made from it runs, and a sandbox the project left behind (a restore cut after its
/// create) was still running from it. Deleting the project kills every sandbox of the project,
/// not only the current one, and then deletes its snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_project_kills_its_stray_sandboxes_before_its_snapshots() {
    let fleet = fleet_with("doomed").await;
    let (_, e2b_snapshot) = open_and_snapshot(&fleet, "doomed").await;
    let stray = stray_sandbox_from(&fleet, "doomed", &e2b_snapshot).await;

    let deleted = fleet.api(0, Method::DELETE, "/v1/projects/doomed", None).await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert_eq!(
        fleet.emulator.sandbox(&stray).map(|s| s.state),
        Some(SandboxState::Killed),
        "no sandbox of a deleted project keeps running"
    );
    assert!(
        fleet.emulator.snapshots().is_empty(),
        "no snapshot of a deleted project is left in E2B"
    );
    let record = fleet
        .checker
        .get_project(&fleet.key("doomed"), Consistency::Strong)
        .await
        .expect("readable");
    assert!(record.is_none(), "the project is gone");
}

/// Seen by the soak as `delete-snapshot -> 502 e2b_error`: the same refusal on a user's delete
/// is E2B saying the snapshot is in use, a 409 the caller can act on, and the row stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_snapshot_a_stray_sandbox_runs_from_answers_409_and_keeps_the_row() {
    let fleet = fleet_with("busy").await;
    let (snapshot, e2b_snapshot) = open_and_snapshot(&fleet, "busy").await;
    stray_sandbox_from(&fleet, "busy", &e2b_snapshot).await;

    let path = format!("/v1/projects/busy/snapshots/{snapshot}");
    let deleted = fleet.api(0, Method::DELETE, &path, None).await;

    assert_eq!(deleted.status, StatusCode::CONFLICT, "{deleted:?}");
    assert_eq!(fleet.emulator.snapshots().len(), 1, "E2B kept it");
    let row = fleet
        .checker
        .get_snapshot(&fleet.key("busy"), &SnapshotId::parse(&snapshot).expect("an id"))
        .await
        .expect("readable");
    assert!(row.is_some(), "the table still knows it");
}

/// Seen by the soak as a PENDING row (and, the other way round, an E2B snapshot without a row):
/// the snapshot request outlived the pending grace, the pruner found nothing in E2B yet and
/// removed the row, then E2B took the snapshot. The request, finding its row gone, deletes what
/// E2B took: no E2B snapshot the table does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_whose_pending_row_was_removed_meanwhile_is_deleted_in_e2b() {
    // E2B holds the snapshot call 5 s, well inside Sandman's deadline, while the row is removed.
    let deadline = std::time::Duration::from_secs(20);
    let fleet = Fleet::start_with_e2b_deadline(1, 1, Arc::new(Ledger::default()), deadline).await;
    let registered = fleet
        .api(0, Method::PUT, "/v1/projects/slow", Some(json!({"templateId": "base"})))
        .await;
    assert_eq!(registered.status, StatusCode::OK, "{registered:?}");
    let opened = fleet.api(0, Method::POST, "/v1/projects/slow/sandbox", None).await;
    assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
    fleet.emulator.set_fault(
        Route::CreateSnapshot,
        Fault {
            latency: std::time::Duration::from_secs(5),
            ..Fault::default()
        },
    );
    let request = tokio::spawn(fleet.api(
        0,
        Method::POST,
        "/v1/projects/slow/snapshots",
        Some(json!({"description": "slow"})),
    ));
    let key = fleet.key("slow");
    for _ in 0..1000 {
        if !fleet.checker.all_snapshots(&key).await.expect("readable").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // What the pruner's `finish_pending` does to a PENDING row older than its grace when E2B has
    // nothing for it yet (the soak's clock passes the grace while the call is in flight).
    let pending = fleet.checker.all_snapshots(&key).await.expect("readable");
    assert_eq!(pending.len(), 1, "the request wrote its PENDING row first");
    fleet
        .checker
        .delete_snapshot_record(&key, &pending[0].snapshot_id)
        .await
        .expect("removed");
    assert!(
        fleet.emulator.snapshots().is_empty(),
        "E2B has not taken it yet: the test's own timing failed"
    );

    let answered = request.await.expect("the request finishes");

    assert_ne!(answered.status, StatusCode::CREATED, "{answered:?}");
    assert!(
        fleet.emulator.snapshots().is_empty(),
        "E2B keeps no snapshot the table does not know: {:?}",
        fleet.emulator.snapshots()
    );
}

/// Seen by the soak as "restore of S answered with a sandbox not made from S": E2B answered the
/// create from S with a 503 (nothing made, as the lookup by session showed), and the restore went
/// on down the ladder to the template. A restore of snapshot S runs from S or fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_of_s_that_e2b_failed_answers_an_error_not_a_sandbox_from_the_template() {
    let fleet = fleet_with("restoring").await;
    let (snapshot, e2b_snapshot) = open_and_snapshot(&fleet, "restoring").await;
    fleet.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            fail_next: 3,
            error_status: 503,
            ..Fault::default()
        },
    );
    let before = fleet.emulator.calls_to(Route::CreateSandbox).len();

    let path = format!("/v1/projects/restoring/snapshots/{snapshot}/restore");
    let restored = fleet.api(0, Method::POST, &path, None).await;

    assert_ne!(restored.status, StatusCode::OK, "{restored:?}");
    let asked: Vec<String> = fleet.emulator.calls_to(Route::CreateSandbox)[before..]
        .iter()
        .map(|call| call.body.clone().unwrap_or_default()["templateID"].to_string())
        .collect();
    assert!(
        asked.iter().all(|template| template.contains(&e2b_snapshot)),
        "every create was from {e2b_snapshot}: {asked:?}"
    );
    // The user is where they were: the sandbox the restore would have replaced, and nothing else.
    let record = fleet
        .checker
        .get_project(&fleet.key("restoring"), Consistency::Strong)
        .await
        .expect("readable")
        .expect("the project exists");
    let current = record.session.and_then(|s| s.sandbox).map(|s| s.sandbox_id);
    let running: Vec<String> = fleet
        .emulator
        .sandboxes()
        .into_iter()
        .filter(|s| s.state == SandboxState::Running)
        .map(|s| s.sandbox_id)
        .collect();
    assert_eq!(
        running.iter().map(Some).collect::<Vec<_>>(),
        vec![current.as_ref()],
        "nothing runs that the caller did not ask for"
    );
}

/// Seen by the long soak as `resume -> 500 internal`: the resume's claim met a transaction
/// conflict on every one of its attempts. Once the retries are spent, a conflict is still
/// DynamoDB's "try again later": 503 `storage_unavailable`, with the session left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_that_outlasts_the_retries_answers_503_and_changes_nothing() {
    let fleet = fleet_with("contended").await;
    let opened = fleet.api(0, Method::POST, "/v1/projects/contended/sandbox", None).await;
    assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
    let paused = fleet
        .api(0, Method::POST, "/v1/projects/contended/sandbox/pause", None)
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{paused:?}");
    // The pause's webhooks write too: delivered first, so only the resume meets the conflicts.
    fleet.emulator.settle_webhooks().await;
    for _ in 0..6 {
        fleet
            .chaos
            .arm("TransactWriteItems", 0, DynamoFault::TransactionConflict);
    }

    let resumed = fleet
        .api(0, Method::POST, "/v1/projects/contended/sandbox/resume", None)
        .await;

    assert_eq!(resumed.status, StatusCode::SERVICE_UNAVAILABLE, "{resumed:?}");
    assert_eq!(resumed.json["error"]["code"], "storage_unavailable", "{resumed:?}");
    let record = fleet
        .checker
        .get_project(&fleet.key("contended"), Consistency::Strong)
        .await
        .expect("readable")
        .expect("the project exists");
    assert_eq!(record.state(), Some(SessionState::Paused), "{record:?}");
}

/// Seen by the long soak as a READY row whose E2B snapshot was gone: completing the row was
/// applied, its answer lost (a 500), and the SDK's retry found the row no longer PENDING. Read as
/// "the row was given up on", the request deleted the snapshot it had just saved. A row already
/// READY is the request's own success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_snapshot_whose_answer_was_lost_stays_saved() {
    let fleet = fleet_with("saved").await;
    let opened = fleet.api(0, Method::POST, "/v1/projects/saved/sandbox", None).await;
    assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
    // The first UpdateItem of the request is the one that completes the row.
    fleet.chaos.arm("UpdateItem", 0, DynamoFault::AppliedThen500);

    let saved = fleet
        .api(
            0,
            Method::POST,
            "/v1/projects/saved/snapshots",
            Some(json!({"description": "kept"})),
        )
        .await;

    assert_eq!(saved.status, StatusCode::CREATED, "{saved:?}");
    let rows = fleet
        .checker
        .all_snapshots(&fleet.key("saved"))
        .await
        .expect("readable");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, sandman::domain::SnapshotStatus::Ready);
    assert_eq!(
        fleet.emulator.snapshots().len(),
        1,
        "E2B keeps what the row says is saved"
    );
}

/// Not a finding but the soak's account-isolation check pinned down (issue 13: "list calls failing
/// for one account"): while one E2B account's `GET /sandboxes` fails (5xx, or answers past the
/// deadline), a reconcile still lists the other account and corrects its drift; the failing
/// account's sessions are left as they are (what E2B holds for them is unknown), and the next
/// reconcile after the failures end corrects them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_failing_lists_do_not_stall_the_other_accounts_reconciliation() {
    let fleet = Fleet::start(1, 1, Arc::new(Ledger::default())).await;
    let slow = Fault {
        latency: sandman_soak::fleet::E2B_CALL_DEADLINE + std::time::Duration::from_millis(500),
        ..Fault::default()
    };
    let refusing = Fault {
        error_rate: 1.0,
        error_status: 503,
        ..Fault::default()
    };
    for (failing, fault) in [(1, refusing), (0, slow)] {
        let working = 1 - failing;
        let project = |account: usize| format!("drift-{failing}-{account}");
        let mut sandboxes = Vec::new();
        for account in [0, 1] {
            let path = format!("/v1/projects/{}", project(account));
            let body = Some(json!({"templateId": "base"}));
            let registered = fleet.api_as(account, 0, Method::PUT, &path, body).await;
            assert_eq!(registered.status, StatusCode::OK, "{registered:?}");
            let opened = fleet
                .api_as(account, 0, Method::POST, &format!("{path}/sandbox"), None)
                .await;
            assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
            sandboxes.push(
                opened.json["sandbox"]["sandboxId"]
                    .as_str()
                    .expect("a sandbox")
                    .to_owned(),
            );
        }
        // Both sandboxes paused behind Sandman's back, their webhooks lost: drift in each account.
        fleet.emulator.set_webhook_faults(e2b_emulator::WebhookFaults {
            drop_next: 100,
            ..Default::default()
        });
        for account in [0, 1] {
            let e2b = fleet.jobs[0]
                .e2b_for_team(&fleet.accounts[account].team)
                .await
                .expect("the account");
            e2b.pause(&sandboxes[account]).await.expect("E2B pauses it");
        }
        let failing_team = fleet.accounts[failing].team.as_str();
        fleet.emulator.set_team_fault(failing_team, Route::ListSandboxes, fault);

        let report = fleet.jobs[0].reconcile().await;

        assert_eq!((report.accounts_listed, report.accounts_unlisted), (1, 1), "{report:?}");
        assert_eq!(
            state_of(&fleet, working, &project(working)).await,
            Some(SessionState::Paused),
            "the working account is reconciled"
        );
        assert_eq!(
            state_of(&fleet, failing, &project(failing)).await,
            Some(SessionState::Running),
            "the failing account is left alone"
        );

        fleet.emulator.clear_faults();
        fleet
            .emulator
            .set_webhook_faults(e2b_emulator::WebhookFaults::default());
        let report = fleet.jobs[0].reconcile().await;
        assert_eq!((report.accounts_listed, report.accounts_unlisted), (2, 0), "{report:?}");
        assert_eq!(
            state_of(&fleet, failing, &project(failing)).await,
            Some(SessionState::Paused),
            "reconciled once it lists again"
        );
    }
}

async fn state_of(fleet: &Fleet, account: usize, project: &str) -> Option<SessionState> {
    let record = fleet
        .checker
        .get_project(&fleet.key_in(account, project), Consistency::Strong)
        .await;
    record.expect("readable").and_then(|r| r.state())
}
