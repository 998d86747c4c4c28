//! Usage, budgets, fork and inactivity tiers, end to end: DynamoDB Local, the E2B emulator and its
//! real signed webhooks delivered to the webhook router, the API router in-process.

#[path = "api_kit/mod.rs"]
mod api_kit;
#[path = "webhook/support.rs"]
mod support;

use std::time::Duration;

use api_kit::{request, router_for, send};
use e2b_emulator::{SandboxState, WebhookFaults};
use http::{Method, StatusCode};
use sandman::Error;
use sandman::auth::{mint_admin_token, mint_dev_token};
use sandman::domain::{
    Actor, InactivityPolicy, ProjectId, ProjectKey, RetentionPolicy, SessionState, SnapshotKind, Usage,
};
use sandman::fork::ForkFrom;
use sandman::retention::PassOptions;
use sandman::secrets::Secret;
use sandman::usage::Period;
use sandman::workspace::{OpenPath, PauseOutcome, PauseRequest};
use sandman_local::fixture::JWT_SECRET;
use serde_json::json;
use support::{Hooks, assert_usage, usage_in};

const HOUR: Duration = Duration::from_secs(3600);

fn sandbox_of(record: &sandman::store::ProjectRecord) -> String {
    record
        .session
        .as_ref()
        .and_then(|s| s.sandbox.as_ref())
        .map(|s| s.sandbox_id.clone())
        .expect("a sandbox")
}

/// The emulator's clock runs on in real time beside the test's hand-moved one; on a loaded machine
/// they drift apart far enough for the receiver to refuse events as from the future. Catch up.
fn sync(hooks: &Hooks) {
    let lag = hooks.stack.emulator.now() - hooks.stack.clock.now();
    if lag.is_positive() {
        hooks.stack.clock.advance(lag.unsigned_abs());
    }
}

