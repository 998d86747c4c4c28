//! Live forks (`from: live`), end to end: DynamoDB Local, the E2B emulator's fork and its real
//! signed webhooks delivered to the webhook router. The fork's sandbox carries the source's
//! metadata; these tests hold that its events, the reconciler and its failures still land on the
//! fork's project and never move the source.

#[path = "api_kit/mod.rs"]
mod api_kit;
#[path = "webhook/support.rs"]
mod support;

use std::time::Duration;

use api_kit::{request, router_for, send};
use e2b_emulator::{Fault, Route, SandboxState, SandboxView, WebhookFaults};
use http::{Method, StatusCode};
use sandman::Error;
use sandman::auth::mint_dev_token;
use sandman::domain::{Actor, ProjectId, ProjectKey, SessionState};
use sandman::fork::ForkFrom;
use sandman::sandbox_metadata;
use sandman::secrets::Secret;
use sandman::store::ProjectRecord;
use sandman::workspace::{OpenPath, PauseOutcome, PauseRequest};
use sandman_local::fixture::JWT_SECRET;
use serde_json::json;
use support::Hooks;

fn sandbox_of(record: &ProjectRecord) -> String {
    record
        .session
        .as_ref()
        .and_then(|s| s.sandbox.as_ref())
        .map(|s| s.sandbox_id.clone())
        .expect("a sandbox")
}

/// The emulator's clock runs on in real time beside the test's hand-moved one: catch up, so
/// events are not refused as from the future.
fn sync(hooks: &Hooks) {
    let lag = hooks.stack.emulator.now() - hooks.stack.clock.now();
    if lag.is_positive() {
        hooks.stack.clock.advance(lag.unsigned_abs());
    }
}

/// The sandboxes E2B forked from `source`, killed ones included.
fn forks_of(hooks: &Hooks, source: &str) -> Vec<SandboxView> {
    hooks
        .stack
        .emulator
        .sandboxes()
        .into_iter()
        .filter(|s| s.forked_from.as_deref() == Some(source))
        .collect()
}

/// A running source with a file written into its sandbox (the stand-in for its disk and memory),
/// and its record as it stood before any fork.
async fn source_with_memory(hooks: &Hooks) -> (ProjectKey, String, ProjectRecord) {
    let (source, sandbox) = hooks.running("source").await;
    assert!(hooks.stack.emulator.write_file(&sandbox, "/proc/marker", "in memory"));
    sync(hooks);
    (source.clone(), sandbox, hooks.record(&source).await)
}

async fn fork_live(hooks: &Hooks, source: &ProjectKey, project: &str) -> Result<ProjectRecord, Error> {
    let project = ProjectId::parse(project).unwrap();
    hooks.stack.sandman.fork(source, project, ForkFrom::Live).await
}

fn orphans(report: &sandman::reconciler::ReconcileReport) -> u64 {
    report.orphans_paused + report.orphans_killed + report.orphans_reported
}

fn fork_key(hooks: &Hooks) -> ProjectKey {
    hooks.stack.key("copy")
}

