//! The webhook registration command's core, against the E2B emulator.

use e2b_emulator::{Emulator, EmulatorConfig, Route};
use sandman::e2b::{ApiKey, E2b, E2bClient, E2bSettings, Secret};
use sandman_local::register::{LIFECYCLE_EVENTS, Registered, register};

async fn e2b(emulator: &Emulator) -> E2b {
    let client = E2bClient::new(E2bSettings { base_url: emulator.base_url(), ..E2bSettings::default() }).unwrap();
    E2b::new(client, ApiKey::new(emulator.api_key()).unwrap())
}

#[tokio::test]
async fn registers_once_then_updates_in_place() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let e2b = e2b(&emulator).await;
    let url = "https://example.lambda-url.us-east-1.on.aws/";

    let first = register(&e2b, url, &Secret::new("s1")).await.unwrap();
    assert!(matches!(first, Registered::Created(_)));
    assert_eq!(first.webhook().events.len(), LIFECYCLE_EVENTS.len());
    let second = register(&e2b, url, &Secret::new("s2")).await.unwrap();
    assert!(matches!(second, Registered::Updated(_)));
    assert_eq!(second.webhook().id, first.webhook().id);

    let listed = e2b.list_webhooks().await.unwrap();
    assert_eq!(listed.len(), 1, "no duplicate registration");
    let calls = emulator.calls_to(Route::Webhooks);
    let patch = calls.iter().find(|c| c.method == "PATCH").expect("the second run updates");
    assert_eq!(patch.body.as_ref().and_then(|b| b["signatureSecret"].as_str()), Some("s2"), "the new secret is sent to E2B");
    assert!(calls.iter().all(|c| c.status < 300));
}