async fn pause(hooks: &Hooks, key: &ProjectKey) {
    sync(hooks);
    let record = hooks.record(key).await;
    let request = PauseRequest {
        key: key.clone(),
        expected_version: record.version,
        sandbox_id: sandbox_of(&record),
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
}

fn sum(a: Usage, b: Usage) -> Usage {
    Usage {
        run_seconds: a.run_seconds + b.run_seconds,
        vcpu_seconds: a.vcpu_seconds + b.vcpu_seconds,
        memory_mb_seconds: a.memory_mb_seconds + b.memory_mb_seconds,
    }
}

fn token(hooks: &Hooks, admin: bool) -> String {
    let mint = if admin { mint_admin_token } else { mint_dev_token };
    mint(
        &hooks.stack.sandman.config.auth,
        &Secret::new(JWT_SECRET),
        &hooks.stack.team(),
        "tester",
        Duration::from_secs(600),
    )
    .expect("a token")
}

#[tokio::test]
async fn usage_per_period_matches_what_e2b_reported_once_however_often_it_is_delivered() {
    let hooks = Hooks::start().await;
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        duplicate: true,
        ..WebhookFaults::default()
    });
    let (key, sandbox) = hooks.running("app").await;
    let (other, _) = hooks.running("other").await;
    let timeout_at = hooks.record(&key).await.session.unwrap().timeout_at.expect("a timeout");
    hooks.stack.advance(Duration::from_secs(600)).await;
    pause(&hooks, &key).await;
    let paused_at = hooks.stack.clock.now();
    hooks.stack.sandman.open(&key, Actor::User).await.expect("resumed");
    hooks.settle().await;
    hooks.stack.advance(Duration::from_secs(300)).await;
    sync(&hooks);
    hooks
        .stack
        .sandman
        .kill(&key, Some(false), Actor::User)
        .await
        .expect("killed");
    hooks.stack.advance(Duration::from_secs(100)).await;
    sync(&hooks);
    hooks
        .stack
        .sandman
        .kill(&other, Some(false), Actor::User)
        .await
        .expect("killed");
    hooks.settle().await;

    let paused = hooks.delivered("paused");
    let killed = hooks.delivered("killed");
    assert!(
        paused.len() >= 2 && killed.len() >= 4,
        "every event was delivered twice"
    );
    let reported = |body: &serde_json::Value| body["sandbox_id"] == sandbox.as_str();
    let app_paused = paused.iter().find(|(_, b)| reported(b)).expect("the pause").1.clone();
    let app_killed = killed.iter().find(|(_, b)| reported(b)).expect("the kill").1.clone();
    let other_killed = killed
        .iter()
        .find(|(_, b)| !reported(b))
        .expect("the other kill")
        .1
        .clone();
    let app = sum(usage_in(&app_paused), usage_in(&app_killed));
    assert!(
        app.run_seconds >= 900.0 && app.run_seconds < 1000.0,
        "600 s, then 300 s (and real time): {app:?}"
    );

    let period = Period::of(hooks.stack.clock.now());
    let project = hooks.stack.sandman.project_usage(&key, period).await.unwrap();
    assert_usage(project.used, app);
    let team = hooks.stack.sandman.team_usage(&key.team, period).await.unwrap();
    assert_usage(team.used, sum(app, usage_in(&other_killed)));
    // Saved: from E2B's pause (the time its event carries: E2B's clock, which runs on in real time
    // beside the test's hand-moved one) to the timeout Sandman had given E2B.
    let e2b_paused_at = time::OffsetDateTime::parse(
        app_paused["timestamp"].as_str().expect("the event's time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert!(
        e2b_paused_at >= paused_at - time::Duration::seconds(1),
        "E2B's clock is not behind"
    );
    let saved_seconds = (timeout_at - e2b_paused_at).as_seconds_f64();
    assert!(
        (project.saved.run_seconds - saved_seconds).abs() < 0.01,
        "{project:?} vs {saved_seconds}"
    );
    assert!((project.saved.vcpu_seconds - 2.0 * project.saved.run_seconds).abs() < 1e-6);
    assert_eq!(
        hooks
            .stack
            .sandman
            .project_usage(&key, period.next())
            .await
            .unwrap()
            .used,
        Usage::default(),
        "a new period starts from zero"
    );

    let router = router_for(hooks.stack.sandman.clone());
    let reply = send(
        &router,
        request(Method::GET, "/v1/projects/app/usage", Some(&token(&hooks, false)), None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert!((reply.json["used"]["runSeconds"].as_f64().unwrap() - app.run_seconds).abs() < 1e-6);
    let cost = app.vcpu_seconds * 0.000014 + app.memory_mb_seconds / 1024.0 * 0.0000045;
    assert!((reply.json["used"]["estimatedCostUsd"].as_f64().unwrap() - cost).abs() < 1e-9);
    assert_eq!(reply.json["rates"]["asOf"], "2026-11-27");
    let team_reply = send(
        &router,
        request(
            Method::GET,
            &format!("/v1/usage?period={period}"),
            Some(&token(&hooks, false)),
            None,
        ),
    )
    .await;
    assert_eq!(team_reply.status, StatusCode::OK);
    assert!((team_reply.json["used"]["runSeconds"].as_f64().unwrap() - team.used.run_seconds).abs() < 1e-6);
    let bad = send(
        &router,
        request(
            Method::GET,
            "/v1/usage?period=2026-13",
            Some(&token(&hooks, false)),
            None,
        ),
    )
    .await;
    assert_eq!(
        (bad.status, bad.json["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn a_team_over_budget_has_its_sandboxes_paused_and_its_opens_refused_with_402() {
    let hooks = Hooks::start().await;
    let (a, _) = hooks.running("a").await;
    let (b, b_sandbox) = hooks.running("b").await;
    let router = router_for(hooks.stack.sandman.clone());

    let refused = send(
        &router,
        request(
            Method::PUT,
            "/v1/budget",
            Some(&token(&hooks, false)),
            Some(json!({"monthlyUsd": 0.01})),
        ),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "only admins set the budget: {refused:?}"
    );
    // 2 vCPU + 512 MiB cost $0.00003025 a second: $0.01 is used up after about 330 s.
    let set = send(
        &router,
        request(
            Method::PUT,
            "/v1/budget",
            Some(&token(&hooks, true)),
            Some(json!({"monthlyUsd": 0.01})),
        ),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{set:?}");
    assert_eq!(
        (set.json["reached"].as_bool(), set.json["spentUsd"].as_f64()),
        (Some(false), Some(0.0))
    );

    hooks.stack.advance(Duration::from_secs(400)).await;
    pause(&hooks, &a).await;

    let log = hooks.log(&a).await;
    let causes: Vec<&str> = log.iter().map(|l| l.cause.as_str()).collect();
    assert!(
        causes
            .iter()
            .any(|c| c.starts_with("budget: ") && c.contains("% of the team's monthly budget of $0.01")),
        "{causes:?}"
    );
    assert_eq!(
        causes
            .iter()
            .filter(|c| c.contains("monthly budget of $0.01 is reached"))
            .count(),
        1,
        "{causes:?}"
    );

    let tick = hooks.stack.sandman.enforce_budgets().await.expect("a budget tick");
    assert_eq!((tick.teams, tick.paused, tick.failures), (1, 1, 0));
    assert_eq!(hooks.record(&b).await.state(), Some(SessionState::Paused));
    assert_eq!(
        hooks.stack.emulator.sandbox(&b_sandbox).unwrap().state,
        SandboxState::Paused
    );
    let b_log = hooks.log(&b).await;
    assert!(
        b_log
            .iter()
            .any(|l| l.cause == "budget: the team's monthly budget is reached" && l.to == Some(SessionState::Pausing))
    );
    assert_eq!(
        hooks.stack.sandman.enforce_budgets().await.unwrap().teams,
        0,
        "done: the team leaves the list"
    );

    let creates = hooks.stack.emulator.calls_to(e2b_emulator::Route::ConnectSandbox).len();
    let open = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/a/sandbox",
            Some(&token(&hooks, false)),
            None,
        ),
    )
    .await;
    assert_eq!(
        (open.status, open.json["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("budget_exceeded"))
    );
    let message = open.json["error"]["message"].as_str().unwrap();
    let until = Period::of(hooks.stack.clock.now()).end();
    assert!(message.contains("monthly budget of $0.01"), "{message}");
    assert!(
        message.contains(&until.format(&time::format_description::well_known::Rfc3339).unwrap()),
        "{message}"
    );
    let heartbeat = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/b/sandbox/activity",
            Some(&token(&hooks, false)),
            None,
        ),
    )
    .await;
    assert_eq!(
        heartbeat.status,
        StatusCode::PAYMENT_REQUIRED,
        "activity does not wake it either"
    );
    assert_eq!(
        hooks.stack.emulator.calls_to(e2b_emulator::Route::ConnectSandbox).len(),
        creates,
        "E2B was not asked"
    );

    let budget = send(
        &router,
        request(Method::GET, "/v1/budget", Some(&token(&hooks, false)), None),
    )
    .await;
    assert_eq!(budget.json["reached"], true);
    let raised = send(
        &router,
        request(
            Method::PUT,
            "/v1/budget",
            Some(&token(&hooks, true)),
            Some(json!({"monthlyUsd": 100.0})),
        ),
    )
    .await;
    assert_eq!(raised.json["reached"], false, "{raised:?}");
    let open = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/a/sandbox",
            Some(&token(&hooks, false)),
            None,
        ),
    )
    .await;
    assert_eq!(
        open.status,
        StatusCode::OK,
        "a raised budget lifts the refusal: {open:?}"
    );
}

#[tokio::test]
async fn an_archived_project_reopens_from_its_snapshot_with_its_files() {
    let hooks = Hooks::start().await;
    let stack = &hooks.stack;
    let mut spec = stack.spec("app");
    spec.inactivity = InactivityPolicy {
        archive_after: Some(HOUR),
        ..InactivityPolicy::default()
    };
    spec.retention.keep_last = 1;
    stack.register(&spec).await;
    let key = stack.key("app");
    stack.sandman.open(&key, Actor::User).await.expect("opened");
    let first = sandbox_of(&hooks.record(&key).await);
    // Beyond keepLast once the archive takes its own: the same pass prunes it.
    let record = hooks.record(&key).await;
    stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "before".into())
        .await
        .expect("a snapshot");
    assert!(
        stack
            .emulator
            .write_file(&first, "/home/user/notes.txt", "paused, archived, restored")
    );
    pause(&hooks, &key).await;

    stack.advance(Duration::from_secs(30 * 60)).await;
    stack
        .sandman
        .prune(PassOptions::default())
        .await
        .expect("a pruner tick");
    assert_eq!(
        hooks.record(&key).await.state(),
        Some(SessionState::Paused),
        "not yet an hour"
    );

    stack.advance(HOUR).await;
    let report = stack
        .sandman
        .prune(PassOptions::default())
        .await
        .expect("a pruner tick");
    assert_eq!(report.failures, 0);
    let record = hooks.record(&key).await;
    assert_eq!(record.state(), Some(SessionState::Killed));
    assert_eq!(
        stack.emulator.sandbox(&first).unwrap().state,
        SandboxState::Killed,
        "E2B keeps nothing paused"
    );
    let snapshots = stack.sandman.list_snapshots(&key, None, 10).await.unwrap().items;
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].kind, SnapshotKind::AutoBeforeKill);
    let log = hooks.log(&key).await;
    assert!(
        log.iter().any(|l| l.actor == Actor::Pruner
            && l.to == Some(SessionState::Killed)
            && l.cause.starts_with("archive: ")),
        "{log:?}"
    );

    let reopened = stack.sandman.open(&key, Actor::User).await.expect("reopened");
    assert_eq!(reopened.path, OpenPath::Restored);
    assert_eq!(reopened.restored_from, Some(snapshots[0].snapshot_id.clone()));
    let restored = stack.emulator.sandbox(&sandbox_of(&reopened.record)).unwrap();
    assert_eq!(restored.state, SandboxState::Running);
    assert_eq!(
        restored.files.get("/home/user/notes.txt").map(String::as_str),
        Some("paused, archived, restored")
    );
}

