//! The handle tests and the binary hold: starts the server and exposes the controls.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::calls::RecordedCall;
use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::delivery::{DeliverySettings, Publisher, WebhookDelivery};
use crate::faults::{Fault, FaultHit, Route, WebhookFaults};
use crate::http;
use crate::sandbox::SandboxView;
use crate::snapshot::SnapshotView;
use crate::world::{Limits, World};

pub struct Emulator {
    app: App,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Binds 127.0.0.1 and serves until [`Emulator::shutdown`] (or drop).
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        if config.teams.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "at least one team is required",
            ));
        }
        let clock = Arc::new(Clock::default());
        let settings = DeliverySettings {
            retry_delay: config.webhook_retry_delay,
            max_retries: config.webhook_max_retries,
            timeout: config.webhook_timeout,
        };
        let (publisher, dispatcher) = Publisher::start(clock.clone(), settings);
        let limits = Limits {
            paused_retention: config.paused_retention,
            max_timeout: config.max_timeout,
            session_cap: config.session_cap,
        };
        let world = World::new(limits, publisher.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
        let addr = listener.local_addr()?;
        let sweep_interval = config.sweep_interval.max(Duration::from_millis(1));
        let app = App::new(config, clock, publisher, world);

        let (stop, stopped) = oneshot::channel::<()>();
        // `/callers/{caller}/…` is stripped (and the caller noted) before routing.
        let service = tower::Layer::layer(
            &tower::util::MapRequestLayer::new(http::strip_caller),
            http::router(app.clone()),
        );
        let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(service);
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, service).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::error!(%err, "emulator server stopped");
            }
        });
        let sweeper_app = app.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sweeper_app.sweep();
            }
        });
        tracing::info!(%addr, "e2b emulator listening");
        Ok(Emulator {
            app,
            addr,
            stop: Some(stop),
            server: Some(server),
            background: vec![dispatcher, sweeper],
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first team's API key.
    pub fn api_key(&self) -> String {
        self.app
            .config
            .teams
            .first()
            .map(|t| t.api_key.clone())
            .unwrap_or_default()
    }

    /// The first team's id.
    pub fn team_id(&self) -> String {
        self.app
            .config
            .teams
            .first()
            .map(|t| t.team_id.clone())
            .unwrap_or_default()
    }

    /// Moves emulated time forward and applies every timeout and retention now due
    /// before returning (their webhooks are queued, not yet delivered).
    pub async fn advance_clock(&self, by: Duration) {
        self.app.advance_clock(by);
    }

    pub fn now(&self) -> OffsetDateTime {
        self.app.now()
    }

    pub fn set_fault(&self, route: Route, fault: Fault) {
        self.app.faults.set(route, fault);
    }

    /// Makes `team_id`'s calls to `route` misbehave as `fault`, in place of the route's fault:
    /// one E2B account failing while the others work. [`Emulator::clear_faults`] ends it.
    pub fn set_team_fault(&self, team_id: &str, route: Route, fault: Fault) {
        self.app.faults.set_for_team(team_id, route, fault);
    }

    /// Ends what [`Emulator::set_team_fault`] began (the route's own fault applies again).
    pub fn clear_team_fault(&self, team_id: &str, route: Route) {
        self.app.faults.clear_for_team(team_id, route);
    }

    pub fn clear_faults(&self) {
        self.app.faults.clear();
    }

    /// How many calls each route's faults hit, by kind, since the start (or the last reset).
    pub fn fault_hits(&self) -> Vec<FaultHit> {
        self.app.faults.hits()
    }

    pub fn set_webhook_faults(&self, faults: WebhookFaults) {
        self.app.publisher.set_faults(faults);
    }

    /// Revokes every API key of `team_id` (E2B answers 401 to them from now on), or restores
    /// them; whether the team exists.
    pub fn revoke_team_key(&self, team_id: &str, revoked: bool) -> bool {
        self.app.set_revoked(team_id, revoked)
    }

    /// The API key of `team_id`, as configured.
    pub fn api_key_of(&self, team_id: &str) -> Option<String> {
        self.app
            .config
            .teams
            .iter()
            .find(|t| t.team_id == team_id)
            .map(|t| t.api_key.clone())
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.app.calls.all()
    }

    pub fn calls_to(&self, route: Route) -> Vec<RecordedCall> {
        self.app.calls.to(route)
    }

    pub fn clear_calls(&self) {
        self.app.calls.clear();
    }

    /// Any sandbox ever created, killed ones included, whatever its team.
    pub fn sandbox(&self, id: &str) -> Option<SandboxView> {
        self.app.world().sandbox_view(id)
    }

    /// The CPU use the metrics routes report for a sandbox (`None`: a small synthetic load).
    pub fn set_cpu(&self, id: &str, cpu_used_pct: Option<f64>) {
        if let Err(err) = self.app.world().set_cpu(id, cpu_used_pct) {
            tracing::warn!(%err, "set_cpu on an unknown sandbox");
        }
    }

    /// E2B's cap on one continuous run (`None`: off); running sandboxes past it are killed.
    pub fn set_session_cap(&self, cap: Option<Duration>) {
        self.app.world().set_session_cap(cap);
        self.app.sweep();
    }

    /// Writes `content` at `path` in a live sandbox: its stand-in filesystem, which pause, resume,
    /// snapshots and restores keep.
    pub fn write_file(&self, id: &str, path: &str, content: &str) -> bool {
        self.app.world().write_file(id, path, content).is_ok()
    }

    /// The headers E2B's egress proxy would add to a request from sandbox `id` to `host` now:
    /// its rules' markers filled with the current versions of its team's secrets. `None`: no such
    /// sandbox.
    pub fn egress_headers(&self, id: &str, host: &str) -> Option<std::collections::BTreeMap<String, String>> {
        let sandbox = self.app.world().sandbox_view(id)?;
        Some(
            self.app
                .secret_book()
                .egress_headers(&sandbox.team_id, &sandbox.network_rules, host),
        )
    }

    /// The account's secrets' metadata, as `GET /secrets` answers it.
    pub fn secrets(&self, team_id: &str) -> Vec<crate::secrets::SecretMeta> {
        self.app.secret_book().list(team_id)
    }

    pub fn sandboxes(&self) -> Vec<SandboxView> {
        self.app.world().sandbox_views()
    }

    /// Every lifecycle event emitted so far, of every team (whatever became of its deliveries).
    pub fn events(&self) -> Vec<crate::events::EventView> {
        self.app.world().event_views()
    }

    /// Every snapshot ever taken, deleted ones included (`deleted_at`), oldest first.
    pub fn snapshot_history(&self) -> Vec<SnapshotView> {
        self.app.world().snapshot_history()
    }

    /// Existing (not deleted) snapshots of every team, oldest first.
    pub fn snapshots(&self) -> Vec<SnapshotView> {
        self.app.world().snapshot_views()
    }

    /// Every delivery attempt so far, in the order they were made.
    pub fn deliveries(&self) -> Vec<WebhookDelivery> {
        self.app.publisher.deliveries()
    }

    /// Waits until no delivery is queued, held, in flight or waiting to retry.
    pub async fn settle_webhooks(&self) {
        self.app.publisher.settle().await;
    }

    /// Forgets all state, faults, calls and deliveries; the clock returns to real time.
    pub fn reset(&self) {
        self.app.reset();
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.abort_background();
    }

    fn abort_background(&mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
        self.app.publisher.stop_retries();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.abort_background();
    }
}
