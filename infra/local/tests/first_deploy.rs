//! A first deploy, as deployed: every function's cold start (`Sandman::cold_start`) with the
//! environment template.yaml sets and the secrets it creates, over the real AWS SDK clients
//! against DynamoDB Local and stand-ins of Secrets Manager, KMS and SQS (`deployed::standins`).
//! Without the E2B key every function starts, the API answers 503 `e2b_not_configured` naming
//! the secret, and the scheduled functions skip their ticks without failing (nothing is
//! dead-lettered); once the operator merges the key in, everything works with no redeploy. Under
//! `SANDMAN_RECORD_AWS_CALLS` it also records each function's Secrets Manager, KMS and SQS calls,
//! which the local stack cannot make, for the IAM check.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use e2b_emulator::{Emulator, EmulatorConfig, TeamAccount};
use http::{Request, StatusCode};
use sandman::Sandman;
use sandman::clock::Clock;
use sandman::config::Config;
use sandman::domain::TeamId;
use sandman::outbound::Sender;
use sandman::secrets::{Function, SecretKind};
use sandman_local::deployed::standins::AwsStandIns;
use sandman_local::deployed::{DeployedFunction, Deployment, STACK};
use sandman_local::table::TEMPLATE;
use sandman_local::testkit::{self, TestTable};
use sandman_outbound::sqs::SqsQueue;
use sandman_outbound::{Outbound, handle};
use serde_json::{Value, json};
use tower::ServiceExt;

const DEFAULT_TEAM: (&str, &str) = ("team-default", "e2b_first_deploy_default_key_0123456789abcdef");
const OWN_TEAM: (&str, &str) = ("team-own", "e2b_first_deploy_own_team_key_0123456789abcdef");
const ADMIN_ROLE: &str = "sandman-admin";

fn deployment() -> Deployment {
    Deployment::from_template(
        TEMPLATE,
        &[
            ("JwtIssuer", "https://auth.example.com/"),
            ("JwtAudience", "sandman"),
            ("JwtAcceptHs256", "true"),
            ("JwtAdminRole", ADMIN_ROLE),
        ],
    )
    .expect("template.yaml parses")
}

struct FirstDeploy {
    deployment: Deployment,
    aws: AwsStandIns,
    emulator: Emulator,
    table: TestTable,
    clock: Clock,
    queue_url: String,
}

impl FirstDeploy {
    async fn start() -> FirstDeploy {
        let deployment = deployment();
        let aws = AwsStandIns::start(deployment.secrets())
            .await
            .expect("the stand-ins start");
        let emulator = Emulator::start(EmulatorConfig {
            teams: [DEFAULT_TEAM, OWN_TEAM]
                .iter()
                .map(|(team, key)| TeamAccount::new(*team, *key))
                .collect(),
            ..EmulatorConfig::default()
        })
        .await
        .expect("the emulator starts");
        let clock = Clock::manual(emulator.now().replace_nanosecond(0).unwrap_or(emulator.now()));
        let queue_url = format!("{}/123456789012/{STACK}-OutboundQueue", aws.url);
        FirstDeploy {
            deployment,
            aws,
            emulator,
            table: TestTable::create().await,
            clock,
            queue_url,
        }
    }

    fn function(&self, kind: Function) -> DeployedFunction {
        self.deployment
            .functions()
            .into_iter()
            .find(|f| f.binary == kind.binary())
            .unwrap_or_else(|| panic!("the template has no {kind} function"))
    }