#[tokio::test]
async fn delete_after_removes_an_inactive_projects_snapshots_but_not_its_pins_or_record() {
    let hooks = Hooks::start().await;
    let stack = &hooks.stack;
    let mut spec = stack.spec("app");
    spec.inactivity = InactivityPolicy {
        delete_after: Some(HOUR * 24),
        ..InactivityPolicy::default()
    };
    stack.register(&spec).await;
    let key = stack.key("app");
    stack.sandman.open(&key, Actor::User).await.expect("opened");
    let record = hooks.record(&key).await;
    let kept = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "pinned".into())
        .await
        .unwrap();
    stack.sandman.set_pinned(&key, &kept.snapshot_id, true).await.unwrap();
    stack
        .sandman
        .kill(&key, Some(true), Actor::User)
        .await
        .expect("killed with a snapshot");
    hooks.settle().await;
    assert_eq!(
        stack.sandman.list_snapshots(&key, None, 10).await.unwrap().items.len(),
        2
    );

    stack.advance(HOUR * 25).await;
    stack
        .sandman
        .prune(PassOptions::default())
        .await
        .expect("a pruner tick");
    let left = stack.sandman.list_snapshots(&key, None, 10).await.unwrap().items;
    assert_eq!(
        left.iter().map(|s| &s.snapshot_id).collect::<Vec<_>>(),
        vec![&kept.snapshot_id]
    );
    assert_eq!(stack.emulator.snapshots().len(), 1, "deleted in E2B too");
    assert!(stack.sandman.project(&key).await.is_ok(), "the project stays");
    assert!(
        hooks
            .log(&key)
            .await
            .iter()
            .any(|l| l.cause.starts_with("deleteAfter: 1 snapshot"))
    );
}

