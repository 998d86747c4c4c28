//! Envelope encryption of a team's E2B key, of its outbound endpoints' signing secrets and of its
//! projects' (and its own) secrets (`env/`): a fresh
//! 256-bit data key per value encrypts it with AES-256-GCM (what it belongs to as associated data,
//! so a sealed value copied onto another team's or endpoint's item does not open); the data key
//! itself is stored wrapped, by KMS when deployed (what it belongs to as encryption context) or by
//! a local development master key. Plaintext exists only in memory.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::secrets::Secret;

const DATA_KEY_LEN: usize = 32;
/// KMS binds the wrapped data key to the team with this encryption context entry (and CloudTrail
/// shows it on every Decrypt).
const CONTEXT_TEAM: &str = "sandmanTeam";
/// An endpoint secret's data key also names its endpoint. IAM can grant `kms:Decrypt` only for
/// data keys carrying this entry (`kms:EncryptionContextKeys`): the outbound function opens
/// endpoint secrets and never a team's E2B key.
const CONTEXT_ENDPOINT: &str = "sandmanEndpoint";
/// A project's (or the team's) secret names its scope and its name too: a sealed value copied to
/// another project's item, or under another name, does not open. The functions that never hand a
/// secret to E2B are denied `kms:Decrypt` of data keys carrying `sandmanSecret` (template.yaml).
const CONTEXT_SCOPE: &str = "sandmanScope";
const CONTEXT_SECRET: &str = "sandmanSecret";

/// What a sealed value belongs to: it opens for that owner only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedFor<'a> {
    /// A team's registered E2B key.
    TeamKey(&'a str),
    /// The signing secret of a team's outbound endpoint.
    EndpointSecret { team: &'a str, endpoint: &'a str },
    /// A secret of a project (`scope` = `project:<id>`) or of the whole team (`team`).
    Secret {
        team: &'a str,
        scope: &'a str,
        name: &'a str,
    },
}

impl SealedFor<'_> {
    fn team(&self) -> &str {
        match self {
            SealedFor::TeamKey(team) | SealedFor::EndpointSecret { team, .. } | SealedFor::Secret { team, .. } => team,
        }
    }

    /// The value's associated data (a team key's is its team id, as it always was).
    fn aad(&self) -> Vec<u8> {
        match self {
            SealedFor::TeamKey(team) => team.as_bytes().to_vec(),
            SealedFor::EndpointSecret { team, endpoint } => format!("endpoint:{team}:{endpoint}").into_bytes(),
            SealedFor::Secret { team, scope, name } => format!("secret:{team}:{scope}:{name}").into_bytes(),
        }
    }

    /// The associated data of the local wrapper's wrapped data key.
    fn wrap_aad(&self) -> Vec<u8> {
        match self {
            SealedFor::TeamKey(team) => format!("sandman-data-key:{team}").into_bytes(),
            SealedFor::EndpointSecret { team, endpoint } => {
                format!("sandman-data-key:{team}:endpoint:{endpoint}").into_bytes()
            }
            SealedFor::Secret { team, scope, name } => {
                format!("sandman-data-key:{team}:secret:{scope}:{name}").into_bytes()
            }
        }
    }

    /// The encryption context's entries beyond the team.
    fn context(&self) -> Vec<(&'static str, &str)> {
        match self {
            SealedFor::TeamKey(_) => Vec::new(),
            SealedFor::EndpointSecret { endpoint, .. } => vec![(CONTEXT_ENDPOINT, endpoint)],
            SealedFor::Secret { scope, name, .. } => vec![(CONTEXT_SCOPE, scope), (CONTEXT_SECRET, name)],
        }
    }
}

/// A team's E2B key as stored: nothing here opens without the wrapping key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Which wrapper wrapped the data key: `kms` or `local`.
    pub wrap: String,
    pub wrapped_key: Vec<u8>,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({}, {} bytes)", self.wrap, self.ciphertext.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("KMS: {0}")]
    Kms(String),
    /// The ciphertext, its data key or its team do not match: never says which.
    #[error("the stored key could not be decrypted")]
    Corrupt,
    #[error("the stored key was wrapped by {stored}, and this deployment wraps with {configured}")]
    OtherWrapper { stored: String, configured: &'static str },
}

