//! Two paths of the local stack (every function over its own recorded instance, E2B's webhooks
//! from the emulator) that no other end-to-end run takes, each with an IAM grant of its own
//! (`scripts/check-iam`): a budget crossed by the usage a webhook reports, which the idle
//! enforcer then enforces (the webhook's budget-reached listing; the enforcer's `byTeam` query and
//! the listing's delete); and a project deleted after it was forked live (the API finds the
//! fork's sandbox, which carries the source's metadata, through `bySandbox`, and spares it).
//! Judged by E2B's state (the emulator) and the API's answers.

use std::time::{Duration, Instant};

use e2b_emulator::SandboxState;
use reqwest::Method;
use sandman::clock::Clock;
use sandman_local::dev::{DevOptions, dev_token, start};
use sandman_local::stack::LocalStack;
use sandman_local::testkit::TestTable;
use serde_json::{Value, json};

struct Api<'a> {
    stack: &'a LocalStack,
    token: String,
    http: reqwest::Client,
}

impl Api<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/v1{path}", self.stack.api_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the local API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, statuses: &[u16]) -> Value {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert!(statuses.contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// A project of the template `base`, opened and RUNNING; its sandbox id.
    async fn running(&self, project: &str) -> String {
        let settings = json!({"templateId": "base", "idleTimeoutSeconds": 600});
        self.expect(
            Method::PUT,
            &format!("/projects/{project}"),
            Some(settings),
            &[200, 201],
        )
        .await;
        let opened = self
            .expect(Method::POST, &format!("/projects/{project}/sandbox"), None, &[200])
            .await;
        assert_eq!(opened["sandbox"]["state"], "RUNNING", "{opened}");
        opened["sandbox"]["sandboxId"]
            .as_str()
            .expect("a sandbox id")
            .to_owned()
    }

    fn e2b_state(&self, sandbox: &str) -> Option<SandboxState> {
        let emulator = self.stack.emulator.as_ref().expect("the emulator");
        emulator.sandbox(sandbox).map(|s| s.state)
    }
}

async fn stack() -> (TestTable, LocalStack) {
    let table = TestTable::create().await;
    let stack = start(DevOptions::ephemeral(table.name.clone(), false, Clock::System))
        .await
        .expect("the local stack starts");
    (table, stack)
}

#[tokio::test]
async fn a_budget_crossed_by_reported_usage_pauses_the_teams_sandboxes_and_refuses_opens() {
    let (_table, stack) = stack().await;
    let api = Api {
        token: dev_token(&stack).unwrap(),
        stack: &stack,
        http: reqwest::Client::new(),
    };
    let spender = api.running("spender").await;
    let bystander = api.running("bystander").await;
    // Below any usage the first pause will report, but not reached yet: nothing was used.
    let budget = api
        .expect(Method::PUT, "/budget", Some(json!({"monthlyUsd": 0.000001})), &[200])
        .await;
    assert_eq!(budget["reached"], false, "{budget}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    api.expect(Method::POST, "/projects/spender/sandbox/pause", None, &[200])
        .await;
    assert_eq!(api.e2b_state(&spender), Some(SandboxState::Paused));

    // E2B's paused webhook reports the run's usage; the webhook function finds the budget crossed.
    let started = Instant::now();
    loop {
        let budget = api.expect(Method::GET, "/budget", None, &[200]).await;
        if budget["reached"] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the webhook never reported usage: {budget}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, refused) = api.call(Method::POST, "/projects/spender/sandbox", None).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (402, Some("budget_exceeded")),
        "{refused}"
    );

    // The enforcer's next tick pauses what still runs, judged in E2B.
    assert_eq!(api.e2b_state(&bystander), Some(SandboxState::Running));
    let tick = stack
        .run_job("idle-enforcer", Value::Null)
        .await
        .expect("an enforce tick");
    assert_eq!(tick["budgets"]["paused"], 1, "{tick}");
    assert_eq!(api.e2b_state(&bystander), Some(SandboxState::Paused), "{tick}");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_project_forked_live_can_be_deleted_and_its_fork_keeps_running() {
    let (_table, stack) = stack().await;
    let api = Api {
        token: dev_token(&stack).unwrap(),
        stack: &stack,
        http: reqwest::Client::new(),
    };
    let source = api.running("source").await;
    let forked = api
        .expect(
            Method::POST,
            "/projects/source/fork",
            Some(json!({"projectId": "copy", "from": "live"})),
            &[201],
        )
        .await;
    let copy = api.expect(Method::GET, "/projects/copy/sandbox", None, &[200]).await["sandboxId"]
        .as_str()
        .unwrap_or_else(|| panic!("the live fork runs at once: {forked}"))
        .to_owned();
    assert_ne!(copy, source);
    assert_eq!(api.e2b_state(&copy), Some(SandboxState::Running));

    // E2B lists the fork's sandbox under the source's metadata: the delete must spare it.
    api.expect(Method::DELETE, "/projects/source", None, &[204]).await;
    assert_eq!(
        api.e2b_state(&source),
        Some(SandboxState::Killed),
        "the source's sandbox is killed"
    );
    assert_eq!(api.e2b_state(&copy), Some(SandboxState::Running), "the fork's is not");
    api.expect(Method::DELETE, "/projects/copy", None, &[204]).await;
    assert_eq!(api.e2b_state(&copy), Some(SandboxState::Killed));
    stack.shutdown().await;
}
