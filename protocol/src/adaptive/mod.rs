//! Adaptive idle and proactive warm-up, as pure functions over what a project has learned.
//!
//! - **Adaptive idle** (`idle: {mode: "adaptive", minSeconds, maxSeconds}`): the project's idle
//!   gaps go into a fixed-size histogram ([`GapHistogram`]); the idle timeout is the one within the
//!   bounds that costs least per gap, a cold resume weighing [`COLD_RESUME_WEIGHT`] of running
//!   time. The timeout is written as the project's `idleTimeoutMs`, so the idle index's `idleAt`
//!   simply follows it: the enforcer reads what is due, as before.
//! - **Warm-up** (`warmup: {enabled, leadSeconds}`): returns after an hour or more away go into a
//!   histogram over the day ([`ReturnClock`]); the next likely window after the session would go
//!   paused is the [`WarmPlan`]: resume `lead` before it, and pause again if nobody came by its end.
//!
//! Learning happens in writes Sandman makes anyway: the activity write after a gap (a heartbeat,
//! an open of a running sandbox) and the claim of a wake (a paused sandbox resumed by activity).
//! [`learn`] is the one rule both use, and answers `None` for the many writes that change nothing.
//! The warm-up is planned once per pause ([`warm_plan`]). Nothing here reads a clock or the store.

mod clock;
mod gaps;

use std::time::Duration;

use time::OffsetDateTime;

pub use clock::{MIN_CHANCE, Predicted, RETURN_AWAY, ReturnClock, SLOT, WINDOW_SLOTS};
pub use gaps::{EDGES as GAP_EDGES, GAP_FLOOR, GapHistogram, MIN_GAPS};

/// The running time one cold resume is worth when an adaptive timeout is chosen: keeping a
/// sandbox up 20 more minutes is worth it if it spares one user a cold resume.
pub const COLD_RESUME_WEIGHT: Duration = Duration::from_secs(20 * 60);

/// An adaptive project's timeout until it has seen [`MIN_GAPS`] gaps (clamped into its bounds).
pub const FIRST_TIMEOUT: Duration = Duration::from_secs(600);

/// Adaptive projects write a heartbeat at least this often while their user is there, so a gap
/// of [`GAP_FLOOR`] is never continuous activity.
pub const ADAPTIVE_HEARTBEAT: Duration = Duration::from_secs(30);

/// How often an activity write is made for a project with `idle_timeout`: an eighth of it, from
/// 30 s to 5 minutes, never more than a quarter of it (the idle deadline only needs this
/// precision, and a session is never paused while a recent heartbeat is still unwritten); at most
/// [`ADAPTIVE_HEARTBEAT`] while adaptive idle is on, so a recorded gap of [`GAP_FLOOR`] or more is
/// never continuous activity.
pub fn heartbeat_interval(idle_timeout: Duration, adaptive: bool) -> Duration {
    let eighth = (idle_timeout / 8).clamp(Duration::from_secs(30), Duration::from_secs(300));
    let fixed = eighth.min(idle_timeout / 4);
    if adaptive { fixed.min(ADAPTIVE_HEARTBEAT) } else { fixed }
}

/// What an adaptive project's write after a gap changes: its gaps and the idle timeout they give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdleLesson {
    pub gaps: GapHistogram,
    pub idle_timeout: Duration,
}

/// Activity (or a user's resume) at `now` after the last recorded activity at `last_active`, for
/// a project with adaptive idle `bounds` and `gaps` so far: `None` when nothing changes (idle is
/// not adaptive, or the gap is under [`GAP_FLOOR`]), which is almost every heartbeat.
pub fn idle_lesson(
    bounds: Option<AdaptiveIdle>,
    gaps: &GapHistogram,
    last_active: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<IdleLesson> {
    let settings = Settings {
        adaptive: Some(bounds?),
        warmup: None,
        idle_timeout: FIRST_TIMEOUT,
    };
    let known = Learned {
        gaps: *gaps,
        ..Learned::default()
    };
    let learned = learn(settings, &known, Some(last_active), now)?;
    Some(IdleLesson {
        gaps: learned.gaps,
        idle_timeout: timeout(settings, &learned),
    })
}

/// The bounds of an adaptive idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdaptiveIdle {
    pub min: Duration,
    pub max: Duration,
    /// The running time one cold resume is worth ([`COLD_RESUME_WEIGHT`] unless stated).
    pub cold_weight: Duration,
}

