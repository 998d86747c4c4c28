//! Pausing a running sandbox: the API's pause and the idle enforcer's both come here.

use time::OffsetDateTime;

use super::claim::{Claim, Claimed};
use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionEvent, SnapshotKind};
use crate::e2b::{E2bError, SandboxState};
use crate::error::Error;
use crate::store::{FailureCount, Field, SessionChanges, SessionWrite};

#[derive(Debug, Clone)]
pub struct PauseRequest {
    pub key: ProjectKey,
    /// The version read with the session in RUNNING.
    pub expected_version: u64,
    pub sandbox_id: String,
    pub actor: Actor,
    pub cause: String,
    /// The idle enforcer's claim: only if the idle deadline is still at or before this.
    pub idle_by: Option<OffsetDateTime>,
    /// Save a snapshot between the claim and the pause (the project's `snapshotOnIdle`).
    pub snapshot_first: bool,
}

#[derive(Debug)]
pub enum PauseOutcome {
    Paused,
    /// E2B had paused it already (409 and a paused sandbox).
    AlreadyPaused,
    /// E2B no longer has the sandbox: the session is now KILLED.
    Gone,
    /// The claim failed: activity or another writer changed the session first. Nothing was called.
    LostRace,
    /// E2B refused or failed; the session is back in RUNNING with the error recorded.
    Failed(E2bError),
}

impl Sandman {
    pub async fn pause(&self, request: PauseRequest) -> Result<PauseOutcome, Error> {
        // Resolved before the claim: a missing key must not leave the session PAUSING.
        let e2b = self.e2b_for(&request.key).await?;
        let now = self.now();
        let claim = SessionWrite {
            key: request.key.clone(),
            expected_version: request.expected_version,
            from: Some(crate::domain::SessionState::Running),
            event: Some(SessionEvent::Pause),
            actor: request.actor,
            cause: request.cause.clone(),
            at: now,
            changes: SessionChanges::default(),
            idle_by: request.idle_by,
            dedupe: None,
            hold: None,
        };
        let Claim::Won(mut claimed) = self.claim(&claim).await? else {
            return Ok(PauseOutcome::LostRace);
        };
        if request.snapshot_first {
            let saved = match self.project(&request.key).await {
                Ok(record) => self
                    .create_snapshot(
                        &record,
                        SnapshotKind::AutoBeforePause,
                        "saved before an idle pause".into(),
                    )
                    .await
                    .map(drop),
                Err(err) => Err(err),
            };
            if let Err(err) = saved {
                tracing::warn!(project = %request.key, error = %err, "snapshot before pause failed; pausing anyway");
            }
        }
        let outcome = match e2b.pause(&request.sandbox_id).await {
            Ok(()) => PauseOutcome::Paused,
            Err(E2bError::NotFound) => PauseOutcome::Gone,
            Err(err @ E2bError::Conflict { .. }) => match e2b.get_sandbox(&request.sandbox_id).await {
                Ok(detail) if detail.state == SandboxState::Paused => PauseOutcome::AlreadyPaused,
                Err(E2bError::NotFound) => PauseOutcome::Gone,
                _ => PauseOutcome::Failed(err),
            },
            Err(err) => PauseOutcome::Failed(err),
        };
        record_pause(&mut claimed, &request, &outcome).await?;
        Ok(outcome)
    }
}

/// What E2B answered the pause, recorded on the claimed session.
async fn record_pause(claimed: &mut Claimed<'_>, request: &PauseRequest, outcome: &PauseOutcome) -> Result<(), Error> {
    match outcome {
        PauseOutcome::Paused | PauseOutcome::AlreadyPaused => {
            let changes = SessionChanges {
                failures: FailureCount::Reset,
                last_error: Field::Clear,
                ..SessionChanges::default()
            };
            claimed.paused(request.cause.clone(), changes).await
        }
        PauseOutcome::Gone => claimed.killed("sandbox no longer exists in E2B").await,
        PauseOutcome::Failed(err) => {
            let changes = SessionChanges {
                failures: FailureCount::Increment,
                ..SessionChanges::default()
            };
            let cause = format!("pause failed: {}", err.kind());
            claimed.failed(cause, err.public_message(), changes).await
        }
        PauseOutcome::LostRace => Ok(()),
    }
}
