//! Opening a workspace is get-or-create: running -> return it; paused -> resume it; none or gone ->
//! restore the latest snapshot, falling back to older ones and then to the template. Concurrent
//! opens collapse into one E2B action: only the writer that wins the claim calls E2B.

use serde::Serialize;

use crate::Sandman;
use crate::deadline::{Deadline, LAMBDA_MARGIN, MIN_E2B_CALL};
use crate::domain::CLAIM_LEASE;
use crate::domain::{Actor, SandboxRef, SessionEvent, SessionState, Snapshot, SnapshotId, SnapshotStatus};
use crate::e2b::{E2bError, NewSandbox, SandboxNetwork, SandboxState};
use crate::error::Error;
use crate::sandbox_metadata;
use crate::store::{FailureCount, ProjectRecord, SessionChanges, SessionWrite, StoreError, Written};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpenPath {
    AlreadyRunning,
    Resumed,
    Restored,
    Created,
    /// Another request is starting, resuming or pausing it: poll the status.
    InProgress,
}

#[derive(Debug, Clone)]
pub struct Opened {
    pub path: OpenPath,
    pub record: ProjectRecord,
    pub restored_from: Option<SnapshotId>,
    /// Why an earlier rung of the ladder was passed over (a snapshot that failed to restore).
    pub fallback_reason: Option<String>,
}

/// How many snapshots the ladder tries before the template.
const RESTORE_ATTEMPTS: usize = 3;

enum Claim<T> {
    Won(T),
    Lost,
}

impl Sandman {
    /// Within the caller's deadline and within one claim lease. When the time runs out mid-way the
    /// claim is left to its lease and the answer is `InProgress`: poll the status.
    pub async fn open(&self, key: &crate::domain::ProjectKey, actor: Actor) -> Result<Opened, Error> {
        let within_lease = Deadline::after(CLAIM_LEASE.saturating_sub(LAMBDA_MARGIN));
        match within_lease.scope(self.open_ladder(key, actor)).await {
            Err(Error::E2b(err)) if !Deadline::current_allows(MIN_E2B_CALL) || err.was_not_sent() => {
                tracing::warn!(project = %key, error = %err, "open ran out of time; the claim's lease settles it");
                Ok(Opened {
                    path: OpenPath::InProgress,
                    record: self.project(key).await?,
                    restored_from: None,
                    fallback_reason: None,
                })
            }
            other => other,
        }
    }

    async fn open_ladder(&self, key: &crate::domain::ProjectKey, actor: Actor) -> Result<Opened, Error> {
        for _ in 0..3 {
            let record = self.project(key).await?;
            let step = match record.state() {
                Some(SessionState::Running) => {
                    return Ok(Opened {
                        path: OpenPath::AlreadyRunning,
                        record,
                        restored_from: None,
                        fallback_reason: None,
                    });
                }
                Some(SessionState::Paused) => self.resume_or_replace(record, actor).await?,
                None | Some(SessionState::Killed) => self.start_fresh(record, actor, None, "open").await?,
                Some(_) if record.session.as_ref().is_some_and(|s| s.lease_lapsed(self.now())) => {
                    self.settle_lapsed(&record, actor).await?;
                    continue;
                }
                Some(_) => {
                    return Ok(Opened {
                        path: OpenPath::InProgress,
                        record,
                        restored_from: None,
                        fallback_reason: None,
                    });
                }
            };
            if let Claim::Won(opened) = step {
                return Ok(opened);
            }
        }
        let record = self.project(key).await?;
        Ok(Opened {
            path: OpenPath::InProgress,
            record,
            restored_from: None,
            fallback_reason: None,
        })
    }

    /// Resumes a paused sandbox (user's resume, or activity on a paused sandbox).
    pub async fn resume(&self, key: &crate::domain::ProjectKey, actor: Actor) -> Result<Opened, Error> {
        let record = self.project(key).await?;
        match record.state() {
            Some(SessionState::Paused) => match self.resume_or_replace(record, actor).await? {
                Claim::Won(opened) => Ok(opened),
                Claim::Lost => Err(Error::Conflict("another request is changing the sandbox".into())),
            },
            Some(SessionState::Running) => Ok(Opened {
                path: OpenPath::AlreadyRunning,
                record,
                restored_from: None,
                fallback_reason: None,
            }),
            Some(state) => Err(Error::Conflict(format!(
                "the sandbox is {}, not paused",
                state.as_str()
            ))),
            None => Err(Error::Conflict("the project has no sandbox; open it first".into())),
        }
    }

