//! Listing (filters, pagination) and team isolation.

mod common;

use std::collections::HashSet;

use common::{Api, KEY_B, start};
use serde_json::json;

#[tokio::test]
async fn list_paginates_with_next_token_absent_on_the_last_page() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let mut created = HashSet::new();
    for _ in 0..7 {
        created.insert(api.create(json!({"templateID": "base", "timeout": 300})).await);
    }

    let mut seen = Vec::new();
    let mut path = "/v2/sandboxes?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = api.get(&path).await;
        assert_eq!(page.status, 200);
        pages += 1;
        seen.extend(
            page.body
                .as_array()
                .expect("array")
                .iter()
                .map(|s| s["sandboxID"].as_str().unwrap_or_default().to_owned()),
        );
        match page.headers.get("x-next-token").and_then(|v| v.to_str().ok()) {
            Some(token) => path = format!("/v2/sandboxes?limit=3&nextToken={token}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), created);

    assert_eq!(api.get("/v2/sandboxes?limit=0").await.status, 400);
    assert_eq!(api.get("/v2/sandboxes?limit=101").await.status, 400);
    assert_eq!(api.get("/v2/sandboxes?nextToken=garbage!").await.status, 400);
    emulator.shutdown().await;
}

#[tokio::test]
async fn list_filters_by_metadata_and_state() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let mine = api
        .create(json!({"templateID": "base", "metadata": {"user": "a&b", "app": "prod"}}))
        .await;
    api.create(json!({"templateID": "base", "metadata": {"user": "other", "app": "prod"}}))
        .await;
    let paused = api
        .create(json!({"templateID": "base", "metadata": {"user": "a&b", "app": "dev"}}))
        .await;
    api.post(&format!("/sandboxes/{paused}/pause"), json!({})).await;

    // metadata=user=a%26b&app=prod, URL-encoded once more as the query value.
    let filtered = api.get("/v2/sandboxes?metadata=user%3Da%2526b%26app%3Dprod").await;
    let ids: Vec<_> = filtered
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["sandboxID"].clone())
        .collect();
    assert_eq!(ids, vec![json!(mine)]);

    let by_user = api.get("/v2/sandboxes?metadata=user%3Da%2526b&state=paused").await;
    let ids: Vec<_> = by_user
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["sandboxID"].clone())
        .collect();
    assert_eq!(ids, vec![json!(paused)]);
    assert_eq!(by_user.body[0]["state"], "paused");

    let both = api.get("/v2/sandboxes?state=running,paused").await;
    assert_eq!(both.body.as_array().map(Vec::len), Some(3));
    let legacy = api.get("/sandboxes").await;
    assert_eq!(
        legacy.body.as_array().map(Vec::len),
        Some(2),
        "the legacy list shows running ones only"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn teams_see_only_their_own_sandboxes_snapshots_and_webhooks() {
    let emulator = start().await;
    let a = Api::new(&emulator);
    let b = Api::with_key(&emulator, KEY_B);
    let id = a.create(json!({"templateID": "base", "timeout": 300})).await;
    let snapshot = a.post(&format!("/sandboxes/{id}/snapshots"), json!({})).await.body["snapshotID"].clone();
    let snapshot = snapshot.as_str().expect("snapshotID").to_owned();
    let hook = common::register(&a, "http://127.0.0.1:9/hook", "s").await;

    assert_eq!(b.get(&format!("/sandboxes/{id}")).await.status, 404);
    assert_eq!(b.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 404);
    assert_eq!(b.delete(&format!("/sandboxes/{id}")).await.status, 404);
    assert_eq!(b.get("/v2/sandboxes").await.body, json!([]));
    assert_eq!(b.get("/snapshots").await.body, json!([]));
    assert_eq!(b.delete(&format!("/templates/{snapshot}")).await.status, 404);
    assert_eq!(
        b.post("/v2/sandboxes", json!({"templateID": snapshot})).await.status,
        404
    );
    assert_eq!(b.get(&format!("/events/webhooks/{hook}")).await.status, 404);
    assert_eq!(b.get("/events/webhooks").await.body, json!([]));
    assert_eq!(a.state(&id).await, "running");

    let nobody = Api::with_key(&emulator, "e2b_wrong");
    let reply = nobody.get("/v2/sandboxes").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["code"], 401);
    emulator.shutdown().await;
}
