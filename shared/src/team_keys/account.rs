//! An E2B account as Sandman names it: the deployment's default key, or a team's own key. Each
//! account posts its webhooks to its own path on the webhook URL, signed with its own secret.

use std::fmt;

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::domain::TeamId;
use crate::secrets::Secret;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum E2bAccount {
    /// The deployment's default key: every team without an E2B account of its own.
    Default,
    /// A team's own key (registered through the API, or configured in `teamE2bApiKeys`).
    Team(TeamId),
}

impl E2bAccount {
    /// The path of this account's webhook URL, below the webhook function's base URL.
    pub fn webhook_path(&self) -> String {
        match self {
            E2bAccount::Default => "/accounts/default".to_owned(),
            E2bAccount::Team(team) => format!("/accounts/teams/{team}"),
        }
    }

    /// The account a webhook path names; `None` for any other path.
    pub fn from_webhook_path(path: &str) -> Option<E2bAccount> {
        match path.trim_end_matches('/') {
            "/accounts/default" => Some(E2bAccount::Default),
            other => other
                .strip_prefix("/accounts/teams/")
                .and_then(|team| TeamId::parse(team).ok())
                .map(E2bAccount::Team),
        }
    }

    /// The webhook signing secret of this account, derived from the deployment's webhook secret
    /// (HMAC-SHA256 over the account's name): each account has its own, the webhook function holds
    /// only the deployment secret, and rotating that secret rotates every account's.
    pub fn webhook_secret(&self, deployment: &Secret) -> Secret {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(deployment.expose().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"sandman-webhook-account:");
        mac.update(self.to_string().as_bytes());
        Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Whether the project of `team` is served by this account, given whether `team` has an E2B
    /// account of its own.
    pub fn serves(&self, team: &TeamId, team_has_own_account: bool) -> bool {
        match self {
            E2bAccount::Default => !team_has_own_account,
            E2bAccount::Team(owner) => owner == team,
        }
    }
}

impl fmt::Display for E2bAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            E2bAccount::Default => f.write_str("default"),
            E2bAccount::Team(team) => write!(f, "team:{team}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(id: &str) -> E2bAccount {
        E2bAccount::Team(TeamId::parse(id).unwrap())
    }

    #[test]
    fn paths_round_trip_and_nothing_else_parses() {
        for account in [E2bAccount::Default, team("team-a")] {
            assert_eq!(E2bAccount::from_webhook_path(&account.webhook_path()), Some(account));
        }
        for path in [
            "/",
            "/accounts",
            "/accounts/teams/",
            "/accounts/teams/a#b",
            "/other/default",
        ] {
            assert_eq!(E2bAccount::from_webhook_path(path), None, "{path}");
        }
    }

    #[test]
    fn each_account_has_its_own_secret() {
        let deployment = Secret::new("a-deployment-webhook-secret-of-32-bytes");
        let a = team("team-a").webhook_secret(&deployment);
        assert_ne!(a, team("team-b").webhook_secret(&deployment));
        assert_ne!(a, E2bAccount::Default.webhook_secret(&deployment));
        assert_eq!(a, team("team-a").webhook_secret(&deployment));
        assert_ne!(
            a,
            team("team-a").webhook_secret(&Secret::new("another-deployment-secret-32-bytes"))
        );
    }

    #[test]
    fn an_account_serves_its_own_teams_only() {
        let a = TeamId::parse("team-a").unwrap();
        assert!(team("team-a").serves(&a, true));
        assert!(!team("team-b").serves(&a, true));
        assert!(E2bAccount::Default.serves(&a, false));
        assert!(!E2bAccount::Default.serves(&a, true));
    }
}
