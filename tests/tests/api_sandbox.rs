//! The sandbox routes: open (and its ladder), status with ETags, heartbeats, pause, resume, kill,
//! and how E2B failures surface.

mod api_kit;

use std::time::Duration;

use api_kit::{ApiStack, assert_error, request, send};
use e2b_emulator::{Fault, Route, SandboxState};
use http::{Method, StatusCode, header};
use serde_json::json;

#[tokio::test]
async fn open_creates_then_answers_already_running() {
    let api = ApiStack::start().await;
    api.register("app").await;
    let first = api.open("app").await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_eq!(first.json["path"], "created");
    assert_eq!(first.json["sandbox"]["state"], "RUNNING");
    let sandbox = first.json["sandbox"]["sandboxId"].as_str().unwrap();
    assert_eq!(first.json["sandbox"]["host"], format!("{sandbox}.e2b.app"));
    assert_eq!(
        api.stack.emulator.sandbox(sandbox).map(|s| s.state),
        Some(SandboxState::Running)
    );

    let again = api.open("app").await;
    assert_eq!(
        (again.status, again.json["path"].as_str()),
        (StatusCode::OK, Some("already-running"))
    );
    assert_eq!(api.stack.emulator.calls_to(Route::CreateSandbox).len(), 1);
    assert_error(&api.open("unregistered").await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn sixteen_concurrent_opens_make_one_sandbox() {
    let api = ApiStack::start().await;
    api.register("app").await;
    let opens = (0..16).map(|_| {
        send(
            &api.router,
            request(Method::POST, "/v1/projects/app/sandbox", Some(&api.token), None),
        )
    });
    let replies = futures::future::join_all(opens).await;
    assert_eq!(
        api.stack.emulator.calls_to(Route::CreateSandbox).len(),
        1,
        "one E2B create for 16 opens"
    );
    let paths: Vec<_> = replies
        .iter()
        .map(|r| r.json["path"].as_str().unwrap_or("<error>").to_string())
        .collect();
    assert_eq!(paths.iter().filter(|p| *p == "created").count(), 1, "{paths:?}");
    for reply in &replies {
        match reply.json["path"].as_str() {
            Some("in-progress") => assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}"),
            Some("created" | "already-running") => {
                assert_eq!(reply.status, StatusCode::OK, "{reply:?}")
            }
            _ => panic!("unexpected answer {reply:?}"),
        }
    }

    // The same for a paused sandbox: one E2B connect.
    assert_eq!(
        api.post("/v1/projects/app/sandbox/pause").await.json["outcome"],
        "paused"
    );
    let opens = (0..16).map(|_| {
        send(
            &api.router,
            request(Method::POST, "/v1/projects/app/sandbox", Some(&api.token), None),
        )
    });
    let replies = futures::future::join_all(opens).await;
    // Opens of a running sandbox confirm it with E2B (a connect that resumes nothing, 200); the
    // resume itself (201) is made once.
    let resumes = api
        .stack
        .emulator
        .calls_to(Route::ConnectSandbox)
        .into_iter()
        .filter(|call| call.status == 201)
        .count();
    assert_eq!(resumes, 1, "one E2B resume for 16 opens");
    assert_eq!(replies.iter().filter(|r| r.json["path"] == "resumed").count(), 1);
    assert_eq!(api.stack.emulator.calls_to(Route::CreateSandbox).len(), 1);
}

#[tokio::test]
async fn the_open_ladder_resumes_restores_and_falls_back_to_the_template() {
    let api = ApiStack::start().await;
    api.register("app").await;
    api.open("app").await;

    // paused -> resumed
    api.post("/v1/projects/app/sandbox/pause").await;
    let resumed = api.open("app").await;
    assert_eq!(
        (resumed.status, resumed.json["path"].as_str()),
        (StatusCode::OK, Some("resumed"))
    );
    assert_eq!(api.stack.emulator.calls_to(Route::ConnectSandbox).len(), 1);

    // killed with a snapshot -> restored from it
    let snapshot = api.post("/v1/projects/app/snapshots").await.json;
    let killed = api
        .call(Method::DELETE, "/v1/projects/app/sandbox?snapshot=false", None)
        .await;
    assert_eq!(killed.json, json!({"alreadyKilled": false, "snapshot": null}));
    let restored = api.open("app").await;
    assert_eq!(restored.json["path"], "restored", "{restored:?}");
    assert_eq!(restored.json["restoredFrom"], snapshot["snapshotId"]);
    let create = api.stack.emulator.calls_to(Route::CreateSandbox).pop().unwrap();
    let asked = create.body.expect("the create's body was recorded")["templateID"].clone();
    let taken: Vec<_> = api
        .stack
        .emulator
        .snapshots()
        .into_iter()
        .map(|s| s.snapshot_id)
        .collect();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(
        asked,
        taken[0].as_str(),
        "created from E2B's snapshot, not the template"
    );

    // the snapshot is gone from E2B -> the template, saying why
    let later = api.post("/v1/projects/app/snapshots").await.json;
    api.call(Method::DELETE, "/v1/projects/app/sandbox?snapshot=false", None)
        .await;
    for snap in api.stack.emulator.snapshots() {
        let e2b = api.stack.sandman.e2b_for(&api.stack.key("app")).await.unwrap();
        e2b.delete_snapshot(&snap.template_id)
            .await
            .expect("deleted behind Sandman's back");
    }
    let creates = api.stack.emulator.calls_to(Route::CreateSandbox).len();
    let fallback = api.open("app").await;
    assert_eq!(fallback.json["path"], "created", "{fallback:?}");
    assert_eq!(fallback.json["restoredFrom"], json!(null));
    // Both snapshots were tried, newest first, then the template; the reason names the last one.
    let tried: Vec<_> = api.stack.emulator.calls_to(Route::CreateSandbox)[creates..]
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(tried, [404, 404, 201]);
    let reason = fallback.json["fallbackReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(snapshot["snapshotId"].as_str().unwrap()) && reason.contains("not found"),
        "{reason}"
    );
    assert!(later["snapshotId"].as_str().unwrap() > snapshot["snapshotId"].as_str().unwrap());
    let create = api.stack.emulator.calls_to(Route::CreateSandbox).pop().unwrap();
    assert_eq!(create.body.unwrap_or_default()["templateID"], "base");
}

#[tokio::test]
async fn status_is_one_eventually_consistent_read_with_an_etag() {
    let api = ApiStack::start().await;
    api.register("app").await;
    let never_opened = api.get("/v1/projects/app/sandbox").await;
    assert_eq!(
        (never_opened.status, &never_opened.json["state"]),
        (StatusCode::OK, &json!(null))
    );
    assert_eq!(never_opened.json["pollAfterMs"], json!(null));
    api.open("app").await;

    let calls = api.stack.emulator.calls().len();
    let before = api.capacity();
    let status = api.get("/v1/projects/app/sandbox").await;
    let used = api.capacity();
    assert_eq!(
        (
            used.calls - before.calls,
            used.read_units - before.read_units,
            used.write_units - before.write_units
        ),
        (1, 0.5, 0.0)
    );
    assert_eq!(api.stack.emulator.calls().len(), calls, "status never asks E2B");
    assert_eq!(status.json["state"], "RUNNING");
    assert_eq!(status.json["pollAfterMs"], 30_000);
    let idle_at = time::OffsetDateTime::parse(
        status.json["pauseAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let active = time::OffsetDateTime::parse(
        status.json["lastActiveAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(idle_at - active, time::Duration::seconds(600));
    assert!(status.json["timeoutAt"].is_string());
    let etag = status.headers[header::ETAG].to_str().unwrap().to_string();

    let conditional = |tag: String| {
        let mut request = request(Method::GET, "/v1/projects/app/sandbox", Some(&api.token), None);
        request
            .headers_mut()
            .insert(header::IF_NONE_MATCH, tag.parse().unwrap());
        send(&api.router, request)
    };
    let unchanged = conditional(etag.clone()).await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.headers[header::ETAG], etag.as_str());
    assert_eq!(conditional("\"stale\"".into()).await.status, StatusCode::OK);

    // A heartbeat that writes moves lastActiveAt (not the version): the ETag changes. The interval
    // follows the project's idle timeout: 75 s for 10 minutes.
    api.advance(Duration::from_secs(80)).await;
    assert_eq!(
        api.post("/v1/projects/app/sandbox/activity").await.json["outcome"],
        "recorded"
    );
    let moved = conditional(etag.clone()).await;
    assert_eq!(moved.status, StatusCode::OK);
    assert_ne!(moved.headers[header::ETAG], etag.as_str());

    api.post("/v1/projects/app/sandbox/pause").await;
    let paused = api.get("/v1/projects/app/sandbox").await;
    assert_eq!(
        (
            &paused.json["state"],
            &paused.json["pollAfterMs"],
            &paused.json["pauseAt"]
        ),
        (&json!("PAUSED"), &json!(null), &json!(null))
    );
    assert_error(
        &api.get("/v1/projects/missing/sandbox").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn heartbeats_are_throttled_in_memory_and_by_the_stored_time() {
    let api = ApiStack::start().await;
    api.register("app").await;
    api.open("app").await;
    let e2b_calls = || api.stack.emulator.calls().len();
    let calls = e2b_calls();

    // Just opened: the stored lastActiveAt is recent. One read, no write, then memory alone.
    let before = api.capacity();
    assert_eq!(
        api.post("/v1/projects/app/sandbox/activity").await.json["outcome"],
        "throttled"
    );
    let after_first = api.capacity();
    assert_eq!(
        (
            after_first.calls - before.calls,
            after_first.write_units - before.write_units
        ),
        (1, 0.0)
    );
    for _ in 0..5 {
        assert_eq!(
            api.post("/v1/projects/app/sandbox/activity").await.json["outcome"],
            "throttled"
        );
    }
    // The state is read first (a paused sandbox must wake), so each costs one eventually
    // consistent read; none writes.
    let throttled = api.capacity();
    assert_eq!(
        throttled.write_units, after_first.write_units,
        "throttled heartbeats write nothing"
    );
    assert_eq!(throttled.calls - after_first.calls, 5);

    // Past the interval (75 s for a 10-minute idle timeout): one read and one write; E2B's
    // timeout is far from running out.
    api.advance(Duration::from_secs(80)).await;
    let recorded = api.post("/v1/projects/app/sandbox/activity").await;
    assert_eq!(
        recorded.json,
        json!({"outcome": "recorded", "extendedTimeout": false, "state": "RUNNING"})
    );
    let after_write = api.capacity();
    assert_eq!(after_write.calls - throttled.calls, 2);
    assert!(after_write.write_units > throttled.write_units);
    assert_eq!(e2b_calls(), calls, "no E2B call while the timeout is far");

    // Another Lambda instance has no memory of it, but the stored time throttles it: read, no write.
    let (other, other_store) = api.another_instance();
    let reply = send(
        &other,
        request(
            Method::POST,
            "/v1/projects/app/sandbox/activity",
            Some(&api.token),
            None,
        ),
    )
    .await;
    assert_eq!(reply.json["outcome"], "throttled");
    let used = other_store.capacity().total();
    assert_eq!((used.calls, used.read_units, used.write_units), (1, 0.5, 0.0));

    // With less than half of E2B's timeout left, a heartbeat extends it.
    api.advance(Duration::from_secs(1000)).await;
    let extended = api.post("/v1/projects/app/sandbox/activity").await;
    assert_eq!(extended.json["extendedTimeout"], true, "{extended:?}");
    assert_eq!(api.stack.emulator.calls_to(Route::SetTimeout).len(), 1);
    assert_eq!(e2b_calls(), calls + 1);
}

#[tokio::test]
async fn a_heartbeat_wakes_a_paused_sandbox_and_ignores_a_killed_one() {
    let api = ApiStack::start().await;
    api.register("app").await;
    assert_eq!(
        api.post("/v1/projects/app/sandbox/activity").await.json,
        json!({"outcome": "ignored"})
    );
    api.open("app").await;
    api.post("/v1/projects/app/sandbox/pause").await;
    let woke = api.post("/v1/projects/app/sandbox/activity").await;
    assert_eq!(woke.json["outcome"], "woke", "{woke:?}");
    assert_eq!(woke.json["opened"]["path"], "resumed");
    assert_eq!(woke.json["state"], "RUNNING");
    api.call(Method::DELETE, "/v1/projects/app/sandbox", None).await;
    api.advance(Duration::from_secs(31)).await;
    assert_eq!(
        api.post("/v1/projects/app/sandbox/activity").await.json,
        json!({"outcome": "ignored", "state": "KILLED"})
    );
}

#[tokio::test]
async fn pause_resume_and_kill() {
    let api = ApiStack::start().await;
    api.register("app").await;
    assert_error(
        &api.post("/v1/projects/app/sandbox/pause").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &api.post("/v1/projects/app/sandbox/resume").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let sandbox = api.open("app").await.json["sandbox"]["sandboxId"]
        .as_str()
        .unwrap()
        .to_string();
    let running = api.post("/v1/projects/app/sandbox/resume").await;
    assert_eq!(
        (running.status, &running.json["path"]),
        (StatusCode::OK, &json!("already-running"))
    );

    let paused = api.post("/v1/projects/app/sandbox/pause").await;
    assert_eq!(
        (paused.status, &paused.json["outcome"], &paused.json["sandbox"]["state"]),
        (StatusCode::OK, &json!("paused"), &json!("PAUSED"))
    );
    assert_eq!(
        api.stack.emulator.sandbox(&sandbox).map(|s| s.state),
        Some(SandboxState::Paused)
    );
    assert_eq!(
        api.post("/v1/projects/app/sandbox/pause").await.json["outcome"],
        "already-paused"
    );

    let resumed = api.post("/v1/projects/app/sandbox/resume").await;
    assert_eq!(
        (resumed.status, &resumed.json["path"]),
        (StatusCode::OK, &json!("resumed"))
    );

    assert_error(
        &api.call(Method::DELETE, "/v1/projects/app/sandbox?snapshot=maybe", None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let killed = api
        .call(Method::DELETE, "/v1/projects/app/sandbox?snapshot=true", None)
        .await;
    assert_eq!(killed.status, StatusCode::OK, "{killed:?}");
    assert_eq!(killed.json["alreadyKilled"], false);
    assert_eq!(killed.json["snapshot"]["kind"], "auto-before-kill");
    assert_eq!(
        api.stack.emulator.sandbox(&sandbox).map(|s| s.state),
        Some(SandboxState::Killed)
    );
    assert_eq!(
        api.call(Method::DELETE, "/v1/projects/app/sandbox", None).await.json["alreadyKilled"],
        true
    );

    let events = api.get("/v1/projects/app/events?limit=100").await;
    let moves: Vec<_> = events.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        moves.first().map(String::as_str),
        Some("KILLED"),
        "newest first: {moves:?}"
    );
    assert_eq!(moves.last().map(String::as_str), Some("STARTING"));
    assert!(
        events.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "user")
    );
}

#[tokio::test]
async fn e2b_failures_map_to_429_503_and_leave_nothing_half_done() {
    let api = ApiStack::start().await;
    api.register("app").await;
    api.stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            rate_limit_burst: 100,
            ..Fault::default()
        },
    );
    let limited = api.open("app").await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "e2b_rate_limited");
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(
        api.get("/v1/projects/app/sandbox").await.json["state"],
        "KILLED",
        "the failed start was rolled back"
    );
    assert!(api.stack.emulator.sandboxes().is_empty(), "and E2B made nothing");

    api.stack.emulator.set_fault(
        Route::CreateSandbox,
        Fault {
            fail_next: 1,
            error_status: 503,
            ..Fault::default()
        },
    );
    assert_error(
        &api.open("app").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "e2b_unavailable",
    );
    assert!(
        api.stack.emulator.sandboxes().is_empty(),
        "a refused create makes nothing in E2B"
    );
    api.stack.emulator.clear_faults();
    // A 503 may hide a create that happened: the claim stays until its lease lapses, then the
    // next open looks (and starts one only if E2B has none for it).
    assert_eq!(api.open("app").await.json["path"], "in-progress");
    api.stack
        .advance(sandman::domain::CLAIM_LEASE + std::time::Duration::from_secs(1))
        .await;
    let created = api.open("app").await;
    assert_eq!(created.json["path"], "created");
    let sandbox = created.json["sandbox"]["sandboxId"].as_str().expect("an id").to_owned();

    api.stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            fail_next: 10,
            error_status: 500,
            ..Fault::default()
        },
    );
    assert_error(
        &api.post("/v1/projects/app/sandbox/pause").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "e2b_unavailable",
    );
    let after = api.get("/v1/projects/app/sandbox").await;
    assert_eq!(after.json["state"], "RUNNING", "the failed pause was rolled back");
    assert!(after.json["lastError"].is_string());
    assert_eq!(
        api.stack.emulator.sandbox(&sandbox).map(|s| s.reported_state()),
        Some(SandboxState::Running),
        "E2B runs it, as the table says"
    );
    assert_eq!(api.stack.emulator.sandboxes().len(), 1, "and nothing else");
}

#[tokio::test]
async fn busy_policies_are_project_settings_and_busy_for_seconds_holds_the_sandbox() {
    let api = ApiStack::start().await;
    let body = json!({"templateId": "base", "idleTimeoutSeconds": 300, "busyCpuPercent": 70,
        "maxBusyForSeconds": 1800, "capHandoff": "snapshot-reopen"});
    let put = api.call(Method::PUT, "/v1/projects/app", Some(body)).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let project = api.get("/v1/projects/app").await.json;
    assert_eq!(
        (
            &project["busyCpuPercent"],
            &project["maxBusyDeferralSeconds"],
            &project["maxBusyForSeconds"],
            &project["capHandoff"]
        ),
        (&json!(70), &json!(7200), &json!(1800), &json!("snapshot-reopen"))
    );
    let bad = api
        .call(
            Method::PUT,
            "/v1/projects/app",
            Some(json!({"templateId": "base", "capHandoff": "later"})),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_request");
    api.open("app").await;
    let opened_at = api.stack.clock.now();

    let refused = api
        .call(
            Method::POST,
            "/v1/projects/app/sandbox/activity",
            Some(json!({"busyForSeconds": 0})),
        )
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "invalid_request");
    let held = api
        .call(
            Method::POST,
            "/v1/projects/app/sandbox/activity",
            Some(json!({"busyForSeconds": 7200})),
        )
        .await;

    assert_eq!(
        (held.status, held.json["outcome"].as_str()),
        (StatusCode::OK, Some("recorded")),
        "{held:?}"
    );
    let session = api
        .stack
        .store()
        .get_project(&api.stack.key("app"), sandman::store::Consistency::Strong)
        .await
        .unwrap()
        .unwrap()
        .session
        .unwrap();
    assert_eq!(
        session.busy_until,
        Some(opened_at + Duration::from_secs(1800)),
        "capped by maxBusyForSeconds"
    );
    assert_eq!(session.idle_at, session.busy_until);
}
