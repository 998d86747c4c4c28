//! The one door between the protocol and the world. Every operation is an `async fn` generic over
//! a [`Port`]: each `.await` on a port method is one effect (a store read or conditional write, an
//! E2B call), and the value it returns is that effect's result. The Lambdas run the operations with
//! `sandman`'s port (DynamoDB and E2B); the model checker runs the very same operations with a port
//! that hands back every result E2B and the store could give, and may stop an operation between any
//! two effects, as a Lambda cut at its deadline stops.
//!
//! Nothing here performs I/O, reads a clock or draws a random number: time and new ids come from
//! the port too.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::{ProjectId, ProjectKey, ProjectSpec, Snapshot, SnapshotId, TeamId};
use crate::e2b::{
    Connected, E2bError, LaunchSettings, ListedSandbox, NewSandbox, Sandbox, SandboxDetail, SandboxFilter, SnapshotInfo,
};
use crate::error::{Error, StoreError};
use crate::policy::Rules;
use crate::record::{ActivityWrite, Counted, IdleDeferral, ProjectRecord, SessionWrite, SnapshotAdmission, Written};

/// Reads that feed a decision to write use `Strong`; status reads for frontends use `Eventual`
/// (half the price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consistency {
    Eventual,
    Strong,
}

/// One E2B account (an API key), named by the key's fingerprint: every E2B call goes to one. The
/// port holds the key; the protocol only passes the name on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account(pub String);

type Stored<T> = Result<T, StoreError>;
type Called<T> = Result<T, E2bError>;

pub trait Port: Sync {
    /// The time of the current step.
    fn now(&self) -> OffsetDateTime;
    /// A new unique id, sortable by creation (a ULID in production).
    fn new_id(&self) -> String;
    /// The deployment's rules, parsed once per cold start.
    fn rules(&self) -> &Rules;
    /// Runs `work` so that it ends inside one claim lease: E2B calls that could not finish before
    /// the lease (less a margin to record their outcome) are not started.
    fn within_lease<F: Future + Send>(&self, work: F) -> impl Future<Output = F::Output> + Send;

