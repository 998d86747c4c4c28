use std::collections::HashMap;
use std::time::Duration;

use sandman::e2b::{ApiKey, E2b, E2bClient, E2bSettings, Secret};

use sandman_local::register::register;
use sandman_local::smoke::{AwsCli, Minting, ScheduledChecks, Smoke};

const USAGE: &str = "usage: sandman-local COMMAND
  dev | demo | openapi | webhook-sample
  register-account-webhook --base-url WEBHOOK_URL [--team TEAM]
  register-webhook --url URL | unregister-webhook --url URL     (the root URL; older deployments)
  smoke --stack STACK | --api-url URL  [--token TOKEN] [--issuer ISS] [--audience AUD] [--team TEAM]
        [--team-claim CLAIM] [--template ID] [--cors-origin ORIGIN] [--no-schedules] [--schedule-timeout SECS]
        [--webhook-timeout SECS]
  teardown --base-url WEBHOOK_URL
  smoke: with --stack (and AWS_REGION) the API URL, issuer, audience, CORS origin and HS256 key are read from
         the stack (the AWS CLI); the token is --token, else $SANDMAN_TOKEN, else minted with
         $SANDMAN_JWT_SECRET or the stack's jwtHs256Secret";

pub async fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        None | Some("dev") => sandman_local::dev::run().await,
        Some("demo") => sandman_local::dev::demo().await,
        Some("openapi") => {
            // The document the API serves at /openapi.json, for generating clients offline.
            let document = sandman_api::openapi().to_pretty_json().map_err(|e| e.to_string())?;
            println!("{document}");
            Ok(())
        }
        Some("webhook-sample") => webhook_sample(),
        Some("register-webhook") => register_webhook(flag(args, "--url").ok_or(USAGE)?).await,
        Some("register-account-webhook") => register_account_webhook(args).await,
        Some("unregister-webhook") => unregister_webhook(flag(args, "--url").ok_or(USAGE)?).await,
        Some("teardown") => teardown(flag(args, "--base-url").ok_or(USAGE)?).await,
        Some("smoke") => smoke(args).await,
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn seconds(args: &[String], name: &str, default: u64) -> Result<Duration, String> {
    match flag(args, name) {
        None => Ok(Duration::from_secs(default)),
        Some(text) => text
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("{name} {text:?} is not a number of seconds")),
    }
}

/// The region the operator commands work in: the stack's, as the guide exports it.
fn region() -> Result<String, String> {
    env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| "no AWS region: export AWS_REGION (the stack's region, docs/deploy.md)".to_owned())
}

