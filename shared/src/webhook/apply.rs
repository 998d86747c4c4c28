//! Applying a verified event: find its session, decide, write; on a lost race, decide again on
//! what the winner left.

use serde::Serialize;

use super::decide::{Decision, Ignored, Rules, decide};
use super::{VerifiedEvent, WebhookError, verify_and_parse};
use crate::Sandman;
use crate::domain::SessionState;
use crate::sandbox_metadata;
use crate::store::{Consistency, ProjectRecord, StoreError};
use crate::team_keys::E2bAccount;

/// Conflicts tolerated before giving up and letting E2B redeliver.
const MAX_ATTEMPTS: usize = 4;

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

/// What an acknowledged delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Receipt {
    /// Written: `transitioned` says whether the state moved (otherwise usage, timeout or the
    /// event time alone were recorded).
    Applied {
        state: Option<SessionState>,
        transitioned: bool,
    },
    /// This event was applied before.
    Duplicate,
    Ignored {
        reason: Ignored,
    },
    /// No project Sandman knows has this sandbox.
    UnknownSandbox,
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
        let Some(mut record) = self.session_of(verified).await? else {
            return Ok(Receipt::UnknownSandbox);
        };
        self.check_served(account, &record.project.key()).await?;
        let rules = Rules {
            stuck_after: self.config.enforcer.stuck_after,
        };
        for _ in 0..MAX_ATTEMPTS {
            let write = match decide(&record, event, &verified.dedupe_id, self.now(), &rules) {
                Decision::Ignore(reason) => return Ok(Receipt::Ignored { reason }),
                Decision::Write(write) => write,
            };
            match self.store.write_session(&write).await {
                Ok(written) => {
                    if write.changes.usage.is_some() {
                        self.after_usage(&write.key, write.at).await;
                    }
                    return Ok(Receipt::Applied {
                        state: written.state,
                        transitioned: write.event.is_some(),
                    });
                }
                Err(StoreError::Duplicate) => return Ok(Receipt::Duplicate),
                // `decide` asked the same state machine first; a refusal here changes nothing either.
                Err(StoreError::Refused(refusal)) => {
                    tracing::warn!(%refusal, "the state machine refused a webhook write");
                    return Ok(Receipt::Ignored {
                        reason: Ignored::NoChange,
                    });
                }
                Err(StoreError::Conflict { current }) => {
                    tracing::debug!(sandbox = %event.sandbox_id, "session changed while applying the event; deciding again");
                    record = match current {
                        Some(current) => *current,
                        None => match self.store.get_project(&write.key, Consistency::Strong).await? {
                            Some(current) => current,
                            None => return Ok(Receipt::UnknownSandbox),
                        },
                    };
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(WebhookError::Contended)
    }

    /// The project whose session the event may concern: by Sandman's metadata on the sandbox, else
    /// by the sandbox id. When the project the metadata names does not hold the sandbox, its id
    /// decides (`bySandbox`, same team only): a live fork's sandbox carries its source's metadata,
    /// and its events are the fork's, never the source's. The account check that follows applies
    /// to the project found.
    async fn session_of(&self, verified: &VerifiedEvent) -> Result<Option<ProjectRecord>, StoreError> {
        let sandbox_id = &verified.event.sandbox_id;
        match sandbox_metadata::owner(&verified.event.metadata) {
            Some((key, _)) => {
                let named = self.store.get_project(&key, Consistency::Strong).await?;
                self.store.holder_of(&key, named, sandbox_id).await
            }
            None => self.store.find_by_sandbox(sandbox_id).await,
        }
    }
}
