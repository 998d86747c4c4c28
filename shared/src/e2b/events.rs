//! E2B's events API: the lifecycle events of every sandbox of an account, newest first, kept
//! 7 days. The webhook delivers the same events; this is how missed ones are caught up on.

use reqwest::Method;
use sandman_protocol::e2b::E2bError;
use sandman_protocol::webhook::LifecycleEvent;
use serde_json::Value;

use super::accounts::E2b;
use super::request::Request;

/// E2B's largest page of events.
pub const EVENTS_PAGE: usize = 100;

impl E2b {
    /// One page of the account's lifecycle events, newest first, skipping `offset` of them. An
    /// event E2B sends that Sandman cannot read is left out (and logged): it reports nothing
    /// Sandman could count.
    pub async fn list_events(&self, offset: usize, limit: usize) -> Result<Vec<LifecycleEvent>, E2bError> {
        const ROUTE: &str = "GET /events/sandboxes";
        let request = Request::new(Method::GET, ROUTE, &["events", "sandboxes"])
            .with_query("offset", offset.to_string())
            .with_query("limit", limit.min(EVENTS_PAGE).to_string())
            .with_query("orderAsc", "false");
        let page: Vec<Value> = self.send(request).await?.json(ROUTE)?;
        Ok(page
            .iter()
            .filter_map(|value| {
                let parsed = serde_json::to_vec(value)
                    .map_err(|err| err.to_string())
                    .and_then(|body| LifecycleEvent::parse(&body).map_err(|err| err.to_string()));
                parsed
                    .map_err(|error| tracing::warn!(%error, "an event from E2B's events API could not be read"))
                    .ok()
            })
            .collect())
    }
}
