//! Killing a project's sandbox, saving a snapshot first when asked or when the project says so.

use super::claim::{Claim, Claimed, claim};
use super::{project, snapshot};
use crate::domain::{Actor, ProjectKey, SessionEvent, SessionState, Snapshot, SnapshotKind};
use crate::e2b::E2bError;
use crate::error::Error;
use crate::port::Port;
use crate::record::{ProjectRecord, SessionChanges, SessionWrite};

#[derive(Debug, Clone)]
pub struct Killed {
    pub snapshot: Option<Snapshot>,
    /// There was nothing to kill.
    pub already: bool,
}

/// Whether a kill saves a snapshot first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotFirst {
    /// The kill is abandoned if the snapshot fails.
    Required,
    Skip,
    /// The project's `snapshotBeforeKill`, best effort.
    ProjectDefault,
}

/// `Some(true)` / `Some(false)` / `None`, as the API's optional `snapshot` query reads.
impl From<Option<bool>> for SnapshotFirst {
    fn from(asked: Option<bool>) -> Self {
        match asked {
            Some(true) => SnapshotFirst::Required,
            Some(false) => SnapshotFirst::Skip,
            None => SnapshotFirst::ProjectDefault,
        }
    }
}

/// Kills the project's sandbox; `reason` (a policy's) names the kill in the lifecycle log.
pub async fn kill<P: Port>(
    port: &P,
    key: &ProjectKey,
    snapshot: SnapshotFirst,
    actor: Actor,
    reason: Option<&str>,
) -> Result<Killed, Error> {
    port.within_lease(async {
        let record = project(port, key).await?;
        kill_claimed(port, record, snapshot, actor, reason).await
    })
    .await
}

/// As [`kill`], of the project as `record` read it: a claim lost to a write since is `Conflict`,
/// so a policy's kill (an archive, a handoff) never takes a sandbox someone reopened after its read.
pub async fn kill_as_read<P: Port>(
    port: &P,
    record: ProjectRecord,
    snapshot: SnapshotFirst,
    actor: Actor,
    reason: Option<&str>,
) -> Result<Killed, Error> {
    port.within_lease(kill_claimed(port, record, snapshot, actor, reason))
        .await
}

/// The claim, the snapshot before it and the kill, within one claim lease.
async fn kill_claimed<P: Port>(
    port: &P,
    record: ProjectRecord,
    snapshot: SnapshotFirst,
    actor: Actor,
    reason: Option<&str>,
) -> Result<Killed, Error> {
    let key = &record.project.key();
    let (requested, cause) = match reason {
        Some(reason) => (format!("{reason}: kill requested"), reason.to_owned()),
        None if actor == Actor::User => ("kill requested".into(), "killed by user".into()),
        None => ("kill requested".into(), "killed".into()),
    };
    match record.state() {
        Some(SessionState::Running | SessionState::Paused) => {}
        None | Some(SessionState::Killed) => {
            return Ok(Killed {
                snapshot: None,
                already: true,
            });
        }
        Some(state) => {
            return Err(Error::Conflict(format!(
                "the sandbox is {}; try again shortly",
                state.as_str()
            )));
        }
    }
    let Some(sandbox) = record.session.as_ref().and_then(|s| s.sandbox.clone()) else {
        return Err(Error::Conflict("the session has no sandbox id".into()));
    };
    let account = port.account(&key.team).await?;
    let write = SessionWrite::new(&record, actor, requested, port.now()).event(SessionEvent::Stop);
    let Claim::Won(mut claimed) = claim(port, &write).await? else {
        return Err(Error::Conflict("another request is changing the sandbox".into()));
    };
    let was = record.state();
    let (wanted, required) = match snapshot {
        SnapshotFirst::Required => (true, true),
        SnapshotFirst::Skip => (false, false),
        SnapshotFirst::ProjectDefault => (record.project.snapshot_before_kill, false),
    };
    // E2B snapshots a running sandbox: a paused one is woken for it first (the table says
    // STOPPING meanwhile, so nobody takes it for a sandbox to use).
    let mut woken = false;
    let saved = if wanted {
        let woke = match was {
            Some(SessionState::Paused) => port
                .connect(&account, &sandbox.sandbox_id, record.project.sandbox_timeout)
                .await
                .map(|_| woken = true)
                .map_err(Error::from),
            _ => Ok(()),
        };
        let taken = match woke {
            Ok(()) => {
                snapshot::create_snapshot(port, &record, SnapshotKind::AutoBeforeKill, "saved before kill".into()).await
            }
            Err(err) => Err(err),
        };
        match taken {
            Ok(saved) => Some(saved),
            // Woken to be saved, the paused sandbox was gone: E2B ended it unseen (its `killed`
            // lost). Nothing is left to save; the session records what E2B did.
            Err(Error::E2b(E2bError::NotFound)) if !woken && was == Some(SessionState::Paused) => {
                claimed
                    .killed(format!("{cause}: E2B no longer had the sandbox"))
                    .await?;
                return Ok(Killed {
                    snapshot: None,
                    already: true,
                });
            }
            Err(err) if required => {
                let cause = "kill abandoned: snapshot failed";
                let was = if woken { Some(SessionState::Running) } else { was };
                abandon(&mut claimed, was, cause, &err.public_message()).await?;
                return Err(err);
            }
            Err(err) => {
                tracing::warn!(project = %key, error = %err, "snapshot before kill failed; killing anyway");
                None
            }
        }
    } else {
        None
    };
    match port.kill(&account, &sandbox.sandbox_id).await {
        Ok(()) | Err(E2bError::NotFound) => {
            claimed.killed(cause).await?;
            Ok(Killed {
                snapshot: saved,
                already: false,
            })
        }
        Err(err) if err.may_have_taken_effect() => match port.get_sandbox(&account, &sandbox.sandbox_id).await {
            // The kill took effect before its answer was lost.
            Err(E2bError::NotFound) => {
                claimed.killed(cause).await?;
                Ok(Killed {
                    snapshot: saved,
                    already: false,
                })
            }
            Ok(_) => {
                let cause = format!("kill failed: {}", err.kind());
                abandon(&mut claimed, was, &cause, err.public_message()).await?;
                Err(err.into())
            }
            // E2B cannot say: the claim stays for its lease to settle from what E2B reports then.
            Err(_) => Err(err.into()),
        },
        Err(err) => {
            let cause = format!("kill failed: {}", err.kind());
            abandon(&mut claimed, was, &cause, err.public_message()).await?;
            Err(err.into())
        }
    }
}

/// Rolls a STOPPING session back to the state it was killed from: `FAILED` returns it to RUNNING,
/// and a sandbox that was paused (and that E2B did not kill) is recorded as PAUSED again.
async fn abandon<P: Port>(
    claimed: &mut Claimed<'_, P>,
    was: Option<SessionState>,
    cause: &str,
    error: &str,
) -> Result<(), Error> {
    claimed.failed(cause, error, SessionChanges::default()).await?;
    if was == Some(SessionState::Paused) {
        claimed
            .paused("kill abandoned; the sandbox is still paused", SessionChanges::default())
            .await?;
    }
    Ok(())
}
