//! The system under soak: a fresh table in DynamoDB Local, the E2B emulator, and several Lambda
//! instances of each function (each its own `Sandman`, so its own caches and throttles), all on one
//! hand-moved clock. The webhook instances sit behind one loopback URL that hands each delivery to
//! one of them, as a function URL does.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use e2b_emulator::{Emulator, EmulatorConfig};
use http::{Request, StatusCode};
use sandman::Sandman;
use sandman::auth::{Verifier, mint_dev_token};
use sandman::clock::Clock;
use sandman::config::Config;
use sandman::domain::{ProjectId, ProjectKey, TeamId};
use sandman::e2b::NewWebhook;
use sandman::secrets::{Secret, Secrets};
use sandman::store::Store;
use sandman_local::fixture::{JWT_SECRET, WEBHOOK_SECRET};
use sandman_local::testkit::TestTable;
use tower::ServiceExt;

use crate::dynamo_faults::{DynamoChaos, faulty_client};
use crate::ledger::Ledger;

/// The reconciler's stuck threshold in this soak (the deployment default).
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

/// Sandman's deadline for one E2B call in this soak: short, so hangs and latency can pass it.
pub const E2B_CALL_DEADLINE: Duration = Duration::from_secs(2);

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
    pub team: TeamId,
    pub token: String,
    pub chaos: Arc<DynamoChaos>,
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
            _ => None,
        })
        .expect("the soak's configuration is valid");
        let secrets = Secrets {
            e2b_api_key: Some(Secret::new(emulator.api_key())),
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
        let team = TeamId::parse(emulator.team_id()).expect("the emulator's team is a valid team id");
        let token = mint_dev_token(
            &jobs[0].config.auth,
            &Secret::new(JWT_SECRET),
            &team,
            "soak",
            Duration::from_secs(30 * 24 * 3600),
        )
        .expect("a token");
        let checker = Store::new(table.client.clone(), table.name.clone());
        let fleet = Fleet {
            emulator,
            clock,
            apis,
            jobs,
            checker,
            table,
            team,
            token,
            chaos,
            rng_seed: seed,
        };
        fleet.serve_webhooks(webhooks, seed, ledger).await;
        fleet
    }

    pub fn key(&self, project: &str) -> ProjectKey {
        ProjectKey::new(
            self.team.clone(),
            ProjectId::parse(project).expect("a valid project id"),
        )
    }

    /// One request to API instance `instance`, with the soak's token.
    pub fn api(
        &self,
        instance: usize,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> impl Future<Output = Reply> + use<> {
        let router = self.apis[instance].clone();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token));
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
        let webhook = NewWebhook {
            name: "sandman-soak".into(),
            url,
            events: ["created", "updated", "paused", "resumed", "killed", "checkpointed"]
                .iter()
                .map(|e| format!("sandbox.lifecycle.{e}"))
                .collect(),
            signature_secret: Secret::new(WEBHOOK_SECRET),
            enabled: true,
        };
        self.jobs[0]
            .e2b
            .for_team(self.team.as_str())
            .expect("the emulator's account")
            .register_webhook(&webhook)
            .await
            .expect("the soak's webhook registers");
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
