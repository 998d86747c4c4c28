//! What a frontend polls: read from DynamoDB only (one eventually consistent read), never from E2B.

use std::time::Duration;

use time::OffsetDateTime;

use crate::Sandman;
use crate::domain::{ProjectKey, SessionState};
use crate::error::Error;
use crate::store::{Consistency, ProjectRecord};

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub state: Option<SessionState>,
    pub sandbox_id: Option<String>,
    /// `<sandboxId>.<domain>`: prefix a port (`8080-`) to reach a service inside.
    pub host: Option<String>,
    /// envd's access token for the live sandbox (it was created with `secure: true`).
    pub access_token: Option<crate::secrets::Secret>,
    pub last_active_at: Option<OffsetDateTime>,
    /// When the idle enforcer will pause it, if it stays idle.
    pub pause_at: Option<OffsetDateTime>,
    pub timeout_at: Option<OffsetDateTime>,
    pub state_since: Option<OffsetDateTime>,
    pub poll_after: Option<Duration>,
    pub last_error: Option<String>,
    pub version: u64,
    /// The sandbox runs with older env vars or secret rules than the project's (`env/`).
    pub restart_required: bool,
}

/// How soon a frontend should ask again: soon while something is changing, rarely while running,
/// never while nothing will change on its own.
pub fn poll_after(state: Option<SessionState>) -> Option<Duration> {
    match state? {
        SessionState::Starting | SessionState::Resuming | SessionState::Pausing | SessionState::Stopping => {
            Some(Duration::from_secs(1))
        }
        SessionState::Running => Some(Duration::from_secs(30)),
        SessionState::Paused | SessionState::Killed => None,
    }
}

impl Status {
    pub fn of(record: &ProjectRecord) -> Status {
        let session = record.session.as_ref();
        let state = session.map(|s| s.state);
        let live = session.filter(|s| s.state != SessionState::Killed);
        let sandbox = live.and_then(|s| s.sandbox.as_ref());
        Status {
            state,
            sandbox_id: sandbox.map(|s| s.sandbox_id.clone()),
            host: sandbox.map(|s| format!("{}.{}", s.sandbox_id, s.domain.as_deref().unwrap_or("e2b.app"))),
            access_token: sandbox.and_then(|s| s.access_token.clone()),
            last_active_at: session.map(|s| s.last_active_at),
            pause_at: session
                .filter(|s| s.state == SessionState::Running)
                .and_then(|s| s.idle_at),
            timeout_at: live.and_then(|s| s.timeout_at),
            state_since: session.map(|s| s.state_since),
            poll_after: poll_after(state),
            last_error: session.and_then(|s| s.last_error.clone()),
            version: record.version,
            restart_required: live.is_some_and(|s| s.restart_required(record.settings_version)),
        }
    }
}

impl Sandman {
    /// The project's lifecycle log, newest first: only this project's lines, not those of an
    /// earlier project with the same id (concurrency review #20).
    pub async fn project_events(
        &self,
        key: &ProjectKey,
        cursor: Option<&crate::store::Cursor>,
        limit: i32,
    ) -> Result<crate::store::Page<crate::domain::LifecycleRecord>, Error> {
        let record = self
            .store
            .get_project(key, Consistency::Eventual)
            .await?
            .ok_or(Error::NotFound("project"))?;
        let since = record.project.created_at;
        Ok(self.store.list_events_since(key, Some(since), cursor, limit).await?)
    }

    pub async fn status(&self, key: &ProjectKey) -> Result<Status, Error> {
        let record = self
            .store
            .get_project(key, Consistency::Eventual)
            .await?
            .ok_or(Error::NotFound("project"))?;
        Ok(Status::of(&record))
    }
}
