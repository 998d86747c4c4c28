//! The live-sandbox quota, at every instant: per team (the team E2B's metadata names: a fork's is
//! its source's), how many sandboxes E2B was running, from every sandbox's state history.

use std::collections::BTreeMap;

use e2b_emulator::SandboxState;
use time::OffsetDateTime;

use super::truth::Truth;
use super::{LIVE_QUOTA, Soak};

pub fn judge(soak: &Soak, truth: &Truth) {
    // Per team: (time, +1 started running / -1 stopped), stops first at equal times.
    let mut changes: BTreeMap<String, Vec<(OffsetDateTime, i32)>> = BTreeMap::new();
    for view in truth.sandboxes.values() {
        let Some(team) = view.metadata.get("sandmanTeam") else {
            continue;
        };
        let mut running = false;
        for change in &view.history {
            let now_running = change.state == SandboxState::Running;
            if now_running != running {
                let delta = if now_running { 1 } else { -1 };
                changes.entry(team.clone()).or_default().push((change.at, delta));
                running = now_running;
            }
        }
    }
    let quota = crate::fleet::LIVE_QUOTA as i32;
    for (team, mut team_changes) in changes {
        team_changes.sort();
        let starts = team_changes.iter().filter(|(_, d)| *d > 0).count() as u64;
        soak.ledger.judged(LIVE_QUOTA, starts);
        let (mut count, mut over_since, mut peak) = (0, None, 0);
        for (at, delta) in team_changes {
            count += delta;
            if count > quota && over_since.is_none() {
                over_since = Some(at);
                peak = count;
            }
            peak = peak.max(count);
            if count <= quota
                && let Some(since) = over_since.take()
            {
                soak.ledger.violation(
                    LIVE_QUOTA,
                    &team,
                    format!(
                        "{peak} running in E2B (quota {quota}) from {} to {}",
                        since.time(),
                        at.time()
                    ),
                );
            }
        }
        if let Some(since) = over_since {
            soak.ledger.violation(
                LIVE_QUOTA,
                &team,
                format!("{peak} running in E2B (quota {quota}) from {} to the end", since.time()),
            );
        }
    }
}
