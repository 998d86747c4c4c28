//! Restoring a snapshot is one claim. The claim (RESTORE: into STARTING) and a hold on the chosen
//! snapshot commit in one transaction, conditional on the snapshot being READY, so the pruner or a
//! delete cannot take it while the restore runs. The session keeps its current sandbox until the
//! new one runs: only then is the old one retired (saved first if the project says so, then
//! killed). A restore that fails goes back to the sandbox it was replacing.

use super::claim::{Claim, Claimed, claim};
use super::opened::Opened;
use super::start::{Ladder, create_ladder, record_started};
use super::{lease, project, snapshot};
use crate::domain::{
    Actor, CLAIM_LEASE, ProjectKey, SandboxRef, SessionEvent, SessionState, Snapshot, SnapshotId, SnapshotKind,
};
use crate::e2b::{E2bError, SandboxState};
use crate::error::{Error, StoreError};
use crate::port::{Account, Port};
use crate::record::{Field, ProjectRecord, SessionChanges, SessionWrite, SnapshotHold};

/// Whether a claim lost against `before` is tried again on `again`, the record read after it: only
/// when the state did not move (the winner changed nothing a restore depends on), a few times.
fn claim_again(before: &ProjectRecord, again: &ProjectRecord, lost: u32) -> bool {
    lost < RESTORE_CLAIM_RETRIES && again.state() == before.state()
}

/// The sandbox a restore replaces, as the session held it when the restore claimed it.
struct Replaced {
    session_id: String,
    state: SessionState,
    sandbox: SandboxRef,
}

/// Replaces the project's sandbox with one restored from `snapshot`. Refused while another action
/// is under way or when the snapshot is not READY. Runs within one claim lease (the caller's deadline).
pub async fn restore<P: Port>(
    port: &P,
    key: &ProjectKey,
    snapshot: &SnapshotId,
    actor: Actor,
) -> Result<Opened, Error> {
    port.within_lease(restore_claimed(port, key, snapshot, actor)).await
}

async fn restore_claimed<P: Port>(
    port: &P,
    key: &ProjectKey,
    snapshot: &SnapshotId,
    actor: Actor,
) -> Result<Opened, Error> {
    if actor == Actor::User {
        port.budget_allows(&key.team).await?;
    }
    let chosen = snapshot::snapshot(port, key, snapshot).await?;
    let account = port.account(&key.team).await?;
    // A restore is a create from the snapshot: it takes the project's settings as they are now.
    let launch = port.launch_settings(&account, key).await?;
    let mut record = project(port, key).await?;
    let mut lost = 0;
    let (mut claimed, replaced, session_id) = loop {
        if record.session.as_ref().is_some_and(|s| s.lease_lapsed(port.now())) {
            lease::settle_lapsed(port, &record, actor).await?;
            record = project(port, key).await?;
        }
        port.check_template(&key.team, &record.project.template_id)?;
        let replaced = replaced_by_restore(&record);
        let session_id = port.new_id();
        let write = restore_claim(port.now(), &record, &chosen, actor, &session_id, replaced.as_ref());
        match claim(port, &write).await {
            Ok(Claim::Won(claimed)) => break (claimed, replaced, session_id),
            Ok(Claim::Lost) => {
                // A write that moved nothing (a webhook's usage or ordering mark) only changed
                // the version: the claim is tried again on a new read. A moved state is
                // another action under way.
                let again = project(port, key).await?;
                if !claim_again(&record, &again, lost) {
                    return Err(Error::Conflict("another request is changing the sandbox".into()));
                }
                lost += 1;
                record = again;
            }
            Err(StoreError::NotFound) => {
                return Err(Error::Conflict(
                    "the snapshot is not ready (it is being taken or deleted)".into(),
                ));
            }
            Err(err) => return Err(err.into()),
        }
    };
    // An outcome E2B could not tell (`?`) leaves the claim and the hold to their leases.
    let created = create_ladder(
        port,
        &account,
        &record,
        &session_id,
        &launch,
        Ladder::Exactly(chosen.clone()),
    )
    .await?;
    let outcome = match created {
        Ok(started) => record_started(port, &mut claimed, &record, started).await,
        Err(err) => go_back(port, &account, &mut claimed, replaced.as_ref(), &err)
            .await
            .and(Err(err.into())),
    };
    if let Err(err) = port.release_snapshot(key, &chosen.snapshot_id).await {
        tracing::warn!(project = %key, snapshot = %chosen.snapshot_id, error = %err, "the hold lapses on its own");
    }
    let opened = outcome?;
    if let Some(replaced) = replaced {
        retire(port, &account, &record, &replaced).await;
    }
    Ok(opened)
}

