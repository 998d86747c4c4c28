//! The virtual clock: one project's trace through one policy.
//!
//! What it models, as Sandman does it:
//! - **Activity writes.** An activity is written only when the last write is a heartbeat
//!   interval old (`adaptive::heartbeat_interval`: the fixed rule, at most 30 s for adaptive and
//!   hybrid projects, which need their gaps); a resume always writes. The idle deadline is the
//!   last write plus the timeout. Adaptive idle learns in that write (`adaptive::learn`).
//! - **The enforcer** runs every [`TICK`]: a sandbox is paused at the first tick at or after its
//!   deadline, and a warm-up (`adaptive::warm_plan`, planned when the sandbox is paused) or the
//!   hybrid policy's pre-warm resumes it at the first tick at or after its time.
//! - **A cold resume** is an activity that finds the sandbox paused (a project's first activity
//!   is its start, not a resume). A return is an activity an hour or more after the previous one.

use std::time::Duration;

use sandman_protocol::adaptive::{self, Learned, Settings};
use time::OffsetDateTime;

use crate::hybrid::IdleTimes;
use crate::policy::{Idle, Policy};

/// The idle enforcer's schedule (`rate(2 minutes)` in template.yaml).
pub const TICK: i64 = 120;
/// A return: activity after at least this long without any.
pub const AWAY: i64 = 3600;

/// What one policy did, summed over projects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub activities: u64,
    pub cold_resumes: u64,
    pub returns_away: u64,
    pub returns_away_warm: u64,
    pub running_secs: i64,
    pub paused_secs: i64,
    /// Activity writes (heartbeats and resume claims).
    pub writes: u64,
    /// Writes that also changed what the project learned (`learn` answered a lesson).
    pub learned_writes: u64,
    pub pauses: u64,
    /// Resumes by a warm-up or the hybrid's pre-warm, and how many of them a user then used.
    pub warmups: u64,
    pub warmups_used: u64,
}

impl std::ops::AddAssign for Outcome {
    fn add_assign(&mut self, o: Outcome) {
        self.activities += o.activities;
        self.cold_resumes += o.cold_resumes;
        self.returns_away += o.returns_away;
        self.returns_away_warm += o.returns_away_warm;
        self.running_secs += o.running_secs;
        self.paused_secs += o.paused_secs;
        self.writes += o.writes;
        self.learned_writes += o.learned_writes;
        self.pauses += o.pauses;
        self.warmups += o.warmups;
        self.warmups_used += o.warmups_used;
    }
}

fn tick_at(t: i64) -> i64 {
    t.div_euclid(TICK) * TICK + if t.rem_euclid(TICK) == 0 { 0 } else { TICK }
}

fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).expect("trace times are valid unix seconds")
}

fn secs(d: Duration) -> i64 {
    d.as_secs() as i64
}

/// A scheduled resume of a paused sandbox: at `at`, held `hold` seconds unless used.
#[derive(Debug, Clone, Copy)]
struct Wake {
    at: i64,
    hold: i64,
}

struct Sandbox<'p> {
    policy: &'p Policy,
    settings: Settings,
    learned: Learned,
    idle_times: IdleTimes,
    running: bool,
    /// Running since, or paused since.
    since: i64,
    pause_at: i64,
    /// The warm-up planned at the last pause, and the hybrid's pre-warm set at the last write.
    warm: Option<Wake>,
    prewarm: Option<Wake>,
    /// Running on a wake nobody has used yet.
    woken_unused: bool,
    last_write: Option<i64>,
    last_activity: Option<i64>,
    out: Outcome,
}

impl<'p> Sandbox<'p> {
    fn new(policy: &'p Policy) -> Self {
        let idle_timeout = match policy.idle {
            Idle::Fixed(timeout) => timeout,
            Idle::Adaptive(_) => adaptive::FIRST_TIMEOUT,
            Idle::Hybrid { fallback } => fallback,
        };
        Sandbox {
            policy,
            settings: Settings {
                adaptive: match policy.idle {
                    Idle::Adaptive(bounds) => Some(bounds),
                    _ => None,
                },
                warmup: policy.warmup,
                idle_timeout,
            },
            learned: Learned::default(),
            idle_times: IdleTimes::default(),
            running: false,
            since: 0,
            pause_at: 0,
            warm: None,
            prewarm: None,
            woken_unused: false,
            last_write: None,
            last_activity: None,
            out: Outcome::default(),
        }
    }