/// What wraps the per-team data keys.
#[derive(Clone)]
pub enum KeyWrapper {
    /// One KMS key of the stack: `GenerateDataKey` on registration, `Decrypt` on a cache miss.
    Kms {
        client: aws_sdk_kms::Client,
        key_id: String,
    },
    /// The local stack's development master key (32 bytes). Refused by deployed configuration.
    Local(Secret),
}

impl std::fmt::Debug for KeyWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl KeyWrapper {
    pub fn name(&self) -> &'static str {
        match self {
            KeyWrapper::Kms { .. } => "kms",
            KeyWrapper::Local(_) => "local",
        }
    }

    /// Seals a team's E2B key.
    pub async fn seal(&self, team: &str, plaintext: &str) -> Result<Sealed, SealError> {
        self.seal_for(SealedFor::TeamKey(team), plaintext).await
    }

    /// Opens a team's E2B key.
    pub async fn open(&self, team: &str, sealed: &Sealed) -> Result<Secret, SealError> {
        self.open_for(SealedFor::TeamKey(team), sealed).await
    }

    pub async fn seal_for(&self, owner: SealedFor<'_>, plaintext: &str) -> Result<Sealed, SealError> {
        let (data_key, wrapped_key) = self.new_data_key(owner).await?;
        let (nonce, ciphertext) = encrypt(&data_key, &owner.aad(), plaintext.as_bytes())?;
        Ok(Sealed {
            wrap: self.name().to_owned(),
            wrapped_key,
            nonce,
            ciphertext,
        })
    }

    pub async fn open_for(&self, owner: SealedFor<'_>, sealed: &Sealed) -> Result<Secret, SealError> {
        if sealed.wrap != self.name() {
            return Err(SealError::OtherWrapper {
                stored: sealed.wrap.clone(),
                configured: self.name(),
            });
        }
        let data_key = self.unwrap_data_key(owner, &sealed.wrapped_key).await?;
        let plaintext = decrypt(&data_key, &owner.aad(), &sealed.nonce, &sealed.ciphertext)?;
        String::from_utf8(plaintext)
            .map(Secret::new)
            .map_err(|_| SealError::Corrupt)
    }

    async fn new_data_key(&self, owner: SealedFor<'_>) -> Result<(Vec<u8>, Vec<u8>), SealError> {
        match self {
            KeyWrapper::Kms { client, key_id } => {
                let mut request = client
                    .generate_data_key()
                    .key_id(key_id)
                    .key_spec(DataKeySpec::Aes256)
                    .encryption_context(CONTEXT_TEAM, owner.team());
                for (key, value) in owner.context() {
                    request = request.encryption_context(key, value);
                }
                let out = request
                    .send()
                    .await
                    .map_err(|err| SealError::Kms(aws_sdk_kms::error::DisplayErrorContext(err).to_string()))?;
                let plaintext = out
                    .plaintext
                    .ok_or_else(|| SealError::Kms("no plaintext data key".into()))?;
                let wrapped = out
                    .ciphertext_blob
                    .ok_or_else(|| SealError::Kms("no wrapped data key".into()))?;
                Ok((plaintext.into_inner(), wrapped.into_inner()))
            }
            KeyWrapper::Local(master) => {
                let mut data_key = vec![0u8; DATA_KEY_LEN];
                SystemRandom::new()
                    .fill(&mut data_key)
                    .map_err(|_| SealError::Corrupt)?;
                let (nonce, wrapped) = encrypt(&master_key(master)?, &owner.wrap_aad(), &data_key)?;
                Ok((data_key, [nonce, wrapped].concat()))
            }
        }
    }

    async fn unwrap_data_key(&self, owner: SealedFor<'_>, wrapped: &[u8]) -> Result<Vec<u8>, SealError> {
        match self {
            KeyWrapper::Kms { client, key_id } => {
                let mut request = client
                    .decrypt()
                    .key_id(key_id)
                    .ciphertext_blob(Blob::new(wrapped))
                    .encryption_context(CONTEXT_TEAM, owner.team());
                for (key, value) in owner.context() {
                    request = request.encryption_context(key, value);
                }
                let out = request
                    .send()
                    .await
                    .map_err(|err| SealError::Kms(aws_sdk_kms::error::DisplayErrorContext(err).to_string()))?;
                out.plaintext.map(Blob::into_inner).ok_or(SealError::Corrupt)
            }
            KeyWrapper::Local(master) => {
                if wrapped.len() < NONCE_LEN {
                    return Err(SealError::Corrupt);
                }
                let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
                decrypt(&master_key(master)?, &owner.wrap_aad(), nonce, ciphertext)
            }
        }
    }
}

