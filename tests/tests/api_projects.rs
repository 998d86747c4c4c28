//! Projects through the HTTP API: register, read, list, delete; validation; team isolation.

mod api_kit;

use api_kit::{ApiStack, assert_error, request, send};
use e2b_emulator::Route;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn register_read_update_and_list() {
    let api = ApiStack::start().await;
    let settings = json!({
        "templateId": "base", "idleTimeoutSeconds": 300, "snapshotOnIdle": true, "snapshotBeforeKill": true,
        "sandboxTimeoutSeconds": 900, "retention": {"keepLast": 3, "maxAgeSeconds": 86400}
    });
    let put = api.call(Method::PUT, "/v1/projects/app-1", Some(settings)).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(put.json["idleTimeoutSeconds"], 300);
    assert_eq!(put.json["retention"], json!({"keepLast": 3, "maxAgeSeconds": 86400}));
    assert_eq!(put.json["sandbox"]["state"], json!(null));

    let got = api.get("/v1/projects/app-1").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json["snapshotBeforeKill"], true);
    assert_eq!(got.json["sandboxTimeoutSeconds"], 900);

    // PUT replaces: omitted settings fall back to the deployment's defaults.
    let updated = api
        .call(Method::PUT, "/v1/projects/app-1", Some(json!({"templateId": "other"})))
        .await;
    assert_eq!(updated.json["templateId"], "other");
    assert_eq!(updated.json["idleTimeoutSeconds"], 600);
    assert_eq!(updated.json["retention"]["keepLast"], 10);
    assert_eq!(updated.json["createdAt"], put.json["createdAt"]);

    for project in ["app-2", "app-3", "app-4"] {
        api.register(project).await;
    }
    api.open("app-2").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/projects?limit=3&cursor={c}"),
            None => "/v1/projects?limit=3".to_string(),
        };
        let page = api.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let items = page.json["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|p| (p["projectId"].as_str().unwrap().to_string(), p["state"].clone())),
        );
        match page.json["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let ids: Vec<_> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["app-1", "app-2", "app-3", "app-4"]);
    assert_eq!(seen[1].1, "RUNNING");
    assert_eq!(seen[0].1, json!(null));
}

