//! Standard Webhooks signatures: `v1,` then base64 of HMAC-SHA256, keyed with the secret's bytes,
//! over `{webhook-id}.{webhook-timestamp}.{body}`. Secrets travel as `whsec_` + base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// An endpoint's signing secret (its bytes; never logged).
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigningSecretError {
    #[error("a signing secret is whsec_ followed by base64 of 24 to 64 bytes")]
    Malformed,
}

impl SigningSecret {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SigningSecretError> {
        if (24..=64).contains(&bytes.len()) {
            Ok(SigningSecret(bytes))
        } else {
            Err(SigningSecretError::Malformed)
        }
    }

    pub fn parse(text: &str) -> Result<Self, SigningSecretError> {
        let encoded = text.strip_prefix(PREFIX).ok_or(SigningSecretError::Malformed)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SigningSecretError::Malformed)?;
        Self::from_bytes(bytes)
    }

    /// The form shown to the team once, at registration.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// The `webhook-signature` value for one delivery.
pub fn sign(secret: &SigningSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("webhook-timestamp is not a number")]
    BadTimestamp,
    #[error("webhook-timestamp is too far from now")]
    Stale,
    #[error("no webhook-signature matches")]
    NoMatch,
}

/// Checks a delivery as a receiver would: the timestamp within `tolerance_secs` of `now`, and one
/// of the space-separated `v1,` signatures equal (in constant time) to the expected one.
pub fn verify(
    secret: &SigningSecret,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    use subtle::ConstantTimeEq;
    let at: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now - at).abs() > tolerance_secs {
        return Err(VerifyError::Stale);
    }
    let expected = sign(secret, id, at, body);
    let matches = signatures
        .split(' ')
        .any(|candidate| bool::from(candidate.as_bytes().ct_eq(expected.as_bytes())));
    if matches { Ok(()) } else { Err(VerifyError::NoMatch) }
}
