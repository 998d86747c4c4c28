//! Security review L6: what only a team admin may do, beside its E2B key and budget: register or
//! remove an outbound endpoint (which receives the team's lifecycle stream) and make a sandbox's
//! URLs public. A member's token gets 403 and changes nothing; an admin's is obeyed.

mod api_kit;

use api_kit::{ApiStack, Reply, assert_error, request, send};
use http::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(api: &ApiStack, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
    send(&api.router, request(method, path, Some(token), body)).await
}

#[tokio::test]
async fn endpoints_and_public_sandboxes_need_a_team_admin() {
    let api = ApiStack::start_with(|var| match var {
        "JWT_ADMIN_ROLE" => Some("admin".into()),
        "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
        "SANDMAN_DEV_MASTER_KEY" => Some("cd".repeat(32)),
        _ => None,
    })
    .await;
    let team = api.stack.team();
    let (member, admin) = (api.token_for(team.as_str()), api.admin_token_for(team.as_str()));
    let endpoint = json!({"url": "https://hooks.example.com/in", "events": ["sandbox.paused"]});
    let public = json!({"templateId": "base", "publicTraffic": true});

    let before = api.stack.table.contents().await;
    let mut refused = 0;
    for reply in [
        call(
            &api,
            &member,
            Method::POST,
            "/v1/webhooks/endpoints",
            Some(endpoint.clone()),
        )
        .await,
        call(&api, &member, Method::PUT, "/v1/projects/site", Some(public.clone())).await,
    ] {
        assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
        assert!(reply.message().contains("admin"), "{reply:?}");
        refused += 1;
    }
    assert_eq!(api.stack.table.contents().await, before, "nothing was stored");

    let created = call(&api, &admin, Method::POST, "/v1/webhooks/endpoints", Some(endpoint)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let id = created.json["endpointId"].as_str().unwrap().to_owned();
    let path = format!("/v1/webhooks/endpoints/{id}");
    assert_eq!(
        call(&api, &member, Method::GET, &path, None).await.status,
        StatusCode::OK,
        "members may look"
    );
    assert_error(
        &call(&api, &member, Method::DELETE, &path, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    refused += 1;
    assert_eq!(
        call(&api, &admin, Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );

    let made = call(&api, &admin, Method::PUT, "/v1/projects/site", Some(public)).await;
    assert_eq!(
        (made.status, made.json["publicTraffic"].clone()),
        (StatusCode::OK, json!(true)),
        "{made:?}"
    );
    let private = json!({"templateId": "base", "publicTraffic": false});
    let closed = call(&api, &member, Method::PUT, "/v1/projects/site", Some(private)).await;
    assert_eq!(
        closed.status,
        StatusCode::OK,
        "a member may make it private again: {closed:?}"
    );
    assert_eq!(refused, 3);
}
