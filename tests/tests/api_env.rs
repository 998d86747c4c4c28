//! A project's env vars through the API (issue #29): a team's set inherited, the project's value
//! winning, both delivered to E2B when it creates a sandbox (the emulator's record is the judge),
//! `restartRequired` while a sandbox runs with older ones, and each limit a clear 400.

mod api_kit;

use std::collections::BTreeMap;

use api_kit::{ApiStack, Reply, assert_error, request, send};
use e2b_emulator::{EmulatorConfig, Route};
use http::{Method, StatusCode};
use sandman::domain::Actor;
use serde_json::{Value, json};

async fn as_admin(api: &ApiStack, method: Method, path: &str, body: Option<Value>) -> Reply {
    let token = api.admin_token_for(api.stack.team().as_str());
    send(&api.router, request(method, path, Some(&token), body)).await
}

async fn start() -> ApiStack {
    ApiStack::start_with(|var| match var {
        "JWT_ADMIN_ROLE" => Some("admin".into()),
        "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
        "SANDMAN_DEV_MASTER_KEY" => Some("cd".repeat(32)),
        _ => None,
    })
    .await
}

/// The env vars E2B holds for the project's live sandbox.
async fn env_in_e2b(api: &ApiStack, project: &str) -> BTreeMap<String, String> {
    let status = api.get(&format!("/v1/projects/{project}/sandbox")).await;
    let id = status.json["sandboxId"].as_str().expect("a live sandbox");
    api.stack.emulator.sandbox(id).expect("E2B knows it").env_vars
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn team_vars_are_inherited_the_projects_win_and_a_change_shows_as_restart_required() {
    let api = start().await;
    for project in ["p1", "p2"] {
        api.register(project).await;
    }
    let team_env = json!({"vars": {"SHARED": "team", "REGION": "eu"}});
    let refused = api.call(Method::PUT, "/v1/team/env", Some(team_env.clone())).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    let team = as_admin(&api, Method::PUT, "/v1/team/env", Some(team_env)).await;
    assert_eq!(team.status, StatusCode::OK, "{team:?}");
    let own = api
        .call(
            Method::PUT,
            "/v1/projects/p1/env",
            Some(json!({"vars": {"REGION": "us", "P1": "x"}})),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    assert_eq!(own.json["vars"], json!({"REGION": "us", "P1": "x"}));
    assert_eq!(own.json["updatedBy"], "tester");
    assert_eq!(own.json["restartRequired"], false);

    for project in ["p1", "p2"] {
        assert_eq!(api.open(project).await.status, StatusCode::OK);
    }
    assert_eq!(
        env_in_e2b(&api, "p1").await,
        vars(&[("SHARED", "team"), ("REGION", "us"), ("P1", "x")])
    );
    assert_eq!(
        env_in_e2b(&api, "p2").await,
        vars(&[("SHARED", "team"), ("REGION", "eu")])
    );
    let status = api.get("/v1/projects/p1/sandbox").await;
    assert_eq!(status.json["restartRequired"], false, "{status:?}");

    // A change: E2B takes env vars only at create, so the running sandbox needs a restart.
    let changed = api
        .call(
            Method::PUT,
            "/v1/projects/p1/env",
            Some(json!({"vars": {"REGION": "ap"}})),
        )
        .await;
    assert_eq!(changed.json["restartRequired"], true, "{changed:?}");
    assert_eq!(api.get("/v1/projects/p1/sandbox").await.json["restartRequired"], true);
    assert_eq!(api.get("/v1/projects/p2/sandbox").await.json["restartRequired"], false);
    let team = as_admin(
        &api,
        Method::PUT,
        "/v1/team/env",
        Some(json!({"vars": {"SHARED": "v2"}})),
    )
    .await;
    assert_eq!(team.json["restartRequired"], true, "{team:?}");
    assert_eq!(api.get("/v1/projects/p2/sandbox").await.json["restartRequired"], true);

    // The next create takes them: kill, open again.
    let creates = api.stack.emulator.calls_to(Route::CreateSandbox).len();
    let killed = api.call(Method::DELETE, "/v1/projects/p1/sandbox", None).await;
    assert!(killed.status.is_success(), "{killed:?}");
    assert_eq!(api.open("p1").await.status, StatusCode::OK);
    assert_eq!(api.stack.emulator.calls_to(Route::CreateSandbox).len(), creates + 1);
    assert_eq!(
        env_in_e2b(&api, "p1").await,
        vars(&[("SHARED", "v2"), ("REGION", "ap")])
    );
    assert_eq!(api.get("/v1/projects/p1/sandbox").await.json["restartRequired"], false);

    // The log names what changed, and who changed it.
    let events = api.get("/v1/projects/p1/events").await;
    let causes: Vec<&str> = events.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["cause"].as_str())
        .collect();
    // Set, then REGION changed and P1 removed: both name the two.
    let own = causes
        .iter()
        .filter(|c| **c == "env vars changed by tester: P1, REGION")
        .count();
    assert_eq!(own, 2, "{causes:?}");
    assert!(
        causes.iter().any(|c| c.starts_with("team env vars changed by admin")),
        "{causes:?}"
    );
}

#[tokio::test]
async fn each_limit_is_a_clear_400_and_nothing_is_stored() {
    let api = start().await;
    api.register("p1").await;
    let many: BTreeMap<String, String> = (0..=100).map(|i| (format!("V{i}"), "x".to_string())).collect();
    let bad_env = [
        json!({"vars": {"1X": "v"}}),
        json!({"vars": {"A-B": "v"}}),
        json!({"vars": {"E2B_THING": "v"}}),
        json!({"vars": {"BIG": "x".repeat(16 * 1024 + 1)}}),
        json!({"vars": many}),
        json!({"vars": {"A": 1}}),
        json!({"other": {}}),
    ];
    let mut refused = 0;
    for body in bad_env {
        let reply = api.call(Method::PUT, "/v1/projects/p1/env", Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {reply:?}");
        assert!(!reply.message().is_empty(), "{reply:?}");
        refused += 1;
    }
    let secret = |value: &str, hosts: Value| json!({"value": value, "hosts": hosts});
    let bad_secrets = [
        ("lower", secret("v", json!(["a.example.com"])), "name"),
        ("E2B_X", secret("v", json!(["a.example.com"])), "name"),
        ("OK", secret("", json!(["a.example.com"])), "value"),
        (
            "OK",
            secret(&"x".repeat(32 * 1024 + 1), json!(["a.example.com"])),
            "value",
        ),
        ("OK", secret("a\r\nX-Evil: 1", json!(["a.example.com"])), "value"),
        ("OK", secret("v", json!([])), "hosts"),
        ("OK", secret("v", json!(["https://a.example.com"])), "hosts"),
        ("OK", secret("v", json!(["*.example.com"])), "hosts"),
    ];
    for (name, body, field) in bad_secrets {
        let reply = api
            .call(Method::PUT, &format!("/v1/projects/p1/secrets/{name}"), Some(body))
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(reply.json["error"]["field"], field, "{name}: {reply:?}");
        refused += 1;
    }
    assert_eq!(refused, 15);
    let env = api.get("/v1/projects/p1/env").await;
    assert_eq!(env.json["vars"], json!({}));
    assert_eq!(api.get("/v1/projects/p1/secrets").await.json["items"], json!([]));
    assert_eq!(api.stack.emulator.calls_to(Route::Secrets).len(), 0);
    let missing = api
        .call(Method::PUT, "/v1/projects/nope/env", Some(json!({"vars": {}})))
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_team_secret_reaches_every_project_and_a_deleted_project_takes_its_own_along() {
    let api = start().await;
    api.register("p1").await;
    let team = as_admin(
        &api,
        Method::PUT,
        "/v1/team/secrets/GIT_TOKEN",
        Some(json!({"value": "team-token-value-1", "hosts": ["git.example.com"], "header": "X-Token"})),
    )
    .await;
    assert_eq!(team.status, StatusCode::OK, "{team:?}");
    let member = api
        .call(
            Method::PUT,
            "/v1/team/secrets/GIT_TOKEN",
            Some(json!({"value": "x", "hosts": ["a.example.com"]})),
        )
        .await;
    assert_error(&member, StatusCode::FORBIDDEN, "forbidden");
    let own = api
        .call(
            Method::PUT,
            "/v1/projects/p1/secrets/API_KEY",
            Some(json!({"value": "project-key-value-1", "hosts": ["api.example.com"], "prefix": "Bearer "})),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    assert_eq!(api.open("p1").await.status, StatusCode::OK);
    let status = api.get("/v1/projects/p1/sandbox").await;
    let sandbox = status.json["sandboxId"].as_str().unwrap().to_owned();
    let emulator = &api.stack.emulator;
    assert_eq!(
        emulator.egress_headers(&sandbox, "git.example.com").unwrap(),
        BTreeMap::from([("X-Token".to_string(), "team-token-value-1".to_string())])
    );
    assert_eq!(
        emulator.egress_headers(&sandbox, "api.example.com").unwrap()["Authorization"],
        "Bearer project-key-value-1"
    );
    assert!(
        emulator
            .egress_headers(&sandbox, "other.example.com")
            .unwrap()
            .is_empty()
    );
    let team_id = api.stack.emulator.team_id();
    assert_eq!(emulator.secrets(&team_id).len(), 2);

    // A delete revokes at once: the header is gone from the running sandbox's requests.
    let deleted = api.call(Method::DELETE, "/v1/projects/p1/secrets/API_KEY", None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
    assert!(emulator.egress_headers(&sandbox, "api.example.com").unwrap().is_empty());
    let again = api.call(Method::DELETE, "/v1/projects/p1/secrets/API_KEY", None).await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found");

    // A deleted project's settings go with it, here and in E2B; the team's stay.
    api.call(
        Method::PUT,
        "/v1/projects/p1/secrets/API_KEY",
        Some(json!({"value": "v-2-long-enough", "hosts": ["api.example.com"]})),
    )
    .await;
    assert_eq!(emulator.secrets(&team_id).len(), 2);
    let gone = api.call(Method::DELETE, "/v1/projects/p1", None).await;
    assert!(gone.status.is_success(), "{gone:?}");
    assert_eq!(
        emulator.secrets(&team_id).len(),
        1,
        "only the team's secret is left in E2B"
    );
    let items = api.stack.table.contents().await;
    let project_settings = items
        .iter()
        .filter(|item| item.contains("PROJECT#") && item.contains("SETTINGS"))
        .count();
    assert_eq!(project_settings, 0, "{items:#?}");
    assert!(
        items.iter().any(|item| item.contains("SETTINGS#SECRET#GIT_TOKEN")),
        "{} items",
        items.len()
    );
}

#[tokio::test]
async fn a_function_that_cannot_open_secrets_creates_without_them_and_says_restart_required() {
    let config = EmulatorConfig {
        secrets_api: false,
        ..EmulatorConfig::default()
    };
    let api = ApiStack::start_with_emulator(config, |var| match var {
        "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
        "SANDMAN_DEV_MASTER_KEY" => Some("cd".repeat(32)),
        _ => None,
    })
    .await;
    api.register("p1").await;
    api.call(
        Method::PUT,
        "/v1/projects/p1/env",
        Some(json!({"vars": {"PLAIN": "1"}})),
    )
    .await;
    let put = api
        .call(
            Method::PUT,
            "/v1/projects/p1/secrets/TOKEN",
            Some(json!({"value": "env-delivered-value", "hosts": ["a.example.com"]})),
        )
        .await;
    assert_eq!(put.json["secret"]["delivery"], "env", "{put:?}");
    // The enforcer (its snapshot-reopen handoff) holds no seal: the create goes ahead without it.
    let mut enforcer = api.stack.sandman.clone();
    enforcer.endpoint_seal = None;
    enforcer
        .open(&api.stack.key("p1"), Actor::IdleEnforcer)
        .await
        .expect("the create goes ahead");
    assert_eq!(env_in_e2b(&api, "p1").await, vars(&[("PLAIN", "1")]));
    assert_eq!(api.get("/v1/projects/p1/sandbox").await.json["restartRequired"], true);
}