    /// The environment Lambda gives `kind`, with the addresses of this machine's services.
    fn environment(&self, kind: Function) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = self.function(kind).environment.into_iter().collect();
        env.insert("SANDMAN_TABLE".into(), self.table.name.clone());
        env.insert("E2B_API_URL".into(), self.emulator.base_url());
        env.insert("E2B_API_ALLOW_HTTP_LOOPBACK".into(), "true".into());
        env.insert("OUTBOUND_ALLOW_HTTP_LOOPBACK".into(), "true".into());
        env.insert("OUTBOUND_QUEUE_URL".into(), self.queue_url.clone());
        env
    }

    /// What Lambda's environment gives the SDK: a region, the role's keys, and here the endpoints.
    fn aws_config(&self) -> sandman::aws::SdkConfig {
        let (dynamodb, standins) = (testkit::local_endpoint(), self.aws.url.clone());
        sandman::aws::sdk_config_from(&move |name| match name {
            "AWS_REGION" => Some("us-east-1".into()),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".into()),
            "AWS_ENDPOINT_URL_DYNAMODB" => Some(dynamodb.clone()),
            "AWS_ENDPOINT_URL_KMS" | "AWS_ENDPOINT_URL_SECRETS_MANAGER" | "AWS_ENDPOINT_URL_SQS" => {
                Some(standins.clone())
            }
            _ => None,
        })
    }

    /// `main`'s cold start for `kind`, on this test's clock.
    async fn cold_start(&self, kind: Function) -> Sandman {
        let env = self.environment(kind);
        let config = Config::from_lookup(|name| env.get(name).filter(|v| !v.is_empty()).cloned())
            .unwrap_or_else(|err| panic!("{kind}: configuration as deployed: {err}"));
        let mut sandman = Sandman::cold_start(kind, config, &self.aws_config())
            .await
            .unwrap_or_else(|err| panic!("{kind} must start as deployed, without the E2B key: {err}"));
        sandman.clock = self.clock.clone();
        sandman
    }

    fn e2b_secret_arn(&self) -> String {
        self.function(Function::Api).environment[SecretKind::E2b.arn_variable()].clone()
    }

    /// `get-secret-value | jq '.e2bApiKey = $key' | put-secret-value` (docs/deploy.md).
    fn merge_e2b_key(&self) {
        let arn = self.e2b_secret_arn();
        let mut doc: Value = serde_json::from_str(&self.aws.secret(&arn).expect("the secret exists")).unwrap();
        doc["e2bApiKey"] = json!(DEFAULT_TEAM.1);
        self.aws.put_secret(&arn, &doc.to_string());
    }

    fn token(&self, api: &Sandman, team: &str, admin: bool) -> String {
        let secret = api.secrets.jwt_hs256_secret.clone().expect("the generated HS256 key");
        let team = TeamId::parse(team).unwrap();
        let ttl = Duration::from_secs(600);
        if admin {
            sandman::auth::mint_admin_token(&api.config.auth, &secret, &team, "operator", ttl).unwrap()
        } else {
            sandman::auth::mint_dev_token(&api.config.auth, &secret, &team, "user", ttl).unwrap()
        }
    }
}

