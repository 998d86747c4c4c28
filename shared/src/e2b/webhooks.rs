//! Lifecycle webhook registration (E2B's events API, per team).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::accounts::E2b;
use super::request::Request;
use sandman_protocol::e2b::E2bError;
use sandman_protocol::e2b::Secret;

/// `POST /events/webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    /// E.g. `sandbox.lifecycle.paused`.
    pub events: Vec<String>,
    pub signature_secret: Secret,
    pub enabled: bool,
}

/// `PATCH /events/webhooks/{id}`: only the fields set are changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A registered webhook, as E2B reports it (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub team_id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub url: String,
    pub enabled: bool,
    #[serde(default)]
    pub events: Vec<String>,
}

impl E2b {
    /// Not idempotent: retried only when E2B refused it (429).
    pub async fn register_webhook(&self, webhook: &NewWebhook) -> Result<Webhook, E2bError> {
        const ROUTE: &str = "POST /events/webhooks";
        let request = Request::new(Method::POST, ROUTE, &["events", "webhooks"])
            .with_json(webhook)?
            .not_idempotent();
        self.send(request).await?.json(ROUTE)
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, E2bError> {
        const ROUTE: &str = "GET /events/webhooks";
        let request = Request::new(Method::GET, ROUTE, &["events", "webhooks"]);
        self.send(request).await?.json(ROUTE)
    }

    pub async fn get_webhook(&self, webhook_id: &str) -> Result<Webhook, E2bError> {
        const ROUTE: &str = "GET /events/webhooks/{id}";
        let request = Request::new(Method::GET, ROUTE, &["events", "webhooks", webhook_id]);
        self.send(request).await?.json(ROUTE)
    }

    pub async fn update_webhook(&self, webhook_id: &str, update: &WebhookUpdate) -> Result<Webhook, E2bError> {
        const ROUTE: &str = "PATCH /events/webhooks/{id}";
        let request = Request::new(Method::PATCH, ROUTE, &["events", "webhooks", webhook_id]).with_json(update)?;
        self.send(request).await?.json(ROUTE)
    }

    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<(), E2bError> {
        const ROUTE: &str = "DELETE /events/webhooks/{id}";
        let request = Request::new(Method::DELETE, ROUTE, &["events", "webhooks", webhook_id]);
        self.send(request).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registration_is_camel_case_and_hides_the_secret_from_debug() {
        let new = NewWebhook {
            name: "sandman".into(),
            url: "https://example.com/hook".into(),
            events: vec!["sandbox.lifecycle.paused".into()],
            signature_secret: Secret::new("s3cret"),
            enabled: true,
        };
        assert_eq!(
            serde_json::to_value(&new).unwrap(),
            json!({"name": "sandman", "url": "https://example.com/hook",
                   "events": ["sandbox.lifecycle.paused"], "signatureSecret": "s3cret", "enabled": true})
        );
        assert!(!format!("{new:?}").contains("s3cret"));
    }

    #[test]
    fn an_update_sends_only_what_changes() {
        let update = WebhookUpdate {
            enabled: Some(false),
            ..WebhookUpdate::default()
        };
        assert_eq!(serde_json::to_value(&update).unwrap(), json!({"enabled": false}));
    }
}
