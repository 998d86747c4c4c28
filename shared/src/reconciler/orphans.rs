//! E2B reports a Sandman sandbox that is not a RUNNING session's current sandbox: the table is
//! behind (it says PAUSED), or no session wants the sandbox (an orphan, handled per policy).

use tokio::time::Instant;

use super::correct::Correction;
use super::decide::{self, Finding};
use super::view::{E2bView, Listed};
use super::{OrphanAction, Outcome, error};
use crate::Sandman;
use crate::config::OrphanPolicy;
use crate::domain::{SessionEvent, SessionState};
use crate::e2b::{E2bError, SandboxState};
use crate::store::{Consistency, SessionChanges};

impl Sandman {
    pub(super) async fn check_listed(&self, listed: &Listed, view: &E2bView, deadline: Instant) -> Outcome {
        let policy = self.config.enforcer.orphan_policy;
        // A paused orphan costs no compute, and pausing it again changes nothing.
        if listed.sandbox.state == SandboxState::Paused && policy == OrphanPolicy::Pause {
            return Outcome::Consistent;
        }
        if Instant::now() >= deadline {
            return Outcome::Skipped;
        }
        let sandbox_id = listed.sandbox.sandbox_id.as_str();
        // A live fork's sandbox names its source: when the named project does not hold it, the
        // project that does (by sandbox id, same team) is the one to compare with.
        let named = match self.store.get_project(&listed.owner, Consistency::Strong).await {
            Ok(named) => self.store.holder_of(&listed.owner, named, sandbox_id).await,
            Err(err) => Err(err),
        };
        let record = match named {
            Ok(record) => record,
            Err(err) => {
                return error(
                    "reading the project of a listed sandbox failed",
                    &listed.owner,
                    &err.into(),
                );
            }
        };
        match decide::classify(record.as_ref(), sandbox_id, listed.sandbox.state) {
            Finding::Consistent | Finding::InTransit => Outcome::Consistent,
            Finding::Orphan(reason) => self.orphan(listed, view, reason, policy).await,
            Finding::TableSaysPaused => {
                let Some(record) = record else {
                    return Outcome::Consistent;
                };
                // Confirm first: the list may predate a pause that just happened.
                match view.accounts[listed.account].1.get_sandbox(sandbox_id).await {
                    Ok(detail) if detail.state == SandboxState::Running => {}
                    Ok(_) | Err(E2bError::NotFound) => return Outcome::Consistent,
                    Err(err) => {
                        return error(
                            "confirming a sandbox's state with E2B failed",
                            &listed.owner,
                            &err.into(),
                        );
                    }
                }
                // The table follows E2B; the idle enforcer then pauses it if it is idle.
                let cause = "E2B reports the sandbox running".to_string();
                let (key, version) = (record.project.key(), record.version);
                self.correct(Correction {
                    key: &key,
                    version,
                    from: SessionState::Paused,
                    steps: vec![SessionEvent::Running],
                    cause,
                    changes: SessionChanges::default(),
                    stuck: false,
                })
                .await
            }
        }
    }

    async fn orphan(&self, listed: &Listed, view: &E2bView, reason: &'static str, policy: OrphanPolicy) -> Outcome {
        let sandbox_id = listed.sandbox.sandbox_id.as_str();
        let e2b = &view.accounts[listed.account].1;
        let state = listed.sandbox.state.as_str();
        let (action, result) = match (policy, listed.sandbox.state) {
            (OrphanPolicy::Pause, SandboxState::Running) => (OrphanAction::Paused, e2b.pause(sandbox_id).await),
            (OrphanPolicy::Kill, _) => (OrphanAction::Killed, e2b.kill(sandbox_id).await),
            _ => (OrphanAction::Reported, Ok(())),
        };
        match result {
            Ok(()) | Err(E2bError::NotFound | E2bError::Conflict { .. }) => {
                tracing::warn!(project = %listed.owner, sandbox_id, state, reason, action = ?action, "orphan sandbox");
                Outcome::Orphan(action)
            }
            Err(err) => error("acting on an orphan sandbox failed", &listed.owner, &err.into()),
        }
    }
}
