//! One name for "claim, call E2B, record". Every operation that calls E2B about a session first
//! wins a claim (a conditional write into STARTING, PAUSING, RESUMING or STOPPING); the claim hands
//! back a [`Claimed`] session, and what E2B answered is recorded through it. Open, restore, pause
//! and kill each read as their steps: claim, call, record.

use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionEvent};
use crate::error::Error;
use crate::store::{Field, SessionChanges, SessionWrite, StoreError, Written};

/// The answer to a claim: won (this request calls E2B) or lost to another writer.
pub(crate) enum Claim<'a> {
    Won(Claimed<'a>),
    Lost,
}

/// A session this request holds mid-transition. Each record moves it on from the version the
/// last write left, so two writes of one request never race each other.
pub(crate) struct Claimed<'a> {
    sandman: &'a Sandman,
    key: ProjectKey,
    actor: Actor,
    at: Written,
}

impl Sandman {
    /// Applies `write` (a request event); a conflict means another writer got there first.
    /// Other store errors, a refusal by the state machine among them, are the caller's.
    pub(crate) async fn claim(&self, write: &SessionWrite) -> Result<Claim<'_>, StoreError> {
        match self.store.write_session(write).await {
            Ok(at) => Ok(Claim::Won(Claimed {
                sandman: self,
                key: write.key.clone(),
                actor: write.actor,
                at,
            })),
            Err(StoreError::Conflict { .. }) => Ok(Claim::Lost),
            Err(err) => Err(err),
        }
    }
}

impl Claimed<'_> {
    pub(crate) fn key(&self) -> &ProjectKey {
        &self.key
    }

    /// Records `event` with `changes`. A webhook may have recorded the same outcome first: a
    /// conflict whose winner reached the same state counts as recorded.
    pub(crate) async fn record(
        &mut self,
        event: SessionEvent,
        cause: impl Into<String>,
        changes: SessionChanges,
    ) -> Result<(), Error> {
        let now = self.sandman.now();
        let write = SessionWrite::following(&self.key, self.at, self.actor, cause, now)
            .event(event)
            .changes(changes);
        self.at = self.sandman.settle(write).await?;
        Ok(())
    }

    /// E2B runs the session's sandbox.
    pub(crate) async fn running(&mut self, cause: impl Into<String>, changes: SessionChanges) -> Result<(), Error> {
        self.record(SessionEvent::Running, cause, changes).await
    }

    /// E2B has the session's sandbox paused.
    pub(crate) async fn paused(&mut self, cause: impl Into<String>, changes: SessionChanges) -> Result<(), Error> {
        self.record(SessionEvent::Paused, cause, changes).await
    }

    /// E2B no longer has the session's sandbox (or killed it as asked).
    pub(crate) async fn killed(&mut self, cause: impl Into<String>) -> Result<(), Error> {
        self.record(SessionEvent::Killed, cause, SessionChanges::default())
            .await
    }

    /// E2B refused without changing anything: the claim is rolled back, with the error kept.
    pub(crate) async fn failed(
        &mut self,
        cause: impl Into<String>,
        error: impl Into<String>,
        changes: SessionChanges,
    ) -> Result<(), Error> {
        let changes = SessionChanges {
            last_error: Field::Set(error.into()),
            ..changes
        };
        self.record(SessionEvent::Failed, cause, changes).await
    }
}
