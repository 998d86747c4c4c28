//! Keyed tags for what the API hands out and takes back (page cursors): HMAC-SHA256 under a key
//! derived, once per cold start, from a deployment secret every API instance holds. A caller can
//! neither make a tag for a value of its own choosing nor move one to another value.

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secrets::Secrets;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Bytes of the MAC kept in a tag: 128 bits.
const TAG_BYTES: usize = 16;

#[derive(Clone)]
pub struct Tagger {
    key: Vec<u8>,
}

impl std::fmt::Debug for Tagger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tagger(..)")
    }
}

impl Tagger {
    /// The key for `purpose`, derived from the deployment's JWT secret (its E2B key, or its webhook
    /// secret, when it has none): the same in every instance, and rotated with that secret (a tag
    /// made before a rotation no longer verifies). Without any, a random key: tags then verify
    /// only in the instance that made them.
    pub fn for_deployment(purpose: &str, secrets: &Secrets) -> Tagger {
        let source = secrets
            .jwt_hs256_secret
            .as_ref()
            .or(secrets.e2b_api_key.as_ref())
            .or(secrets.webhook_secrets.first());
        let root = match source {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    purpose,
                    "no deployment secret to derive tags from; tags hold in this instance only"
                );
                let mut random = vec![0u8; 32];
                getrandom::fill(&mut random).expect("the operating system's random source is available");
                random
            }
        };
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&root).expect("HMAC takes keys of any length");
        mac.update(b"sandman tag key: ");
        mac.update(purpose.as_bytes());
        Tagger {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// The tag of `parts` (each length-prefixed, so no two lists of parts share one), as hex.
    pub fn tag(&self, parts: &[&str]) -> String {
        self.mac(parts)[..TAG_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `tag` is the tag of `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&str], tag: &str) -> bool {
        self.tag(parts).as_bytes().ct_eq(tag.as_bytes()).into()
    }

    fn mac(&self, parts: &[&str]) -> Vec<u8> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    fn secrets(jwt: &str) -> Secrets {
        Secrets {
            jwt_hs256_secret: Some(Secret::new(jwt)),
            ..Secrets::default()
        }
    }

    #[test]
    fn a_tag_holds_for_its_parts_under_its_key_only() {
        let tagger = Tagger::for_deployment("cursor", &secrets("one-secret"));
        let tag = tagger.tag(&["projects:t", "abc"]);
        assert_eq!(tag.len(), 32);
        assert!(tagger.verify(&["projects:t", "abc"], &tag));
        assert!(!tagger.verify(&["projects:t", "abd"], &tag));
        assert!(
            !tagger.verify(&["projects:t:", "bc"], &tag),
            "parts are length-prefixed"
        );
        assert!(!tagger.verify(&["projects:t", "abc"], &tag[..31]));
        let same = Tagger::for_deployment("cursor", &secrets("one-secret"));
        assert!(same.verify(&["projects:t", "abc"], &tag), "every instance agrees");
        for other in [
            Tagger::for_deployment("cursor", &secrets("another-secret")),
            Tagger::for_deployment("other", &secrets("one-secret")),
        ] {
            assert!(!other.verify(&["projects:t", "abc"], &tag));
        }
    }
}
