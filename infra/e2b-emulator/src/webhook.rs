//! Webhook registrations, per team, as E2B's events API manages them.

use serde::Serialize;
use time::OffsetDateTime;

use crate::events::EventType;

#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
}

impl Webhook {
    pub(crate) fn wants(&self, event_type: EventType) -> bool {
        self.enabled && self.events.iter().any(|name| name == event_type.as_str())
    }
}

/// `WebhookDetail` in e2b-argus-openapi.yml; the secret is never returned.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookDetail {
    pub id: String,
    pub team_id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub url: String,
    pub enabled: bool,
    pub events: Vec<String>,
}

impl From<&Webhook> for WebhookDetail {
    fn from(webhook: &Webhook) -> Self {
        Self {
            id: webhook.id.clone(),
            team_id: webhook.team_id.clone(),
            name: webhook.name.clone(),
            created_at: webhook.created_at,
            url: webhook.url.clone(),
            enabled: webhook.enabled,
            events: webhook.events.clone(),
        }
    }
}

pub(crate) fn is_valid_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

pub(crate) fn validate_events(events: &[String]) -> Result<(), String> {
    if events.is_empty() {
        return Err("events must not be empty".to_owned());
    }
    match events.iter().find(|name| EventType::parse(name).is_none()) {
        Some(unknown) => Err(format!("unknown event type {unknown:?}")),
        None => Ok(()),
    }
}
