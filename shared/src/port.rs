//! The protocol's port, for real: the table in DynamoDB, the calls in E2B, the time from the
//! clock, ids from ULIDs. Every operation of `sandman_protocol` runs through this.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandman_protocol::port::{Account, Consistency, Port};
use time::OffsetDateTime;

use crate::Sandman;
use crate::deadline::{Deadline, LAMBDA_MARGIN};
use crate::domain::{
    Actor, CLAIM_LEASE, ForkSource, ProjectId, ProjectKey, ProjectSpec, SessionState, Snapshot, SnapshotId, TeamId,
};
use crate::e2b::{
    Connected, E2b, E2bError, LaunchSettings, ListedSandbox, NewSandbox, Sandbox, SandboxDetail, SandboxFilter,
    SnapshotInfo,
};
use crate::error::Error;
use crate::policy::Rules;
use crate::store::{
    ActivityWrite, Counted, IdleDeferral, ProjectRecord, SessionWrite, SnapshotAdmission, StoreError, Written,
};

/// The E2B handles operations were given, by the name they know them by (the key's fingerprint).
#[derive(Debug, Default, Clone)]
pub(crate) struct AccountHandles(Arc<Mutex<HashMap<String, E2b>>>);

impl AccountHandles {
    /// Names `e2b` for the protocol, remembering the handle for the calls that follow.
    pub(crate) fn name(&self, e2b: &E2b) -> Account {
        let name = e2b.fingerprint();
        let mut handles = self.0.lock().unwrap_or_else(|p| p.into_inner());
        handles.entry(name.clone()).or_insert_with(|| e2b.clone());
        Account(name)
    }

    fn get(&self, account: &Account) -> Result<E2b, E2bError> {
        let handles = self.0.lock().unwrap_or_else(|p| p.into_inner());
        handles.get(&account.0).cloned().ok_or(E2bError::NoCredentials)
    }
}

type Stored<T> = Result<T, StoreError>;
type Called<T> = Result<T, E2bError>;

impl Sandman {
    fn handle(&self, account: &Account) -> Called<E2b> {
        self.accounts.get(account)
    }
}

impl Port for Sandman {
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn new_id(&self) -> String {
        ulid::Ulid::new().to_string()
    }

    fn rules(&self) -> &Rules {
        &self.rules
    }

    fn within_lease<F: Future + Send>(&self, work: F) -> impl Future<Output = F::Output> + Send {
        Deadline::after(CLAIM_LEASE.saturating_sub(LAMBDA_MARGIN)).scope(work)
    }

    async fn read(&self, key: &ProjectKey, consistency: Consistency) -> Stored<Option<ProjectRecord>> {
        self.store.get_project(key, consistency).await
    }

    async fn write(&self, write: &SessionWrite) -> Stored<Written> {
        self.store.write_session(write).await
    }

    async fn record_activity(&self, key: &ProjectKey, sandbox_id: &str, activity: &ActivityWrite) -> Stored<bool> {
        self.store.record_activity_with(key, sandbox_id, activity).await
    }

    async fn record_timeout(&self, key: &ProjectKey, sandbox_id: &str, at: OffsetDateTime) -> Stored<bool> {
        self.store.record_timeout(key, sandbox_id, at).await
    }

    async fn defer_idle(&self, deferral: &IdleDeferral) -> Stored<bool> {
        self.store.defer_idle(deferral).await
    }

    async fn release_retiring(&self, key: &ProjectKey, sandbox_id: &str) -> Stored<bool> {
        self.store.release_retiring(key, sandbox_id).await
    }

    async fn find_by_sandbox(&self, sandbox_id: &str) -> Stored<Option<ProjectRecord>> {
        self.store.find_by_sandbox(sandbox_id).await
    }

    async fn delete_project(&self, key: &ProjectKey, version: Option<u64>) -> Stored<()> {
        self.store.delete_project(key, version).await
    }

    async fn create_project(&self, spec: &ProjectSpec, fork: Option<&ForkSource>) -> Stored<ProjectRecord> {
        match fork {
            Some(fork) => self.store.put_fork(spec, fork, self.clock.now()).await,
            None => self.store.put_new_project(spec, self.clock.now()).await,
        }
    }

    async fn clear_fork(&self, key: &ProjectKey) -> Stored<bool> {
        self.store.clear_fork(key).await
    }

    async fn mark_live_fork(&self, source: &ProjectKey, fork: &ProjectId, until: OffsetDateTime) -> Stored<bool> {
        self.store.mark_live_fork(source, fork, until, self.clock.now()).await
    }

    async fn clear_live_fork(&self, source: &ProjectKey, fork: &ProjectId) -> Stored<()> {
        self.store.clear_live_fork(source, fork).await
    }

