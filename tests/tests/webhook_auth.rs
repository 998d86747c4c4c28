//! What the webhook receiver refuses or merely acknowledges: bad signatures, secret rotation,
//! unknown sandboxes, malformed bodies. Served on 127.0.0.1, against DynamoDB Local and the emulator.

#[path = "webhook/support.rs"]
mod support;

use std::time::Duration;

use sandman::domain::SessionState;
use sandman::e2b::{NewSandbox, SandboxNetwork, Secret, WebhookUpdate};
use sandman::webhook::sign;
use support::{Hooks, WEBHOOK_SECRET, event_body, metadata_of};

/// A signed `paused` event about the project's current sandbox, whose standard-alphabet
/// signature contains `+` or `/` (so its URL-safe spelling differs).
fn paused_event(hooks: &Hooks, key: &sandman::domain::ProjectKey, session: &str, sandbox: &str) -> (Vec<u8>, String) {
    let at = hooks.stack.emulator.now();
    (0..)
        .map(|n| event_body(&format!("evt-{n}"), "paused", at, sandbox, metadata_of(key, session)))
        .map(|body| {
            let signature = sign(WEBHOOK_SECRET, &body);
            (body, signature)
        })
        .find(|(_, signature)| signature.contains(['+', '/']))
        .expect("some event id gives a signature with + or /")
}

#[tokio::test]
async fn forged_missing_and_garbage_signatures_are_refused_and_store_nothing() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let session = hooks.record(&key).await.session.unwrap().session_id;
    let (body, good) = paused_event(&hooks, &key, &session, &sandbox);
    let before = hooks.record(&key).await;

    let forged = sign("not-the-secret", &body);
    let tampered_body = String::from_utf8(body.clone())
        .unwrap()
        .replace("30000", "30001")
        .into_bytes();
    let padded_garbage = format!("{}=", &good[..40]);
    let cases: [(&[u8], Option<&str>); 5] = [
        (&body, None),
        (&body, Some(&forged)),
        (&body, Some("bm90IGEgc2lnbmF0dXJl")),
        (&body, Some(&padded_garbage)),
        (&tampered_body, Some(&good)),
    ];
    for (sent, signature) in cases {
        let (status, answer) = hooks.post(sent, signature).await;
        assert_eq!(status, 401, "{signature:?}");
        assert_eq!(answer["error"]["code"], "invalid_signature");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(hooks.record(&key).await, before, "nothing stored");
    assert_eq!(hooks.log(&key).await.len(), 2);

    let (status, answer) = hooks.post(&body, Some(&good)).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("applied")));
    assert_eq!(hooks.record(&key).await.state(), Some(SessionState::Paused));
}

#[tokio::test]
async fn the_url_safe_alphabet_of_older_docs_is_accepted() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let session = hooks.record(&key).await.session.unwrap().session_id;
    let (body, standard) = paused_event(&hooks, &key, &session, &sandbox);
    let url_safe = standard.replace('+', "-").replace('/', "_");
    assert_ne!(url_safe, standard);

    let (status, answer) = hooks.post(&body, Some(&url_safe)).await;
    assert_eq!(
        (status, answer["outcome"].as_str(), answer["state"].as_str()),
        (200, Some("applied"), Some("PAUSED"))
    );
    let record = hooks.record(&key).await;
    assert_eq!((record.state(), record.version), (Some(SessionState::Paused), 3));
    assert_eq!(record.session.unwrap().usage.run_seconds, 30.0);
}

