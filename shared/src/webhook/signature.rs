//! `e2b-signature`: base64 of SHA-256(secret bytes followed by the raw body bytes), trailing `=`
//! removed. A plain hash, not an HMAC. Real deliveries use the standard alphabet; docs before 2026
//! showed the URL-safe one, so both are accepted.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::secrets::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the e2b-signature header is missing")]
    Missing,
    #[error("the e2b-signature header is not a base64 SHA-256 digest")]
    Unreadable,
    #[error("the e2b-signature does not match any configured secret")]
    Mismatch,
    #[error("no webhook secret is configured")]
    NoSecrets,
}

/// What E2B sends for `body` signed with `secret` (standard alphabet, no padding).
pub fn sign(secret: &str, body: &[u8]) -> String {
    STANDARD_NO_PAD.encode(digest(secret.as_bytes(), body))
}

/// Accepts the delivery if `signature` matches `body` under any of `secrets` (current and, while
/// rotating, previous). Every secret is tried, so the time taken does not say which one matched.
pub fn verify(secrets: &[Secret], signature: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecrets);
    }
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing)?;
    let claimed = decode(signature).ok_or(SignatureError::Unreadable)?;
    let matched = secrets
        .iter()
        .map(|secret| digest(secret.expose().as_bytes(), body).ct_eq(&claimed))
        .fold(Choice::from(0), |any, this| any | this);
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn digest(secret: &[u8], body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(secret);
    hasher.update(body);
    let mut out = [0u8; 32];
    out.copy_from_slice(hasher.finalize().as_slice());
    out
}

/// The 32 digest bytes, from either alphabet; `None` for anything else (wrong length, mixed or
/// foreign characters).
fn decode(signature: &str) -> Option<[u8; 32]> {
    let unpadded = signature.trim_end_matches('=');
    [STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().find_map(|engine| {
        let mut out = [0u8; 32];
        match engine.decode_slice(unpadded, &mut out) {
            Ok(32) => Some(out),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"e1","type":"sandbox.lifecycle.paused"}"#;

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|v| Secret::new(*v)).collect()
    }

    /// A body whose standard signature has `+` or `/` after its first character, so the URL-safe
    /// form differs and a mixed form can be built.
    fn body_with_special_characters() -> Vec<u8> {
        (0u32..)
            .map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .find(|body| sign("s", body)[1..].contains(['+', '/']))
            .expect("some body hashes to + or /")
    }

    #[test]
    fn matches_the_documented_construction() {
        // printf 'secret{}' | sha256sum | xxd -r -p | base64, without the trailing '='.
        assert_eq!(sign("secret", b"{}"), "e9B8ejqc2/sG6v6Lh2cAHsXgRKkAkGentpGLCOuoSYs");
        assert!(!sign("secret", BODY).ends_with('='));
    }

    #[test]
    fn accepts_the_standard_alphabet_with_or_without_padding() {
        let signature = sign("s", BODY);
        assert_eq!(verify(&secrets(&["s"]), Some(&signature), BODY), Ok(()));
        assert_eq!(verify(&secrets(&["s"]), Some(&format!("{signature}=")), BODY), Ok(()));
    }

    #[test]
    fn accepts_the_url_safe_alphabet_of_older_docs() {
        let body = body_with_special_characters();
        let standard = sign("s", &body);
        let url_safe = standard.replace('+', "-").replace('/', "_");
        assert_ne!(standard, url_safe);
        assert_eq!(verify(&secrets(&["s"]), Some(&url_safe), &body), Ok(()));
    }

    #[test]
    fn refuses_mixed_alphabets_garbage_and_truncation() {
        let body = body_with_special_characters();
        let standard = sign("s", &body);
        let mixed = format!("-{}", &standard[1..]);
        for bad in [mixed.as_str(), "not base64!", &standard[..40], "AAAA"] {
            assert_eq!(
                verify(&secrets(&["s"]), Some(bad), &body),
                Err(SignatureError::Unreadable),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_a_wrong_secret_a_changed_body_and_a_missing_header() {
        let signature = sign("s", BODY);
        assert_eq!(
            verify(&secrets(&["other"]), Some(&signature), BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secrets(&["s"]), Some(&signature), b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(&secrets(&["s"]), None, BODY), Err(SignatureError::Missing));
        assert_eq!(verify(&secrets(&["s"]), Some("  "), BODY), Err(SignatureError::Missing));
        assert_eq!(verify(&[], Some(&signature), BODY), Err(SignatureError::NoSecrets));
    }

    #[test]
    fn any_configured_secret_verifies_during_rotation() {
        let both = secrets(&["new", "old"]);
        assert_eq!(verify(&both, Some(&sign("new", BODY)), BODY), Ok(()));
        assert_eq!(verify(&both, Some(&sign("old", BODY)), BODY), Ok(()));
        assert_eq!(
            verify(&both, Some(&sign("older", BODY)), BODY),
            Err(SignatureError::Mismatch)
        );
    }
}
