//! The per-team snapshot quota (`SANDMAN_MAX_SNAPSHOTS_PER_TEAM`): a manual snapshot past it
//! answers 429 and changes nothing, counted over all the team's projects; another team's
//! snapshots do not count; an automatic snapshot before a kill is never refused, and the team's
//! oldest unpinned snapshots make room for it; pins are limited per project; the count is exact.

mod api_kit;

use std::time::Duration;

use api_kit::{ApiStack, assert_error};
use aws_sdk_dynamodb::types::AttributeValue;
use e2b_emulator::Route;
use http::{Method, StatusCode};
use serde_json::json;

async fn snapshot(api: &ApiStack, project: &str) -> api_kit::Reply {
    api.call(
        Method::POST,
        &format!("/v1/projects/{project}/snapshots"),
        Some(json!({})),
    )
    .await
}

#[tokio::test]
async fn a_manual_snapshot_past_the_teams_quota_answers_429_and_changes_nothing() {
    let api = ApiStack::start_with(|var| (var == "SANDMAN_MAX_SNAPSHOTS_PER_TEAM").then(|| "2".into())).await;
    for project in ["one", "two"] {
        api.register(project).await;
        assert_eq!(api.open(project).await.status, StatusCode::OK);
    }
    assert_eq!(snapshot(&api, "one").await.status, StatusCode::CREATED);
    let second = snapshot(&api, "two").await;
    assert_eq!(second.status, StatusCode::CREATED, "{second:?}");

    let before = api.stack.table.contents().await;
    let taken = api.stack.emulator.calls_to(Route::CreateSnapshot).len();
    for project in ["one", "two"] {
        let refused = snapshot(&api, project).await;
        assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded");
        assert!(refused.message().contains("2 snapshots"), "{refused:?}");
    }
    assert_eq!(api.stack.table.contents().await, before, "the table is unchanged");
    assert_eq!(
        api.stack.emulator.calls_to(Route::CreateSnapshot).len(),
        taken,
        "E2B was not asked"
    );

    // Another team's quota is its own.
    let other = api.token_for("team-b");
    let send =
        |method, path: &str, body| api_kit::send(&api.router, api_kit::request(method, path, Some(&other), body));
    assert_eq!(
        send(Method::PUT, "/v1/projects/one", Some(json!({"templateId": "base"})))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(Method::POST, "/v1/projects/one/sandbox", None).await.status,
        StatusCode::OK
    );
    let theirs = send(Method::POST, "/v1/projects/one/snapshots", Some(json!({}))).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{theirs:?}");

    // Deleting one makes room again.
    let id = second.json["snapshotId"].as_str().unwrap();
    let deleted = api
        .call(Method::DELETE, &format!("/v1/projects/two/snapshots/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert_eq!(snapshot(&api, "one").await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_snapshot_before_a_kill_is_taken_even_at_the_quota() {
    let api = ApiStack::start_with(|var| (var == "SANDMAN_MAX_SNAPSHOTS_PER_TEAM").then(|| "1".into())).await;
    let settings = json!({"templateId": "base", "snapshotBeforeKill": true});
    let put = api.call(Method::PUT, "/v1/projects/app", Some(settings)).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(api.open("app").await.status, StatusCode::OK);
    assert_eq!(snapshot(&api, "app").await.status, StatusCode::CREATED);
    assert_error(
        &snapshot(&api, "app").await,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
    );

    let killed = api.call(Method::DELETE, "/v1/projects/app/sandbox", None).await;
    assert_eq!(killed.status, StatusCode::OK, "{killed:?}");
    let listed = api.get("/v1/projects/app/snapshots").await;
    let kinds: Vec<_> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_owned())
        .collect();
    // Taken past the quota: the team's oldest unpinned snapshot made room.
    assert_eq!(kinds, ["auto-before-kill"], "{listed:?}");
}

/// Every snapshot row of the team, read from the table itself: the ground truth the quota's
/// counter must match.
async fn snapshot_rows(api: &ApiStack) -> usize {
    let team = format!("PROJECT#{}#", api.stack.team());
    api.stack
        .table
        .contents()
        .await
        .iter()
        .filter(|item| item.contains(&format!("S(\"{team}")) && item.contains("S(\"SNAPSHOT#"))
        .count()
}

/// The team's snapshot counter as stored (`TEAM#{team}` / `SNAPSHOTS`).
async fn counted(api: &ApiStack) -> Option<i64> {
    let out = api
        .stack
        .table
        .client
        .get_item()
        .table_name(&api.stack.table.name)
        .key("pk", AttributeValue::S(format!("TEAM#{}", api.stack.team())))
        .key("sk", AttributeValue::S("SNAPSHOTS".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item()
        .and_then(|item| item.get("snapshotCount"))
        .and_then(|n| n.as_n().ok())
        .map(|n| n.parse().unwrap())
}

async fn ids(api: &ApiStack, project: &str) -> Vec<String> {
    let listed = api.get(&format!("/v1/projects/{project}/snapshots")).await;
    assert_eq!(listed.status, StatusCode::OK, "{listed:?}");
    listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshotId"].as_str().unwrap().to_owned())
        .collect()
}

/// Security review M1: automatic snapshots count. One taken past the quota is still taken (the
/// work is saved) and the team's oldest unpinned snapshot, in another project here, goes to make
/// room: in E2B and in the table; the pruned project's lifecycle log says why.
#[tokio::test]
async fn an_automatic_snapshot_past_the_quota_prunes_the_teams_oldest_unpinned_one() {
    let api = ApiStack::start_with(|var| (var == "SANDMAN_MAX_SNAPSHOTS_PER_TEAM").then(|| "3".into())).await;
    api.register("one").await;
    let put = api
        .call(
            Method::PUT,
            "/v1/projects/two",
            Some(json!({"templateId": "base", "snapshotBeforeKill": true})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    for project in ["one", "two"] {
        assert_eq!(api.open(project).await.status, StatusCode::OK);
    }
    let mut taken = Vec::new();
    for project in ["one", "one", "two"] {
        let reply = snapshot(&api, project).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        taken.push(reply.json["snapshotId"].as_str().unwrap().to_owned());
        api.advance(Duration::from_secs(5)).await;
    }
    let (oldest, pinned, theirs) = (&taken[0], &taken[1], &taken[2]);
    let pin = api
        .call(
            Method::PATCH,
            &format!("/v1/projects/one/snapshots/{pinned}"),
            Some(json!({"pinned": true})),
        )
        .await;
    assert_eq!(pin.status, StatusCode::OK, "{pin:?}");
    assert_eq!(api.stack.emulator.snapshots().len(), 3);

    let killed = api.call(Method::DELETE, "/v1/projects/two/sandbox", None).await;
    assert_eq!(killed.status, StatusCode::OK, "the kill is never refused: {killed:?}");
    let two = ids(&api, "two").await;
    assert_eq!(two.len(), 2, "the automatic snapshot was taken: {two:?}");
    assert!(two.contains(theirs));
    assert_eq!(
        ids(&api, "one").await,
        vec![pinned.clone()],
        "the oldest unpinned one went"
    );
    assert_eq!(api.stack.emulator.snapshots().len(), 3, "in E2B too");
    assert_eq!(snapshot_rows(&api).await, 3);
    let events = api.get("/v1/projects/one/events").await;
    let said = events.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["cause"].as_str())
        .any(|cause| cause.contains(oldest.as_str()) && cause.contains("snapshot quota"));
    assert!(said, "the lifecycle log says why: {events:?}");
}

/// Security review M1: a fork from the running sandbox takes a snapshot the user asked for, so
/// the quota refuses it like any manual one, before E2B is asked.
#[tokio::test]
async fn a_fork_from_the_running_sandbox_past_the_quota_answers_429_and_changes_nothing() {
    let api = ApiStack::start_with(|var| (var == "SANDMAN_MAX_SNAPSHOTS_PER_TEAM").then(|| "1".into())).await;
    api.register("app").await;
    assert_eq!(api.open("app").await.status, StatusCode::OK);
    assert_eq!(snapshot(&api, "app").await.status, StatusCode::CREATED);
    let before = api.stack.table.contents().await;
    let taken = api.stack.emulator.calls_to(Route::CreateSnapshot).len();
    let fork = api
        .call(
            Method::POST,
            "/v1/projects/app/fork",
            Some(json!({"projectId": "copy", "from": "running"})),
        )
        .await;
    assert_error(&fork, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded");
    assert_eq!(api.stack.table.contents().await, before, "the table is unchanged");
    assert_eq!(
        api.stack.emulator.calls_to(Route::CreateSnapshot).len(),
        taken,
        "E2B was not asked"
    );
}

/// Security review M1: pins are limited per project (pinned snapshots are never pruned).
#[tokio::test]
async fn pins_are_limited_per_project() {
    let api = ApiStack::start_with(|var| (var == "SANDMAN_MAX_PINNED_SNAPSHOTS_PER_PROJECT").then(|| "1".into())).await;
    for project in ["app", "other"] {
        api.register(project).await;
        assert_eq!(api.open(project).await.status, StatusCode::OK);
    }
    let mut taken = Vec::new();
    for _ in 0..2 {
        taken.push(
            snapshot(&api, "app").await.json["snapshotId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let theirs = snapshot(&api, "other").await.json["snapshotId"]
        .as_str()
        .unwrap()
        .to_owned();
    let pin = |project: &'static str, id: String, pinned: bool| {
        let api = &api;
        async move {
            api.call(
                Method::PATCH,
                &format!("/v1/projects/{project}/snapshots/{id}"),
                Some(json!({"pinned": pinned})),
            )
            .await
        }
    };
    assert_eq!(pin("app", taken[0].clone(), true).await.status, StatusCode::OK);
    assert_eq!(
        pin("app", taken[0].clone(), true).await.status,
        StatusCode::OK,
        "a repeat is no new pin"
    );
    let before = api.stack.table.contents().await;
    let refused = pin("app", taken[1].clone(), true).await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded");
    assert!(refused.message().contains("1 pinned"), "{refused:?}");
    assert_eq!(api.stack.table.contents().await, before, "nothing changed");
    assert_eq!(
        pin("other", theirs, true).await.status,
        StatusCode::OK,
        "another project's own"
    );
    assert_eq!(pin("app", taken[0].clone(), false).await.status, StatusCode::OK);
    assert_eq!(
        pin("app", taken[1].clone(), true).await.status,
        StatusCode::OK,
        "an unpin makes room"
    );
}

/// The rows, once the counter was seen to equal them.
async fn check(api: &ApiStack, judged: &mut usize) -> usize {
    let rows = snapshot_rows(api).await;
    assert_eq!(
        counted(api).await.unwrap_or(0),
        rows as i64,
        "the counter follows the rows"
    );
    *judged += 1;
    rows
}

/// Security review M1: the team's count is exact: after takes, a refused take, deletions and a
/// project deletion, the counter equals the rows (read from the table, not from Sandman).
#[tokio::test]
async fn the_teams_snapshot_count_follows_every_row() {
    let api = ApiStack::start().await;
    for project in ["one", "two"] {
        api.register(project).await;
        assert_eq!(api.open(project).await.status, StatusCode::OK);
    }
    let mut judged = 0;
    let first = snapshot(&api, "one").await.json["snapshotId"]
        .as_str()
        .unwrap()
        .to_owned();
    snapshot(&api, "one").await;
    snapshot(&api, "two").await;
    assert_eq!(check(&api, &mut judged).await, 3);
    api.stack.emulator.set_fault(
        Route::CreateSnapshot,
        e2b_emulator::Fault {
            fail_next: 1,
            error_status: 400,
            ..e2b_emulator::Fault::default()
        },
    );
    assert_eq!(snapshot(&api, "two").await.status, StatusCode::BAD_GATEWAY);
    assert_eq!(check(&api, &mut judged).await, 3, "a refused take is not counted");
    let deleted = api
        .call(Method::DELETE, &format!("/v1/projects/one/snapshots/{first}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert_eq!(check(&api, &mut judged).await, 2);
    let gone = api.call(Method::DELETE, "/v1/projects/one", None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{gone:?}");
    assert_eq!(check(&api, &mut judged).await, 1);
    assert_eq!(counted(&api).await, Some(1), "the counter exists and was kept");
    assert_eq!(judged, 4);
}
