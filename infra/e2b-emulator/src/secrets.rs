//! E2B's secrets API (August 2026): per team, write-only, versioned values, and the egress proxy
//! that fills `${e2b.secrets.NAME}` markers in a sandbox's `network.rules` header transforms with
//! the current version. A test asks the proxy (`Emulator::egress_headers`) what a request from a
//! sandbox to a host would carry; no answer of the API ever holds a value.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::ids;

/// `network.rules`: host to the transforms of requests to it.
pub type NetworkRules = BTreeMap<String, Vec<NetworkRule>>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRule {
    #[serde(default)]
    pub transform: NetworkTransform,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkTransform {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A secret's metadata, as the API answers it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretMeta {
    #[serde(rename = "secretID")]
    pub secret_id: String,
    pub name: String,
    pub current_version: i64,
    pub metadata: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

struct Stored {
    meta: SecretMeta,
    versions: Vec<String>,
}

/// Every team's secrets, by canonical (lower-cased) name.
#[derive(Default)]
pub(crate) struct SecretBook {
    by_team: HashMap<String, BTreeMap<String, Stored>>,
}

fn canonical(name: &str) -> Result<String, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.to_ascii_lowercase().starts_with("sec_");
    if !ok {
        return Err(ApiError::BadRequest(format!("invalid secret name {name:?}")));
    }
    Ok(name.to_ascii_lowercase())
}

impl SecretBook {
    pub(crate) fn list(&self, team: &str) -> Vec<SecretMeta> {
        self.by_team
            .get(team)
            .map(|all| all.values().map(|s| s.meta.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn create(
        &mut self,
        team: &str,
        name: &str,
        value: String,
        now: OffsetDateTime,
    ) -> Result<SecretMeta, ApiError> {
        let name = canonical(name)?;
        let all = self.by_team.entry(team.to_owned()).or_default();
        if all.contains_key(&name) {
            return Err(ApiError::Conflict(format!("secret {name} already exists")));
        }
        let meta = SecretMeta {
            secret_id: format!("sec_{}", ids::uuid().replace('-', "")),
            name: name.clone(),
            current_version: 1,
            metadata: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        };
        all.insert(
            name,
            Stored {
                meta: meta.clone(),
                versions: vec![value],
            },
        );
        Ok(meta)
    }

    fn find(&mut self, team: &str, id: &str) -> Option<&mut Stored> {
        let all = self.by_team.get_mut(team)?;
        let name = id.to_ascii_lowercase();
        if all.contains_key(&name) {
            return all.get_mut(&name);
        }
        all.values_mut().find(|s| s.meta.secret_id == id)
    }

    pub(crate) fn get(&mut self, team: &str, id: &str) -> Result<SecretMeta, ApiError> {
        self.find(team, id)
            .map(|s| s.meta.clone())
            .ok_or_else(|| ApiError::NotFound(format!("secret {id} not found")))
    }

    pub(crate) fn update(
        &mut self,
        team: &str,
        id: &str,
        value: String,
        now: OffsetDateTime,
    ) -> Result<SecretMeta, ApiError> {
        let stored = self
            .find(team, id)
            .ok_or_else(|| ApiError::NotFound(format!("secret {id} not found")))?;
        stored.versions.push(value);
        stored.meta.current_version = stored.versions.len() as i64;
        stored.meta.updated_at = now;
        Ok(stored.meta.clone())
    }

    pub(crate) fn delete(&mut self, team: &str, id: &str) -> Result<(), ApiError> {
        let name = self
            .find(team, id)
            .map(|s| s.meta.name.clone())
            .ok_or_else(|| ApiError::NotFound(format!("secret {id} not found")))?;
        if let Some(all) = self.by_team.get_mut(team) {
            all.remove(&name);
        }
        Ok(())
    }

    /// The headers E2B's proxy sets on a request to `host` from a sandbox of `team` with `rules`:
    /// each marker filled with its secret's current version; a header whose marker does not
    /// resolve is dropped (E2B fails open).
    pub(crate) fn egress_headers(&self, team: &str, rules: &NetworkRules, host: &str) -> BTreeMap<String, String> {
        let mut headers = BTreeMap::new();
        for rule in rules.get(host).into_iter().flatten() {
            for (name, template) in &rule.transform.headers {
                if let Some(value) = self.fill(team, template) {
                    headers.insert(name.clone(), value);
                }
            }
        }
        headers
    }

    fn fill(&self, team: &str, template: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${e2b.secrets.") {
            out.push_str(&rest[..start]);
            let after = &rest[start + "${e2b.secrets.".len()..];
            let end = after.find('}')?;
            let name = after[..end].to_ascii_lowercase();
            let stored = self.by_team.get(team)?.get(&name)?;
            out.push_str(stored.versions.last()?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    pub(crate) fn clear(&mut self) {
        self.by_team.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_resolve_to_the_current_version_and_unknown_ones_drop_the_header() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut book = SecretBook::default();
        book.create("t", "Key-1", "v1".into(), now).unwrap();
        let rules = NetworkRules::from([(
            "api.x.com".to_owned(),
            vec![NetworkRule {
                transform: NetworkTransform {
                    headers: BTreeMap::from([
                        ("Authorization".into(), "Bearer ${e2b.secrets.key-1}".into()),
                        ("X-Other".into(), "${e2b.secrets.nope}".into()),
                    ]),
                },
            }],
        )]);
        let got = book.egress_headers("t", &rules, "api.x.com");
        assert_eq!(got, BTreeMap::from([("Authorization".into(), "Bearer v1".into())]));
        book.update("t", "key-1", "v2".into(), now).unwrap();
        assert_eq!(
            book.egress_headers("t", &rules, "api.x.com")["Authorization"],
            "Bearer v2"
        );
        assert!(book.egress_headers("other-team", &rules, "api.x.com").is_empty());
        assert!(book.egress_headers("t", &rules, "elsewhere.com").is_empty());
        assert!(matches!(
            book.create("t", "KEY-1", "x".into(), now),
            Err(ApiError::Conflict(_))
        ));
        book.delete("t", "key-1").unwrap();
        assert!(book.egress_headers("t", &rules, "api.x.com").is_empty());
    }
}
