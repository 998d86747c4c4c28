//! A team's webhook endpoints: where to send, which events, and the secret that signs them.

use reqwest::Url;
use time::OffsetDateTime;

use super::{EventType, SigningSecret, address};
use crate::domain::TeamId;
use crate::team_keys::Sealed;

/// At most this many endpoints per team (each lifecycle change is one delivery per endpoint).
pub const MAX_ENDPOINTS_PER_TEAM: u32 = 10;
const MAX_URL_LEN: usize = 2048;
const MAX_DESCRIPTION_LEN: usize = 256;

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub team: TeamId,
    pub endpoint_id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub description: String,
    pub secret: StoredSecret,
    pub created_at: OffsetDateTime,
}

/// An endpoint's signing secret as the table holds it.
#[derive(Debug, Clone)]
pub enum StoredSecret {
    /// Sealed like a team's E2B key (`team_keys::seal`), for this endpoint only.
    Sealed(Sealed),
    /// In clear: an endpoint registered before secrets were sealed. Still used; registering the
    /// endpoint again seals its (new) secret.
    Clear(SigningSecret),
}

impl Endpoint {
    pub fn wants(&self, event: EventType) -> bool {
        self.events.contains(&event)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("url: {0}")]
    Url(String),
    #[error("events: {0}")]
    Events(String),
    #[error("description: at most {MAX_DESCRIPTION_LEN} characters")]
    Description,
}

impl EndpointError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::Url(_) => "url",
            Self::Events(_) => "events",
            Self::Description => "description",
        }
    }
}

/// What a team asks for, checked. `allow_http_loopback`: the local stack's receivers.
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<EventType>,
    pub description: String,
}

impl NewEndpoint {
    pub fn parse(
        url: &str,
        events: &[String],
        description: Option<&str>,
        allow_http_loopback: bool,
    ) -> Result<NewEndpoint, EndpointError> {
        Ok(NewEndpoint {
            url: check_url(url, allow_http_loopback)?,
            events: check_events(events)?,
            description: match description {
                Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => return Err(EndpointError::Description),
                Some(d) => d.to_owned(),
                None => String::new(),
            },
        })
    }
}

/// https only; plain http only to this machine and only when the deployment allows it (the
/// local stack). The host must be a public address (`address.rs`): a literal IP is checked here,
/// a name again after DNS at registration (`register.rs`) and at every delivery.
pub fn check_url(text: &str, allow_http_loopback: bool) -> Result<String, EndpointError> {
    if text.len() > MAX_URL_LEN {
        return Err(EndpointError::Url(format!("at most {MAX_URL_LEN} characters")));
    }
    let url = Url::parse(text).map_err(|e| EndpointError::Url(format!("not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::Url("credentials in the URL are not accepted".into()));
    }
    let loopback = crate::e2b::is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if allow_http_loopback && loopback => {}
        "http" => return Err(EndpointError::Url("must be https".into())),
        other => return Err(EndpointError::Url(format!("must be https, not {other}"))),
    }
    let host = url.host().ok_or_else(|| EndpointError::Url("has no host".into()))?;
    address::check_host(&host, allow_http_loopback).map_err(|refused| EndpointError::Url(refused.to_string()))?;
    Ok(url.to_string())
}

fn check_events(names: &[String]) -> Result<Vec<EventType>, EndpointError> {
    if names.is_empty() {
        return Err(EndpointError::Events("name at least one event type".into()));
    }
    let mut events = Vec::new();
    for name in names {
        let event = EventType::parse(name).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            EndpointError::Events(format!("unknown event type {name:?}; known: {}", known.join(", ")))
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

/// A fresh signing secret: 32 random bytes from the operating system.
pub fn generate_secret() -> SigningSecret {
    let mut bytes = vec![0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    SigningSecret::from_bytes(bytes).expect("32 bytes is a valid secret length")
}

/// A new endpoint id (`ep_` + ULID): sorts by creation time.
pub fn new_endpoint_id() -> String {
    format!("ep_{}", ulid::Ulid::new().to_string().to_lowercase())
}
