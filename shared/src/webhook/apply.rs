//! Applying a verified event: find its session, decide, write; on a lost race, decide again on
//! what the winner left.

use sandman_protocol::webhook::{Receipt, WebhookFailure, apply, session_of};

use super::{VerifiedEvent, WebhookError, verify_and_parse};
use crate::Sandman;
use crate::team_keys::E2bAccount;

/// One webhook request as it arrived: the raw body (the signature covers its exact bytes) and the
/// headers that matter.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `e2b-signature`.
    pub signature: Option<&'a str>,
    /// `e2b-delivery-id`: unique per attempt.
    pub delivery_id: Option<&'a str>,
    pub body: &'a [u8],
}

impl Sandman {
    pub async fn receive_webhook(&self, delivery: Delivery<'_>) -> Result<Receipt, WebhookError> {
        let verified = verify_and_parse(&self.secrets.webhook_secrets, &delivery)?;
        self.apply_webhook(&verified).await
    }

    /// A delivery posted to the webhook URL of `account`: checked against that account's own
    /// signing secret, chosen from the URL before anything in the body is read.
    pub async fn receive_account_webhook(
        &self,
        account: &E2bAccount,
        delivery: Delivery<'_>,
    ) -> Result<Receipt, WebhookError> {
        let secrets: Vec<_> = self
            .secrets
            .webhook_secrets
            .iter()
            .map(|secret| account.webhook_secret(secret))
            .collect();
        let verified = verify_and_parse(&secrets, &delivery)?;
        self.apply_account_webhook(Some(account), &verified).await
    }

    /// An event delivered to the deployment's original URL (signed with the deployment secret
    /// itself): the default account's.
    pub async fn apply_webhook(&self, verified: &VerifiedEvent) -> Result<Receipt, WebhookError> {
        self.apply_account_webhook(None, verified).await
    }

    /// `account`: the account whose URL received it; `None` for the original URL.
    pub async fn apply_account_webhook(
        &self,
        account: Option<&E2bAccount>,
        verified: &VerifiedEvent,
    ) -> Result<Receipt, WebhookError> {
        let event = &verified.event;
        super::check_age(event, self.now())?;
        if let Some(account) = account {
            self.check_e2b_team(account, event).await?;
        }
        let record = session_of(self, event).await?;
        if let Some(record) = &record {
            self.check_served(account, &record.project.key()).await?;
        }
        apply(self, record, event, &verified.dedupe_id)
            .await
            .map_err(|failure| match failure {
                WebhookFailure::Contended => WebhookError::Contended,
                WebhookFailure::Store(err) => err.into(),
            })
    }
}
