//! The JSON the API answers with, shared by several routes. Enums mirror the core's with
//! exhaustive conversions, so a new core variant cannot go unnoticed in the documented schema.

use sandman::domain::{SessionState, Snapshot, SnapshotKind, SnapshotStatus};
use sandman::workspace::{OpenPath, Opened, Status};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Starting,
    Running,
    Pausing,
    Paused,
    Resuming,
    Stopping,
    Killed,
}

impl From<SessionState> for State {
    fn from(state: SessionState) -> Self {
        match state {
            SessionState::Starting => State::Starting,
            SessionState::Running => State::Running,
            SessionState::Pausing => State::Pausing,
            SessionState::Paused => State::Paused,
            SessionState::Resuming => State::Resuming,
            SessionState::Stopping => State::Stopping,
            SessionState::Killed => State::Killed,
        }
    }
}

/// A project's sandbox as the table records it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStatus {
    /// Null when the project never had a sandbox.
    pub state: Option<State>,
    pub sandbox_id: Option<String>,
    /// `<sandboxId>.<domain>`: prefix a port (`8080-`) to reach a service inside.
    pub host: Option<String>,
    /// The live sandbox's envd access token (`X-Access-Token` for envd): sandboxes are created
    /// with `secure: true`, so only a holder of this token can run commands in them. Only the
    /// project's own team is ever shown it.
    pub envd_access_token: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_active_at: Option<OffsetDateTime>,
    /// When the sandbox will be paused if it stays idle (running sandboxes only).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub pause_at: Option<OffsetDateTime>,
    /// When E2B will time the sandbox out unless activity extends it.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub timeout_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub state_since: Option<OffsetDateTime>,
    /// How soon to poll again; null when nothing will change on its own.
    pub poll_after_ms: Option<u64>,
    pub last_error: Option<String>,
    pub version: u64,
    /// The sandbox runs with older env vars or secret rules than the project now has: they apply
    /// from its next start or restore (`PUT /v1/projects/{id}/env`).
    pub restart_required: bool,
}

impl From<Status> for SandboxStatus {
    fn from(status: Status) -> Self {
        SandboxStatus {
            state: status.state.map(State::from),
            sandbox_id: status.sandbox_id,
            host: status.host,
            envd_access_token: status.access_token.map(|token| token.expose().to_owned()),
            last_active_at: status.last_active_at,
            pause_at: status.pause_at,
            timeout_at: status.timeout_at,
            state_since: status.state_since,
            poll_after_ms: status.poll_after.map(|d| d.as_millis() as u64),
            last_error: status.last_error,
            version: status.version,
            restart_required: status.restart_required,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    AlreadyRunning,
    Resumed,
    Restored,
    Created,
    InProgress,
}

impl From<OpenPath> for Path {
    fn from(path: OpenPath) -> Self {
        match path {
            OpenPath::AlreadyRunning => Path::AlreadyRunning,
            OpenPath::Resumed => Path::Resumed,
            OpenPath::Restored => Path::Restored,
            OpenPath::Created => Path::Created,
            OpenPath::InProgress => Path::InProgress,
        }
    }
}

/// Which way the sandbox was opened, and where it is now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenResult {
    pub path: Path,
    /// The snapshot the new sandbox was restored from.
    pub restored_from: Option<String>,
    /// Why a newer snapshot was passed over.
    pub fallback_reason: Option<String>,
    pub sandbox: SandboxStatus,
}

impl From<Opened> for OpenResult {
    fn from(opened: Opened) -> Self {
        OpenResult {
            path: opened.path.into(),
            restored_from: opened.restored_from.map(String::from),
            fallback_reason: opened.fallback_reason,
            sandbox: Status::of(&opened.record).into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Manual,
    AutoBeforeKill,
    AutoBeforePause,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotState {
    /// E2B is taking it (or its outcome is being looked up); not restorable yet.
    Pending,
    Ready,
    Deleting,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotView {
    pub snapshot_id: String,
    pub description: String,
    pub kind: Kind,
    /// Pinned snapshots are never pruned.
    pub pinned: bool,
    pub status: SnapshotState,
    pub source_sandbox_id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<Snapshot> for SnapshotView {
    fn from(snapshot: Snapshot) -> Self {
        SnapshotView {
            snapshot_id: snapshot.snapshot_id.into(),
            description: snapshot.description,
            kind: match snapshot.kind {
                SnapshotKind::Manual => Kind::Manual,
                SnapshotKind::AutoBeforeKill => Kind::AutoBeforeKill,
                SnapshotKind::AutoBeforePause => Kind::AutoBeforePause,
            },
            pinned: snapshot.pinned,
            status: match snapshot.status {
                SnapshotStatus::Pending => SnapshotState::Pending,
                SnapshotStatus::Ready => SnapshotState::Ready,
                SnapshotStatus::Deleting => SnapshotState::Deleting,
            },
            source_sandbox_id: snapshot.source_sandbox_id,
            created_at: snapshot.created_at,
        }
    }
}
