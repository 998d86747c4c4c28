//! The model's port: it replays an operation from its start with the outcomes recorded so far, and
//! stops it at the first effect without one. That effect is what the operation asks for next; the
//! model then chooses its outcome (every one E2B and the store could give), records it, and the
//! next replay goes one step further. An operation is the very `async fn` the Lambdas run: it is
//! polled once with a waker that is never used, so each `.await` on the port is one model step.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sandman_protocol::domain::{
    Actor, ForkSource, ProjectId, ProjectKey, ProjectSpec, SessionState, Snapshot, SnapshotId, TeamId,
};
use sandman_protocol::e2b::{
    Connected, E2bError, LaunchSettings, ListedSandbox, NewSandbox, Sandbox, SandboxDetail, SandboxFilter, SnapshotInfo,
};
use sandman_protocol::policy::Rules;
use sandman_protocol::port::{Account, Consistency, Port};
use sandman_protocol::record::{
    ActivityWrite, Counted, IdleDeferral, ProjectRecord, SessionWrite, SnapshotAdmission, Written,
};
use sandman_protocol::{Error, StoreError};
use time::OffsetDateTime;

use crate::effect::{Effect, Outcome};
use crate::ops::{Answer, Op, run};
use crate::world::{T0, at};

/// Where a replayed operation stands.
#[allow(clippy::large_enum_variant, reason = "lives for one step of a replay")]
pub enum Replayed<A> {
    /// It asks for this effect next.
    Asks(Effect),
    /// It finished with this answer.
    Answered(A),
}

/// Replays `op` over `outcomes` (each with the model time it was delivered at).
pub fn replay(rules: &Rules, start: u32, id_prefix: &str, outcomes: &[(Outcome, u32)], op: &Op) -> Replayed<Answer> {
    let port = ReplayPort {
        rules,
        start,
        id_prefix,
        outcomes,
        cursor: AtomicUsize::new(0),
        ids: AtomicU32::new(0),
        pending: Mutex::new(None),
        deadline: Mutex::new(None),
    };
    let future = run(op, &port);
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(answer) => {
            assert_eq!(
                port.cursor.load(Ordering::SeqCst),
                outcomes.len(),
                "an operation finished before using every outcome recorded for it: it is not deterministic"
            );
            Replayed::Answered(answer)
        }
        Poll::Pending => {
            let pending = port.pending.lock().unwrap().take();
            Replayed::Asks(pending.expect("an operation waited on something other than the port"))
        }
    }
}

pub struct ReplayPort<'a> {
    rules: &'a Rules,
    start: u32,
    id_prefix: &'a str,
    outcomes: &'a [(Outcome, u32)],
    cursor: AtomicUsize,
    ids: AtomicU32,
    pending: Mutex<Option<Effect>>,
    /// Set by `within_lease`: E2B calls later than this are not sent (the Lambda's deadline).
    deadline: Mutex<Option<u32>>,
}

/// The outcome recorded for the next effect, or `Pending` (for good) with the effect noted.
struct Take<'p, 'a> {
    port: &'p ReplayPort<'a>,
    effect: Option<Effect>,
}

impl Future for Take<'_, '_> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Outcome> {
        let i = self.port.cursor.load(Ordering::SeqCst);
        match self.port.outcomes.get(i) {
            Some((outcome, _)) => {
                self.port.cursor.store(i + 1, Ordering::SeqCst);
                Poll::Ready(outcome.clone())
            }
            None => {
                *self.port.pending.lock().unwrap() = self.effect.take();
                Poll::Pending
            }
        }
    }
}

/// How long before its lease ends a claimant stops starting E2B calls (`LAMBDA_MARGIN`).
const MARGIN: u32 = 3;

impl<'a> ReplayPort<'a> {
    fn clock(&self) -> u32 {
        let i = self.cursor.load(Ordering::SeqCst);
        match i {
            0 => self.start,
            i => self.outcomes[i - 1].1,
        }
    }

