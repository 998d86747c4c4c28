//! The model: which actions each state allows, what each does, and the properties checked on every
//! state. An action is one step of one actor (an effect's outcome delivered, or a Lambda cut
//! before it), an operation starting, E2B acting on its own, a webhook lost, time passing, or the
//! finale: faults stop, time passes every lease, and one reconcile runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use sandman_protocol::domain::{SessionState, SnapshotStatus};
use sandman_protocol::policy::Rules;
use sandman_protocol::reconcile::{Listed, Listing};
use sandman_protocol::record::{IdleCandidate, PruneCandidate, TransitSession};
use stateright::{Model, Property};

use crate::config::Config;
use crate::effect::{Effect, Outcome};
use crate::invariants::{Invariant, Tally};
use crate::ops::{Answer, Op};
use crate::replay::{Replayed, replay};
use crate::state::{InFlight, Role, Slot, State};
use crate::world::{ACCOUNT, Fault, SbxState, at, listed, owner};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(
    clippy::large_enum_variant,
    reason = "a checker action is built once per step and hashed by value; boxing buys nothing"
)]
pub enum Action {
    /// Actor `slot` starts `op`.
    Start(usize, Op),
    /// Actor `slot`'s pending effect happens, E2B calls under `fault`.
    Step(usize, Fault),
    /// Actor `slot`'s Lambda is cut before its pending effect.
    Cut(usize),
    /// A claim lease (and a second) passes.
    Tick,
    /// E2B pauses a running sandbox on its own.
    AutoPause(String),
    /// A webhook event is lost for good.
    Drop(String),
    /// The team's budget is reached.
    BudgetReached,
    /// Faults stop, every lease lapses, and one reconcile runs.
    Finale,
}

pub struct SandmanModel {
    pub config: Config,
    pub rules: Rules,
    pub tally: Arc<Tally>,
}

impl SandmanModel {
    pub fn new(config: Config) -> SandmanModel {
        let rules = config.rules();
        SandmanModel {
            config,
            rules,
            tally: Arc::default(),
        }
    }

    /// Replays `flight` to where it stands now.
    fn replay(&self, flight: &InFlight, slot: usize) -> Replayed<Answer> {
        let prefix = format!("a{slot}o{}", flight.seq);
        replay(&self.rules, flight.start, &prefix, &flight.outcomes, &flight.op)
    }

    fn ops_for(&self, state: &State, slot: usize, role: Role, ops: &mut Vec<Op>) {
        let now = state.clock;
        match role {
            Role::Api => {
                for entry in &self.config.slots[slot].menu {
                    let (verb, project) = entry.split_once(' ').expect("`verb project`");
                    let project = project.to_owned();
                    match verb {
                        "open" => ops.push(Op::Open(project)),
                        "resume" => ops.push(Op::Resume(project)),
                        "pause" => ops.push(Op::Pause(project)),
                        "kill" => ops.push(Op::Kill(project)),
                        "heartbeat" => ops.push(Op::Heartbeat(project)),
                        "delete" => ops.push(Op::Delete(project)),
                        "restore" => {
                            for (p, s) in state.table.snapshots.keys() {
                                if *p == project {
                                    ops.push(Op::Restore(project.clone(), s.clone()));
                                }
                            }
                        }
                        "fork" => ops.push(Op::ForkLive(project, format!("fork{slot}"))),
                        other => panic!("unknown api op {other}"),
                    }
                }
            }
            Role::Webhook => {
                ops.extend(state.e2b.events.iter().cloned().map(Op::Deliver));
            }
            Role::IdleEnforcer => {
                for record in state.table.projects.values() {
                    let Some(session) = &record.session else { continue };
                    if session.state == SessionState::Running && session.idle_at.is_some_and(|due| due <= at(now)) {
                        ops.push(Op::EnforceIdle(candidate(record), now));
                    }
                }
            }
            Role::Reconciler => ops.extend(reconcile_ops(state, false)),
            Role::Pruner => {
                for (project, marks) in &state.table.marks {
                    if let Some(due) = marks.prune_at.filter(|due| *due <= at(now))
                        && state.table.projects.contains_key(project)
                    {
                        ops.push(Op::Prune(
                            PruneCandidate {
                                key: crate::ops::key(project),
                                due_at: due,
                            },
                            now,
                        ));
                    }
                }
            }
        }
    }

