//! The whole stack on one machine: the API and webhook routers deployed to Lambda, served over
//! HTTP; the scheduled functions on timers with the template's schedule expressions; the E2B
//! emulator (or the real E2B) with its webhooks pointed at the local webhook endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use e2b_emulator::{Emulator, EmulatorConfig};
use futures::future::BoxFuture;
use sandman::Sandman;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::outbound::LocalOutbound;
use crate::schedules::{self, Schedule};

/// A scheduled function as the stack runs it: the Lambda input in, the handler's answer out.
pub type JobFn = Arc<dyn Fn(serde_json::Value) -> BoxFuture<'static, Result<serde_json::Value, String>> + Send + Sync>;

/// What the function crates contribute, built over the stack's `Sandman`.
pub struct Functions {
    pub api: Router,
    pub webhook: Router,
    /// Scheduled functions by binary name (`idle-enforcer`, `snapshot-pruner`).
    pub jobs: HashMap<String, JobFn>,
}

pub struct StackOptions {
    pub api_addr: SocketAddr,
    pub webhook_addr: SocketAddr,
    /// `None`: run the emulator on this address; `Some`: talk to the E2B configured in `sandman`.
    pub emulator_addr: Option<SocketAddr>,
    pub run_timers: bool,
    /// E2B's cap on one continuous run, emulated (and handed off by Sandman, with `SESSION_CAP_SECS`).
    pub session_cap: Option<std::time::Duration>,
    /// API Gateway's CORS as the template configures it (`CorsAllowedOrigins` set); `None`: off.
    pub cors: Option<crate::deployed::cors::Cors>,
    /// Every schedule's period, instead of the template's (tests that wait for a tick).
    pub schedule_every: Option<std::time::Duration>,
}

pub struct LocalStack {
    pub api_url: String,
    pub webhook_url: String,
    pub emulator: Option<Emulator>,
    pub sandman: Sandman,
    /// Outbound webhooks: the table's stream and the delivery queue.
    pub outbound: LocalOutbound,
    jobs: HashMap<String, JobFn>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the E2B emulator did not start: {0}")]
    Emulator(std::io::Error),
    #[error("the E2B emulator's settings: {0}")]
    EmulatorConfig(String),
    #[error(transparent)]
    Schedules(#[from] schedules::ScheduleError),
    #[error("no scheduled function named {0}")]
    UnknownJob(String),
    #[error("{0}")]
    Job(String),
    #[error("outbound webhooks: {0}")]
    Outbound(String),
}

impl LocalStack {
    /// Starts the emulator first (when asked) so `assemble` can point Sandman at it, then the
    /// routers and timers over the `Sandman` that `assemble` returns.
    pub async fn start(
        options: StackOptions,
        assemble: impl FnOnce(Option<&Emulator>) -> Sandman,
        functions: impl FnOnce(&Sandman) -> Functions,
    ) -> Result<LocalStack, StackError> {
        let emulator = match options.emulator_addr {
            Some(addr) => {
                // Its accounts and timings from `E2B_EMULATOR_*` (the hostile suite runs two accounts).
                let config = EmulatorConfig {
                    port: addr.port(),
                    session_cap: options.session_cap,
                    ..EmulatorConfig::from_env().map_err(|err| StackError::EmulatorConfig(err.to_string()))?
                };
                Some(Emulator::start(config).await.map_err(StackError::Emulator)?)
            }
            None => None,
        };
        let sandman = assemble(emulator.as_ref());
        let Functions { api, webhook, jobs } = functions(&sandman);
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let api = match options.cors {
            Some(cors) => Router::new()
                .fallback_service(api)
                .layer(axum::middleware::from_fn_with_state(
                    Arc::new(cors),
                    crate::deployed::cors::layer,
                )),
            None => api,
        };
        let api_url = serve(&mut tasks, options.api_addr, api, stopped.clone()).await?;
        let webhook_url = serve(&mut tasks, options.webhook_addr, webhook, stopped.clone()).await?;
        let outbound = LocalOutbound::start(
            &sandman.as_function(sandman::secrets::Function::Outbound),
            &mut tasks,
            stopped.clone(),
        )
        .await
        .map_err(StackError::Outbound)?;
        if options.run_timers {
            for mut schedule in schedules::from_template()? {
                schedule.every = options.schedule_every.unwrap_or(schedule.every);
                let job = jobs
                    .get(&schedule.binary)
                    .cloned()
                    .ok_or_else(|| StackError::UnknownJob(schedule.binary.clone()))?;
                tasks.spawn(tick(schedule, job, stopped.clone()));
            }
        }
        Ok(LocalStack {
            api_url,
            webhook_url,
            emulator,
            sandman,
            outbound,
            jobs,
            stop,
            tasks,
        })
    }

    pub fn store(&self) -> &sandman::store::Store {
        &self.sandman.store
    }

    /// Runs a scheduled function now, as its timer would.
    pub async fn run_job(&self, binary: &str, input: serde_json::Value) -> Result<serde_json::Value, StackError> {
        let job = self
            .jobs
            .get(binary)
            .ok_or_else(|| StackError::UnknownJob(binary.into()))?;
        job(input).await.map_err(StackError::Job)
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
    }
}

async fn serve(
    tasks: &mut JoinSet<()>,
    addr: SocketAddr,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<String, StackError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StackError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StackError::Listen { addr, source })?;
    tasks.spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(err) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(%bound, error = %err, "server stopped");
        }
    });
    Ok(format!("http://{bound}"))
}

async fn tick(schedule: Schedule, job: JobFn, mut stopped: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(schedule.every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        match job(schedule.input.clone()).await {
            Ok(answer) => tracing::info!(function = %schedule.binary, event = %schedule.event, %answer, "tick"),
            Err(err) => {
                tracing::error!(function = %schedule.binary, event = %schedule.event, error = %err, "tick failed")
            }
        }
    }
}