    /// Replaces the project's sandbox with one restored from `snapshot`, or fails: a restore of a
    /// chosen snapshot never runs from another one or from the template.
    pub async fn restore(
        &self,
        key: &crate::domain::ProjectKey,
        snapshot: &SnapshotId,
        actor: Actor,
    ) -> Result<Opened, Error> {
        let chosen = self.snapshot(key, snapshot).await?;
        // Held before anything changes: from here the pruner cannot take it, and a snapshot already
        // being deleted is refused while the current sandbox still runs.
        let held_until = self.now() + CLAIM_LEASE * 2;
        self.store
            .hold_snapshot(key, &chosen.snapshot_id, held_until)
            .await
            .map_err(|err| match err {
                StoreError::NotFound => Error::Conflict("the snapshot is being deleted".into()),
                other => other.into(),
            })?;
        let record = self.project(key).await?;
        if matches!(record.state(), Some(SessionState::Running | SessionState::Paused)) {
            self.kill(key, None, actor).await?;
        }
        let restored = self.replace_from(key, chosen.clone(), actor).await;
        // Done either way: a restored sandbox's source is protected as in use from here on.
        if let Err(err) = self.store.release_snapshot(key, &chosen.snapshot_id).await {
            tracing::warn!(project = %key, snapshot = %chosen.snapshot_id, error = %err, "the hold lapses on its own");
        }
        restored
    }

    async fn replace_from(
        &self,
        key: &crate::domain::ProjectKey,
        chosen: Snapshot,
        actor: Actor,
    ) -> Result<Opened, Error> {
        let record = self.project(key).await?;
        match self.start_fresh(record, actor, Some(chosen), "restore").await? {
            Claim::Won(opened) => Ok(opened),
            Claim::Lost => Err(Error::Conflict("another request is changing the sandbox".into())),
        }
    }

    async fn resume_or_replace(&self, record: ProjectRecord, actor: Actor) -> Result<Claim<Opened>, Error> {
        let key = record.project.key();
        let Some(sandbox) = record.session.as_ref().and_then(|s| s.sandbox.clone()) else {
            return Err(Error::Conflict("the paused session has no sandbox id".into()));
        };
        // Resolved before any claim: a team without E2B credentials must not leave the session mid-transition.
        let e2b = self.e2b_for(&key)?;
        let claim = SessionWrite::new(&record, actor, "resume requested", self.now()).event(SessionEvent::Resume);
        let Claim::Won(claimed) = self.claim(&claim).await? else {
            return Ok(Claim::Lost);
        };
        let timeout = record.project.sandbox_timeout;
        match e2b.connect(&sandbox.sandbox_id, timeout).await {
            Ok(connected) => {
                let now = self.now();
                let write = SessionWrite::following(&key, claimed, actor, "resumed", now)
                    .event(SessionEvent::Running)
                    .changes(SessionChanges {
                        sandbox: Some(SandboxRef {
                            sandbox_id: connected.sandbox.sandbox_id,
                            domain: connected.sandbox.domain,
                            access_token: connected.sandbox.envd_access_token,
                        }),
                        last_active_at: Some(now),
                        timeout_at: Some(now + timeout),
                        failures: FailureCount::Reset,
                        last_error: Some(None),
                        ..SessionChanges::default()
                    });
                self.settle(write).await?;
                Ok(Claim::Won(self.opened(OpenPath::Resumed, &key, None, None).await?))
            }
            Err(E2bError::NotFound) => {
                let gone = SessionWrite::following(
                    &key,
                    claimed,
                    actor,
                    "paused sandbox no longer exists in E2B",
                    self.now(),
                )
                .event(SessionEvent::Killed);
                self.settle(gone).await?;
                let record = self.project(&key).await?;
                self.start_fresh(record, actor, None, "paused sandbox was gone").await
            }
            Err(err) if err.may_have_taken_effect() => {
                // The connect may have resumed it: record what E2B says, or leave the claim to its lease.
                let after = SessionWrite::following(
                    &key,
                    claimed,
                    actor,
                    format!("resume answered {}", err.kind()),
                    self.now(),
                );
                match e2b.get_sandbox(&sandbox.sandbox_id).await {
                    Ok(detail) if detail.state == SandboxState::Running => {
                        let now = self.now();
                        self.settle(after.event(SessionEvent::Running).changes(SessionChanges {
                            last_active_at: Some(now),
                            timeout_at: Some(now + timeout),
                            failures: FailureCount::Reset,
                            last_error: Some(None),
                            ..SessionChanges::default()
                        }))
                        .await?;
                        Ok(Claim::Won(self.opened(OpenPath::Resumed, &key, None, None).await?))
                    }
                    Ok(_) => {
                        self.settle(after.event(SessionEvent::Failed).changes(SessionChanges {
                            last_error: Some(Some(err.to_string())),
                            ..SessionChanges::default()
                        }))
                        .await?;
                        Err(err.into())
                    }
                    Err(E2bError::NotFound) => {
                        self.settle(after.event(SessionEvent::Killed)).await?;
                        let record = self.project(&key).await?;
                        self.start_fresh(record, actor, None, "paused sandbox was gone").await
                    }
                    Err(_) => Err(err.into()),
                }
            }
            Err(err) => {
                let failed = SessionWrite::following(
                    &key,
                    claimed,
                    actor,
                    format!("resume failed: {}", err.kind()),
                    self.now(),
                )
                .event(SessionEvent::Failed)
                .changes(SessionChanges {
                    last_error: Some(Some(err.public_message().to_owned())),
                    ..SessionChanges::default()
                });
                self.settle(failed).await?;
                Err(err.into())
            }
        }
    }

