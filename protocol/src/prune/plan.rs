//! The retention rule itself, with no I/O: which of a project's snapshots go, which stay, and
//! when the project next needs a look.

use std::cmp::Reverse;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::{RetentionPolicy, Snapshot, SnapshotId, SnapshotStatus};

/// A snapshot kept only because a live sandbox was restored from it is looked at again after
/// this long: nothing marks the project due when that sandbox goes away.
pub const IN_USE_RECHECK: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Older than the project's `keep_last` newest unpinned snapshots.
    BeyondKeepLast,
    /// At least `max_age` old.
    OlderThanMaxAge,
    /// Already DELETING: an earlier pass was interrupted or E2B failed; finish it.
    Unfinished,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doomed {
    pub snapshot_id: SnapshotId,
    pub reason: Reason,
}

/// What one retention pass over a project does. `keep`, `delete` and `unfinished` partition the
/// snapshots it was given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub keep: Vec<SnapshotId>,
    pub delete: Vec<Doomed>,
    /// DELETING records: their E2B snapshot may already be gone, so they are finished, never kept.
    pub unfinished: Vec<SnapshotId>,
    /// When, once `delete` is done, the next snapshot will need deleting (`None`: not until the
    /// project gains a snapshot or changes its policy).
    pub next_due: Option<OffsetDateTime>,
}

/// Keeps the `keep_last` newest unpinned snapshots that are younger than `max_age`, and every
/// pinned one. Whatever the policy, the newest READY snapshot (the first rung of the restore
/// ladder), the one the live sandbox was restored from (`in_use`) and those a restore or a fork
/// holds are kept.
///
/// "Newest" orders by `created_at`, then by id (ULIDs, so creation order as well). A snapshot
/// expires at exactly `created_at + max_age`.
pub fn plan(snapshots: &[Snapshot], policy: RetentionPolicy, now: OffsetDateTime, in_use: Option<&SnapshotId>) -> Plan {
    let mut ready: Vec<&Snapshot> = snapshots.iter().filter(|s| s.status == SnapshotStatus::Ready).collect();
    ready.sort_by_key(|s| Reverse((s.created_at, s.snapshot_id.clone())));
    let newest = ready.first().map(|s| s.snapshot_id.clone());

    let mut result = Plan {
        unfinished: snapshots
            .iter()
            .filter(|s| s.status == SnapshotStatus::Deleting)
            .map(|s| s.snapshot_id.clone())
            .collect(),
        ..Plan::default()
    };
    let mut unpinned_rank = 0usize;
    for snapshot in ready {
        if snapshot.pinned {
            result.keep.push(snapshot.snapshot_id.clone());
            continue;
        }
        let rank = unpinned_rank;
        unpinned_rank += 1;
        let expires_at = policy.max_age.map(|age| snapshot.created_at + age);
        let verdict = if expires_at.is_some_and(|at| at <= now) {
            Some(Reason::OlderThanMaxAge)
        } else if rank >= policy.keep_last as usize {
            Some(Reason::BeyondKeepLast)
        } else {
            None
        };
        let is_newest = newest.as_ref() == Some(&snapshot.snapshot_id);
        let is_in_use = in_use == Some(&snapshot.snapshot_id);
        let held_until = snapshot.held_until.filter(|until| *until > now);
        match verdict {
            Some(reason) if !is_newest && !is_in_use && held_until.is_none() => {
                result.delete.push(Doomed {
                    snapshot_id: snapshot.snapshot_id.clone(),
                    reason,
                });
                continue;
            }
            // The newest needs no timer: a newer snapshot marks the project due when it is recorded.
            Some(_) if is_newest => {}
            // Kept only by the live sandbox, or by a restore's or a fork's hold: looked at again
            // when the hold lapses (a fork's release marks the project due sooner), and after
            // `IN_USE_RECHECK` for the live sandbox, which may be gone by then.
            Some(_) => {
                if is_in_use {
                    consider(&mut result.next_due, now + IN_USE_RECHECK);
                }
                if let Some(until) = held_until {
                    consider(&mut result.next_due, until);
                }
            }
            None if is_newest => {}
            None => {
                if let Some(at) = expires_at {
                    consider(&mut result.next_due, at);
                }
            }
        }
        result.keep.push(snapshot.snapshot_id.clone());
    }
    result
}

fn consider(next: &mut Option<OffsetDateTime>, at: OffsetDateTime) {
    *next = Some(next.map_or(at, |current| current.min(at)));
}
