//! The system under soak: a fresh table in DynamoDB Local, the E2B emulator, and several Lambda
//! instances of each function (each its own `Sandman`, so its own caches and throttles), all on one
//! hand-moved clock. The webhook instances sit behind one loopback URL that hands each delivery to
//! one of them, as a function URL does. Two teams, each on its own E2B account: the deployment's
//! default key, and a key the second team registers through the API (as a team admin does).
//!
//! Every instance calls E2B through `/callers/{role}-{n}/` (the emulator strips it and notes the
//! caller in its call log), so the judge can tell the enforcer's pauses from a user's without
//! asking Sandman.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
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
use sandman::secrets::{Function, Secret, Secrets};
use sandman::store::Store;
use sandman::team_keys::E2bAccount;
use sandman_local::fixture::{JWT_SECRET, WEBHOOK_SECRET};
use sandman_local::register::register_account;
use sandman_local::testkit::TestTable;
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::dynamo_faults::{DynamoChaos, faulty_client};
use crate::ledger::Ledger;
use crate::stalls::ReconcileWatch;
use crate::timeline::Timeline;

/// Percent of invocations (API requests, webhook deliveries, ticks) cut short at a random await,
/// as a Lambda that reaches its deadline is.
pub const ABANDON_PERCENT: u32 = 4;

/// The reconciler's stuck threshold in this soak (the deployment default).
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

/// Sandman's deadline for one E2B call in this soak: short, so hangs and latency can pass it.
pub const E2B_CALL_DEADLINE: Duration = Duration::from_secs(2);

/// The live-sandbox quota per team (the deployment default): held at every instant in E2B.
pub const LIVE_QUOTA: usize = 20;

/// E2B's cap on one continuous run in this soak (emulated), and Sandman's configured cap and margin.
pub const SESSION_CAP: Duration = Duration::from_secs(1800);
pub const SESSION_CAP_MARGIN: Duration = Duration::from_secs(300);

/// How long a pause keeps a sandbox PAUSING in E2B (real time: about 4 s emulated, 4 s a GiB).
pub const PAUSE_DURATION: Duration = Duration::from_millis(40);

/// The teams, each its own E2B account (team id alike in Sandman and E2B). The first uses the
/// deployment's default key; the second registers its own key through the API (and may rotate to
/// its second key, or try to move to the third account, `ELSEWHERE`).
const DEFAULT_TEAM: (&str, &str) = ("team-local", "e2b_soak_default_key_0001");
const OWN_KEY_TEAM: (&str, &str) = ("team-own", "e2b_soak_own_key_team_0002");
pub const OWN_KEY_ROTATED: &str = "e2b_soak_own_key_team_0003";
pub const ELSEWHERE: (&str, &str) = ("team-else", "e2b_soak_other_account_0004");
const MASTER_KEY: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const ADMIN_ROLE: &str = "sandman-admin";

/// One team of the soak and the tokens its callers present.
pub struct Account {
    pub team: TeamId,
    pub token: String,
    /// A team admin's (budgets, the team's E2B key, endpoints).
    pub admin: String,
}

pub struct Fleet {
    pub emulator: Emulator,
    pub clock: Clock,
    /// One per API Lambda instance.
    pub apis: Vec<Router>,
    /// The scheduled functions' instances: `enforcers`, then `reconcilers`, then `pruners`, each
    /// `as_function` of the Lambda that runs it, so its AWS calls are recorded under that function.
    pub jobs: Vec<Sandman>,
    /// How many instances each function has.
    pub instances: usize,
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
    /// When each fault was on (real time), and the webhook answers.
    pub timeline: Arc<Timeline>,
    /// Sandman's clock ahead of E2B's by this many ms (negative: behind).
    skew_ms: AtomicI64,
    pub rng_seed: u64,
    /// The webhook front's URL (each account's own path is under it).
    pub webhook_url: String,
}

/// Which scheduled function a job instance stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Enforce,
    Reconcile,
    Prune,
}

impl Job {
    /// The Lambda function that runs this job.
    pub fn function(self) -> Function {
        match self {
            Job::Enforce | Job::Reconcile => Function::IdleEnforcer,
            Job::Prune => Function::SnapshotPruner,
        }
    }

    pub fn caller(self) -> &'static str {
        match self {
            Job::Enforce => "enforce",
            Job::Reconcile => "reconcile",
            Job::Prune => "prune",
        }
    }
}

