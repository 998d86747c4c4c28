//! Two E2B accounts and more in one emulator, and a Sandman whose teams use them: `team-local` the
//! deployment's default key, `team-b` a key it registers (two keys of one E2B team), `team-c` a key
//! the deployment configures. Shared by the team-account tests (included with `mod`).

#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use e2b_emulator::{EmulatorConfig, TeamAccount};
use http::Method;
use sandman::Sandman;
use sandman::auth::{mint_admin_token, mint_dev_token};
use sandman::domain::{Actor, IdlePolicy, ProjectId, ProjectKey, SessionState, TeamId};
use sandman::secrets::Secret;
use sandman::store::{Consistency, Store};
use sandman_local::fixture::{JWT_SECRET, TestStack};
use serde_json::{Value, json};

use crate::api_kit::{Reply, request, router_for, send};

/// The deployment's default key: E2B team `team-local`, used by Sandman team `team-local`.
pub const KEY_LOCAL: &str = "e2b_key_local_000000000001";
/// E2B team `team-b`'s key, which Sandman team `team-b` registers as its own.
pub const KEY_B: &str = "e2b_key_team_b_00000000bbbb";
/// Another key of E2B team `team-b`: a rotation.
pub const KEY_B2: &str = "e2b_key_team_b_0000000b2b2b";
/// E2B team `team-c`'s key, configured by the deployment for Sandman team `team-c` (never registered).
pub const KEY_C: &str = "e2b_key_team_c_00000000cccc";
const ALL_KEYS: [&str; 4] = [KEY_LOCAL, KEY_B, KEY_B2, KEY_C];
const ADMIN_ROLE: &str = "sandman-admin";
const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub struct Accounts {
    pub stack: TestStack,
    pub router: Router,
}

impl Accounts {
    pub async fn start(extra: &'static [(&'static str, &'static str)]) -> Accounts {
        let emulator = EmulatorConfig {
            teams: vec![
                TeamAccount::new("team-local", KEY_LOCAL),
                TeamAccount::new("team-b", KEY_B),
                TeamAccount::new("team-b", KEY_B2),
                TeamAccount::new("team-c", KEY_C),
            ],
            ..EmulatorConfig::default()
        };
        let mut stack = TestStack::start_with(emulator, move |name| {
            // An empty value in `extra` unsets the variable, as an empty one does in Lambda.
            if let Some((_, value)) = extra.iter().find(|(k, _)| *k == name) {
                return Some(value.to_string()).filter(|v| !v.is_empty());
            }
            match name {
                "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
                "SANDMAN_DEV_MASTER_KEY" => Some(MASTER_KEY.into()),
                "JWT_ADMIN_ROLE" => Some(ADMIN_ROLE.into()),
                _ => None,
            }
        })
        .await;
        let mut secrets = (*stack.sandman.secrets).clone();
        secrets.team_e2b_api_keys.insert("team-c".into(), Secret::new(KEY_C));
        let sandman = &stack.sandman;
        stack.sandman = Sandman::new(
            sandman.store.clone(),
            (*sandman.config).clone(),
            secrets,
            stack.clock.clone(),
        )
        .unwrap();
        let router = router_for(stack.sandman.clone());
        Accounts { stack, router }
    }

    pub fn token(&self, team: &str, admin: bool) -> String {
        let mint = if admin { mint_admin_token } else { mint_dev_token };
        let team = TeamId::parse(team).unwrap();
        let auth = &self.stack.sandman.config.auth;
        mint(
            auth,
            &Secret::new(JWT_SECRET),
            &team,
            "tester",
            Duration::from_secs(600),
        )
        .unwrap()
    }

    pub async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let reply = send(&self.router, request(method, path, Some(token), body)).await;
        for key in ALL_KEYS {
            assert!(
                !reply.json.to_string().contains(key),
                "a response shows a key: {reply:?}"
            );
        }
        reply
    }

    pub async fn register_key(&self, team: &str, key: &str) -> Reply {
        let token = self.token(team, true);
        self.call(Method::PUT, "/v1/team/e2b", &token, Some(json!({ "apiKey": key })))
            .await
    }

    pub fn key(team: &str, project: &str) -> ProjectKey {
        ProjectKey::new(TeamId::parse(team).unwrap(), ProjectId::parse(project).unwrap())
    }

    /// Registers the project with a one-minute idle timeout and opens it.
    pub async fn running(&self, team: &str, project: &str) -> (ProjectKey, String) {
        let mut spec = self.stack.spec(project);
        spec.key = Self::key(team, project);
        spec.idle = IdlePolicy {
            idle_timeout: Duration::from_secs(60),
            snapshot_on_idle: false,
            ..IdlePolicy::default()
        };
        self.stack.register(&spec).await;
        let opened = self.stack.sandman.open(&spec.key, Actor::User).await.expect("opens");
        let sandbox = opened.record.session.and_then(|s| s.sandbox).unwrap().sandbox_id;
        (spec.key, sandbox)
    }

    pub async fn state(&self, key: &ProjectKey) -> Option<SessionState> {
        let record = self.stack.store().get_project(key, Consistency::Strong).await.unwrap();
        record.and_then(|r| r.state())
    }

    /// A second instance over the same table: nothing in its memory.
    pub fn another_instance(&self) -> Sandman {
        let sandman = &self.stack.sandman;
        let store = Store::new(self.stack.table.client.clone(), self.stack.table.name.clone());
        Sandman::new(
            store,
            (*sandman.config).clone(),
            (*sandman.secrets).clone(),
            sandman.clock.clone(),
        )
        .unwrap()
    }

    /// No recorded call, call log line or table item holds a full key.
    pub async fn assert_no_key_leaked(&self) {
        let calls = serde_json::to_string(&self.stack.emulator.calls()).unwrap();
        let table = self.stack.table.contents().await.join("\n");
        for key in ALL_KEYS {
            assert!(!calls.contains(key), "the emulator's call log holds a key");
            assert!(!table.contains(key), "the table holds a key in clear");
        }
    }
}
