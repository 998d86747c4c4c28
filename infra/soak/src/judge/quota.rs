//! The live-sandbox quota, at every instant: per team (the team E2B's metadata names: a fork's is
//! its source's), how many sandboxes E2B was running, from every sandbox's state history.

use std::collections::BTreeMap;

use e2b_emulator::{SandboxState, StateChange};
use time::OffsetDateTime;

use super::truth::Truth;
use super::{LIVE_QUOTA, Soak};

/// A stretch of time a team ran more than its quota: the most at once, from, to (`None`: the end).
#[derive(Debug, Clone, PartialEq)]
pub struct Over {
    pub peak: i32,
    pub from: OffsetDateTime,
    pub to: Option<OffsetDateTime>,
}

pub fn judge(soak: &Soak, truth: &Truth) {
    let mut histories: BTreeMap<&str, Vec<&[StateChange]>> = BTreeMap::new();
    for view in truth.sandboxes.values() {
        if let Some(team) = view.metadata.get("sandmanTeam") {
            histories.entry(team).or_default().push(&view.history);
        }
    }
    let quota = crate::fleet::LIVE_QUOTA as i32;
    for (team, histories) in histories {
        let (starts, overs) = over_quota(&histories, quota);
        soak.ledger.judged(LIVE_QUOTA, starts);
        for over in overs {
            let to = over.to.map_or_else(|| "the end".to_owned(), |to| to.time().to_string());
            soak.ledger.violation(
                LIVE_QUOTA,
                team,
                format!(
                    "{} running in E2B (quota {quota}) from {} to {to}",
                    over.peak,
                    over.from.time()
                ),
            );
        }
    }
}

/// How many times one of the sandboxes began running, and the stretches more than `quota` of them
/// ran at once (one that stops and one that starts at the same instant do not overlap).
pub fn over_quota(histories: &[&[StateChange]], quota: i32) -> (u64, Vec<Over>) {
    let mut changes: Vec<(OffsetDateTime, i32)> = Vec::new();
    for history in histories {
        let mut running = false;
        for change in history.iter() {
            let now_running = change.state == SandboxState::Running;
            if now_running != running {
                changes.push((change.at, if now_running { 1 } else { -1 }));
                running = now_running;
            }
        }
    }
    changes.sort();
    let starts = changes.iter().filter(|(_, d)| *d > 0).count() as u64;
    let (mut count, mut overs, mut current): (i32, Vec<Over>, Option<Over>) = (0, Vec::new(), None);
    for (at, delta) in changes {
        count += delta;
        match &mut current {
            None if count > quota => {
                current = Some(Over {
                    peak: count,
                    from: at,
                    to: None,
                })
            }
            Some(over) if count > quota => over.peak = over.peak.max(count),
            Some(_) => {
                let mut over = current.take().expect("matched Some");
                over.to = Some(at);
                overs.push(over);
            }
            None => {}
        }
    }
    overs.extend(current);
    (starts, overs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn history(changes: &[(i64, SandboxState)]) -> Vec<StateChange> {
        let t0 = datetime!(2026-12-06 10:00 UTC);
        changes
            .iter()
            .map(|(s, state)| StateChange {
                at: t0 + time::Duration::seconds(*s),
                state: *state,
            })
            .collect()
    }

    use SandboxState::{Killed, Paused, Running};

    #[test]
    fn three_at_once_against_a_quota_of_two_is_one_stretch_over() {
        let a = history(&[(0, Running), (100, Paused)]);
        let b = history(&[(10, Running), (50, Killed)]);
        let c = history(&[(20, Running), (30, Paused), (40, Running), (60, Paused)]);
        let (starts, overs) = over_quota(&[&a, &b, &c], 2);
        assert_eq!(starts, 4);
        assert_eq!(overs.len(), 2, "{overs:?}");
        assert_eq!((overs[0].peak, overs[0].to.is_some()), (3, true));
        assert_eq!(overs[1].from - overs[0].from, time::Duration::seconds(20));
    }

    #[test]
    fn one_stopping_as_another_starts_is_not_over_and_one_still_over_at_the_end_is() {
        let a = history(&[(0, Running), (10, Paused)]);
        let b = history(&[(10, Running)]);
        assert!(over_quota(&[&a, &b], 1).1.is_empty());
        let c = history(&[(20, Running)]);
        let (_, overs) = over_quota(&[&a, &b, &c], 1);
        assert_eq!(
            overs,
            vec![Over {
                peak: 2,
                from: overs[0].from,
                to: None
            }]
        );
    }
}
