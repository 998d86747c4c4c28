//! The hybrid-histogram policy of Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020, §4),
//! re-implemented from the paper's description for one sandbox per project:
//!
//! - Each application's idle times (IT: from one recorded activity to the next) go into a
//!   histogram with 1-minute bins over a 4-hour range; longer ITs are out of bounds (OOB).
//! - The pre-warming window is the 5th percentile of the histogram (the head) and the keep-alive
//!   window reaches to its 99th percentile (the tail), with a 10% margin: pre-warm is shortened
//!   by 10% and the tail lengthened by 10%. Bins count by their edges: the head at its bin's
//!   lower edge, the tail at its bin's upper edge.
//! - After each invocation: with a pre-warm of 0 the sandbox is kept alive for the keep-alive
//!   window; otherwise it is unloaded at once, loaded again after the pre-warm window and kept
//!   for the keep-alive window.
//! - The histogram is used only when it is representative: the coefficient of variation of its
//!   bin counts is at least [`CV_MIN`] (a flat histogram predicts nothing) and it holds at least
//!   [`MIN_ITS`] ITs. Otherwise the policy falls back to a fixed keep-alive.
//! - Deviation, stated: the paper forecasts applications whose ITs are mostly out of bounds with
//!   ARIMA; here such an application (more than half its ITs OOB) uses the fixed fallback.

use std::time::Duration;

pub const RANGE_MINUTES: usize = 240;
pub const HEAD: f64 = 0.05;
pub const TAIL: f64 = 0.99;
pub const MARGIN: f64 = 0.10;
pub const CV_MIN: f64 = 2.0;
pub const MIN_ITS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleTimes {
    bins: Vec<u32>,
    in_bounds: u32,
    out_of_bounds: u32,
}

impl Default for IdleTimes {
    fn default() -> Self {
        IdleTimes {
            bins: vec![0; RANGE_MINUTES],
            in_bounds: 0,
            out_of_bounds: 0,
        }
    }
}

/// What the policy does after an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Unload at once and load again this long after the invocation (zero: never unloaded).
    pub prewarm: Duration,
    /// Then keep loaded this long.
    pub keep_alive: Duration,
    /// Whether the histogram decided (else the fallback did).
    pub from_histogram: bool,
}

impl IdleTimes {
    pub fn record(&mut self, idle: Duration) {
        let minute = (idle.as_secs() / 60) as usize;
        match self.bins.get_mut(minute) {
            Some(bin) => {
                *bin += 1;
                self.in_bounds += 1;
            }
            None => self.out_of_bounds += 1,
        }
    }

    /// The coefficient of variation of the bin counts.
    pub fn cv(&self) -> f64 {
        let n = self.bins.len() as f64;
        let mean = f64::from(self.in_bounds) / n;
        if mean == 0.0 {
            return 0.0;
        }
        let variance = self.bins.iter().map(|c| (f64::from(*c) - mean).powi(2)).sum::<f64>() / n;
        variance.sqrt() / mean
    }

    /// The bin holding the `q` quantile of the in-bounds ITs.
    fn quantile_bin(&self, q: f64) -> usize {
        let target = (q * f64::from(self.in_bounds)).ceil().max(1.0) as u32;
        let mut seen = 0;
        for (i, count) in self.bins.iter().enumerate() {
            seen += count;
            if seen >= target {
                return i;
            }
        }
        RANGE_MINUTES - 1
    }

    pub fn windows(&self, fallback: Duration) -> Windows {
        let representative = self.in_bounds >= MIN_ITS && self.out_of_bounds <= self.in_bounds && self.cv() >= CV_MIN;
        if !representative {
            return Windows {
                prewarm: Duration::ZERO,
                keep_alive: fallback,
                from_histogram: false,
            };
        }
        let head = self.quantile_bin(HEAD) as f64 * 60.0;
        let tail = (self.quantile_bin(TAIL) + 1) as f64 * 60.0;
        let prewarm = head * (1.0 - MARGIN);
        let keep_alive = tail * (1.0 + MARGIN) - prewarm;
        Windows {
            prewarm: Duration::from_secs_f64(prewarm).round_secs(),
            keep_alive: Duration::from_secs_f64(keep_alive).round_secs(),
            from_histogram: true,
        }
    }
}

trait RoundSecs {
    fn round_secs(self) -> Duration;
}

impl RoundSecs for Duration {
    fn round_secs(self) -> Duration {
        Duration::from_secs(self.as_secs_f64().round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FALLBACK: Duration = Duration::from_secs(600);

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    #[test]
    fn too_few_or_flat_histograms_fall_back() {
        let mut its = IdleTimes::default();
        for _ in 0..9 {
            its.record(minutes(30));
        }
        assert!(!its.windows(FALLBACK).from_histogram, "9 ITs are too few");
        let mut flat = IdleTimes::default();
        for m in 0..240 {
            flat.record(minutes(m));
        }
        assert!(flat.cv() < 0.01);
        assert_eq!(flat.windows(FALLBACK).keep_alive, FALLBACK);
    }

    #[test]
    fn a_periodic_app_is_prewarmed_before_its_period() {
        // Invoked every 30 minutes: ITs all in bin 30.
        let mut its = IdleTimes::default();
        for _ in 0..50 {
            its.record(minutes(30) + Duration::from_secs(20));
        }
        let windows = its.windows(FALLBACK);
        assert!(windows.from_histogram);
        assert_eq!(windows.prewarm, minutes(27), "head 30 min less 10%");
        assert_eq!(
            windows.keep_alive,
            Duration::from_secs(31 * 66 - 27 * 60),
            "tail 31 min plus 10%, less the pre-warm"
        );
    }

    #[test]
    fn a_chatty_app_is_kept_alive_to_its_tail() {
        let mut its = IdleTimes::default();
        for _ in 0..990 {
            its.record(Duration::from_secs(20));
        }
        for _ in 0..10 {
            its.record(minutes(45));
        }
        let windows = its.windows(FALLBACK);
        assert_eq!(windows.prewarm, Duration::ZERO);
        assert_eq!(
            windows.keep_alive,
            Duration::from_secs(66),
            "the 99th percentile is in the first bin"
        );
        its.record(minutes(45));
        assert_eq!(its.windows(FALLBACK).keep_alive, Duration::from_secs(46 * 66));
    }

    #[test]
    fn mostly_out_of_bounds_apps_fall_back() {
        let mut its = IdleTimes::default();
        for _ in 0..20 {
            its.record(Duration::from_secs(10));
            its.record(minutes(600));
            its.record(minutes(700));
        }
        assert!(!its.windows(FALLBACK).from_histogram);
    }
}
