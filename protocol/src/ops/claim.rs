//! One name for "claim, call E2B, record". Every operation that calls E2B about a session first
//! wins a claim (a conditional write into STARTING, PAUSING, RESUMING or STOPPING); the claim hands
//! back a [`Claimed`] session, and what E2B answered is recorded through it. Open, restore, pause
//! and kill each read as their steps: claim, call, record.

use time::OffsetDateTime;

use crate::domain::{Actor, ProjectKey, SessionEvent, SessionState};
use crate::error::{Error, StoreError};
use crate::port::Port;
use crate::record::{Field, SessionChanges, SessionWrite, Written};

/// The answer to a claim: won (this request calls E2B) or lost to another writer.
pub(crate) enum Claim<'a, P> {
    Won(Claimed<'a, P>),
    Lost,
}

/// A session this request holds mid-transition. Each record moves it on from the version the
/// last write left, so two writes of one request never race each other.
pub(crate) struct Claimed<'a, P> {
    port: &'a P,
    key: ProjectKey,
    actor: Actor,
    at: Written,
    /// When the last write of this request entered the state it left: what tells this request's
    /// writes apart from another's, should a write that moved nothing bump the version meanwhile.
    since: OffsetDateTime,
}

/// Applies `write` (a request event); a conflict means another writer got there first. Other
/// store errors, a refusal by the state machine or by the team's live-sandbox quota among them,
/// are the caller's. A claim that starts compute (START, RESTORE, RESUME) takes one of the team's
/// live-sandbox units in the same transaction, or is refused: the quota holds under any concurrency.
pub(crate) async fn claim<'a, P: Port>(port: &'a P, write: &SessionWrite) -> Result<Claim<'a, P>, StoreError> {
    let starts_compute = matches!(
        write.event,
        Some(SessionEvent::Start | SessionEvent::Restore | SessionEvent::Resume)
    );
    let limited;
    let write = if starts_compute {
        limited = SessionWrite {
            live_limit: Some(port.rules().live_per_team),
            ..write.clone()
        };
        &limited
    } else {
        write
    };
    match port.write(write).await {
        Ok(at) => Ok(Claim::Won(Claimed {
            port,
            key: write.key.clone(),
            actor: write.actor,
            at,
            since: write.at,
        })),
        Err(StoreError::Conflict { .. }) => Ok(Claim::Lost),
        Err(err) => Err(err),
    }
}

impl<P: Port> Claimed<'_, P> {
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
        let now = self.port.now();
        let write = SessionWrite::following(&self.key, self.at, self.actor, cause, now)
            .event(event)
            .changes(changes);
        self.at = settle(self.port, write, self.since).await?;
        self.since = now;
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

/// Applies `write`, the next write of a claim whose last write entered its state at `since`. On a
/// conflict the session is read again:
/// - still in the state this claim left it in, entered at `since`: the winner moved nothing (a
///   webhook's ordering mark, an activity): the write is made again on the new version;
/// - already in the write's target state: a webhook recorded the same outcome first (E2B's event
///   can beat its own HTTP answer): success, and the write's changes (the sandbox's address and
///   token, the timeout, the reset failure count) are still applied, best effort;
/// - anything else: another writer moved the session: `Conflict`.
pub(crate) async fn settle<P: Port>(
    port: &P,
    mut write: SessionWrite,
    since: OffsetDateTime,
) -> Result<Written, Error> {
    let target = write
        .event
        .and_then(|event| crate::domain::transition(write.from, event).ok());
    for _ in 0..SETTLE_ATTEMPTS {
        let current = match port.write(&write).await {
            Ok(written) => return Ok(written),
            Err(StoreError::Conflict { .. }) => super::project(port, &write.key).await?,
            Err(err) => return Err(err.into()),
        };
        let session = current.session.as_ref();
        let unmoved = current.state() == write.from && session.is_some_and(|s| same_ms(s.state_since, since));
        if unmoved {
            write.expected_version = current.version;
            continue;
        }
        return match (current.state(), target) {
            (Some(now), Some(target)) if now == target => {
                let mut written = Written {
                    version: current.version,
                    state: Some(now),
                };
                if write.changes != SessionChanges::default() {
                    let again = SessionWrite::new(&current, write.actor, write.cause.clone(), port.now())
                        .changes(write.changes.clone());
                    if let Ok(moved) = port.write(&again).await {
                        written = moved;
                    }
                }
                Ok(written)
            }
            _ => Err(Error::Conflict(format!(
                "the sandbox moved to {} while Sandman was changing it",
                current.state().map_or("nothing", SessionState::as_str)
            ))),
        };
    }
    Err(Error::Conflict(
        "the sandbox kept changing while Sandman was recording it".into(),
    ))
}

/// How often a claim's write is made again after losing to writes that moved nothing.
const SETTLE_ATTEMPTS: usize = 4;

/// The store keeps milliseconds.
fn same_ms(a: OffsetDateTime, b: OffsetDateTime) -> bool {
    a.unix_timestamp_nanos() / 1_000_000 == b.unix_timestamp_nanos() / 1_000_000
}
