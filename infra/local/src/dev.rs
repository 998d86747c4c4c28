//! `sandman-local dev`: the stack against DynamoDB Local (started by `scripts/dev`), with the E2B
//! emulator unless `E2B_API_KEY` is set, until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use crate::register::register;
use crate::stack::{LocalStack, StackOptions};
use crate::walkthrough::{Wait, Walkthrough};
use crate::{table, testkit, wiring};
use sandman::Sandman;
use sandman::clock::Clock;
use sandman::config::Config;
use sandman::e2b::Secret;
use sandman::secrets::Secrets;
use sandman::store::Store;

pub const DEV_TEAM: &str = "team-local";
const DEV_WEBHOOK_SECRET: &str = "sandman-local-webhook-secret";
const DEV_JWT_SECRET: &str = "sandman-local-jwt-secret";
/// The development tokens' issuer and audience (HS256 is checked against both).
const DEV_ISSUER: &str = "sandman-local";
const DEV_AUDIENCE: &str = "sandman";
/// Wraps teams' registered E2B keys in the local stack (`SANDMAN_TEAM_KEYS_WRAP=local`); a
/// deployed configuration refuses the local wrapper.
const DEV_MASTER_KEY: &str = "5a4d414e2d6c6f63616c2d6465762d6d61737465722d6b65792d6f6e6c792121";
/// The development token's role: it may register the team's own E2B key.
const DEV_ADMIN_ROLE: &str = "sandman-admin";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn port(name: &str, default: u16) -> Result<SocketAddr, String> {
    let port = env(name)
        .map(|p| p.parse::<u16>().map_err(|_| format!("{name} is not a port")))
        .transpose()?
        .unwrap_or(default);
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

pub struct DevOptions {
    pub table: String,
    /// False when the caller made the table already (tests).
    pub create_table: bool,
    pub stack: StackOptions,
    pub clock: Clock,
    /// Say on stderr what starting the stack does (`make dev`); quiet for the walkthrough and tests.
    pub announce: bool,
    /// The first outbound retry's delay, unless `OUTBOUND_RETRY_BASE_MS` says otherwise.
    pub outbound_retry_base: Duration,
}

impl DevOptions {
    /// `make dev`: fixed ports (overridable), the emulator unless `E2B_API_KEY` is set, timers on.
    pub fn from_env() -> Result<DevOptions, String> {
        let real_e2b = env("E2B_API_KEY").is_some();
        Ok(DevOptions {
            table: env("SANDMAN_TABLE").unwrap_or_else(|| "sandman-local".into()),
            create_table: true,
            stack: StackOptions {
                api_addr: port("SANDMAN_API_PORT", 3000)?,
                webhook_addr: port("SANDMAN_WEBHOOK_PORT", 3001)?,
                emulator_addr: if real_e2b {
                    None
                } else {
                    Some(port("E2B_EMULATOR_PORT", 4010)?)
                },
                run_timers: true,
                session_cap: None,
                // As the template's CorsAllowedOrigins (API Gateway's CORS, which the stack stands in for).
                cors: crate::deployed::cors::Cors::from_template(
                    crate::table::TEMPLATE,
                    &env("SANDMAN_CORS_ALLOWED_ORIGINS").unwrap_or_default(),
                )?,
                // Tests that wait for a tick (the smoke step of `make test`) shorten every schedule.
                schedule_every: env("SANDMAN_LOCAL_SCHEDULE_SECS")
                    .map(|s| s.parse().map(Duration::from_secs))
                    .transpose()
                    .map_err(|_| "SANDMAN_LOCAL_SCHEDULE_SECS is not a number of seconds")?,
            },
            clock: Clock::System,
            announce: true,
            outbound_retry_base: Duration::from_secs(5),
        })
    }

    /// The walkthrough's stack: [`DevOptions::ephemeral`] with a short session cap, emulated and
    /// handed off, so it shows a handoff (E2B's plans cap a run at 1 h or 24 h).
    pub fn walkthrough(table: String, create_table: bool, clock: Clock) -> DevOptions {
        let mut options = Self::ephemeral(table, create_table, clock);
        options.stack.session_cap = Some(crate::walkthrough::SESSION_CAP);
        options
    }

    /// Free ports, the emulator, no timers: the walkthrough runs the scheduled functions itself.
    pub fn ephemeral(table: String, create_table: bool, clock: Clock) -> DevOptions {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        DevOptions {
            table,
            create_table,
            stack: StackOptions {
                api_addr: any,
                webhook_addr: any,
                emulator_addr: Some(any),
                run_timers: false,
                session_cap: None,
                cors: None,
                schedule_every: None,
            },
            clock,
            announce: false,
            outbound_retry_base: Duration::from_millis(50),
        }
    }
}

/// Starts everything over DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`).
pub async fn start(options: DevOptions) -> Result<LocalStack, String> {
    let DevOptions {
        table,
        create_table,
        stack: options,
        clock,
        announce,
        outbound_retry_base,
    } = options;
    let step = |message: &str| {
        if announce {
            eprintln!("  \u{2022} {message}");
        }
    };
    let dynamodb = testkit::local_client();
    if create_table {
        step(&format!("creating table {table} from template.yaml"));
        table::create_table(&dynamodb, &table)
            .await
            .map_err(|e| e.to_string())?;
    }
    step(if options.emulator_addr.is_none() {
        "using the real E2B (E2B_API_KEY is set)"
    } else {
        "starting the E2B emulator"
    });
    let mut failure = None;
    let (session_cap, margin) = match options.session_cap {
        Some(cap) => (
            Some(cap.as_secs().to_string()),
            Some(crate::walkthrough::SESSION_CAP_MARGIN.as_secs().to_string()),
        ),
        None => (None, None),
    };
    let stack = LocalStack::start(
        options,
        |emulator| {
            let e2b_url = emulator.map(|e| e.base_url());
            let config = Config::from_lookup(|name| match (name, &e2b_url) {
                ("SANDMAN_TABLE", _) => Some(table.clone()),
                ("E2B_API_URL", Some(url)) => Some(url.clone()),
                ("E2B_API_ALLOW_HTTP_LOOPBACK", Some(_)) => Some("true".into()),
                ("SESSION_CAP_SECS", _) if session_cap.is_some() => session_cap.clone(),
                ("SESSION_CAP_MARGIN_SECS", _) if margin.is_some() => margin.clone(),
                // The local receiver, and tests' receivers, listen on 127.0.0.1 over http (the
                // hostile suite's stack turns it off, to meet the deployed address policy).
                ("OUTBOUND_ALLOW_HTTP_LOOPBACK", _) => env(name).or_else(|| Some("true".into())),
                ("OUTBOUND_RETRY_BASE_MS", _) => {
                    env(name).or_else(|| Some(outbound_retry_base.as_millis().to_string()))
                }
                // The development token is HS256, unless the developer brings a JWKS.
                ("JWT_HS256", _) => env(name).or_else(|| env("JWT_JWKS_URL").is_none().then(|| "true".into())),
                // HS256 needs an issuer and an audience; a developer's JWKS brings its own.
                ("JWT_ISSUER", _) => env(name).or_else(|| env("JWT_JWKS_URL").is_none().then(|| DEV_ISSUER.into())),
                ("JWT_AUDIENCE", _) => env(name).or_else(|| env("JWT_JWKS_URL").is_none().then(|| DEV_AUDIENCE.into())),
                ("SANDMAN_TEAM_KEYS_WRAP", _) => env(name).or_else(|| Some("local".into())),
                ("SANDMAN_DEV_MASTER_KEY", _) => env(name).or_else(|| Some(DEV_MASTER_KEY.into())),
                ("JWT_ADMIN_ROLE", _) => env(name).or_else(|| Some(DEV_ADMIN_ROLE.into())),
                _ => env(name),
            })
            .unwrap_or_else(|err| {
                failure = Some(err.to_string());
                Config::from_lookup(|n| (n == "SANDMAN_TABLE").then(|| table.clone()))
                    .expect("a table name is all a config needs")
            });
            let mut secrets = Secrets::from_env(env).unwrap_or_default();
            if let Some(emulator) = emulator {
                secrets.e2b_api_key = Some(Secret::new(emulator.api_key()));
            }
            if secrets.webhook_secrets.is_empty() {
                secrets.webhook_secrets = vec![Secret::new(DEV_WEBHOOK_SECRET)];
            }
            secrets
                .jwt_hs256_secret
                .get_or_insert_with(|| Secret::new(DEV_JWT_SECRET));
            Sandman::new(
                Store::new(dynamodb.clone(), table.clone()),
                config,
                secrets,
                clock.clone(),
            )
            .expect("the local stack assembles")
        },
        |sandman| wiring::functions(sandman).expect("the functions assemble"),
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some(err) = failure {
        return Err(err);
    }
    if let Some(emulator) = &stack.emulator {
        step("registering the local webhook endpoint with the emulator");
        let e2b = stack.sandman.e2b.default_account().map_err(|e| e.to_string())?;
        let secret = stack.sandman.secrets.webhook_secrets[0].clone();
        register(&e2b, &stack.webhook_url, &secret)
            .await
            .map_err(|e| e.to_string())?;
        step(&format!(
            "emulator at {} sends signed webhooks to {}",
            emulator.base_url(),
            stack.webhook_url
        ));
    }
    Ok(stack)
}

/// The developer's token: an admin of the development team (so it may set the team's budget).
pub fn dev_token(stack: &LocalStack) -> Result<String, String> {
    let sandman = &stack.sandman;
    let secret = sandman.secrets.jwt_hs256_secret.as_ref().ok_or("no JWT secret")?;
    let team = sandman::domain::TeamId::parse(DEV_TEAM).map_err(|e| e.to_string())?;
    sandman::auth::mint_admin_token(
        &sandman.config.auth,
        secret,
        &team,
        "developer",
        Duration::from_secs(12 * 3600),
    )
    .map_err(|e| e.to_string())
}

/// `make dev`.
pub async fn run() -> Result<(), String> {
    eprintln!("Starting Sandman locally");
    let stack = start(DevOptions::from_env()?).await?;
    let token = dev_token(&stack)?;
    let team = sandman::domain::TeamId::parse(DEV_TEAM).map_err(|e| e.to_string())?;
    // Not worth stopping the stack for: the API and everything else work without it.
    let receiver = match crate::receiver::start(&stack.sandman, &team, port("SANDMAN_RECEIVER_PORT", 3002)?).await {
        Ok((url, _)) => url,
        Err(err) => format!("not running ({err})"),
    };
    let emulator = stack
        .emulator
        .as_ref()
        .map(|e| e.base_url())
        .unwrap_or_else(|| "the real E2B".into());
    println!(
        "\nSandman is running.\n\n  API       {api}/v1   (OpenAPI: {api}/openapi.json)\n  dashboard {api}/dashboard#token={token}\n  webhook   {hook}\n  receiver  {receiver}   (outbound webhooks of {DEV_TEAM}, every event, printed here with their signature checked)\n  E2B       {emulator}\n  schedules idle-enforcer every 2 min, reconciler every 10 min, snapshot-pruner hourly (from template.yaml)\n\n  export SANDMAN_TOKEN={token}\n  curl -s -X PUT {api}/v1/projects/demo -H \"authorization: Bearer $SANDMAN_TOKEN\" -H 'content-type: application/json' -d '{{\"templateId\":\"base\",\"idleTimeoutSeconds\":60}}'\n  curl -s -X POST {api}/v1/projects/demo/sandbox -H \"authorization: Bearer $SANDMAN_TOKEN\"\n\nCtrl-C stops everything.",
        api = stack.api_url,
        hook = stack.webhook_url,
    );
    shutdown_signal().await;
    eprintln!("\nstopping");
    stack.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `make demo`: a stack of its own on free ports, the walkthrough in real time, then a clean stop.
/// The story goes to stderr, one line a step: stdout carries the stack's logs (tracing, EMF
/// metrics), which `scripts/dev demo` sends to a file.
pub async fn demo() -> Result<(), String> {
    let table = format!("sandman-demo-{}", ulid::Ulid::new().to_string().to_lowercase());
    let stack = start(DevOptions::walkthrough(table.clone(), true, Clock::System)).await?;
    eprintln!(
        "0. started a local stack of its own: table {table} in DynamoDB Local, the E2B emulator, the API at {}",
        stack.api_url
    );
    let token = dev_token(&stack)?;
    let wait: Wait<'_> = Box::new(|duration| {
        eprintln!("   ... waiting {} s for the sandbox to go idle", duration.as_secs());
        Box::pin(tokio::time::sleep(duration))
    });
    let result = Walkthrough::new(&stack, token, wait, |line| eprintln!("{line}"))
        .run()
        .await;
    stack.shutdown().await;
    result
}
