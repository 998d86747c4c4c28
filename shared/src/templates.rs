//! Which E2B templates a team's projects may start from. A template id is handed to E2B with the
//! team's credentials, and E2B accepts a snapshot id wherever it accepts a template id: left
//! open, `templateId` would let a team start a sandbox from another team's snapshot. So a
//! template must be allowed by the deployment (`SANDMAN_TEMPLATES`) or by the team's own entry
//! (`SANDMAN_TEAM_TEMPLATES`), and some shapes are refused whatever the lists say. Restores go
//! through the snapshot table, never through `templateId`.

use std::collections::HashMap;

use crate::domain::TeamId;

/// Templates allowed when `SANDMAN_TEMPLATES` is not set: E2B's public base image.
pub const DEFAULT_TEMPLATES: &str = "base";

/// Sandman names every snapshot it takes `sandman-<snapshot id>`.
const SNAPSHOT_PREFIX: &str = "sandman-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePolicy {
    deployment: Vec<Pattern>,
    teams: HashMap<String, Vec<Pattern>>,
}

/// An exact name, or a prefix followed by `*` (`acme-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(String);

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let text = text.trim();
        let body = text.strip_suffix('*').unwrap_or(text);
        if text.is_empty() || body.contains('*') || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("{text:?} is not a template name or a prefix ending in '*'"));
        }
        if body.is_empty() {
            return Err(format!(
                "{text:?} alone would let every team start from any template of the E2B account, \
                 other teams' private ones included; list names or prefixes (\"python-*\")"
            ));
        }
        Ok(Pattern(text.to_owned()))
    }

    fn matches(&self, template: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => template.starts_with(prefix),
            None => template == self.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("templateId {template:?} is not allowed: {reason}")]
pub struct TemplateRefused {
    pub template: String,
    pub reason: &'static str,
}

impl TemplatePolicy {
    /// `deployment`: comma-separated patterns. `teams`: a JSON object of team id to patterns.
    pub fn parse(deployment: &str, teams: Option<&str>) -> Result<TemplatePolicy, String> {
        let deployment = patterns(deployment.split(','))?;
        if let Some(namespaced) = deployment.iter().find(|p| p.0.contains('/')) {
            return Err(format!(
                "{:?}: a namespaced template (owner/name) belongs to one E2B team; allow it per team",
                namespaced.0
            ));
        }
        let teams = match teams {
            None => HashMap::new(),
            Some(json) => serde_json::from_str::<HashMap<String, Vec<String>>>(json)
                .map_err(|_| "expected a JSON object of team id to a list of template patterns".to_owned())?
                .into_iter()
                .map(|(team, list)| {
                    TeamId::parse(team.as_str()).map_err(|err| format!("{team:?}: {err}"))?;
                    Ok((team, patterns(list.iter().map(String::as_str))?))
                })
                .collect::<Result<_, String>>()?,
        };
        Ok(TemplatePolicy { deployment, teams })
    }

    /// Whether `team`'s projects may start from `template`.
    pub fn check(&self, team: &TeamId, template: &str) -> Result<(), TemplateRefused> {
        let refuse = |reason| {
            Err(TemplateRefused {
                template: template.to_owned(),
                reason,
            })
        };
        let name = template.rsplit('/').next().unwrap_or(template);
        let name = name.split(':').next().unwrap_or(name);
        if name.to_ascii_lowercase().starts_with(SNAPSHOT_PREFIX) {
            return refuse("names starting with sandman- are snapshots; restore them through the snapshots API");
        }
        if looks_like_an_e2b_id(name) {
            return refuse("it has the shape of an E2B template or snapshot id; use the template's name");
        }
        let team_allows = self
            .teams
            .get(team.as_str())
            .is_some_and(|list| list.iter().any(|p| p.matches(template)));
        let deployment_allows = !template.contains('/') && self.deployment.iter().any(|p| p.matches(template));
        if team_allows || deployment_allows {
            Ok(())
        } else {
            refuse("it is not one of the templates this deployment or team allows")
        }
    }
}