#[tokio::test]
async fn bad_settings_are_refused_naming_the_field() {
    let api = ApiStack::start().await;
    let put = |body: serde_json::Value| api.call(Method::PUT, "/v1/projects/app", Some(body));
    let cases = [
        (
            json!({"templateId": "base", "idleTimeoutSeconds": 10}),
            "idleTimeoutSeconds",
        ),
        (
            json!({"templateId": "base", "sandboxTimeoutSeconds": 100000}),
            "sandboxTimeoutSeconds",
        ),
        (
            json!({"templateId": "base", "retention": {"keepLast": 5000}}),
            "retention.keepLast",
        ),
        (
            json!({"templateId": "base", "retention": {"maxAgeSeconds": 5}}),
            "retention.maxAgeSeconds",
        ),
        (
            json!({"templateId": "base", "idleTimeoutSeconds": "ten"}),
            "idleTimeoutSeconds",
        ),
        (
            json!({"templateId": "base", "retention": {"keepLast": -1}}),
            "retention.keepLast",
        ),
        (json!({"templateId": "base", "idleTimeout": 300}), "idleTimeout"),
        (json!({"idleTimeoutSeconds": 300}), "templateId"),
        (json!({"templateId": ""}), "templateId"),
    ];
    for (body, field) in cases {
        let reply = put(body.clone()).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(reply.message().contains(field), "{body} -> {reply:?}");
    }
    let not_json = send(
        &api.router,
        raw(&api, Method::PUT, "/v1/projects/app", "{\"templateId\": "),
    )
    .await;
    assert_error(&not_json, StatusCode::BAD_REQUEST, "invalid_request");
    let bad_id = api
        .call(
            Method::PUT,
            "/v1/projects/bad%23id",
            Some(json!({"templateId": "base"})),
        )
        .await;
    assert_error(&bad_id, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(bad_id.message().contains("projectId"), "{bad_id:?}");
    let too_long = api.get(&format!("/v1/projects/{}", "x".repeat(129))).await;
    assert_error(&too_long, StatusCode::BAD_REQUEST, "invalid_request");
    // Nothing was written by any of them.
    assert_error(&api.get("/v1/projects/app").await, StatusCode::NOT_FOUND, "not_found");
}

fn raw(api: &ApiStack, method: Method, path: &str, body: &str) -> http::Request<axum::body::Body> {
    let mut request = request(method, path, Some(&api.token), None);
    *request.body_mut() = axum::body::Body::from(body.to_string());
    request
}

#[tokio::test]
async fn oversized_bodies_unknown_routes_and_methods_answer_json() {
    let api = ApiStack::start().await;
    let huge = format!("{{\"templateId\": \"base\", \"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    let reply = send(&api.router, raw(&api, Method::PUT, "/v1/projects/app", &huge)).await;
    assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_error(&api.get("/v1/nothing-here").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &api.call(Method::PATCH, "/v1/projects/app", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    for query in ["limit=0", "limit=101", "limit=x", "cursor=garbage"] {
        assert_error(
            &api.get(&format!("/v1/projects?{query}")).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
    }
}

#[tokio::test]
async fn another_teams_project_is_indistinguishable_from_a_missing_one() {
    let api = ApiStack::start().await;
    api.register("shared-name").await;
    api.open("shared-name").await;
    let snapshot = api.post("/v1/projects/shared-name/snapshots").await;
    assert_eq!(snapshot.status, StatusCode::CREATED, "{snapshot:?}");
    let snapshot_id = snapshot.json["snapshotId"].as_str().unwrap().to_string();
    let calls_before = api.stack.emulator.calls().len();

    let intruder = api.token_for("team-b");
    let as_b = |method: Method, path: String| send(&api.router, request(method, &path, Some(&intruder), None));
    let routes = [
        (Method::GET, "/v1/projects/shared-name".to_string()),
        (Method::DELETE, "/v1/projects/shared-name".to_string()),
        (Method::POST, "/v1/projects/shared-name/sandbox".to_string()),
        (Method::GET, "/v1/projects/shared-name/sandbox".to_string()),
        (Method::DELETE, "/v1/projects/shared-name/sandbox".to_string()),
        (Method::POST, "/v1/projects/shared-name/sandbox/activity".to_string()),
        (Method::POST, "/v1/projects/shared-name/sandbox/pause".to_string()),
        (Method::POST, "/v1/projects/shared-name/sandbox/resume".to_string()),
        (Method::GET, "/v1/projects/shared-name/snapshots".to_string()),
        (Method::POST, "/v1/projects/shared-name/snapshots".to_string()),
        (
            Method::DELETE,
            format!("/v1/projects/shared-name/snapshots/{snapshot_id}"),
        ),
        (
            Method::POST,
            format!("/v1/projects/shared-name/snapshots/{snapshot_id}/restore"),
        ),
        (Method::GET, "/v1/projects/shared-name/events".to_string()),
    ];
    for (method, path) in routes {
        let theirs = as_b(method.clone(), path.clone()).await;
        let missing = as_b(method.clone(), path.replace("shared-name", "never-registered")).await;
        assert_error(&theirs, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            theirs.json, missing.json,
            "{method} {path}: the answer must not reveal the project exists"
        );
    }
    let pin = send(
        &api.router,
        request(
            Method::PATCH,
            &format!("/v1/projects/shared-name/snapshots/{snapshot_id}"),
            Some(&intruder),
            Some(json!({"pinned": true})),
        ),
    )
    .await;
    assert_error(&pin, StatusCode::NOT_FOUND, "not_found");
    let list = as_b(Method::GET, "/v1/projects".into()).await;
    assert_eq!(list.json["items"], json!([]));
    assert_eq!(
        api.stack.emulator.calls().len(),
        calls_before,
        "team B caused no E2B call"
    );
    // Team A's project is untouched.
    let mine = api.get("/v1/projects/shared-name/sandbox").await;
    assert_eq!(mine.json["state"], "RUNNING");
    assert_eq!(
        api.get("/v1/projects/shared-name/snapshots").await.json["items"][0]["pinned"],
        false
    );
}

#[tokio::test]
async fn deleting_a_project_kills_its_sandbox_and_deletes_every_snapshot() {
    let api = ApiStack::start().await;
    api.register("doomed").await;
    let opened = api.open("doomed").await;
    let sandbox = opened.json["sandbox"]["sandboxId"].as_str().unwrap().to_string();
    let first = api.post("/v1/projects/doomed/snapshots").await.json["snapshotId"]
        .as_str()
        .unwrap()
        .to_string();
    api.post("/v1/projects/doomed/snapshots").await;
    let pin = api
        .call(
            Method::PATCH,
            &format!("/v1/projects/doomed/snapshots/{first}"),
            Some(json!({"pinned": true})),
        )
        .await;
    assert_eq!(pin.json["pinned"], true);
    assert_eq!(api.stack.emulator.snapshots().len(), 2);

    let deleted = api.call(Method::DELETE, "/v1/projects/doomed", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert_eq!(
        api.stack.emulator.sandbox(&sandbox).map(|s| s.state),
        Some(e2b_emulator::SandboxState::Killed)
    );
    assert_eq!(
        api.stack.emulator.calls_to(Route::DeleteSnapshot).len(),
        2,
        "the pinned snapshot went too"
    );
    assert!(api.stack.emulator.snapshots().is_empty());
    assert_eq!(
        api.stack.emulator.calls_to(Route::CreateSnapshot).len(),
        2,
        "no snapshot was saved on the way out"
    );
    assert_error(
        &api.get("/v1/projects/doomed").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.get("/v1/projects/doomed/events").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.call(Method::DELETE, "/v1/projects/doomed", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(api.get("/v1/projects").await.json["items"], json!([]));
}