    /// Delivers `flight`'s pending effect under `fault`, then the silent effects after it.
    fn step(&self, state: &mut State, slot: usize, fault: Fault) {
        let mut flight = state.slots[slot].op.take().expect("an operation in flight");
        let mut fault = fault;
        loop {
            let outcome = self.perform(state, slot, &flight, fault);
            fault = Fault::Answered;
            let running = match &outcome {
                Outcome::Sandbox(Ok(sandbox)) => Some(sandbox.sandbox_id.clone()),
                Outcome::Connected(Ok(connected)) => Some(connected.sandbox.sandbox_id.clone()),
                Outcome::Detail(Ok(detail)) if detail.state == sandman_protocol::e2b::SandboxState::Running => {
                    Some(detail.sandbox_id.clone())
                }
                _ => None,
            };
            flight.confirmed.extend(running);
            flight.outcomes.push((outcome, state.clock));
            match self.replay(&flight, slot) {
                Replayed::Asks(effect) if effect.is_silent() => {
                    flight.asks = effect;
                    continue;
                }
                Replayed::Asks(effect) => {
                    flight.asks = effect;
                    state.slots[slot].op = Some(flight);
                }
                Replayed::Answered(answer) => self.answered(state, &flight, answer),
            }
            return;
        }
    }

    fn perform(&self, state: &mut State, slot: usize, flight: &InFlight, fault: Fault) -> Outcome {
        let effect = &flight.asks;
        let now = state.clock;
        if effect.is_e2b() {
            let before = state.e2b.clone();
            let outcome = state.e2b.perform(effect, fault, now);
            self.judge_e2b(state, slot, flight, &before);
            return outcome;
        }
        let result = state
            .table
            .perform(effect, at(now), state.budget_reached, self.config.live_quota);
        if let Some(execution) = result.counted_usage {
            let counted = {
                let counted = state.facts.usage_counted.entry(execution.clone()).or_default();
                *counted += 1;
                *counted
            };
            let held = counted == 1;
            state.judge(
                Invariant::UsageOnce,
                held,
                format!("execution {execution} counted {counted} times"),
            );
        }
        result.outcome
    }

    /// What an E2B call just did, judged: quota, budget, snapshots held, activity.
    fn judge_e2b(&self, state: &mut State, slot: usize, flight: &InFlight, before: &crate::world::E2bWorld) {
        let running =
            |e2b: &crate::world::E2bWorld| e2b.live().filter(|(_, s)| s.state == SbxState::Running).count() as u32;
        let (was, is) = (running(before), running(&state.e2b));
        if is > was {
            let held = is <= self.config.live_quota.max(was);
            state.judge(
                Invariant::LiveQuota,
                held,
                format!("{is} sandboxes running in E2B, quota {}", self.config.live_quota),
            );
            if state.slots[slot].role == Role::Api {
                let held = !flight.over_budget;
                state.judge(
                    Invariant::BudgetStopsCompute,
                    held,
                    format!("`{}` began after the budget was reached and started compute", flight.op),
                );
            }
        }
        let deleted: Vec<String> = before
            .snapshots
            .keys()
            .filter(|id| !state.e2b.snapshots.contains_key(*id))
            .cloned()
            .collect();
        for snapshot in deleted {
            let row = state
                .table
                .snapshots
                .values()
                .find(|row| row.snapshot.e2b_snapshot_id == *snapshot);
            let held_until = row.and_then(|row| row.view().held_until);
            let held = held_until.is_none_or(|until| until <= at(state.clock));
            state.judge(
                Invariant::HeldSnapshotKept,
                held,
                format!("E2B snapshot {snapshot} deleted while held"),
            );
        }
        if let (Op::EnforceIdle(candidate, read_at), Effect::Pause(sandbox)) = (&flight.op, &flight.asks) {
            let paused = before
                .sandboxes
                .get(sandbox)
                .is_some_and(|s| s.state == SbxState::Running)
                && state
                    .e2b
                    .sandboxes
                    .get(sandbox)
                    .is_some_and(|s| s.state == SbxState::Paused);
            if paused {
                let project = candidate.key.project.as_str();
                let beat = state.facts.activity_answered.get(project).copied();
                let window = candidate.idle_timeout.as_secs() as u32;
                let held = beat.is_none_or(|beat| beat < *read_at || beat + window <= state.clock);
                state.judge(
                    Invariant::ActivityBeatsIdlePause,
                    held,
                    format!("{project}'s heartbeat at {beat:?} then paused by a tick that read it at {read_at}"),
                );
            }
        }
    }

