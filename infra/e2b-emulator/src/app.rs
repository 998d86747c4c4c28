//! State shared by the HTTP handlers, the background tasks and the `Emulator` handle.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use crate::calls::CallLog;
use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::delivery::Publisher;
use crate::error::ApiError;
use crate::faults::{FaultBook, lock};
use crate::secrets::SecretBook;
use crate::world::World;

#[derive(Clone)]
pub(crate) struct App(Arc<Shared>);

pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub clock: Arc<Clock>,
    pub faults: FaultBook,
    pub calls: CallLog,
    pub publisher: Publisher,
    world: Mutex<World>,
    secrets: Mutex<SecretBook>,
    /// API key -> team id.
    teams: HashMap<String, String>,
    /// Keys revoked since start: E2B answers 401 to them, as to a key it never issued.
    revoked: Mutex<HashSet<String>>,
}

impl std::ops::Deref for App {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The team whose API key authenticated the request.
#[derive(Debug, Clone)]
pub(crate) struct Team(pub String);

impl App {
    pub(crate) fn new(config: EmulatorConfig, clock: Arc<Clock>, publisher: Publisher, world: World) -> App {
        let teams = config
            .teams
            .iter()
            .map(|t| (t.api_key.clone(), t.team_id.clone()))
            .collect();
        let faults = FaultBook::seeded(config.fault_seed);
        App(Arc::new(Shared {
            config,
            clock,
            faults,
            calls: CallLog::default(),
            publisher,
            world: Mutex::new(world),
            secrets: Mutex::default(),
            teams,
            revoked: Mutex::default(),
        }))
    }
}

impl Shared {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub(crate) fn secret_book(&self) -> MutexGuard<'_, SecretBook> {
        lock(&self.secrets)
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn team_for_key(&self, key: &str) -> Option<Team> {
        if lock(&self.revoked).contains(key) {
            return None;
        }
        self.teams.get(key).cloned().map(Team)
    }

    /// Revokes (or restores) the API key of `team_id`; whether the team exists.
    pub(crate) fn set_revoked(&self, team_id: &str, revoked: bool) -> bool {
        let keys: Vec<String> = self
            .teams
            .iter()
            .filter(|(_, team)| *team == team_id)
            .map(|(key, _)| key.clone())
            .collect();
        let mut set = lock(&self.revoked);
        for key in &keys {
            if revoked {
                set.insert(key.clone());
            } else {
                set.remove(key);
            }
        }
        !keys.is_empty()
    }

    /// Applies every timeout and retention due by the emulated now.
    pub(crate) fn sweep(&self) {
        let now = self.now();
        let handled = self.world().expire_due(now);
        if handled > 0 {
            tracing::debug!(handled, "expired sandboxes");
        }
    }

    /// Runs `finish` after `hold` in its own task, so a client hanging up mid-transition
    /// cannot leave a sandbox stuck in it.
    pub(crate) async fn after<T, F>(self: &Arc<Self>, hold: Duration, finish: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, ApiError> + Send + 'static,
    {
        let shared = self.clone();
        let task = tokio::spawn(async move {
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            finish(&shared)
        });
        task.await.map_err(|err| ApiError::Internal(err.to_string()))?
    }
}

impl App {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0
    }
}

impl Shared {
    /// Moves the emulated clock and applies whatever became due, before returning.
    pub(crate) fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
        self.sweep();
    }

    /// Back to a fresh emulator: no sandboxes, snapshots, webhooks, faults, calls or
    /// deliveries, and the clock at real time.
    pub(crate) fn reset(&self) {
        {
            let mut world = self.world();
            world.reset();
            world.set_session_cap(self.config.session_cap);
        }
        self.secret_book().clear();
        self.faults.clear();
        self.faults.clear_hits();
        self.publisher.set_faults(crate::faults::WebhookFaults::default());
        self.publisher.clear_deliveries();
        self.calls.clear();
        lock(&self.revoked).clear();
        self.clock.reset();
    }
}