async fn smoke(args: &[String]) -> Result<(), String> {
    let owned = |name: &str| flag(args, name).filter(|v| !v.is_empty()).map(str::to_owned);
    let stack = owned("--stack");
    // A deployed stack describes itself: its API URL, how its tokens are checked, its CORS origins.
    let (cli, outputs, parameters) = match &stack {
        Some(stack) => {
            let cli = AwsCli::new(region()?);
            let (outputs, parameters) = cli.stack(stack)?;
            (Some(cli), outputs, parameters)
        }
        None => (None, Default::default(), Default::default()),
    };
    let from_stack =
        |map: &std::collections::HashMap<String, String>, key: &str| map.get(key).filter(|v| !v.is_empty()).cloned();
    let api_url = owned("--api-url")
        .or_else(|| from_stack(&outputs, "ApiUrl"))
        .ok_or("give --stack STACK (with AWS_REGION), or --api-url URL")?;
    let token = match owned("--token").or_else(|| env("SANDMAN_TOKEN")) {
        Some(token) => token,
        None => {
            let secret = match (env("SANDMAN_JWT_SECRET"), &cli, from_stack(&outputs, "JwtSecretArn")) {
                (Some(secret), _, _) => secret,
                (None, Some(cli), Some(arn))
                    if parameters.get("JwtAcceptHs256").map(String::as_str) == Some("true") =>
                {
                    cli.secret_field(&arn, "jwtHs256Secret")?
                }
                _ => {
                    return Err(
                        "give --token (a token of your identity provider), or set SANDMAN_TOKEN, or \
                                SANDMAN_JWT_SECRET to mint one; with --stack the stack's HS256 key is used when \
                                JwtAcceptHs256 is true"
                            .into(),
                    );
                }
            };
            let minting = Minting {
                issuer: owned("--issuer").or_else(|| from_stack(&parameters, "JwtIssuer")),
                audience: owned("--audience").or_else(|| from_stack(&parameters, "JwtAudience")),
                team_claim: owned("--team-claim").or_else(|| from_stack(&parameters, "JwtTeamClaim")),
                team: owned("--team").unwrap_or_else(|| "sandman-smoke".into()),
            };
            minting.token(&Secret::new(secret))?
        }
    };
    let cors_origin = owned("--cors-origin").or_else(|| {
        from_stack(&parameters, "CorsAllowedOrigins")
            .and_then(|origins| origins.split(',').next().map(|o| o.trim().to_owned()))
    });
    let no_schedules = args.iter().any(|a| a == "--no-schedules");
    let smoke = Smoke {
        api_url,
        token,
        project: Smoke::throwaway_project(),
        template: owned("--template").unwrap_or_else(|| "base".into()),
        timeout: Duration::from_secs(120),
        webhook_timeout: seconds(args, "--webhook-timeout", 90)?,
        cors_origin,
        // Idle for 60 s, then the next 2-minute tick: at most about 3 minutes, and E2B's pause.
        schedule_timeout: (!no_schedules)
            .then(|| seconds(args, "--schedule-timeout", 240))
            .transpose()?,
        scheduled: match (stack, cli, no_schedules) {
            (Some(stack), Some(cli), false) => Some(ScheduledChecks { cli, stack }),
            _ => None,
        },
    };
    println!("Smoke test of {}", smoke.api_url);
    smoke.run(|line| println!("  {line}")).await?;
    println!("Smoke test passed.");
    Ok(())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Registers `url` with every E2B account the deployment uses: the default key (`E2B_API_KEY`)
/// and each team's own (`E2B_TEAM_API_KEYS`, a JSON object). The signing secret comes from
/// `E2B_WEBHOOK_SECRET` (or the first of `E2B_WEBHOOK_SECRETS`) and is never printed.
async fn register_webhook(url: &str) -> Result<(), String> {
    let secret = env("E2B_WEBHOOK_SECRET")
        .or_else(|| env("E2B_WEBHOOK_SECRETS").and_then(|list| list.split(',').next().map(|s| s.trim().to_string())))
        .ok_or("set E2B_WEBHOOK_SECRET to the webhookSecret field of the stack's WebhookSecretArn secret")?;
    for (account, e2b) in accounts()? {
        let registered = register(&e2b, url, &Secret::new(secret.clone()))
            .await
            .map_err(|e| format!("{account}: {e}"))?;
        let verb = match registered {
            sandman_local::register::Registered::Created(_) => "registered",
            sandman_local::register::Registered::Updated(_) => "updated",
        };
        println!("{account}: webhook {} {verb} for {url}", registered.webhook().id);
    }
    Ok(())
}

/// Registers one E2B account's own webhook URL (`--base-url` + `/accounts/default`, or
/// `/accounts/teams/TEAM` with `--team`) with that account's key (for a team: the key it
/// registered through the API, opened with the table's wrapper; else its configured key) and its
/// own signing secret, derived from `E2B_WEBHOOK_SECRET`. Reads `SANDMAN_TABLE`,
/// `SANDMAN_TEAM_KEYS_WRAP` (and `SANDMAN_KMS_KEY_ID`), `E2B_API_KEY`, `E2B_TEAM_API_KEYS` like a
/// function does; prints neither key nor secret.
async fn register_account_webhook(args: &[String]) -> Result<(), String> {
    use sandman::team_keys::E2bAccount;
    let base_url = flag(args, "--base-url").ok_or(USAGE)?;
    let account = match flag(args, "--team") {
        Some(team) => E2bAccount::Team(sandman::domain::TeamId::parse(team).map_err(|e| e.to_string())?),
        None => E2bAccount::Default,
    };
    let region = region()?;
    let mut secrets = sandman::secrets::Secrets::from_env(env).map_err(|e| e.to_string())?;
    if let Some(secret) = env("E2B_WEBHOOK_SECRET") {
        secrets.webhook_secrets.insert(0, Secret::new(secret));
    }
    let sandman = sandman::Sandman::for_operator(secrets)
        .await
        .map_err(|e| e.to_string())?;
    println!("Using table {} in {region}", sandman.store.table());
    let registered = sandman_local::register::register_account(&sandman, &account, base_url).await?;
    let verb = match registered {
        sandman_local::register::Registered::Created(_) => "registered",
        sandman_local::register::Registered::Updated(_) => "updated",
    };
    let webhook = registered.webhook();
    println!(
        "{account}: webhook {} {verb} for {} (E2B team {})",
        webhook.id, webhook.url, webhook.team_id
    );
    Ok(())
}

/// Every E2B account the deployment uses: the default key (`E2B_API_KEY`) and each team's own
/// (`E2B_TEAM_API_KEYS`, a JSON object), at `E2B_API_URL` (default E2B's).
fn accounts() -> Result<Vec<(String, E2b)>, String> {
    let base_url = env("E2B_API_URL").unwrap_or_else(|| E2bSettings::default().base_url);
    let client = E2bClient::new(E2bSettings {
        base_url,
        allow_http_loopback: env("E2B_API_ALLOW_HTTP_LOOPBACK").as_deref() == Some("true"),
        ..E2bSettings::default()
    })
    .map_err(|e| e.to_string())?;
    let mut keys: Vec<(String, String)> = env("E2B_API_KEY")
        .map(|key| ("default".to_string(), key))
        .into_iter()
        .collect();
    if let Some(json) = env("E2B_TEAM_API_KEYS") {
        let teams: HashMap<String, String> = serde_json::from_str(&json).map_err(|e| {
            // Not serde's message: it may quote part of a key.
            format!(
                "E2B_TEAM_API_KEYS is not a JSON object of team id to key (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        keys.extend(teams);
    }
    if keys.is_empty() {
        return Err("set E2B_API_KEY (and/or E2B_TEAM_API_KEYS)".into());
    }
    keys.into_iter()
        .map(|(account, key)| {
            Ok((
                account,
                E2b::new(client.clone(), ApiKey::new(key).map_err(|e| e.to_string())?),
            ))
        })
        .collect()
}

/// Deletes `url`'s registration (exactly that URL) from the accounts of `E2B_API_KEY` and
/// `E2B_TEAM_API_KEYS`. `teardown` removes every registration of a stack.
async fn unregister_webhook(url: &str) -> Result<(), String> {
    for (account, e2b) in accounts()? {
        let webhooks = e2b.list_webhooks().await.map_err(|e| format!("{account}: {e}"))?;
        let ours: Vec<_> = webhooks.into_iter().filter(|w| w.url == url).collect();
        for webhook in &ours {
            e2b.delete_webhook(&webhook.id)
                .await
                .map_err(|e| format!("{account}: {e}"))?;
            println!("{account}: webhook {} deleted", webhook.id);
        }
        if ours.is_empty() {
            println!("{account}: no webhook registered for {url}");
        }
    }
    Ok(())
}

/// Before `sam delete`: every registration of the stack's webhook URL in every account, the
/// accounts of teams that registered their keys through the API included (read from the table,
/// opened with the stack's KMS key: `SANDMAN_TABLE`, `SANDMAN_TEAM_KEYS_WRAP=kms`,
/// `SANDMAN_KMS_KEY_ID`, `AWS_REGION`).
async fn teardown(base_url: &str) -> Result<(), String> {
    let mut all = accounts()?;
    if env("SANDMAN_TABLE").is_some() {
        let region = region()?;
        let secrets = sandman::secrets::Secrets::from_env(env).map_err(|e| e.to_string())?;
        let sandman = sandman::Sandman::for_operator(secrets)
            .await
            .map_err(|e| e.to_string())?;
        println!("Teams' registered keys: table {} in {region}", sandman.store.table());
        for (team, _) in sandman.store.registered_teams().await.map_err(|e| e.to_string())? {
            let e2b = sandman
                .e2b_for_team(&team)
                .await
                .map_err(|e| format!("team {team}: {e}"))?;
            all.push((format!("team {team} (registered)"), e2b));
        }
    } else {
        println!(
            "SANDMAN_TABLE is not set: teams that registered their own E2B keys through the API are not reached \
             (set SANDMAN_TABLE, SANDMAN_TEAM_KEYS_WRAP=kms and SANDMAN_KMS_KEY_ID as for register-account-webhook)"
        );
    }
    for cleared in sandman_local::teardown::clear(&all, base_url).await? {
        match cleared.deleted.as_slice() {
            [] => println!("{}: no webhook registered under {base_url}", cleared.account),
            urls => println!("{}: deleted the webhooks of {}", cleared.account, urls.join(", ")),
        }
        if cleared.sandboxes_left > 0 {
            println!(
                "{}: {} running or paused sandboxes of Sandman's projects are left; they end at their E2B timeout \
                 (delete the projects through the API first to kill them and their snapshots)",
                cleared.account, cleared.sandboxes_left
            );
        }
    }
    println!("{}", sandman_local::teardown::LEFT_IN_AWS);
    Ok(())
}

/// One delivery as Sandman signs it (a made-up pause), with its secret, as JSON: what the
/// TypeScript verifier's test checks against.
fn webhook_sample() -> Result<(), String> {
    use sandman::domain::{Actor, LifecycleRecord, SessionState};
    use sandman::outbound::{Message, SigningSecret, headers};
    let secret =
        SigningSecret::from_bytes(b"sandman-local sample secret, 40 bytes..".to_vec()).map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc();
    let record = LifecycleRecord {
        at: now,
        actor: Actor::IdleEnforcer,
        cause: "idle for 600s".into(),
        from: Some(SessionState::Pausing),
        to: Some(SessionState::Paused),
        sandbox_id: Some("sbx-sample".into()),
    };
    let message = Message::of("sample-project", &record).ok_or("a transition has a message")?;
    let body = serde_json::to_string(&message).map_err(|e| e.to_string())?;
    let id = format!("msg_{}", ulid::Ulid::new());
    let headers: serde_json::Map<String, serde_json::Value> =
        headers(&secret, &id, now.unix_timestamp(), body.as_bytes())
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.into()))
            .collect();
    let sample = serde_json::json!({ "secret": secret.expose(), "headers": headers, "body": body });
    println!("{sample}");
    Ok(())
}
