//! Pure rules of a project's settings: what it inherits from its team, the name its secret has
//! in E2B, and whether a change needs its sandbox restarted.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::store::{Delivery, Scope, ScopeSettings, StoredSecret};

/// The name of a scope's secret in E2B's (project-wide, lower-cased) secrets: bound to the team
/// and the scope, so two projects (or two teams sharing the deployment's account) never share one.
pub fn e2b_secret_name(scope: &Scope, name: &str) -> String {
    let owner = format!("{}/{}", scope.team(), scope.label());
    let digest = Sha256::digest(owner.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sm-{hex}-{}", name.to_ascii_lowercase())
}

/// What a sandbox's env var holds for a secret E2B's proxy delivers: a reminder, never the value
/// (the value goes only into the request headers E2B's proxy sets).
pub fn placeholder(name: &str) -> String {
    format!("sandman-secret:{name}")
}

/// A project's settings over its team's: a name the project holds (as an env var or a secret)
/// hides the team's entry of that name.
#[derive(Debug, Default)]
pub struct Merged<'a> {
    pub vars: BTreeMap<String, String>,
    /// Each secret with the scope it belongs to.
    pub secrets: Vec<(Scope, &'a StoredSecret)>,
}

pub fn merge<'a>(
    team_scope: &Scope,
    team: &'a ScopeSettings,
    project_scope: &Scope,
    project: &'a ScopeSettings,
) -> Merged<'a> {
    let own = |name: &str| project.vars.contains_key(name) || project.secret(name).is_some();
    let mut vars: BTreeMap<String, String> = team
        .vars
        .iter()
        .filter(|(name, _)| !own(name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.extend(project.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut secrets: Vec<(Scope, &StoredSecret)> = team
        .secrets
        .iter()
        .filter(|secret| !own(&secret.name))
        .map(|secret| (team_scope.clone(), secret))
        .collect();
    secrets.extend(project.secrets.iter().map(|secret| (project_scope.clone(), secret)));
    Merged { vars, secrets }
}

/// Whether writing a secret needs a running sandbox restarted to take it: a rotation of a
/// proxy-delivered secret whose hosts, header and prefix stay reaches it at once through E2B.
pub fn secret_write_needs_restart(old: Option<&StoredSecret>, hosts: &[String], header: &str, prefix: &str) -> bool {
    match old {
        Some(old) => {
            old.delivery == Delivery::Env
                || old.sealed.is_none()
                || old.hosts != hosts
                || old.header != header
                || old.prefix != prefix
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProjectId, ProjectKey, TeamId};

    fn key(project: &str) -> ProjectKey {
        ProjectKey::new(TeamId::parse("team-a").unwrap(), ProjectId::parse(project).unwrap())
    }

    #[test]
    fn e2b_names_are_per_scope_and_fit_e2b_pattern() {
        let a = e2b_secret_name(&Scope::Project(key("p1")), "OPENAI_KEY");
        let b = e2b_secret_name(&Scope::Project(key("p2")), "OPENAI_KEY");
        let t = e2b_secret_name(&Scope::Team(TeamId::parse("team-a").unwrap()), "OPENAI_KEY");
        assert_ne!(a, b);
        assert_ne!(a, t);
        for name in [a, b, t] {
            assert!(name.len() <= 128);
            assert!(
                name.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
            );
        }
    }

    #[test]
    fn only_a_rotation_of_a_proxied_secret_with_the_same_rules_skips_the_restart() {
        let old = StoredSecret {
            name: "K".into(),
            sealed: Some(crate::team_keys::Sealed {
                wrap: "local".into(),
                wrapped_key: vec![1],
                nonce: vec![2],
                ciphertext: vec![3],
            }),
            size: 1,
            last_four: None,
            hosts: vec!["a.example.com".into()],
            header: "Authorization".into(),
            prefix: String::new(),
            delivery: Delivery::Proxy,
            revision: 1,
            synced: None,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_by: "t".into(),
            forked_from: None,
        };
        let hosts = ["a.example.com".to_string()];
        assert!(!secret_write_needs_restart(Some(&old), &hosts, "Authorization", ""));
        assert!(secret_write_needs_restart(None, &hosts, "Authorization", ""));
        assert!(secret_write_needs_restart(
            Some(&old),
            &["b.example.com".into()],
            "Authorization",
            ""
        ));
        assert!(secret_write_needs_restart(Some(&old), &hosts, "X-Key", ""));
        assert!(secret_write_needs_restart(
            Some(&old),
            &hosts,
            "Authorization",
            "Bearer "
        ));
        let env = StoredSecret {
            delivery: Delivery::Env,
            ..old.clone()
        };
        assert!(secret_write_needs_restart(Some(&env), &hosts, "Authorization", ""));
        let unset = StoredSecret { sealed: None, ..old };
        assert!(secret_write_needs_restart(Some(&unset), &hosts, "Authorization", ""));
    }

    #[test]
    fn a_projects_own_name_hides_the_teams() {
        let team = ScopeSettings {
            vars: BTreeMap::from([("A".into(), "team".into()), ("B".into(), "team".into())]),
            ..ScopeSettings::default()
        };
        let project = ScopeSettings {
            vars: BTreeMap::from([("A".into(), "project".into())]),
            ..ScopeSettings::default()
        };
        let (ts, ps) = (Scope::Team(TeamId::parse("team-a").unwrap()), Scope::Project(key("p1")));
        let merged = merge(&ts, &team, &ps, &project);
        assert_eq!(merged.vars["A"], "project");
        assert_eq!(merged.vars["B"], "team");
    }
}
