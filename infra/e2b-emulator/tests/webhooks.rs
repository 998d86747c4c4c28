//! Lifecycle webhooks: signature, payload, retries and delivery faults.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use common::{Api, Receiver, register, start, start_with};
use e2b_emulator::{DeliveryOutcome, EmulatorConfig, WebhookFaults};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Computed here, independently of the emulator: base64(standard, unpadded) of
/// SHA-256 over the secret's bytes followed by the raw body.
fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut bytes = secret.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    let digest = Sha256::digest(&bytes);
    let padded = base64::engine::general_purpose::STANDARD.encode(digest);
    padded.trim_end_matches('=').to_owned()
}

#[tokio::test]
async fn deliveries_are_signed_and_carry_e2b_fields() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(0).await;
    let webhook_id = register(&api, &receiver.url, "s3cret").await;

    let id = api
        .create(json!({"templateID": "base", "timeout": 60, "metadata": {"project": "p1"}}))
        .await;
    api.post(&format!("/sandboxes/{id}/timeout"), json!({"timeout": 120}))
        .await;
    api.post(&format!("/sandboxes/{id}/pause"), json!({})).await;
    api.post(&format!("/sandboxes/{id}/connect"), json!({"timeout": 60}))
        .await;
    api.delete(&format!("/sandboxes/{id}")).await;
    emulator.settle_webhooks().await;

    let received = receiver.received();
    assert_eq!(
        receiver.types(),
        [
            "sandbox.lifecycle.created",
            "sandbox.lifecycle.updated",
            "sandbox.lifecycle.paused",
            "sandbox.lifecycle.resumed",
            "sandbox.lifecycle.killed"
        ]
    );
    let mut delivery_ids = HashSet::new();
    for delivery in &received {
        assert_eq!(
            delivery.header("e2b-signature"),
            expected_signature("s3cret", &delivery.body)
        );
        assert_eq!(delivery.header("e2b-signature-version"), "v1");
        assert_eq!(delivery.header("e2b-webhook-id"), webhook_id);
        assert!(delivery_ids.insert(delivery.header("e2b-delivery-id")));
        let event = delivery.json();
        assert_eq!(event["version"], "v2");
        assert_eq!(event["event_category"], "lifecycle");
        assert_eq!(event["sandbox_id"], id.as_str());
        assert_eq!(event["sandbox_team_id"], "team-local");
        assert_eq!(event["sandbox_template_id"], "base");
        assert!(event["sandbox_build_id"].is_string());
        assert!(event["timestamp"].is_string());
        assert_eq!(event["event_data"]["sandbox_metadata"]["project"], "p1");
    }
    let events: Vec<_> = received.iter().map(|r| r.json()).collect();
    assert_eq!(
        events.iter().map(|e| e["id"].clone()).collect::<HashSet<_>>().len(),
        5,
        "event ids are unique"
    );
    assert!(events[1]["event_data"]["set_timeout"].is_string());
    assert_eq!(events[2]["event_label"], "pause");
    assert!(events[2]["event_data"]["execution"]["execution_time"].is_i64());
    assert_eq!(events[2]["event_data"]["execution"]["vcpu_count"], 2);
    assert_ne!(
        events[3]["sandbox_execution_id"], events[2]["sandbox_execution_id"],
        "resume starts a new execution"
    );
    assert_eq!(events[4]["event_data"]["kill_reason"], "request");
    emulator.shutdown().await;
}

