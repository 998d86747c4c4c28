//! When a project's user comes back after being away: a histogram of returns over the day, one
//! for weekdays and one for weekends (UTC), in half-hour slots, and the next window it predicts.
//!
//! Only returns after [`RETURN_AWAY`] or more away are counted: shorter absences are the idle
//! timeout's business. Each slot counts to 15 (one hex digit); when one would pass it, every slot
//! halves and the start of the observed window moves halfway to now, so a slot's count over the
//! days of its kind observed stays an estimate of the chance of a return in it on such a day.
//! On the item: the window's start in seconds, a colon, 96 hex digits.

use std::time::Duration;

use time::{OffsetDateTime, Weekday};

/// A return is a resumption of activity after at least this long away.
pub const RETURN_AWAY: Duration = Duration::from_secs(3600);
/// One slot of the day.
pub const SLOT: Duration = Duration::from_secs(1800);
const SLOTS_PER_DAY: usize = 48;
/// How many consecutive slots a predicted return window spans (and a warm-up waits through).
pub const WINDOW_SLOTS: usize = 2;
/// The chance of a return in a window that is worth a warm-up.
pub const MIN_CHANCE: f64 = 0.5;
/// Days observed before a prediction is made.
pub const MIN_DAYS: f64 = 3.0;
/// How far ahead a return is looked for: a week covers a weekend.
const HORIZON_DAYS: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReturnClock {
    /// Since when returns have been counted (moved forward when the counts halve).
    since: Option<OffsetDateTime>,
    /// Weekday slots, then weekend slots.
    slots: [u8; 2 * SLOTS_PER_DAY],
}

impl Default for ReturnClock {
    fn default() -> Self {
        Self {
            since: None,
            slots: [0; 2 * SLOTS_PER_DAY],
        }
    }
}

/// A predicted return: the window it is expected in, and its chance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predicted {
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
    pub chance: f64,
}

