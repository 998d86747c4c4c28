use std::collections::HashMap;

use sandman::e2b::{ApiKey, E2b, E2bClient, E2bSettings, Secret};
use sandman_local::register::register;

const USAGE: &str = "usage: sandman-local [dev | demo | register-webhook --url URL]";

pub async fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        None | Some("dev") => sandman_local::dev::run().await,
        Some("demo") => sandman_local::dev::demo().await,
        Some("register-webhook") => register_webhook(flag(args, "--url").ok_or(USAGE)?).await,
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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Registers `url` with every E2B account the deployment uses: the default key (`E2B_API_KEY`)
/// and each team's own (`E2B_TEAM_API_KEYS`, a JSON object). The signing secret comes from
/// `E2B_WEBHOOK_SECRET` (or the first of `E2B_WEBHOOK_SECRETS`) and is never printed.
async fn register_webhook(url: &str) -> Result<(), String> {
    let secret = env("E2B_WEBHOOK_SECRET")
        .or_else(|| env("E2B_WEBHOOK_SECRETS").and_then(|list| list.split(',').next().map(|s| s.trim().to_string())))
        .ok_or("set E2B_WEBHOOK_SECRET to the signing secret stored in the deployment's secret")?;
    let base_url = env("E2B_API_URL").unwrap_or_else(|| E2bSettings::default().base_url);
    let client = E2bClient::new(E2bSettings {
        base_url,
        allow_http_loopback: env("E2B_API_ALLOW_HTTP_LOOPBACK").as_deref() == Some("true"),
        ..E2bSettings::default()
    })
    .map_err(|e| e.to_string())?;
    let mut accounts: Vec<(String, String)> = env("E2B_API_KEY")
        .map(|key| ("default".to_string(), key))
        .into_iter()
        .collect();
    if let Some(json) = env("E2B_TEAM_API_KEYS") {
        let teams: HashMap<String, String> =
            serde_json::from_str(&json).map_err(|e| format!("E2B_TEAM_API_KEYS is not a JSON object: {e}"))?;
        accounts.extend(teams);
    }
    if accounts.is_empty() {
        return Err("set E2B_API_KEY (and/or E2B_TEAM_API_KEYS)".into());
    }
    for (account, key) in accounts {
        let e2b = E2b::new(client.clone(), ApiKey::new(key).map_err(|e| e.to_string())?);
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