    /// Runs the enforcer's ticks up to `until`.
    fn advance(&mut self, until: i64) {
        loop {
            if self.running {
                if self.pause_at > until {
                    return;
                }
                self.out.running_secs += self.pause_at - self.since;
                self.out.pauses += 1;
                self.running = false;
                self.since = self.pause_at;
                self.woken_unused = false;
                self.warm = self.policy.warmup.and_then(|warmup| {
                    let plan = adaptive::warm_plan(&self.learned, warmup, at(self.since), at(self.since))?;
                    Some(Wake {
                        at: plan.at.unix_timestamp(),
                        hold: secs(plan.hold),
                    })
                });
            } else {
                let next = [self.warm, self.prewarm].into_iter().flatten().min_by_key(|w| w.at);
                let Some(wake) = next else { return };
                let wake_at = tick_at(wake.at).max(self.since);
                if wake_at > until {
                    return;
                }
                self.warm = None;
                self.prewarm = None;
                self.out.paused_secs += wake_at - self.since;
                self.running = true;
                self.since = wake_at;
                self.pause_at = tick_at(wake_at + wake.hold);
                self.out.warmups += 1;
                self.woken_unused = true;
            }
        }
    }

    fn activity(&mut self, t: i64) {
        self.advance(t);
        self.out.activities += 1;
        let was_running = self.running;
        let away = self.last_activity.is_some_and(|last| t - last >= AWAY);
        if away {
            self.out.returns_away += 1;
            self.out.returns_away_warm += u64::from(was_running);
        }
        let resumed = !was_running;
        if resumed {
            if self.last_activity.is_some() {
                self.out.cold_resumes += 1;
                self.out.paused_secs += t - self.since;
            }
            self.running = true;
            self.since = t;
            self.warm = None;
            self.prewarm = None;
        } else if self.woken_unused {
            self.out.warmups_used += 1;
        }
        self.woken_unused = false;
        self.last_activity = Some(t);
        let interval =
            adaptive::heartbeat_interval(self.settings.idle_timeout, !matches!(self.policy.idle, Idle::Fixed(_)));
        if resumed || self.last_write.is_none_or(|w| t - w >= secs(interval)) {
            self.write(t);
        }
    }

    fn write(&mut self, t: i64) {
        self.out.writes += 1;
        if let Some(learned) = adaptive::learn(self.settings, &self.learned, self.last_write.map(at), at(t)) {
            self.out.learned_writes += 1;
            self.learned = learned;
            if matches!(self.policy.idle, Idle::Adaptive(_)) {
                self.settings.idle_timeout = adaptive::timeout(self.settings, &self.learned);
            }
        }
        if let Idle::Hybrid { fallback } = self.policy.idle {
            if let Some(last) = self.last_write {
                self.idle_times.record(Duration::from_secs((t - last) as u64));
            }
            let windows = self.idle_times.windows(fallback);
            if windows.prewarm.is_zero() {
                self.pause_at = tick_at(t + secs(windows.keep_alive));
                self.prewarm = None;
            } else {
                self.pause_at = tick_at(t);
                self.prewarm = Some(Wake {
                    at: t + secs(windows.prewarm),
                    hold: secs(windows.keep_alive),
                });
            }
            // What a warm-up would plan from counts as the keep-alive's end.
            self.settings.idle_timeout = windows.prewarm + windows.keep_alive;
        } else {
            self.pause_at = tick_at(t + secs(self.settings.idle_timeout));
        }
        self.last_write = Some(t);
    }

    fn finish(mut self, end: i64) -> Outcome {
        self.advance(end);
        if self.last_activity.is_some() {
            let spent = end - self.since;
            if self.running {
                self.out.running_secs += spent;
            } else {
                self.out.paused_secs += spent;
            }
        }
        self.out
    }
}

