//! Registers the deployment's webhook URL with E2B for every E2B account it uses, so lifecycle
//! events reach the webhook function. Idempotent: an existing registration of the same URL is
//! updated (events, secret, enabled) instead of duplicated.

use sandman::e2b::{E2b, E2bError, NewWebhook, Secret, Webhook, WebhookUpdate};

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
