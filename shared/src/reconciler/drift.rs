//! The table says RUNNING: does E2B still run that sandbox?

use tokio::time::Instant;

use super::correct::Correction;
use super::view::E2bView;
use super::{Outcome, decide, error};
use crate::Sandman;
use crate::domain::SessionState;
use crate::e2b::{E2bError, SandboxState};
use crate::store::{IdleCandidate, SessionChanges};

impl Sandman {
    pub(super) async fn check_running(&self, session: &IdleCandidate, view: &E2bView, deadline: Instant) -> Outcome {
        let Some(sandbox_id) = session.sandbox_id.as_deref() else {
            tracing::error!(project = %session.key, "running session without a sandbox id");
            return Outcome::Error;
        };
        if view.state_of(sandbox_id) == Some(SandboxState::Running) {
            return Outcome::Consistent;
        }
        let e2b = match self.e2b_for(&session.key).await {
            Ok(e2b) => e2b,
            Err(err) => return error("no E2B account for a running session", &session.key, &err),
        };
        if !view.covers(&e2b) || Instant::now() >= deadline {
            return Outcome::Skipped;
        }
        let observed = match e2b.get_sandbox(sandbox_id).await {
            Ok(detail) => Some(detail.state),
            Err(E2bError::NotFound) => None,
            Err(err) => {
                return error(
                    "confirming a sandbox's state with E2B failed",
                    &session.key,
                    &err.into(),
                );
            }
        };
        let cause = match observed {
            Some(SandboxState::Running) => return Outcome::Consistent,
            Some(SandboxState::Paused) => "E2B reports the sandbox paused",
            None => "E2B no longer has the sandbox",
        };
        self.correct(Correction {
            key: &session.key,
            version: session.version,
            from: SessionState::Running,
            steps: decide::steps(SessionState::Running, observed),
            cause: cause.into(),
            changes: SessionChanges::default(),
            stuck: false,
        })
        .await
    }
}