#[tokio::test]
async fn a_live_fork_is_running_at_once_with_the_sources_memory_and_the_source_runs_on() {
    let hooks = Hooks::start().await;
    let (source, source_sandbox, before) = source_with_memory(&hooks).await;
    let source_log = hooks.log(&source).await.len();
    hooks.stack.emulator.clear_calls();

    let forked = fork_live(&hooks, &source, "copy").await.expect("forked live");

    assert_eq!(forked.state(), Some(SessionState::Running), "usable at once");
    let sandbox = sandbox_of(&forked);
    assert_ne!(sandbox, source_sandbox);
    let session = forked.session.as_ref().unwrap();
    assert!(session.lease_until.is_none() && session.timeout_at.is_some());
    assert!(
        session.sandbox.as_ref().unwrap().access_token.is_some(),
        "the fork's envd token"
    );
    let view = hooks.stack.emulator.sandbox(&sandbox).expect("E2B has the fork");
    assert_eq!(view.state, SandboxState::Running);
    assert_eq!(view.forked_from.as_deref(), Some(source_sandbox.as_str()));
    assert_eq!(view.files.get("/proc/marker").map(String::as_str), Some("in memory"));
    assert_eq!(
        sandbox_metadata::owner(&view.metadata).map(|(key, _)| key),
        Some(source.clone()),
        "E2B copied the source's metadata"
    );
    let calls: Vec<_> = hooks.stack.emulator.calls().into_iter().map(|c| c.route).collect();
    assert_eq!(calls, [Route::ForkSandbox], "one E2B call: the fork");

    hooks.settle().await;
    let source_after = hooks.record(&source).await;
    assert_eq!(
        source_after.version, before.version,
        "the source's session is untouched"
    );
    assert_eq!(source_after.state(), Some(SessionState::Running));
    assert_eq!(sandbox_of(&source_after), source_sandbox);
    assert_eq!(
        hooks.log(&source).await.len(),
        source_log,
        "nothing in the source's log"
    );
    let source_view = hooks.stack.emulator.sandbox(&source_sandbox).unwrap();
    assert_eq!(source_view.state, SandboxState::Running, "E2B still runs the source");
    let fork = hooks.record(&fork_key(&hooks)).await;
    assert_eq!(fork.state(), Some(SessionState::Running));
    assert_eq!(sandbox_of(&fork), sandbox, "its created event changed nothing");
    let log = hooks.log(&fork_key(&hooks)).await;
    assert!(log.iter().any(|l| l.cause == "live fork of source"), "{log:?}");
    assert!(log.iter().any(|l| l.cause == "forked live from source"), "{log:?}");
    assert_eq!(
        hooks
            .stack
            .sandman
            .open(&fork_key(&hooks), Actor::User)
            .await
            .unwrap()
            .path,
        OpenPath::AlreadyRunning
    );
    let again = fork_live(&hooks, &source, "copy").await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
}

#[tokio::test]
async fn a_paused_webhook_for_the_forks_sandbox_moves_the_fork_only() {
    let hooks = Hooks::start().await;
    let (source, source_sandbox, _) = source_with_memory(&hooks).await;
    let forked = fork_live(&hooks, &source, "copy").await.expect("forked live");
    let sandbox = sandbox_of(&forked);
    hooks.settle().await;
    let source_before = hooks.record(&source).await;

    // E2B pauses the fork on its own (say, its timeout with auto-pause): only its webhook says so.
    sync(&hooks);
    hooks.e2b().pause(&sandbox).await.expect("E2B pauses the fork");
    hooks.settle().await;

    let fork = hooks.record(&fork_key(&hooks)).await;
    assert_eq!(
        fork.state(),
        Some(SessionState::Paused),
        "the fork's project follows its sandbox"
    );
    assert!(
        hooks
            .log(&fork_key(&hooks))
            .await
            .iter()
            .any(|l| l.cause == "e2b: paused")
    );
    let source_after = hooks.record(&source).await;
    assert_eq!(source_after.version, source_before.version, "the source never moves");
    assert_eq!(source_after.state(), Some(SessionState::Running));
    assert_eq!(sandbox_of(&source_after), source_sandbox);

    // And back: a resume E2B reports is the fork's too.
    sync(&hooks);
    hooks.e2b().connect(&sandbox, Duration::from_secs(300)).await.unwrap();
    hooks.settle().await;
    assert_eq!(
        hooks.record(&fork_key(&hooks)).await.state(),
        Some(SessionState::Running)
    );
    assert_eq!(hooks.record(&source).await.version, source_before.version);
}

