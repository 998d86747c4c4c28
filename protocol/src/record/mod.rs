//! The session's stored record and the writes that move it: what every writer asks the store to
//! do, as data. The store applies a [`SessionWrite`] with one conditional transaction; [`apply`]
//! says, as a pure function, what that transaction does, so the model checker and the store agree.

mod apply;

use std::time::Duration;

use time::OffsetDateTime;

use crate::adaptive::IdleLesson;

use crate::domain::{
    Actor, CapHandoff, Project, ProjectKey, SandboxRef, Session, SessionEvent, SessionState, SnapshotId, Usage,
};

pub use apply::{ApplyError, IndexAttributes, RunWindow, apply, index_attributes};

/// A project with its session (if it ever had one) and the version that guards both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectRecord {
    pub project: Project,
    pub session: Option<Session>,
    pub version: u64,
    /// The version of the project's launch settings (its env vars and secrets, and its team's):
    /// moved by every change that a sandbox only takes at create. Not a session write: it never
    /// conflicts with one.
    pub settings_version: u64,
    /// How many times the project was marked due for a retention pass (a snapshot recorded, a
    /// policy changed, a pause or a kill, a fork's hold released). A pass reschedules the project
    /// only if no mark came after its read: clocks cannot tell two marks in one millisecond apart.
    pub prune_marks: u64,
}

impl ProjectRecord {
    pub fn state(&self) -> Option<SessionState> {
        self.session.as_ref().map(|s| s.state)
    }

    /// The session's current sandbox id, if it has one.
    pub fn sandbox_id(&self) -> Option<&str> {
        self.session
            .as_ref()
            .and_then(|s| s.sandbox.as_ref())
            .map(|s| s.sandbox_id.as_str())
    }
}

/// Compute E2B reported for one execution, to count once: on the project's and the team's
/// per-period counters (and the project item's running total, `on_project`, when it exists).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Counted {
    /// `<sandbox>:<sandbox_execution_id>`: the same on every event about one run.
    pub execution: String,
    pub used: Usage,
    /// Run time avoided by a pause before E2B's timeout.
    pub saved: Option<Usage>,
    pub at: OffsetDateTime,
    pub on_project: bool,
}

/// Whether a new snapshot row may pass the team's snapshot quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotAdmission {
    /// Only while the team holds fewer than this many (a snapshot a user asked for).
    Within(u32),
    /// Whatever the count (an automatic snapshot: refusing it would lose work).
    Always,
}

/// A project the `prune` index says is due.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PruneCandidate {
    pub key: ProjectKey,
    /// The `pruneAt` the index held: a pass reschedules only if it is still this.
    pub due_at: OffsetDateTime,
}

/// A session in a transitional state, as the `transit` index holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransitSession {
    pub key: ProjectKey,
    pub state: SessionState,
    pub sandbox_id: Option<String>,
    pub version: u64,
    pub state_since: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum FailureCount {
    #[default]
    Keep,
    Reset,
    Increment,
}

/// A stored attribute a write keeps as it is, sets, or removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Field<T> {
    #[default]
    Keep,
    Set(T),
    Clear,
}

impl<T> Field<T> {
    /// `Set` the value if there is one, else `Clear`.
    pub fn set_or_clear(value: Option<T>) -> Self {
        value.map_or(Field::Clear, Field::Set)
    }
}

/// What a write changes besides the state. `None` and `Field::Keep` leave a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SessionChanges {
    /// A new sandbox incarnation: a fresh session id.
    pub session_id: Option<String>,
    pub sandbox: Option<SandboxRef>,
    /// Counts as activity: moves `lastActiveAt` and the idle deadline.
    pub last_active_at: Option<OffsetDateTime>,
    pub timeout_at: Option<OffsetDateTime>,
    pub last_error: Field<String>,
    pub failures: FailureCount,
    pub restored_from: Field<SnapshotId>,
    /// A restore's claim: the session id of the sandbox it replaces (still `sandbox` until the new
    /// one runs), so a failed or abandoned restore can go back to it.
    pub replaces_session: Field<String>,
    /// The E2B event time this write applies; later older events are ignored.
    pub event_at: Option<OffsetDateTime>,
    /// A restore's claim of a RUNNING session: its sandbox keeps running until the new one runs and
    /// it is killed, so it keeps a live-sandbox unit (`Session::retiring`) until `release_retiring`.
    pub retiring: Option<String>,
    /// The settings version a new sandbox was created with (`LaunchSettings::version`).
    pub settings_version: Option<u64>,
    /// What adaptive idle learned from the gap a user's resume ends: the project's gaps and its
    /// idle timeout (`idleTimeoutMs`). An idle deadline set in the same write still counts from the
    /// timeout the item had, as DynamoDB evaluates every value against the old item.
    pub idle_lesson: Option<IdleLesson>,
}

/// A webhook delivery to record in the same transaction, so a redelivery changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dedupe {
    pub id: String,
    pub expires_at: OffsetDateTime,
}

