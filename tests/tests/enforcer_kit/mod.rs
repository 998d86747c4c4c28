//! Helpers shared by the idle-enforcer and reconciler tests (included with `#[path]`).

#![allow(dead_code)]

pub mod fleet;

use std::collections::HashMap;
use std::time::Duration;

use e2b_emulator::{EmulatorConfig, Route};
use sandman::domain::{Actor, IdlePolicy, LifecycleRecord, ProjectKey, SessionState};
use sandman::e2b::{ApiKey, E2b, E2bAccounts, E2bClient, E2bSettings};
use sandman::store::{Consistency, ProjectRecord, keys};
use sandman_local::testkit::TestStack;

pub const MINUTE: Duration = Duration::from_secs(60);

/// A stack whose E2B client gives up quickly (two attempts within one second), so tests of
/// 5xx, 429 and timeouts take a moment, and `env` on top of the defaults.
pub async fn stack(env: &[(&str, &str)]) -> TestStack {
    stack_with(EmulatorConfig::default(), env).await
}

pub async fn stack_with(emulator: EmulatorConfig, env: &[(&str, &str)]) -> TestStack {
    let mut env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    // The fleets here run far more than a team's default 20 live sandboxes.
    env.entry("SANDMAN_MAX_LIVE_SANDBOXES_PER_TEAM".into())
        .or_insert_with(|| "100000".into());
    let mut stack = TestStack::start_with(emulator, move |name| env.get(name).cloned()).await;
    stack.sandman.e2b = accounts(&stack, HashMap::new());
    stack
}

/// The deployment key plus `team_keys`, on a client with short deadlines.
pub fn accounts(stack: &TestStack, team_keys: HashMap<String, String>) -> E2bAccounts {
    let client = E2bClient::new(E2bSettings {
        base_url: stack.emulator.base_url(),
        call_deadline: Duration::from_secs(1),
        max_attempts: 2,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        allow_http_loopback: true,
    })
    .expect("E2B client");
    let teams = team_keys
        .into_iter()
        .map(|(team, key)| (team, ApiKey::new(key).expect("key")))
        .collect();
    E2bAccounts::new(client, Some(ApiKey::new(stack.emulator.api_key()).expect("key")), teams)
}

/// E2B as the deployment's key sees it, to change things behind Sandman's back.
pub fn e2b(stack: &TestStack) -> E2b {
    stack.sandman.e2b.default_account().expect("a default account")
}

/// Registers `project` with this idle policy and opens it: a RUNNING session, last active now.
pub async fn running(
    stack: &TestStack,
    project: &str,
    idle_timeout: Duration,
    snapshot_on_idle: bool,
) -> (ProjectKey, String) {
    let mut spec = stack.spec(project);
    spec.idle = IdlePolicy {
        idle_timeout,
        snapshot_on_idle,
        ..IdlePolicy::default()
    };
    stack.register(&spec).await;
    let opened = stack
        .sandman
        .open(&spec.key, Actor::User)
        .await
        .expect("the project opens");
    let sandbox = opened
        .record
        .session
        .and_then(|s| s.sandbox)
        .expect("an open session has a sandbox")
        .sandbox_id;
    (spec.key, sandbox)
}

/// `n` project names whose sessions land in the same idle-index shard (so one page holds them).
pub fn same_shard(stack: &TestStack, n: usize) -> Vec<String> {
    let mut by_shard: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0.. {
        let name = format!("p{i}");
        let names = by_shard.entry(keys::idle_shard(&stack.key(&name))).or_default();
        names.push(name);
        if names.len() == n {
            return names.clone();
        }
    }
    unreachable!("some shard fills up")
}

pub async fn record(stack: &TestStack, key: &ProjectKey) -> ProjectRecord {
    stack
        .store()
        .get_project(key, Consistency::Strong)
        .await
        .expect("read")
        .expect("the project exists")
}

pub async fn state(stack: &TestStack, key: &ProjectKey) -> Option<SessionState> {
    record(stack, key).await.state()
}

pub fn e2b_state(stack: &TestStack, sandbox: &str) -> Option<e2b_emulator::SandboxState> {
    stack.emulator.sandbox(sandbox).map(|s| s.state)
}

/// Pause requests E2B received for this sandbox.
pub fn pause_calls(stack: &TestStack, sandbox: &str) -> usize {
    stack
        .emulator
        .calls_to(Route::PauseSandbox)
        .iter()
        .filter(|call| call.path.contains(sandbox))
        .count()
}

pub async fn events(stack: &TestStack, key: &ProjectKey) -> Vec<LifecycleRecord> {
    stack
        .store()
        .list_events(key, None, 100)
        .await
        .expect("lifecycle log")
        .items
}

/// The lifecycle line that moved the session into `to` by `actor`, if any.
pub async fn event_into(
    stack: &TestStack,
    key: &ProjectKey,
    actor: Actor,
    to: SessionState,
) -> Option<LifecycleRecord> {
    events(stack, key)
        .await
        .into_iter()
        .find(|e| e.actor == actor && e.to == Some(to))
}
