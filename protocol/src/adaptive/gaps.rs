//! A project's idle gaps, as a fixed-size histogram, and the idle timeout they call for.
//!
//! A gap is the time from one recorded activity to the next (or to the wake that ended it). Gaps
//! shorter than [`GAP_FLOOR`] are continuous activity (heartbeats come every 30 s at most while a
//! user is there) and are not counted. Buckets are log-spaced from 90 s to 4 h, the last open-ended;
//! each count is one byte, and all counts halve when one would pass 255, so the histogram forgets
//! old behaviour and never grows: 22 buckets, 44 hex characters on the project item.

use std::time::Duration;

/// Gaps shorter than this are not idle gaps.
pub const GAP_FLOOR: Duration = Duration::from_secs(90);

/// Lower edges of the buckets, in seconds; the last bucket has no upper edge.
pub const EDGES: [u64; 22] = [
    90, 120, 180, 240, 300, 360, 480, 600, 720, 900, 1200, 1500, 1800, 2400, 3000, 3600, 4500, 5400, 7200, 9000,
    10_800, 14_400,
];

/// Where the open-ended last bucket is taken to end, for interpolation (the longest idle timeout).
const LAST_EDGE: u64 = 86_400;

/// Gaps seen before the histogram is trusted to choose a timeout.
pub const MIN_GAPS: u32 = 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GapHistogram {
    counts: [u8; EDGES.len()],
}

impl GapHistogram {
    /// Counts `gap` (nothing below the floor). Returns whether the histogram changed.
    pub fn record(&mut self, gap: Duration) -> bool {
        let secs = gap.as_secs();
        let Some(bucket) = EDGES.iter().rposition(|edge| secs >= *edge) else {
            return false;
        };
        if self.counts[bucket] == u8::MAX {
            for count in &mut self.counts {
                *count /= 2;
            }
        }
        self.counts[bucket] += 1;
        true
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().map(|c| u32::from(*c)).sum()
    }

    pub fn counts(&self) -> &[u8; EDGES.len()] {
        &self.counts
    }

    /// The idle timeout within `[min, max]` that costs least per gap: running seconds, plus
    /// `weight` for each gap that outlasts the timeout (a cold resume), given the gaps seen.
    /// `None` until [`MIN_GAPS`] gaps were seen.
    pub fn timeout(&self, min: Duration, max: Duration, weight: Duration) -> Option<Duration> {
        if self.total() < MIN_GAPS {
            return None;
        }
        let (min, max) = (min.as_secs(), max.as_secs().max(min.as_secs()));
        let candidates = EDGES
            .iter()
            .copied()
            .filter(|edge| (min..=max).contains(edge))
            .chain([min, max]);
        let mut best: Option<(f64, u64)> = None;
        for candidate in candidates {
            let cost = self.cost(candidate, weight.as_secs_f64());
            // Ties go to the shorter timeout: the same expected cost for fewer running minutes.
            if best.is_none_or(|(c, t)| cost < c - 1e-9 || ((cost - c).abs() <= 1e-9 && candidate < t)) {
                best = Some((cost, candidate));
            }
        }
        best.map(|(_, secs)| Duration::from_secs(secs))
    }

    /// Expected seconds of running plus `weight` per cold resume, summed over the gaps seen, were
    /// the timeout `timeout` seconds. A bucket the timeout falls inside is split linearly.
    fn cost(&self, timeout: u64, weight: f64) -> f64 {
        let t = timeout as f64;
        let mut cost = 0.0;
        for (i, count) in self.counts.iter().enumerate() {
            let n = f64::from(*count);
            if n == 0.0 {
                continue;
            }
            let lo = EDGES[i] as f64;
            let hi = EDGES.get(i + 1).copied().unwrap_or(LAST_EDGE) as f64;
            // Share of this bucket's gaps that end before the timeout.
            let within = ((t - lo) / (hi - lo)).clamp(0.0, 1.0);
            let short_end = lo + within * (hi - lo);
            let short = within * n * (lo + short_end) / 2.0;
            let long = (1.0 - within) * n * (t + weight);
            cost += short + long;
        }
        cost
    }

    /// Two hex digits a bucket.
    pub fn encode(&self) -> String {
        self.counts.iter().map(|c| format!("{c:02x}")).collect()
    }

