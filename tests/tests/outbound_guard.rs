//! Outbound webhooks against a hostile team: an endpoint's address is checked again at every
//! delivery, after DNS (security review L1), and its signing secret is never stored in clear
//! (L2).

mod api_kit;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_kit::{ApiStack, request, send};
use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use http::{Method, StatusCode};
use sandman::domain::TeamId;
use sandman::outbound::{DeliveryJob, EventType, Sender};
use sandman::store::Store;
use sandman_local::testkit::TestTable;
use serde_json::json;

/// A plain-http receiver on 127.0.0.1 that counts what reaches it.
async fn receiver() -> (u16, Arc<Mutex<usize>>) {
    let got = Arc::new(Mutex::new(0));
    let seen = got.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                *seen.lock().unwrap() += 1;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, got)
}

/// An endpoint item as an older version (or a DNS change since registration) may have left it:
/// written straight into the table, past the registration check.
async fn stored_endpoint(table: &TestTable, team: &str, id: &str, url: &str) {
    // 32 bytes, base64: a well-formed signing secret.
    let secret = format!("whsec_{}=", "A".repeat(43));
    table
        .client
        .put_item()
        .table_name(&table.name)
        .item("pk", AttributeValue::S(format!("TEAM#{team}")))
        .item("sk", AttributeValue::S(format!("ENDPOINT#{id}")))
        .item("teamId", AttributeValue::S(team.into()))
        .item("endpointId", AttributeValue::S(id.into()))
        .item("url", AttributeValue::S(url.into()))
        .item("secret", AttributeValue::S(secret))
        .item("createdAt", AttributeValue::N("1795000000000".into()))
        .item(
            "events",
            AttributeValue::L(vec![AttributeValue::S("sandbox.paused".into())]),
        )
        .send()
        .await
        .unwrap();
}

/// Security review L1: at delivery, whatever the stored URL says, a host that is (or resolves
/// to) a loopback address is not called; the delivery log says why.
#[tokio::test]
async fn a_delivery_never_reaches_a_non_public_address_whatever_the_stored_url_says() {
    let table = TestTable::create().await;
    let store = Store::new(table.client.clone(), table.name.clone());
    let (port, got) = receiver().await;
    let sender = Sender::new(Duration::from_secs(30)).unwrap();
    let team = TeamId::parse("team-a").unwrap();
    let mut judged = 0;
    for (n, url) in [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("ep_{n:026}");
        stored_endpoint(&table, "team-a", &id, &url).await;
        let job = DeliveryJob {
            team: team.clone(),
            endpoint_id: id.clone(),
            message_id: format!("msg_{n}"),
            event_type: EventType::SandboxPaused,
            body: "{}".into(),
        };
        let attempt = sender.attempt(&store, &job, 1, time::OffsetDateTime::now_utc()).await;
        assert!(attempt.is_ok(), "{url}: {attempt:?}");
        assert_eq!(*got.lock().unwrap(), 0, "{url} was called");
        let log = store.list_deliveries(&team, &id, None, 10).await.unwrap();
        let error = log.items[0].last_error.clone().unwrap_or_default();
        assert!(error.contains("not a public address"), "{url}: {error:?}");
        judged += 1;
    }
    assert_eq!(judged, 3);
}

/// Security review L2: an endpoint's signing secret is shown once, and sealed at rest: no item
/// holds it, nor anything that looks like one.
#[tokio::test]
async fn an_endpoints_signing_secret_is_not_stored_in_clear() {
    let api = ApiStack::start_with(|var| match var {
        "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
        "SANDMAN_DEV_MASTER_KEY" => Some("ab".repeat(32)),
        "JWT_ADMIN_ROLE" => Some("admin".into()),
        _ => None,
    })
    .await;
    let admin = api.admin_token_for(api.stack.team().as_str());
    let created = send(
        &api.router,
        request(
            Method::POST,
            "/v1/webhooks/endpoints",
            Some(&admin),
            Some(json!({"url": "https://hooks.example.com/in", "events": ["sandbox.paused"]})),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let secret = created.json["secret"].as_str().unwrap().to_owned();
    let body = secret.strip_prefix("whsec_").unwrap();
    let contents = api.stack.table.contents().await;
    assert!(
        contents.iter().any(|item| item.contains("ENDPOINT#")),
        "the endpoint is stored"
    );
    for item in &contents {
        assert!(!item.contains("whsec_") && !item.contains(&body[..16]), "{item}");
    }
}
