//! Opening a workspace is get-or-create: running -> return it; paused -> resume it; none or gone ->
//! restore the latest snapshot, falling back to older ones and then to the template. Concurrent
//! opens collapse into one E2B action: only the writer that wins the claim calls E2B.

use super::claim::{Claim, claim};
pub use super::opened::{OpenPath, Opened};
use super::opened::{Step, opened};
use super::start::start_fresh;
use super::{fork, lease, project};
use crate::adaptive;
use crate::domain::{Actor, ProjectKey, SandboxRef, SessionEvent, SessionState};
use crate::e2b::{E2bError, SandboxState};
use crate::error::{Error, StoreError};
use crate::port::Port;
use crate::record::{FailureCount, Field, ProjectRecord, SessionChanges, SessionWrite};

/// The ladder, within one claim lease (and the caller's deadline): an E2B call that could not
/// finish inside it is not sent, and the claim is left to its lease.
pub async fn open<P: Port>(port: &P, key: &ProjectKey, actor: Actor) -> Result<Opened, Error> {
    port.within_lease(open_ladder(port, key, actor)).await
}

async fn open_ladder<P: Port>(port: &P, key: &ProjectKey, actor: Actor) -> Result<Opened, Error> {
    if actor == Actor::User {
        port.budget_allows(&key.team).await?;
    }
    for _ in 0..3 {
        let record = project(port, key).await?;
        let step = match record.state() {
            Some(SessionState::Running) => match confirm_running(port, record, actor).await? {
                Some(opened) => return Ok(opened),
                // E2B no longer has it (recorded KILLED), or the session moved: decide again.
                None => continue,
            },
            Some(SessionState::Paused) => resume_or_replace(port, record, actor, "resume requested").await?,
            None | Some(SessionState::Killed) => match record.project.fork_of.clone() {
                Some(source) => {
                    let snapshot = fork::fork_snapshot(port, &record).await?;
                    match start_fresh(port, record, actor, snapshot, "fork: first open").await? {
                        Step::Done(mut opened) => {
                            fork::fork_opened(port, key, &source).await;
                            opened.record = project(port, key).await?;
                            Step::Done(opened)
                        }
                        lost => lost,
                    }
                }
                None => start_fresh(port, record, actor, None, "open").await?,
            },
            Some(_) if record.session.as_ref().is_some_and(|s| s.lease_lapsed(port.now())) => {
                lease::settle_lapsed(port, &record, actor).await?;
                continue;
            }
            Some(_) => return Ok(Opened::in_progress(record)),
        };
        if let Step::Done(opened) = step {
            return Ok(*opened);
        }
    }
    Ok(Opened::in_progress(project(port, key).await?))
}

/// Resumes a paused sandbox (user's resume, or activity on a paused sandbox), with the cause its
/// claim writes in the lifecycle log. Within one claim lease.
pub async fn resume<P: Port>(port: &P, key: &ProjectKey, actor: Actor, cause: &str) -> Result<Opened, Error> {
    port.within_lease(resume_paused(port, key, actor, cause)).await
}

async fn resume_paused<P: Port>(port: &P, key: &ProjectKey, actor: Actor, cause: &str) -> Result<Opened, Error> {
    for _ in 0..3 {
        let record = project(port, key).await?;
        if actor == Actor::User && matches!(record.state(), Some(SessionState::Paused | SessionState::Running)) {
            // A running one too: E2B may have paused it on its own, and `connect` resumes it.
            port.budget_allows(&key.team).await?;
        }
        match record.state() {
            Some(SessionState::Paused) => match resume_or_replace(port, record, actor, cause).await? {
                Step::Done(opened) => return Ok(*opened),
                Step::Lost => return Err(Error::Conflict("another request is changing the sandbox".into())),
            },
            // The table says RUNNING: only E2B can say it still runs (its pause webhook may be late).
            Some(SessionState::Running) => match confirm_running(port, record, actor).await? {
                Some(opened) => return Ok(opened),
                None => continue,
            },
            Some(state) => {
                return Err(Error::Conflict(format!(
                    "the sandbox is {}, not paused",
                    state.as_str()
                )));
            }
            None => return Err(Error::Conflict("the project has no sandbox; open it first".into())),
        }
    }
    Err(Error::Conflict("another request is changing the sandbox".into()))
}