#[tokio::test]
async fn a_fork_opens_with_the_sources_files_and_its_snapshot_is_held_until_then() {
    let hooks = Hooks::start().await;
    let stack = &hooks.stack;
    let mut spec = stack.spec("source");
    spec.retention = RetentionPolicy {
        keep_last: 1,
        max_age: None,
    };
    stack.register(&spec).await;
    let source = stack.key("source");
    stack.sandman.open(&source, Actor::User).await.expect("opened");
    let sandbox = sandbox_of(&hooks.record(&source).await);
    stack.emulator.write_file(&sandbox, "/app/main.py", "print('forked')");
    let record = hooks.record(&source).await;
    let chosen = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "v1".into())
        .await
        .unwrap();
    stack
        .emulator
        .write_file(&sandbox, "/app/main.py", "print('changed after')");

    let copy = ProjectId::parse("copy").unwrap();
    let forked = stack
        .sandman
        .fork(&source, copy.clone(), ForkFrom::Snapshot(None))
        .await
        .expect("forked");
    assert_eq!(
        forked.project.fork_of.as_ref().map(|f| &f.snapshot_id),
        Some(&chosen.snapshot_id)
    );
    assert_eq!(forked.state(), None, "no sandbox until it is opened");
    let again = stack
        .sandman
        .fork(&source, copy.clone(), ForkFrom::Snapshot(None))
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");

    // A newer snapshot puts the chosen one past keepLast: the hold keeps it for the fork.
    stack.advance(Duration::from_secs(60)).await;
    let record = hooks.record(&source).await;
    stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "v2".into())
        .await
        .unwrap();
    stack.sandman.prune(PassOptions::default()).await.unwrap();
    assert!(
        stack.sandman.snapshot(&source, &chosen.snapshot_id).await.is_ok(),
        "held for the fork"
    );

    let fork_key = ProjectKey::new(source.team.clone(), copy);
    let opened = stack
        .sandman
        .open(&fork_key, Actor::User)
        .await
        .expect("the fork opens");
    assert_eq!(opened.path, OpenPath::Restored);
    assert_eq!(opened.record.project.fork_of, None, "a project like any other now");
    let restored = stack.emulator.sandbox(&sandbox_of(&opened.record)).unwrap();
    assert_eq!(
        restored.files.get("/app/main.py").map(String::as_str),
        Some("print('forked')")
    );
    assert_ne!(sandbox_of(&opened.record), sandbox, "its own sandbox");
    assert_eq!(
        hooks.log(&fork_key).await.last().map(|l| l.cause.as_str()),
        Some("fork: first open")
    );
    assert!(
        stack
            .sandman
            .list_snapshots(&fork_key, None, 10)
            .await
            .unwrap()
            .items
            .is_empty(),
        "its own snapshots"
    );
    assert_eq!(
        hooks.record(&source).await.state(),
        Some(SessionState::Running),
        "the source runs on"
    );

    // Forking the running sandbox snapshots it now.
    let live = stack
        .sandman
        .fork(&source, ProjectId::parse("live").unwrap(), ForkFrom::Running)
        .await
        .unwrap();
    let opened = stack.sandman.open(&live.project.key(), Actor::User).await.unwrap();
    let restored = stack.emulator.sandbox(&sandbox_of(&opened.record)).unwrap();
    assert_eq!(
        restored.files.get("/app/main.py").map(String::as_str),
        Some("print('changed after')")
    );
}

