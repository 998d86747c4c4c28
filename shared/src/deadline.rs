//! How long the current invocation may still work. A Lambda invocation is cut at its deadline
//! between two awaits, so every function budgets from its remaining time (minus a margin to
//! write what it did) and starts no E2B call it cannot finish. The budget travels with the task
//! (a task-local), so the core and the E2B client read it without every signature carrying it.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// No API request answers later than this after it arrived (API Gateway gives up at 30 s).
pub const API_BUDGET: Duration = Duration::from_secs(25);

/// Kept back from the Lambda deadline to record an outcome after the last E2B call.
pub const LAMBDA_MARGIN: Duration = Duration::from_secs(3);

/// An E2B call with less time than this left is not started: it could not finish.
pub const MIN_E2B_CALL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

tokio::task_local! {
    static CURRENT: Deadline;
}

impl Deadline {
    pub fn at(instant: Instant) -> Self {
        Self(instant)
    }

    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// From a Lambda context's deadline (milliseconds since the epoch), less `LAMBDA_MARGIN`.
    pub fn from_lambda_ms(deadline_ms: u64) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        Self::after(left.saturating_sub(LAMBDA_MARGIN))
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether `work` still fits before the deadline.
    pub fn allows(self, work: Duration) -> bool {
        self.remaining() >= work
    }

    /// The deadline of the task running now, if it set one.
    pub fn current() -> Option<Deadline> {
        CURRENT.try_with(|deadline| *deadline).ok()
    }

    /// Runs `work` under the Lambda context's deadline, if it has one (a context built by hand, as the
    /// local stack's timers do, carries 0: no deadline).
    pub async fn scope_lambda<F: Future>(deadline_ms: u64, work: F) -> F::Output {
        match deadline_ms {
            0 => work.await,
            ms => Self::from_lambda_ms(ms).scope(work).await,
        }
    }

    /// Runs `work` under this deadline, or under the enclosing one if that is earlier.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        let deadline = Self::current().map_or(self, |outer| outer.min(self));
        CURRENT.scope(deadline, work).await
    }

    /// True when the current task's deadline leaves less than `work`.
    pub fn current_allows(work: Duration) -> bool {
        Self::current().is_none_or(|deadline| deadline.allows(work))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_inner_scope_never_extends_the_outer_one() {
        let outer = Deadline::after(Duration::from_secs(5));
        let inner = outer
            .scope(Deadline::after(Duration::from_secs(60)).scope(async { Deadline::current() }))
            .await;
        assert_eq!(inner, Some(outer));
        assert_eq!(Deadline::current(), None);
        assert!(Deadline::current_allows(Duration::from_secs(3600)));
    }

    #[test]
    fn a_lambda_deadline_keeps_the_margin() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let deadline = Deadline::from_lambda_ms(now_ms + 10_000);
        assert!(deadline.remaining() <= Duration::from_secs(7));
        assert_eq!(Deadline::from_lambda_ms(now_ms).remaining(), Duration::ZERO);
    }
}