    // --- the project item -------------------------------------------------------------------
    fn read(
        &self,
        key: &ProjectKey,
        consistency: Consistency,
    ) -> impl Future<Output = Stored<Option<ProjectRecord>>> + Send;
    /// One conditional session write (see `record::apply` for what it does).
    fn write(&self, write: &SessionWrite) -> impl Future<Output = Stored<Written>> + Send;
    /// Activity on a session still RUNNING `sandbox_id`; `false` when its condition failed.
    fn record_activity(
        &self,
        key: &ProjectKey,
        sandbox_id: &str,
        activity: &ActivityWrite,
    ) -> impl Future<Output = Stored<bool>> + Send;
    /// E2B's timeout of the session's sandbox (still RUNNING `sandbox_id`) was extended to `at`.
    fn record_timeout(
        &self,
        key: &ProjectKey,
        sandbox_id: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Stored<bool>> + Send;
    fn defer_idle(&self, deferral: &IdleDeferral) -> impl Future<Output = Stored<bool>> + Send;
    /// The session's `retiring` sandbox is gone: its live-sandbox unit is released. `false` when the
    /// session no longer names that sandbox as retiring (someone released it first).
    fn release_retiring(&self, key: &ProjectKey, sandbox_id: &str) -> impl Future<Output = Stored<bool>> + Send;
    /// The project whose current or last sandbox is `sandbox_id` (`bySandbox`: eventually consistent),
    /// read strongly once found.
    fn find_by_sandbox(&self, sandbox_id: &str) -> impl Future<Output = Stored<Option<ProjectRecord>>> + Send;
    /// Deletes the project item; with `version`, `Conflict` unless it still holds that version.
    fn delete_project(&self, key: &ProjectKey, version: Option<u64>) -> impl Future<Output = Stored<()>> + Send;
    /// Creates a project; `Conflict` when it exists. `fork` makes it a fork of a snapshot.
    fn create_project(
        &self,
        spec: &ProjectSpec,
        fork: Option<&crate::domain::ForkSource>,
    ) -> impl Future<Output = Stored<ProjectRecord>> + Send;
    /// The project is no longer a fork waiting for its first open. Answers whether this call
    /// cleared the mark (it is cleared once, and the fork's hold is taken back once).
    fn clear_fork(&self, key: &ProjectKey) -> impl Future<Output = Stored<bool>> + Send;
    /// Marks `source` (RUNNING) as the source of `fork`'s live fork until `until`; `false` when it is
    /// not RUNNING or another live fork's mark has not lapsed.
    fn mark_live_fork(
        &self,
        source: &ProjectKey,
        fork: &ProjectId,
        until: OffsetDateTime,
    ) -> impl Future<Output = Stored<bool>> + Send;
    fn clear_live_fork(&self, source: &ProjectKey, fork: &ProjectId) -> impl Future<Output = Stored<()>> + Send;

    // --- snapshot rows ----------------------------------------------------------------------
    /// The project's snapshots, newest first (at most `limit`).
    fn list_snapshots(&self, key: &ProjectKey, limit: usize) -> impl Future<Output = Stored<Vec<Snapshot>>> + Send;
    fn get_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> impl Future<Output = Stored<Option<Snapshot>>> + Send;
    /// A new PENDING row, counted against its team in the same write. `NotFound`: the project is
    /// gone; `LimitReached`: the team holds as many as `Within` allows.
    fn put_snapshot(
        &self,
        snapshot: &Snapshot,
        admission: SnapshotAdmission,
    ) -> impl Future<Output = Stored<()>> + Send;
    /// After an automatic snapshot took its team past its quota: the team's oldest unpinned
    /// snapshots go until it is within. Never fails: the snapshot taken stands.
    fn make_room(&self, taken: &Snapshot) -> impl Future<Output = ()> + Send;
    /// PENDING to READY with E2B's id; `NotFound` unless it was PENDING.
    fn complete_snapshot(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        e2b_snapshot_id: &str,
    ) -> impl Future<Output = Stored<()>> + Send;
    fn delete_snapshot_row(&self, key: &ProjectKey, id: &SnapshotId) -> impl Future<Output = Stored<()>> + Send;
    /// Marks an unpinned, unheld snapshot DELETING; `Conflict` when pinned or held, `NotFound` when absent.
    fn mark_deleting(&self, key: &ProjectKey, id: &SnapshotId) -> impl Future<Output = Stored<Snapshot>> + Send;
    /// A DELETING snapshot E2B would not delete (a sandbox made from it runs) is READY again.
    fn unmark_deleting(&self, key: &ProjectKey, id: &SnapshotId) -> impl Future<Output = Stored<()>> + Send;
    /// One more fork holds a READY snapshot, until at least `until`; `NotFound` when it is not
    /// READY. Each fork takes its hold back once (`release_fork_hold`).
    fn hold_for_fork(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        until: OffsetDateTime,
    ) -> impl Future<Output = Stored<()>> + Send;
    /// Ends a restore's hold; forks' holds stay.
    fn release_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> impl Future<Output = Stored<()>> + Send;
    /// A fork takes its hold back; nothing held changes nothing.
    fn release_fork_hold(&self, key: &ProjectKey, id: &SnapshotId) -> impl Future<Output = Stored<()>> + Send;
    fn set_pinned(
        &self,
        key: &ProjectKey,
        id: &SnapshotId,
        pinned: bool,
        limit: u32,
    ) -> impl Future<Output = Stored<Snapshot>> + Send;
    /// Asks the pruner to look at the project again now.
    fn mark_prune_due(&self, key: &ProjectKey) -> impl Future<Output = Stored<()>> + Send;
    /// After a pass: the project is next due at `next` (`None`: it leaves the index), only if its
    /// `pruneAt` is still `seen` and it was marked due no more than the `marks` times the pass
    /// read (`ProjectRecord::prune_marks`). Answers whether it was rescheduled.
    fn reschedule_prune(
        &self,
        key: &ProjectKey,
        seen: OffsetDateTime,
        marks: u64,
        next: Option<OffsetDateTime>,
    ) -> impl Future<Output = Stored<bool>> + Send;
    /// A lifecycle-log line that moves nothing (`state` to `state`).
    fn note_event(
        &self,
        key: &ProjectKey,
        actor: crate::domain::Actor,
        cause: &str,
        state: crate::domain::SessionState,
    ) -> impl Future<Output = Stored<()>> + Send;

    // --- team policies ------------------------------------------------------------------------
    /// `Err(BudgetReached)` when the team's budget for this period is reached.
    fn budget_allows(&self, team: &TeamId) -> impl Future<Output = Result<(), Error>> + Send;
    /// `Err(QuotaExceeded)` when the team has as many projects as it may and `key` is not one of them.
    fn project_room(&self, key: &ProjectKey) -> impl Future<Output = Result<(), Error>> + Send;
    /// `Err(QuotaExceeded)` when the team has no room for another live sandbox.
    fn live_room(&self, team: &TeamId) -> impl Future<Output = Result<(), Error>> + Send;
    /// Counts `counted` once for its execution (`false`: it was counted before), in one transaction.
    fn count_usage(&self, key: &ProjectKey, counted: &Counted) -> impl Future<Output = Stored<bool>> + Send;
    /// Whether `execution` of `team` was counted already (an eventually consistent read: a `false`
    /// only means `count_usage` may try, and its own condition decides).
    fn execution_counted(&self, team: &TeamId, execution: &str) -> impl Future<Output = Stored<bool>> + Send;
    /// Counted usage of `key` at `at` may have crossed the team's budget marks.
    fn after_usage(&self, key: &ProjectKey, at: OffsetDateTime) -> impl Future<Output = ()> + Send;
    /// This instance saw activity on `key` after `since` (a per-instance memory that spares writes).
    fn recently_active(&self, key: &ProjectKey, since: OffsetDateTime) -> bool;
    fn remember_activity(&self, key: &ProjectKey, at: OffsetDateTime);
    /// Refuses a template the team may not start from.
    fn check_template(&self, team: &TeamId, template_id: &str) -> Result<(), Error>;

    // --- E2B, in one account -------------------------------------------------------------------
    /// The team's E2B account (its registered key, else the deployment's): resolved before any
    /// claim, so a team without credentials never leaves a session mid-transition.
    fn account(&self, team: &TeamId) -> impl Future<Output = Result<Account, Error>> + Send;
    /// What a new sandbox of `key` is given besides its template: the project's env vars (its
    /// team's too) and the egress rules that carry its secrets by reference, the secrets put into
    /// `account` first where E2B's copy is not current. Read before a create claims the session, so
    /// a failure leaves nothing mid-transition. Values stay in memory: never in a record or a log.
    fn launch_settings(
        &self,
        account: &Account,
        key: &ProjectKey,
    ) -> impl Future<Output = Result<LaunchSettings, Error>> + Send;
    fn create_sandbox(&self, account: &Account, new: &NewSandbox) -> impl Future<Output = Called<Sandbox>> + Send;
    fn connect(
        &self,
        account: &Account,
        sandbox_id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Called<Connected>> + Send;
    fn pause(&self, account: &Account, sandbox_id: &str) -> impl Future<Output = Called<()>> + Send;
    fn kill(&self, account: &Account, sandbox_id: &str) -> impl Future<Output = Called<()>> + Send;
    fn get_sandbox(&self, account: &Account, sandbox_id: &str) -> impl Future<Output = Called<SandboxDetail>> + Send;
    fn list_sandboxes(
        &self,
        account: &Account,
        filter: &SandboxFilter,
    ) -> impl Future<Output = Called<Vec<ListedSandbox>>> + Send;
    fn fork(
        &self,
        account: &Account,
        sandbox_id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Called<Sandbox>> + Send;
    fn set_timeout(
        &self,
        account: &Account,
        sandbox_id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Called<()>> + Send;
    fn create_e2b_snapshot(
        &self,
        account: &Account,
        sandbox_id: &str,
        name: &str,
    ) -> impl Future<Output = Called<SnapshotInfo>> + Send;
    fn list_e2b_snapshots(
        &self,
        account: &Account,
        sandbox_id: &str,
    ) -> impl Future<Output = Called<Vec<SnapshotInfo>>> + Send;
    fn delete_e2b_snapshot(&self, account: &Account, e2b_snapshot_id: &str) -> impl Future<Output = Called<()>> + Send;
}
