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
    judge_ticks(soak, truth, ticks);
}

/// After the run, once faults are off: one account's lists fail for one whole reconcile, which
/// must list the others. The run's storms meet a reconcile inside such a stretch only by chance;
/// this one makes sure the invariant judges at least one, whatever the timing.
pub async fn one_account_down(soak: &Soak, rng: &mut fastrand::Rng) {
    let fleet = &soak.fleet;
    let account = rng.usize(0..fleet.accounts.len());
    let team = fleet.accounts[account].team.clone();
    let fault = e2b_emulator::Fault {
        error_rate: 1.0,
        error_status: 503,
        ..e2b_emulator::Fault::default()
    };
    let stretch = crate::stalls::Stretch {
        account,
        fault: fault.clone(),
        steps_left: 0,
    };
    if !fleet.watch.begin_stretch(stretch) {
        return;
    }
    fleet
        .emulator
        .set_team_fault(team.as_str(), Route::ListSandboxes, fault);
    let before = soak
        .ticks
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len();
    let _ = soak.tick(rng, crate::fleet::Job::Reconcile, false).await;
    fleet.emulator.clear_team_fault(team.as_str(), Route::ListSandboxes);
    fleet.watch.end_stretch();
    let new: Vec<ReconcileTick> =
        soak.ticks.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[before..].to_vec();
    judge_ticks(soak, &Truth::take(fleet), new);
}

fn judge_ticks(soak: &Soak, truth: &Truth, ticks: Vec<ReconcileTick>) {
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
