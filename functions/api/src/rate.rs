//! Each team's request rate: a token bucket per team, in this API instance's memory, on the
//! stack's clock. Past it a request is answered 429 `rate_limited` with `Retry-After`, before any
//! handler runs: it reads nothing and calls nothing.
//!
//! Why per instance and not shared (a bucket item in DynamoDB): a shared bucket costs a
//! conditional write per request, 1 WCU, about as much again as the request itself costs in API
//! Gateway, where a bucket in memory costs nothing (figures: `tests/tests/rate_limit_bench.rs`).
//! The price is that the limit holds per instance: a team whose requests Lambda spreads over N
//! warm instances gets up to N times its rate. What bounds N is the API function's concurrency
//! (its reserved concurrency, and API Gateway's own throttle in front), and what bounds the harm
//! of a request are the quotas, which are exact. `SANDMAN_TEAM_REQUEST_RATES` gives a team its
//! own rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sandman::config::{RequestRate, RequestRates};
use sandman::domain::TeamId;
use time::OffsetDateTime;

/// Buckets kept before full ones (a team idle long enough to have refilled) are forgotten: a full
/// bucket and no bucket answer the same.
const KEPT: usize = 10_000;

pub struct TeamRates {
    rates: RequestRates,
    buckets: Mutex<HashMap<TeamId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

/// A request over its team's rate: when one will be admitted again, and the rate it passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
    pub rate: RequestRate,
}

impl TeamRates {
    pub fn new(rates: RequestRates) -> TeamRates {
        TeamRates {
            rates,
            buckets: Mutex::default(),
        }
    }

    /// Takes one token of `team`'s bucket at `now`, or says when there will be one.
    pub fn admit(&self, team: &TeamId, now: OffsetDateTime) -> Result<(), Limited> {
        let Some(rate) = self.rates.for_team(team.as_str()) else {
            return Ok(());
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= KEPT {
            buckets.retain(|_, bucket| bucket.refilled(rate, now).tokens < f64::from(rate.burst));
        }
        // The team's bucket, made full the first time: no allocation once it exists.
        if !buckets.contains_key(team) {
            let full = Bucket {
                tokens: f64::from(rate.burst),
                at: now,
            };
            buckets.insert(team.clone(), full);
        }
        let Some(bucket) = buckets.get_mut(team) else {
            return Ok(());
        };
        *bucket = bucket.refilled(rate, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / f64::from(rate.per_second);
        Err(Limited {
            retry_after: Duration::from_secs_f64(wait.max(0.0)),
            rate,
        })
    }
}

impl Bucket {
    /// The bucket at `now`: topped up for the time since, never past the burst. A clock that went
    /// back adds nothing.
    fn refilled(self, rate: RequestRate, now: OffsetDateTime) -> Bucket {
        let elapsed = (now - self.at).as_seconds_f64().max(0.0);
        Bucket {
            tokens: (self.tokens + elapsed * f64::from(rate.per_second)).min(f64::from(rate.burst)),
            at: if now > self.at { now } else { self.at },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-12-06 00:00 UTC);

    fn rates(per_second: u32, burst: u32) -> TeamRates {
        TeamRates::new(RequestRates {
            default: Some(RequestRate { per_second, burst }),
            teams: HashMap::from([("free".to_owned(), None)]),
        })
    }

    fn team(id: &str) -> TeamId {
        TeamId::parse(id).unwrap()
    }

    #[test]
    fn a_burst_then_the_rate() {
        let rates = rates(2, 3);
        let a = team("a");
        for _ in 0..3 {
            assert_eq!(rates.admit(&a, T0), Ok(()));
        }
        let limited = rates.admit(&a, T0).unwrap_err();
        assert_eq!(limited.retry_after, Duration::from_millis(500));
        assert_eq!(
            rates
                .admit(&a, T0 + Duration::from_millis(499))
                .map_err(|l| l.retry_after > Duration::ZERO),
            Err(true)
        );
        assert_eq!(rates.admit(&a, T0 + Duration::from_millis(500)), Ok(()));
        assert!(rates.admit(&a, T0 + Duration::from_millis(500)).is_err());
        for _ in 0..3 {
            assert_eq!(
                rates.admit(&a, T0 + Duration::from_secs(60)),
                Ok(()),
                "refilled to the burst, no more"
            );
        }
        assert!(rates.admit(&a, T0 + Duration::from_secs(60)).is_err());
    }

    #[test]
    fn each_team_has_its_own_bucket_and_unlimited_teams_none() {
        let rates = rates(1, 1);
        assert_eq!(rates.admit(&team("a"), T0), Ok(()));
        assert!(rates.admit(&team("a"), T0).is_err());
        assert_eq!(rates.admit(&team("b"), T0), Ok(()));
        for _ in 0..1000 {
            assert_eq!(rates.admit(&team("free"), T0), Ok(()));
        }
    }

    #[test]
    fn a_clock_going_back_gives_nothing_back() {
        let rates = rates(1, 1);
        assert_eq!(rates.admit(&team("a"), T0), Ok(()));
        assert!(rates.admit(&team("a"), T0 - Duration::from_secs(3600)).is_err());
        assert!(rates.admit(&team("a"), T0 + Duration::from_millis(999)).is_err());
        assert_eq!(rates.admit(&team("a"), T0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn idle_teams_are_forgotten_when_many_are_kept() {
        let rates = rates(1, 1);
        for n in 0..KEPT {
            rates.admit(&team(&format!("t{n}")), T0).unwrap();
        }
        rates.admit(&team("late"), T0 + Duration::from_secs(5)).unwrap();
        let kept = rates.buckets.lock().unwrap().len();
        assert_eq!(kept, 1, "the refilled ones went");
    }
}