/// Warm-up: resume a paused sandbox `lead` before its predicted return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Warmup {
    pub lead: Duration,
}

/// A warm-up scheduled for a predicted return: resume at `at`; an unused warm-up is paused again
/// `hold` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WarmPlan {
    pub at: OffsetDateTime,
    pub hold: Duration,
}

/// What a project has learned (kept on its item only while adaptive idle or warm-up is on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Learned {
    pub gaps: GapHistogram,
    pub returns: ReturnClock,
}

/// A project's adaptive settings, as [`learn`] needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Settings {
    pub adaptive: Option<AdaptiveIdle>,
    pub warmup: Option<Warmup>,
    /// The project's fixed idle timeout (used when adaptive idle is off).
    pub idle_timeout: Duration,
}

/// An activity write at `now`, after the last recorded one at `last_active` (`None`: the first):
/// a gap of [`GAP_FLOOR`] or more is counted, and a
/// return after [`RETURN_AWAY`] is placed on the clock. `None` when nothing changed (most writes:
/// a heartbeat during continuous activity), so the project's learned state is written only after
/// a real gap, and never while the project uses neither setting.
pub fn learn(
    settings: Settings,
    learned: &Learned,
    last_active: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<Learned> {
    if settings.adaptive.is_none() && settings.warmup.is_none() {
        return None;
    }
    let mut next = *learned;
    let mut changed = false;
    if settings.warmup.is_some() && next.returns.since().is_none() {
        next.returns = ReturnClock::started(now);
        changed = true;
    }
    if let Some(last) = last_active.filter(|last| *last < now) {
        let gap = (now - last).unsigned_abs();
        if settings.adaptive.is_some() {
            changed |= next.gaps.record(gap);
        }
        if settings.warmup.is_some() && gap >= RETURN_AWAY {
            next.returns.record(now);
            changed = true;
        }
    }
    changed.then_some(next)
}

/// The warm-up to schedule when a sandbox is paused at `idle_from` (by the idle enforcer, or
/// again after an unused warm-up's hold): the first predicted return after it, so an unused
/// warm-up is never repeated for the same return. Computed once per pause, not per write.
pub fn warm_plan(
    learned: &Learned,
    warmup: Warmup,
    idle_from: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<WarmPlan> {
    plan(&learned.returns, warmup, idle_from, now)
}

/// The idle timeout: for an adaptive project, the cheapest one for its gaps once [`MIN_GAPS`]
/// were seen, else [`FIRST_TIMEOUT`] (within its bounds); the fixed one otherwise. It changes only
/// when [`learn`] answers a change, so it is written with the learned state.
pub fn timeout(settings: Settings, learned: &Learned) -> Duration {
    match settings.adaptive {
        Some(bounds) => learned
            .gaps
            .timeout(bounds.min, bounds.max, bounds.cold_weight)
            .unwrap_or(FIRST_TIMEOUT.clamp(bounds.min, bounds.min.max(bounds.max))),
        None => settings.idle_timeout,
    }
}

/// The warm-up for the first predicted return after `idle_from` (when the session would be
/// paused): it starts `lead` before the window, at or after `idle_from`, and holds to its end.
pub fn plan(returns: &ReturnClock, warmup: Warmup, idle_from: OffsetDateTime, now: OffsetDateTime) -> Option<WarmPlan> {
    let predicted = returns.next_return(idle_from + warmup.lead, now)?;
    Some(WarmPlan {
        at: predicted.from - warmup.lead,
        hold: (predicted.until - predicted.from).unsigned_abs() + warmup.lead,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const MONDAY: OffsetDateTime = datetime!(2027-01-04 00:00 UTC);

    fn minutes(m: i64) -> time::Duration {
        time::Duration::minutes(m)
    }

    fn adaptive() -> Settings {
        Settings {
            adaptive: Some(AdaptiveIdle {
                min: Duration::from_secs(120),
                max: Duration::from_secs(3600),
                cold_weight: COLD_RESUME_WEIGHT,
            }),
            warmup: None,
            idle_timeout: Duration::from_secs(600),
        }
    }

    #[test]
    fn adaptive_heartbeats_are_frequent_enough_to_tell_gaps_from_activity() {
        for minutes in [2, 10, 60, 240] {
            let timeout = Duration::from_secs(minutes * 60);
            assert!(heartbeat_interval(timeout, true) * 3 <= GAP_FLOOR, "{minutes} min");
            assert!(heartbeat_interval(timeout, true) <= heartbeat_interval(timeout, false));
        }
        assert_eq!(
            heartbeat_interval(Duration::from_secs(3600), false),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn nothing_to_learn_without_either_setting() {
        let fixed = Settings {
            adaptive: None,
            warmup: None,
            idle_timeout: Duration::from_secs(600),
        };
        assert_eq!(
            learn(fixed, &Learned::default(), Some(MONDAY), MONDAY + minutes(30)),
            None
        );
    }

    #[test]
    fn an_adaptive_project_starts_at_ten_minutes_then_follows_its_gaps() {
        let mut learned = Learned::default();
        let mut at = MONDAY + time::Duration::hours(9);
        assert_eq!(timeout(adaptive(), &learned), Duration::from_secs(600));
        // A project whose user comes back after 15 minutes, again and again: covering a gap costs
        // 15 minutes of running, less than a cold resume's weight (20) plus the minimum (2).
        for _ in 0..12 {
            let last = at;
            at += minutes(15);
            learned = learn(adaptive(), &learned, Some(last), at).unwrap();
        }
        assert_eq!(
            timeout(adaptive(), &learned),
            Duration::from_secs(1200),
            "the 15-20 minute bucket's end"
        );
    }

    #[test]
    fn an_idle_lesson_is_only_for_adaptive_projects_after_a_real_gap() {
        let bounds = adaptive().adaptive;
        let gaps = GapHistogram::default();
        assert_eq!(
            idle_lesson(None, &gaps, MONDAY, MONDAY + minutes(30)),
            None,
            "fixed idle"
        );
        assert_eq!(
            idle_lesson(bounds, &gaps, MONDAY, MONDAY + minutes(1)),
            None,
            "a heartbeat"
        );
        let lesson = idle_lesson(bounds, &gaps, MONDAY, MONDAY + minutes(30)).unwrap();
        assert_eq!(lesson.gaps.total(), 1);
        assert_eq!(lesson.idle_timeout, FIRST_TIMEOUT, "until enough gaps were seen");
    }

    #[test]
    fn a_heartbeat_during_activity_changes_nothing() {
        let learned = learn(adaptive(), &Learned::default(), Some(MONDAY), MONDAY + minutes(20)).unwrap();
        let beat = learn(adaptive(), &learned, Some(MONDAY + minutes(20)), MONDAY + minutes(21));
        assert_eq!(beat, None, "a one-minute gap is activity: nothing to write");
    }

    #[test]
    fn warm_up_plans_the_next_morning_from_the_pause() {
        let settings = Settings {
            adaptive: None,
            warmup: Some(Warmup {
                lead: Duration::from_secs(300),
            }),
            idle_timeout: Duration::from_secs(600),
        };
        let warmup = settings.warmup.unwrap();
        let mut learned = learn(settings, &Learned::default(), None, MONDAY).unwrap();
        // Monday to Thursday evenings, back at 9:10 the next morning.
        for day in 0..4 {
            let evening = MONDAY + time::Duration::days(day) + time::Duration::hours(17);
            let morning = evening + time::Duration::hours(16) + minutes(10);
            learned = learn(settings, &learned, Some(evening), morning).unwrap();
        }
        // Paused on Friday at 17:00: the next predicted return is Monday 9:00, not the weekend.
        let friday = MONDAY + time::Duration::days(4) + time::Duration::hours(17);
        let warm = warm_plan(&learned, warmup, friday, friday).expect("a warm-up is planned");
        let monday_nine = MONDAY + time::Duration::days(7) + time::Duration::hours(9);
        assert_eq!(warm.at, monday_nine - minutes(5));
        assert_eq!(warm.hold, Duration::from_secs(3600 + 300));
        // Unused: paused again at its hold's end, the next plan is Tuesday's, never Monday's again.
        let again = warm.at + warm.hold;
        let next = warm_plan(&learned, warmup, again, again).unwrap();
        assert_eq!(next.at, monday_nine + time::Duration::days(1) - minutes(5));
    }
}