/// Parses a development master key: 64 hex digits.
pub fn parse_master_key(hex: &str) -> Option<Secret> {
    let hex = hex.trim();
    (hex.len() == DATA_KEY_LEN * 2 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Secret::new(hex))
}

fn master_key(master: &Secret) -> Result<Vec<u8>, SealError> {
    let hex = master.expose();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| SealError::Corrupt))
        .collect()
}

fn aead_key(key: &[u8]) -> Result<LessSafeKey, SealError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| SealError::Corrupt)
}

fn encrypt(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::Corrupt)?;
    let mut sealed = plaintext.to_vec();
    aead_key(key)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut sealed)
        .map_err(|_| SealError::Corrupt)?;
    Ok((nonce.to_vec(), sealed))
}

fn decrypt(key: &[u8], aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, SealError> {
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Corrupt)?;
    let mut buffer = ciphertext.to_vec();
    let plaintext = aead_key(key)?
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .map_err(|_| SealError::Corrupt)?;
    Ok(plaintext.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> KeyWrapper {
        KeyWrapper::Local(parse_master_key(&"ab".repeat(32)).unwrap())
    }

    #[tokio::test]
    async fn a_sealed_key_opens_for_its_team_only() {
        let wrapper = local();
        let sealed = wrapper.seal("team-a", "e2b_secret_key_1234").await.unwrap();
        assert!(!sealed.ciphertext.windows(4).any(|w| w == b"1234"));
        assert_eq!(
            wrapper.open("team-a", &sealed).await.unwrap().expose(),
            "e2b_secret_key_1234"
        );
        assert!(matches!(wrapper.open("team-b", &sealed).await, Err(SealError::Corrupt)));
        let other_master = KeyWrapper::Local(parse_master_key(&"cd".repeat(32)).unwrap());
        assert!(matches!(
            other_master.open("team-a", &sealed).await,
            Err(SealError::Corrupt)
        ));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(
            wrapper.open("team-a", &tampered).await,
            Err(SealError::Corrupt)
        ));
    }

    #[tokio::test]
    async fn an_endpoint_secret_opens_for_its_endpoint_only() {
        let wrapper = local();
        let owner = SealedFor::EndpointSecret {
            team: "team-a",
            endpoint: "ep_1",
        };
        let sealed = wrapper.seal_for(owner, "whsec_abc").await.unwrap();
        assert_eq!(wrapper.open_for(owner, &sealed).await.unwrap().expose(), "whsec_abc");
        for other in [
            SealedFor::EndpointSecret {
                team: "team-a",
                endpoint: "ep_2",
            },
            SealedFor::EndpointSecret {
                team: "team-b",
                endpoint: "ep_1",
            },
            SealedFor::TeamKey("team-a"),
        ] {
            assert!(
                matches!(wrapper.open_for(other, &sealed).await, Err(SealError::Corrupt)),
                "{other:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_project_secret_opens_for_its_team_scope_and_name_only() {
        let wrapper = local();
        let owner = SealedFor::Secret {
            team: "team-a",
            scope: "project:p1",
            name: "OPENAI_API_KEY",
        };
        let sealed = wrapper.seal_for(owner, "sk-canary-1234").await.unwrap();
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"canary"));
        assert_eq!(
            wrapper.open_for(owner, &sealed).await.unwrap().expose(),
            "sk-canary-1234"
        );
        for other in [
            SealedFor::Secret {
                team: "team-b",
                scope: "project:p1",
                name: "OPENAI_API_KEY",
            },
            SealedFor::Secret {
                team: "team-a",
                scope: "project:p2",
                name: "OPENAI_API_KEY",
            },
            SealedFor::Secret {
                team: "team-a",
                scope: "team",
                name: "OPENAI_API_KEY",
            },
            SealedFor::Secret {
                team: "team-a",
                scope: "project:p1",
                name: "OTHER",
            },
            SealedFor::TeamKey("team-a"),
        ] {
            assert!(
                matches!(wrapper.open_for(other, &sealed).await, Err(SealError::Corrupt)),
                "{other:?}"
            );
        }
    }

    #[test]
    fn master_keys_are_64_hex_digits() {
        assert!(parse_master_key(&"0f".repeat(32)).is_some());
        assert!(parse_master_key("short").is_none());
        assert!(parse_master_key(&"zz".repeat(32)).is_none());
    }
}
