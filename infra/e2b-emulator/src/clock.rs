//! The emulated clock: real time plus an offset that tests move forward.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_micros: AtomicI64,
}

impl Clock {
    /// Truncated to microseconds, the precision E2B's timestamps carry.
    pub(crate) fn now(&self) -> OffsetDateTime {
        let offset = self.offset_micros.load(Ordering::SeqCst);
        let real = OffsetDateTime::now_utc();
        let now = real.checked_add(time::Duration::microseconds(offset)).unwrap_or(real);
        truncate_to_micros(now)
    }

    pub(crate) fn advance(&self, by: Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let _ = self
            .offset_micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                Some(offset.saturating_add(micros))
            });
    }

    pub(crate) fn reset(&self) {
        self.offset_micros.store(0, Ordering::SeqCst);
    }
}

pub(crate) fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = at.nanosecond() / 1_000 * 1_000;
    at.replace_nanosecond(nanos).unwrap_or(at)
}

pub(crate) fn add(at: OffsetDateTime, by: Duration) -> OffsetDateTime {
    let by = time::Duration::try_from(by).unwrap_or(time::Duration::MAX);
    at.checked_add(by).unwrap_or(at)
}

pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() - before >= time::Duration::seconds(3600));
        clock.reset();
        assert!(clock.now() - before < time::Duration::seconds(3600));
    }
}
