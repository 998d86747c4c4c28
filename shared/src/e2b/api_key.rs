//! The one secret every E2B call carries.

use std::fmt;

use reqwest::header::HeaderValue;

use sandman_protocol::e2b::E2bError;

/// An E2B team API key, sent as `X-API-Key`. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct ApiKey(HeaderValue);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Result<Self, E2bError> {
        let key = key.into();
        let invalid = || E2bError::InvalidSettings {
            detail: "an E2B API key must be non-empty visible ASCII".to_owned(),
        };
        if key.trim().is_empty() {
            return Err(invalid());
        }
        let mut value = HeaderValue::from_str(key.trim()).map_err(|_| invalid())?;
        value.set_sensitive(true);
        Ok(Self(value))
    }

    pub(crate) fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
