//! A live fork (`from: live`): E2B checkpoints the source's running sandbox in place (it keeps
//! running, same id) and starts a new sandbox from that full-memory checkpoint, so the fork keeps
//! memory and running processes and is usable at once.
//!
//! Steps: mark the source (one live fork of a source at a time), create the new project, claim its
//! session STARTING (a lease) before E2B is called, fork, record RUNNING with the fork's sandbox.
//!
//! The fork's sandbox carries the *source's* metadata (E2B copies it; the fork request cannot set
//! any): it names the source's project and session. So an ambiguous failure (a timeout, a 5xx)
//! cannot look the fork up by the new session's id as a create does; it looks for sandboxes
//! carrying the source session's metadata that are not the source's sandbox, started after the
//! claim and are no project's sandbox yet: one is adopted, any extra killed. The mark makes that
//! exact: no other live fork of the source runs meanwhile.
//!
//! A definite refusal (E2B's 4xx, or nothing found after an ambiguous one) rolls the claim back
//! (STARTING → KILLED): no new session runs, and the new project stays, a project like any other,
//! whose next open starts it fresh from its template. If E2B cannot be asked, the claim is left to
//! its lease; a lapsed lease settles it as any STARTING claim (nothing carries the new session's
//! id, so KILLED), and a sandbox the fork did make is then an orphan for the reconciler.

use time::OffsetDateTime;

use super::claim::{Claim, Claimed, claim};
use super::project;
use crate::domain::{Actor, CLAIM_LEASE, ProjectKey, ProjectSpec, SandboxRef, SessionEvent, SessionState, metadata};
use crate::e2b::{E2bError, SandboxFilter, SandboxState};
use crate::error::{Error, StoreError};
use crate::port::{Account, Consistency, Port};
use crate::record::{FailureCount, Field, ProjectRecord, SessionChanges, SessionWrite};

/// How far E2B's clock may run behind Sandman's when telling a fork made after the claim.
const CLOCK_SKEW: time::Duration = time::Duration::seconds(30);

/// The source's sandbox as the live fork found it.
struct Source {
    key: ProjectKey,
    session_id: String,
    sandbox_id: String,
}

/// Creates `spec`'s project forked live from `source` (RUNNING, else 409). Quotas and the
/// team's budget apply as for an open.
pub(crate) async fn fork_live<P: Port>(
    port: &P,
    source: &ProjectRecord,
    spec: ProjectSpec,
) -> Result<ProjectRecord, Error> {
    let Some(session) = source.session.as_ref() else {
        return Err(Error::Conflict(
            "the source has no sandbox; a live fork needs it RUNNING (open it first, or fork from a snapshot)".into(),
        ));
    };
    let sandbox = match (&session.sandbox, session.state) {
        (Some(sandbox), SessionState::Running) => sandbox.sandbox_id.clone(),
        (_, state) => {
            return Err(Error::Conflict(format!(
                "the source's sandbox is {}; a live fork needs it RUNNING (open it first, or fork from a snapshot)",
                state.as_str().to_lowercase()
            )));
        }
    };
    let source = Source {
        key: source.project.key(),
        session_id: session.session_id.clone(),
        sandbox_id: sandbox,
    };
    port.budget_allows(&spec.key.team).await?;
    port.live_room(&spec.key.team).await?;
    let account = port.account(&source.key.team).await?;
    let now = port.now();
    if !port
        .mark_live_fork(&source.key, &spec.key.project, now + CLAIM_LEASE)
        .await?
    {
        return Err(Error::Conflict(
            "the source's sandbox is not running, or another live fork of it is under way; try again shortly".into(),
        ));
    }
    let outcome = port
        .within_lease(fork_live_claimed(port, &account, &source, &spec, now))
        .await;
    // A claim left to its lease (E2B could not say whether it forked) keeps the mark until the
    // lease lapses too, so no other live fork of the source can take its sandbox for its own.
    let left_to_lease = match &outcome {
        Ok(_) | Err(Error::Conflict(_)) => false,
        Err(_) => port.read(&spec.key, Consistency::Strong).await.map_or(true, |record| {
            record.is_some_and(|r| r.state() == Some(SessionState::Starting))
        }),
    };
    if !left_to_lease && let Err(err) = port.clear_live_fork(&source.key, &spec.key.project).await {
        tracing::warn!(project = %source.key, error = %err, "the live-fork mark lapses on its own");
    }
    outcome
}

