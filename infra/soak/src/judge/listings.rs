//! One E2B account whose list calls fail must not stall the reconciliation of the others: a
//! reconcile tick that completed while nothing else could fairly stop a listing (see
//! [`crate::stalls`]) must have listed, as E2B's call log shows (calls by its reconciler instance,
//! which no other reconcile used meanwhile, answered 200), at least the accounts whose lists worked.

use std::collections::HashSet;
use std::sync::Mutex;

use e2b_emulator::Route;
use time::OffsetDateTime;

use super::truth::Truth;
use super::{RECONCILE_LISTS, Soak};

#[derive(Debug, Clone)]
pub struct ReconcileTick {
    /// How many accounts it must have listed (`None`: not judged).
    pub floor: Option<usize>,
    /// The instance's caller name in E2B's call log (no other reconcile used it meanwhile).
    pub caller: String,
    pub began: OffsetDateTime,
    pub ended: OffsetDateTime,
}

#[derive(Debug, Default)]
pub struct Ticks(Mutex<Vec<ReconcileTick>>);

pub fn record(soak: &Soak, tick: ReconcileTick) {
    soak.ticks
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(tick);
}

pub fn judge(soak: &Soak, truth: &Truth) {
    let ticks = soak
        .ticks
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let listed: Vec<_> = truth
        .done("reconcile-", Route::ListSandboxes)
        .filter(|c| c.status == 200)
        .collect();
    for tick in ticks {
        let Some(floor) = tick.floor else {
            continue;
        };
        soak.ledger.judged(RECONCILE_LISTS, 1);
        let teams: HashSet<&str> = listed
            .iter()
            .filter(|c| c.caller.as_deref() == Some(tick.caller.as_str()))
            .filter(|c| tick.began <= c.received_at && c.at <= tick.ended)
            .filter_map(|c| c.team_id.as_deref())
            .collect();
        if teams.len() < floor {
            soak.ledger.violation(
                RECONCILE_LISTS,
                "",
                format!(
                    "a reconcile from {} to {} listed {teams:?} in E2B, {floor} account(s) needed",
                    tick.began.time(),
                    tick.ended.time()
                ),
            );
        }
    }
}