#[tokio::test]
async fn fork_through_the_api_applies_the_project_quota_and_checks_its_input() {
    let hooks = Hooks::start().await;
    let (_, _) = hooks.running("source").await;
    let router = router_for(hooks.stack.sandman.clone());
    let user = token(&hooks, false);
    let none = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/source/fork",
            Some(&user),
            Some(json!({"projectId": "copy"})),
        ),
    )
    .await;
    assert_eq!(
        (none.status, none.json["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "no snapshot yet"
    );
    let bad = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/source/fork",
            Some(&user),
            Some(json!({"projectId": "no spaces"})),
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let live = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/source/fork",
            Some(&user),
            Some(json!({"projectId": "copy", "from": "running"})),
        ),
    )
    .await;
    assert_eq!(live.status, StatusCode::CREATED, "{live:?}");
    assert_eq!(live.json["projectId"], "copy");
    assert!(live.json["forkOf"]["snapshotId"].is_string());
    let missing = send(
        &router,
        request(
            Method::POST,
            "/v1/projects/nothing/fork",
            Some(&user),
            Some(json!({"projectId": "x"})),
        ),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Security review L3 / the soak's `usage-not-lost`: E2B gives up on a webhook after three
/// attempts, and the compute its event reported was never counted. The reconciler reads E2B's
/// events and counts what no delivery did, once, however often it runs; judged by E2B's own record
/// of what it reported (the emulator's events), not by Sandman's.
#[tokio::test]
async fn usage_whose_webhook_was_dropped_is_counted_from_e2bs_events_once() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    hooks.settle().await;
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        drop_next: 100,
        ..WebhookFaults::default()
    });
    hooks.stack.advance(Duration::from_secs(600)).await;
    pause(&hooks, &key).await;
    sync(&hooks);
    hooks
        .stack
        .sandman
        .kill(&key, Some(false), Actor::User)
        .await
        .expect("killed");
    hooks.settle().await;
    let stopped = [hooks.delivered("paused"), hooks.delivered("killed")].concat();
    assert!(
        !stopped.is_empty()
            && stopped
                .iter()
                .all(|(d, _)| d.outcome == e2b_emulator::DeliveryOutcome::Dropped),
        "both dropped: {stopped:?}"
    );
    let reported: Vec<_> = hooks
        .stack
        .emulator
        .events()
        .into_iter()
        .filter(|e| e.sandbox_id == sandbox && e.execution.is_some())
        .collect();
    let executions: std::collections::BTreeSet<_> = reported.iter().map(|e| e.execution_id.clone()).collect();
    assert_eq!(
        executions.len(),
        1,
        "one run, reported by its pause (and again by its kill)"
    );
    let seconds = reported[0].execution.unwrap().execution_ms as f64 / 1000.0;
    let period = Period::of(hooks.stack.clock.now());
    let before = hooks.stack.sandman.team_usage(&key.team, period).await.unwrap();
    assert_eq!(before.used.run_seconds, 0.0, "nothing delivered, nothing counted");

    let report = hooks.stack.sandman.reconcile().await;
    assert_eq!((report.usage_backfilled, report.errors), (1, 0), "{report:?}");
    assert!(report.usage_events_read >= 2, "{report:?}");
    let team = hooks.stack.sandman.team_usage(&key.team, period).await.unwrap();
    let project = hooks.stack.sandman.project_usage(&key, period).await.unwrap();
    assert!((team.used.run_seconds - seconds).abs() < 1e-6, "{team:?} vs {seconds}");
    assert!(
        (project.used.run_seconds - seconds).abs() < 1e-6,
        "{project:?} vs {seconds}"
    );

    let again = hooks.stack.sandman.reconcile().await;
    assert_eq!((again.usage_backfilled, again.errors), (0, 0), "{again:?}");
    let after = hooks.stack.sandman.team_usage(&key.team, period).await.unwrap();
    assert_eq!(after.used, team.used, "never twice");
}