#[tokio::test]
async fn a_reconcile_leaves_both_sandboxes_alone_and_puts_the_forks_record_right() {
    let hooks = Hooks::start().await;
    let (source, source_sandbox, _) = source_with_memory(&hooks).await;
    let forked = fork_live(&hooks, &source, "copy").await.expect("forked live");
    let sandbox = sandbox_of(&forked);
    hooks.settle().await;

    // Both RUNNING: nothing to do.
    let report = hooks.stack.sandman.reconcile().await;
    assert_eq!((report.errors, orphans(&report)), (0, 0), "{report:?}");

    // The fork paused by Sandman, then resumed in E2B with the webhook lost: the table says PAUSED
    // while E2B runs it. Found by its (source's) metadata, it must be compared with the fork's
    // project, not taken for an orphan of the source.
    sync(&hooks);
    let record = hooks.record(&fork_key(&hooks)).await;
    let request = PauseRequest {
        key: fork_key(&hooks),
        expected_version: record.version,
        sandbox_id: sandbox.clone(),
        actor: Actor::User,
        cause: "paused by user".into(),
        idle_by: None,
        snapshot_first: false,
    };
    assert!(matches!(
        hooks.stack.sandman.pause(request).await,
        Ok(PauseOutcome::Paused)
    ));
    hooks.settle().await;
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        drop_next: 10,
        ..WebhookFaults::default()
    });
    hooks.e2b().connect(&sandbox, Duration::from_secs(300)).await.unwrap();
    hooks.settle().await;
    hooks.stack.emulator.set_webhook_faults(WebhookFaults::default());
    assert_eq!(
        hooks.record(&fork_key(&hooks)).await.state(),
        Some(SessionState::Paused)
    );
    let source_before = hooks.record(&source).await;
    hooks.stack.emulator.clear_calls();

    let report = hooks.stack.sandman.reconcile().await;

    assert_eq!((report.errors, orphans(&report)), (0, 0), "{report:?}");
    assert_eq!(report.drift_running, 1, "{report:?}");
    let fork = hooks.record(&fork_key(&hooks)).await;
    assert_eq!(
        fork.state(),
        Some(SessionState::Running),
        "E2B runs it: the fork's record follows"
    );
    assert_eq!(sandbox_of(&fork), sandbox);
    let source_after = hooks.record(&source).await;
    assert_eq!(source_after.version, source_before.version, "the source is not moved");
    assert_eq!(sandbox_of(&source_after), source_sandbox);
    for id in [&source_sandbox, &sandbox] {
        assert_eq!(hooks.stack.emulator.sandbox(id).unwrap().state, SandboxState::Running);
    }
    let acted: Vec<_> = hooks
        .stack
        .emulator
        .calls()
        .into_iter()
        .filter(|c| matches!(c.route, Route::PauseSandbox | Route::KillSandbox))
        .collect();
    assert!(acted.is_empty(), "nothing paused or killed: {acted:?}");
}

#[tokio::test]
async fn an_ambiguous_live_fork_adopts_exactly_one_sandbox() {
    let hooks = Hooks::start().await;
    let (source, source_sandbox, before) = source_with_memory(&hooks).await;
    // A stray fork of the same source, made just before the claim and no project's: an extra.
    hooks
        .e2b()
        .fork(&source_sandbox, Duration::from_secs(300))
        .await
        .unwrap();
    hooks.stack.emulator.set_fault(
        Route::ForkSandbox,
        Fault {
            applied_then_fail_next: 1,
            error_status: 502,
            ..Fault::default()
        },
    );
    hooks.stack.emulator.clear_calls();

    let forked = fork_live(&hooks, &source, "copy")
        .await
        .expect("the fork E2B made is adopted");

    assert_eq!(forked.state(), Some(SessionState::Running));
    let adopted = sandbox_of(&forked);
    assert_eq!(
        hooks.stack.emulator.calls_to(Route::ForkSandbox).len(),
        1,
        "a fork is never retried blindly"
    );
    let live: Vec<_> = forks_of(&hooks, &source_sandbox)
        .into_iter()
        .filter(|s| s.state != SandboxState::Killed)
        .map(|s| s.sandbox_id)
        .collect();
    assert_eq!(
        live.as_slice(),
        std::slice::from_ref(&adopted),
        "one claim leaves one sandbox"
    );
    assert_eq!(forks_of(&hooks, &source_sandbox).len(), 2, "the extra was killed");
    hooks.settle().await;
    let fork = hooks.record(&fork_key(&hooks)).await;
    assert_eq!(fork.state(), Some(SessionState::Running));
    assert_eq!(sandbox_of(&fork), adopted);
    assert!(
        hooks
            .log(&fork_key(&hooks))
            .await
            .iter()
            .any(|l| l.cause.contains("its sandbox adopted"))
    );
    let source_after = hooks.record(&source).await;
    assert_eq!(source_after.version, before.version);
    assert_eq!(sandbox_of(&source_after), source_sandbox);

    // A second live fork of the same source: the first one's sandbox is a project's, never adopted.
    hooks.stack.emulator.set_fault(
        Route::ForkSandbox,
        Fault {
            applied_then_fail_next: 1,
            error_status: 502,
            ..Fault::default()
        },
    );
    let second = fork_live(&hooks, &source, "copy2").await.expect("forked");
    assert_ne!(sandbox_of(&second), adopted);
    assert_eq!(sandbox_of(&hooks.record(&fork_key(&hooks)).await), adopted);
    assert_eq!(
        hooks.stack.emulator.sandbox(&adopted).unwrap().state,
        SandboxState::Running
    );
}

