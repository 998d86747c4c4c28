//! When to try an E2B call again, and how long to wait first. Pure: no clock, no randomness of its own.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// Whether sending the same request twice could do harm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Doing it twice has the effect of doing it once (reads, pause, connect, kill, ...).
    Safe,
    /// Not idempotent (creates): only a request E2B refused outright (429) may be sent again.
    OnlyIfRefused,
}

/// How one attempt failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptFailure {
    /// E2B answered with this non-success status.
    Status(u16),
    /// No complete answer before the call deadline.
    Timeout,
    /// The request could not be sent or the connection broke.
    Connection,
}

/// One failed attempt: its number (1-based), how it failed, and E2B's `Retry-After`, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedAttempt {
    pub attempt: u32,
    pub failure: AttemptFailure,
    pub retry_after: Option<Duration>,
}

/// Capped exponential backoff with full jitter, honouring `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    pub fn is_retryable(repeat: Repeat, failure: AttemptFailure) -> bool {
        match (repeat, failure) {
            (_, AttemptFailure::Status(429)) => true,
            (Repeat::Safe, AttemptFailure::Status(status)) => {
                matches!(status, 500 | 502 | 503 | 504)
            }
            (Repeat::Safe, AttemptFailure::Timeout | AttemptFailure::Connection) => true,
            (Repeat::OnlyIfRefused, _) => false,
        }
    }

    /// Full jitter: `jitter` (in `[0, 1]`) of `min(max_backoff, base_backoff * 2^(attempt - 1))`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        let ceiling = self.base_backoff.saturating_mul(factor).min(self.max_backoff);
        let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        ceiling.mul_f64(jitter)
    }

    /// How long to wait before the next attempt, or `None` to give up with the last failure.
    ///
    /// `remaining` is what is left of the call deadline: a wait that would use it all up is
    /// pointless, so the call ends now instead.
    pub fn next_delay(
        &self,
        repeat: Repeat,
        failed: &FailedAttempt,
        remaining: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if failed.attempt >= self.max_attempts || !Self::is_retryable(repeat, failed.failure) {
            return None;
        }
        let delay = match (failed.failure, failed.retry_after) {
            (AttemptFailure::Status(429), Some(asked)) => asked.min(self.max_backoff),
            _ => self.backoff(failed.attempt, jitter),
        };
        (delay < remaining).then_some(delay)
    }
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let wait = at - now;
    Some(wait.try_into().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_backoff: 200 * MS,
            max_backoff: 5000 * MS,
        }
    }

    fn failed(attempt: u32, failure: AttemptFailure) -> FailedAttempt {
        FailedAttempt {
            attempt,
            failure,
            retry_after: None,
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let p = policy();
        assert_eq!(p.backoff(1, 1.0), 200 * MS);
        assert_eq!(p.backoff(2, 1.0), 400 * MS);
        assert_eq!(p.backoff(3, 1.0), 800 * MS);
        assert_eq!(p.backoff(6, 1.0), 5000 * MS);
        assert_eq!(p.backoff(u32::MAX, 1.0), 5000 * MS);
    }

    #[test]
    fn full_jitter_scales_the_whole_interval() {
        let p = policy();
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), 400 * MS);
        assert_eq!(p.backoff(3, f64::NAN), Duration::ZERO);
        assert_eq!(p.backoff(3, 7.0), 800 * MS);
    }

    #[test]
    fn safe_calls_retry_transient_failures_only() {
        use AttemptFailure::*;
        for failure in [
            Status(429),
            Status(500),
            Status(502),
            Status(503),
            Status(504),
            Timeout,
            Connection,
        ] {
            assert!(RetryPolicy::is_retryable(Repeat::Safe, failure), "{failure:?}");
        }
        for failure in [Status(400), Status(401), Status(404), Status(409), Status(501)] {
            assert!(!RetryPolicy::is_retryable(Repeat::Safe, failure), "{failure:?}");
        }
    }

    #[test]
    fn creates_retry_only_when_refused() {
        use AttemptFailure::*;
        assert!(RetryPolicy::is_retryable(Repeat::OnlyIfRefused, Status(429)));
        for failure in [Status(500), Status(503), Timeout, Connection] {
            assert!(
                !RetryPolicy::is_retryable(Repeat::OnlyIfRefused, failure),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = policy();
        let long = Duration::from_secs(60);
        let fail = |n| failed(n, AttemptFailure::Status(503));
        assert_eq!(p.next_delay(Repeat::Safe, &fail(3), long, 1.0), Some(800 * MS));
        assert_eq!(p.next_delay(Repeat::Safe, &fail(4), long, 1.0), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = policy();
        let long = Duration::from_secs(60);
        let mut limited = failed(1, AttemptFailure::Status(429));
        limited.retry_after = Some(Duration::from_secs(2));
        assert_eq!(
            p.next_delay(Repeat::OnlyIfRefused, &limited, long, 0.0),
            Some(2000 * MS)
        );
        limited.retry_after = Some(Duration::from_secs(30));
        assert_eq!(p.next_delay(Repeat::Safe, &limited, long, 0.0), Some(5000 * MS));
    }

    #[test]
    fn never_waits_past_the_deadline() {
        let p = policy();
        let mut limited = failed(1, AttemptFailure::Status(429));
        limited.retry_after = Some(Duration::from_secs(2));
        assert_eq!(p.next_delay(Repeat::Safe, &limited, 1999 * MS, 0.0), None);
        let busy = failed(2, AttemptFailure::Status(503));
        assert_eq!(p.next_delay(Repeat::Safe, &busy, 400 * MS, 1.0), None);
        assert_eq!(p.next_delay(Repeat::Safe, &busy, 401 * MS, 1.0), Some(400 * MS));
    }

    #[test]
    fn parses_both_retry_after_forms() {
        let now = datetime!(2026-10-01 12:00:00 UTC);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Thu, 01 Oct 2026 12:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Oct 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