    /// An E2B call past the deadline is not sent: the operation learns it as E2B being
    /// unavailable with no attempt made, and nothing reaches E2B.
    fn too_late(&self) -> Option<E2bError> {
        let deadline = *self.deadline.lock().unwrap();
        deadline.filter(|d| self.clock() > *d).map(|_| E2bError::Unavailable {
            attempts: 0,
            detail: "no time left before the deadline".into(),
        })
    }

    fn take(&self, effect: Effect) -> Take<'_, 'a> {
        Take {
            port: self,
            effect: Some(effect),
        }
    }
}

macro_rules! expect {
    ($outcome:expr, $variant:ident) => {
        match $outcome {
            Outcome::$variant(value) => value,
            other => panic!(
                concat!("expected ", stringify!($variant), ", the replay gave {:?}"),
                other
            ),
        }
    };
}

impl Port for ReplayPort<'_> {
    fn now(&self) -> OffsetDateTime {
        at(self.clock())
    }

    fn new_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::SeqCst);
        format!("{}n{n}", self.id_prefix)
    }

    fn rules(&self) -> &Rules {
        self.rules
    }

    fn within_lease<F: Future + Send>(&self, work: F) -> impl Future<Output = F::Output> + Send {
        let until = self.clock() + sandman_protocol::domain::CLAIM_LEASE.as_secs() as u32 - MARGIN;
        let mut deadline = self.deadline.lock().unwrap();
        if deadline.is_none_or(|d| d > until) {
            *deadline = Some(until);
        }
        work
    }

    async fn read(&self, key: &ProjectKey, _: Consistency) -> Result<Option<ProjectRecord>, StoreError> {
        expect!(self.take(Effect::Read(key.clone())).await, Record)
    }

    async fn write(&self, write: &SessionWrite) -> Result<Written, StoreError> {
        expect!(self.take(Effect::Write(Box::new(write.clone()))).await, Written)
    }

    async fn record_activity(
        &self,
        key: &ProjectKey,
        sandbox_id: &str,
        activity: &ActivityWrite,
    ) -> Result<bool, StoreError> {
        let effect = Effect::RecordActivity(key.clone(), sandbox_id.to_owned(), activity.clone());
        expect!(self.take(effect).await, Flag)
    }

    async fn record_timeout(&self, key: &ProjectKey, sandbox_id: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        expect!(
            self.take(Effect::RecordTimeout(key.clone(), sandbox_id.to_owned(), at))
                .await,
            Flag
        )
    }

    async fn defer_idle(&self, deferral: &IdleDeferral) -> Result<bool, StoreError> {
        expect!(self.take(Effect::DeferIdle(deferral.clone())).await, Flag)
    }

    async fn release_retiring(&self, key: &ProjectKey, sandbox_id: &str) -> Result<bool, StoreError> {
        expect!(
            self.take(Effect::ReleaseRetiring(key.clone(), sandbox_id.to_owned()))
                .await,
            Flag
        )
    }

    async fn find_by_sandbox(&self, sandbox_id: &str) -> Result<Option<ProjectRecord>, StoreError> {
        expect!(self.take(Effect::FindBySandbox(sandbox_id.to_owned())).await, Record)
    }

    async fn delete_project(&self, key: &ProjectKey, version: Option<u64>) -> Result<(), StoreError> {
        expect!(self.take(Effect::DeleteProject(key.clone(), version)).await, Done)
    }

    async fn create_project(&self, spec: &ProjectSpec, fork: Option<&ForkSource>) -> Result<ProjectRecord, StoreError> {
        expect!(
            self.take(Effect::CreateProject(spec.clone(), fork.cloned())).await,
            Created
        )
    }

    async fn clear_fork(&self, key: &ProjectKey) -> Result<bool, StoreError> {
        expect!(self.take(Effect::ClearFork(key.clone())).await, Flag)
    }

    async fn mark_live_fork(
        &self,
        source: &ProjectKey,
        fork: &ProjectId,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        expect!(
            self.take(Effect::MarkLiveFork(source.clone(), fork.clone(), until))
                .await,
            Flag
        )
    }

    async fn clear_live_fork(&self, source: &ProjectKey, fork: &ProjectId) -> Result<(), StoreError> {
        expect!(
            self.take(Effect::ClearLiveFork(source.clone(), fork.clone())).await,
            Done
        )
    }

    async fn list_snapshots(&self, key: &ProjectKey, limit: usize) -> Result<Vec<Snapshot>, StoreError> {
        expect!(self.take(Effect::ListSnapshots(key.clone(), limit)).await, Snapshots)
    }

    async fn get_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Result<Option<Snapshot>, StoreError> {
        expect!(self.take(Effect::GetSnapshot(key.clone(), id.clone())).await, Snapshot)
    }

    /// The model keeps no snapshot quota: every row is admitted.
    async fn put_snapshot(&self, snapshot: &Snapshot, _admission: SnapshotAdmission) -> Result<(), StoreError> {
        expect!(self.take(Effect::PutSnapshot(Box::new(snapshot.clone()))).await, Done)
    }

    async fn complete_snapshot(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        e2b_snapshot_id: &str,
    ) -> Result<(), StoreError> {
        let effect = Effect::CompleteSnapshot(key.clone(), id.clone(), e2b_snapshot_id.to_owned());
        expect!(self.take(effect).await, Done)
    }

    async fn delete_snapshot_row(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), StoreError> {
        expect!(
            self.take(Effect::DeleteSnapshotRow(key.clone(), id.clone())).await,
            Done
        )
    }

    /// The model's E2B never refuses a snapshot's deletion, so nothing here asks for this.
    async fn unmark_deleting(&self, _key: &ProjectKey, _id: &SnapshotId) -> Result<(), StoreError> {
        Ok(())
    }

    async fn mark_deleting(&self, key: &ProjectKey, id: &SnapshotId) -> Result<Snapshot, StoreError> {
        expect!(
            self.take(Effect::MarkDeleting(key.clone(), id.clone())).await,
            SnapshotRow
        )
    }

    async fn hold_for_fork(&self, key: &ProjectKey, id: &SnapshotId, until: OffsetDateTime) -> Result<(), StoreError> {
        expect!(
            self.take(Effect::HoldSnapshot(key.clone(), id.clone(), until)).await,
            Done
        )
    }

    async fn release_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), StoreError> {
        expect!(self.take(Effect::ReleaseSnapshot(key.clone(), id.clone())).await, Done)
    }

    async fn release_fork_hold(&self, key: &ProjectKey, id: &SnapshotId) -> Result<(), StoreError> {
        expect!(self.take(Effect::ReleaseForkHold(key.clone(), id.clone())).await, Done)
    }

    async fn make_room(&self, _taken: &Snapshot) {}

    async fn set_pinned(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        pinned: bool,
        _limit: u32,
    ) -> Result<Snapshot, StoreError> {
        expect!(
            self.take(Effect::SetPinned(key.clone(), id.clone(), pinned)).await,
            SnapshotRow
        )
    }

    async fn mark_prune_due(&self, key: &ProjectKey) -> Result<(), StoreError> {
        expect!(self.take(Effect::MarkPruneDue(key.clone())).await, Done)
    }

    async fn reschedule_prune(
        &self,
        key: &ProjectKey,
        seen: OffsetDateTime,
        marks: u64,
        next: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        expect!(
            self.take(Effect::ReschedulePrune(key.clone(), seen, marks, next)).await,
            Flag
        )
    }

    async fn note_event(
        &self,
        key: &ProjectKey,
        actor: Actor,
        cause: &str,
        state: SessionState,
    ) -> Result<(), StoreError> {
        expect!(
            self.take(Effect::NoteEvent(key.clone(), actor, cause.to_owned(), state))
                .await,
            Done
        )
    }

    async fn count_usage(&self, key: &ProjectKey, counted: &Counted) -> Result<bool, StoreError> {
        expect!(self.take(Effect::CountUsage(key.clone(), counted.clone())).await, Flag)
    }

    async fn execution_counted(&self, _: &TeamId, execution: &str) -> Result<bool, StoreError> {
        expect!(self.take(Effect::ExecutionCounted(execution.to_owned())).await, Flag)
    }

    async fn budget_allows(&self, _: &TeamId) -> Result<(), Error> {
        expect!(self.take(Effect::BudgetAllows).await, Allowed)
    }

    async fn project_room(&self, key: &ProjectKey) -> Result<(), Error> {
        expect!(self.take(Effect::ProjectRoom(key.clone())).await, Allowed)
    }

    async fn live_room(&self, _: &TeamId) -> Result<(), Error> {
        expect!(self.take(Effect::LiveRoom).await, Allowed)
    }

    async fn after_usage(&self, key: &ProjectKey, _: OffsetDateTime) {
        let Outcome::Nothing = self.take(Effect::AfterUsage(key.clone())).await else {
            panic!("expected Nothing")
        };
    }

    fn recently_active(&self, _: &ProjectKey, _: OffsetDateTime) -> bool {
        false
    }

    fn remember_activity(&self, _: &ProjectKey, _: OffsetDateTime) {}

    fn check_template(&self, _: &TeamId, _: &str) -> Result<(), Error> {
        Ok(())
    }

    async fn account(&self, _: &TeamId) -> Result<Account, Error> {
        expect!(self.take(Effect::Account).await, Account)
    }

    async fn launch_settings(&self, _: &Account, key: &ProjectKey) -> Result<LaunchSettings, Error> {
        expect!(self.take(Effect::LaunchSettings(key.clone())).await, Launch)
    }

    async fn create_sandbox(&self, _: &Account, new: &NewSandbox) -> Result<Sandbox, E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(self.take(Effect::Create(new.clone())).await, Sandbox)
    }

    async fn connect(&self, _: &Account, sandbox_id: &str, timeout: Duration) -> Result<Connected, E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(
            self.take(Effect::Connect(sandbox_id.to_owned(), timeout)).await,
            Connected
        )
    }

    async fn pause(&self, _: &Account, sandbox_id: &str) -> Result<(), E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(self.take(Effect::Pause(sandbox_id.to_owned())).await, Called)
    }

    async fn kill(&self, _: &Account, sandbox_id: &str) -> Result<(), E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(self.take(Effect::Kill(sandbox_id.to_owned())).await, Called)
    }

    async fn get_sandbox(&self, _: &Account, sandbox_id: &str) -> Result<SandboxDetail, E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(self.take(Effect::Get(sandbox_id.to_owned())).await, Detail)
    }

    async fn list_sandboxes(&self, _: &Account, filter: &SandboxFilter) -> Result<Vec<ListedSandbox>, E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(self.take(Effect::List(filter.clone())).await, Listed)
    }

    async fn fork(&self, _: &Account, sandbox_id: &str, timeout: Duration) -> Result<Sandbox, E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(self.take(Effect::Fork(sandbox_id.to_owned(), timeout)).await, Sandbox)
    }

    async fn set_timeout(&self, _: &Account, sandbox_id: &str, timeout: Duration) -> Result<(), E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(
            self.take(Effect::SetTimeout(sandbox_id.to_owned(), timeout)).await,
            Called
        )
    }

    async fn create_e2b_snapshot(&self, _: &Account, sandbox_id: &str, name: &str) -> Result<SnapshotInfo, E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(
            self.take(Effect::CreateSnapshot(sandbox_id.to_owned(), name.to_owned()))
                .await,
            SnapshotInfo
        )
    }

    async fn list_e2b_snapshots(&self, _: &Account, sandbox_id: &str) -> Result<Vec<SnapshotInfo>, E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(
            self.take(Effect::ListE2bSnapshots(sandbox_id.to_owned())).await,
            SnapshotInfos
        )
    }

    async fn delete_e2b_snapshot(&self, _: &Account, e2b_snapshot_id: &str) -> Result<(), E2bError> {
        if let Some(late) = self.too_late() {
            return Err(late);
        }
        expect!(
            self.take(Effect::DeleteE2bSnapshot(e2b_snapshot_id.to_owned())).await,
            Called
        )
    }
}

#[allow(dead_code)]
const _: OffsetDateTime = T0;
