//! The per-team snapshot quota (`SANDMAN_MAX_SNAPSHOTS_PER_TEAM`): a manual snapshot past it
//! answers 429 and changes nothing, counted over all the team's projects; another team's
//! snapshots do not count; an automatic snapshot before a kill is never refused.

mod api_kit;

use api_kit::{ApiStack, assert_error};
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
    assert_eq!(kinds, ["auto-before-kill", "manual"], "{listed:?}");
}
