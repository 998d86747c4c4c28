//! `sandman-local teardown --base-url URL`, as the operator runs it before `sam delete`, against
//! the E2B emulator and a table in DynamoDB Local: every registration of the stack's webhook URL
//! goes from every account (the default key's, a team's configured key's, and a team's key
//! registered through the API and sealed in the table); another app's webhook stays.

use e2b_emulator::{Emulator, EmulatorConfig, TeamAccount};
use sandman::Sandman;
use sandman::clock::Clock;
use sandman::config::Config;
use sandman::domain::TeamId;
use sandman::e2b::{ApiKey, E2b, E2bClient, E2bSettings};
use sandman::secrets::{Secret, Secrets};
use sandman::store::Store;
use sandman::team_keys::E2bAccount;
use sandman_local::register::{register, register_account};
use sandman_local::testkit::{self, TestTable};

const BASE: &str = "https://abc.lambda-url.us-east-1.on.aws/";
const MASTER: &str = "7e57700000000000000000000000000000000000000000000000000000000001";
const TEAMS: [(&str, &str); 3] = [
    ("team-default", "e2b_teardown_default_0123456789abcdef01234567"),
    ("team-registered", "e2b_teardown_registered_0123456789abcdef0123"),
    ("team-configured", "e2b_teardown_configured_0123456789abcdef0123"),
];

fn e2b(emulator: &Emulator, key: &str) -> E2b {
    let client = E2bClient::new(E2bSettings {
        base_url: emulator.base_url(),
        allow_http_loopback: true,
        ..E2bSettings::default()
    })
    .unwrap();
    E2b::new(client, ApiKey::new(key).unwrap())
}

#[tokio::test]
async fn teardown_removes_every_registration_of_the_stack_in_every_account() {
    let emulator = Emulator::start(EmulatorConfig {
        teams: TEAMS.iter().map(|(team, key)| TeamAccount::new(*team, *key)).collect(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let table = TestTable::create().await;
    let (name, url) = (table.name.clone(), emulator.base_url());
    let env = move |var: &str| match var {
        "SANDMAN_TABLE" => Some(name.clone()),
        "E2B_API_URL" => Some(url.clone()),
        "E2B_API_ALLOW_HTTP_LOOPBACK" => Some("true".into()),
        "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
        "SANDMAN_DEV_MASTER_KEY" => Some(MASTER.into()),
        _ => None,
    };
    let secrets = Secrets {
        e2b_api_key: Some(Secret::new(TEAMS[0].1)),
        team_e2b_api_keys: [(TEAMS[2].0.to_owned(), Secret::new(TEAMS[2].1))].into(),
        webhook_secrets: vec![Secret::new("a-webhook-secret-of-the-deployment-0123")],
        ..Secrets::default()
    };
    let sandman = Sandman::new(
        Store::new(table.client.clone(), table.name.clone()),
        Config::from_lookup(&env).unwrap(),
        secrets,
        Clock::System,
    )
    .unwrap();
    // What the deployment registered over its life, and another app's webhook in the same account.
    let registered = TeamId::parse(TEAMS[1].0).unwrap();
    sandman
        .register_team_key(&registered, TEAMS[1].1)
        .await
        .expect("the team registers its key");
    let deployment = sandman.secrets.webhook_secrets[0].clone();
    register(&e2b(&emulator, TEAMS[0].1), BASE, &deployment).await.unwrap();
    for account in [
        E2bAccount::Default,
        E2bAccount::Team(registered.clone()),
        E2bAccount::Team(TeamId::parse(TEAMS[2].0).unwrap()),
    ] {
        register_account(&sandman, &account, BASE).await.expect("registered");
    }
    let other = "https://other-app.example.com/e2b";
    register(&e2b(&emulator, TEAMS[0].1), other, &deployment).await.unwrap();
    let count = |key: &str| {
        let e2b = e2b(&emulator, key);
        async move { e2b.list_webhooks().await.unwrap() }
    };
    assert_eq!(
        count(TEAMS[0].1).await.len(),
        3,
        "root, /accounts/default and another app's"
    );

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sandman-local"))
        .args(["teardown", "--base-url", BASE])
        .env("SANDMAN_TABLE", &table.name)
        .env("E2B_API_URL", emulator.base_url())
        .env("E2B_API_ALLOW_HTTP_LOOPBACK", "true")
        .env("E2B_API_KEY", TEAMS[0].1)
        .env(
            "E2B_TEAM_API_KEYS",
            format!(r#"{{"{}": "{}"}}"#, TEAMS[2].0, TEAMS[2].1),
        )
        .env("SANDMAN_TEAM_KEYS_WRAP", "local")
        .env("SANDMAN_DEV_MASTER_KEY", MASTER)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_DYNAMODB", testkit::local_endpoint())
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{printed}");
    for (team, key) in TEAMS {
        let left: Vec<String> = count(key).await.into_iter().map(|w| w.url).collect();
        let expected: Vec<&str> = if key == TEAMS[0].1 { vec![other] } else { vec![] };
        assert_eq!(
            left, expected,
            "{team}: every registration of the stack is gone:\n{printed}"
        );
    }
    for left in ["KMS key", "deletion protection", "artifact bucket"] {
        assert!(
            printed.contains(left),
            "the command says what it leaves ({left}):\n{printed}"
        );
    }
    assert!(
        !printed.contains(TEAMS[1].1) && !printed.contains(TEAMS[2].1),
        "no key is printed"
    );
}
