//! A new sandbox for a project: the newest snapshots first (or a chosen one and those older),
//! then the template. The ladder steps down only after a definite refusal; after an ambiguous
//! failure it first looks up what the failed create made.

use super::claim::{Claim, Claimed};
use super::open::{OpenPath, Step};
use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SandboxRef, SessionEvent, Snapshot, SnapshotId, SnapshotStatus};
use crate::e2b::{E2b, E2bError, NewSandbox, SandboxNetwork};
use crate::error::Error;
use crate::sandbox_metadata;
use crate::store::{FailureCount, Field, ProjectRecord, SessionChanges, SessionWrite};

/// How many snapshots the ladder tries before the template.
const RESTORE_ATTEMPTS: usize = 3;

/// What the ladder made: a sandbox, the snapshot it came from (`None`: the template), and why a
/// rung was passed over.
pub(super) struct Started {
    pub sandbox: SandboxRef,
    pub restored_from: Option<SnapshotId>,
    pub fallback_reason: Option<String>,
}

impl Started {
    pub(super) fn path(&self) -> OpenPath {
        match self.restored_from {
            Some(_) => OpenPath::Restored,
            None => OpenPath::Created,
        }
    }

    /// The write that records it: RUNNING with the new sandbox, the session no longer replacing one.
    pub(super) fn changes(&self, now: time::OffsetDateTime, project: &crate::domain::Project) -> SessionChanges {
        SessionChanges {
            sandbox: Some(self.sandbox.clone()),
            last_active_at: Some(now),
            timeout_at: Some(now + project.sandbox_timeout),
            restored_from: Field::set_or_clear(self.restored_from.clone()),
            replaces_session: Field::Clear,
            failures: FailureCount::Reset,
            last_error: Field::Clear,
            ..SessionChanges::default()
        }
    }

    pub(super) fn cause(&self) -> &'static str {
        match self.restored_from {
            Some(_) => "restored from snapshot",
            None => "created from template",
        }
    }
}

/// The rungs a new sandbox is tried from.
#[derive(Debug, Clone)]
pub(super) enum Ladder {
    /// An open: the project's newest snapshots, then its template.
    Newest,
    /// A restore of a chosen snapshot: it runs from that snapshot or fails, nothing stands in.
    Exactly(Snapshot),
    /// A fork's first open: the source's snapshot, then the template.
    First(Snapshot),
}

impl Sandman {
    /// Starts a project that has no sandbox (never had one, or it was killed or lost): from
    /// `preferred` (a fork's source snapshot) or the project's newest snapshots, else the template.
    pub(super) async fn start_fresh(
        &self,
        record: ProjectRecord,
        actor: Actor,
        preferred: Option<Snapshot>,
        cause: &str,
    ) -> Result<Step, Error> {
        let key = record.project.key();
        // A project stored before its template was refused must not reach E2B with it.
        self.config.templates.check(&key.team, &record.project.template_id)?;
        let e2b = self.e2b_for(&key).await?;
        let session_id = ulid::Ulid::new().to_string();
        let claim = SessionWrite::new(&record, actor, cause, self.now())
            .event(SessionEvent::Start)
            .changes(SessionChanges {
                session_id: Some(session_id.clone()),
                restored_from: Field::Clear,
                ..SessionChanges::default()
            });
        let Claim::Won(mut claimed) = self.claim(&claim).await? else {
            return Ok(Step::Lost);
        };
        let ladder = preferred.map_or(Ladder::Newest, Ladder::First);
        match self.create_ladder(&e2b, &record, &session_id, ladder).await? {
            Ok(started) => Ok(Step::Done(Box::new(
                self.record_started(&mut claimed, &record, started).await?,
            ))),
            Err(err) => {
                let cause = format!("create failed: {}", err.kind());
                claimed
                    .failed(cause, err.public_message(), SessionChanges::default())
                    .await?;
                Err(err.into())
            }
        }
    }

    pub(super) async fn record_started(
        &self,
        claimed: &mut Claimed<'_>,
        record: &ProjectRecord,
        started: Started,
    ) -> Result<super::Opened, Error> {
        let changes = started.changes(self.now(), &record.project);
        claimed.running(started.cause(), changes).await?;
        let key = claimed.key().clone();
        self.opened(started.path(), &key, started.restored_from, started.fallback_reason)
            .await
    }

    /// Creates the session's sandbox down `ladder`'s rungs. `Ok(Err)`: every rung refused (the
    /// last one's error); `Err`: an outcome could not be looked up, and the claim is left to its lease.
    pub(super) async fn create_ladder(
        &self,
        e2b: &E2b,
        record: &ProjectRecord,
        session_id: &str,
        ladder: Ladder,
    ) -> Result<Result<Started, E2bError>, Error> {
        let key = record.project.key();
        let project = &record.project;
        let sandbox_for = |template_id: &str| NewSandbox {
            template_id: template_id.to_string(),
            timeout: project.sandbox_timeout,
            auto_pause: true,
            metadata: sandbox_metadata::for_session(&key, session_id),
            env_vars: Default::default(),
            secure: true,
            network: SandboxNetwork {
                allow_public_traffic: project.public_traffic,
            },
        };
        let mut fallback_reason = None;
        let mut refused = None;
        let template_too = !matches!(ladder, Ladder::Exactly(_));
        for snapshot in self.restore_candidates(&key, ladder).await? {
            let new = sandbox_for(&snapshot.e2b_snapshot_id);
            match self.try_create(e2b, &key, session_id, &new).await? {
                Ok(sandbox) => {
                    return Ok(Ok(Started {
                        sandbox,
                        restored_from: Some(snapshot.snapshot_id),
                        fallback_reason,
                    }));
                }
                Err(err) => {
                    tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, error = %err, "restore failed; trying the next rung");
                    fallback_reason = Some(format!(
                        "restoring snapshot {} failed: {}",
                        snapshot.snapshot_id,
                        err.public_message()
                    ));
                    refused = Some(err);
                }
            }
        }
        if !template_too {
            return Ok(Err(refused.unwrap_or(E2bError::NotFound)));
        }
        let from_template = self
            .try_create(e2b, &key, session_id, &sandbox_for(&project.template_id))
            .await?;
        Ok(from_template.map(|sandbox| Started {
            sandbox,
            restored_from: None,
            fallback_reason,
        }))
    }

    /// One rung. After an ambiguous failure the sandbox the create may have made is looked up by
    /// the session's metadata; only a definite refusal (or nothing found) is `Ok(Err)`.
    async fn try_create(
        &self,
        e2b: &E2b,
        key: &ProjectKey,
        session_id: &str,
        new: &NewSandbox,
    ) -> Result<Result<SandboxRef, E2bError>, Error> {
        match e2b.create_sandbox(new).await {
            Ok(sandbox) => Ok(Ok(sandbox.into())),
            Err(err) if err.may_have_taken_effect() => match self.sandbox_of_session(e2b, key, session_id).await? {
                Some((sandbox, _)) => Ok(Ok(sandbox)),
                None => Ok(Err(err)),
            },
            Err(err) => Ok(Err(err)),
        }
    }

    async fn restore_candidates(&self, key: &ProjectKey, ladder: Ladder) -> Result<Vec<Snapshot>, Error> {
        Ok(match ladder {
            Ladder::Newest => {
                let newest = self.store.list_snapshots(key, None, 20).await?.items;
                newest
                    .into_iter()
                    .filter(|s| s.status == SnapshotStatus::Ready)
                    .take(RESTORE_ATTEMPTS)
                    .collect()
            }
            Ladder::Exactly(chosen) | Ladder::First(chosen) => vec![chosen],
        })
    }
}