#[tokio::test]
async fn a_refused_live_fork_runs_nothing_and_the_project_opens_fresh_later() {
    let hooks = Hooks::start().await;
    let (source, source_sandbox, _) = source_with_memory(&hooks).await;
    hooks.stack.emulator.set_fault(
        Route::ForkSandbox,
        Fault {
            fail_next: 1,
            error_status: 503,
            ..Fault::default()
        },
    );
    let refused = fork_live(&hooks, &source, "copy").await;
    assert!(matches!(refused, Err(Error::E2b(_))), "{refused:?}");
    assert!(forks_of(&hooks, &source_sandbox).is_empty());
    let fork = hooks.record(&fork_key(&hooks)).await;
    assert_eq!(fork.state(), Some(SessionState::Killed), "the claim rolled back");
    assert!(fork.session.as_ref().unwrap().last_error.is_some());

    let opened = hooks.stack.sandman.open(&fork_key(&hooks), Actor::User).await.unwrap();
    assert_eq!(opened.path, OpenPath::Created, "from its template, as documented");
    assert_eq!(hooks.record(&source).await.state(), Some(SessionState::Running));
}

#[tokio::test]
async fn a_live_fork_of_a_paused_source_is_409_and_creates_nothing() {
    let hooks = Hooks::start().await;
    let (source, source_sandbox, _) = source_with_memory(&hooks).await;
    sync(&hooks);
    let record = hooks.record(&source).await;
    let pause = PauseRequest {
        key: source.clone(),
        expected_version: record.version,
        sandbox_id: source_sandbox.clone(),
        actor: Actor::User,
        cause: "paused by user".into(),
        idle_by: None,
        snapshot_first: false,
    };
    assert!(matches!(
        hooks.stack.sandman.pause(pause).await,
        Ok(PauseOutcome::Paused)
    ));
    hooks.settle().await;
    hooks.stack.emulator.clear_calls();

    let token = mint_dev_token(
        &hooks.stack.sandman.config.auth,
        &Secret::new(JWT_SECRET),
        &hooks.stack.team(),
        "tester",
        Duration::from_secs(600),
    )
    .unwrap();
    let router = router_for(hooks.stack.sandman.clone());
    let answer = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/source/fork",
            Some(&token),
            Some(json!({"projectId": "copy", "from": "live"})),
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::CONFLICT, "{answer:?}");
    assert!(
        answer.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("paused") && m.contains("RUNNING")),
        "{answer:?}"
    );
    assert!(hooks.stack.emulator.calls().is_empty(), "nothing asked of E2B");
    assert!(forks_of(&hooks, &source_sandbox).is_empty());
    let stored = hooks
        .stack
        .store()
        .get_project(&fork_key(&hooks), sandman::store::Consistency::Strong)
        .await
        .unwrap();
    assert!(stored.is_none(), "no project created");
    assert_eq!(hooks.record(&source).await.state(), Some(SessionState::Paused));
    let with_snapshot = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/source/fork",
            Some(&token),
            Some(json!({"projectId": "copy", "from": "live", "snapshotId": "x"})),
        ),
    )
    .await;
    assert_eq!(with_snapshot.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn live_forks_of_one_source_run_one_at_a_time() {
    let hooks = Hooks::start().await;
    let (source, source_sandbox, _) = source_with_memory(&hooks).await;
    // Another live fork of the source under way (its mark, one lease long).
    let now = hooks.stack.clock.now();
    let other = ProjectId::parse("other").unwrap();
    let store = hooks.stack.store();
    assert!(
        store
            .mark_live_fork(&source, &other, now + Duration::from_secs(40), now)
            .await
            .unwrap()
    );
    hooks.stack.emulator.clear_calls();

    let refused = fork_live(&hooks, &source, "copy").await;

    assert!(
        matches!(&refused, Err(Error::Conflict(m)) if m.contains("another live fork")),
        "{refused:?}"
    );
    assert!(hooks.stack.emulator.calls().is_empty(), "nothing asked of E2B");
    assert!(forks_of(&hooks, &source_sandbox).is_empty());
    store.clear_live_fork(&source, &other).await.unwrap();
    let forked = fork_live(&hooks, &source, "copy").await.expect("its turn");
    assert_eq!(forked.state(), Some(SessionState::Running));
    let again = fork_live(&hooks, &source, "copy2")
        .await
        .expect("the mark was cleared after the fork");
    assert_eq!(again.state(), Some(SessionState::Running));
}
