//! One team never reaches another's snapshots through `templateId`, nor through anything else the
//! API takes: each refusal is a 4xx, and the table and E2B are left as they were.

mod api_kit;

use api_kit::{ApiStack, assert_error};
use e2b_emulator::Route;
use http::{Method, StatusCode};
use sandman::domain::{ProjectId, ProjectKey, TeamId};
use serde_json::json;

/// Team A (the emulator's team) has a project with one snapshot; its Sandman snapshot id.
async fn team_a_with_a_snapshot(api: &ApiStack) -> String {
    api.register("app").await;
    assert_eq!(api.open("app").await.status, StatusCode::OK);
    let snap = api
        .call(Method::POST, "/v1/projects/app/snapshots", Some(json!({})))
        .await;
    assert_eq!(snap.status, StatusCode::CREATED, "{snap:?}");
    snap.json["snapshotId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_template_named_like_another_teams_snapshot_is_refused_and_creates_nothing() {
    let api = ApiStack::start().await;
    let snapshot_id = team_a_with_a_snapshot(&api).await;
    let team_b = api.token_for("team-b");
    let before = api.stack.table.contents().await;
    let creates = api.stack.emulator.calls_to(Route::CreateSandbox).len();

    for template in [
        format!("sandman-{}", snapshot_id.to_lowercase()),
        format!("sandman-{snapshot_id}"),
        format!("{}/sandman-{}", api.stack.team(), snapshot_id.to_lowercase()),
        "abcdefghij0123456789:default".to_owned(),
        "not-on-the-list".to_owned(),
    ] {
        let reply = api_kit::send(
            &api.router,
            api_kit::request(
                Method::PUT,
                "/v1/projects/stolen",
                Some(&team_b),
                Some(json!({"templateId": template})),
            ),
        )
        .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(reply.json["error"]["field"], "templateId", "{template}: {reply:?}");
    }
    assert_eq!(api.stack.table.contents().await, before, "nothing was stored");

    // A project stored with such a template before templates were scoped cannot open it either.
    let key = ProjectKey::new(TeamId::parse("team-b").unwrap(), ProjectId::parse("legacy").unwrap());
    let mut spec = api.stack.spec("legacy");
    spec.key = key;
    spec.template_id = format!("sandman-{}", snapshot_id.to_lowercase());
    api.stack.register(&spec).await;
    let before = api.stack.table.contents().await;
    let opened = api_kit::send(
        &api.router,
        api_kit::request(Method::POST, "/v1/projects/legacy/sandbox", Some(&team_b), None),
    )
    .await;
    assert_error(&opened, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(opened.json["error"]["field"], "templateId");
    assert_eq!(
        api.stack.emulator.calls_to(Route::CreateSandbox).len(),
        creates,
        "E2B was not asked"
    );
    assert_eq!(api.stack.table.contents().await, before, "the session was not claimed");
}

/// A deployment with an admin role, that seals endpoint secrets (so endpoints can be registered).
fn admin_and_sealing(var: &str) -> Option<String> {
    match var {
        "JWT_ADMIN_ROLE" => Some("admin".into()),
        "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
        "SANDMAN_DEV_MASTER_KEY" => Some("ef".repeat(32)),
        _ => None,
    }
}

#[tokio::test]
async fn sandboxes_are_private_and_their_token_goes_only_to_the_owning_team() {
    let api = ApiStack::start_with(admin_and_sealing).await;
    api.register("app").await;
    let opened = api.open("app").await;
    assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
    let create = api
        .stack
        .emulator
        .calls_to(Route::CreateSandbox)
        .pop()
        .expect("one create");
    let body = create.body.expect("a JSON body");
    assert_eq!(body["secure"], true, "{body}");
    assert_eq!(
        body["network"]["allowPublicTraffic"], false,
        "public traffic is off by default"
    );

    let sandbox_id = opened.json["sandbox"]["sandboxId"].as_str().unwrap();
    let token = api
        .stack
        .emulator
        .sandbox(sandbox_id)
        .expect("in E2B")
        .envd_access_token;
    assert_eq!(
        opened.json["sandbox"]["envdAccessToken"],
        token.as_str(),
        "open shows it"
    );
    let status = api.get("/v1/projects/app/sandbox").await;
    assert_eq!(status.json["envdAccessToken"], token.as_str(), "status shows it");

    let other = api_kit::send(
        &api.router,
        api_kit::request(
            Method::GET,
            "/v1/projects/app/sandbox",
            Some(&api.token_for("team-b")),
            None,
        ),
    )
    .await;
    assert_error(&other, StatusCode::NOT_FOUND, "not_found");
    assert!(!other.json.to_string().contains(&token));
    let events = api.get("/v1/projects/app/events").await;
    assert!(!events.json.to_string().contains(&token), "not in the lifecycle log");
    let holding: Vec<_> = api
        .stack
        .table
        .contents()
        .await
        .into_iter()
        .filter(|item| item.contains(&token))
        .collect();
    assert_eq!(holding.len(), 1, "only the project's item holds it: {holding:?}");

    // A team admin's token (`roles.rs`: a member's may not make a sandbox public).
    let admin = api.admin_token_for(api.stack.team().as_str());
    let public = api_kit::send(
        &api.router,
        api_kit::request(
            Method::PUT,
            "/v1/projects/site",
            Some(&admin),
            Some(json!({"templateId": "base", "publicTraffic": true})),
        ),
    )
    .await;
    assert_eq!(public.json["publicTraffic"], true);
    api.open("site").await;
    let create = api.stack.emulator.calls_to(Route::CreateSandbox).pop().unwrap();
    assert_eq!(create.body.unwrap()["network"]["allowPublicTraffic"], true);
}

#[tokio::test]
async fn e2bs_own_error_text_never_reaches_the_caller() {
    let api = ApiStack::start().await;
    api.register("app").await;
    api.stack.emulator.set_fault(
        Route::CreateSandbox,
        e2b_emulator::Fault {
            fail_next: 1,
            error_status: 400,
            ..e2b_emulator::Fault::default()
        },
    );
    let opened = api.open("app").await;
    assert_error(&opened, StatusCode::BAD_GATEWAY, "e2b_error");
    assert_eq!(opened.message(), "E2B refused the request");
    let status = api.get("/v1/projects/app/sandbox").await;
    let shown = format!("{} {}", opened.json, status.json);
    assert!(!shown.contains("Injected fault"), "{shown}");
    assert_eq!(status.json["lastError"], "E2B refused the request");
}

#[tokio::test]
async fn per_team_quotas_answer_429_and_change_nothing() {
    let api = ApiStack::start_with(|var| match var {
        "SANDMAN_MAX_PROJECTS_PER_TEAM" => Some("2".into()),
        "SANDMAN_MAX_LIVE_SANDBOXES_PER_TEAM" => Some("1".into()),
        _ => None,
    })
    .await;
    api.register("one").await;
    api.register("two").await;
    let before = api.stack.table.contents().await;
    let third = api
        .call(Method::PUT, "/v1/projects/three", Some(json!({"templateId": "base"})))
        .await;
    assert_error(&third, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded");
    assert!(third.message().contains("limit"), "{third:?}");
    assert_eq!(api.stack.table.contents().await, before);
    api.register("two").await; // updating an existing project is not a new one

    assert_eq!(api.open("one").await.status, StatusCode::OK);
    let creates = api.stack.emulator.calls_to(Route::CreateSandbox).len();
    let before = api.stack.table.contents().await;
    assert_error(&api.open("two").await, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded");
    assert_eq!(api.stack.emulator.calls_to(Route::CreateSandbox).len(), creates);
    assert_eq!(api.stack.table.contents().await, before);
    assert_eq!(api.open("one").await.status, StatusCode::OK, "the live one still opens");

    // Another team's limits are its own.
    let other = api.token_for("team-b");
    let put = api_kit::send(
        &api.router,
        api_kit::request(
            Method::PUT,
            "/v1/projects/one",
            Some(&other),
            Some(json!({"templateId": "base"})),
        ),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
}

#[tokio::test]
async fn another_teams_token_reaches_nothing_on_any_route() {
    let api = ApiStack::start_with(admin_and_sealing).await;
    let snapshot_id = team_a_with_a_snapshot(&api).await;
    let endpoint = api_kit::send(
        &api.router,
        api_kit::request(
            Method::POST,
            "/v1/webhooks/endpoints",
            Some(&api.admin_token_for(api.stack.team().as_str())),
            Some(json!({"url": "https://team-a.example.com/hook", "events": ["sandbox.paused"]})),
        ),
    )
    .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{endpoint:?}");
    let endpoint_id = endpoint.json["endpointId"].as_str().unwrap().to_owned();
    let team_b = api.token_for("team-b");
    let document = api_kit::send(&api.router, api_kit::request(Method::GET, "/openapi.json", None, None))
        .await
        .json;
    let before = api.stack.table.contents().await;
    let calls = api.stack.emulator.calls().len();
    let mut tried = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{projectId}", "app")
            .replace("{snapshotId}", &snapshot_id)
            .replace("{endpointId}", &endpoint_id);
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_none() {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = api_kit::send(
                &api.router,
                api_kit::request(method.clone(), &concrete, Some(&team_b), Some(json!({}))),
            )
            .await;
            tried += 1;
            if method == Method::GET && (path == "/v1/projects" || path == "/v1/webhooks/endpoints") {
                assert_eq!(reply.json["items"], json!([]), "team B sees none of A's {path}");
                continue;
            }
            if method == Method::GET && path == "/v1/usage" {
                assert_eq!(reply.status, StatusCode::OK, "team B's own {path}: {reply:?}");
                assert!(!reply.json.to_string().contains("team-a"), "{path}: {reply:?}");
                continue;
            }
            if method == Method::GET && (path == "/v1/team/env" || path == "/v1/team/secrets") {
                assert_eq!(reply.status, StatusCode::OK, "team B's own {path}: {reply:?}");
                let empty = |v: &serde_json::Value| {
                    v.as_object().is_none_or(|o| o.is_empty()) && v.as_array().is_none_or(|a| a.is_empty())
                };
                assert!(
                    empty(&reply.json["vars"]) && empty(&reply.json["items"]),
                    "team B's own {path}: {reply:?}"
                );
                continue;
            }
            if method == Method::GET && path == "/v1/team/e2b" {
                assert_eq!(reply.json["registered"], false, "team B's own settings: {reply:?}");
                continue;
            }
            assert!(reply.status.is_client_error(), "{method} {path}: {reply:?}");
            assert!(
                !reply.json.to_string().contains(&snapshot_id)
                    && !reply.json.to_string().contains("team-a.example.com"),
                "{method} {path}: {reply:?}"
            );
        }
    }
    assert!(tried >= 16, "every protected operation was tried ({tried})");
    assert_eq!(api.stack.table.contents().await, before, "nothing stored changed");
    assert_eq!(api.stack.emulator.calls().len(), calls, "E2B was not called");
}
