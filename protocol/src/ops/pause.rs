//! Pausing a running sandbox: the API's pause and the idle enforcer's both come here.

use time::OffsetDateTime;

use super::claim::{Claim, Claimed, claim};
use super::{project, snapshot};
use crate::domain::{Actor, ProjectKey, SessionEvent, SessionState, SnapshotKind};
use crate::e2b::{E2bError, SandboxState};
use crate::error::{Error, StoreError};
use crate::port::Port;
use crate::record::{FailureCount, Field, ProjectRecord, SessionChanges, SessionWrite};

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

/// Claims PAUSING, then pauses in E2B (a snapshot first when asked), all within one claim lease:
/// the enforcer's pauses too, so a lapsed lease always means the claimant is gone.
pub async fn pause<P: Port>(port: &P, request: PauseRequest) -> Result<PauseOutcome, Error> {
    port.within_lease(pause_claimed(port, request)).await
}

async fn pause_claimed<P: Port>(port: &P, request: PauseRequest) -> Result<PauseOutcome, Error> {
    // Resolved before the claim: a missing key must not leave the session PAUSING.
    let account = port.account(&request.key.team).await?;
    let now = port.now();
    let write = SessionWrite {
        key: request.key.clone(),
        expected_version: request.expected_version,
        from: Some(SessionState::Running),
        event: Some(SessionEvent::Pause),
        actor: request.actor,
        cause: request.cause.clone(),
        at: now,
        changes: SessionChanges::default(),
        idle_by: request.idle_by,
        dedupe: None,
        hold: None,
        live_limit: None,
    };
    let Claim::Won(mut claimed) = claim(port, &write).await? else {
        return Ok(PauseOutcome::LostRace);
    };
    if request.snapshot_first {
        let saved = match project(port, &request.key).await {
            Ok(record) => snapshot::create_snapshot(
                port,
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
    let outcome = match port.pause(&account, &request.sandbox_id).await {
        Ok(()) => PauseOutcome::Paused,
        Err(E2bError::NotFound) => PauseOutcome::Gone,
        // A 409 (already pausing or paused), or an answer that may hide a pause E2B did: what E2B
        // says now is recorded. Rolled back only when E2B says it runs; when E2B cannot be asked
        // either, the claim is left to its lease, whose settler asks again.
        Err(err) if err.is_conflict() || err.may_have_taken_effect() => {
            match port.get_sandbox(&account, &request.sandbox_id).await {
                Ok(detail) if detail.state == SandboxState::Paused => PauseOutcome::AlreadyPaused,
                Ok(_) => PauseOutcome::Failed(err),
                Err(E2bError::NotFound) => PauseOutcome::Gone,
                Err(_) => return Err(err.into()),
            }
        }
        Err(err) => PauseOutcome::Failed(err),
    };
    record_pause(&mut claimed, &request, &outcome).await?;
    Ok(outcome)
}

/// What E2B answered the pause, recorded on the claimed session.
async fn record_pause<P: Port>(
    claimed: &mut Claimed<'_, P>,
    request: &PauseRequest,
    outcome: &PauseOutcome,
) -> Result<(), Error> {
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

/// What a user's pause did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserPause {
    Paused,
    AlreadyPaused,
    /// E2B no longer had the sandbox: the session is now KILLED.
    Gone,
}

/// A user's pause of the project's sandbox: paused if it runs; already paused is an answer, not
/// an error, given only once E2B confirms it; any other state (or a race lost to another writer)
/// is a conflict.
pub async fn pause_by_user<P: Port>(port: &P, key: &ProjectKey) -> Result<UserPause, Error> {
    let record = project(port, key).await?;
    if let (Some(SessionState::Paused), Some(sandbox_id)) = (record.state(), record.sandbox_id()) {
        if !runs_though_paused(port, &record, sandbox_id).await? {
            return Ok(UserPause::AlreadyPaused);
        }
        return pause_running(port, &project(port, key).await?).await;
    }
    pause_running(port, &record).await
}

/// The table says PAUSED; E2B is asked before that is the answer: a resume whose answer was lost,
/// or E2B's auto-resume, can run the sandbox unseen. When E2B runs it, the session is recorded
/// RUNNING (as the reconciler would), to be paused as asked.
async fn runs_though_paused<P: Port>(port: &P, record: &ProjectRecord, sandbox_id: &str) -> Result<bool, Error> {
    let key = record.project.key();
    let account = port.account(&key.team).await?;
    match port.get_sandbox(&account, sandbox_id).await {
        Ok(detail) if detail.state == SandboxState::Running => {}
        // Paused, or gone: either way E2B does not run it.
        Ok(_) | Err(E2bError::NotFound) => return Ok(false),
        Err(err) => return Err(err.into()),
    }
    let write = SessionWrite {
        key: key.clone(),
        expected_version: record.version,
        from: Some(SessionState::Paused),
        event: Some(SessionEvent::Running),
        actor: Actor::User,
        cause: "pause asked: E2B runs the sandbox the table had paused".into(),
        at: port.now(),
        changes: SessionChanges::default(),
        idle_by: None,
        dedupe: None,
        hold: None,
        live_limit: None,
    };
    match port.write(&write).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict { .. }) => Err(changed_meanwhile()),
        Err(err) => Err(err.into()),
    }
}

fn changed_meanwhile() -> Error {
    Error::Conflict("the sandbox changed while pausing it; try again".into())
}

async fn pause_running<P: Port>(port: &P, record: &ProjectRecord) -> Result<UserPause, Error> {
    let key = &record.project.key();
    match (record.state(), record.sandbox_id()) {
        (Some(SessionState::Running), Some(sandbox_id)) => {
            let request = PauseRequest {
                key: key.clone(),
                expected_version: record.version,
                sandbox_id: sandbox_id.to_owned(),
                actor: Actor::User,
                cause: "paused by user".into(),
                idle_by: None,
                snapshot_first: false,
            };
            match pause(port, request).await? {
                PauseOutcome::Paused => Ok(UserPause::Paused),
                PauseOutcome::AlreadyPaused => Ok(UserPause::AlreadyPaused),
                PauseOutcome::Gone => Ok(UserPause::Gone),
                PauseOutcome::LostRace => Err(changed_meanwhile()),
                PauseOutcome::Failed(err) => Err(Error::E2b(err)),
            }
        }
        (Some(SessionState::Paused), _) => Ok(UserPause::AlreadyPaused),
        (state, _) => Err(Error::Conflict(format!(
            "the sandbox is {}, not running",
            state.map_or("not open", SessionState::as_str)
        ))),
    }
}
