//! `sandman-local smoke` against the local stack (its schedules ticking every 2 s, API Gateway's
//! CORS as the template configures it): every step passes and it leaves nothing behind, judged in
//! the emulator. Then the deploy guide's own command, `smoke --stack STACK`, which reads the stack
//! through the AWS CLI: here a stand-in `aws` answers for a stack whose API is the local one.

use std::time::Duration;

use e2b_emulator::Route;
use sandman::clock::Clock;
use sandman::domain::{ProjectId, ProjectKey, TeamId};
use sandman_local::deployed::cors::Cors;
use sandman_local::dev::{DevOptions, start};
use sandman_local::smoke::{Minting, Smoke};
use sandman_local::stack::LocalStack;
use sandman_local::table::TEMPLATE;
use sandman_local::testkit::TestTable;

const ORIGIN: &str = "https://app.example.com";

async fn local_stack(table: &TestTable) -> LocalStack {
    let mut options = DevOptions::ephemeral(table.name.clone(), false, Clock::System);
    options.stack.run_timers = true;
    options.stack.schedule_every = Some(Duration::from_secs(2));
    options.stack.cors = Cors::from_template(TEMPLATE, ORIGIN).unwrap();
    start(options).await.expect("the local stack starts")
}

#[tokio::test]
async fn smoke_proves_the_loop_and_the_schedules_and_cleans_up() {
    let table = TestTable::create().await;
    let stack = local_stack(&table).await;
    let secret = stack
        .sandman
        .secrets
        .jwt_hs256_secret
        .clone()
        .expect("the stack's HS256 key");
    // The stack's issuer and audience: HS256 tokens must name both.
    let minting = Minting {
        issuer: stack.sandman.config.auth.issuer.clone(),
        audience: stack.sandman.config.auth.audience.clone(),
        team_claim: None,
        team: "smoke-team".into(),
    };
    let smoke = Smoke {
        api_url: format!("{}/", stack.api_url),
        token: minting.token(&secret).unwrap(),
        project: Smoke::throwaway_project(),
        template: "base".into(),
        timeout: Duration::from_secs(30),
        webhook_timeout: Duration::from_secs(30),
        cors_origin: Some(ORIGIN.into()),
        schedule_timeout: Some(Duration::from_secs(120)),
        scheduled: None,
    };
    let lines = std::sync::Mutex::new(Vec::new());
    let result = smoke.run(|line| lines.lock().unwrap().push(line.to_owned())).await;
    let lines = lines.into_inner().unwrap();
    assert!(result.is_ok(), "{result:?}\n{}", lines.join("\n"));
    for step in ["1. ", "2. ", "3. ", "4. ", "5. ", "6. ", "7. "] {
        assert!(
            lines.iter().any(|l| l.starts_with(step)),
            "step {step} is missing: {lines:#?}"
        );
    }

    for project in [smoke.project.clone(), format!("{}-idle", smoke.project)] {
        let key = ProjectKey::new(
            TeamId::parse("smoke-team").unwrap(),
            ProjectId::parse(project.as_str()).unwrap(),
        );
        assert!(stack.sandman.project(&key).await.is_err(), "{project} is deleted");
    }
    let emulator = stack.emulator.as_ref().unwrap();
    let succeeded = |route| emulator.calls_to(route).iter().filter(|c| c.status < 300).count();
    assert_eq!(
        succeeded(Route::CreateSandbox),
        2,
        "one sandbox per project was created at E2B"
    );
    assert_eq!(
        succeeded(Route::PauseSandbox),
        2,
        "one paused by the smoke, one by the idle enforcer"
    );
    assert_eq!(succeeded(Route::KillSandbox), 2, "both killed on delete");
    stack.shutdown().await;
}

/// A stand-in AWS CLI: the stack's outputs and parameters, its secret, its rules and functions,
/// each call recorded in `calls.log` beside it.
fn stand_in_aws(dir: &std::path::Path, api_url: &str, jwt_secret: &str, claims: (&str, &str)) -> std::path::PathBuf {
    let (issuer, audience) = claims;
    let describe = serde_json::json!({"Stacks": [{
    "Outputs": [
        {"OutputKey": "ApiUrl", "OutputValue": api_url},
        {"OutputKey": "JwtSecretArn", "OutputValue": "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt"}
    ],
    "Parameters": [
        {"ParameterKey": "JwtAcceptHs256", "ParameterValue": "true"},
        {"ParameterKey": "JwtIssuer", "ParameterValue": issuer},
        {"ParameterKey": "JwtAudience", "ParameterValue": audience},
        {"ParameterKey": "CorsAllowedOrigins", "ParameterValue": format!("{ORIGIN}, https://other.example.com")}
    ]}]});
    let script = format!(
        r#"#!/usr/bin/env bash
echo "$*" >> "{dir}/calls.log"
case "$1 $2" in
  "cloudformation describe-stacks") echo '{describe}' ;;
  "cloudformation describe-stack-resource") echo "sandman-$6-AbC123" ;;
  "secretsmanager get-secret-value") echo '{{"jwtHs256Secret": "{jwt_secret}"}}' ;;
  "events describe-rule") echo ENABLED ;;
  "lambda invoke")
    for arg; do [[ $arg == *.json ]] && out="$arg"; done
    echo '{{"task": "reconcile", "report": {{"accountsListed": 1, "driftPaused": 0}}}}' > "$out"
    echo '{{"StatusCode": 200}}' ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"#,
        dir = dir.display()
    );
    let path = dir.join("aws");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn the_guides_smoke_command_reads_the_stack_through_the_aws_cli() {
    let table = TestTable::create().await;
    let stack = local_stack(&table).await;
    let secret = stack.sandman.secrets.jwt_hs256_secret.clone().unwrap();
    let dir = std::env::temp_dir().join(format!("sandman-smoke-aws-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let auth = &stack.sandman.config.auth;
    let claims = (
        auth.issuer.as_deref().expect("HS256 names an issuer"),
        auth.audience.as_deref().expect("and an audience"),
    );
    let aws = stand_in_aws(&dir, &format!("{}/", stack.api_url), secret.expose(), claims);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sandman-local"))
        .args(["smoke", "--stack", "sandman", "--schedule-timeout", "120"])
        .env("SANDMAN_AWS_CLI", &aws)
        .env("AWS_REGION", "us-east-1")
        .env_remove("SANDMAN_TOKEN")
        .env_remove("SANDMAN_JWT_SECRET")
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    let calls = std::fs::read_to_string(dir.join("calls.log")).unwrap_or_default();
    stack.shutdown().await;
    assert!(output.status.success(), "{printed}\n{calls}");
    assert!(!printed.contains(secret.expose()), "the key is never printed");
    for step in [
        "2. CORS: https://app.example.com",
        "6. E2B's paused webhook",
        "7. schedules",
        "8. schedules: rule sandman-SnapshotPrunerFunctionPrune",
    ] {
        assert!(printed.contains(step), "{step:?} missing:\n{printed}");
    }
    assert!(
        calls.contains("lambda invoke --function-name sandman-IdleEnforcerFunction-AbC123"),
        "{calls}"
    );
    assert!(calls.contains(r#"{"dryRun":true}"#), "the pruner runs dry: {calls}");
    assert!(
        calls.lines().all(|line| line.ends_with("--region us-east-1")),
        "{calls}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
