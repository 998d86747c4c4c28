//! When each fault was on, in real time: bursts from their start until the chaos actor ended them
//! (a burst that counts itself out early still counts as on: the judge errs on the lenient side),
//! DynamoDB outages and restarts, clock-skew and account stretches. The progress floors ask whether
//! an answer was given with no fault on, or long enough after the last one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;

/// How long after the last fault ended a 503 (or a webhook's 5xx) is still put down to it: the
/// E2B call deadline plus a second (a call under way when the fault ended may still fail), plus
/// DynamoDB Local's first slow answers after a restart.
pub const AFTER_FAULT: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct Timeline {
    inner: Mutex<Spans>,
}

#[derive(Debug, Default)]
struct Spans {
    /// (kind, start, end): `None` while on.
    spans: Vec<(String, Instant, Option<Instant>)>,
    /// Every webhook delivery the front answered: when it came in, when it was answered, the answer.
    webhooks: Vec<(Instant, Instant, StatusCode)>,
}

/// The union of the fault spans, sorted: what the judge asks.
#[derive(Debug, Clone)]
pub struct Windows {
    merged: Vec<(Instant, Instant)>,
}

impl Timeline {
    fn spans(&self) -> std::sync::MutexGuard<'_, Spans> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fault of `kind` begins now and lasts until [`Timeline::end`] of the same kind prefix or
    /// [`Timeline::end_bursts`].
    pub fn begin(&self, kind: &str) {
        self.spans().spans.push((kind.to_owned(), Instant::now(), None));
    }

    /// A fault that ends by itself after `length`.
    pub fn for_length(&self, kind: &str, length: Duration) {
        let now = Instant::now();
        self.spans().spans.push((kind.to_owned(), now, Some(now + length)));
    }

    /// A fault that was on from `start` until now.
    pub fn span(&self, kind: &str, start: Instant) {
        self.spans().spans.push((kind.to_owned(), start, Some(Instant::now())));
    }

    /// Ends every open span whose kind starts with `prefix`.
    pub fn end(&self, prefix: &str) {
        let now = Instant::now();
        for (kind, _, end) in &mut self.spans().spans {
            if end.is_none() && kind.starts_with(prefix) {
                *end = Some(now);
            }
        }
    }

    /// Ends every open span but those whose kind starts with one of `keep`.
    pub fn end_all_but(&self, keep: &[&str]) {
        let now = Instant::now();
        for (kind, _, end) in &mut self.spans().spans {
            if end.is_none() && !keep.iter().any(|k| kind.starts_with(k)) {
                *end = Some(now);
            }
        }
    }

    pub fn webhook_answered(&self, at: Instant, status: StatusCode) {
        self.spans().webhooks.push((at, Instant::now(), status));
    }

    pub fn webhook_answers(&self) -> Vec<(Instant, Instant, StatusCode)> {
        self.spans().webhooks.clone()
    }

    /// The fault windows so far (an open one lasts until now).
    pub fn windows(&self) -> Windows {
        let now = Instant::now();
        let mut spans: Vec<(Instant, Instant)> = self
            .spans()
            .spans
            .iter()
            .map(|(_, start, end)| (*start, end.unwrap_or(now)))
            .collect();
        spans.sort();
        let mut merged: Vec<(Instant, Instant)> = Vec::new();
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Windows { merged }
    }
}

impl Windows {
    /// Whether some fault was on between `from - after` and `to`.
    pub fn faulty(&self, from: Instant, to: Instant, after: Duration) -> bool {
        let from = from.checked_sub(after).unwrap_or(from);
        // The first window ending at or after `from`: it is the only one that can overlap.
        let index = self.merged.partition_point(|(_, end)| *end < from);
        self.merged.get(index).is_some_and(|(start, _)| *start <= to)
    }

    /// How much of `from..to` was calm.
    pub fn calm_share(&self, from: Instant, to: Instant) -> f64 {
        let total = to.saturating_duration_since(from).as_secs_f64();
        if total <= 0.0 {
            return 0.0;
        }
        let faulty: f64 = self
            .merged
            .iter()
            .map(|(s, e)| {
                let (s, e) = ((*s).max(from), (*e).min(to));
                e.saturating_duration_since(s).as_secs_f64()
            })
            .sum();
        (1.0 - faulty / total).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_faulty_if_a_window_overlaps_it_or_ended_just_before() {
        let timeline = Timeline::default();
        let t0 = Instant::now();
        timeline.for_length("a", Duration::from_millis(100));
        let windows = timeline.windows();
        let ms = Duration::from_millis;
        assert!(windows.faulty(t0, t0 + ms(10), Duration::ZERO));
        assert!(
            windows.faulty(t0 + ms(150), t0 + ms(160), ms(100)),
            "within the bound after"
        );
        assert!(!windows.faulty(t0 + ms(300), t0 + ms(310), ms(100)));
        assert!(windows.faulty(t0.checked_sub(ms(50)).unwrap_or(t0), t0 + ms(500), Duration::ZERO));
    }

    #[test]
    fn overlapping_spans_merge_and_open_ones_last_until_ended() {
        let timeline = Timeline::default();
        timeline.begin("burst e2b");
        timeline.begin("stretch list");
        timeline.end_all_but(&["stretch"]);
        let later = Instant::now();
        assert!(
            timeline.windows().faulty(later, later, Duration::ZERO),
            "the stretch goes on"
        );
        timeline.end("stretch");
        let after = Instant::now() + Duration::from_millis(1);
        assert!(!timeline.windows().faulty(after, after, Duration::ZERO));
    }
}
