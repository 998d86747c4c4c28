//! The webhook registration command's core, against the E2B emulator.

use e2b_emulator::{Emulator, EmulatorConfig, Route};
use sandman::e2b::{ApiKey, E2b, E2bClient, E2bSettings, Secret};
use sandman_local::register::{LIFECYCLE_EVENTS, Registered, register};

async fn e2b(emulator: &Emulator) -> E2b {
    let client = E2bClient::new(E2bSettings {
        base_url: emulator.base_url(),
        allow_http_loopback: true,
        ..E2bSettings::default()
    })
    .unwrap();
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
    let patch = calls
        .iter()
        .find(|c| c.method == "PATCH")
        .expect("the second run updates");
    assert_eq!(
        patch.body.as_ref().and_then(|b| b["signatureSecret"].as_str()),
        Some("s2"),
        "the new secret is sent to E2B"
    );
    assert!(calls.iter().all(|c| c.status < 300));
}

#[tokio::test]
async fn the_command_registers_for_every_account_and_never_prints_the_secret() {
    let config = EmulatorConfig {
        teams: vec![
            e2b_emulator::TeamAccount::new("team-a", "key-a"),
            e2b_emulator::TeamAccount::new("team-b", "key-b"),
        ],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sandman-local"))
        .args(["register-webhook", "--url", "https://hooks.example/e2b"])
        .env("E2B_API_URL", emulator.base_url())
        .env("E2B_API_ALLOW_HTTP_LOOPBACK", "true")
        .env("E2B_API_KEY", "key-a")
        .env("E2B_TEAM_API_KEYS", r#"{"team-b":"key-b"}"#)
        .env("E2B_WEBHOOK_SECRET", "very-secret-value")
        .output()
        .await
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    assert!(!printed.contains("very-secret-value"));
    let posts: Vec<_> = emulator
        .calls_to(Route::Webhooks)
        .into_iter()
        .filter(|c| c.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "one registration per E2B account");
    let mut teams: Vec<_> = posts.iter().map(|c| c.team_id.clone()).collect();
    teams.sort();
    assert_eq!(teams, vec![Some("team-a".to_string()), Some("team-b".to_string())]);
}

#[tokio::test]
async fn the_command_refuses_to_run_without_a_secret() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sandman-local"))
        .args(["register-webhook", "--url", "https://hooks.example/e2b"])
        .env("E2B_API_KEY", "key")
        .env_remove("E2B_WEBHOOK_SECRET")
        .env_remove("E2B_WEBHOOK_SECRETS")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("E2B_WEBHOOK_SECRET"));
}
