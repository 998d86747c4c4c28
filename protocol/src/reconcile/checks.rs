//! The three checks: a RUNNING session E2B may not run (drift), a listed sandbox no RUNNING session
//! holds (behind, or an orphan), and a session stuck mid-action.

use time::OffsetDateTime;

use super::decide::{self, Finding};
use super::{Listed, Listing, OrphanAction, Outcome};
use crate::domain::{Actor, ProjectKey, SessionEvent, SessionState};
use crate::e2b::{E2bError, SandboxState};
use crate::error::{Error, StoreError};
use crate::policy::OrphanPolicy;
use crate::port::{Consistency, Port};
use crate::record::{FailureCount, IdleCandidate, SessionChanges, SessionWrite, TransitSession};

fn error(what: &str, key: &ProjectKey, err: &Error) -> Outcome {
    tracing::error!(project = %key, error = %err, "{what}");
    Outcome::Error
}

/// The table says RUNNING: does E2B still run that sandbox?
pub async fn check_running<P: Port>(port: &P, session: &IdleCandidate, listing: &Listing) -> Outcome {
    let Some(sandbox_id) = session.sandbox_id.as_deref() else {
        tracing::error!(project = %session.key, "running session without a sandbox id");
        return Outcome::Error;
    };
    if listing.state_of(sandbox_id) == Some(SandboxState::Running) {
        return Outcome::Consistent;
    }
    let account = match port.account(&session.key.team).await {
        Ok(account) => account,
        Err(err) => return error("no E2B account for a running session", &session.key, &err),
    };
    if !listing.covers(&account) {
        return Outcome::Skipped;
    }
    let observed = match port.get_sandbox(&account, sandbox_id).await {
        Ok(detail) => Some(detail.state),
        Err(E2bError::NotFound) => None,
        Err(err) => {
            return error(
                "confirming a sandbox's state with E2B failed",
                &session.key,
                &err.into(),
            );
        }
    };
    let cause = match observed {
        Some(SandboxState::Running) => return Outcome::Consistent,
        Some(SandboxState::Paused) => "E2B reports the sandbox paused",
        None => "E2B no longer has the sandbox",
    };
    correct(
        port,
        Correction {
            key: &session.key,
            version: session.version,
            from: SessionState::Running,
            steps: decide::steps(SessionState::Running, observed),
            cause: cause.into(),
            changes: SessionChanges::default(),
            stuck: false,
        },
    )
    .await
}

/// E2B reports a Sandman sandbox that is not a RUNNING session's current sandbox: the table is
/// behind (it says PAUSED), or no session wants the sandbox (an orphan, handled per policy).
pub async fn check_listed<P: Port>(port: &P, listed: &Listed, now: OffsetDateTime) -> Outcome {
    let policy = port.rules().orphan_policy;
    // Under `pause`, a paused orphan is kept as it is (it costs storage, no compute).
    if listed.sandbox.state == SandboxState::Paused && policy == OrphanPolicy::Pause {
        return Outcome::Consistent;
    }
    let sandbox_id = listed.sandbox.sandbox_id.as_str();
    // A live fork's sandbox names its source: when the named project does not hold it, the
    // project that does (by sandbox id, same team) is the one to compare with.
    let named = match port.read(&listed.owner, Consistency::Strong).await {
        Ok(named) => crate::ops::holder_of(port, &listed.owner, named, sandbox_id).await,
        Err(err) => Err(err),
    };
    let record = match named {
        Ok(record) => record,
        Err(err) => {
            return error(
                "reading the project of a listed sandbox failed",
                &listed.owner,
                &err.into(),
            );
        }
    };
    match decide::classify(record.as_ref(), sandbox_id, listed.sandbox.state) {
        Finding::Consistent | Finding::InTransit => Outcome::Consistent,
        // A restore's old sandbox the restore did not get to kill: killed now, its unit released.
        Finding::Orphan(_) if record.as_ref().is_some_and(|r| retires(r, sandbox_id)) => {
            let key = record
                .as_ref()
                .map(|r| r.project.key())
                .unwrap_or_else(|| listed.owner.clone());
            match port.kill(&listed.account, sandbox_id).await {
                Ok(()) | Err(E2bError::NotFound) => match port.release_retiring(&key, sandbox_id).await {
                    Ok(_) => Outcome::Orphan(OrphanAction::Killed),
                    Err(err) => error("releasing a retired sandbox's unit failed", &key, &err.into()),
                },
                Err(err) => error("killing a retired sandbox failed", &key, &err.into()),
            }
        }
        Finding::Orphan(reason) => orphan(port, listed, reason, policy, now).await,
        Finding::TableSaysPaused => {
            let Some(record) = record else {
                return Outcome::Consistent;
            };
            // Confirm first: the list may predate a pause that just happened.
            match port.get_sandbox(&listed.account, sandbox_id).await {
                Ok(detail) if detail.state == SandboxState::Running => {}
                Ok(_) | Err(E2bError::NotFound) => return Outcome::Consistent,
                Err(err) => {
                    return error(
                        "confirming a sandbox's state with E2B failed",
                        &listed.owner,
                        &err.into(),
                    );
                }
            }
            // The table follows E2B; the idle enforcer then pauses it if it is idle.
            let key = record.project.key();
            correct(
                port,
                Correction {
                    key: &key,
                    version: record.version,
                    from: SessionState::Paused,
                    steps: vec![SessionEvent::Running],
                    cause: "E2B reports the sandbox running".into(),
                    changes: SessionChanges::default(),
                    stuck: false,
                },
            )
            .await
        }
    }
}