#[tokio::test]
async fn rotation_accepts_the_current_and_previous_secrets_only() {
    let hooks = Hooks::accepting(&["secret-new", "secret-old"]).await;
    let webhook = hooks.subscribe("secret-old").await;
    let (key, sandbox) = hooks.running("app").await;
    assert_eq!(
        hooks.delivered("created")[0].0.status,
        Some(200),
        "the previous secret verifies"
    );

    hooks.e2b().pause(&sandbox).await.expect("paused");
    hooks.settle().await;
    assert_eq!(hooks.record(&key).await.state(), Some(SessionState::Paused));

    let rotate = |secret: &str| WebhookUpdate {
        signature_secret: Some(Secret::new(secret)),
        ..WebhookUpdate::default()
    };
    hooks
        .e2b()
        .update_webhook(&webhook.id, &rotate("secret-new"))
        .await
        .expect("rotated");
    hooks
        .e2b()
        .connect(&sandbox, Duration::from_secs(600))
        .await
        .expect("resumed");
    hooks.settle().await;
    assert_eq!(
        hooks.delivered("resumed")[0].0.status,
        Some(200),
        "the current secret verifies"
    );
    let before = hooks.record(&key).await;
    assert_eq!(before.state(), Some(SessionState::Running));

    hooks
        .e2b()
        .update_webhook(&webhook.id, &rotate("secret-unknown"))
        .await
        .expect("rotated");
    hooks.e2b().kill(&sandbox).await.expect("killed");
    hooks.settle().await;
    let killed = hooks.delivered("killed");
    assert_eq!(killed.len(), 2, "refused, so E2B redelivered once (max_retries = 1)");
    assert!(killed.iter().all(|(d, _)| d.status == Some(401)));
    assert_eq!(hooks.record(&key).await, before, "an unknown secret changes nothing");
}

#[tokio::test]
async fn unknown_sandboxes_are_acknowledged_and_store_nothing() {
    let hooks = Hooks::start().await;
    let foreign = NewSandbox {
        template_id: "base".into(),
        timeout: Duration::from_secs(600),
        auto_pause: false,
        metadata: [("owner".to_string(), "someone else".to_string())].into(),
        env_vars: Default::default(),
        secure: true,
        network: SandboxNetwork {
            allow_public_traffic: false,
            rules: Default::default(),
        },
    };
    let sandbox = hooks.e2b().create_sandbox(&foreign).await.expect("created").sandbox_id;
    hooks.e2b().kill(&sandbox).await.expect("killed");
    hooks.settle().await;
    let deliveries = hooks.stack.emulator.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "unknown sandboxes are not errors: E2B must not retry"
    );

    let ghost = hooks.stack.key("ghost");
    let body = event_body(
        "evt-ghost",
        "paused",
        hooks.stack.emulator.now(),
        "sbx-ghost",
        metadata_of(&ghost, "s1"),
    );
    let (status, answer) = hooks.post(&body, Some(&sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("unknown-sandbox")));
    let store = hooks.stack.store();
    assert_eq!(
        store
            .get_project(&ghost, sandman::store::Consistency::Strong)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .list_projects(&hooks.stack.team(), None, 10)
            .await
            .unwrap()
            .items
            .len(),
        0
    );
}

#[tokio::test]
async fn malformed_bodies_behind_a_valid_signature_are_400() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let before = hooks.record(&key).await;
    let no_timestamp = format!(r#"{{"id":"e1","type":"sandbox.lifecycle.paused","sandbox_id":"{sandbox}"}}"#);
    for body in ["not json", "{}", "[1,2]", no_timestamp.as_str()] {
        let (status, answer) = hooks
            .post(body.as_bytes(), Some(&sign(WEBHOOK_SECRET, body.as_bytes())))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"]["code"], "malformed_event", "{body}");
    }
    let (status, _) = hooks.post(b"not json", Some(&sign("wrong", b"not json"))).await;
    assert_eq!(status, 401, "the signature is checked before the body is read");
    assert_eq!(hooks.record(&key).await, before);
}

#[tokio::test]
async fn any_path_takes_a_post_and_nothing_else() {
    let hooks = Hooks::start().await;
    let body = b"{}";
    let client = reqwest::Client::new();
    let nested = client
        .post(format!("{}hooks/e2b", hooks.url))
        .header("e2b-signature", sign(WEBHOOK_SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        nested.status().as_u16(),
        400,
        "reached the receiver, which read the body"
    );
    let get = client.get(&hooks.url).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
}
