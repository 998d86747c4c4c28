//! The system under soak: a fresh table in DynamoDB Local, the E2B emulator, and several Lambda
//! instances of each function (each its own `Sandman`, so its own caches and throttles), all on one
//! hand-moved clock. The webhook instances sit behind one loopback URL that hands each delivery to
//! one of them, as a function URL does. Two teams, each on its own E2B account: the deployment's
//! default key, and a key the second team registers through the API (as a team admin does).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use e2b_emulator::{Emulator, EmulatorConfig, TeamAccount};
use http::{Request, StatusCode};
use sandman::Sandman;
use sandman::auth::{Verifier, mint_admin_token, mint_dev_token};
use sandman::clock::Clock;
use sandman::config::Config;
use sandman::domain::{ProjectId, ProjectKey, TeamId};
use sandman::secrets::{Secret, Secrets};
use sandman::store::Store;
use sandman::team_keys::E2bAccount;
use sandman_local::fixture::{JWT_SECRET, WEBHOOK_SECRET};
use sandman_local::register::register_account;
use sandman_local::testkit::TestTable;
use tower::ServiceExt;

use crate::dynamo_faults::{DynamoChaos, faulty_client};
use crate::ledger::Ledger;
use crate::stalls::ReconcileWatch;

/// The reconciler's stuck threshold in this soak (the deployment default).
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

/// Sandman's deadline for one E2B call in this soak: short, so hangs and latency can pass it.
pub const E2B_CALL_DEADLINE: Duration = Duration::from_secs(2);

/// The teams, each its own E2B account (team id alike in Sandman and E2B). The first uses the
/// deployment's default key; the second registers its own key through the API.
const DEFAULT_TEAM: (&str, &str) = ("team-local", "e2b_soak_default_key_0001");
const OWN_KEY_TEAM: (&str, &str) = ("team-own", "e2b_soak_own_key_team_0002");
const MASTER_KEY: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const ADMIN_ROLE: &str = "sandman-admin";

/// One team of the soak and the token its callers present.
pub struct Account {
    pub team: TeamId,
    pub token: String,
}

pub struct Fleet {
    pub emulator: Emulator,
    pub clock: Clock,
    /// One per API Lambda instance.
    pub apis: Vec<Router>,
    /// One per scheduled-function instance (the enforcer/reconciler and the pruner).
    pub jobs: Vec<Sandman>,
    /// A store on the clean client, for the checker's reads.
    pub checker: Store,
    pub table: TestTable,
    /// The default account's team and token (`accounts[0]`'s).
    pub team: TeamId,
    pub token: String,
    /// Every team; project `i` of the soak belongs to `accounts[i % accounts.len()]`.
    pub accounts: Vec<Account>,
    pub chaos: Arc<DynamoChaos>,
    /// What the faults do to E2B's list calls, for the reconcile ticks' judgement.
    pub watch: ReconcileWatch,
    pub rng_seed: u64,
}

impl Fleet {
    pub async fn start(instances: usize, seed: u64, ledger: Arc<Ledger>) -> Fleet {
        Fleet::start_with_e2b_deadline(instances, seed, ledger, E2B_CALL_DEADLINE).await
    }

