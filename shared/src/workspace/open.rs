//! Opening a workspace is get-or-create: running -> return it; paused -> resume it; none or gone ->
//! restore the latest snapshot, falling back to older ones and then to the template. Concurrent
//! opens collapse into one E2B action: only the writer that wins the claim calls E2B.

use serde::Serialize;

use super::claim::Claim;
use crate::Sandman;
use crate::deadline::{Deadline, LAMBDA_MARGIN, MIN_E2B_CALL};
use crate::domain::{Actor, CLAIM_LEASE, SandboxRef, SessionEvent, SessionState, SnapshotId};
use crate::e2b::{E2bError, SandboxState};
use crate::error::Error;
use crate::store::{FailureCount, Field, ProjectRecord, SessionChanges, SessionWrite};

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

/// A step of the open ladder: this request did it, or another writer was first.
pub(super) enum Step {
    Done(Box<Opened>),
    Lost,
}

impl Sandman {
    /// Within the caller's deadline and within one claim lease. When the time runs out mid-way the
    /// claim is left to its lease and the answer is `InProgress`: poll the status.
    pub async fn open(&self, key: &crate::domain::ProjectKey, actor: Actor) -> Result<Opened, Error> {
        if actor == Actor::User {
            self.check_budget_allows(&key.team).await?;
        }
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
                Some(SessionState::Paused) => self.resume_or_replace(record, actor, "resume requested").await?,
                None | Some(SessionState::Killed) => match record.project.fork_of.clone() {
                    Some(fork) => {
                        let source = self.fork_snapshot(&record).await?;
                        match self.start_fresh(record, actor, source, "fork: first open").await? {
                            Step::Done(mut opened) => {
                                self.fork_opened(key, &fork).await;
                                opened.record = self.project(key).await?;
                                Step::Done(opened)
                            }
                            lost => lost,
                        }
                    }
                    None => self.start_fresh(record, actor, None, "open").await?,
                },
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
            if let Step::Done(opened) = step {
                return Ok(*opened);
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
        self.resume_because(key, actor, "resume requested").await
    }

    /// [`Sandman::resume`] with the cause its claim writes in the lifecycle log.
    pub async fn resume_because(
        &self,
        key: &crate::domain::ProjectKey,
        actor: Actor,
        cause: &str,
    ) -> Result<Opened, Error> {
        let record = self.project(key).await?;
        if actor == Actor::User && record.state() == Some(SessionState::Paused) {
            self.check_budget_allows(&key.team).await?;
        }
        match record.state() {
            Some(SessionState::Paused) => match self.resume_or_replace(record, actor, cause).await? {
                Step::Done(opened) => Ok(*opened),
                Step::Lost => Err(Error::Conflict("another request is changing the sandbox".into())),
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

    async fn resume_or_replace(&self, record: ProjectRecord, actor: Actor, cause: &str) -> Result<Step, Error> {
        let key = record.project.key();
        let Some(sandbox) = record.session.as_ref().and_then(|s| s.sandbox.clone()) else {
            return Err(Error::Conflict("the paused session has no sandbox id".into()));
        };
        // Resolved before any claim: a team without E2B credentials must not leave the session mid-transition.
        let e2b = self.e2b_for(&key).await?;
        let claim = SessionWrite::new(&record, actor, cause, self.now()).event(SessionEvent::Resume);
        let Claim::Won(mut claimed) = self.claim(&claim).await? else {
            return Ok(Step::Lost);
        };
        let timeout = record.project.sandbox_timeout;
        let resumed = |now, sandbox| SessionChanges {
            sandbox,
            last_active_at: Some(now),
            timeout_at: Some(now + timeout),
            failures: FailureCount::Reset,
            last_error: Field::Clear,
            ..SessionChanges::default()
        };
        let gone = match e2b.connect(&sandbox.sandbox_id, timeout).await {
            Ok(connected) => {
                let sandbox = SandboxRef {
                    sandbox_id: connected.sandbox.sandbox_id,
                    domain: connected.sandbox.domain,
                    access_token: connected.sandbox.envd_access_token,
                };
                claimed.running("resumed", resumed(self.now(), Some(sandbox))).await?;
                return Ok(Step::Done(Box::new(
                    self.opened(OpenPath::Resumed, &key, None, None).await?,
                )));
            }
            Err(E2bError::NotFound) => "paused sandbox no longer exists in E2B".to_string(),
            // The connect may have resumed it: record what E2B says, or leave the claim to its lease.
            Err(err) if err.may_have_taken_effect() => match e2b.get_sandbox(&sandbox.sandbox_id).await {
                Ok(detail) if detail.state == SandboxState::Running => {
                    let cause = format!("resume answered {}; E2B runs it", err.kind());
                    claimed.running(cause, resumed(self.now(), None)).await?;
                    return Ok(Step::Done(Box::new(
                        self.opened(OpenPath::Resumed, &key, None, None).await?,
                    )));
                }
                Ok(_) => {
                    let cause = format!("resume answered {}", err.kind());
                    claimed
                        .failed(cause, err.to_string(), SessionChanges::default())
                        .await?;
                    return Err(err.into());
                }
                Err(E2bError::NotFound) => format!("resume answered {}; E2B no longer has it", err.kind()),
                Err(_) => return Err(err.into()),
            },
            Err(err) => {
                let cause = format!("resume failed: {}", err.kind());
                claimed
                    .failed(cause, err.public_message(), SessionChanges::default())
                    .await?;
                return Err(err.into());
            }
        };
        claimed.killed(gone).await?;
        let record = self.project(&key).await?;
        self.start_fresh(record, actor, None, "paused sandbox was gone").await
    }

    pub(super) async fn opened(
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