/// The long soak's `converged`: E2B killed a PAUSED session's sandbox, and the `killed` webhook
/// was lost. The reconciler looks only at what runs, so nothing moved the session: it stayed PAUSED
/// on a sandbox E2B no longer had. The events E2B kept are replayed as late deliveries would be.
#[tokio::test]
async fn a_paused_session_whose_sandbox_e2b_killed_unseen_is_killed_by_one_reconcile() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    pause(&hooks, &key).await;
    hooks.settle().await;
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        drop_next: 100,
        ..WebhookFaults::default()
    });
    let e2b = hooks.stack.sandman.e2b_for(&key).await.unwrap();
    e2b.kill(&sandbox).await.expect("E2B kills it");
    hooks.settle().await;
    assert_eq!(
        hooks.record(&key).await.state(),
        Some(SessionState::Paused),
        "nothing told Sandman"
    );

    let report = hooks.stack.sandman.reconcile().await;

    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(
        hooks.stack.emulator.sandbox(&sandbox).map(|s| s.state),
        Some(SandboxState::Killed)
    );
    assert_eq!(
        hooks.record(&key).await.state(),
        Some(SessionState::Killed),
        "E2B's truth, after one reconcile"
    );
}

/// The short soak's `quiet-ticks`: a PAUSED project due for its archive whose sandbox E2B had
/// ended unseen failed every prune tick (waking it to save it answered 404). Nothing is left to
/// save: the archive records what E2B did, and the tick succeeds.
#[tokio::test]
async fn an_archive_of_a_sandbox_e2b_ended_unseen_records_it_killed_and_fails_nothing() {
    let hooks = Hooks::start().await;
    let stack = &hooks.stack;
    let mut spec = stack.spec("app");
    spec.inactivity = InactivityPolicy {
        archive_after: Some(HOUR),
        ..InactivityPolicy::default()
    };
    stack.register(&spec).await;
    let key = stack.key("app");
    stack.sandman.open(&key, Actor::User).await.expect("opened");
    let sandbox = sandbox_of(&hooks.record(&key).await);
    pause(&hooks, &key).await;
    hooks.settle().await;
    stack.emulator.set_webhook_faults(WebhookFaults {
        drop_next: 100,
        ..WebhookFaults::default()
    });
    stack
        .sandman
        .e2b_for(&key)
        .await
        .unwrap()
        .kill(&sandbox)
        .await
        .expect("E2B ends it");
    hooks.settle().await;

    stack.advance(HOUR + Duration::from_secs(60)).await;
    let report = stack
        .sandman
        .prune(PassOptions::default())
        .await
        .expect("a pruner tick");

    assert_eq!(report.failures, 0, "{report:?}");
    assert_eq!(hooks.record(&key).await.state(), Some(SessionState::Killed));
}
