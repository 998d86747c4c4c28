//! Snapshots: take, restore by create, list, and delete (refused while in use).

mod common;

use std::time::Duration;

use common::{Api, start, start_with};
use e2b_emulator::{EmulatorConfig, Transition};
use serde_json::json;

#[tokio::test]
async fn snapshot_restores_into_a_new_sandbox_and_leaves_the_source_running() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let source = api.create(json!({"templateID": "base", "timeout": 300})).await;

    let taken = api.post(&format!("/sandboxes/{source}/snapshots"), json!({})).await;
    assert_eq!(taken.status, 201);
    let snapshot_id = taken.body["snapshotID"].as_str().expect("snapshotID").to_owned();
    assert!(taken.body["names"].is_array());
    assert_eq!(api.state(&source).await, "running");

    let restored = api.create(json!({"templateID": snapshot_id, "timeout": 60})).await;
    let view = emulator.sandbox(&restored).expect("view");
    let snapshot = emulator.snapshots().into_iter().next().expect("one snapshot");
    assert_eq!(view.from_snapshot.as_deref(), Some(snapshot.template_id.as_str()));
    assert_eq!(snapshot.source_sandbox_id, source);
    assert_eq!(api.state(&restored).await, "running");
    emulator.shutdown().await;
}

#[tokio::test]
async fn named_snapshot_is_addressable_by_its_full_name() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let source = api.create(json!({"templateID": "base", "timeout": 300})).await;
    let taken = api
        .post(&format!("/sandboxes/{source}/snapshots"), json!({"name": "my-snap"}))
        .await;
    assert_eq!(taken.status, 201);
    assert_eq!(taken.body["snapshotID"], "team-local/my-snap:default");
    assert_eq!(taken.body["names"], json!(["team-local/my-snap:default"]));
    api.create(json!({"templateID": "team-local/my-snap:default"})).await;

    let bad = api
        .post(&format!("/sandboxes/{source}/snapshots"), json!({"name": "Bad Name!"}))
        .await;
    assert_eq!(bad.status, 400);
    emulator.shutdown().await;
}

#[tokio::test]
async fn deleting_a_snapshot_is_refused_while_a_sandbox_from_it_runs() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let source = api.create(json!({"templateID": "base", "timeout": 300})).await;
    let snapshot_id = api
        .post(&format!("/sandboxes/{source}/snapshots"), json!({}))
        .await
        .body["snapshotID"]
        .clone();
    let snapshot_id = snapshot_id.as_str().expect("snapshotID").to_owned();
    let child = api.create(json!({"templateID": snapshot_id, "timeout": 300})).await;

    let refused = api.delete(&format!("/templates/{snapshot_id}")).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("running sandboxes")
    );

    api.post(&format!("/sandboxes/{child}/pause"), json!({})).await;
    assert_eq!(api.delete(&format!("/templates/{snapshot_id}")).await.status, 204);
    assert_eq!(api.delete(&format!("/templates/{snapshot_id}")).await.status, 404);
    assert!(emulator.snapshots().is_empty());
    let gone = api.post("/v2/sandboxes", json!({"templateID": snapshot_id})).await;
    assert_eq!(gone.status, 404);
    emulator.shutdown().await;
}

#[tokio::test]
async fn pause_during_a_snapshot_answers_409() {
    let config = EmulatorConfig {
        snapshot_duration: Duration::from_secs(2),
        ..common::config()
    };
    let emulator = start_with(config).await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;

    let snapshot = tokio::spawn({
        let (api, id) = (api.clone(), id.clone());
        async move { api.post(&format!("/sandboxes/{id}/snapshots"), json!({})).await.status }
    });
    while emulator.sandbox(&id).and_then(|s| s.transition) != Some(Transition::Snapshotting) {
        tokio::task::yield_now().await;
    }
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 409);
    assert_eq!(snapshot.await.expect("join"), 201);
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 204);
    emulator.shutdown().await;
}

#[tokio::test]
async fn snapshots_list_filters_by_sandbox_and_paginates() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let first = api.create(json!({"templateID": "base", "timeout": 300})).await;
    let second = api.create(json!({"templateID": "base", "timeout": 300})).await;
    for _ in 0..3 {
        api.post(&format!("/sandboxes/{first}/snapshots"), json!({})).await;
    }
    api.post(&format!("/sandboxes/{second}/snapshots"), json!({})).await;

    let only_first = api.get(&format!("/snapshots?sandboxID={first}")).await;
    assert_eq!(only_first.body.as_array().map(Vec::len), Some(3));

    let mut seen = Vec::new();
    let mut path = "/snapshots?limit=3".to_owned();
    loop {
        let page = api.get(&path).await;
        assert_eq!(page.status, 200);
        seen.extend(
            page.body
                .as_array()
                .expect("array")
                .iter()
                .map(|s| s["snapshotID"].clone()),
        );
        match page.headers.get("x-next-token").and_then(|v| v.to_str().ok()) {
            Some(token) => path = format!("/snapshots?limit=3&nextToken={token}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    seen.dedup();
    assert_eq!(seen.len(), 4);
    emulator.shutdown().await;
}