#[tokio::test]
async fn event_data_is_omitted_when_empty_and_timeouts_report_their_reason() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(0).await;
    register(&api, &receiver.url, "k").await;
    api.create(json!({"templateID": "base", "timeout": 5})).await;
    emulator.advance_clock(Duration::from_secs(6)).await;
    emulator.settle_webhooks().await;

    let events: Vec<_> = receiver.received().iter().map(|r| r.json()).collect();
    assert_eq!(events.len(), 2);
    assert!(
        events[0].get("event_data").is_none(),
        "created without metadata has no event_data"
    );
    assert_eq!(events[1]["type"], "sandbox.lifecycle.killed");
    assert_eq!(events[1]["event_data"]["kill_reason"], "timeout");
    emulator.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_until_accepted() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(2).await;
    register(&api, &receiver.url, "k").await;
    api.create(json!({"templateID": "base"})).await;
    emulator.settle_webhooks().await;

    let received = receiver.received();
    assert_eq!(received.len(), 3, "two failures, then success");
    let event_ids: HashSet<_> = received.iter().map(|r| r.json()["id"].clone()).collect();
    assert_eq!(event_ids.len(), 1, "the same event each time");
    let delivery_ids: HashSet<_> = received.iter().map(|r| r.header("e2b-delivery-id")).collect();
    assert_eq!(delivery_ids.len(), 3, "a new delivery id per attempt");
    let attempts: Vec<_> = emulator.deliveries().iter().map(|d| (d.attempt, d.outcome)).collect();
    assert_eq!(
        attempts,
        [
            (1, DeliveryOutcome::Failed),
            (2, DeliveryOutcome::Failed),
            (3, DeliveryOutcome::Delivered)
        ]
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn retries_stop_after_the_configured_maximum() {
    let config = EmulatorConfig {
        webhook_max_retries: 2,
        ..common::config()
    };
    let emulator = start_with(config).await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(100).await;
    register(&api, &receiver.url, "k").await;
    api.create(json!({"templateID": "base"})).await;
    emulator.settle_webhooks().await;

    assert_eq!(receiver.received().len(), 3, "one attempt plus two retries");
    let deliveries = emulator.deliveries();
    assert_eq!(deliveries.len(), 3, "each attempt is in the delivery log");
    assert!(
        deliveries
            .iter()
            .all(|d| d.outcome == DeliveryOutcome::Failed && d.status == Some(500))
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn unreachable_receivers_count_as_failures() {
    let config = EmulatorConfig {
        webhook_max_retries: 1,
        ..common::config()
    };
    let emulator = start_with(config).await;
    let api = Api::new(&emulator);
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    register(&api, &url, "k").await;
    api.create(json!({"templateID": "base"})).await;
    emulator.settle_webhooks().await;

    let deliveries = emulator.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries
            .iter()
            .all(|d| d.outcome == DeliveryOutcome::Failed && d.error.is_some())
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn duplicate_fault_sends_each_event_twice() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(0).await;
    register(&api, &receiver.url, "k").await;
    emulator.set_webhook_faults(WebhookFaults {
        duplicate: true,
        ..WebhookFaults::default()
    });
    api.create(json!({"templateID": "base"})).await;
    emulator.settle_webhooks().await;

    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body, received[1].body, "same event, byte for byte");
    assert_ne!(
        received[0].header("e2b-delivery-id"),
        received[1].header("e2b-delivery-id")
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn drop_fault_swallows_the_next_deliveries() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(0).await;
    register(&api, &receiver.url, "k").await;
    emulator.set_webhook_faults(WebhookFaults {
        drop_next: 1,
        ..WebhookFaults::default()
    });
    let id = api.create(json!({"templateID": "base"})).await;
    api.delete(&format!("/sandboxes/{id}")).await;
    emulator.settle_webhooks().await;

    assert_eq!(receiver.types(), ["sandbox.lifecycle.killed"]);
    let dropped: Vec<_> = emulator
        .deliveries()
        .into_iter()
        .filter(|d| d.outcome == DeliveryOutcome::Dropped)
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].event_type, "sandbox.lifecycle.created");
    emulator.shutdown().await;
}

#[tokio::test]
async fn reorder_fault_delivers_queued_events_newest_first() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(0).await;
    register(&api, &receiver.url, "k").await;
    emulator.set_webhook_faults(WebhookFaults {
        reorder: true,
        delay: Duration::from_secs(30),
        ..WebhookFaults::default()
    });
    let id = api.create(json!({"templateID": "base", "timeout": 60})).await;
    api.post(&format!("/sandboxes/{id}/pause"), json!({})).await;
    api.delete(&format!("/sandboxes/{id}")).await;
    emulator.set_webhook_faults(WebhookFaults::default());
    emulator.settle_webhooks().await;

    assert_eq!(
        receiver.types(),
        [
            "sandbox.lifecycle.killed",
            "sandbox.lifecycle.paused",
            "sandbox.lifecycle.created"
        ]
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn only_enabled_webhooks_of_the_team_subscribed_to_the_type_receive_it() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let team_b = Api::with_key(&emulator, common::KEY_B);
    let killed_only = Receiver::start(0).await;
    let disabled = Receiver::start(0).await;
    let other_team = Receiver::start(0).await;
    let reply = api
        .post(
            "/events/webhooks",
            json!({"name": "k", "url": killed_only.url, "events": ["sandbox.lifecycle.killed"], "signatureSecret": "x"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let off = register(&api, &disabled.url, "x").await;
    let patched = api
        .call(
            "PATCH",
            &format!("/events/webhooks/{off}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["enabled"], false);
    register(&team_b, &other_team.url, "x").await;

    let id = api.create(json!({"templateID": "base"})).await;
    api.delete(&format!("/sandboxes/{id}")).await;
    emulator.settle_webhooks().await;

    assert_eq!(killed_only.types(), ["sandbox.lifecycle.killed"]);
    assert!(disabled.received().is_empty());
    assert!(other_team.received().is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn webhook_management_follows_the_events_api() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let id = register(&api, "http://127.0.0.1:9/hook", "secret").await;

    let listed = api.get("/events/webhooks").await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
    assert!(
        listed.body[0].get("signatureSecret").is_none(),
        "secrets are never returned"
    );
    let one = api.get(&format!("/events/webhooks/{id}")).await;
    assert_eq!(one.body["teamId"], "team-local");
    assert!(one.body["createdAt"].is_string());

    let bad_url = api
        .post(
            "/events/webhooks",
            json!({"name": "n", "url": "ftp://x", "events": ["sandbox.lifecycle.killed"], "signatureSecret": "s"}),
        )
        .await;
    assert_eq!(bad_url.status, 400);
    let bad_event = api
        .post(
            "/events/webhooks",
            json!({"name": "n", "url": "http://x", "events": ["nope"], "signatureSecret": "s"}),
        )
        .await;
    assert_eq!(bad_event.status, 400);

    assert_eq!(api.delete(&format!("/events/webhooks/{id}")).await.status, 200);
    assert_eq!(api.get(&format!("/events/webhooks/{id}")).await.status, 404);
    emulator.shutdown().await;
}

#[tokio::test]
async fn snapshots_emit_checkpointed_and_the_events_api_lists_events() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let receiver = Receiver::start(0).await;
    register(&api, &receiver.url, "k").await;
    let id = api.create(json!({"templateID": "base"})).await;
    api.post(&format!("/sandboxes/{id}/snapshots"), json!({})).await;
    emulator.settle_webhooks().await;
    assert_eq!(
        receiver.types(),
        ["sandbox.lifecycle.created", "sandbox.lifecycle.checkpointed"]
    );

    let events = api.get(&format!("/events/sandboxes/{id}?orderAsc=true")).await;
    assert_eq!(events.status, 200);
    assert_eq!(events.body[0]["type"], "sandbox.lifecycle.created");
    assert_eq!(events.body[0]["sandboxId"], id.as_str());
    assert_eq!(events.body[1]["type"], "sandbox.lifecycle.checkpointed");
    emulator.shutdown().await;
}

type GateState = (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
    std::sync::Arc<tokio::sync::Notify>,
);

/// A receiver that holds its first request until a second one arrives (or 3 s pass), and
/// records the event types in the order their answers went out.
struct Gate {
    url: String,
    answered: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Gate {
    async fn start() -> Gate {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        let answered: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let arrived = Arc::new(AtomicU32::new(0));
        let second = Arc::new(tokio::sync::Notify::new());
        let state = (answered.clone(), arrived, second);
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |axum::extract::State((answered, arrived, second)): axum::extract::State<GateState>,
                     body: axum::body::Bytes| async move {
                        let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                        if arrived.fetch_add(1, Ordering::SeqCst) == 0 {
                            let _ = tokio::time::timeout(Duration::from_secs(3), second.notified()).await;
                        } else {
                            second.notify_one();
                        }
                        let kind = event["type"].as_str().unwrap_or_default().to_owned();
                        answered.lock().expect("lock").push(kind);
                        axum::http::StatusCode::OK
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gate { url, answered }
    }

    fn answered(&self) -> Vec<String> {
        self.answered.lock().expect("lock").clone()
    }
}

#[tokio::test]
async fn concurrent_deliveries_let_a_later_event_overtake_a_slow_earlier_one() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let gate = Gate::start().await;
    register(&api, &gate.url, "k").await;
    emulator.set_webhook_faults(WebhookFaults {
        concurrent: true,
        ..WebhookFaults::default()
    });

    let id = api.create(json!({"templateID": "base", "timeout": 60})).await;
    api.delete(&format!("/sandboxes/{id}")).await;
    emulator.settle_webhooks().await;

    // The created delivery is held by the receiver until the killed one arrives: only
    // concurrent first attempts get past it.
    assert_eq!(
        gate.answered(),
        ["sandbox.lifecycle.killed", "sandbox.lifecycle.created"]
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn in_order_deliveries_wait_for_the_one_before() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let gate = Gate::start().await;
    register(&api, &gate.url, "k").await;

    let id = api.create(json!({"templateID": "base", "timeout": 60})).await;
    api.delete(&format!("/sandboxes/{id}")).await;
    emulator.settle_webhooks().await;

    assert_eq!(
        gate.answered(),
        ["sandbox.lifecycle.created", "sandbox.lifecycle.killed"]
    );
    emulator.shutdown().await;
}
