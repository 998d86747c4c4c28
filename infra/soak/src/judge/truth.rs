//! E2B's record, as the emulator keeps it, taken once for the judge: every sandbox with its state
//! history, every call (who made it, when, what the handler did), every event, every snapshot
//! ever taken, every webhook delivery attempt.

use std::collections::{HashMap, HashSet};

use e2b_emulator::{
    DeliveryOutcome, EventView, RecordedCall, Route, SandboxState, SandboxView, SnapshotView, WebhookDelivery,
};
use time::OffsetDateTime;

use crate::fleet::Fleet;

/// The E2B accounts of the soak (E2B team ids).
pub const ACCOUNTS: [&str; 3] = ["team-local", "team-own", crate::fleet::ELSEWHERE.0];

pub struct Truth {
    pub sandboxes: HashMap<String, SandboxView>,
    pub calls: Vec<RecordedCall>,
    pub events: Vec<EventView>,
    /// Every snapshot ever taken, deleted ones included.
    pub snapshots: Vec<SnapshotView>,
    pub deliveries: Vec<WebhookDelivery>,
    /// The events at least one delivery attempt of which succeeded.
    delivered: HashSet<String>,
}

impl Truth {
    pub fn take(fleet: &Fleet) -> Truth {
        let soaked = |team: &str| ACCOUNTS.contains(&team);
        Truth {
            sandboxes: fleet
                .emulator
                .sandboxes()
                .into_iter()
                .filter(|s| soaked(&s.team_id))
                .map(|s| (s.sandbox_id.clone(), s))
                .collect(),
            calls: fleet.emulator.calls(),
            events: fleet
                .emulator
                .events()
                .into_iter()
                .filter(|e| soaked(&e.team_id))
                .collect(),
            snapshots: fleet
                .emulator
                .snapshot_history()
                .into_iter()
                .filter(|s| soaked(&s.team_id))
                .collect(),
            delivered: HashSet::new(),
            deliveries: fleet.emulator.deliveries(),
        }
        .indexed()
    }

    fn indexed(mut self) -> Truth {
        self.delivered = self
            .deliveries
            .iter()
            .filter(|d| d.outcome == DeliveryOutcome::Delivered)
            .map(|d| d.event_id.clone())
            .collect();
        self
    }

    pub fn sandbox(&self, id: &str) -> Option<&SandboxView> {
        self.sandboxes.get(id)
    }

    /// The sandboxes running or paused now.
    pub fn live(&self) -> impl Iterator<Item = &SandboxView> {
        self.sandboxes.values().filter(|s| s.is_live())
    }

    /// Whether E2B held something of account `team` (a live sandbox or a snapshot) at `at`.
    pub fn holds(&self, team: &str, at: OffsetDateTime) -> bool {
        let sandbox = self
            .sandboxes
            .values()
            .any(|s| s.team_id == team && matches!(s.state_at(at), Some(SandboxState::Running | SandboxState::Paused)));
        let snapshot = self
            .snapshots
            .iter()
            .any(|s| s.team_id == team && s.created_at <= at && s.deleted_at.is_none_or(|gone| gone > at));
        sandbox || snapshot
    }

    /// Calls that reached E2B's handler and were done there (2xx), by caller prefix and route.
    pub fn done<'a>(&'a self, caller: &'a str, route: Route) -> impl Iterator<Item = &'a RecordedCall> + 'a {
        self.calls.iter().filter(move |call| {
            call.route == route
                && call.handler_status.is_some_and(|s| (200..300).contains(&s))
                && call.caller.as_deref().is_some_and(|c| c.starts_with(caller))
        })
    }

    /// The sandbox a call is about (`/sandboxes/{id}/…`).
    pub fn sandbox_of(call: &RecordedCall) -> Option<&str> {
        call.path.strip_prefix("/sandboxes/")?.split('/').next()
    }

    /// Whether every attempt to deliver event `event_id` failed or was dropped (or none was made).
    pub fn undelivered(&self, event_id: &str) -> bool {
        !self.delivered.contains(event_id)
    }
}

impl Truth {
    /// What became of E2B's latest event of `kind` about `sandbox` at or before `at`: never
    /// emitted, every delivery failed or dropped, or delivered (when first).
    pub fn fate_of_event(&self, sandbox: &str, kind: e2b_emulator::EventType, at: OffsetDateTime) -> String {
        let Some(event) = self
            .events
            .iter()
            .filter(|e| e.sandbox_id == sandbox && e.event_type == kind && e.at <= at)
            .max_by_key(|e| e.at)
        else {
            return format!("no {} event", kind.as_str());
        };
        let first = self
            .deliveries
            .iter()
            .filter(|d| d.event_id == event.event_id && d.outcome == DeliveryOutcome::Delivered)
            .map(|d| d.at)
            .min();
        let attempts = self.deliveries.iter().filter(|d| d.event_id == event.event_id).count();
        match first {
            Some(when) => format!("its {} event was delivered at {}", kind.as_str(), when.time()),
            None => format!(
                "its {} event was never delivered ({attempts} attempts or drops)",
                kind.as_str()
            ),
        }
    }
}

/// A short account of a sandbox's history, for a violation's example.
pub fn history(view: &SandboxView) -> String {
    let changes: Vec<String> = view
        .history
        .iter()
        .map(|c| format!("{:?}@{}", c.state, c.at.time()))
        .collect();
    format!("{} [{}]", view.sandbox_id, changes.join(" "))
}
