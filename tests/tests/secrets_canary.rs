//! The canary (issue #29): a secret's value appears nowhere but in its sealed item and in the one
//! E2B call that must carry it. Every place is searched, and each search counts what it looked at:
//! a search over nothing fails. Also: a rotation reaches the running sandbox through E2B's proxy
//! at once, and where the account has no secrets API the value goes in the create's env vars only.

mod api_kit;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use api_kit::{ApiStack, Reply};
use base64::Engine;
use e2b_emulator::{EmulatorConfig, Route};
use http::{Method, StatusCode};
use sandman::outbound::Message;
use sandman::outbound::stream::{Change, StreamRecord, classify};
use sandman_local::fixture::TestStack;
use serde_json::{Value, json};

const PROJECT: &str = "canary-app";
const HOST: &str = "api.openai.com";

/// Every log line of this test binary's process, at every level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn logs() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
    .clone()
}

fn canary(label: &str) -> String {
    format!("sk-canary-{label}-{}", ulid_like())
}

fn ulid_like() -> String {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{nanos:x}")
}

/// The canaries, and the forms they could be written in.
struct Canaries(Vec<String>);

impl Canaries {
    fn forms(&self) -> Vec<String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.0
            .iter()
            .flat_map(|c| [c.clone(), b64.encode(c), format!("{:?}", c.as_bytes())])
            .collect()
    }

    /// Searches every text of `place`; fails on a hit or on a search of nothing.
    fn search(&self, place: &str, texts: &[String]) -> usize {
        assert!(!texts.is_empty(), "{place}: searched 0 items");
        let forms = self.forms();
        for text in texts {
            for form in &forms {
                assert!(!text.contains(form.as_str()), "{place}: the canary leaked into {text}");
            }
        }
        texts.len()
    }
}

fn stack_env(var: &str) -> Option<String> {
    match var {
        "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
        "SANDMAN_DEV_MASTER_KEY" => Some("ab".repeat(32)),
        "JWT_ADMIN_ROLE" => Some("admin".into()),
        _ => None,
    }
}

struct Run {
    api: ApiStack,
    replies: Vec<String>,
}

impl Run {
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let reply = self.api.call(method, path, body).await;
        self.replies
            .push(format!("{} {:?} {}", reply.status, reply.headers, reply.json));
        reply
    }
}

fn secret(value: &str) -> Value {
    json!({"value": value, "hosts": [HOST], "prefix": "Bearer "})
}

/// Every table item, raw.
async fn items(stack: &TestStack) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let page = stack
            .table
            .client
            .scan()
            .table_name(&stack.table.name)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("a scan of the test table");
        all.extend(page.items().iter().cloned());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return all,
        }
    }
}

/// What the outbound function would send for each item, were it inserted now.
fn outbound_events(items: &[HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]) -> Vec<String> {
    let mut bodies = Vec::new();
    for item in items {
        let image: HashMap<String, serde_dynamo::AttributeValue> =
            item.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        let keys = image
            .iter()
            .filter(|(k, _)| *k == "pk" || *k == "sk")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let record = StreamRecord {
            event_name: "INSERT".into(),
            dynamodb: Change {
                keys,
                new_image: Some(image),
                old_image: None,
            },
        };
        if let Ok(Some(event)) = classify(&record, time::OffsetDateTime::now_utc()) {
            bodies.push(event.body);
        }
    }
    bodies
}

/// Searches every place; returns how many lifecycle lines name the secret.
async fn search_everywhere(run: &mut Run, canaries: &Canaries, logs: &Logs, carriers: &[Route]) -> usize {
    let events = run
        .call(Method::GET, &format!("/v1/projects/{PROJECT}/events"), None)
        .await;
    assert_eq!(events.status, StatusCode::OK);
    let stack = &run.api.stack;
    let table = items(stack).await;
    let sealed = table
        .iter()
        .filter(|item| {
            item.get("sk")
                .and_then(|sk| sk.as_s().ok())
                .is_some_and(|sk| sk.starts_with("SETTINGS#SECRET#"))
                && item.contains_key("ciphertext")
        })
        .count();
    assert!(sealed >= 1, "the secret's sealed item is in the table");
    let dump: Vec<String> = table.iter().map(|item| format!("{item:?}")).collect();
    let searched_items = canaries.search("DynamoDB items", &dump);

    let outbound = outbound_events(&table);
    let searched_outbound = canaries.search("outbound events", &outbound);

    let key = stack.key(PROJECT);
    let lines = stack.store().list_events(&key, None, 100).await.unwrap().items;
    let mut lifecycle: Vec<String> = lines.iter().map(|line| format!("{line:?}")).collect();
    lifecycle.extend(
        lines
            .iter()
            .filter_map(|line| Message::of(PROJECT, line))
            .map(|message| serde_json::to_string(&message).unwrap()),
    );
    let named = lines
        .iter()
        .filter(|line| line.cause.contains("secret OPENAI_KEY"))
        .count();
    let searched_lifecycle = canaries.search("lifecycle log", &lifecycle);

    // E2B: the carrying calls hold the value; every other call holds none.
    let calls = stack.emulator.calls();
    let (carrying, others): (Vec<_>, Vec<_>) = calls.iter().partition(|call| {
        let body = call.body.as_ref().map(Value::to_string).unwrap_or_default();
        canaries.0.iter().any(|c| body.contains(c.as_str()))
    });
    for call in &carrying {
        assert!(
            carriers.contains(&call.route),
            "a call that must not carry the value did: {call:?}"
        );
        assert!(
            (200..300).contains(&call.status),
            "a carrying call E2B refused: {call:?}"
        );
    }
    assert_eq!(
        carrying.len(),
        canaries.0.len(),
        "one call carries each value: {carrying:?}"
    );
    let other_calls: Vec<String> = others.iter().map(|call| format!("{call:?}")).collect();
    let searched_calls = canaries.search("E2B calls", &other_calls);

    let replies = canaries.search("API answers", &run.replies);
    let searched_logs = canaries.search("log lines", &logs.lines());
    println!(
        "searched: {searched_items} items ({sealed} sealed), {searched_outbound} outbound events, {searched_lifecycle} lifecycle lines, \
         {searched_calls} E2B calls (+{} carrying), {replies} API answers, {searched_logs} log lines",
        carrying.len()
    );
    assert!(!carrying.is_empty(), "the value reached E2B");
    named
}

