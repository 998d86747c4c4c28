//! The deployed configuration, tested as deployed: the secrets exactly as template.yaml creates
//! them and each function's environment exactly as the template sets it, through the start-up path
//! each function's `main` runs (`Sandman::start`, and for the API `sandman_api::app`). A function
//! starts, or stops with a message naming what the operator must set, and never quotes a value.

use std::collections::{BTreeSet, HashMap};

use sandman::Sandman;
use sandman::config::Config;
use sandman::secrets::{Function, SecretKind};
use sandman::store::Store;
use sandman_local::deployed::{DeployedFunction, Deployment};
use sandman_local::table::TEMPLATE;
use sandman_local::testkit;

const SECRET_EXAMPLE: &str = include_str!("../../secret.example.json");
/// The shape of a real E2B key (`e2b_` and 40 hex digits).
const E2B_KEY: &str = "e2b_5f0c2a9d41b7e3860c1f9a2d7b4e6c3018a5f2d9";

fn deployment() -> Deployment {
    // JwtIssuer and JwtAudience have no default: the deployer answers them, and chooses how tokens
    // are checked (a JWKS, or the generated HS256 key).
    deployment_with(&[("JwtAcceptHs256", "true")])
}

fn deployment_with(answers: &[(&str, &str)]) -> Deployment {
    let mut parameters = vec![("JwtIssuer", "https://auth.example.com/"), ("JwtAudience", "sandman")];
    parameters.extend_from_slice(answers);
    Deployment::from_template(TEMPLATE, &parameters).expect("template.yaml parses")
}

#[tokio::test]
async fn an_api_left_without_a_way_to_check_tokens_stops_naming_both_parameters() {
    let deployment = deployment_with(&[]);
    let e2b_arn = arn_of(&deployment, SecretKind::E2b);
    let secrets = merged(
        &deployment.secrets(),
        &e2b_arn,
        serde_json::json!({"e2bApiKey": E2B_KEY}),
    );
    let api = deployment
        .functions()
        .into_iter()
        .find(|f| kind(f) == Function::Api)
        .expect("the template has the API function");
    let err = start(&api, &secrets)
        .await
        .expect_err("no JWKS and no HS256: the API must not start");
    assert!(err.contains("JwtJwksUrl") && err.contains("JwtAcceptHs256"), "{err}");
}

fn kind(function: &DeployedFunction) -> Function {
    Function::ALL
        .into_iter()
        .find(|f| f.binary() == function.binary)
        .unwrap_or_else(|| panic!("{} builds unknown binary {:?}", function.logical_id, function.binary))
}

/// What `main` does after the environment is read; the Lambda environment as the template sets it
/// (an empty value reads as unset, as `Config::from_env` reads it).
async fn start(function: &DeployedFunction, secrets: &HashMap<String, String>) -> Result<(), String> {
    let config = Config::from_lookup(|name| function.environment.get(name).filter(|v| !v.is_empty()).cloned())
        .map_err(|e| e.to_string())?;
    let store = Store::new(testkit::local_client(), config.table.clone());
    let sandman = Sandman::start(kind(function), config, secrets, store)
        .await
        .map_err(|e| e.to_string())?;
    if kind(function) == Function::Api {
        let _router = sandman_api::app(sandman).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn arn_of(deployment: &Deployment, kind: SecretKind) -> String {
    let function = deployment
        .functions()
        .into_iter()
        .find(|f| f.environment.contains_key(kind.arn_variable()))
        .expect("some function reads it");
    function.environment[kind.arn_variable()].clone()
}

/// `jq -s '.[0] * .[1]'` of the secret as created and the operator's values (README, "Deploy").
fn merged(secrets: &HashMap<String, String>, arn: &str, values: serde_json::Value) -> HashMap<String, String> {
    let mut doc: serde_json::Value = serde_json::from_str(&secrets[arn]).unwrap();
    for (field, value) in values.as_object().unwrap() {
        doc[field] = value.clone();
    }
    let mut secrets = secrets.clone();
    secrets.insert(arn.to_owned(), doc.to_string());
    secrets
}

/// What the functions do without the key (503, skipped ticks, and the key found once it is put
/// in) is `first_deploy.rs`.
#[tokio::test]
async fn a_fresh_deploy_starts_every_function_before_the_e2b_key_is_set() {
    let deployment = deployment();
    let secrets = deployment.secrets();
    let functions = deployment.functions();
    assert_eq!(functions.len(), 5);
    for function in &functions {
        start(function, &secrets).await.unwrap_or_else(|err| {
            panic!(
                "{} must start as deployed, without the E2B key: {err}",
                function.logical_id
            )
        });
    }
}

#[tokio::test]
async fn with_the_operators_e2b_key_merged_in_every_function_starts() {
    let deployment = deployment();
    let e2b_arn = arn_of(&deployment, SecretKind::E2b);
    let secrets = merged(
        &deployment.secrets(),
        &e2b_arn,
        serde_json::json!({"e2bApiKey": E2B_KEY}),
    );
    for function in deployment.functions() {
        start(&function, &secrets)
            .await
            .unwrap_or_else(|err| panic!("{} did not start: {err}", function.logical_id));
    }
}

#[tokio::test]
async fn the_placeholders_of_the_example_secret_are_refused_by_name() {
    let deployment = deployment();
    let e2b_arn = arn_of(&deployment, SecretKind::E2b);
    let example: serde_json::Value = serde_json::from_str(SECRET_EXAMPLE).unwrap();
    let secrets = merged(&deployment.secrets(), &e2b_arn, example.clone());
    for function in deployment
        .functions()
        .iter()
        .filter(|f| kind(f).reads().contains(&SecretKind::E2b))
    {
        let err = start(function, &secrets).await.expect_err("a placeholder is not a key");
        assert!(err.contains("e2bApiKey") && err.contains("placeholder"), "{err}");
        assert!(
            !err.contains(example["e2bApiKey"].as_str().unwrap()),
            "the value is quoted: {err}"
        );
    }
    // The same placeholder in place of a generated signing secret is refused too.
    let webhook_arn = arn_of(&deployment, SecretKind::Webhook);
    let placeholder = example["e2bApiKey"].clone();
    let secrets = merged(
        &deployment.secrets(),
        &webhook_arn,
        serde_json::json!({"webhookSecret": placeholder}),
    );
    let webhook = deployment
        .functions()
        .into_iter()
        .find(|f| kind(f) == Function::Webhook)
        .unwrap();
    let err = start(&webhook, &secrets)
        .await
        .expect_err("a placeholder is not a signing secret");
    assert!(err.contains("webhookSecret"), "{err}");
}

#[test]
fn each_function_is_given_and_granted_only_the_secrets_it_reads() {
    let deployment = deployment();
    for function in deployment.functions() {
        let reads = kind(&function).reads();
        let given: BTreeSet<String> = SecretKind::ALL
            .iter()
            .filter_map(|kind| function.environment.get(kind.arn_variable()).cloned())
            .collect();
        let expected: BTreeSet<String> = reads.iter().map(|kind| arn_of(&deployment, *kind)).collect();
        assert_eq!(
            given, expected,
            "{}: secret ARNs in its environment",
            function.logical_id
        );
        let granted: BTreeSet<String> = function.readable_secrets.iter().cloned().collect();
        assert_eq!(
            granted, expected,
            "{}: secrets its IAM policy can read",
            function.logical_id
        );
    }
}