    /// As [`Fleet::start`], with Sandman's deadline for one E2B call set to `e2b_deadline`.
    pub async fn start_with_e2b_deadline(
        instances: usize,
        seed: u64,
        ledger: Arc<Ledger>,
        e2b_deadline: Duration,
    ) -> Fleet {
        let table = TestTable::create().await;
        let emulator = Emulator::start(EmulatorConfig {
            webhook_retry_delay: Duration::from_millis(200),
            webhook_max_retries: 3,
            webhook_timeout: Duration::from_secs(2),
            fault_seed: Some(seed ^ 0xe2b),
            teams: [DEFAULT_TEAM, OWN_KEY_TEAM]
                .iter()
                .map(|(team, key)| TeamAccount::new(*team, *key))
                .collect(),
            ..EmulatorConfig::default()
        })
        .await
        .expect("the E2B emulator starts");
        let clock = Clock::manual(emulator.now().replace_nanosecond(0).unwrap_or(emulator.now()));
        let chaos = DynamoChaos::new(seed ^ 0x5eed);
        let client = faulty_client(&table.client, chaos.clone(), ledger.clone());
        let (name, url) = (table.name.clone(), emulator.base_url());
        let config = Config::from_lookup(|var| match var {
            "SANDMAN_TABLE" => Some(name.clone()),
            "E2B_API_URL" => Some(url.clone()),
            "E2B_API_ALLOW_HTTP_LOOPBACK" | "JWT_HS256" => Some("true".into()),
            "SANDMAN_MAX_PROJECTS_PER_TEAM" | "SANDMAN_MAX_LIVE_SANDBOXES_PER_TEAM" => Some("100000".into()),
            "RECONCILE_STUCK_AFTER_SECS" => Some(STUCK_AFTER.as_secs().to_string()),
            "E2B_CALL_DEADLINE_SECS" => Some(e2b_deadline.as_secs().to_string()),
            "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
            "SANDMAN_DEV_MASTER_KEY" => Some(MASTER_KEY.into()),
            "JWT_ADMIN_ROLE" => Some(ADMIN_ROLE.into()),
            "JWT_ISSUER" => Some("https://issuer.sandman-soak.test".into()),
            "JWT_AUDIENCE" => Some("sandman-soak".into()),
            _ => None,
        })
        .expect("the soak's configuration is valid");
        let secrets = Secrets {
            e2b_api_key: Some(Secret::new(DEFAULT_TEAM.1)),
            webhook_secrets: vec![Secret::new(WEBHOOK_SECRET)],
            jwt_hs256_secret: Some(Secret::new(JWT_SECRET)),
            ..Secrets::default()
        };
        let instance = || {
            let store = Store::new(client.clone(), table.name.clone());
            Sandman::new(store, config.clone(), secrets.clone(), clock.clone()).expect("an instance assembles")
        };
        let apis = (0..instances)
            .map(|_| {
                let sandman = instance();
                let verifier = Verifier::new(&sandman.config.auth, &sandman.secrets).expect("a verifier");
                sandman_api::router(sandman, verifier)
            })
            .collect();
        let jobs: Vec<Sandman> = (0..instances).map(|_| instance()).collect();
        let webhooks: Vec<Router> = (0..instances).map(|_| sandman_webhook::router(instance())).collect();
        let accounts: Vec<Account> = [DEFAULT_TEAM, OWN_KEY_TEAM]
            .iter()
            .map(|(team, _)| {
                let team = TeamId::parse(*team).expect("a valid team id");
                let token = mint_dev_token(
                    &jobs[0].config.auth,
                    &Secret::new(JWT_SECRET),
                    &team,
                    "soak",
                    // Real time (tokens are checked against the wall clock): the longest run
                    // lasts 30 minutes, and a token may live a day (JWT_MAX_LIFETIME_SECS).
                    Duration::from_secs(12 * 3600),
                )
                .expect("a token");
                Account { team, token }
            })
            .collect();
        let checker = Store::new(table.client.clone(), table.name.clone());
        let fleet = Fleet {
            emulator,
            clock,
            apis,
            jobs,
            checker,
            table,
            team: accounts[0].team.clone(),
            token: accounts[0].token.clone(),
            accounts,
            chaos,
            watch: ReconcileWatch::default(),
            rng_seed: seed,
        };
        fleet.register_own_key().await;
        fleet.serve_webhooks(webhooks, seed, ledger).await;
        fleet
    }