fn is_weekend(at: OffsetDateTime) -> bool {
    matches!(at.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn slot_of(at: OffsetDateTime) -> usize {
    let day = usize::from(is_weekend(at)) * SLOTS_PER_DAY;
    let second_of_day = u64::from(at.hour()) * 3600 + u64::from(at.minute()) * 60 + u64::from(at.second());
    day + (second_of_day / SLOT.as_secs()) as usize
}

/// `at` to the whole second (the item keeps the window's start in seconds).
fn whole_second(at: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(at.unix_timestamp()).unwrap_or(at)
}

/// The start of the slot `at` is in.
fn slot_start(at: OffsetDateTime) -> OffsetDateTime {
    let secs = at.unix_timestamp();
    let slot = SLOT.as_secs() as i64;
    OffsetDateTime::from_unix_timestamp(secs - secs.rem_euclid(slot)).unwrap_or(at)
}

impl ReturnClock {
    /// Starts observing at `now` (a project that just turned warm-up on has seen no day yet).
    pub fn started(now: OffsetDateTime) -> ReturnClock {
        ReturnClock {
            since: Some(whole_second(now)),
            ..ReturnClock::default()
        }
    }

    pub fn since(&self) -> Option<OffsetDateTime> {
        self.since
    }

    /// Counts a return at `at`.
    pub fn record(&mut self, at: OffsetDateTime) {
        let since = *self.since.get_or_insert(whole_second(at));
        let slot = slot_of(at);
        if self.slots[slot] >= 15 {
            for count in &mut self.slots {
                *count /= 2;
            }
            let kept = (at - since) / 2;
            self.since = Some(whole_second(at - kept));
        }
        self.slots[slot] += 1;
    }

    /// Weekdays and weekend days observed from `since` to `now`, in days (partial days count).
    fn days_observed(&self, now: OffsetDateTime) -> (f64, f64) {
        let Some(since) = self.since.filter(|since| *since < now) else {
            return (0.0, 0.0);
        };
        let (mut weekdays, mut weekend) = (0.0, 0.0);
        let mut at = since;
        while at < now {
            let midnight = at.replace_time(time::Time::MIDNIGHT) + time::Duration::DAY;
            let end = midnight.min(now);
            let part = (end - at).as_seconds_f64() / 86_400.0;
            if is_weekend(at) {
                weekend += part;
            } else {
                weekdays += part;
            }
            at = end;
        }
        (weekdays, weekend)
    }

    /// The chance of a return in each slot, estimated at `now`.
    fn chances(&self, now: OffsetDateTime) -> Option<[f64; 2 * SLOTS_PER_DAY]> {
        let (weekdays, weekend) = self.days_observed(now);
        if weekdays + weekend < MIN_DAYS {
            return None;
        }
        let mut chances = [0.0; 2 * SLOTS_PER_DAY];
        for (i, chance) in chances.iter_mut().enumerate() {
            let days = if i < SLOTS_PER_DAY { weekdays } else { weekend };
            if days >= 1.0 {
                *chance = (f64::from(self.slots[i]) / days).min(1.0);
            }
        }
        Some(chances)
    }

    /// The first window starting at or after `after` (within a week) with at least
    /// [`MIN_CHANCE`] of a return, moved on while the next window is at least as likely (the peak
    /// of that cluster of returns). Estimated with the days observed up to `now`.
    pub fn next_return(&self, after: OffsetDateTime, now: OffsetDateTime) -> Option<Predicted> {
        let chances = self.chances(now)?;
        let first = {
            let start = slot_start(after);
            if start < after { start + SLOT } else { start }
        };
        let window = |start: OffsetDateTime| -> f64 {
            (0..WINDOW_SLOTS)
                .map(|k| chances[slot_of(start + SLOT * k as u32)])
                .sum()
        };
        let slots = HORIZON_DAYS * SLOTS_PER_DAY;
        let mut start = first;
        for _ in 0..slots {
            let chance = window(start);
            if chance >= MIN_CHANCE {
                let (mut best, mut best_chance) = (start, chance);
                for _ in 0..SLOTS_PER_DAY {
                    // On a tie the later window: it starts where the returns do.
                    let next = window(best + SLOT);
                    if next < best_chance {
                        break;
                    }
                    (best, best_chance) = (best + SLOT, next);
                }
                return Some(Predicted {
                    from: best,
                    until: best + SLOT * WINDOW_SLOTS as u32,
                    chance: best_chance.min(1.0),
                });
            }
            start += SLOT;
        }
        None
    }

    /// The window's start in seconds, a colon, then one hex digit a slot.
    pub fn encode(&self) -> String {
        let since = self.since.map_or(0, OffsetDateTime::unix_timestamp);
        let digits: String = self.slots.iter().map(|c| format!("{c:x}")).collect();
        format!("{since}:{digits}")
    }

    pub fn decode(text: &str) -> Option<ReturnClock> {
        let (since, digits) = text.split_once(':')?;
        let since: i64 = since.parse().ok()?;
        if digits.len() != 2 * SLOTS_PER_DAY {
            return None;
        }
        let mut slots = [0u8; 2 * SLOTS_PER_DAY];
        for (slot, digit) in slots.iter_mut().zip(digits.chars()) {
            *slot = digit.to_digit(16)? as u8;
        }
        Some(ReturnClock {
            since: (since > 0)
                .then(|| OffsetDateTime::from_unix_timestamp(since).ok())
                .flatten(),
            slots,
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// Monday.
    const MONDAY: OffsetDateTime = datetime!(2027-01-04 00:00 UTC);

    fn day(n: i64) -> OffsetDateTime {
        MONDAY + time::Duration::days(n)
    }

    fn at(day_offset: i64, hour: u8, minute: u8) -> OffsetDateTime {
        day(day_offset) + time::Duration::hours(i64::from(hour)) + time::Duration::minutes(i64::from(minute))
    }

    /// Three weeks of weekday returns at 9:05-9:25.
    fn morning_person() -> ReturnClock {
        let mut clock = ReturnClock::started(MONDAY);
        for week in 0..3 {
            for weekday in 0..5 {
                clock.record(at(week * 7 + weekday, 9, 5 + (weekday as u8) * 5));
            }
        }
        clock
    }

    #[test]
    fn a_habit_predicts_the_next_weekday_morning() {
        let clock = morning_person();
        // Paused on a Friday evening: the next return is Monday morning, not the weekend.
        let friday_evening = at(18, 18, 0);
        let predicted = clock.next_return(friday_evening, friday_evening).unwrap();
        assert_eq!(predicted.from.weekday(), Weekday::Monday);
        assert_eq!((predicted.from, predicted.until), (at(21, 9, 0), at(21, 10, 0)));
        assert!(predicted.chance > 0.8, "{predicted:?}");
    }

    #[test]
    fn no_prediction_without_enough_days_or_a_habit() {
        let mut clock = ReturnClock::started(MONDAY);
        clock.record(at(0, 9, 0));
        assert_eq!(
            clock.next_return(at(1, 1, 0), at(1, 1, 0)),
            None,
            "one day is not a habit"
        );
        let mut scattered = ReturnClock::started(MONDAY);
        for d in 0..20 {
            scattered.record(at(d, (d * 5 % 24) as u8, 0));
        }
        assert_eq!(scattered.next_return(at(20, 0, 0), at(20, 0, 0)), None);
    }

    #[test]
    fn a_window_never_starts_before_the_time_asked_for() {
        let clock = morning_person();
        let late = at(21, 9, 10);
        let predicted = clock.next_return(late, late).unwrap();
        assert!(predicted.from >= late);
        assert_eq!(
            predicted.from.day(),
            at(22, 0, 0).day(),
            "today's window has begun: tomorrow's"
        );
    }

    #[test]
    fn full_slots_halve_and_the_window_moves() {
        let mut clock = ReturnClock::started(MONDAY);
        for d in 0..16 {
            clock.record(at(d * 7, 9, 0));
        }
        let since = clock.since().unwrap();
        assert!(since > MONDAY, "halving moved the start forward");
        let text = clock.encode();
        assert_eq!(ReturnClock::decode(&text), Some(clock));
        assert_eq!(ReturnClock::decode("12:xyz"), None);
        assert_eq!(ReturnClock::decode("nonsense"), None);
    }
}