    async fn list_snapshots(&self, key: &ProjectKey, limit: usize) -> Stored<Vec<Snapshot>> {
        if limit == usize::MAX {
            return self.store.all_snapshots(key).await;
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        Ok(self.store.list_snapshots(key, None, limit).await?.items)
    }

    async fn get_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Stored<Option<Snapshot>> {
        self.store.get_snapshot(key, id).await
    }

    async fn put_snapshot(&self, snapshot: &Snapshot, admission: SnapshotAdmission) -> Stored<()> {
        self.store.put_snapshot(snapshot, admission).await
    }

    async fn make_room(&self, taken: &Snapshot) {
        // Boxed: its future would otherwise nest inside every operation that snapshots.
        Box::pin(Sandman::make_room(self, taken)).await
    }

    async fn complete_snapshot(&self, key: &ProjectKey, id: &SnapshotId, e2b_snapshot_id: &str) -> Stored<()> {
        self.store.complete_snapshot(key, id, e2b_snapshot_id).await
    }

    async fn delete_snapshot_row(&self, key: &ProjectKey, id: &SnapshotId) -> Stored<()> {
        self.store.delete_snapshot_record(key, id).await
    }

    async fn mark_deleting(&self, key: &ProjectKey, id: &SnapshotId) -> Stored<Snapshot> {
        self.store.mark_deleting_at(key, id, self.clock.now()).await
    }

    async fn unmark_deleting(&self, key: &ProjectKey, id: &SnapshotId) -> Stored<()> {
        self.store.unmark_deleting(key, id).await
    }

    async fn hold_for_fork(&self, key: &ProjectKey, id: &SnapshotId, until: OffsetDateTime) -> Stored<()> {
        self.store.hold_for_fork(key, id, until).await
    }

    async fn release_fork_hold(&self, key: &ProjectKey, id: &SnapshotId) -> Stored<()> {
        self.store.release_fork_hold(key, id).await
    }

    async fn release_snapshot(&self, key: &ProjectKey, id: &SnapshotId) -> Stored<()> {
        self.store.release_snapshot(key, id).await
    }

    async fn set_pinned(&self, key: &ProjectKey, id: &SnapshotId, pinned: bool, limit: u32) -> Stored<Snapshot> {
        self.store.set_pinned(key, id, pinned, limit).await
    }

    async fn mark_prune_due(&self, key: &ProjectKey) -> Stored<()> {
        self.store.set_prune_at(key, Some(self.clock.now())).await
    }

    async fn reschedule_prune(
        &self,
        key: &ProjectKey,
        seen: OffsetDateTime,
        marks: u64,
        next: Option<OffsetDateTime>,
    ) -> Stored<bool> {
        self.store.reschedule_prune(key, seen, marks, next).await
    }

    async fn note_event(&self, key: &ProjectKey, actor: Actor, cause: &str, state: SessionState) -> Stored<()> {
        self.store.note_event(key, actor, cause, state, self.clock.now()).await
    }

    async fn budget_allows(&self, team: &TeamId) -> Result<(), Error> {
        self.check_budget_allows(team).await
    }

    async fn project_room(&self, key: &ProjectKey) -> Result<(), Error> {
        self.check_project_quota(key).await
    }

    async fn live_room(&self, team: &TeamId) -> Result<(), Error> {
        self.check_live_room(team).await
    }

    async fn count_usage(&self, key: &ProjectKey, counted: &Counted) -> Stored<bool> {
        self.store.count_usage(key, counted).await
    }

    async fn execution_counted(&self, team: &TeamId, execution: &str) -> Stored<bool> {
        self.store.execution_counted(team, execution).await
    }

    async fn after_usage(&self, key: &ProjectKey, at: OffsetDateTime) {
        Sandman::after_usage(self, key, at).await
    }

    fn recently_active(&self, key: &ProjectKey, since: OffsetDateTime) -> bool {
        self.activity.recently(key, since)
    }

    fn remember_activity(&self, key: &ProjectKey, at: OffsetDateTime) {
        self.activity.remember(key, at)
    }

    fn check_template(&self, team: &TeamId, template_id: &str) -> Result<(), Error> {
        Ok(self.config.templates.check(team, template_id)?)
    }

    async fn account(&self, team: &TeamId) -> Result<Account, Error> {
        let e2b = self.e2b_for_team(team).await?;
        Ok(self.accounts.name(&e2b))
    }

    async fn launch_settings(&self, account: &Account, key: &ProjectKey) -> Result<LaunchSettings, Error> {
        let e2b = self.handle(account)?;
        self.launch_settings_for(&e2b, key).await
    }

    async fn create_sandbox(&self, account: &Account, new: &NewSandbox) -> Called<Sandbox> {
        self.handle(account)?.create_sandbox(new).await
    }

    async fn connect(&self, account: &Account, sandbox_id: &str, timeout: Duration) -> Called<Connected> {
        self.handle(account)?.connect(sandbox_id, timeout).await
    }

    async fn pause(&self, account: &Account, sandbox_id: &str) -> Called<()> {
        self.handle(account)?.pause(sandbox_id).await
    }

    async fn kill(&self, account: &Account, sandbox_id: &str) -> Called<()> {
        self.handle(account)?.kill(sandbox_id).await
    }

    async fn get_sandbox(&self, account: &Account, sandbox_id: &str) -> Called<SandboxDetail> {
        self.handle(account)?.get_sandbox(sandbox_id).await
    }

    async fn list_sandboxes(&self, account: &Account, filter: &SandboxFilter) -> Called<Vec<ListedSandbox>> {
        self.handle(account)?.list_sandboxes(filter).await
    }

    async fn fork(&self, account: &Account, sandbox_id: &str, timeout: Duration) -> Called<Sandbox> {
        self.handle(account)?.fork(sandbox_id, timeout).await
    }

    async fn set_timeout(&self, account: &Account, sandbox_id: &str, timeout: Duration) -> Called<()> {
        self.handle(account)?.set_timeout(sandbox_id, timeout).await
    }

    async fn create_e2b_snapshot(&self, account: &Account, sandbox_id: &str, name: &str) -> Called<SnapshotInfo> {
        self.handle(account)?.create_snapshot(sandbox_id, Some(name)).await
    }

    async fn list_e2b_snapshots(&self, account: &Account, sandbox_id: &str) -> Called<Vec<SnapshotInfo>> {
        self.handle(account)?.list_snapshots(sandbox_id).await
    }

    async fn delete_e2b_snapshot(&self, account: &Account, e2b_snapshot_id: &str) -> Called<()> {
        self.handle(account)?.delete_snapshot(e2b_snapshot_id).await
    }
}