    /// A new sandbox for the project: from `preferred` (or the newest snapshots), else the template.
    async fn start_fresh(
        &self,
        record: ProjectRecord,
        actor: Actor,
        preferred: Option<Snapshot>,
        cause: &str,
    ) -> Result<Claim<Opened>, Error> {
        let key = record.project.key();
        // A project stored before its template was refused must not reach E2B with it.
        self.config.templates.check(&key.team, &record.project.template_id)?;
        let e2b = self.e2b_for(&key)?;
        let session_id = ulid::Ulid::new().to_string();
        let claim = SessionWrite::new(&record, actor, cause, self.now())
            .event(SessionEvent::Start)
            .changes(SessionChanges {
                session_id: Some(session_id.clone()),
                restored_from: Some(None),
                ..SessionChanges::default()
            });
        let Claim::Won(claimed) = self.claim(&claim).await? else {
            return Ok(Claim::Lost);
        };
        let project = &record.project;
        let sandbox_for = |template_id: &str| NewSandbox {
            template_id: template_id.to_string(),
            timeout: project.sandbox_timeout,
            auto_pause: true,
            metadata: sandbox_metadata::for_session(&key, &session_id),
            env_vars: Default::default(),
            secure: true,
            network: SandboxNetwork {
                allow_public_traffic: project.public_traffic,
            },
        };
        // A restore of a chosen snapshot runs from it or fails: no other rung stands in for it.
        let chosen = preferred.is_some();
        let mut fallback_reason = None;
        let mut created = None;
        let mut last_failure = None;
        for snapshot in self.restore_candidates(&key, preferred).await? {
            match e2b.create_sandbox(&sandbox_for(&snapshot.e2b_snapshot_id)).await {
                Ok(sandbox) => {
                    created = Some((sandbox.into(), Some(snapshot.snapshot_id)));
                    break;
                }
                Err(err) if err.may_have_taken_effect() => {
                    // The next rung only after a definite refusal: look the outcome up first. If
                    // E2B cannot be asked, the claim stays for its lease to settle.
                    if let Some((sandbox, _)) = self.sandbox_of_session(&e2b, &key, &session_id).await? {
                        created = Some((sandbox, Some(snapshot.snapshot_id)));
                        break;
                    }
                    fallback_reason = Some(format!("restoring snapshot {} failed: {err}", snapshot.snapshot_id));
                    last_failure = Some(err);
                }
                Err(err) => {
                    tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, error = %err, "restore failed; trying the next rung");
                    fallback_reason = Some(format!(
                        "restoring snapshot {} failed: {}",
                        snapshot.snapshot_id,
                        err.public_message()
                    ));
                    last_failure = Some(err);
                }
            }
        }
        if chosen && created.is_none() {
            let err = last_failure.unwrap_or_else(|| E2bError::Unexpected {
                status: 0,
                message: "no snapshot to restore".into(),
            });
            let failed = SessionWrite::following(
                &key,
                claimed,
                actor,
                format!("restore failed: {}", err.kind()),
                self.now(),
            )
            .event(SessionEvent::Failed)
            .changes(SessionChanges {
                last_error: Some(Some(err.public_message().to_owned())),
                ..SessionChanges::default()
            });
            self.settle(failed).await?;
            return Err(err.into());
        }
        let (sandbox, restored_from) = match created {
            Some(found) => found,
            None => match e2b.create_sandbox(&sandbox_for(&project.template_id)).await {
                Ok(sandbox) => (sandbox.into(), None),
                Err(err) => {
                    if err.may_have_taken_effect()
                        && let Some((sandbox, _)) = self.sandbox_of_session(&e2b, &key, &session_id).await?
                    {
                        return self
                            .record_started(&key, claimed, actor, sandbox, None, fallback_reason, project)
                            .await;
                    }
                    let failed = SessionWrite::following(
                        &key,
                        claimed,
                        actor,
                        format!("create failed: {}", err.kind()),
                        self.now(),
                    )
                    .event(SessionEvent::Failed)
                    .changes(SessionChanges {
                        last_error: Some(Some(err.public_message().to_owned())),
                        ..SessionChanges::default()
                    });
                    self.settle(failed).await?;
                    return Err(err.into());
                }
            },
        };
        self.record_started(&key, claimed, actor, sandbox, restored_from, fallback_reason, project)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_started(
        &self,
        key: &crate::domain::ProjectKey,
        claimed: Written,
        actor: Actor,
        sandbox: SandboxRef,
        restored_from: Option<SnapshotId>,
        fallback_reason: Option<String>,
        project: &crate::domain::Project,
    ) -> Result<Claim<Opened>, Error> {
        let key = key.clone();
        let now = self.now();
        let path = if restored_from.is_some() {
            OpenPath::Restored
        } else {
            OpenPath::Created
        };
        let started = SessionWrite::following(
            &key,
            claimed,
            actor,
            if restored_from.is_some() {
                "restored from snapshot"
            } else {
                "created from template"
            },
            now,
        )
        .event(SessionEvent::Running)
        .changes(SessionChanges {
            sandbox: Some(sandbox),
            last_active_at: Some(now),
            timeout_at: Some(now + project.sandbox_timeout),
            restored_from: Some(restored_from.clone()),
            failures: FailureCount::Reset,
            last_error: Some(None),
            ..SessionChanges::default()
        });
        self.settle(started).await?;
        Ok(Claim::Won(
            self.opened(path, &key, restored_from, fallback_reason).await?,
        ))
    }

    async fn restore_candidates(
        &self,
        key: &crate::domain::ProjectKey,
        preferred: Option<Snapshot>,
    ) -> Result<Vec<Snapshot>, Error> {
        if let Some(chosen) = preferred {
            return Ok(vec![chosen]);
        }
        let newest = self.store.list_snapshots(key, None, 20).await?.items;
        Ok(newest
            .into_iter()
            .filter(|s| s.status == SnapshotStatus::Ready)
            .take(RESTORE_ATTEMPTS)
            .collect())
    }

    async fn claim(&self, write: &SessionWrite) -> Result<Claim<Written>, Error> {
        match self.store.write_session(write).await {
            Ok(written) => Ok(Claim::Won(written)),
            Err(StoreError::Conflict { .. }) => Ok(Claim::Lost),
            Err(err) => Err(err.into()),
        }
    }

    async fn opened(
        &self,
        path: OpenPath,
        key: &crate::domain::ProjectKey,
        restored_from: Option<SnapshotId>,
        fallback_reason: Option<String>,
    ) -> Result<Opened, Error> {
        Ok(Opened {
            path,
            record: self.project(key).await?,
            restored_from,
            fallback_reason,
        })
    }
}
