//! Timeouts and paused retention, driven by the emulated clock.

use time::OffsetDateTime;

use super::World;
use crate::clock;
use crate::events::{EventDetail, EventType};
use crate::sandbox::{OnTimeout, SandboxState};

pub(crate) const KILL_REASON_TIMEOUT: &str = "timeout";
pub(crate) const KILL_REASON_RETENTION: &str = "retention";
/// A running sandbox reached the plan's cap on one continuous run.
pub(crate) const KILL_REASON_SESSION_CAP: &str = "session_cap";

impl World {
    /// Recomputes when a sandbox next needs attention: a running one at `end_at`, a
    /// paused one when its retention ends. Mid-transition and killed ones have no deadline.
    pub(super) fn reschedule(&mut self, id: &str) {
        if let Some(old) = self.deadline_of.remove(id) {
            self.deadlines.remove(&(old, id.to_owned()));
        }
        let Some(sandbox) = self.sandboxes.get(id) else {
            return;
        };
        let deadline = match (sandbox.state, sandbox.transition) {
            (_, Some(_)) => None,
            (SandboxState::Running, None) => Some(match self.cap_at(sandbox) {
                Some(cap_at) => cap_at.min(sandbox.end_at),
                None => sandbox.end_at,
            }),
            (SandboxState::Paused, None) => match (self.limits.paused_retention, sandbox.paused_at) {
                (Some(retention), Some(paused_at)) => Some(clock::add(paused_at, retention)),
                _ => None,
            },
            (SandboxState::Killed, None) => None,
        };
        if let Some(deadline) = deadline {
            self.deadlines.insert((deadline, id.to_owned()));
            self.deadline_of.insert(id.to_owned(), deadline);
        }
    }

    /// Acts on every deadline at or before `now`, each at its own time, so a long clock
    /// jump can time a sandbox out, auto-pause it and then expire its retention.
    pub(crate) fn expire_due(&mut self, now: OffsetDateTime) -> usize {
        let mut handled = 0;
        while let Some((at, id)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, id.clone()));
            self.deadline_of.remove(&id);
            self.expire(&id, at);
            handled += 1;
        }
        handled
    }

    fn expire(&mut self, id: &str, at: OffsetDateTime) {
        let Some(sandbox) = self.sandboxes.get(id) else {
            return;
        };
        let capped = self.cap_at(sandbox).is_some_and(|cap_at| cap_at <= at);
        match (sandbox.state, sandbox.on_timeout) {
            // The cap ends the run whatever the timeout would have done: E2B kills it.
            (SandboxState::Running, _) if capped => {
                self.mark_killed(id, at, KILL_REASON_SESSION_CAP);
            }
            (SandboxState::Running, OnTimeout::Pause) => {
                self.mark_paused(id, at);
            }
            (SandboxState::Running, OnTimeout::Kill) => {
                self.mark_killed(id, at, KILL_REASON_TIMEOUT);
            }
            (SandboxState::Paused, _) => {
                self.mark_killed(id, at, KILL_REASON_RETENTION);
            }
            (SandboxState::Killed, _) => {}
        }
    }

    /// When the current continuous run reaches the session cap, if one is set.
    fn cap_at(&self, sandbox: &crate::sandbox::SandboxView) -> Option<OffsetDateTime> {
        self.limits.session_cap.map(|cap| clock::add(sandbox.started_at, cap))
    }

    /// Changes the session cap (`None`: off) and re-plans every sandbox's deadline.
    pub(crate) fn set_session_cap(&mut self, cap: Option<std::time::Duration>) {
        self.limits.session_cap = cap;
        let ids: Vec<String> = self.sandboxes.keys().cloned().collect();
        for id in ids {
            self.reschedule(&id);
        }
    }

    pub(crate) fn session_cap(&self) -> Option<std::time::Duration> {
        self.limits.session_cap
    }

    pub(super) fn mark_paused(&mut self, id: &str, at: OffsetDateTime) {
        let Some(sandbox) = self.sandboxes.get_mut(id) else {
            return;
        };
        sandbox.state = SandboxState::Paused;
        sandbox.record(at, SandboxState::Paused);
        sandbox.transition = None;
        sandbox.paused_at = Some(at);
        sandbox.end_at = at;
        self.emit(EventType::Paused, id, at, EventDetail::default());
        self.reschedule(id);
    }

    pub(super) fn mark_killed(&mut self, id: &str, at: OffsetDateTime, reason: &str) {
        let Some(sandbox) = self.sandboxes.get_mut(id) else {
            return;
        };
        let team = sandbox.team_id.clone();
        sandbox.state = SandboxState::Killed;
        sandbox.record(at, SandboxState::Killed);
        sandbox.transition = None;
        sandbox.killed_at = Some(at);
        sandbox.kill_reason = Some(reason.to_owned());
        if let Some(live) = self.live_by_team.get_mut(&team) {
            live.remove(id);
        }
        let detail = EventDetail {
            kill_reason: Some(reason.to_owned()),
            ..EventDetail::default()
        };
        self.emit(EventType::Killed, id, at, detail);
        self.reschedule(id);
    }
}
