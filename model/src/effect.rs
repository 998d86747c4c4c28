//! What an operation asked the port for (`Effect`), and what it got back (`Outcome`): one model
//! step delivers one outcome. Both are plain data, so a world with operations in flight can be
//! hashed, compared and replayed.

use std::time::Duration;

use sandman_protocol::domain::{
    Actor, ForkSource, ProjectId, ProjectKey, ProjectSpec, SessionState, Snapshot, SnapshotId,
};
use sandman_protocol::e2b::{
    Connected, E2bError, LaunchSettings, ListedSandbox, NewSandbox, Sandbox, SandboxDetail, SandboxFilter, SnapshotInfo,
};
use sandman_protocol::port::Account;
use sandman_protocol::record::{ActivityWrite, Counted, IdleDeferral, ProjectRecord, SessionWrite, Written};
use sandman_protocol::{Error, StoreError};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Effect {
    // The table.
    Read(ProjectKey),
    Write(Box<SessionWrite>),
    RecordActivity(ProjectKey, String, ActivityWrite),
    RecordTimeout(ProjectKey, String, OffsetDateTime),
    DeferIdle(IdleDeferral),
    ReleaseRetiring(ProjectKey, String),
    FindBySandbox(String),
    DeleteProject(ProjectKey, Option<u64>),
    CreateProject(ProjectSpec, Option<ForkSource>),
    ClearFork(ProjectKey),
    MarkLiveFork(ProjectKey, ProjectId, OffsetDateTime),
    ClearLiveFork(ProjectKey, ProjectId),
    ListSnapshots(ProjectKey, usize),
    GetSnapshot(ProjectKey, SnapshotId),
    PutSnapshot(Box<Snapshot>),
    CompleteSnapshot(ProjectKey, SnapshotId, String),
    DeleteSnapshotRow(ProjectKey, SnapshotId),
    MarkDeleting(ProjectKey, SnapshotId),
    HoldSnapshot(ProjectKey, SnapshotId, OffsetDateTime),
    ReleaseSnapshot(ProjectKey, SnapshotId),
    ReleaseForkHold(ProjectKey, SnapshotId),
    SetPinned(ProjectKey, SnapshotId, bool),
    MarkPruneDue(ProjectKey),
    /// `pruneAt` seen, `pruneMarks` read, the next due time.
    ReschedulePrune(ProjectKey, OffsetDateTime, u64, Option<OffsetDateTime>),
    NoteEvent(ProjectKey, Actor, String, SessionState),
    CountUsage(ProjectKey, Counted),
    ExecutionCounted(String),
    // Team policies.
    BudgetAllows,
    ProjectRoom(ProjectKey),
    LiveRoom,
    AfterUsage(ProjectKey),
    Account,
    /// A create's env vars and secret rules (`Port::launch_settings`).
    LaunchSettings(ProjectKey),
    // E2B.
    Create(NewSandbox),
    Connect(String, Duration),
    Pause(String),
    Kill(String),
    Get(String),
    List(SandboxFilter),
    Fork(String, Duration),
    SetTimeout(String, Duration),
    CreateSnapshot(String, String),
    ListE2bSnapshots(String),
    DeleteE2bSnapshot(String),
}

impl Effect {
    /// Whether the effect's result depends on nothing another actor can change meanwhile, so the
    /// model delivers it in the same step as the one before (it adds no interleaving).
    pub fn is_silent(&self) -> bool {
        matches!(
            self,
            Effect::Account | Effect::AfterUsage(_) | Effect::ProjectRoom(_) | Effect::LaunchSettings(_)
        )
    }

    /// Whether this is a call to E2B (which may fail, or succeed and lose its answer).
    pub fn is_e2b(&self) -> bool {
        matches!(
            self,
            Effect::Create(_)
                | Effect::Connect(..)
                | Effect::Pause(_)
                | Effect::Kill(_)
                | Effect::Get(_)
                | Effect::List(_)
                | Effect::Fork(..)
                | Effect::SetTimeout(..)
                | Effect::CreateSnapshot(..)
                | Effect::ListE2bSnapshots(_)
                | Effect::DeleteE2bSnapshot(_)
        )
    }

    /// Whether E2B changes something when it performs this call.
    pub fn mutates_e2b(&self) -> bool {
        self.is_e2b() && !matches!(self, Effect::Get(_) | Effect::List(_) | Effect::ListE2bSnapshots(_))
    }
}

pub type Stored<T> = Result<T, StoreError>;
pub type Called<T> = Result<T, E2bError>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    Record(Stored<Option<ProjectRecord>>),
    Written(Stored<Written>),
    Flag(Stored<bool>),
    Done(Stored<()>),
    Created(Stored<ProjectRecord>),
    Snapshots(Stored<Vec<Snapshot>>),
    Snapshot(Stored<Option<Snapshot>>),
    SnapshotRow(Stored<Snapshot>),
    Allowed(Result<(), Error>),
    Account(Result<Account, Error>),
    Launch(Result<LaunchSettings, Error>),
    Nothing,
    Sandbox(Called<Sandbox>),
    Connected(Called<Connected>),
    Called(Called<()>),
    Detail(Called<SandboxDetail>),
    Listed(Called<Vec<ListedSandbox>>),
    SnapshotInfo(Called<SnapshotInfo>),
    SnapshotInfos(Called<Vec<SnapshotInfo>>),
}