    /// An operation finished with `answer`.
    fn answered(&self, state: &mut State, flight: &InFlight, answer: Answer) {
        if let Some(sandbox) = &answer.running {
            // True when E2B runs it now, or answered this operation that it ran it (E2B may pause
            // it on its own since: the answer was true when given).
            let running = state
                .e2b
                .sandboxes
                .get(sandbox)
                .is_some_and(|s| s.state == SbxState::Running)
                || flight.confirmed.contains(sandbox);
            state.judge(
                Invariant::RunningAnswerIsTrue,
                running,
                format!(
                    "`{}` answered RUNNING with {sandbox}, which E2B does not run",
                    flight.op
                ),
            );
        }
        if answer.activity_recorded
            && let Op::Heartbeat(project) = &flight.op
        {
            state.facts.activity_answered.insert(project.clone(), state.clock);
        }
        if let Op::Deliver(event) = &flight.op {
            if !answer.acknowledged {
                // E2B delivers it again.
                state.e2b.events.push(event.clone());
            } else if let Some((execution, _)) = &event.execution {
                let execution = format!("{}:{execution}", event.sandbox_id);
                *state.facts.usage_acknowledged.entry(execution).or_default() += 1;
            }
        }
    }

    fn start(&self, state: &mut State, slot: usize, op: Op) {
        state.seq += 1;
        if let Op::Deliver(event) = &op
            && let Some(i) = state.e2b.events.iter().position(|e| e == event)
        {
            state.e2b.events.remove(i);
        }
        let mut flight = InFlight {
            op,
            start: state.clock,
            seq: state.seq,
            outcomes: Vec::new(),
            asks: Effect::Account,
            over_budget: state.budget_reached,
            confirmed: Vec::new(),
        };
        state.slots[slot].ops_left -= 1;
        match self.replay(&flight, slot) {
            Replayed::Asks(effect) => {
                flight.asks = effect;
                let silent = flight.asks.is_silent();
                state.slots[slot].op = Some(flight);
                if silent {
                    self.step(state, slot, Fault::Answered);
                }
            }
            Replayed::Answered(answer) => self.answered(state, &flight, answer),
        }
    }

    /// Faults stop: every operation under way runs to its end (no E2B call fails any more, no
    /// Lambda is cut); every lease and `stuck_after` passes; one reconcile runs to the end; then the
    /// end invariants are judged. Webhook events not yet delivered are lost.
    fn finale(&self, state: &mut State) {
        state.ended = true;
        for slot in 0..state.slots.len() {
            while state.slots[slot].op.is_some() {
                self.step(state, slot, Fault::Answered);
            }
        }
        state.e2b.events.clear();
        let lapse = self
            .rules
            .stuck_after
            .max(sandman_protocol::domain::CLAIM_LEASE)
            .max(sandman_protocol::prune::PENDING_GRACE)
            .as_secs() as u32;
        state.clock += lapse + 1;
        let finale_slot = state.slots.len();
        state.slots.push(Slot {
            role: Role::Reconciler,
            ops_left: u8::MAX,
            op: None,
        });
        for op in reconcile_ops(state, true) {
            self.run_to_end(state, finale_slot, op);
        }
        let mut due = Vec::new();
        self.ops_for(state, finale_slot, Role::Pruner, &mut due);
        for op in due {
            self.run_to_end(state, finale_slot, op);
        }
        state.slots.pop();
        let end = end_findings(state);
        for (invariant, held, detail) in end {
            state.judge(invariant, held, detail);
        }
    }

    fn run_to_end(&self, state: &mut State, slot: usize, op: Op) {
        self.start(state, slot, op);
        while state.slots[slot].op.is_some() {
            self.step(state, slot, Fault::Answered);
        }
    }
}

