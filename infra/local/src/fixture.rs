//! A whole Sandman core for one test: a fresh table in DynamoDB Local, an E2B emulator, and a
//! `Sandman` wired to both with a hand-moved clock.

use std::time::Duration;

use e2b_emulator::{Emulator, EmulatorConfig};
use sandman::Sandman;
use sandman::clock::Clock;
use sandman::config::Config;
use sandman::domain::{IdlePolicy, ProjectId, ProjectKey, ProjectSpec, RetentionPolicy, TeamId};
use sandman::secrets::{Secret, Secrets};
use sandman::store::{ProjectRecord, Store};

use crate::testkit::TestTable;

pub const WEBHOOK_SECRET: &str = "test-webhook-secret";
pub const JWT_SECRET: &str = "test-jwt-secret";
/// HS256 tokens name an issuer and an audience, always (`Config` refuses HS256 without them).
pub const JWT_ISSUER: &str = "https://issuer.sandman.test";
pub const JWT_AUDIENCE: &str = "sandman-test";

pub struct TestStack {
    pub sandman: Sandman,
    pub emulator: Emulator,
    pub table: TestTable,
    pub clock: Clock,
}

impl TestStack {
    pub async fn start() -> TestStack {
        Self::start_with(EmulatorConfig::default(), |_| None).await
    }

    /// `env` overrides configuration variables (e.g. `HEARTBEAT_INTERVAL_SECS`) for this stack.
    pub async fn start_with(emulator: EmulatorConfig, env: impl Fn(&str) -> Option<String>) -> TestStack {
        let table = TestTable::create().await;
        let emulator = Emulator::start(emulator).await.expect("the E2B emulator starts");
        let (name, url) = (table.name.clone(), emulator.base_url());
        let config = Config::from_lookup(|var| {
            env(var).or_else(|| match var {
                "SANDMAN_TABLE" => Some(name.clone()),
                "E2B_API_URL" => Some(url.clone()),
                "SANDMAN_TEMPLATES" => Some("base,other".into()),
                "JWT_HS256" | "E2B_API_ALLOW_HTTP_LOOPBACK" => Some("true".into()),
                "JWT_ISSUER" => Some(JWT_ISSUER.into()),
                "JWT_AUDIENCE" => Some(JWT_AUDIENCE.into()),
                _ => None,
            })
        })
        .expect("test configuration is valid");
        let secrets = Secrets {
            e2b_api_key: Some(Secret::new(emulator.api_key())),
            webhook_secrets: vec![Secret::new(WEBHOOK_SECRET)],
            jwt_hs256_secret: Some(Secret::new(JWT_SECRET)),
            ..Secrets::default()
        };
        let clock = Clock::manual(emulator.now().replace_nanosecond(0).unwrap_or(emulator.now()));
        let store = Store::new(table.client.clone(), table.name.clone());
        let sandman = Sandman::new(store, config, secrets, clock.clone()).expect("Sandman assembles");
        TestStack {
            sandman,
            emulator,
            table,
            clock,
        }
    }

    pub fn store(&self) -> &Store {
        &self.sandman.store
    }

    /// The emulator's team, which is the team every project of the stack belongs to.
    pub fn team(&self) -> TeamId {
        TeamId::parse(self.emulator.team_id()).expect("the emulator's team id is a valid team id")
    }

    pub fn key(&self, project: &str) -> ProjectKey {
        ProjectKey::new(self.team(), ProjectId::parse(project).expect("a valid project id"))
    }

    /// A project with default policies and the emulator's `base` template.
    pub fn spec(&self, project: &str) -> ProjectSpec {
        ProjectSpec {
            inactivity: Default::default(),
            key: self.key(project),
            template_id: "base".into(),
            idle: IdlePolicy::default(),
            retention: RetentionPolicy::default(),
            sandbox_timeout: Duration::from_secs(1800),
            snapshot_before_kill: false,
            public_traffic: false,
        }
    }

    pub async fn register(&self, spec: &ProjectSpec) -> ProjectRecord {
        self.store()
            .put_project(spec, self.clock.now())
            .await
            .expect("project registered")
    }

    /// Moves Sandman's clock and the emulator's together (the emulator applies its expiries).
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.emulator.advance_clock(by).await;
    }

    /// Moves both clocks until `by` has passed since anything E2B did so far. E2B's clock runs on in
    /// real time beside the stack's hand-moved one, so on a loaded machine a sandbox made a few
    /// seconds into a test is "younger" by the stack's clock than `by` after `advance(by)`: the
    /// stack's clock catches up with E2B's first.
    pub async fn advance_past_e2b(&self, by: Duration) {
        let lag = self.emulator.now() - self.clock.now();
        if lag.is_positive() {
            self.clock.advance(lag.unsigned_abs());
        }
        self.advance(by).await;
    }
}