async fn fork_live_claimed<P: Port>(
    port: &P,
    account: &Account,
    source: &Source,
    spec: &ProjectSpec,
    claimed_at: OffsetDateTime,
) -> Result<ProjectRecord, Error> {
    let new = spec.key.clone();
    let created = match port.create_project(spec, None).await {
        Ok(created) => created,
        Err(StoreError::Conflict { .. }) => {
            return Err(Error::Conflict(format!("project {} exists already", new.project)));
        }
        Err(err) => return Err(err.into()),
    };
    let write = SessionWrite::new(
        &created,
        Actor::User,
        format!("live fork of {}", source.key.project),
        claimed_at,
    )
    .event(SessionEvent::Start)
    .changes(SessionChanges {
        session_id: Some(port.new_id()),
        ..SessionChanges::default()
    });
    let Claim::Won(mut claimed) = claim(port, &write).await? else {
        return Err(Error::Conflict(format!(
            "another request is opening project {}",
            new.project
        )));
    };
    let timeout = spec.sandbox_timeout;
    let (sandbox, cause) = match port.fork(account, &source.sandbox_id, timeout).await {
        Ok(forked) => (forked.into(), format!("forked live from {}", source.key.project)),
        Err(err) if err.may_have_taken_effect() => {
            // `?`: E2B cannot be asked either; the claim is left to its lease.
            match sandbox_of_fork(port, account, source, &new, claimed_at).await? {
                Some(sandbox) => (
                    sandbox,
                    format!(
                        "forked live from {}; the fork answered {}, its sandbox adopted",
                        source.key.project,
                        err.kind()
                    ),
                ),
                None => return fork_refused(&mut claimed, err).await,
            }
        }
        Err(err) => return fork_refused(&mut claimed, err).await,
    };
    let now = port.now();
    let changes = SessionChanges {
        sandbox: Some(sandbox),
        last_active_at: Some(now),
        timeout_at: Some(now + timeout),
        failures: FailureCount::Reset,
        last_error: Field::Clear,
        ..SessionChanges::default()
    };
    claimed.running(cause, changes).await?;
    tracing::info!(project = %new, source = %source.key, "forked live");
    project(port, &new).await
}

async fn fork_refused<P: Port>(claimed: &mut Claimed<'_, P>, err: E2bError) -> Result<ProjectRecord, Error> {
    let cause = format!("live fork failed: {}", err.kind());
    claimed
        .failed(cause, err.public_message(), SessionChanges::default())
        .await?;
    Err(err.into())
}

/// The sandbox an ambiguous fork made, if it made one: carrying the source session's metadata,
/// not the source's sandbox, started after the claim, and no project's sandbox yet (an older
/// fork's). Extras are killed, so one claim leaves at most one sandbox.
async fn sandbox_of_fork<P: Port>(
    port: &P,
    account: &Account,
    source: &Source,
    new: &ProjectKey,
    claimed_at: OffsetDateTime,
) -> Result<Option<SandboxRef>, Error> {
    let filter = SandboxFilter {
        states: vec![SandboxState::Running, SandboxState::Paused],
        metadata: metadata::for_session(&source.key, &source.session_id),
    };
    let mut found = Vec::new();
    for listed in port.list_sandboxes(account, &filter).await? {
        if listed.sandbox_id == source.sandbox_id || listed.started_at < claimed_at - CLOCK_SKEW {
            continue;
        }
        match port.find_by_sandbox(&listed.sandbox_id).await? {
            Some(owner) if owner.project.key() != *new => continue,
            _ => found.push(listed),
        }
    }
    found.sort_by_key(|listed| (listed.state != SandboxState::Running, listed.started_at));
    let mut found = found.into_iter();
    let Some(kept) = found.next() else {
        return Ok(None);
    };
    for extra in found {
        tracing::warn!(project = %new, sandbox = %extra.sandbox_id, "a second sandbox for one live fork; killing it");
        if let Err(err) = port.kill(account, &extra.sandbox_id).await {
            tracing::error!(project = %new, sandbox = %extra.sandbox_id, error = %err, "could not kill the extra sandbox");
        }
    }
    Ok(Some(super::lease::adopted(port, account, kept.sandbox_id).await))
}
