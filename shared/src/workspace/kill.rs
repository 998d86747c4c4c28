//! Killing a project's sandbox, saving a snapshot first when asked or when the project says so.

use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionEvent, SessionState, Snapshot, SnapshotKind};
use crate::e2b::E2bError;
use crate::error::Error;
use crate::store::{SessionChanges, SessionWrite, StoreError, Written};

#[derive(Debug, Clone)]
pub struct Killed {
    pub snapshot: Option<Snapshot>,
    /// There was nothing to kill.
    pub already: bool,
}

impl Sandman {
    /// `snapshot`: `Some(true)` requires a snapshot (the kill is abandoned if it fails), `Some(false)`
    /// skips it, `None` follows the project's `snapshotBeforeKill` (best effort).
    pub async fn kill(&self, key: &ProjectKey, snapshot: Option<bool>, actor: Actor) -> Result<Killed, Error> {
        self.kill_because(key, snapshot, actor, None).await
    }

    /// As `kill`; `reason` (a policy's) names the kill in the lifecycle log.
    pub async fn kill_because(
        &self,
        key: &ProjectKey,
        snapshot: Option<bool>,
        actor: Actor,
        reason: Option<&str>,
    ) -> Result<Killed, Error> {
        let (requested, cause) = match reason {
            Some(reason) => (format!("{reason}: kill requested"), reason.to_owned()),
            None if actor == Actor::User => ("kill requested".into(), "killed by user".into()),
            None => ("kill requested".into(), "killed".into()),
        };
        let record = self.project(key).await?;
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
        let e2b = self.e2b_for(key)?;
        let claim = SessionWrite::new(&record, actor, requested, self.now()).event(SessionEvent::Stop);
        let claimed = match self.store.write_session(&claim).await {
            Ok(written) => written,
            Err(StoreError::Conflict { .. }) => {
                return Err(Error::Conflict("another request is changing the sandbox".into()));
            }
            Err(err) => return Err(err.into()),
        };
        let was = record.state();
        let required = snapshot == Some(true);
        let saved = if snapshot.unwrap_or(record.project.snapshot_before_kill) {
            match self
                .create_snapshot(&record, SnapshotKind::AutoBeforeKill, "saved before kill".into())
                .await
            {
                Ok(saved) => Some(saved),
                Err(err) if required => {
                    self.abandon_kill(
                        key,
                        claimed,
                        was,
                        actor,
                        "kill abandoned: snapshot failed",
                        &err.public_message(),
                    )
                    .await?;
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
        match e2b.kill(&sandbox.sandbox_id).await {
            Ok(()) | Err(E2bError::NotFound) => {
                self.settle(
                    SessionWrite::following(key, claimed, actor, cause, self.now()).event(SessionEvent::Killed),
                )
                .await?;
                Ok(Killed {
                    snapshot: saved,
                    already: false,
                })
            }
            Err(err) => {
                let cause = format!("kill failed: {}", err.kind());
                self.abandon_kill(key, claimed, was, actor, &cause, err.public_message())
                    .await?;
                Err(err.into())
            }
        }
    }

    /// Rolls a STOPPING session back to the state it was killed from: `FAILED` returns it to RUNNING,
    /// and a sandbox that was paused (and that E2B did not kill) is recorded as PAUSED again.
    async fn abandon_kill(
        &self,
        key: &ProjectKey,
        claimed: Written,
        was: Option<SessionState>,
        actor: Actor,
        cause: &str,
        error: &str,
    ) -> Result<(), Error> {
        let back = SessionWrite::following(key, claimed, actor, cause, self.now())
            .event(SessionEvent::Failed)
            .changes(SessionChanges {
                last_error: Some(Some(error.to_string())),
                ..SessionChanges::default()
            });
        let written = self.settle(back).await?;
        if was == Some(SessionState::Paused) {
            let paused = SessionWrite::following(
                key,
                written,
                actor,
                "kill abandoned; the sandbox is still paused",
                self.now(),
            )
            .event(SessionEvent::Paused);
            self.settle(paused).await?;
        }
        Ok(())
    }
}