#[tokio::test]
async fn a_proxied_secret_leaks_nowhere_and_a_rotation_reaches_the_running_sandbox() {
    let logs = logs();
    let api = ApiStack::start_with(stack_env).await;
    let mut run = Run {
        api,
        replies: Vec::new(),
    };
    let (first, second) = (canary("one"), canary("two"));
    run.api.register(PROJECT).await;

    let put = run
        .call(
            Method::PUT,
            &format!("/v1/projects/{PROJECT}/secrets/OPENAI_KEY"),
            Some(secret(&first)),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(put.json["secret"]["lastFour"], json!(first[first.len() - 4..]));
    assert_eq!(put.json["secret"]["delivery"], "proxy");
    let opened = run
        .call(Method::POST, &format!("/v1/projects/{PROJECT}/sandbox"), None)
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
    let sandbox = opened.json["sandbox"]["sandboxId"]
        .as_str()
        .expect("a sandbox")
        .to_owned();
    let emulator = &run.api.stack.emulator;
    assert_eq!(
        emulator.egress_headers(&sandbox, HOST).unwrap()["Authorization"],
        format!("Bearer {first}")
    );
    let inside = emulator.sandbox(&sandbox).unwrap();
    assert!(
        !format!("{:?}", inside.env_vars).contains(&first),
        "the value entered the sandbox"
    );
    let creates = emulator.calls_to(Route::CreateSandbox).len();

    // Rotation: E2B's proxy uses the new value at once, in the same sandbox, with no restart.
    let rotated = run
        .call(
            Method::PUT,
            &format!("/v1/projects/{PROJECT}/secrets/OPENAI_KEY"),
            Some(secret(&second)),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    assert_eq!(rotated.json["restartRequired"], false);
    let emulator = &run.api.stack.emulator;
    assert_eq!(
        emulator.egress_headers(&sandbox, HOST).unwrap()["Authorization"],
        format!("Bearer {second}")
    );
    assert_eq!(emulator.calls_to(Route::CreateSandbox).len(), creates);

    for path in ["secrets", "env", "sandbox", "events"] {
        let reply = run
            .call(Method::GET, &format!("/v1/projects/{PROJECT}/{path}"), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {reply:?}");
    }
    let listed = run
        .call(Method::GET, &format!("/v1/projects/{PROJECT}/secrets"), None)
        .await;
    assert_eq!(listed.json["items"][0]["name"], "OPENAI_KEY");
    assert_eq!(listed.json["items"][0]["updatedBy"], "tester");
    run.call(Method::GET, &format!("/v1/projects/{PROJECT}"), None).await;

    // A fork carries the name, never the value.
    let fork = run
        .call(
            Method::POST,
            &format!("/v1/projects/{PROJECT}/fork"),
            Some(json!({"projectId": "canary-fork", "from": "running"})),
        )
        .await;
    assert_eq!(fork.status, StatusCode::CREATED, "{fork:?}");
    let forked = run.call(Method::GET, "/v1/projects/canary-fork/secrets", None).await;
    assert_eq!(forked.json["items"][0]["name"], "OPENAI_KEY", "{forked:?}");
    assert_eq!(forked.json["items"][0]["set"], false);
    assert_eq!(forked.json["items"][0]["lastFour"], Value::Null);

    let canaries = Canaries(vec![first, second]);
    let named = search_everywhere(&mut run, &canaries, &logs, &[Route::Secrets]).await;
    assert_eq!(named, 2, "the lifecycle log names each change");
}

#[tokio::test]
async fn without_a_secrets_api_the_value_goes_only_in_the_create() {
    let logs = logs();
    let config = EmulatorConfig {
        secrets_api: false,
        ..EmulatorConfig::default()
    };
    let api = ApiStack::start_with_emulator(config, stack_env).await;
    let mut run = Run {
        api,
        replies: Vec::new(),
    };
    let value = canary("env");
    run.api.register(PROJECT).await;
    let put = run
        .call(
            Method::PUT,
            &format!("/v1/projects/{PROJECT}/secrets/OPENAI_KEY"),
            Some(secret(&value)),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(put.json["secret"]["delivery"], "env");
    let opened = run
        .call(Method::POST, &format!("/v1/projects/{PROJECT}/sandbox"), None)
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{opened:?}");
    let sandbox = opened.json["sandbox"]["sandboxId"].as_str().unwrap().to_owned();
    assert_eq!(
        run.api.stack.emulator.sandbox(&sandbox).unwrap().env_vars["OPENAI_KEY"],
        value
    );
    run.call(Method::GET, &format!("/v1/projects/{PROJECT}/secrets"), None)
        .await;
    let canaries = Canaries(vec![value]);
    let named = search_everywhere(&mut run, &canaries, &logs, &[Route::CreateSandbox]).await;
    assert_eq!(named, 1);
}