/// A sandbox no session wants. Under `kill` (the default) it is killed once it is older than
/// `stuck_after`: by then any claim that made it has recorded it or lapsed and been settled, so it
/// is no one's (a young one may still be a claim's, not yet recorded, and is left for the next run).
/// Under `pause`, a running orphan is paused and kept; under `report`, only reported.
/// Whether `sandbox_id` is the sandbox `record`'s session replaced and still counts as running.
fn retires(record: &crate::record::ProjectRecord, sandbox_id: &str) -> bool {
    record
        .session
        .as_ref()
        .and_then(|s| s.retiring.as_deref())
        .is_some_and(|retiring| retiring == sandbox_id)
}

async fn orphan<P: Port>(
    port: &P,
    listed: &Listed,
    reason: &'static str,
    policy: OrphanPolicy,
    now: OffsetDateTime,
) -> Outcome {
    let sandbox_id = listed.sandbox.sandbox_id.as_str();
    let state = listed.sandbox.state.as_str();
    let settled = now - listed.sandbox.started_at >= port.rules().stuck_after;
    let (action, result) = match (policy, listed.sandbox.state) {
        (OrphanPolicy::Kill, _) if !settled => return Outcome::Consistent,
        (OrphanPolicy::Kill, _) => (OrphanAction::Killed, port.kill(&listed.account, sandbox_id).await),
        (OrphanPolicy::Pause, SandboxState::Running) => {
            (OrphanAction::Paused, port.pause(&listed.account, sandbox_id).await)
        }
        _ => (OrphanAction::Reported, Ok(())),
    };
    match result {
        Ok(()) | Err(E2bError::NotFound | E2bError::Conflict { .. }) => {
            tracing::warn!(project = %listed.owner, sandbox_id, state, reason, action = ?action, "orphan sandbox");
            Outcome::Orphan(action)
        }
        Err(err) => error("acting on an orphan sandbox failed", &listed.owner, &err.into()),
    }
}

/// A session left mid-action (the process died, or E2B's answer and its webhook were both lost):
/// once its claim's lease has lapsed, it is settled from what E2B says, exactly as the next open or
/// heartbeat would settle it (`ops::lease::settle_lapsed`).
pub async fn repair_stuck<P: Port>(port: &P, stuck: &TransitSession, now: OffsetDateTime) -> Outcome {
    // The index may lag: decide from the item itself.
    let record = match port.read(&stuck.key, Consistency::Strong).await {
        Ok(Some(record)) => record,
        Ok(None) => return Outcome::Raced,
        Err(err) => return error("reading a stuck session failed", &stuck.key, &err.into()),
    };
    if !record.session.as_ref().is_some_and(|s| s.lease_lapsed(now)) {
        return Outcome::Raced;
    }
    match crate::ops::lease::settle_lapsed(port, &record, Actor::Reconciler).await {
        Ok(Some(to)) => Outcome::Repaired { to, stuck: true },
        Ok(None) => Outcome::Raced,
        Err(err) => error("settling a stuck session failed", &stuck.key, &err),
    }
}

/// `steps` to apply, in order, to a session read at (`from`, `version`).
struct Correction<'a> {
    key: &'a ProjectKey,
    version: u64,
    from: SessionState,
    steps: Vec<SessionEvent>,
    /// Why, after "reconciled: " in the lifecycle log.
    cause: String,
    /// Carried by the first write.
    changes: SessionChanges,
    /// A stuck transitional session, rather than drift between settled states.
    stuck: bool,
}

/// One or two conditional session writes by the reconciler. A conflict means another writer moved
/// the session since it was read: `Raced`, and the next run looks again.
async fn correct<P: Port>(port: &P, correction: Correction<'_>) -> Outcome {
    let Correction {
        key,
        version,
        from,
        steps,
        cause,
        changes,
        stuck,
    } = correction;
    if steps.is_empty() {
        return Outcome::Consistent;
    }
    let mut at = (version, Some(from));
    let mut first = Some(changes);
    for event in steps {
        let mut changes = first.take().unwrap_or_default();
        if matches!(event, SessionEvent::Paused | SessionEvent::Killed) {
            changes.failures = FailureCount::Reset;
        }
        let write = SessionWrite {
            key: key.clone(),
            expected_version: at.0,
            from: at.1,
            event: Some(event),
            actor: Actor::Reconciler,
            cause: format!("reconciled: {cause}"),
            at: port.now(),
            changes,
            idle_by: None,
            dedupe: None,
            hold: None,
            live_limit: None,
        };
        match port.write(&write).await {
            Ok(written) => at = (written.version, written.state),
            Err(StoreError::Conflict { .. }) => return Outcome::Raced,
            Err(err) => {
                tracing::error!(project = %key, error = %err, "reconciler write failed");
                return Outcome::Error;
            }
        }
    }
    let to = at.1.unwrap_or(SessionState::Killed);
    tracing::warn!(project = %key, from = from.as_str(), to = to.as_str(), cause, "reconciled");
    Outcome::Repaired { to, stuck }
}