/// One project's `events` (sorted unix seconds) through `policy`, up to `end`.
pub fn simulate(policy: &Policy, events: &[i64], end: i64) -> Outcome {
    let mut sandbox = Sandbox::new(policy);
    for t in events {
        sandbox.activity(*t);
    }
    sandbox.finish(end.max(events.last().copied().unwrap_or(end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ADAPTIVE_BOUNDS, WARMUP};

    fn fixed(minutes: u64) -> Policy {
        Policy {
            name: format!("fixed {minutes}m"),
            idle: Idle::Fixed(Duration::from_secs(minutes * 60)),
            warmup: None,
        }
    }

    #[test]
    fn a_gap_past_the_timeout_is_one_cold_resume_and_the_pause_waits_for_the_tick() {
        // Active 0..=600 s (every 30 s), then back at 600 + 20 min.
        let mut events: Vec<i64> = (0..=20).map(|i| i * 30).collect();
        events.push(600 + 1200);
        let out = simulate(&fixed(10), &events, 1800);
        assert_eq!(out.cold_resumes, 1);
        // A 10-minute timeout writes every 75 s at most: at 0, 90, ..., 540; deadline 1140, and
        // the tick at 1200 pauses it.
        assert_eq!(out.running_secs, 1200);
        assert_eq!(out.paused_secs, 600);
        let long = simulate(&fixed(30), &events, 1800);
        assert_eq!((long.cold_resumes, long.running_secs, long.paused_secs), (0, 1800, 0));
    }

    #[test]
    fn returns_after_an_hour_are_counted_and_their_warmth_judged() {
        let events = [0, 4000, 4100];
        let out = simulate(&fixed(10), &events, 5000);
        assert_eq!((out.returns_away, out.returns_away_warm, out.cold_resumes), (1, 0, 1));
    }

    #[test]
    fn adaptive_learns_a_long_habit_and_stops_the_cold_resumes() {
        // A user who steps away for 15 minutes after every 5 minutes of work, for a week.
        let mut events = Vec::new();
        for cycle in 0..7 * 24 * 3 {
            let start = cycle * 20 * 60;
            events.extend((0..10).map(|i| start + i * 30));
        }
        let end = *events.last().unwrap() + 60;
        let adaptive = Policy {
            name: "adaptive".into(),
            idle: Idle::Adaptive(ADAPTIVE_BOUNDS),
            warmup: None,
        };
        let learned = simulate(&adaptive, &events, end);
        let ten = simulate(&fixed(10), &events, end);
        assert_eq!(ten.cold_resumes, 7 * 24 * 3 - 1);
        assert!(learned.cold_resumes < 20, "{learned:?}");
    }

    #[test]
    fn a_warm_up_meets_a_daily_return_and_an_unused_one_is_paused_again() {
        // Every day 9:00-9:30 UTC for three weeks; then one day nobody comes.
        let day = 86_400;
        let base = crate::synth::START;
        let mut events = Vec::new();
        for d in 0..21 {
            if d == 18 {
                continue;
            }
            let nine = base + d * day + 9 * 3600;
            events.extend((0..60).map(|i| nine + i * 30));
        }
        let end = base + 21 * day;
        let policy = Policy {
            name: "fixed 10m + warm-up".into(),
            idle: Idle::Fixed(Duration::from_secs(600)),
            warmup: Some(WARMUP),
        };
        let warm = simulate(&policy, &events, end);
        let cold = simulate(&fixed(10), &events, end);
        assert_eq!(cold.returns_away_warm, 0);
        // Cold: the first three days (no habit yet) and the first weekend (no weekend day seen).
        assert_eq!((warm.returns_away, warm.returns_away_warm), (19, 14), "{warm:?}");
        assert!(
            warm.warmups > warm.warmups_used,
            "day 18's warm-up went unused: {warm:?}"
        );
        // An unused warm-up costs its hold, not the rest of the day.
        assert!(
            warm.running_secs < cold.running_secs + 25 * 3900,
            "{warm:?} vs {cold:?}"
        );
    }
}
