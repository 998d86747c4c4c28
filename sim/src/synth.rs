//! Synthetic traces with stated distributions, deterministic for a seed. Days start on a Monday
//! (2027-01-04, UTC); every time below is UTC. A project is one of four archetypes:
//!
//! - **Developer** (40%): weekdays. Arrives at a personal habit (uniform 8:00-10:00) plus a daily
//!   normal jitter (sd 10 min); leaves at 17:45 +- N(0, 30 min). Works in stretches of
//!   exponential length (mean 25 min) with an event every exponential 30 s; between stretches a
//!   break: 55% short (uniform 2-8 min), 30% coffee (log-normal, median 12 min, sigma 0.35),
//!   15% meeting (30, 45 or 60 min). Lunch at 12:15 +- N(0, 15 min), uniform 35-70 min.
//!   Weekends: 15% of days, one session at a uniform hour 10-20, uniform 30-120 min.
//! - **Agent** (25%): every day, 3-8 tasks (weekends 0-2) at uniform times 8:00-22:00. A task is
//!   20-80 tool calls; the gap before each is log-normal (median 8 s, sigma 1.0), but 10% of them
//!   wait on a long tool (build, CI) for uniform 2-12 min.
//! - **Nightly job** (15%): every day at its own time (uniform 0:00-5:00) +- 3 min, active for
//!   uniform 10-25 min with an event every 20 s.
//! - **Hobbyist** (20%): sessions as a Poisson process (mean 1.2 a day), 70% of them in the
//!   evening (uniform 18:00-23:00) and the rest uniform 8:00-23:00; a session is uniform 20-90
//!   min long, worked as a developer's stretches and breaks (without meetings).

use crate::trace::{ProjectTrace, Trace};

/// Monday 2027-01-04 00:00 UTC.
pub const START: i64 = 1_799_020_800;
const DAY: i64 = 86_400;
const HOUR: f64 = 3600.0;
const MINUTE: f64 = 60.0;

/// SplitMix64: small, deterministic, good enough for workload generation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [lo, hi].
    pub fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    pub fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * self.normal(0.0, sigma).exp()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

fn is_weekend(day: i64) -> bool {
    // Day 0 is a Monday.
    day.rem_euclid(7) >= 5
}

/// Events every exponential `mean_gap` seconds over [from, until).
fn active(rng: &mut Rng, events: &mut Vec<i64>, from: f64, until: f64, mean_gap: f64) {
    let mut at = from;
    while at < until {
        events.push(at as i64);
        at += rng.exponential(mean_gap).max(1.0);
    }
}

/// Stretches of work and breaks from `from` to `until`, as a developer works.
fn work(rng: &mut Rng, events: &mut Vec<i64>, from: f64, until: f64, meetings: bool) {
    let mut at = from;
    while at < until {
        let end = (at + rng.exponential(25.0 * MINUTE)).min(until);
        active(rng, events, at, end, 30.0);
        let roll = rng.unit();
        let pause = if roll < 0.55 {
            rng.uniform(2.0, 8.0) * MINUTE
        } else if roll < 0.85 || !meetings {
            rng.log_normal(12.0 * MINUTE, 0.35)
        } else {
            [30.0, 45.0, 60.0][rng.int(0, 2) as usize] * MINUTE
        };
        at = end + pause;
    }
}

fn developer(rng: &mut Rng, days: i64) -> Vec<i64> {
    let habit = rng.uniform(8.0, 10.0) * HOUR;
    let mut events = Vec::new();
    for day in 0..days {
        let base = (START + day * DAY) as f64;
        if is_weekend(day) {
            if rng.chance(0.15) {
                let from = base + rng.uniform(10.0, 20.0) * HOUR;
                let until = from + rng.uniform(30.0, 120.0) * MINUTE;
                work(rng, &mut events, from, until, false);
            }
            continue;
        }
        let arrive = base + habit + rng.normal(0.0, 10.0 * MINUTE);
        let lunch = base + 12.25 * HOUR + rng.normal(0.0, 15.0 * MINUTE);
        let back = lunch + rng.uniform(35.0, 70.0) * MINUTE;
        let leave = base + 17.75 * HOUR + rng.normal(0.0, 30.0 * MINUTE);
        work(rng, &mut events, arrive, lunch.max(arrive), true);
        work(rng, &mut events, back, leave, true);
    }
    events
}