impl TemplatePolicy {
    /// Every template a caller may name, when the deployment lists exact names only and no team
    /// has a list of its own; `None` when prefixes or team lists make the set open or per team.
    pub fn closed_set(&self) -> Option<Vec<&str>> {
        if !self.teams.is_empty() || self.deployment.iter().any(|p| p.0.ends_with('*')) {
            return None;
        }
        let any_team = TeamId::parse("any").ok()?;
        let names = self.deployment.iter().map(|p| p.0.as_str());
        Some(names.filter(|name| self.check(&any_team, name).is_ok()).collect())
    }
}

/// E2B's own ids (templates and snapshots alike) are 20 lowercase letters and digits.
fn looks_like_an_e2b_id(name: &str) -> bool {
    name.len() == 20 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn patterns<'a>(list: impl Iterator<Item = &'a str>) -> Result<Vec<Pattern>, String> {
    list.filter(|p| !p.trim().is_empty()).map(Pattern::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(id: &str) -> TeamId {
        TeamId::parse(id).unwrap()
    }

    fn policy() -> TemplatePolicy {
        TemplatePolicy::parse("base, python-*", Some(r#"{"team-a": ["acme/*", "private-tpl"]}"#)).unwrap()
    }

    #[test]
    fn allows_what_the_deployment_or_the_team_lists() {
        let policy = policy();
        for template in ["base", "python-3.12"] {
            assert_eq!(policy.check(&team("team-b"), template), Ok(()), "{template}");
        }
        assert_eq!(policy.check(&team("team-a"), "acme/web"), Ok(()));
        assert_eq!(policy.check(&team("team-a"), "private-tpl"), Ok(()));
    }

    #[test]
    fn another_teams_entries_do_not_carry_over() {
        let policy = policy();
        assert!(policy.check(&team("team-b"), "acme/web").is_err());
        assert!(policy.check(&team("team-b"), "private-tpl").is_err());
        assert!(policy.check(&team("team-b"), "basement").is_err());
    }

    #[test]
    fn snapshot_shapes_are_refused_whatever_the_lists_say() {
        let open = TemplatePolicy::parse("m*", Some(r#"{"team-b": ["a*", "t*", "s*", "S*"]}"#)).unwrap();
        for template in [
            "sandman-01jd2k3m4n5p6q7r8s9t0v1w2x",
            "SANDMAN-01JD",
            "team-a/sandman-01jd2k3m4n",
            "sandman-x:default",
            "abcdefghij0123456789",
            "abcdefghij0123456789:default",
            "team-a/abcdefghij0123456789",
        ] {
            let refused = open.check(&team("team-b"), template).unwrap_err();
            assert!(refused.to_string().contains("templateId"), "{refused}");
        }
        assert_eq!(open.check(&team("team-b"), "my-template"), Ok(()));
    }

    #[test]
    fn namespaced_templates_are_allowed_per_team_only() {
        let err = TemplatePolicy::parse("base,acme/*", None).unwrap_err();
        assert!(err.contains("acme/*"), "{err}");
        let open = TemplatePolicy::parse("a*", None).unwrap();
        assert!(open.check(&team("team-b"), "acme/web").is_err());
    }

    /// Security review L7: a bare `*` would let every team start from any template of the shared
    /// account, other teams' private ones included; it is refused, in either list, naming it.
    #[test]
    fn a_bare_wildcard_is_refused() {
        for (deployment, teams) in [
            ("*", None),
            ("base, *", None),
            (" * ", None),
            ("base", Some(r#"{"team-b": ["*"]}"#)),
        ] {
            let err = TemplatePolicy::parse(deployment, teams).unwrap_err();
            assert!(err.contains("\"*\""), "{deployment} {teams:?}: {err}");
        }
        assert!(TemplatePolicy::parse("py*", Some(r#"{"team-b": ["acme/*"]}"#)).is_ok());
    }

    #[test]
    fn malformed_settings_are_named() {
        assert!(TemplatePolicy::parse("a*b", None).is_err());
        assert!(TemplatePolicy::parse("base", Some("[]")).is_err());
        assert!(TemplatePolicy::parse("base", Some(r#"{"team#1": ["x"]}"#)).is_err());
    }
}