fn emulator_teams() -> Vec<TeamAccount> {
    [DEFAULT_TEAM, OWN_KEY_TEAM, (OWN_KEY_TEAM.0, OWN_KEY_ROTATED), ELSEWHERE]
        .iter()
        .map(|(team, key)| TeamAccount::new(*team, *key))
        .collect()
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
            teams: emulator_teams(),
            pause_duration: PAUSE_DURATION,
            session_cap: Some(SESSION_CAP),
            ..EmulatorConfig::default()
        })
        .await
        .expect("the E2B emulator starts");
        let clock = Clock::manual(emulator.now().replace_nanosecond(0).unwrap_or(emulator.now()));
        let chaos = DynamoChaos::new(seed ^ 0x5eed);
        let client = faulty_client(&table.client, chaos.clone(), ledger.clone());
        let config_for = |caller: &str| {
            let (name, url) = (table.name.clone(), format!("{}/callers/{caller}", emulator.base_url()));
            Config::from_lookup(|var| match var {
                "SANDMAN_TABLE" => Some(name.clone()),
                "E2B_API_URL" => Some(url.clone()),
                "E2B_API_ALLOW_HTTP_LOOPBACK" | "JWT_HS256" | "OUTBOUND_ALLOW_HTTP_LOOPBACK" => Some("true".into()),
                "SANDMAN_MAX_PROJECTS_PER_TEAM" => Some("100000".into()),
                // The soak's callers and its judge's reads run at emulated speed: far past a
                // team's real request rate, which `api_rate.rs` tests on its own.
                "SANDMAN_TEAM_REQUESTS_PER_SECOND" | "SANDMAN_TEAM_REQUEST_BURST" => Some("1000000".into()),
                "SANDMAN_MAX_LIVE_SANDBOXES_PER_TEAM" => Some(LIVE_QUOTA.to_string()),
                "RECONCILE_STUCK_AFTER_SECS" => Some(STUCK_AFTER.as_secs().to_string()),
                "E2B_CALL_DEADLINE_SECS" => Some(e2b_deadline.as_secs().to_string()),
                "SESSION_CAP_SECS" => Some(SESSION_CAP.as_secs().to_string()),
                "SESSION_CAP_MARGIN_SECS" => Some(SESSION_CAP_MARGIN.as_secs().to_string()),
                "OUTBOUND_RETRY_BASE_MS" => Some("200".into()),
                "SANDMAN_TEAM_KEYS_WRAP" => Some("local".into()),
                "SANDMAN_DEV_MASTER_KEY" => Some(MASTER_KEY.into()),
                "JWT_ADMIN_ROLE" => Some(ADMIN_ROLE.into()),
                "JWT_ISSUER" => Some("https://issuer.sandman-soak.test".into()),
                "JWT_AUDIENCE" => Some("sandman-soak".into()),
                _ => None,
            })
            .expect("the soak's configuration is valid")
        };
        let secrets = Secrets {
            e2b_api_key: Some(Secret::new(DEFAULT_TEAM.1)),
            webhook_secrets: vec![Secret::new(WEBHOOK_SECRET)],
            jwt_hs256_secret: Some(Secret::new(JWT_SECRET)),
            ..Secrets::default()
        };
        let instance = |caller: String| {
            let store = Store::new(client.clone(), table.name.clone());
            Sandman::new(store, config_for(&caller), secrets.clone(), clock.clone()).expect("an instance assembles")
        };
        let apis = (0..instances)
            .map(|i| {
                let sandman = instance(format!("api-{i}")).as_function(Function::Api);
                let verifier = Verifier::new(&sandman.config.auth, &sandman.secrets).expect("a verifier");
                sandman_api::router(sandman, verifier)
            })
            .collect();
        let jobs: Vec<Sandman> = [Job::Enforce, Job::Reconcile, Job::Prune]
            .into_iter()
            .flat_map(|job| (0..instances).map(move |i| (job, i)))
            .map(|(job, i)| instance(format!("{}-{i}", job.caller())).as_function(job.function()))
            .collect();
        let webhooks: Vec<Router> = (0..instances)
            .map(|i| sandman_webhook::router(instance(format!("webhook-{i}")).as_function(Function::Webhook)))
            .collect();
        let accounts: Vec<Account> = [DEFAULT_TEAM, OWN_KEY_TEAM]
            .iter()
            .map(|(team, _)| {
                let team = TeamId::parse(*team).expect("a valid team id");
                // Real time (tokens are checked against the wall clock): the longest run lasts 30
                // minutes, and a token may live a day (JWT_MAX_LIFETIME_SECS).
                let (auth, secret, day) = (&jobs[0].config.auth, Secret::new(JWT_SECRET), 12 * 3600);
                let token = mint_dev_token(auth, &secret, &team, "soak", Duration::from_secs(day)).expect("a token");
                let admin = mint_admin_token(auth, &secret, &team, "soak-admin", Duration::from_secs(day))
                    .expect("an admin token");
                Account { team, token, admin }
            })
            .collect();
        let checker = Store::new(table.client.clone(), table.name.clone());
        let mut fleet = Fleet {
            emulator,
            clock,
            apis,
            jobs,
            instances,
            checker,
            table,
            team: accounts[0].team.clone(),
            token: accounts[0].token.clone(),
            accounts,
            chaos,
            watch: ReconcileWatch::default(),
            timeline: Arc::new(Timeline::default()),
            skew_ms: AtomicI64::new(0),
            rng_seed: seed,
            webhook_url: String::new(),
        };
        fleet.register_own_key().await;
        fleet.webhook_url = fleet.serve_webhooks(webhooks, seed, ledger).await;
        fleet
    }

    /// The second team's admin registers its E2B key, as through the dashboard.
    async fn register_own_key(&self) {
        let reply = self
            .api_with_token(
                0,
                &self.accounts[1].admin,
                http::Method::PUT,
                "/v1/team/e2b",
                Some(serde_json::json!({ "apiKey": OWN_KEY_TEAM.1 })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "the team's key registers: {reply:?}");
    }

    /// The instances standing for `job`.
    pub fn jobs_for(&self, job: Job) -> &[Sandman] {
        let at = match job {
            Job::Enforce => 0,
            Job::Reconcile => 1,
            Job::Prune => 2,
        } * self.instances;
        &self.jobs[at..at + self.instances]
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

    /// One request to API instance `instance`, as an admin of `accounts[account]`.
    pub fn api_as_admin(
        &self,
        account: usize,
        instance: usize,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> impl Future<Output = Reply> + use<> {
        self.api_with(account, true, instance, method, path, body)
    }

    /// One request to API instance `instance`, as a member (or an admin) of `accounts[account]`.
    pub fn api_with(
        &self,
        account: usize,
        admin: bool,
        instance: usize,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> impl Future<Output = Reply> + use<> {
        let account = &self.accounts[account];
        let token = if admin { &account.admin } else { &account.token };
        self.api_with_token(instance, token, method, path, body)
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
            // In a task of its own: a handler's panic ends that invocation only, as in Lambda,
            // whose function URL then answers 502 (the panic hook counts it).
            let response = match Invocation(tokio::spawn(router.oneshot(request))).await {
                Ok(response) => response.unwrap_or_else(|never| match never {}),
                Err(_) => {
                    return Reply {
                        status: StatusCode::BAD_GATEWAY,
                        json: serde_json::json!({"error": {"code": "function_error", "message": "the invocation panicked"}}),
                    };
                }
            };
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            Reply { status, json }
        }
    }

    /// E2B's time: what the judge measures every answer and every fault by.
    pub fn e2b_now(&self) -> OffsetDateTime {
        self.emulator.now()
    }

    /// Puts Sandman's clock `ms` ahead of E2B's (negative: behind) from the next step on. Sandman's
    /// clock never goes back: moved behind, it stands still until E2B's has run far enough ahead.
    pub fn set_skew(&self, ms: i64) {
        self.skew_ms.store(ms, Ordering::Relaxed);
    }

    pub fn skew(&self) -> Duration {
        Duration::from_millis(self.skew_ms.load(Ordering::Relaxed).unsigned_abs())
    }

    /// Moves E2B's clock (the emulator applies its expiries) and Sandman's with it, to E2B's time
    /// plus the skew. The emulator's clock also runs in real time.
    pub async fn advance(&self, by: Duration) {
        self.emulator.advance_clock(by).await;
        let target = self.emulator.now() + time::Duration::milliseconds(self.skew_ms.load(Ordering::Relaxed));
        let lag = target - self.clock.now();
        if lag.is_positive() {
            self.clock.advance(lag.unsigned_abs());
        }
    }

    /// Serves the webhook front; its base URL.
    async fn serve_webhooks(&self, instances: Vec<Router>, seed: u64, ledger: Arc<Ledger>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let url = format!("http://{}/", listener.local_addr().expect("bound"));
        let front = Front {
            instances: Arc::new(instances),
            rng: Arc::new(std::sync::Mutex::new(fastrand::Rng::with_seed(seed ^ 0x40b))),
            ledger,
            timeline: self.timeline.clone(),
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
        url
    }
}

/// A handler run in a task of its own (so that its panic ends only it), cancelled when dropped: a
/// request cut at its deadline stops where it was, as a Lambda invocation does.
struct Invocation<T>(tokio::task::JoinHandle<T>);

impl<T> Future for Invocation<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Invocation<T> {
    fn drop(&mut self) {
        self.0.abort();
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
    timeline: Arc<Timeline>,
}

/// One delivery to one webhook instance; sometimes the invocation is cut short (a Lambda timeout),
/// and E2B sees a 502 as it would from a function URL.
async fn dispatch(State(front): State<Front>, request: Request<Body>) -> Response {
    let (index, cut) = {
        let mut rng = front.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let cut = (rng.u32(0..100) < ABANDON_PERCENT).then(|| Duration::from_millis(rng.u64(0..30)));
        (rng.usize(0..front.instances.len()), cut)
    };
    let router = front.instances[index].clone();
    let sent = std::time::Instant::now();
    let answer = Invocation(tokio::spawn(router.oneshot(request)));
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
    // A handler's panic: the function URL answers 502 (the panic hook counts it).
    let Ok(response) = response else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let response = response.unwrap_or_else(|never| match never {});
    front.ledger.operation("webhook", response.status().as_str());
    front.timeline.webhook_answered(sent, response.status());
    response
}
