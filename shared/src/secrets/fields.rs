//! Reading and checking each secret field. A problem names the field and where it is, never the value.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use super::{Secret, SecretKind, Secrets, SecretsError};

/// Shorter signing secrets and keys are refused: a real E2B key is 44 bytes, generated secrets 48.
pub const MIN_SECRET_BYTES: usize = 32;

/// Every placeholder in infra/secret.example.json carries this marker.
const PLACEHOLDER_MARKER: &str = "REPLACE_WITH";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Short,
    Placeholder,
    NotVisibleAscii,
    Empty,
    NotAString,
    NotAnObject,
    NotAList,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::Short => "is shorter than 32 bytes",
            Problem::Placeholder => "is still the placeholder from infra/secret.example.json: put the real value in",
            Problem::NotVisibleAscii => "has characters other than visible ASCII",
            Problem::Empty => "is empty",
            Problem::NotAString => "must be a JSON string",
            Problem::NotAnObject => "must be a JSON object of team id to key",
            Problem::NotAList => "must be a JSON list of strings",
        })
    }
}

/// One value: `None` when empty (an empty field means "not set"), else the trimmed value if it can
/// be a real key.
fn check(value: &str) -> Result<Option<Secret>, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.to_ascii_uppercase().contains(PLACEHOLDER_MARKER) {
        return Err(Problem::Placeholder);
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::NotVisibleAscii);
    }
    if value.len() < MIN_SECRET_BYTES {
        return Err(Problem::Short);
    }
    Ok(Some(Secret::new(value)))
}

struct Place<'a>(&'a str);

impl Place<'_> {
    fn invalid(&self, field: impl Into<String>, problem: Problem) -> SecretsError {
        SecretsError::Invalid {
            place: self.0.to_owned(),
            field: field.into(),
            problem,
        }
    }

    fn optional(&self, doc: &Map<String, Value>, field: &str) -> Result<Option<Secret>, SecretsError> {
        match doc.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => check(text).map_err(|p| self.invalid(field, p)),
            Some(_) => Err(self.invalid(field, Problem::NotAString)),
        }
    }

    fn list(&self, doc: &Map<String, Value>, field: &str) -> Result<Vec<Secret>, SecretsError> {
        let items = match doc.get(field) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(self.invalid(field, Problem::NotAList)),
        };
        let mut secrets = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let name = format!("{field}[{i}]");
            let text = item.as_str().ok_or_else(|| self.invalid(&name, Problem::NotAString))?;
            secrets.extend(check(text).map_err(|p| self.invalid(&name, p))?);
        }
        Ok(secrets)
    }

    fn team_keys(&self, doc: &Map<String, Value>, field: &str) -> Result<HashMap<String, Secret>, SecretsError> {
        let teams = match doc.get(field) {
            None | Some(Value::Null) => return Ok(HashMap::new()),
            Some(Value::Object(teams)) => teams,
            Some(_) => return Err(self.invalid(field, Problem::NotAnObject)),
        };
        let mut keys = HashMap::new();
        for (team, key) in teams {
            let name = format!("{field}.{team}");
            let text = key.as_str().ok_or_else(|| self.invalid(&name, Problem::NotAString))?;
            // A team listed without a key is a mistake, not "not set".
            let key = check(text)
                .map_err(|p| self.invalid(&name, p))?
                .ok_or_else(|| self.invalid(&name, Problem::Empty))?;
            keys.insert(team.clone(), key);
        }
        Ok(keys)
    }
}

/// Reads one deployed secret's JSON into `secrets`.
pub(super) fn read_document(
    kind: SecretKind,
    secret_id: &str,
    text: &str,
    secrets: &mut Secrets,
) -> Result<(), SecretsError> {
    let not_json = |line, column| SecretsError::NotJson {
        secret_id: secret_id.to_owned(),
        line,
        column,
    };
    let doc = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(doc)) => doc,
        Ok(_) => return Err(not_json(1, 1)),
        Err(err) => return Err(not_json(err.line(), err.column())),
    };
    let place = format!("secret {secret_id}");
    let place = Place(&place);
    let known: &[&str] = match kind {
        SecretKind::E2b => {
            secrets.e2b_api_key = place.optional(&doc, "e2bApiKey")?;
            secrets.team_e2b_api_keys = place.team_keys(&doc, "teamE2bApiKeys")?;
            &["e2bApiKey", "teamE2bApiKeys"]
        }
        SecretKind::Webhook => {
            secrets.webhook_secrets = place.optional(&doc, "webhookSecret")?.into_iter().collect();
            secrets
                .webhook_secrets
                .extend(place.list(&doc, "previousWebhookSecrets")?);
            &["webhookSecret", "previousWebhookSecrets"]
        }
        SecretKind::Jwt => {
            secrets.jwt_hs256_secret = place.optional(&doc, "jwtHs256Secret")?;
            secrets.jwt_hs256_previous = place.list(&doc, "previousJwtHs256Secrets")?;
            &["jwtHs256Secret", "previousJwtHs256Secrets"]
        }
    };
    for field in doc.keys().filter(|field| !known.contains(&field.as_str())) {
        tracing::warn!(secret_id, field = %field, "unknown field in the secret is ignored");
    }
    Ok(())
}

/// The local environment's variables as they are (empty ones dropped), unchecked.
pub(super) fn parse_environment(get: impl Fn(&str) -> Option<String>) -> Result<Secrets, SecretsError> {
    let get = |name: &str| get(name).filter(|value| !value.trim().is_empty());
    let team_e2b_api_keys = match get("E2B_TEAM_API_KEYS") {
        None => HashMap::new(),
        Some(json) => {
            let teams: HashMap<String, String> = serde_json::from_str(&json)
                .map_err(|_| Place("the environment").invalid("E2B_TEAM_API_KEYS", Problem::NotAnObject))?;
            teams.into_iter().map(|(team, key)| (team, Secret::new(key))).collect()
        }
    };
    Ok(Secrets {
        e2b_api_key: get("E2B_API_KEY").map(Secret::new),
        team_e2b_api_keys,
        webhook_secrets: get("E2B_WEBHOOK_SECRETS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default(),
        jwt_hs256_secret: get("JWT_HS256_SECRET").map(Secret::new),
        jwt_hs256_previous: get("JWT_HS256_PREVIOUS_SECRETS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// As `parse_environment`, every value checked as a deployed one is.
pub(super) fn from_environment(get: impl Fn(&str) -> Option<String>) -> Result<Secrets, SecretsError> {
    let secrets = parse_environment(get)?;
    let place = Place("the environment");
    let checked = |name: String, secret: &Secret| match check(secret.expose()) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(place.invalid(name, Problem::Empty)),
        Err(problem) => Err(place.invalid(name, problem)),
    };
    if let Some(secret) = &secrets.e2b_api_key {
        checked("E2B_API_KEY".into(), secret)?;
    }
    for (team, secret) in &secrets.team_e2b_api_keys {
        checked(format!("E2B_TEAM_API_KEYS.{team}"), secret)?;
    }
    for (i, secret) in secrets.webhook_secrets.iter().enumerate() {
        checked(format!("E2B_WEBHOOK_SECRETS[{i}]"), secret)?;
    }
    if let Some(secret) = &secrets.jwt_hs256_secret {
        checked("JWT_HS256_SECRET".into(), secret)?;
    }
    for (i, secret) in secrets.jwt_hs256_previous.iter().enumerate() {
        checked(format!("JWT_HS256_PREVIOUS_SECRETS[{i}]"), secret)?;
    }
    Ok(secrets)
}
