//! Registering and removing a team's endpoints: team admins only (`access.rs`), at public
//! addresses only (`address.rs`, the name resolved now and again at every delivery), and the new
//! signing secret sealed before it is stored: the answer is the only place it is ever in clear.

use super::endpoints::{NewEndpoint, StoredSecret, generate_secret, new_endpoint_id};
use super::{Endpoint, SigningSecret, address};
use crate::Sandman;
use crate::access::Action;
use crate::auth::Caller;
use crate::error::Error;
use crate::team_keys::SealedFor;

impl Sandman {
    /// A new endpoint of the caller's team, and its signing secret (shown this once).
    pub async fn register_endpoint(
        &self,
        caller: &Caller,
        url: &str,
        events: &[String],
        description: Option<&str>,
    ) -> Result<(Endpoint, SigningSecret), Error> {
        self.authorize(caller, Action::ManageEndpoints)?;
        let config = &self.config.outbound;
        let invalid = |field, message: String| Error::Invalid { field, message };
        let new = NewEndpoint::parse(url, events, description, config.allow_http_loopback)
            .map_err(|err| invalid(err.field(), err.to_string()))?;
        let parsed = reqwest::Url::parse(&new.url).map_err(|err| invalid("url", err.to_string()))?;
        if let (Some(url::Host::Domain(name)), Some(port)) = (parsed.host(), parsed.port_or_known_default()) {
            address::check_resolved(name, port, config.allow_http_loopback)
                .await
                .map_err(|refused| invalid("url", format!("url: {refused}")))?;
        }
        let sealer = self.endpoint_seal.as_ref().ok_or_else(|| {
            Error::Conflict(
                "this deployment cannot seal webhook signing secrets (SANDMAN_TEAM_KEYS_WRAP is not set), \
                 so it registers no endpoints"
                    .to_owned(),
            )
        })?;
        let endpoint_id = new_endpoint_id();
        let secret = generate_secret();
        let owner = SealedFor::EndpointSecret {
            team: caller.team.as_str(),
            endpoint: &endpoint_id,
        };
        let sealed = sealer.seal_for(owner, &secret.expose()).await.map_err(|err| {
            tracing::error!(team = %caller.team, error = %err, "sealing an endpoint secret failed");
            Error::Store(crate::store::StoreError::Dynamo {
                message: "the signing secret could not be encrypted".into(),
                retryable: true,
            })
        })?;
        let endpoint = Endpoint {
            team: caller.team.clone(),
            endpoint_id,
            url: new.url,
            events: new.events,
            description: new.description,
            secret: StoredSecret::Sealed(sealed),
            created_at: self.now(),
        };
        let limit = config.max_endpoints_per_team;
        if !self.store.put_endpoint(&endpoint, limit).await? {
            return Err(Error::QuotaExceeded(format!(
                "a team may have {limit} webhook endpoints; delete one first"
            )));
        }
        tracing::info!(team = %caller.team, endpoint = %endpoint.endpoint_id, "webhook endpoint registered");
        Ok((endpoint, secret))
    }

    /// Removes one of the caller's team's endpoints. `Ok(false)`: it has none of that id.
    pub async fn remove_endpoint(&self, caller: &Caller, endpoint_id: &str) -> Result<bool, Error> {
        self.authorize(caller, Action::ManageEndpoints)?;
        Ok(self.store.delete_endpoint(&caller.team, endpoint_id).await?)
    }
}