fn agent(rng: &mut Rng, days: i64) -> Vec<i64> {
    let mut events = Vec::new();
    for day in 0..days {
        let base = (START + day * DAY) as f64;
        let tasks = if is_weekend(day) { rng.int(0, 2) } else { rng.int(3, 8) };
        for _ in 0..tasks {
            let mut at = base + rng.uniform(8.0, 22.0) * HOUR;
            for _ in 0..rng.int(20, 80) {
                events.push(at as i64);
                at += if rng.chance(0.1) {
                    rng.uniform(2.0, 12.0) * MINUTE
                } else {
                    rng.log_normal(8.0, 1.0)
                };
            }
        }
    }
    events
}

fn nightly(rng: &mut Rng, days: i64) -> Vec<i64> {
    let at = rng.uniform(0.0, 5.0) * HOUR;
    let mut events = Vec::new();
    for day in 0..days {
        let from = (START + day * DAY) as f64 + at + rng.uniform(-3.0, 3.0) * MINUTE;
        let until = from + rng.uniform(10.0, 25.0) * MINUTE;
        let mut t = from;
        while t < until {
            events.push(t as i64);
            t += 20.0;
        }
    }
    events
}

fn hobbyist(rng: &mut Rng, days: i64) -> Vec<i64> {
    let mut events = Vec::new();
    for day in 0..days {
        let base = (START + day * DAY) as f64;
        // Poisson(1.2) sessions, by counting exponential arrivals within one day.
        let mut clock = rng.exponential(1.0 / 1.2);
        while clock < 1.0 {
            let from = base
                + if rng.chance(0.7) {
                    rng.uniform(18.0, 23.0)
                } else {
                    rng.uniform(8.0, 23.0)
                } * HOUR;
            let until = from + rng.uniform(20.0, 90.0) * MINUTE;
            work(rng, &mut events, from, until, false);
            clock += rng.exponential(1.0 / 1.2);
        }
    }
    events
}

/// `projects` projects over `days` days, archetypes in the stated shares (assigned in turn, so
/// any ten consecutive projects hold four developers, three agents... see `ARCHETYPES`).
pub fn generate(projects: usize, days: i64, seed: u64) -> Trace {
    let mut trace = Trace::default();
    for i in 0..projects {
        let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        let kind = ARCHETYPES[i % ARCHETYPES.len()];
        let events = match kind {
            "developer" => developer(&mut rng, days),
            "agent" => agent(&mut rng, days),
            "nightly" => nightly(&mut rng, days),
            _ => hobbyist(&mut rng, days),
        };
        trace.projects.push(ProjectTrace {
            name: format!("{kind}-{i:03}"),
            kind: kind.to_string(),
            events,
        });
    }
    trace.normalized()
}

/// One cycle of 20 projects: 8 developers (40%), 5 agents (25%), 3 nightly jobs (15%) and 4
/// hobbyists (20%), interleaved.
const ARCHETYPES: [&str; 20] = [
    "developer",
    "agent",
    "hobbyist",
    "developer",
    "nightly",
    "agent",
    "developer",
    "hobbyist",
    "agent",
    "developer",
    "nightly",
    "developer",
    "agent",
    "hobbyist",
    "developer",
    "agent",
    "nightly",
    "developer",
    "hobbyist",
    "developer",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_a_monday_midnight() {
        let start = time::OffsetDateTime::from_unix_timestamp(START).unwrap();
        assert_eq!(start.weekday(), time::Weekday::Monday);
        assert_eq!((start.hour(), start.minute()), (0, 0));
    }

    #[test]
    fn the_shares_are_as_stated_and_generation_is_deterministic() {
        let count = |k: &str| ARCHETYPES.iter().filter(|a| **a == k).count();
        assert_eq!(
            [count("developer"), count("agent"), count("nightly"), count("hobbyist")],
            [8, 5, 3, 4]
        );
        assert_eq!(generate(6, 7, 1), generate(6, 7, 1));
        assert_ne!(generate(6, 7, 1), generate(6, 7, 2));
    }

    #[test]
    fn developers_rest_at_night_and_on_most_weekends() {
        let trace = generate(20, 28, 7);
        let developers: Vec<_> = trace.projects.iter().filter(|p| p.kind == "developer").collect();
        assert_eq!(developers.len(), 8);
        for dev in developers {
            let at_night = dev
                .events
                .iter()
                .filter(|t| (*t - START).rem_euclid(DAY) < 6 * 3600)
                .count();
            assert_eq!(at_night, 0, "{}", dev.name);
            let weekend = dev.events.iter().filter(|t| is_weekend((*t - START) / DAY)).count();
            assert!(weekend * 5 < dev.events.len(), "{}", dev.name);
        }
    }
}
