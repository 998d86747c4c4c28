//! Session-cap handoff: E2B ends a sandbox's continuous run at its plan's cap, and a pause starts a
//! new window. An active sandbox near the cap is paused and resumed at once (memory and processes
//! kept; the frontend sees a short RESUMING), or, when its project says so, snapshotted, killed
//! and reopened from that snapshot. Every lifecycle-log line it writes says "session cap handoff".

use time::OffsetDateTime;

use super::{Acted, Verdict, pause_not_done};
use crate::domain::{Actor, CapHandoff};
use crate::error::Error;
use crate::ops::kill::{SnapshotFirst, kill_as_read};
use crate::ops::open::{open, resume};
use crate::ops::pause::{PauseOutcome, PauseRequest, pause};
use crate::port::Port;
use crate::record::IdleCandidate;

pub const HANDOFF_CAUSE: &str = "session cap handoff";

pub async fn hand_off<P: Port>(port: &P, candidate: &IdleCandidate, now: OffsetDateTime) -> Acted {
    match candidate.cap_handoff {
        CapHandoff::PauseResume => pause_and_resume(port, candidate, now).await,
        CapHandoff::SnapshotReopen => snapshot_and_reopen(port, candidate).await.into(),
    }
}

async fn pause_and_resume<P: Port>(port: &P, candidate: &IdleCandidate, now: OffsetDateTime) -> Acted {
    let sandbox_id = candidate.sandbox_id.clone().unwrap_or_default();
    let request = PauseRequest {
        key: candidate.key.clone(),
        expected_version: candidate.version,
        sandbox_id: sandbox_id.clone(),
        actor: Actor::IdleEnforcer,
        cause: HANDOFF_CAUSE.into(),
        // Claimed as the idle enforcer claims: only while the deadline it read still holds.
        idle_by: Some(now),
        snapshot_first: false,
    };
    match pause(port, request).await {
        Ok(PauseOutcome::Paused | PauseOutcome::AlreadyPaused) => {}
        Ok(outcome) => return pause_not_done(port, candidate, &sandbox_id, outcome),
        Err(err) => {
            tracing::error!(error = %err, "handoff pause could not be recorded");
            return Verdict::Failed { flagged: false }.into();
        }
    }
    // E2B's `paused` webhook may land between the pause and the resume: the claim then meets a
    // newer version, and is simply tried again.
    let mut resumed = resume(port, &candidate.key, Actor::IdleEnforcer, HANDOFF_CAUSE).await;
    for _ in 0..2 {
        if !matches!(resumed, Err(Error::Conflict(_))) {
            break;
        }
        resumed = resume(port, &candidate.key, Actor::IdleEnforcer, HANDOFF_CAUSE).await;
    }
    match resumed {
        Ok(_) => {
            tracing::info!("session cap handoff: paused and resumed");
            Verdict::HandedOff.into()
        }
        Err(err) => {
            // Paused, which is what the cap would not have allowed: activity wakes it again.
            tracing::warn!(error = %err, "handoff paused the sandbox but could not resume it");
            Verdict::Paused { minutes_saved: 0.0 }.into()
        }
    }
}

async fn snapshot_and_reopen<P: Port>(port: &P, candidate: &IdleCandidate) -> Verdict {
    // Only the session the tick read: one restored or reopened since is not handed off.
    let record = match crate::ops::project(port, &candidate.key).await {
        Ok(record) if record.version == candidate.version => record,
        Ok(_) => return Verdict::SkippedActive,
        Err(err) => {
            tracing::warn!(error = %err, "handoff could not read the session");
            return Verdict::Failed { flagged: false };
        }
    };
    if let Err(err) = kill_as_read(
        port,
        record,
        SnapshotFirst::Required,
        Actor::IdleEnforcer,
        Some(HANDOFF_CAUSE),
    )
    .await
    {
        // A refused snapshot abandons the kill: the sandbox still runs and is tried next tick.
        tracing::warn!(error = %err, "handoff could not snapshot and stop the sandbox");
        return Verdict::Failed { flagged: false };
    }
    match open(port, &candidate.key, Actor::IdleEnforcer).await {
        Ok(_) => {
            tracing::info!("session cap handoff: snapshotted and reopened");
            Verdict::HandedOff
        }
        Err(err) => {
            tracing::warn!(error = %err, "handoff saved and stopped the sandbox; the next open restores it");
            Verdict::Failed { flagged: false }
        }
    }
}
