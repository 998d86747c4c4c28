//! The invariants, each with the count of cases it judged. They are written out, with the same
//! names, in `protocol/src/domain/STATE_MACHINE.md`. A check that judged no case fails the run.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    /// An answer that hands out a sandbox as RUNNING (open, resume, wake, restore, fork) names a
    /// sandbox E2B runs at that moment.
    RunningAnswerIsTrue,
    /// A snapshot held (by a restore or a fork) is never deleted in E2B while its hold lasts.
    HeldSnapshotKept,
    /// A heartbeat answered inside the idle window is never followed by the idle enforcer's pause
    /// of that sandbox from a tick that read it before the heartbeat.
    ActivityBeatsIdlePause,
    /// Each E2B execution's usage is counted at most once, and an acknowledged event's usage is
    /// counted (nothing lost).
    UsageOnce,
    /// The team never runs more live sandboxes in E2B than its quota.
    LiveQuota,
    /// Once the team's budget is reached, no request that began after it starts compute in E2B.
    BudgetStopsCompute,
    /// After faults stop and one reconcile runs: at most one live sandbox per project, and none
    /// (running or paused) that no existing project holds.
    NoOrphans,
    /// After faults stop and one reconcile runs: the table says what E2B runs, and nothing stays
    /// in a transitional state.
    Converges,
}

impl Invariant {
    pub const ALL: [Invariant; 8] = [
        Invariant::RunningAnswerIsTrue,
        Invariant::HeldSnapshotKept,
        Invariant::ActivityBeatsIdlePause,
        Invariant::UsageOnce,
        Invariant::LiveQuota,
        Invariant::BudgetStopsCompute,
        Invariant::NoOrphans,
        Invariant::Converges,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Invariant::RunningAnswerIsTrue => "running-answer-is-true",
            Invariant::HeldSnapshotKept => "held-snapshot-kept",
            Invariant::ActivityBeatsIdlePause => "activity-beats-idle-pause",
            Invariant::UsageOnce => "usage-once",
            Invariant::LiveQuota => "live-quota",
            Invariant::BudgetStopsCompute => "budget-stops-compute",
            Invariant::NoOrphans => "no-orphans",
            Invariant::Converges => "converges",
        }
    }
}

/// How many cases each invariant judged, and how many it found broken, over a whole exploration.
#[derive(Debug, Default)]
pub struct Tally {
    judged: [AtomicU64; 8],
    broken: [AtomicU64; 8],
}

impl Tally {
    pub fn record(&self, invariant: Invariant, held: bool) {
        let i = invariant as usize;
        self.judged[i].fetch_add(1, Ordering::Relaxed);
        if !held {
            self.broken[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds another exploration's counts to these.
    pub fn add(&self, other: &Tally) {
        for i in 0..8 {
            self.judged[i].fetch_add(other.judged[i].load(Ordering::Relaxed), Ordering::Relaxed);
            self.broken[i].fetch_add(other.broken[i].load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    pub fn judged(&self, invariant: Invariant) -> u64 {
        self.judged[invariant as usize].load(Ordering::Relaxed)
    }

    pub fn broken(&self, invariant: Invariant) -> u64 {
        self.broken[invariant as usize].load(Ordering::Relaxed)
    }
}
