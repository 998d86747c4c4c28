//! Snapshots through the HTTP API: take, list (newest first, paged), pin, delete, restore; events.

mod api_kit;

use api_kit::{ApiStack, assert_error};
use e2b_emulator::Route;
use http::{Method, StatusCode};
use serde_json::json;

async fn snapshot(api: &ApiStack, description: &str) -> serde_json::Value {
    let reply = api
        .call(
            Method::POST,
            "/v1/projects/app/snapshots",
            Some(json!({"description": description})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.json
}

#[tokio::test]
async fn take_list_pin_and_delete() {
    let api = ApiStack::start().await;
    api.register("app").await;
    assert_error(
        &api.post("/v1/projects/app/snapshots").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    api.open("app").await;

    let mut ids = Vec::new();
    for i in 0..5 {
        let snap = snapshot(&api, &format!("checkpoint {i}")).await;
        assert_eq!(
            (&snap["kind"], &snap["pinned"], &snap["status"]),
            (&json!("manual"), &json!(false), &json!("READY"))
        );
        ids.push(snap["snapshotId"].as_str().unwrap().to_string());
    }
    assert_eq!(api.stack.emulator.calls_to(Route::CreateSnapshot).len(), 5);

    let first = api.get("/v1/projects/app/snapshots?limit=2").await;
    let page: Vec<_> = first.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshotId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(page, [ids[4].clone(), ids[3].clone()], "newest first");
    assert_eq!(first.json["items"][0]["description"], "checkpoint 4");
    let next = first.json["nextCursor"].as_str().unwrap();
    let second = api
        .get(&format!("/v1/projects/app/snapshots?limit=2&cursor={next}"))
        .await;
    assert_eq!(second.json["items"][0]["snapshotId"], ids[2].as_str());
    // A cursor from this list means nothing to another list.
    assert_error(
        &api.get(&format!("/v1/projects/app/events?cursor={next}")).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );

    let pinned = api
        .call(
            Method::PATCH,
            &format!("/v1/projects/app/snapshots/{}", ids[0]),
            Some(json!({"pinned": true})),
        )
        .await;
    assert_eq!(pinned.json["pinned"], true);
    let refused = api
        .call(Method::DELETE, &format!("/v1/projects/app/snapshots/{}", ids[0]), None)
        .await;
    assert_error(&refused, StatusCode::CONFLICT, "conflict");
    assert!(refused.message().contains("pinned"));
    api.call(
        Method::PATCH,
        &format!("/v1/projects/app/snapshots/{}", ids[0]),
        Some(json!({"pinned": false})),
    )
    .await;
    let deleted = api
        .call(Method::DELETE, &format!("/v1/projects/app/snapshots/{}", ids[0]), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert_eq!(api.stack.emulator.calls_to(Route::DeleteSnapshot).len(), 1);
    assert_error(
        &api.call(Method::DELETE, &format!("/v1/projects/app/snapshots/{}", ids[0]), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let left = api.get("/v1/projects/app/snapshots?limit=100").await;
    assert_eq!(left.json["items"].as_array().unwrap().len(), 4);
    assert_eq!(left.json["nextCursor"], json!(null));
}

#[tokio::test]
async fn bad_snapshot_requests_are_refused() {
    let api = ApiStack::start().await;
    api.register("app").await;
    api.open("app").await;
    let long = api
        .call(
            Method::POST,
            "/v1/projects/app/snapshots",
            Some(json!({"description": "x".repeat(501)})),
        )
        .await;
    assert_error(&long, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(long.message().contains("description"));
    let id = snapshot(&api, "ok").await["snapshotId"].as_str().unwrap().to_string();
    let path = format!("/v1/projects/app/snapshots/{id}");
    let not_bool = api.call(Method::PATCH, &path, Some(json!({"pinned": "yes"}))).await;
    assert_error(&not_bool, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(not_bool.message().contains("pinned"), "{not_bool:?}");
    assert_error(
        &api.call(Method::PATCH, &path, Some(json!({}))).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &api.call(
            Method::PATCH,
            "/v1/projects/app/snapshots/no%20such",
            Some(json!({"pinned": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &api.call(
            Method::PATCH,
            "/v1/projects/app/snapshots/01NOSUCHSNAPSHOT",
            Some(json!({"pinned": true})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.post("/v1/projects/app/snapshots/01NOSUCHSNAPSHOT/restore").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.get("/v1/projects/missing/snapshots").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn restore_replaces_the_sandbox_with_the_chosen_snapshot() {
    let api = ApiStack::start().await;
    api.register("app").await;
    let original = api.open("app").await.json["sandbox"]["sandboxId"]
        .as_str()
        .unwrap()
        .to_string();
    let older = snapshot(&api, "older").await;
    snapshot(&api, "newer").await;

    let restored = api
        .post(&format!(
            "/v1/projects/app/snapshots/{}/restore",
            older["snapshotId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{restored:?}");
    assert_eq!(
        (&restored.json["path"], &restored.json["restoredFrom"]),
        (&json!("restored"), &older["snapshotId"])
    );
    assert_ne!(restored.json["sandbox"]["sandboxId"], original.as_str());
    assert_eq!(
        api.stack.emulator.sandbox(&original).map(|s| s.state),
        Some(e2b_emulator::SandboxState::Killed)
    );

    // The live sandbox came from it: it cannot be deleted now.
    let in_use = api
        .call(
            Method::DELETE,
            &format!("/v1/projects/app/snapshots/{}", older["snapshotId"].as_str().unwrap()),
            None,
        )
        .await;
    assert_error(&in_use, StatusCode::CONFLICT, "conflict");

    let events = api.get("/v1/projects/app/events").await;
    let first = &events.json["items"][0];
    assert_eq!(
        (&first["to"], &first["cause"], &first["actor"]),
        (&json!("RUNNING"), &json!("restored from snapshot"), &json!("user"))
    );
    assert!(first["at"].is_string() && first["sandboxId"].is_string());
}

#[tokio::test]
async fn events_are_paged_newest_first() {
    let api = ApiStack::start().await;
    api.register("app").await;
    assert_eq!(
        api.get("/v1/projects/app/events").await.json,
        json!({"items": [], "nextCursor": null})
    );
    api.open("app").await;
    api.post("/v1/projects/app/sandbox/pause").await;
    api.post("/v1/projects/app/sandbox/resume").await;
    let mut seen = Vec::new();
    let mut path = "/v1/projects/app/events?limit=2".to_string();
    loop {
        let page = api.get(&path).await;
        seen.extend(
            page.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| format!("{}->{}", e["from"].as_str().unwrap_or("-"), e["to"].as_str().unwrap())),
        );
        match page.json["nextCursor"].as_str() {
            Some(next) => path = format!("/v1/projects/app/events?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "RESUMING->RUNNING",
            "PAUSED->RESUMING",
            "PAUSING->PAUSED",
            "RUNNING->PAUSING",
            "STARTING->RUNNING",
            "-->STARTING"
        ]
    );
}

#[tokio::test]
async fn a_project_created_again_with_an_old_id_shows_only_its_own_events() {
    let api = ApiStack::start().await;
    api.register("app").await;
    api.open("app").await;
    let deleted = api.call(Method::DELETE, "/v1/projects/app", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    api.advance(std::time::Duration::from_secs(1)).await;
    api.register("app").await;
    assert_eq!(
        api.get("/v1/projects/app/events").await.json,
        json!({"items": [], "nextCursor": null}),
        "the earlier project's lines are not this project's"
    );
    api.open("app").await;
    let events = api.get("/v1/projects/app/events").await;
    assert_eq!(events.json["items"].as_array().map(Vec::len), Some(2), "{events:?}");
}
