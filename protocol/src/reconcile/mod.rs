//! The reconciler's checks, one item at a time: E2B retries a webhook only three times, so the
//! table can drift from what E2B runs. A run (in `sandman::reconciler`) reads the table's RUNNING
//! and stuck sessions and lists every E2B account once, then runs these checks over them.
//! Every correction of a session is a conditional [`SessionWrite`] by [`Actor::Reconciler`] with a
//! cause starting "reconciled:", so it lands in the lifecycle log and loses to any concurrent writer.
//!
//! Nothing is corrected on the list alone: a `GET` of the sandbox confirms E2B's state first (a
//! list can be older than the table read it is compared with). Only disagreements cost that call.

mod checks;
pub mod decide;

pub use checks::{check_listed, check_running, repair_stuck};

/// How long after a claim a session still mid-action is looked at: its lease has lapsed by then.
pub const STUCK_AFTER: std::time::Duration = crate::domain::CLAIM_LEASE;

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{ProjectKey, SessionState};
use crate::e2b::{ListedSandbox, SandboxState};
use crate::port::Account;

/// What one check found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Consistent,
    Repaired {
        to: SessionState,
        stuck: bool,
    },
    Orphan(OrphanAction),
    /// Another writer changed the session first; the next run looks again.
    Raced,
    /// Not checked: its E2B account could not be listed, or the deadline came first.
    Skipped,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrphanAction {
    Paused,
    Killed,
    Reported,
}

/// A Sandman sandbox as E2B listed it, and the account that listed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listed {
    pub sandbox: ListedSandbox,
    pub account: Account,
    pub owner: ProjectKey,
    pub session_id: Option<String>,
}

/// E2B's side of one run: every Sandman sandbox of every account listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Listing {
    /// The accounts whose listing succeeded: absence from `sandboxes` means something only for these.
    pub listed: BTreeSet<Account>,
    pub sandboxes: BTreeMap<String, Listed>,
}

impl Listing {
    pub fn covers(&self, account: &Account) -> bool {
        self.listed.contains(account)
    }

    pub fn state_of(&self, sandbox_id: &str) -> Option<SandboxState> {
        self.sandboxes.get(sandbox_id).map(|listed| listed.sandbox.state)
    }
}
