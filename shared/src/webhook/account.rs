//! Which account an event may speak for. An E2B account posts to its own webhook URL with its own
//! secret; once the signature verifies, the event's E2B team must be the one that account's
//! registration recorded, and the project it names must be one that account serves. Metadata on
//! a sandbox (which anyone with an E2B key can set) never moves a project of another account.

use super::WebhookError;
use crate::Sandman;
use crate::domain::ProjectKey;
use crate::team_keys::E2bAccount;
use sandman_protocol::webhook::LifecycleEvent;

impl Sandman {
    /// The event's `sandbox_team_id` against the E2B team recorded when the account's webhook was
    /// registered (`sandman-local register-account-webhook`). An account registered before that record
    /// existed has none: then only the project check below applies.
    pub(super) async fn check_e2b_team(
        &self,
        account: &E2bAccount,
        event: &LifecycleEvent,
    ) -> Result<(), WebhookError> {
        let recorded = self.store.account(account).await?.and_then(|record| record.e2b_team_id);
        match (recorded, &event.e2b_team_id) {
            (None, _) => Ok(()),
            (Some(recorded), Some(sent)) if &recorded == sent => Ok(()),
            (Some(_), _) => Err(WebhookError::WrongAccount(format!(
                "the event's E2B team is not the one registered for account {account}"
            ))),
        }
    }

    /// The project belongs to a team this account serves: its own team for a team's account; for
    /// the default account, a team without an account of its own. A team has one when its account
    /// record holds a registered key or the E2B team its webhook registration reported (written by
    /// `register-account-webhook --team`, also for keys configured in `teamE2bApiKeys`, which this function
    /// cannot read): one eventually consistent read, whatever the configuration.
    pub(super) async fn check_served(
        &self,
        account: Option<&E2bAccount>,
        key: &ProjectKey,
    ) -> Result<(), WebhookError> {
        let account = account.unwrap_or(&E2bAccount::Default);
        let has_own_account = match account {
            E2bAccount::Team(_) => true,
            E2bAccount::Default => self
                .store
                .account(&E2bAccount::Team(key.team.clone()))
                .await?
                .is_some_and(|record| record.is_own_account()),
        };
        if account.serves(&key.team, has_own_account) {
            return Ok(());
        }
        tracing::warn!(%account, project = %key, "a webhook named a project its account does not serve; nothing changed");
        Err(WebhookError::WrongAccount(format!(
            "account {account} does not serve this sandbox's project"
        )))
    }
}
