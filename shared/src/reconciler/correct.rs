//! Writing a correction: one or two conditional session writes by the reconciler.

use super::Outcome;
use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionEvent, SessionState};
use crate::store::{FailureCount, SessionChanges, SessionWrite, StoreError};

/// `steps` to apply, in order, to a session read at (`from`, `version`).
pub(super) struct Correction<'a> {
    pub key: &'a ProjectKey,
    pub version: u64,
    pub from: SessionState,
    pub steps: Vec<SessionEvent>,
    /// Why, after "reconciled: " in the lifecycle log.
    pub cause: String,
    /// Carried by the first write.
    pub changes: SessionChanges,
    /// A stuck transitional session, rather than drift between settled states.
    pub stuck: bool,
}

impl Sandman {
    /// A conflict means another writer moved the session since it was read: `Raced`, and the
    /// next run looks again.
    pub(super) async fn correct(&self, correction: Correction<'_>) -> Outcome {
        let Correction {
            key,
            version,
            from,
            steps,
            cause,
            changes,
            stuck,
        } = correction;
        if steps.is_empty() {
            return Outcome::Consistent;
        }
        let mut at = (version, Some(from));
        let mut first = Some(changes);
        for event in steps {
            let mut changes = first.take().unwrap_or_default();
            if matches!(event, SessionEvent::Paused | SessionEvent::Killed) {
                changes.failures = FailureCount::Reset;
            }
            let write = SessionWrite {
                key: key.clone(),
                expected_version: at.0,
                from: at.1,
                event: Some(event),
                actor: Actor::Reconciler,
                cause: format!("reconciled: {cause}"),
                at: self.now(),
                changes,
                idle_by: None,
                dedupe: None,
                hold: None,
            };
            match self.store.write_session(&write).await {
                Ok(written) => at = (written.version, written.state),
                Err(StoreError::Conflict { .. }) => return Outcome::Raced,
                Err(err) => {
                    tracing::error!(project = %key, error = %err, "reconciler write failed");
                    return Outcome::Error;
                }
            }
        }
        let to = at.1.unwrap_or(SessionState::Killed);
        tracing::warn!(project = %key, from = from.as_str(), to = to.as_str(), cause, "reconciled");
        Outcome::Repaired { to, stuck }
    }
}
