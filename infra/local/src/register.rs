//! Registers the deployment's webhook URL with E2B for every E2B account it uses, so lifecycle
//! events reach the webhook function. Idempotent: an existing registration of the same URL is
//! updated (events, secret, enabled) instead of duplicated.

use sandman::Sandman;
use sandman::e2b::{E2b, E2bError, NewWebhook, Secret, Webhook, WebhookUpdate};
use sandman::team_keys::{E2bAccount, KeySource};

pub const WEBHOOK_NAME: &str = "sandman";

pub const LIFECYCLE_EVENTS: [&str; 5] = [
    "sandbox.lifecycle.created",
    "sandbox.lifecycle.paused",
    "sandbox.lifecycle.resumed",
    "sandbox.lifecycle.killed",
    "sandbox.lifecycle.updated",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    Created(Webhook),
    Updated(Webhook),
}

impl Registered {
    pub fn webhook(&self) -> &Webhook {
        match self {
            Registered::Created(w) | Registered::Updated(w) => w,
        }
    }
}

pub async fn register(e2b: &E2b, url: &str, secret: &Secret) -> Result<Registered, E2bError> {
    let events: Vec<String> = LIFECYCLE_EVENTS.iter().map(|e| e.to_string()).collect();
    let existing = e2b.list_webhooks().await?.into_iter().find(|w| w.url == url);
    match existing {
        Some(found) => {
            let update = WebhookUpdate {
                name: Some(WEBHOOK_NAME.into()),
                url: None,
                events: Some(events),
                signature_secret: Some(secret.clone()),
                enabled: Some(true),
            };
            Ok(Registered::Updated(e2b.update_webhook(&found.id, &update).await?))
        }
        None => {
            let new = NewWebhook {
                name: WEBHOOK_NAME.into(),
                url: url.into(),
                events,
                signature_secret: secret.clone(),
                enabled: true,
            };
            Ok(Registered::Created(e2b.register_webhook(&new).await?))
        }
    }
}

/// Registers `account`'s own webhook URL (`base_url` + `/accounts/...`) with E2B, with that
/// account's own key and signing secret, and records the E2B team E2B reports for it: the webhook
/// function then refuses events of any other E2B team at that URL. A team account needs a key of
/// its own (registered through the API, or configured for the team).
pub async fn register_account(sandman: &Sandman, account: &E2bAccount, base_url: &str) -> Result<Registered, String> {
    let e2b = match account {
        E2bAccount::Default => sandman.e2b.default_account().map_err(|e| e.to_string())?,
        E2bAccount::Team(team) => {
            let status = sandman.team_key_status(team).await.map_err(|e| e.to_string())?;
            if !matches!(status.in_use, KeySource::Registered | KeySource::DeploymentTeam) {
                return Err(format!(
                    "team {team} has no E2B key of its own: its events come through the default account"
                ));
            }
            sandman.e2b_for_team(team).await.map_err(|e| e.to_string())?
        }
    };
    let deployment = sandman
        .secrets
        .webhook_secrets
        .first()
        .ok_or("no webhook signing secret is set (E2B_WEBHOOK_SECRET)")?;
    let url = format!("{}{}", base_url.trim_end_matches('/'), account.webhook_path());
    let registered = register(&e2b, &url, &account.webhook_secret(deployment))
        .await
        .map_err(|e| format!("{account}: {e}"))?;
    sandman
        .store
        .set_account_e2b_team(account, &registered.webhook().team_id)
        .await
        .map_err(|e| format!("{account}: recording its E2B team: {e}"))?;
    Ok(registered)
}