    /// `None` when `text` is not what [`encode`](Self::encode) writes.
    pub fn decode(text: &str) -> Option<GapHistogram> {
        if text.len() != EDGES.len() * 2 || !text.is_ascii() {
            return None;
        }
        let mut counts = [0u8; EDGES.len()];
        for (i, count) in counts.iter_mut().enumerate() {
            *count = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(GapHistogram { counts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const WEIGHT: Duration = Duration::from_secs(20 * 60);

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    fn seen(gaps: &[(u64, u32)]) -> GapHistogram {
        let mut histogram = GapHistogram::default();
        for (minutes_apart, times) in gaps {
            for _ in 0..*times {
                histogram.record(minutes(*minutes_apart));
            }
        }
        histogram
    }

    #[test]
    fn short_gaps_are_not_idle_gaps_and_buckets_are_by_lower_edge() {
        let mut histogram = GapHistogram::default();
        assert!(!histogram.record(Duration::from_secs(89)));
        assert!(histogram.record(Duration::from_secs(90)));
        assert!(histogram.record(Duration::from_secs(600)));
        assert!(histogram.record(Duration::from_secs(7 * 86_400)));
        assert_eq!(histogram.counts()[0], 1);
        assert_eq!(histogram.counts()[7], 1, "600 s opens the 10-12 min bucket");
        assert_eq!(histogram.counts()[EDGES.len() - 1], 1, "a week is in the last bucket");
    }

    #[test]
    fn counts_halve_instead_of_overflowing() {
        let mut histogram = GapHistogram::default();
        for _ in 0..255 {
            histogram.record(minutes(5));
        }
        histogram.record(minutes(60));
        assert_eq!(histogram.counts()[4], 255);
        histogram.record(minutes(5));
        assert_eq!(histogram.counts()[4], 128, "halved, then counted");
        assert_eq!(histogram.counts()[15], 0, "a single old gap is forgotten");
    }

    #[test]
    fn encoding_round_trips_and_refuses_garbage() {
        let histogram = seen(&[(3, 7), (45, 200), (600, 1)]);
        let text = histogram.encode();
        assert_eq!(text.len(), 44);
        assert_eq!(GapHistogram::decode(&text), Some(histogram));
        assert_eq!(GapHistogram::decode("zz"), None);
        assert_eq!(GapHistogram::decode(&"g".repeat(44)), None);
    }

    #[test]
    fn no_timeout_until_enough_gaps() {
        assert_eq!(seen(&[(5, 7)]).timeout(MIN, minutes(60), WEIGHT), None);
        assert!(seen(&[(5, 8)]).timeout(MIN, minutes(60), WEIGHT).is_some());
    }

    #[test]
    fn gaps_that_always_end_long_after_call_for_the_minimum() {
        // A nightly agent: every gap is a day long; staying up only burns running time.
        let timeout = seen(&[(1440, 30)]).timeout(MIN, minutes(60), WEIGHT);
        assert_eq!(timeout, Some(MIN));
    }

    #[test]
    fn frequent_gaps_just_over_ten_minutes_are_covered() {
        // A user who steps away 12-15 minutes again and again, and leaves for the night once a day.
        let timeout = seen(&[(13, 20), (1000, 2)]).timeout(MIN, minutes(60), WEIGHT).unwrap();
        assert_eq!(timeout, minutes(15));
    }

    #[test]
    fn the_timeout_stays_within_its_bounds() {
        // Gaps past the maximum are cold resumes whatever the timeout: only the minimum is worth it.
        let long = seen(&[(100, 40)]);
        let timeout = long.timeout(minutes(5), minutes(30), Duration::from_secs(10 * 3600));
        assert_eq!(
            timeout,
            Some(minutes(5)),
            "staying up never spares a gap longer than the maximum"
        );
        // A huge weight covers the 20-minute gaps (their bucket ends at 25) but not the 45-minute ones.
        let mixed = seen(&[(20, 20), (45, 20)]);
        let timeout = mixed.timeout(minutes(5), minutes(30), Duration::from_secs(10 * 3600));
        assert_eq!(timeout, Some(minutes(25)));
        let histogram = long;
        let odd = histogram.timeout(Duration::from_secs(130), Duration::from_secs(170), WEIGHT);
        assert!(odd.is_some_and(|t| (130..=170).contains(&t.as_secs())));
    }

    #[test]
    fn a_heavier_weight_never_shortens_the_timeout() {
        let histogram = seen(&[(2, 30), (6, 12), (14, 9), (35, 6), (80, 4), (900, 3)]);
        let mut last = Duration::ZERO;
        for weight_minutes in [0, 1, 5, 10, 20, 40, 80, 200] {
            let timeout = histogram.timeout(MIN, minutes(240), minutes(weight_minutes)).unwrap();
            assert!(timeout >= last, "weight {weight_minutes}: {timeout:?} < {last:?}");
            last = timeout;
        }
    }
}