/// The idle index's entry for a RUNNING record.
pub fn candidate(record: &sandman_protocol::record::ProjectRecord) -> IdleCandidate {
    let session = record.session.as_ref().expect("a session");
    IdleCandidate {
        key: record.project.key(),
        sandbox_id: record.sandbox_id().map(str::to_owned),
        version: record.version,
        idle_at: session.idle_at.expect("RUNNING sessions are in the idle index"),
        idle_timeout: record.project.idle.idle_timeout,
        snapshot_on_idle: record.project.idle.snapshot_on_idle,
        failures: session.failures,
        timeout_at: session.timeout_at,
        busy_cpu_percent: record.project.idle.busy_cpu_percent,
        max_busy_deferral: record.project.idle.max_busy_deferral,
        busy_since: session.busy_since,
        running_since: session.running_since,
        cap_handoff: record.project.idle.cap_handoff,
    }
}

/// One reconcile's checks, as a run reads them now: the table's RUNNING sessions whose sandbox E2B
/// does not list running, every listed sandbox that is no RUNNING session's, every session stuck
/// past `stuck_after`. `all`: also the checks that would find nothing (the finale runs them all).
fn reconcile_ops(state: &State, all: bool) -> Vec<Op> {
    let now = state.clock;
    let mut listing = Listing::default();
    listing.listed.insert(sandman_protocol::port::Account(ACCOUNT.into()));
    for (id, sandbox) in state.e2b.live() {
        let Some(project) = owner(sandbox) else { continue };
        let session_id = sandbox
            .metadata
            .get(sandman_protocol::domain::metadata::SESSION)
            .cloned();
        listing.sandboxes.insert(
            id.clone(),
            Listed {
                sandbox: listed(id, sandbox),
                account: sandman_protocol::port::Account(ACCOUNT.into()),
                owner: project,
                session_id,
            },
        );
    }
    let mut ops = Vec::new();
    let mut running_ids = Vec::new();
    for record in state.table.projects.values() {
        let Some(session) = &record.session else { continue };
        if session.state == SessionState::Running {
            let id = record.sandbox_id().map(str::to_owned);
            let agrees =
                id.as_deref().and_then(|id| listing.state_of(id)) == Some(sandman_protocol::e2b::SandboxState::Running);
            running_ids.extend(id);
            if all || !agrees {
                ops.push(Op::CheckRunning(candidate(record), listing.clone()));
            }
        }
        if session.lease_lapsed(at(now)) {
            let stuck = TransitSession {
                key: record.project.key(),
                state: session.state,
                sandbox_id: record.sandbox_id().map(str::to_owned),
                version: record.version,
                state_since: session.state_since,
            };
            ops.push(Op::RepairStuck(stuck, now));
        }
    }
    for listed in listing.sandboxes.values() {
        if !running_ids.contains(&listed.sandbox.sandbox_id) {
            ops.push(Op::CheckListed(listed.clone(), now));
        }
    }
    ops
}

/// The end invariants, judged on a state after the finale.
fn end_findings(state: &State) -> Vec<(Invariant, bool, String)> {
    let mut found = Vec::new();
    let mut live_by_project: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, sandbox) in state.e2b.live() {
        let holder = state
            .table
            .projects
            .values()
            .find(|r| r.sandbox_id() == Some(id.as_str()) && r.state() != Some(SessionState::Killed));
        let held = holder.is_some();
        found.push((
            Invariant::NoOrphans,
            held,
            format!(
                "E2B keeps sandbox {id} ({:?}) that no existing project holds",
                sandbox.state
            ),
        ));
        if let Some(project) = owner(sandbox) {
            live_by_project
                .entry(project.project.to_string())
                .or_default()
                .push(id.clone());
        }
    }
    for (project, ids) in &live_by_project {
        found.push((
            Invariant::NoOrphans,
            ids.len() <= 1,
            format!("project {project} has {} live sandboxes in E2B: {ids:?}", ids.len()),
        ));
    }
    for (project, record) in &state.table.projects {
        let table = record.state();
        let e2b = record
            .sandbox_id()
            .and_then(|id| state.e2b.sandboxes.get(id))
            .map(|s| s.state)
            .filter(|s| *s != SbxState::Killed);
        let agrees = matches!(
            (table, e2b),
            (None | Some(SessionState::Killed), None)
                | (Some(SessionState::Running), Some(SbxState::Running))
                | (Some(SessionState::Paused), Some(SbxState::Paused))
        );
        found.push((
            Invariant::Converges,
            agrees,
            format!("project {project}: the table says {table:?}, E2B has its sandbox {e2b:?}"),
        ));
    }
    for (execution, acknowledged) in &state.facts.usage_acknowledged {
        let counted = state.facts.usage_counted.get(execution).copied().unwrap_or(0);
        found.push((
            Invariant::UsageOnce,
            counted == 1,
            format!("execution {execution}: acknowledged {acknowledged} times, counted {counted} times"),
        ));
    }
    let ready: Vec<&String> = state
        .table
        .snapshots
        .values()
        .filter(|row| row.snapshot.status == SnapshotStatus::Ready)
        .map(|row| &row.snapshot.e2b_snapshot_id)
        .collect();
    for snapshot in state.e2b.snapshots.keys() {
        found.push((
            Invariant::NoOrphans,
            ready.contains(&snapshot),
            format!("E2B keeps snapshot {snapshot} that no READY row names"),
        ));
    }
    found
}

