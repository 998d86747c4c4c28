//! E2B's secrets API (`/secrets`, 2026). A secret's
//! value is write-only there: E2B keeps versions and its egress proxy fills the marker
//! `${e2b.secrets.NAME}` in a sandbox's header rules with the current one, so a value sent here
//! never enters a sandbox. Answers carry metadata only; nothing here logs a body.

use reqwest::Method;
use serde::Serialize;

use super::accounts::E2b;
use super::request::Request;
use sandman_protocol::e2b::{E2bError, Secret};

#[derive(Serialize)]
struct NewSecret<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct SecretUpdate<'a> {
    value: &'a str,
}

impl E2b {
    /// Whether this account has E2B's secrets API: one page of at most one secret. `false` when
    /// E2B answers 404 (no such route: an account or a deployment of E2B without it).
    pub async fn has_secrets_api(&self) -> Result<bool, E2bError> {
        const ROUTE: &str = "GET /secrets";
        let request = Request::new(Method::GET, ROUTE, &["secrets"]).with_query("limit", "1");
        match self.send(request).await {
            Ok(_) => Ok(true),
            Err(E2bError::NotFound) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Makes `value` the current version of the account's secret `name` (canonical lower case):
    /// a new version when `exists` (E2B holds it already), else a create. One call carries the
    /// value, unless E2B's answer says otherwise (a create that finds it: an update; an update
    /// that does not: a create). Running sandboxes whose rules name it use it from their next
    /// request. `NotFound` from both: the account has no secrets API.
    pub async fn put_secret(&self, name: &str, value: &Secret, exists: bool) -> Result<(), E2bError> {
        if exists {
            match self.update_secret(name, value).await {
                Err(E2bError::NotFound) => {}
                other => return other,
            }
        }
        const ROUTE: &str = "POST /secrets";
        let request = Request::new(Method::POST, ROUTE, &["secrets"])
            .with_json(&NewSecret {
                name,
                value: value.expose(),
            })?
            .not_idempotent();
        match self.send(request).await {
            Ok(_) => Ok(()),
            // Created meanwhile (another instance, or a create whose answer was lost): update it.
            Err(E2bError::Conflict { .. }) => self.update_secret(name, value).await,
            Err(err) => Err(err),
        }
    }

    /// A new version of an existing secret (safe to repeat: the same value again).
    async fn update_secret(&self, name: &str, value: &Secret) -> Result<(), E2bError> {
        const ROUTE: &str = "POST /secrets/{id}";
        let request =
            Request::new(Method::POST, ROUTE, &["secrets", name]).with_json(&SecretUpdate { value: value.expose() })?;
        self.send(request).await.map(drop)
    }

    /// Revokes the secret: a marker naming it no longer resolves, so E2B's proxy drops the header
    /// at once. A secret already gone is not an error.
    pub async fn delete_secret(&self, name: &str) -> Result<(), E2bError> {
        const ROUTE: &str = "DELETE /secrets/{id}";
        let request = Request::new(Method::DELETE, ROUTE, &["secrets", name]);
        match self.send(request).await {
            Ok(_) | Err(E2bError::NotFound) => Ok(()),
            Err(err) => Err(err),
        }
    }
}
