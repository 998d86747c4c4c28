//! Session-cap handoff: E2B ends a sandbox's continuous run at its plan's cap, and a pause starts a
//! new window. An active sandbox near the cap is paused and resumed at once (memory and processes
//! kept; the frontend sees a short RESUMING), or, when its project says so, snapshotted, killed
//! and reopened from that snapshot. Every lifecycle-log line it writes says "session cap handoff".

use time::OffsetDateTime;
use tracing::Instrument;

use super::{Benched, Verdict};
use crate::Sandman;
use crate::domain::{Actor, CapHandoff};
use crate::error::Error;
use crate::store::IdleCandidate;
use crate::workspace::{PauseOutcome, PauseRequest};

pub(crate) const HANDOFF_CAUSE: &str = "session cap handoff";

impl Sandman {
    pub(super) async fn hand_off(&self, candidate: &IdleCandidate, now: OffsetDateTime, benched: &Benched) -> Verdict {
        let span = tracing::info_span!("handoff", project = %candidate.key);
        async move {
            match candidate.cap_handoff {
                CapHandoff::PauseResume => self.pause_and_resume(candidate, now, benched).await,
                CapHandoff::SnapshotReopen => self.snapshot_and_reopen(candidate).await,
            }
        }
        .instrument(span)
        .await
    }

    async fn pause_and_resume(&self, candidate: &IdleCandidate, now: OffsetDateTime, benched: &Benched) -> Verdict {
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
        match self.pause(request).await {
            Ok(PauseOutcome::Paused | PauseOutcome::AlreadyPaused) => {}
            Ok(outcome) => return self.pause_not_done(candidate, &sandbox_id, outcome, benched),
            Err(err) => {
                tracing::error!(error = %err, "handoff pause could not be recorded");
                return Verdict::Failed { flagged: false };
            }
        }
        // E2B's `paused` webhook may land between the pause and the resume: the claim then meets a
        // newer version, and is simply tried again.
        let mut resumed = self
            .resume_because(&candidate.key, Actor::IdleEnforcer, HANDOFF_CAUSE)
            .await;
        for _ in 0..2 {
            if !matches!(resumed, Err(Error::Conflict(_))) {
                break;
            }
            resumed = self
                .resume_because(&candidate.key, Actor::IdleEnforcer, HANDOFF_CAUSE)
                .await;
        }
        match resumed {
            Ok(_) => {
                tracing::info!("session cap handoff: paused and resumed");
                Verdict::HandedOff
            }
            Err(err) => {
                // Paused, which is what the cap would not have allowed: activity wakes it again.
                tracing::warn!(error = %err, "handoff paused the sandbox but could not resume it");
                Verdict::Paused { minutes_saved: 0.0 }
            }
        }
    }

    async fn snapshot_and_reopen(&self, candidate: &IdleCandidate) -> Verdict {
        if let Err(err) = self
            .kill_because(&candidate.key, Some(true), Actor::IdleEnforcer, Some(HANDOFF_CAUSE))
            .await
        {
            // A refused snapshot abandons the kill: the sandbox still runs and is tried next tick.
            tracing::warn!(error = %err, "handoff could not snapshot and stop the sandbox");
            return Verdict::Failed { flagged: false };
        }
        match self.open(&candidate.key, Actor::IdleEnforcer).await {
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
}
