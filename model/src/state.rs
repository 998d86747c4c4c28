//! One state of the model: the world, the actors and what they are in the middle of, what is left
//! of each kind of fault, and what the last step gave the invariants to judge.

use std::collections::BTreeMap;

use crate::effect::{Effect, Outcome};
use crate::invariants::Invariant;
use crate::ops::Op;
use crate::world::{E2bWorld, Table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// An API instance (a user's requests).
    Api,
    /// E2B's webhook deliveries, as the webhook function receives them.
    Webhook,
    IdleEnforcer,
    Reconciler,
    Pruner,
}

/// An operation under way: what it is, when it started, the outcomes it was given, and the effect
/// it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InFlight {
    pub op: Op,
    pub start: u32,
    pub seq: u32,
    pub outcomes: Vec<(Outcome, u32)>,
    pub asks: Effect,
    /// The team's budget was already reached when the operation began.
    pub over_budget: bool,
    /// Sandboxes E2B answered this operation as running (a create, a connect, a get).
    pub confirmed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    pub role: Role,
    pub ops_left: u8,
    pub op: Option<InFlight>,
}

/// What is left of each kind of nondeterminism the model may still use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Budget {
    /// E2B calls that fail (before or after doing the work) or are rate-limited.
    pub faults: u8,
    /// Lambdas cut between two steps.
    pub cuts: u8,
    /// Time jumps of one claim lease.
    pub ticks: u8,
    /// Sandboxes E2B pauses on its own (their timeout ran out).
    pub auto_pauses: u8,
    /// Webhook events lost for good, or delivered twice.
    pub drops: u8,
    pub duplicates: u8,
    /// The team's budget may be reached once.
    pub budget_reached: u8,
}

/// Facts the invariants judge across steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Facts {
    /// Per project: when a heartbeat last answered that it recorded activity.
    pub activity_answered: BTreeMap<String, u32>,
    /// Per execution: how many times its usage was counted.
    pub usage_counted: BTreeMap<String, u8>,
    /// Executions whose event (carrying usage) the webhook acknowledged.
    pub usage_acknowledged: BTreeMap<String, u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    pub clock: u32,
    pub table: Table,
    pub e2b: E2bWorld,
    pub budget_reached: bool,
    pub slots: Vec<Slot>,
    pub left: Budget,
    pub seq: u32,
    pub facts: Facts,
    /// What the step that made this state judged: each invariant, and whether it held.
    pub judged: Vec<(Invariant, bool, String)>,
    /// Set by the finale: faults stopped, one reconcile ran, and the end invariants were judged.
    pub ended: bool,
}

impl State {
    pub fn judge(&mut self, invariant: Invariant, held: bool, detail: impl Into<String>) {
        self.judged.push((invariant, held, detail.into()));
    }
}