async fn call(
    router: &axum::Router,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = router.clone().oneshot(request).await.expect("the router answers");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_first_deploy_runs_without_the_e2b_key_and_uses_it_once_merged_in_without_a_redeploy() {
    let stack = FirstDeploy::start().await;
    let api = stack.cold_start(Function::Api).await;
    let enforcer = stack.cold_start(Function::IdleEnforcer).await;
    let pruner = stack.cold_start(Function::SnapshotPruner).await;
    let webhook = stack.cold_start(Function::Webhook).await;
    let outbound = stack.cold_start(Function::Outbound).await;
    assert!(
        webhook.team_keys.is_none(),
        "the webhook function holds no way to open a team key"
    );
    let router = sandman_api::app(api.clone()).expect("the API's router");
    let user = stack.token(&api, DEFAULT_TEAM.0, false);

    // Without the key: projects can be registered, nothing that needs E2B can run.
    let settings = json!({"templateId": "base", "idleTimeoutSeconds": 60});
    let (status, _) = call(&router, &user, "PUT", "/v1/projects/first", Some(settings.clone())).await;
    assert!(status.is_success(), "{status}");
    let (status, body) = call(&router, &user, "POST", "/v1/projects/first/sandbox", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "e2b_not_configured", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("e2bApiKey") && message.contains("E2bSecretArn"),
        "{message}"
    );
    let tick = sandman_idle_enforcer::run(&enforcer, &Value::Null)
        .await
        .expect("a skipped tick succeeds");
    assert!(tick["skipped"].is_string(), "{tick}");
    let reconcile = sandman_idle_enforcer::run(&enforcer, &json!({"task": "reconcile"}))
        .await
        .expect("skipped");
    assert!(reconcile["skipped"].is_string(), "{reconcile}");
    let pruned = sandman_snapshot_pruner::tick(&pruner, &Value::Null)
        .await
        .expect("a skipped prune succeeds");
    assert_eq!(pruned.snapshots_deleted, 0);
    let reads = stack.aws.count("secretsmanager.GetSecretValue");

    // Within a minute of the first miss, an instance does not ask Secrets Manager again.
    let (status, _) = call(&router, &user, "POST", "/v1/projects/first/sandbox", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        stack.aws.count("secretsmanager.GetSecretValue"),
        reads,
        "no read per request"
    );

    // The operator merges the key in; no function is redeployed or restarted.
    stack.merge_e2b_key();
    stack.clock.advance(Duration::from_secs(61));
    let (status, body) = call(&router, &user, "POST", "/v1/projects/first/sandbox", None).await;
    assert!(status.is_success(), "{status}: {body}");
    let running: Vec<_> = stack
        .emulator
        .sandboxes()
        .into_iter()
        .filter(|s| s.team_id == DEFAULT_TEAM.0)
        .collect();
    assert_eq!(running.len(), 1, "E2B runs the sandbox the API opened");
    let tick = sandman_idle_enforcer::run(&enforcer, &Value::Null)
        .await
        .expect("an enforce tick");
    assert_eq!(tick["task"], "enforce", "{tick}");

    // A team registers its own key: the API seals it with KMS, every function opens it.
    let admin = stack.token(&api, OWN_TEAM.0, true);
    let (status, body) = call(
        &router,
        &admin,
        "PUT",
        "/v1/team/e2b",
        Some(json!({"apiKey": OWN_TEAM.1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let own = stack.token(&api, OWN_TEAM.0, false);
    call(&router, &own, "PUT", "/v1/projects/mine", Some(settings)).await;
    let (status, body) = call(&router, &own, "POST", "/v1/projects/mine/sandbox", None).await;
    assert!(status.is_success(), "{status}: {body}");
    // Another API instance (a cold start after the registration) opens the sealed key.
    let second = sandman_api::app(stack.cold_start(Function::Api).await).expect("a second API instance");
    let (status, body) = call(&second, &own, "POST", "/v1/projects/mine/sandbox/pause", None).await;
    assert!(status.is_success(), "{status}: {body}");
    let reconcile = sandman_idle_enforcer::run(&enforcer, &json!({"task": "reconcile"}))
        .await
        .unwrap();
    assert_eq!(reconcile["task"], "reconcile", "{reconcile}");
    let team = TeamId::parse(OWN_TEAM.0).unwrap();
    pruner
        .e2b_for_team(&team)
        .await
        .expect("the pruner opens the team's key");
    sandman_snapshot_pruner::tick(&pruner, &Value::Null)
        .await
        .expect("a prune tick");
    assert!(stack.aws.count("TrentService.GenerateDataKey") >= 1 && stack.aws.count("TrentService.Decrypt") >= 2);

    // Outbound: a lifecycle change fans out to the team's endpoint through SQS, and a delivery
    // that fails is hidden for its backoff.
    let endpoint = json!({"url": "http://127.0.0.1:9/hook", "events": ["sandbox.running"]});
    let (status, body) = call(&router, &admin, "POST", "/v1/webhooks/endpoints", Some(endpoint)).await;
    assert!(status.is_success(), "{status}: {body}");
    let queue = SqsQueue::new(
        sandman_outbound::sqs::client(&stack.aws_config()),
        stack.queue_url.clone(),
    );
    let outbound = Outbound {
        sender: Sender::of(&outbound).unwrap(),
        queue,
        sandman: outbound,
    };
    let line = json!({
        "pk": {"S": "PROJECT#team-own#mine"}, "sk": {"S": "EVENT#01JZZZZZZZZZZZZZZZZZZZZZZZ"},
        "at": {"N": "1795000000000"}, "actor": {"S": "user"}, "cause": {"S": "opened"},
        "from": {"S": "STARTING"}, "to": {"S": "RUNNING"}, "sandboxId": {"S": "sbx1"},
    });
    let stream = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT",
        "dynamodb": {"Keys": {"pk": line["pk"], "sk": line["sk"]}, "NewImage": line}}]});
    let fanned = handle(&outbound, lambda_runtime::LambdaEvent::new(stream, Default::default()))
        .await
        .expect("the stream batch is fanned out");
    assert_eq!(fanned["queued"], 1, "{fanned}");
    let sent = stack.aws.sent(&stack.queue_url);
    assert_eq!(sent.len(), 1);
    let deliveries = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "receiptHandle": "r1",
        "body": sent[0], "attributes": {"ApproximateReceiveCount": "1"}}]});
    let delivered = handle(
        &outbound,
        lambda_runtime::LambdaEvent::new(deliveries, Default::default()),
    )
    .await
    .expect("the SQS batch is handled");
    assert_eq!(
        delivered["batchItemFailures"].as_array().map(Vec::len),
        Some(1),
        "{delivered}"
    );
    assert_eq!(
        stack.aws.visibility_changes().len(),
        1,
        "the failed delivery waits for its backoff"
    );
}

#[test]
fn the_e2b_secrets_literal_never_changes() {
    // CloudFormation writes a changed SecretString back on update, erasing the operator's key:
    // this value is the shape of the secret forever.
    let deployment = deployment();
    let secrets = deployment.secrets();
    let arn = deployment
        .functions()
        .into_iter()
        .find_map(|f| f.environment.get(SecretKind::E2b.arn_variable()).cloned())
        .unwrap();
    assert_eq!(secrets[&arn], r#"{"e2bApiKey": "", "teamE2bApiKeys": {}}"#);
}
