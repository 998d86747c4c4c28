//! Development tokens: HS256, signed with the deployment's shared secret, carrying exactly what
//! this deployment's `Verifier` checks (team claim, and issuer and audience when configured).

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::AuthError;
use crate::config::AuthConfig;
use crate::domain::TeamId;
use crate::secrets::Secret;

pub fn mint_dev_token(
    config: &AuthConfig,
    secret: &Secret,
    team: &TeamId,
    subject: &str,
    ttl: Duration,
) -> Result<String, AuthError> {
    mint(config, secret, team, subject, ttl, false)
}

/// As `mint_dev_token`, carrying the deployment's admin role (when one is configured).
pub fn mint_admin_token(
    config: &AuthConfig,
    secret: &Secret,
    team: &TeamId,
    subject: &str,
    ttl: Duration,
) -> Result<String, AuthError> {
    mint(config, secret, team, subject, ttl, true)
}

fn mint(
    config: &AuthConfig,
    secret: &Secret,
    team: &TeamId,
    subject: &str,
    ttl: Duration,
    admin: bool,
) -> Result<String, AuthError> {
    crate::crypto::install();
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(subject));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + ttl.as_secs()));
    claims.insert(config.team_claim.clone(), json!(team.as_str()));
    if let (true, Some(role)) = (admin, &config.admin.role) {
        claims.insert(config.admin.claim.clone(), json!([role]));
    }
    if let Some(issuer) = &config.issuer {
        claims.insert("iss".into(), json!(issuer));
    }
    if let Some(audience) = &config.audience {
        claims.insert("aud".into(), json!(audience));
    }
    let key = EncodingKey::from_secret(secret.expose().as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &Value::Object(claims), &key)
        .map_err(|err| AuthError::Signing(err.to_string()))
}
