//! Who is calling the API: a bearer JWT whose signature, lifetime, issuer and audience are checked,
//! and whose team comes from a configurable claim. HS256 tokens are checked with the deployment's
//! shared secret; RS256 and ES256 tokens with the keys published at a JWKS URL.

mod jwks;
mod mint;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::AuthConfig;
use crate::domain::TeamId;
use crate::secrets::Secrets;

pub use jwks::JwksSettings;
pub use mint::{mint_admin_token, mint_dev_token};

/// The caller a verified token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub team: TeamId,
    pub subject: Option<String>,
    /// The token carries the deployment's admin role (`JWT_ADMIN_ROLE`) for its team.
    pub admin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("an Authorization: Bearer <token> header is required")]
    MissingToken,
    /// The token was refused; the reason is safe to show the caller.
    #[error("the token was refused: {0}")]
    Rejected(String),
    /// The JWKS could not be fetched, so no RS256/ES256 token can be checked now.
    #[error("the signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
    /// Neither a shared secret nor a JWKS URL is configured.
    #[error(
        "no way to verify tokens: set JWT_JWKS_URL (the stack's JwtJwksUrl parameter), or JWT_HS256=true \
         (JwtAcceptHs256) with the jwtHs256Secret secret"
    )]
    NotConfigured,
    #[error("could not sign the token: {0}")]
    Signing(String),
}

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY: Duration = Duration::from_secs(30);

/// Built once per cold start; cheap to share behind an `Arc`.
pub struct Verifier {
    /// The current HS256 secret first, then the previous ones still accepted (rotation).
    hs256: Vec<DecodingKey>,
    jwks: Option<jwks::Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    team_claim: String,
    admin: crate::config::AdminRole,
    max_lifetime: Option<Duration>,
}

impl Verifier {
    pub fn new(config: &AuthConfig, secrets: &Secrets) -> Result<Verifier, AuthError> {
        crate::crypto::install();
        let jwks = config
            .jwks_url
            .as_ref()
            .map(|url| JwksSettings {
                max_age: config.jwks_max_age,
                ..JwksSettings::new(url.clone())
            })
            .map(jwks::Jwks::new)
            .transpose()?;
        Self::with_jwks(config, secrets, jwks)
    }

    /// As `new`, with the JWKS refresh policy given (tests shorten the minimum refresh interval).
    pub fn with_jwks_settings(
        config: &AuthConfig,
        secrets: &Secrets,
        settings: JwksSettings,
    ) -> Result<Verifier, AuthError> {
        Self::with_jwks(config, secrets, Some(jwks::Jwks::new(settings)?))
    }

    fn with_jwks(config: &AuthConfig, secrets: &Secrets, jwks: Option<jwks::Jwks>) -> Result<Verifier, AuthError> {
        let hs256 = match (config.hs256, &secrets.jwt_hs256_secret) {
            (false, _) => Vec::new(),
            (true, Some(secret)) => std::iter::once(secret)
                .chain(&secrets.jwt_hs256_previous)
                .map(|secret| DecodingKey::from_secret(secret.expose().as_bytes()))
                .collect(),
            (true, None) => return Err(AuthError::NotConfigured),
        };
        if hs256.is_empty() && jwks.is_none() {
            return Err(AuthError::NotConfigured);
        }
        Ok(Verifier {
            hs256,
            jwks,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            team_claim: config.team_claim.clone(),
            admin: config.admin.clone(),
            max_lifetime: config.max_lifetime,
        })
    }

    /// Checks an `Authorization` header value.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let token = header
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::MissingToken)?;
        self.verify(token).await
    }

    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        // `alg: none` (and any algorithm jsonwebtoken does not know) fails here: it is no `Algorithm`.
        let header = jsonwebtoken::decode_header(token).map_err(|err| rejected(&err))?;
        let keys = match header.alg {
            Algorithm::HS256 if self.hs256.is_empty() => {
                return Err(AuthError::Rejected("HS256 tokens are not accepted".into()));
            }
            Algorithm::HS256 => self.hs256.clone(),
            Algorithm::RS256 | Algorithm::ES256 => match &self.jwks {
                Some(jwks) => vec![jwks.key_for(header.kid.as_deref(), header.alg).await?],
                None => {
                    return Err(AuthError::Rejected(format!("{:?} tokens are not accepted", header.alg)));
                }
            },
            other => {
                return Err(AuthError::Rejected(format!("{other:?} tokens are not accepted")));
            }
        };
        let validation = self.validation(header.alg);
        // The current key, then the previous ones: only a signature that does not match moves on.
        let mut decoded = None;
        for key in &keys {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
                Err(err) if *err.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    decoded = Some(Err(err))
                }
                other => {
                    decoded = Some(other);
                    break;
                }
            }
        }
        let claims = decoded.expect("at least one key").map_err(|err| rejected(&err))?.claims;
        self.check_lifetime(&claims)?;
        let team = match claims.get(&self.team_claim) {
            Some(Value::String(team)) => TeamId::parse(team.as_str())
                .map_err(|_| AuthError::Rejected(format!("the {} claim is not a valid team id", self.team_claim)))?,
            _ => {
                return Err(AuthError::Rejected(format!(
                    "the token has no {} claim",
                    self.team_claim
                )));
            }
        };
        let subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        let admin = self
            .admin
            .role
            .as_ref()
            .is_some_and(|role| match claims.get(&self.admin.claim) {
                Some(Value::String(held)) => held == role,
                Some(Value::Array(held)) => held.iter().any(|held| held.as_str() == Some(role)),
                _ => false,
            });
        Ok(Caller { team, subject, admin })
    }

    /// A token lives at most `max_lifetime`: from its `iat` to its `exp`, and from now to its `exp`
    /// (an `iat` in the future must not stretch it).
    fn check_lifetime(&self, claims: &Map<String, Value>) -> Result<(), AuthError> {
        let Some(max) = self.max_lifetime else {
            return Ok(());
        };
        let bound = max.as_secs().saturating_add(LEEWAY.as_secs());
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let now = jsonwebtoken::get_current_timestamp();
        let from_iat = claims
            .get("iat")
            .and_then(Value::as_u64)
            .map_or(0, |iat| exp.saturating_sub(iat));
        if from_iat > bound || exp.saturating_sub(now) > bound {
            return Err(AuthError::Rejected(format!(
                "the token's lifetime is longer than this API accepts ({}s from iat to exp)",
                max.as_secs()
            )));
        }
        Ok(())
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience, a token's `aud` cannot be checked: accept it as is.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

fn rejected(err: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    let reason = match err.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".to_string(),
        ErrorKind::ImmatureSignature => "the token is not valid yet".to_string(),
        ErrorKind::InvalidAudience => "the token's audience is not this API".to_string(),
        ErrorKind::InvalidIssuer => "the token's issuer is not trusted".to_string(),
        ErrorKind::InvalidSignature => "the signature does not match".to_string(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key".to_string(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the {claim} claim is malformed"),
        _ => "the token is malformed or uses an unsupported algorithm".to_string(),
    };
    AuthError::Rejected(reason)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
