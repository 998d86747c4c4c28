//! Claims are leases. A claimant that dies (a Lambda cut at its deadline, a lost instance) leaves
//! its session STARTING, RESUMING, PAUSING or STOPPING; once `leaseUntil` has passed, whoever meets
//! the session next asks E2B what really happened and records it, instead of waiting for the
//! reconciler.

use crate::domain::{Actor, ProjectKey, SandboxRef, SessionState, metadata};
use crate::e2b::{E2bError, SandboxFilter, SandboxState};
use crate::error::{Error, StoreError};
use crate::port::{Account, Port};
use crate::reconcile::decide;
use crate::record::{FailureCount, Field, ProjectRecord, SessionChanges, SessionWrite, Written};

/// The sandbox E2B made for `session_id`, if a create whose answer was lost made one. Any
/// others carrying the same session id (never expected) are killed, so one claim leaves at
/// most one sandbox.
pub(crate) async fn sandbox_of_session<P: Port>(
    port: &P,
    account: &Account,
    key: &ProjectKey,
    session_id: &str,
) -> Result<Option<(SandboxRef, SandboxState)>, E2bError> {
    let filter = SandboxFilter {
        states: vec![SandboxState::Running, SandboxState::Paused],
        metadata: metadata::for_session(key, session_id),
    };
    let mut found = port.list_sandboxes(account, &filter).await?;
    found.sort_by_key(|listed| (listed.state != SandboxState::Running, listed.started_at));
    let mut found = found.into_iter();
    let Some(kept) = found.next() else {
        return Ok(None);
    };
    for extra in found {
        tracing::warn!(project = %key, sandbox = %extra.sandbox_id, "a second sandbox for one claim; killing it");
        if let Err(err) = port.kill(account, &extra.sandbox_id).await {
            tracing::error!(project = %key, sandbox = %extra.sandbox_id, error = %err, "could not kill the extra sandbox");
        }
    }
    Ok(Some((adopted(port, account, kept.sandbox_id).await, kept.state)))
}

/// A sandbox adopted from a listing (a claim whose answer was lost), with its domain and envd
/// token from E2B: the session must not keep the previous sandbox's token (concurrency review #17).
/// When E2B cannot say, it is recorded without them (the next resume brings a fresh token).
pub(crate) async fn adopted<P: Port>(port: &P, account: &Account, sandbox_id: String) -> SandboxRef {
    match port.get_sandbox(account, &sandbox_id).await {
        Ok(detail) => SandboxRef {
            sandbox_id,
            domain: detail.domain,
            access_token: detail.envd_access_token,
        },
        Err(err) => {
            tracing::warn!(sandbox = %sandbox_id, error = %err, "an adopted sandbox's token could not be read; the next resume brings it");
            SandboxRef {
                sandbox_id,
                domain: None,
                access_token: None,
            }
        }
    }
}

/// Settles a claim whose lease has lapsed from what E2B reports, and answers the state it left the
/// session in. Does nothing to a session whose lease still runs (`None`); a concurrent writer
/// winning first is fine (`None`: the caller re-reads).
pub(crate) async fn settle_lapsed<P: Port>(
    port: &P,
    record: &ProjectRecord,
    actor: Actor,
) -> Result<Option<SessionState>, Error> {
    let now = port.now();
    let Some(session) = record.session.as_ref().filter(|s| s.lease_lapsed(now)) else {
        return Ok(None);
    };
    let key = record.project.key();
    let account = port.account(&key.team).await?;
    // A restore's claim that made no sandbox goes back to the one it was replacing.
    let mut back_to = None;
    let (sandbox, observed) = match (session.state, &session.sandbox) {
        (SessionState::Starting, _) => match sandbox_of_session(port, &account, &key, &session.session_id).await? {
            Some((sandbox, state)) => (Some(sandbox), Some(state)),
            None => match session.replaced() {
                Some((session_id, replaced)) => {
                    back_to = Some(session_id.to_owned());
                    (None, observe(port, &account, &replaced.sandbox_id).await?)
                }
                None => (None, None),
            },
        },
        (_, None) => (None, None),
        (_, Some(current)) => (None, observe(port, &account, &current.sandbox_id).await?),
    };
    let by = if actor == Actor::Reconciler { "reconciled: " } else { "" };
    let cause = format!(
        "{by}lease of {} lapsed; E2B reports the sandbox {}",
        session.state.as_str(),
        match observed {
            Some(SandboxState::Running) => "running",
            Some(SandboxState::Paused) => "paused",
            None => "gone",
        }
    );
    tracing::warn!(project = %key, cause, "settling a lapsed claim");
    let mut at = Written {
        version: record.version,
        state: Some(session.state),
    };
    let adopted = sandbox.is_some();
    let mut changes = SessionChanges {
        session_id: back_to,
        replaces_session: Field::Clear,
        sandbox: sandbox.clone(),
        last_active_at: sandbox.as_ref().map(|_| now),
        timeout_at: sandbox.as_ref().map(|_| now + record.project.sandbox_timeout),
        failures: FailureCount::Reset,
        ..SessionChanges::default()
    };
    for event in decide::steps(session.state, observed) {
        let write = SessionWrite::following(&key, at, actor, cause.clone(), now)
            .event(event)
            .changes(std::mem::take(&mut changes));
        match port.write(&write).await {
            Ok(written) => at = written,
            Err(StoreError::Conflict { .. }) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
    }
    // The restore did make its sandbox: the one it replaced goes, as the restore would have.
    let mut released = true;
    if let (true, Some((_, replaced))) = (adopted, session.replaced()) {
        match port.kill(&account, &replaced.sandbox_id).await {
            Ok(()) | Err(E2bError::NotFound) => {}
            Err(err) => {
                released = false;
                tracing::warn!(project = %key, sandbox = %replaced.sandbox_id, error = %err, "the replaced sandbox could not be killed; the reconciler kills it as an orphan");
            }
        }
    }
    // The old sandbox is gone, or the session's own again: its second live unit goes back.
    if let (true, Some(retiring)) = (released, &session.retiring) {
        port.release_retiring(&key, retiring).await?;
    }
    Ok(at.state)
}

/// What E2B says the sandbox is (`None`: it no longer has it).
pub(crate) async fn observe<P: Port>(
    port: &P,
    account: &Account,
    sandbox_id: &str,
) -> Result<Option<SandboxState>, E2bError> {
    match port.get_sandbox(account, sandbox_id).await {
        Ok(detail) => Ok(Some(detail.state)),
        Err(E2bError::NotFound) => Ok(None),
        Err(err) => Err(err),
    }
}
