//! Sessions left mid-action (the process died, or E2B's answer and its webhook were both lost):
//! set them to what E2B says.

use time::OffsetDateTime;
use tokio::time::Instant;

use super::correct::Correction;
use super::view::E2bView;
use super::{Outcome, PAGE_SIZE, decide, error};
use crate::Sandman;
use crate::domain::{SandboxRef, SessionState};
use crate::e2b::{E2bError, SandboxState};
use crate::store::{Consistency, SessionChanges, StoreError, TransitSession, keys};

impl Sandman {
    /// Sessions that entered a transitional state more than `stuck_after` ago.
    pub(super) async fn stuck_sessions(&self, now: OffsetDateTime) -> Result<Vec<TransitSession>, StoreError> {
        let entered_by = now - self.config.enforcer.stuck_after;
        let mut stuck = Vec::new();
        for shard in keys::transit_shards() {
            let mut cursor = None;
            loop {
                let page = self
                    .store
                    .transit_page(&shard, entered_by, PAGE_SIZE, cursor.as_ref())
                    .await?;
                stuck.extend(page.items);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(stuck)
    }

    pub(super) async fn repair_stuck(
        &self,
        stuck: &TransitSession,
        view: &E2bView,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Outcome {
        if Instant::now() >= deadline {
            return Outcome::Skipped;
        }
        // The index may lag: decide from the item itself.
        let record = match self.store.get_project(&stuck.key, Consistency::Strong).await {
            Ok(Some(record)) => record,
            Ok(None) => return Outcome::Raced,
            Err(err) => return error("reading a stuck session failed", &stuck.key, &err.into()),
        };
        let Some(session) = record.session.as_ref().filter(|s| s.state.is_transitional()) else {
            return Outcome::Raced;
        };
        if now - session.state_since < self.config.enforcer.stuck_after {
            return Outcome::Raced;
        }
        // A start that never recorded its sandbox: E2B may have created it (its metadata names
        // this session). Any other state concerns the session's recorded sandbox.
        // A restore's claim that made none goes back to the sandbox it was replacing.
        let started = match session.state {
            SessionState::Starting => view
                .sandboxes
                .values()
                .find(|listed| {
                    listed.owner == stuck.key && listed.session_id.as_deref() == Some(session.session_id.as_str())
                })
                .map(|listed| listed.sandbox.sandbox_id.clone()),
            _ => None,
        };
        let back_to = session.replaced().filter(|_| started.is_none());
        let sandbox_id = match (session.state, &back_to) {
            (SessionState::Starting, None) => started,
            (SessionState::Starting, Some((_, replaced))) => Some(replaced.sandbox_id.clone()),
            _ => session.sandbox.as_ref().map(|s| s.sandbox_id.clone()),
        };
        let observed = match &sandbox_id {
            None => None,
            Some(id) => {
                let e2b = match self.e2b_for(&stuck.key).await {
                    Ok(e2b) => e2b,
                    Err(err) => {
                        return error("no E2B account for a stuck session", &stuck.key, &err);
                    }
                };
                match e2b.get_sandbox(id).await {
                    Ok(detail) => Some((detail.state, detail.domain)),
                    Err(E2bError::NotFound) => None,
                    Err(err) => {
                        return error("asking E2B about a stuck session failed", &stuck.key, &err.into());
                    }
                }
            }
        };
        let mut changes = SessionChanges {
            session_id: back_to.map(|(session_id, _)| session_id.to_owned()),
            ..SessionChanges::default()
        };
        if let (SessionState::Starting, None, Some(id), Some((_, domain))) =
            (session.state, back_to, &sandbox_id, &observed)
        {
            changes.sandbox = Some(SandboxRef {
                sandbox_id: id.clone(),
                domain: domain.clone(),
                access_token: None,
            });
            changes.last_active_at = Some(now);
        }
        let observed = observed.map(|(state, _)| state);
        let minutes = (now - session.state_since).whole_minutes();
        let cause = format!(
            "{} for {minutes} min; E2B reports the sandbox {}",
            session.state.as_str(),
            describe(observed)
        );
        self.correct(Correction {
            key: &stuck.key,
            version: record.version,
            from: session.state,
            steps: decide::steps(session.state, observed),
            cause,
            changes,
            stuck: true,
        })
        .await
    }
}

fn describe(state: Option<SandboxState>) -> &'static str {
    match state {
        Some(SandboxState::Running) => "running",
        Some(SandboxState::Paused) => "paused",
        None => "gone",
    }
}