impl Model for SandmanModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.config.seeds()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.ended {
            return;
        }
        for (i, slot) in state.slots.iter().enumerate() {
            match &slot.op {
                Some(flight) => {
                    actions.push(Action::Step(i, Fault::Answered));
                    if flight.asks.mutates_e2b() && state.left.faults > 0 {
                        actions.push(Action::Step(i, Fault::Unavailable));
                        actions.push(Action::Step(i, Fault::AnswerLost));
                    } else if flight.asks.is_e2b() && state.left.faults > 0 {
                        actions.push(Action::Step(i, Fault::Unavailable));
                    }
                    if state.left.cuts > 0 && slot.role != Role::Webhook {
                        actions.push(Action::Cut(i));
                    }
                }
                None if slot.ops_left > 0 => {
                    let mut ops = Vec::new();
                    self.ops_for(state, i, slot.role, &mut ops);
                    actions.extend(ops.into_iter().map(|op| Action::Start(i, op)));
                }
                None => {}
            }
        }
        if state.left.ticks > 0 {
            actions.push(Action::Tick);
        }
        if state.left.auto_pauses > 0 {
            for (id, sandbox) in &state.e2b.sandboxes {
                if sandbox.state == SbxState::Running {
                    actions.push(Action::AutoPause(id.clone()));
                }
            }
        }
        if state.left.drops > 0 {
            actions.extend(state.e2b.events.iter().map(|e| Action::Drop(e.id.clone())));
        }
        if state.left.budget_reached > 0 && !state.budget_reached {
            actions.push(Action::BudgetReached);
        }
        actions.push(Action::Finale);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        state.judged.clear();
        match action {
            Action::Start(slot, op) => self.start(&mut state, slot, op),
            Action::Step(slot, fault) => {
                if fault != Fault::Answered {
                    state.left.faults -= 1;
                }
                self.step(&mut state, slot, fault);
            }
            Action::Cut(slot) => {
                state.left.cuts -= 1;
                if let Some(flight) = state.slots[slot].op.take()
                    && let Op::Deliver(event) = flight.op
                {
                    state.e2b.events.push(event);
                }
            }
            Action::Tick => {
                state.left.ticks -= 1;
                state.clock += sandman_protocol::domain::CLAIM_LEASE.as_secs() as u32 + 1;
            }
            Action::AutoPause(id) => {
                state.left.auto_pauses -= 1;
                state.e2b.auto_pause(&id, state.clock);
            }
            Action::Drop(id) => {
                state.left.drops -= 1;
                state.e2b.events.retain(|e| e.id != id);
            }
            Action::BudgetReached => {
                state.left.budget_reached -= 1;
                state.budget_reached = true;
            }
            Action::Finale => self.finale(&mut state),
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        macro_rules! always {
            ($invariant:expr) => {
                Property::always($invariant.name(), |model: &SandmanModel, state: &State| {
                    let mut held = true;
                    for (invariant, ok, _) in &state.judged {
                        if *invariant == $invariant {
                            model.tally.record(*invariant, *ok);
                            held &= *ok;
                        }
                    }
                    held
                })
            };
        }
        vec![
            always!(Invariant::RunningAnswerIsTrue),
            always!(Invariant::HeldSnapshotKept),
            always!(Invariant::ActivityBeatsIdlePause),
            always!(Invariant::UsageOnce),
            always!(Invariant::LiveQuota),
            always!(Invariant::BudgetStopsCompute),
            always!(Invariant::NoOrphans),
            always!(Invariant::Converges),
        ]
    }
}
