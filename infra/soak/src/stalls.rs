//! One E2B account whose list calls fail must not stall the reconciliation of the others.
//!
//! The chaos actor makes one account's `GET /sandboxes` fail (503s, or answers past Sandman's E2B
//! deadline) for a stretch of several chaos steps; the other account lists as usual. Each reconcile
//! tick notes what was going on when it began; when it ends, [`ReconcileWatch::floor`] says how
//! many accounts it must have listed, or nothing when another fault could fairly have stopped a
//! listing meanwhile (a fault on every account's list calls, any DynamoDB fault or restart: the
//! registered keys are read from the table).

use std::sync::Mutex;

use e2b_emulator::Fault;

#[derive(Debug, Default)]
pub struct ReconcileWatch {
    state: Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    /// Disturbances begun so far, and whether one is on now (until the chaos actor ends its bursts).
    disturbances: u64,
    disturbed: bool,
    /// DynamoDB Local is down or starting again.
    restarting: bool,
    stretch: Option<Stretch>,
    stretches_begun: u64,
}

/// One account's list calls failing for a number of chaos steps.
#[derive(Debug, Clone)]
pub struct Stretch {
    pub account: usize,
    pub fault: Fault,
    pub steps_left: u32,
}

/// What became of the stretch at a chaos step.
#[derive(Debug)]
pub enum Step {
    None,
    GoesOn(Stretch),
    Ended(Stretch),
}

/// What was going on when a reconcile tick began.
#[derive(Debug, Clone, Copy)]
pub struct Watched {
    disturbances: u64,
    calm: bool,
    failing: usize,
    stretches_begun: u64,
}

impl ReconcileWatch {
    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn begin(&self) -> Watched {
        let state = self.state();
        Watched {
            disturbances: state.disturbances,
            calm: !state.disturbed && !state.restarting,
            failing: usize::from(state.stretch.is_some()),
            stretches_begun: state.stretches_begun,
        }
    }

    /// The fewest of `accounts` a reconcile that began at `watched` and ends now must have listed;
    /// `None` when some other fault could have stopped a listing in between.
    pub fn floor(&self, watched: &Watched, accounts: usize) -> Option<usize> {
        let state = self.state();
        if !watched.calm || state.disturbances != watched.disturbances {
            return None;
        }
        let failing =
            watched.failing + usize::try_from(state.stretches_begun - watched.stretches_begun).unwrap_or(usize::MAX);
        Some(accounts.saturating_sub(failing))
    }

    /// A fault that may stop any account's listing begins: ticks running now are not judged.
    pub fn disturbed(&self) {
        let mut state = self.state();
        state.disturbances += 1;
        state.disturbed = true;
    }

    /// The chaos actor ended its bursts (a stretch goes on: see [`ReconcileWatch::step`]).
    pub fn calm(&self) {
        self.state().disturbed = false;
    }

    pub fn restarting(&self, restarting: bool) {
        let mut state = self.state();
        if restarting {
            state.disturbances += 1;
        }
        state.restarting = restarting;
    }

    /// A stretch begins, unless one is on (the soak fails one account at a time).
    pub fn begin_stretch(&self, stretch: Stretch) -> bool {
        let mut state = self.state();
        if state.stretch.is_some() {
            return false;
        }
        state.stretch = Some(stretch);
        state.stretches_begun += 1;
        true
    }

    /// One chaos step passed: the stretch goes on (to be put back if the bursts ended), or ends.
    pub fn step(&self) -> Step {
        let mut state = self.state();
        let Some(stretch) = state.stretch.as_mut() else {
            return Step::None;
        };
        if stretch.steps_left == 0 {
            return state.stretch.take().map_or(Step::None, Step::Ended);
        }
        stretch.steps_left -= 1;
        Step::GoesOn(stretch.clone())
    }

    /// No stretch any more (a calm stretch, or quiescence): the one that was on, if any.
    pub fn end_stretch(&self) -> Option<Stretch> {
        self.state().stretch.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stretch(steps_left: u32) -> Stretch {
        Stretch {
            account: 1,
            fault: Fault::default(),
            steps_left,
        }
    }

    #[test]
    fn a_calm_tick_must_list_every_account_but_the_failing_one() {
        let watch = ReconcileWatch::default();
        let calm = watch.begin();
        assert_eq!(watch.floor(&calm, 2), Some(2));
        assert!(watch.begin_stretch(stretch(3)));
        let during = watch.begin();
        assert_eq!(watch.floor(&during, 2), Some(1));
        assert_eq!(watch.floor(&calm, 2), Some(1), "the stretch began during the tick");
    }

    #[test]
    fn a_disturbance_at_the_start_or_during_a_tick_leaves_it_unjudged() {
        let watch = ReconcileWatch::default();
        let before = watch.begin();
        watch.disturbed();
        assert_eq!(watch.floor(&before, 2), None);
        let during = watch.begin();
        watch.calm();
        assert_eq!(watch.floor(&during, 2), None);
        watch.restarting(true);
        watch.restarting(false);
        assert_eq!(watch.floor(&watch.begin(), 2), Some(2));
        let calm = watch.begin();
        watch.restarting(true);
        assert_eq!(watch.floor(&calm, 2), None);
    }

    #[test]
    fn a_stretch_lasts_its_steps_then_ends() {
        let watch = ReconcileWatch::default();
        assert!(watch.begin_stretch(stretch(1)));
        assert!(!watch.begin_stretch(stretch(5)), "one account at a time");
        assert!(matches!(watch.step(), Step::GoesOn(_)));
        assert!(matches!(watch.step(), Step::Ended(_)));
        assert!(matches!(watch.step(), Step::None));
        assert_eq!(watch.floor(&watch.begin(), 2), Some(2));
    }
}
