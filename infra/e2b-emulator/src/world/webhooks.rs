//! Webhook registrations (e2b-argus-openapi.yml), scoped to the caller's team.

use time::OffsetDateTime;

use super::World;
use crate::error::ApiError;
use crate::ids;
use crate::webhook::{Webhook, WebhookDetail, is_valid_url, validate_events};

#[derive(Debug, Clone)]
pub(crate) struct NewWebhook {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct WebhookChanges {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    pub enabled: Option<bool>,
}

impl World {
    pub(crate) fn add_webhook(
        &mut self,
        team: &str,
        new: NewWebhook,
        now: OffsetDateTime,
    ) -> Result<WebhookDetail, ApiError> {
        check_fields(Some(&new.name), Some(&new.url), Some(&new.events), Some(&new.secret))?;
        let webhook = Webhook {
            id: ids::uuid(),
            team_id: team.to_owned(),
            name: new.name,
            url: new.url,
            events: new.events,
            secret: new.secret,
            enabled: new.enabled,
            created_at: now,
        };
        let detail = WebhookDetail::from(&webhook);
        self.webhooks.insert(webhook.id.clone(), webhook);
        Ok(detail)
    }

    pub(crate) fn webhooks_of(&self, team: &str) -> Vec<WebhookDetail> {
        let mut list: Vec<_> = self.webhooks.values().filter(|w| w.team_id == team).collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        list.into_iter().map(WebhookDetail::from).collect()
    }

    pub(crate) fn webhook(&self, team: &str, id: &str) -> Result<WebhookDetail, ApiError> {
        self.webhooks
            .get(id)
            .filter(|w| w.team_id == team)
            .map(WebhookDetail::from)
            .ok_or_else(|| ApiError::NotFound(format!("webhook '{id}' not found")))
    }

    pub(crate) fn update_webhook(
        &mut self,
        team: &str,
        id: &str,
        changes: WebhookChanges,
    ) -> Result<WebhookDetail, ApiError> {
        self.webhook(team, id)?;
        check_fields(
            changes.name.as_ref(),
            changes.url.as_ref(),
            changes.events.as_ref(),
            changes.secret.as_ref(),
        )?;
        let webhook = self
            .webhooks
            .get_mut(id)
            .ok_or_else(|| ApiError::NotFound(format!("webhook '{id}' not found")))?;
        if let Some(name) = changes.name {
            webhook.name = name;
        }
        if let Some(url) = changes.url {
            webhook.url = url;
        }
        if let Some(events) = changes.events {
            webhook.events = events;
        }
        if let Some(secret) = changes.secret {
            webhook.secret = secret;
        }
        if let Some(enabled) = changes.enabled {
            webhook.enabled = enabled;
        }
        Ok(WebhookDetail::from(&*webhook))
    }

    pub(crate) fn delete_webhook(&mut self, team: &str, id: &str) -> Result<(), ApiError> {
        self.webhook(team, id)?;
        self.webhooks.remove(id);
        Ok(())
    }
}

fn check_fields(
    name: Option<&String>,
    url: Option<&String>,
    events: Option<&Vec<String>>,
    secret: Option<&String>,
) -> Result<(), ApiError> {
    if name.is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::BadRequest("name must not be empty".to_owned()));
    }
    if url.is_some_and(|u| !is_valid_url(u)) {
        return Err(ApiError::BadRequest("url must be an absolute http(s) URL".to_owned()));
    }
    if let Some(events) = events {
        validate_events(events).map_err(ApiError::BadRequest)?;
    }
    if secret.is_some_and(|s| s.is_empty()) {
        return Err(ApiError::BadRequest("signatureSecret must not be empty".to_owned()));
    }
    Ok(())
}