pub(crate) async fn resume_or_replace<P: Port>(
    port: &P,
    record: ProjectRecord,
    actor: Actor,
    cause: &str,
) -> Result<Step, Error> {
    let key = record.project.key();
    let Some(sandbox) = record.session.as_ref().and_then(|s| s.sandbox.clone()) else {
        return Err(Error::Conflict("the paused session has no sandbox id".into()));
    };
    // Resolved before any claim: a team without E2B credentials must not leave the session mid-transition.
    let account = port.account(&key.team).await?;
    let now = port.now();
    let mut write = SessionWrite::new(&record, actor, cause, now).event(SessionEvent::Resume);
    if actor == Actor::User
        && let Some(session) = &record.session
    {
        // A user back after a pause: the gap it ends is the one adaptive idle most needs to see.
        let project = &record.project;
        write.changes.idle_lesson =
            adaptive::idle_lesson(project.idle.adaptive, &project.idle_gaps, session.last_active_at, now);
    }
    let Claim::Won(mut claimed) = claim(port, &write).await? else {
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
    let gone = match port.connect(&account, &sandbox.sandbox_id, timeout).await {
        Ok(connected) => {
            let sandbox = SandboxRef {
                sandbox_id: connected.sandbox.sandbox_id,
                domain: connected.sandbox.domain,
                access_token: connected.sandbox.envd_access_token,
            };
            claimed.running("resumed", resumed(port.now(), Some(sandbox))).await?;
            return Ok(Step::Done(Box::new(
                opened(port, OpenPath::Resumed, &key, None, None).await?,
            )));
        }
        Err(E2bError::NotFound) => "paused sandbox no longer exists in E2B".to_string(),
        // The connect may have resumed it: record what E2B says, or leave the claim to its lease.
        Err(err) if err.may_have_taken_effect() => match port.get_sandbox(&account, &sandbox.sandbox_id).await {
            Ok(detail) if detail.state == SandboxState::Running => {
                let cause = format!("resume answered {}; E2B runs it", err.kind());
                claimed.running(cause, resumed(port.now(), None)).await?;
                return Ok(Step::Done(Box::new(
                    opened(port, OpenPath::Resumed, &key, None, None).await?,
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
    let record = project(port, &key).await?;
    start_fresh(port, record, actor, None, "paused sandbox was gone").await
}

/// The table says RUNNING: E2B is asked (`connect`, which also resumes a sandbox E2B paused on its
/// own, its webhook lost or late), so an open never hands out a sandbox E2B does not run. An open is
/// activity: the idle deadline moves, in the same write that records what `connect` answered.
/// `None`: the session moved meanwhile, or E2B no longer has the sandbox (recorded KILLED); the
/// ladder decides again.
async fn confirm_running<P: Port>(port: &P, record: ProjectRecord, actor: Actor) -> Result<Option<Opened>, Error> {
    let key = record.project.key();
    let Some(sandbox) = record.session.as_ref().and_then(|s| s.sandbox.clone()) else {
        return Err(Error::Conflict("the running session has no sandbox id".into()));
    };
    let account = port.account(&key.team).await?;
    let timeout = record.project.sandbox_timeout;
    let resumed = match port.connect(&account, &sandbox.sandbox_id, timeout).await {
        Ok(connected) => connected.resumed,
        Err(E2bError::NotFound) => {
            let gone = SessionWrite::new(&record, actor, "open: E2B no longer has the sandbox", port.now())
                .event(SessionEvent::Killed);
            match port.write(&gone).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => return Ok(None),
                Err(err) => return Err(err.into()),
            }
        }
        Err(err) if err.may_have_taken_effect() => match port.get_sandbox(&account, &sandbox.sandbox_id).await {
            Ok(detail) if detail.state == SandboxState::Running => false,
            _ => return Err(err.into()),
        },
        Err(err) => return Err(err.into()),
    };
    let now = port.now();
    let session = record.session.as_ref().expect("a running session");
    if resumed {
        // E2B had paused it on its own, unreported so far. Its `paused` may still come, timed by
        // E2B's clock (at most `CLOCK_SKEW` ahead of ours): every report from before this resume
        // is then older than the mark written here, and stale.
        let mut mark = SessionWrite::new(&record, actor, "open: E2B had paused the sandbox; resumed", now);
        mark.changes.event_at = session.last_event_at.max(Some(now + crate::webhook::CLOCK_SKEW));
        match port.write(&mark).await {
            // A writer since the read: the reconciler still confirms a PAUSED with E2B.
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let activity = super::idle_deadline::opened_activity(port, &record, session, now);
    if !port.record_activity(&key, &sandbox.sandbox_id, &activity).await? {
        return Ok(None);
    }
    port.record_timeout(&key, &sandbox.sandbox_id, now + timeout).await?;
    port.remember_activity(&key, now);
    let path = if resumed {
        OpenPath::Resumed
    } else {
        OpenPath::AlreadyRunning
    };
    Ok(Some(opened(port, path, &key, None, None).await?))
}