/// The restore's claim: a new session replacing `replaced`, and a hold on the snapshot, in one
/// transaction (two leases: a claimant that dies leaves it held until its lease has been settled).
fn restore_claim(
    now: time::OffsetDateTime,
    record: &ProjectRecord,
    chosen: &Snapshot,
    actor: Actor,
    session_id: &str,
    replaced: Option<&Replaced>,
) -> SessionWrite {
    SessionWrite::new(
        record,
        actor,
        format!("restore of {} requested", chosen.snapshot_id),
        now,
    )
    .event(SessionEvent::Restore)
    .changes(SessionChanges {
        session_id: Some(session_id.to_owned()),
        restored_from: Field::Clear,
        replaces_session: Field::set_or_clear(replaced.map(|r| r.session_id.clone())),
        // A running sandbox keeps running until the new one does: it keeps its live unit.
        retiring: replaced
            .filter(|r| r.state == SessionState::Running)
            .map(|r| r.sandbox.sandbox_id.clone()),
        ..SessionChanges::default()
    })
    .hold(SnapshotHold {
        snapshot_id: chosen.snapshot_id.clone(),
        until: now + CLAIM_LEASE * 2,
    })
}

/// Every rung refused: the session returns to the sandbox it was replacing (in the state it
/// was in), or, with none, the claim fails as a start does.
async fn go_back<P: Port>(
    port: &P,
    account: &Account,
    claimed: &mut Claimed<'_, P>,
    replaced: Option<&Replaced>,
    err: &E2bError,
) -> Result<(), Error> {
    let cause = format!("restore failed: {}", err.kind());
    let Some(replaced) = replaced else {
        return claimed
            .failed(cause, err.public_message(), SessionChanges::default())
            .await;
    };
    let back = SessionChanges {
        session_id: Some(replaced.session_id.clone()),
        replaces_session: Field::Clear,
        last_error: Field::Set(err.public_message().to_owned()),
        ..SessionChanges::default()
    };
    // E2B may have paused (or ended) the old sandbox while the claim was open, its events ignored
    // as another session's: what E2B says now is recorded. E2B silent: the claim's lease settles it.
    let recorded = match lease::observe(port, account, &replaced.sandbox.sandbox_id).await? {
        Some(SandboxState::Paused) => claimed.paused(cause, back).await,
        Some(SandboxState::Running) => claimed.running(cause, back).await,
        None => {
            let gone = SessionChanges {
                replaces_session: Field::Clear,
                last_error: Field::Set(err.public_message().to_owned()),
                ..SessionChanges::default()
            };
            claimed.record(SessionEvent::Killed, cause, gone).await
        }
    };
    // The old sandbox is the session's own again (or gone): it no longer holds a second unit.
    release(port, claimed.key(), replaced).await;
    recorded
}

/// The replaced sandbox, once the new one runs: saved first when the project says so (best
/// effort), then killed. Should this fail, the reconciler finds it as an orphan.
async fn retire<P: Port>(port: &P, account: &Account, before: &ProjectRecord, replaced: &Replaced) {
    let key = before.project.key();
    if before.project.snapshot_before_kill
        && let Err(err) = snapshot::create_snapshot(
            port,
            before,
            SnapshotKind::AutoBeforeKill,
            "saved before a restore".into(),
        )
        .await
    {
        tracing::warn!(project = %key, error = %err, "snapshot of the replaced sandbox failed; killing it anyway");
    }
    match port.kill(account, &replaced.sandbox.sandbox_id).await {
        Ok(()) | Err(E2bError::NotFound) => release(port, &key, replaced).await,
        Err(err) => {
            tracing::warn!(project = %key, sandbox = %replaced.sandbox.sandbox_id, error = %err, "the replaced sandbox could not be killed; the reconciler kills it as an orphan");
        }
    }
}

/// The replaced sandbox no longer runs as a second one: its live unit goes back to the team.
async fn release<P: Port>(port: &P, key: &ProjectKey, replaced: &Replaced) {
    if replaced.state != SessionState::Running {
        return;
    }
    if let Err(err) = port.release_retiring(key, &replaced.sandbox.sandbox_id).await {
        tracing::warn!(project = %key, error = %err, "a retired sandbox's live unit stays until the reconciler releases it");
    }
}

/// How often a restore's claim is tried again after losing to a write that moved nothing.
const RESTORE_CLAIM_RETRIES: u32 = 2;

/// The sandbox a restore replaces: the session's, while it is RUNNING or PAUSED.
fn replaced_by_restore(record: &ProjectRecord) -> Option<Replaced> {
    let session = record.session.as_ref()?;
    let live = matches!(session.state, SessionState::Running | SessionState::Paused);
    Some(Replaced {
        session_id: session.session_id.clone(),
        state: session.state,
        sandbox: session.sandbox.clone().filter(|_| live)?,
    })
}