    /// The second team's admin registers its E2B key, as through the dashboard.
    async fn register_own_key(&self) {
        let (team, key) = OWN_KEY_TEAM;
        let admin = mint_admin_token(
            &self.jobs[0].config.auth,
            &Secret::new(JWT_SECRET),
            &TeamId::parse(team).expect("a valid team id"),
            "soak-admin",
            Duration::from_secs(3600),
        )
        .expect("an admin token");
        let reply = self
            .api_with_token(
                0,
                &admin,
                http::Method::PUT,
                "/v1/team/e2b",
                Some(serde_json::json!({ "apiKey": key })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "the team's key registers: {reply:?}");
    }

    /// The key of `project` of `accounts[account]`'s team.
    pub fn key_in(&self, account: usize, project: &str) -> ProjectKey {
        ProjectKey::new(
            self.accounts[account].team.clone(),
            ProjectId::parse(project).expect("a valid project id"),
        )
    }

    /// The index in `accounts` of the soak's project `index`.
    pub fn account_of(&self, index: usize) -> usize {
        index % self.accounts.len()
    }

    /// The key of the soak's project `index` (see [`crate::model::Model::name`]).
    pub fn key_at(&self, index: usize) -> ProjectKey {
        self.key_in(self.account_of(index), &crate::model::Model::name(index))
    }

    pub fn key(&self, project: &str) -> ProjectKey {
        ProjectKey::new(
            self.team.clone(),
            ProjectId::parse(project).expect("a valid project id"),
        )
    }

    /// One request to API instance `instance`, with the default team's token.
    pub fn api(
        &self,
        instance: usize,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> impl Future<Output = Reply> + use<> {
        self.api_with_token(instance, &self.token, method, path, body)
    }

    /// One request to API instance `instance`, as a caller of `accounts[account]`.
    pub fn api_as(
        &self,
        account: usize,
        instance: usize,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> impl Future<Output = Reply> + use<> {
        self.api_with_token(instance, &self.accounts[account].token, method, path, body)
    }

    fn api_with_token(
        &self,
        instance: usize,
        token: &str,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> impl Future<Output = Reply> + use<> {
        let router = self.apis[instance].clone();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("a request");
        async move {
            let response = router.oneshot(request).await.unwrap_or_else(|never| match never {});
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            Reply { status, json }
        }
    }

    /// Moves E2B's clock (the emulator applies its expiries) and Sandman's with it.
    /// The emulator's clock also runs in real time; Sandman's follows it, so they never drift apart.
    pub async fn advance(&self, by: Duration) {
        self.emulator.advance_clock(by).await;
        let lag = self.emulator.now() - self.clock.now();
        if lag.is_positive() {
            self.clock.advance(lag.unsigned_abs());
        }
    }

    async fn serve_webhooks(&self, instances: Vec<Router>, seed: u64, ledger: Arc<Ledger>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let url = format!("http://{}/", listener.local_addr().expect("bound"));
        let front = Front {
            instances: Arc::new(instances),
            rng: Arc::new(std::sync::Mutex::new(fastrand::Rng::with_seed(seed ^ 0x40b))),
            ledger,
        };
        let app = Router::new().fallback(dispatch).with_state(front);
        tokio::spawn(async move { axum::serve(listener, app).await });
        // Each E2B account posts its own sandboxes' events to its own path, as deployed.
        let own = E2bAccount::Team(TeamId::parse(OWN_KEY_TEAM.0).expect("a valid team id"));
        for account in [E2bAccount::Default, own] {
            register_account(&self.jobs[0], &account, &url)
                .await
                .unwrap_or_else(|why| panic!("the soak's webhook registers for {account}: {why}"));
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub json: serde_json::Value,
}

#[derive(Clone)]
struct Front {
    instances: Arc<Vec<Router>>,
    rng: Arc<std::sync::Mutex<fastrand::Rng>>,
    ledger: Arc<Ledger>,
}

/// One delivery to one webhook instance; sometimes the invocation is cut short (a Lambda timeout),
/// and E2B sees a 502 as it would from a function URL.
async fn dispatch(State(front): State<Front>, request: Request<Body>) -> Response {
    let (index, cut) = {
        let mut rng = front.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let cut = (rng.u32(0..100) < crate::chaos::ABANDON_PERCENT).then(|| Duration::from_millis(rng.u64(0..30)));
        (rng.usize(0..front.instances.len()), cut)
    };
    let router = front.instances[index].clone();
    let answer = router.oneshot(request);
    let response = match cut {
        None => answer.await,
        Some(deadline) => match tokio::time::timeout(deadline, answer).await {
            Ok(response) => response,
            Err(_) => {
                front.ledger.fault("lambda.webhook-abandoned");
                return StatusCode::BAD_GATEWAY.into_response();
            }
        },
    };
    let response = response.unwrap_or_else(|never| match never {});
    front.ledger.operation("webhook", response.status().as_str());
    response
}
