use super::SecretArns;
use super::*;

const KEY: &str = "e2b_0123456789abcdef0123456789abcdef01234567";
const SIGNING: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL";

fn deployed(e2b: &str, webhook: &str, jwt: &str) -> (SecretsSource, HashMap<String, String>) {
    let arns = SecretArns {
        e2b: Some("arn:e2b".into()),
        webhook: Some("arn:webhook".into()),
        jwt: Some("arn:jwt".into()),
    };
    let texts = HashMap::from([
        ("arn:e2b".to_owned(), e2b.to_owned()),
        ("arn:webhook".to_owned(), webhook.to_owned()),
        ("arn:jwt".to_owned(), jwt.to_owned()),
    ]);
    (SecretsSource::SecretsManager(arns), texts)
}

async fn load(function: Function, e2b: &str, webhook: &str, jwt: &str) -> Result<Secrets, SecretsError> {
    let (source, reader) = deployed(e2b, webhook, jwt);
    Secrets::load(function, &source, &reader).await
}

#[tokio::test]
async fn each_function_reads_only_its_own_secrets() {
    let e2b = format!(r#"{{"e2bApiKey":"{KEY}","teamE2bApiKeys":{{"t1":"{KEY}"}}}}"#);
    let webhook = format!(r#"{{"webhookSecret":"{SIGNING}","previousWebhookSecrets":["{SIGNING}x"]}}"#);
    let jwt = format!(r#"{{"jwtHs256Secret":"{SIGNING}"}}"#);
    let hook = load(Function::Webhook, &e2b, &webhook, &jwt).await.unwrap();
    assert_eq!(hook.webhook_secrets.len(), 2);
    assert!(hook.e2b_api_key.is_none() && hook.team_e2b_api_keys.is_empty() && hook.jwt_hs256_secret.is_none());
    let api = load(Function::Api, &e2b, &webhook, &jwt).await.unwrap();
    assert!(api.webhook_secrets.is_empty());
    assert_eq!(api.team_e2b_api_keys["t1"].expose(), KEY);
    assert!(api.jwt_hs256_secret.is_some());
    let enforcer = load(Function::IdleEnforcer, &e2b, &webhook, &jwt).await.unwrap();
    assert!(enforcer.jwt_hs256_secret.is_none() && enforcer.webhook_secrets.is_empty());
    assert!(format!("{api:?}").matches("***").count() == 3, "no value is printed");
}

#[tokio::test]
async fn an_empty_e2b_key_is_not_set_and_a_deployed_function_starts_without_it() {
    // Deployed, the operator puts the key in after the first deploy: the function starts and
    // reads the secret again later (`Sandman::ensure_e2b_key`).
    let secrets = load(
        Function::SnapshotPruner,
        r#"{"e2bApiKey": "", "teamE2bApiKeys": {}}"#,
        "{}",
        "{}",
    )
    .await
    .expect("a deployed function starts without the E2B key");
    assert!(secrets.e2b_api_key.is_none() && secrets.team_e2b_api_keys.is_empty());
    let (source, reader) = deployed(r#"{"e2bApiKey": ""}"#, "{}", "{}");
    let SecretsSource::SecretsManager(arns) = source else {
        unreachable!()
    };
    let (default, teams) = Secrets::read_e2b(&arns, &reader).await.unwrap();
    assert!(default.is_none() && teams.is_empty());
    // Locally nothing can put it in later: the stack refuses to start without one.
    let err = Secrets::load(Function::Api, &SecretsSource::Environment, &HashMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("E2B_API_KEY"), "{err}");
}

#[tokio::test]
async fn bad_values_are_named_and_never_quoted() {
    for (doc, field) in [
        (r#"{"e2bApiKey": "e2b_REPLACE_WITH_YOUR_E2B_API_KEY"}"#, "e2bApiKey"),
        (r#"{"e2bApiKey": "e2b_short-hunter2"}"#, "e2bApiKey"),
        (r#"{"e2bApiKey": 12345678}"#, "e2bApiKey"),
        (r#"{"teamE2bApiKeys": {"t1": ""}}"#, "teamE2bApiKeys.t1"),
        (r#"{"teamE2bApiKeys": "hunter2-hunter2"}"#, "teamE2bApiKeys"),
        (
            r#"{"e2bApiKey": "hunter2 hunter2 hunter2 hunter2 hunter2"}"#,
            "e2bApiKey",
        ),
    ] {
        let err = load(Function::Api, doc, "{}", "{}").await.unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
        assert!(
            !err.contains("hunter2") && !err.contains("12345678") && !err.contains("REPLACE"),
            "{err}"
        );
    }
    let err = load(Function::Api, r#"{"e2bApiKey": "hunter2"#, "{}", "{}")
        .await
        .unwrap_err();
    assert!(
        matches!(err, SecretsError::NotJson { .. }) && !err.to_string().contains("hunter2"),
        "{err}"
    );
}

#[tokio::test]
async fn the_webhook_function_needs_a_signing_secret() {
    let err = load(Function::Webhook, "{}", r#"{"webhookSecret": ""}"#, "{}")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("webhookSecret"), "{err}");
}

#[test]
fn environment_lists_are_split_and_bad_json_is_named() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    };
    let secrets = Secrets::from_env(env(&[("E2B_WEBHOOK_SECRETS", "a, b,")])).unwrap();
    assert_eq!(secrets.webhook_secrets, vec![Secret::new("a"), Secret::new("b")]);
    let err = Secrets::from_env(env(&[("E2B_TEAM_API_KEYS", "{\"t\": 1234567}")])).unwrap_err();
    assert!(err.to_string().contains("E2B_TEAM_API_KEYS") && !err.to_string().contains("1234567"));
    let err = fields::from_environment(env(&[("E2B_API_KEY", "short")])).unwrap_err();
    assert!(err.to_string().contains("E2B_API_KEY"), "{err}");
}