/// A restore's hold on its snapshot, written in the same transaction as the restore's claim and
/// conditional on the snapshot being READY: the pruner and deletes cannot mark it until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SnapshotHold {
    pub snapshot_id: SnapshotId,
    pub until: OffsetDateTime,
}

/// One conditional write of a session: the state machine's answer to (`from`, `event`) and the
/// changes, applied only if the item still holds `expected_version`. With an event, the lifecycle
/// log line commits in the same transaction (and a restore's snapshot hold with it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionWrite {
    pub key: ProjectKey,
    pub expected_version: u64,
    pub from: Option<SessionState>,
    pub event: Option<SessionEvent>,
    pub actor: Actor,
    pub cause: String,
    pub at: OffsetDateTime,
    pub changes: SessionChanges,
    /// The idle enforcer's claim: also require the idle deadline to have passed.
    pub idle_by: Option<OffsetDateTime>,
    pub dedupe: Option<Dedupe>,
    pub hold: Option<SnapshotHold>,
    /// A claim that starts compute (START, RESTORE, RESUME): refused unless the team holds fewer
    /// live-sandbox units than this. Every write moves the team's units in the same transaction.
    pub live_limit: Option<u32>,
}

impl SessionWrite {
    /// How the team's live-sandbox units move with this write, into `to` (the state machine's answer).
    pub fn live_delta(&self, to: Option<SessionState>) -> i64 {
        let live = |state: Option<SessionState>| i64::from(state.is_some_and(crate::domain::is_live));
        let states = match to {
            Some(to) => live(Some(to)) - live(self.from),
            None => 0,
        };
        states + i64::from(self.changes.retiring.is_some())
    }

    pub fn new(record: &ProjectRecord, actor: Actor, cause: impl Into<String>, at: OffsetDateTime) -> Self {
        Self {
            key: record.project.key(),
            expected_version: record.version,
            from: record.state(),
            event: None,
            actor,
            cause: cause.into(),
            at,
            changes: SessionChanges::default(),
            idle_by: None,
            dedupe: None,
            hold: None,
            live_limit: None,
        }
    }

    /// The next write on a session this process just wrote.
    pub fn following(
        key: &ProjectKey,
        written: Written,
        actor: Actor,
        cause: impl Into<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            key: key.clone(),
            expected_version: written.version,
            from: written.state,
            event: None,
            actor,
            cause: cause.into(),
            at,
            changes: SessionChanges::default(),
            idle_by: None,
            dedupe: None,
            hold: None,
            live_limit: None,
        }
    }

    pub fn event(mut self, event: SessionEvent) -> Self {
        self.event = Some(event);
        self
    }

    pub fn changes(mut self, changes: SessionChanges) -> Self {
        self.changes = changes;
        self
    }

    pub fn hold(mut self, hold: SnapshotHold) -> Self {
        self.hold = Some(hold);
        self
    }
}

/// What a write did: the new version, and the state it left the session in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Written {
    pub version: u64,
    pub state: Option<SessionState>,
}

/// Activity to record; see [`Store::record_activity_with`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActivityWrite {
    pub at: OffsetDateTime,
    /// Throttle: write only if no activity was recorded since then.
    pub not_since: Option<OffsetDateTime>,
    /// The new idle deadline; `None`: the project's idle timeout from `at`.
    pub idle_at: Option<OffsetDateTime>,
    /// A `busyForSeconds` hold to store.
    pub busy_until: Option<OffsetDateTime>,
    /// Refuse when a stored hold lasts beyond this (the caller did not see it).
    pub held_at_most: Option<OffsetDateTime>,
    /// What adaptive idle learned from the gap this activity ends (see
    /// `SessionChanges::idle_lesson`); `idle_at` is then always set.
    pub idle_lesson: Option<IdleLesson>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdleDeferral {
    pub key: ProjectKey,
    pub expected_version: u64,
    pub read_idle_at: OffsetDateTime,
    pub idle_at: OffsetDateTime,
    pub at: OffsetDateTime,
    pub cause: String,
}

/// A running session whose idle deadline has passed, as the idle index holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdleCandidate {
    pub key: ProjectKey,
    pub sandbox_id: Option<String>,
    pub version: u64,
    pub idle_at: OffsetDateTime,
    /// The project's idle policy, projected into the index so a tick needs no other read.
    pub idle_timeout: Duration,
    pub snapshot_on_idle: bool,
    /// Consecutive failed pauses.
    pub failures: u32,
    /// When E2B would time the sandbox out (and stop billing it) on its own.
    pub timeout_at: Option<OffsetDateTime>,
    /// Busy-aware idle (`busyCpuPercent`), off when `None`.
    pub busy_cpu_percent: Option<u8>,
    pub max_busy_deferral: Duration,
    /// Since when busy deferrals have kept it up without activity.
    pub busy_since: Option<OffsetDateTime>,
    /// Start of the sandbox's current continuous run (for the session-cap handoff).
    pub running_since: Option<OffsetDateTime>,
    pub cap_handoff: CapHandoff,
}
