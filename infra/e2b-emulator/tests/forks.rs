//! Fork: the running source is checkpointed in place and new sandboxes start from it, carrying
//! its files (filesystem and memory) and its metadata.

mod common;

use std::time::Duration;

use common::{Api, Receiver, register, start, start_with};
use e2b_emulator::{EmulatorConfig, Fault, Route, Transition};
use serde_json::json;

#[tokio::test]
async fn a_fork_copies_files_and_metadata_keeps_the_source_running_and_is_announced() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(0).await;
    register(&api, &receiver.url, "s3cret").await;
    let source = api
        .create(json!({"templateID": "base", "timeout": 300, "autoPause": true, "metadata": {"sandmanSession": "s1"}}))
        .await;
    assert!(emulator.write_file(&source, "/mem/marker", "in memory"));
    let before = emulator.sandbox(&source).expect("source");

    let reply = api
        .post(
            &format!("/sandboxes/{source}/fork"),
            json!({"timeout": 120, "count": 2}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let results = reply.body.as_array().expect("one result per fork");
    assert_eq!(results.len(), 2);
    for result in results {
        assert!(result.get("error").is_none(), "{result}");
        let id = result["sandbox"]["sandboxID"].as_str().expect("sandboxID");
        assert_ne!(id, source);
        assert!(result["sandbox"]["envdAccessToken"].is_string());
        let fork = emulator.sandbox(id).expect("the fork");
        assert_eq!(fork.metadata, before.metadata, "the source's metadata, copied");
        assert_eq!(fork.files.get("/mem/marker").map(String::as_str), Some("in memory"));
        assert_eq!(fork.forked_from.as_deref(), Some(source.as_str()));
        assert_eq!(fork.on_timeout, before.on_timeout);
        assert_eq!(
            fork.end_at,
            fork.created_at + Duration::from_secs(120),
            "the fork's own timeout"
        );
        assert_eq!(api.state(id).await, "running");
    }
    let after = emulator.sandbox(&source).expect("source");
    assert_eq!(api.state(&source).await, "running", "checkpointed in place");
    assert_eq!((after.end_at, after.transition), (before.end_at, None));
    assert_eq!(
        after.execution_id, before.execution_id,
        "not resumed: the same execution"
    );

    emulator.settle_webhooks().await;
    let created: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|e| e["type"] == "sandbox.lifecycle.created")
        .map(|e| {
            assert_eq!(e["event_data"]["sandbox_metadata"]["sandmanSession"], "s1");
            e["sandbox_id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(created.len(), 3, "the source's create and one per fork");
    assert!(!created[1..].contains(&source));
    let calls = emulator.calls_to(Route::ForkSandbox);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body.as_ref().and_then(|b| b.get("count")), Some(&json!(2)));
    assert_eq!(calls[0].status, 201);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_fork_of_an_unknown_or_paused_sandbox_is_refused_and_makes_nothing() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    assert_eq!(api.post("/sandboxes/nope/fork", json!({})).await.status, 404);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;
    api.post(&format!("/sandboxes/{id}/pause"), json!({})).await;
    let paused = api.post(&format!("/sandboxes/{id}/fork"), json!({})).await;
    assert_eq!(paused.status, 409, "{}", paused.body);
    assert_eq!(paused.body["code"], 409);
    api.post(&format!("/sandboxes/{id}/connect"), json!({"timeout": 60}))
        .await;
    for count in [0, 101] {
        let bad = api
            .post(&format!("/sandboxes/{id}/fork"), json!({"count": count}))
            .await;
        assert_eq!(bad.status, 400);
    }
    api.delete(&format!("/sandboxes/{id}")).await;
    assert_eq!(api.post(&format!("/sandboxes/{id}/fork"), json!({})).await.status, 404);
    assert_eq!(emulator.sandboxes().len(), 1, "nothing forked");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_forking_source_is_mid_transition_and_refuses_other_changes() {
    let emulator = start_with(EmulatorConfig {
        snapshot_duration: Duration::from_millis(300),
        ..common::config()
    })
    .await;
    let api = Api::new(&emulator);
    let id = api.create(json!({"templateID": "base", "timeout": 300})).await;
    let forking = tokio::spawn({
        let api = api.clone();
        let id = id.clone();
        async move { api.post(&format!("/sandboxes/{id}/fork"), json!({"timeout": 60})).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        emulator.sandbox(&id).and_then(|s| s.transition),
        Some(Transition::Forking)
    );
    assert_eq!(api.post(&format!("/sandboxes/{id}/pause"), json!({})).await.status, 409);
    assert_eq!(api.post(&format!("/sandboxes/{id}/fork"), json!({})).await.status, 409);
    assert_eq!(forking.await.expect("joined").status, 201);
    assert_eq!(api.state(&id).await, "running");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_fork_applied_then_failed_still_made_its_sandbox() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let source = api
        .create(json!({"templateID": "base", "timeout": 300, "metadata": {"sandmanSession": "s1"}}))
        .await;
    emulator.set_fault(
        Route::ForkSandbox,
        Fault {
            applied_then_fail_next: 1,
            error_status: 502,
            ..Fault::default()
        },
    );
    let failed = api
        .post(&format!("/sandboxes/{source}/fork"), json!({"timeout": 60}))
        .await;
    assert_eq!(failed.status, 502);
    let listed = api.get("/v2/sandboxes?metadata=sandmanSession%3Ds1").await;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(2),
        "the fork exists despite the 502"
    );

    emulator.set_fault(
        Route::ForkSandbox,
        Fault {
            fail_next: 1,
            error_status: 503,
            ..Fault::default()
        },
    );
    assert_eq!(
        api.post(&format!("/sandboxes/{source}/fork"), json!({})).await.status,
        503
    );
    assert_eq!(emulator.sandboxes().len(), 2, "a refused fork makes nothing");
    emulator.shutdown().await;
}
