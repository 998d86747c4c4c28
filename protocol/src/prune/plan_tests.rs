use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

use super::plan::{IN_USE_RECHECK, Plan, Reason, plan};
use crate::domain::{ProjectId, RetentionPolicy, Snapshot, SnapshotId, SnapshotKind, SnapshotStatus, TeamId};

const NOW: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);

/// Snapshot `n` was taken `hours_ago` hours before NOW; ids sort like creation times.
fn snap(n: u32, hours_ago: u64) -> Snapshot {
    Snapshot {
        snapshot_id: SnapshotId::parse(format!("S{n:04}")).unwrap(),
        team_id: TeamId::parse("team").unwrap(),
        project_id: ProjectId::parse("project").unwrap(),
        e2b_snapshot_id: format!("e2b-{n}"),
        source_sandbox_id: "sbx".into(),
        description: String::new(),
        kind: SnapshotKind::Manual,
        pinned: false,
        status: SnapshotStatus::Ready,
        created_at: NOW - HOUR * hours_ago as u32,
        size_bytes: None,
        file_count: None,
        held_until: None,
    }
}

fn pinned(mut s: Snapshot) -> Snapshot {
    s.pinned = true;
    s
}

fn deleting(mut s: Snapshot) -> Snapshot {
    s.status = SnapshotStatus::Deleting;
    s
}

/// `count` snapshots one hour apart, the newest (highest number) taken just now.
fn hourly(count: u32) -> Vec<Snapshot> {
    (0..count).map(|n| snap(n, u64::from(count - 1 - n))).collect()
}

fn id(n: u32) -> SnapshotId {
    SnapshotId::parse(format!("S{n:04}")).unwrap()
}

fn ids(ns: impl IntoIterator<Item = u32>) -> BTreeSet<SnapshotId> {
    ns.into_iter().map(id).collect()
}

fn deleted(plan: &Plan) -> BTreeSet<SnapshotId> {
    plan.delete.iter().map(|d| d.snapshot_id.clone()).collect()
}

fn policy(keep_last: u32, max_age_hours: Option<u64>) -> RetentionPolicy {
    RetentionPolicy {
        keep_last,
        max_age: max_age_hours.map(|h| HOUR * h as u32),
    }
}

#[test]
fn keeps_the_newest_n_unpinned() {
    let result = plan(&hourly(15), policy(10, None), NOW, None);
    assert_eq!(deleted(&result), ids(0..5));
    assert!(result.delete.iter().all(|d| d.reason == Reason::BeyondKeepLast));
    assert_eq!(result.keep.len(), 10);
    assert_eq!(result.next_due, None, "without max_age nothing ever ages out");
}

#[test]
fn pinned_snapshots_neither_count_nor_age_out() {
    let mut snapshots = hourly(6);
    snapshots[0] = pinned(snapshots[0].clone()); // the oldest
    snapshots[4] = pinned(snapshots[4].clone()); // the second newest
    let result = plan(&snapshots, policy(2, Some(3)), NOW, None);
    // Unpinned, newest first: 5 (0h), 3 (2h), 2 (3h), 1 (4h). Keep 5 and 3; 2 and 1 are 3h+ old.
    assert_eq!(deleted(&result), ids([1, 2]));
    assert_eq!(result.keep.iter().cloned().collect::<BTreeSet<_>>(), ids([0, 3, 4, 5]));
    assert_eq!(result.next_due, Some(NOW + HOUR), "snapshot 3 turns 3h old in an hour");
}

#[test]
fn max_age_deletes_old_ones_even_within_n() {
    let result = plan(&hourly(5), policy(10, Some(2)), NOW, None);
    // Ages 4h, 3h, 2h (expires at exactly max_age), 1h, 0h.
    assert_eq!(deleted(&result), ids([0, 1, 2]));
    assert!(result.delete.iter().all(|d| d.reason == Reason::OlderThanMaxAge));
    assert_eq!(result.next_due, Some(NOW + HOUR));
}

#[test]
fn the_newest_ready_snapshot_survives_any_policy() {
    let result = plan(&hourly(3), policy(0, Some(0)), NOW, None);
    assert_eq!(deleted(&result), ids([0, 1]));
    assert_eq!(result.keep, vec![id(2)]);
    assert_eq!(
        result.next_due, None,
        "the newest is held until a newer one is recorded"
    );
}

#[test]
fn a_deleting_newer_record_does_not_shield_nor_count() {
    let mut snapshots = hourly(4);
    snapshots[3] = deleting(snapshots[3].clone());
    let result = plan(&snapshots, policy(1, None), NOW, None);
    assert_eq!(result.unfinished, vec![id(3)]);
    assert_eq!(
        result.keep,
        vec![id(2)],
        "the newest READY one is the restore ladder's first rung"
    );
    assert_eq!(deleted(&result), ids([0, 1]));
}

#[test]
fn the_snapshot_in_use_is_kept_and_looked_at_again_later() {
    let result = plan(&hourly(5), policy(2, None), NOW, Some(&id(0)));
    assert_eq!(deleted(&result), ids([1, 2]));
    assert!(result.keep.contains(&id(0)));
    assert_eq!(result.next_due, Some(NOW + IN_USE_RECHECK));
}

#[test]
fn an_unknown_in_use_id_changes_nothing() {
    assert_eq!(
        plan(&hourly(5), policy(2, None), NOW, Some(&id(99))),
        plan(&hourly(5), policy(2, None), NOW, None)
    );
}

#[test]
fn ties_on_created_at_break_by_id() {
    let snapshots: Vec<_> = (0..3).map(|n| snap(n, 1)).collect();
    let result = plan(&snapshots, policy(1, None), NOW, None);
    assert_eq!(result.keep, vec![id(2)]);
}

#[test]
fn nothing_to_do_for_an_empty_project() {
    assert_eq!(plan(&[], policy(0, Some(0)), NOW, None), Plan::default());
}

fn arb_snapshots() -> impl Strategy<Value = Vec<Snapshot>> {
    prop::collection::vec((0u64..200, any::<bool>(), prop::bool::weighted(0.1)), 0..30).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(n, (hours_ago, is_pinned, is_deleting))| {
                let mut s = snap(n as u32, hours_ago);
                s.pinned = is_pinned && !is_deleting;
                s.status = if is_deleting {
                    SnapshotStatus::Deleting
                } else {
                    SnapshotStatus::Ready
                };
                s
            })
            .collect()
    })
}

fn arb_policy() -> impl Strategy<Value = RetentionPolicy> {
    (0u32..12, prop::option::of(0u64..150)).prop_map(|(keep, age)| policy(keep, age))
}

fn arb_in_use(len: usize) -> impl Strategy<Value = Option<SnapshotId>> {
    prop::option::of(0..len.max(1) as u32).prop_map(|n| n.map(id))
}

fn case() -> impl Strategy<Value = (Vec<Snapshot>, RetentionPolicy, Option<SnapshotId>)> {
    (arb_snapshots(), arb_policy()).prop_flat_map(|(snapshots, policy)| {
        let len = snapshots.len();
        (Just(snapshots), Just(policy), arb_in_use(len))
    })
}

fn kept_snapshots(snapshots: &[Snapshot], result: &Plan) -> Vec<Snapshot> {
    snapshots
        .iter()
        .filter(|s| result.keep.contains(&s.snapshot_id))
        .cloned()
        .collect()
}

proptest! {
    #[test]
    fn keep_delete_and_unfinished_partition_the_snapshots((snapshots, policy, in_use) in case()) {
        let result = plan(&snapshots, policy, NOW, in_use.as_ref());
        let mut all: Vec<_> = result.keep.iter().chain(result.unfinished.iter()).cloned().collect();
        all.extend(result.delete.iter().map(|d| d.snapshot_id.clone()));
        let total = all.len();
        let unique: BTreeSet<_> = all.into_iter().collect();
        prop_assert_eq!(total, unique.len());
        prop_assert_eq!(unique, snapshots.iter().map(|s| s.snapshot_id.clone()).collect::<BTreeSet<_>>());
    }

    #[test]
    fn never_deletes_what_must_stay((snapshots, policy, in_use) in case()) {
        let result = plan(&snapshots, policy, NOW, in_use.as_ref());
        let doomed = deleted(&result);
        let newest_ready = snapshots.iter().filter(|s| s.status == SnapshotStatus::Ready).max_by_key(|s| (s.created_at, s.snapshot_id.clone()));
        if let Some(newest) = newest_ready {
            prop_assert!(!doomed.contains(&newest.snapshot_id));
        }
        if let Some(in_use) = &in_use {
            prop_assert!(!doomed.contains(in_use));
        }
        for s in &snapshots {
            if s.pinned || s.status == SnapshotStatus::Deleting {
                prop_assert!(!doomed.contains(&s.snapshot_id));
            }
        }
    }

    #[test]
    fn deletes_exactly_what_breaks_the_policy((snapshots, policy, in_use) in case()) {
        let result = plan(&snapshots, policy, NOW, in_use.as_ref());
        let doomed = deleted(&result);
        let mut unpinned: Vec<_> = snapshots.iter().filter(|s| !s.pinned && s.status == SnapshotStatus::Ready).collect();
        unpinned.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.snapshot_id.clone())));
        let newest_ready = snapshots.iter().filter(|s| s.status == SnapshotStatus::Ready).max_by_key(|s| (s.created_at, s.snapshot_id.clone())).map(|s| s.snapshot_id.clone());
        for (rank, s) in unpinned.iter().enumerate() {
            let too_old = policy.max_age.is_some_and(|age| s.created_at + age <= NOW);
            let breaks = too_old || rank >= policy.keep_last as usize;
            let shielded = Some(&s.snapshot_id) == newest_ready.as_ref() || Some(&s.snapshot_id) == in_use.as_ref();
            prop_assert_eq!(doomed.contains(&s.snapshot_id), breaks && !shielded, "rank {} age {:?}", rank, NOW - s.created_at);
        }
    }

    #[test]
    fn a_second_pass_finds_nothing_more((snapshots, policy, in_use) in case()) {
        let first = plan(&snapshots, policy, NOW, in_use.as_ref());
        let second = plan(&kept_snapshots(&snapshots, &first), policy, NOW, in_use.as_ref());
        prop_assert!(second.delete.is_empty(), "{:?}", second.delete);
        prop_assert_eq!(second.next_due, first.next_due);
    }

    /// `next_due` is the promise the prune index relies on: nothing becomes deletable before it,
    /// and (for an age limit) something does at it.
    #[test]
    fn nothing_is_due_before_next_due((snapshots, policy, in_use) in case()) {
        let first = plan(&snapshots, policy, NOW, in_use.as_ref());
        let kept = kept_snapshots(&snapshots, &first);
        let horizon = NOW + Duration::from_secs(100 * 365 * 24 * 3600);
        let before = first.next_due.map_or(horizon, |due| due - Duration::from_millis(1));
        prop_assert!(first.next_due.is_none_or(|due| due > NOW));
        prop_assert!(plan(&kept, policy, before, in_use.as_ref()).delete.is_empty());
        // A timer set for the snapshot in use may find it still in use: that visit only re-arms.
        if let Some(due) = first.next_due.filter(|_| in_use.is_none()) {
            prop_assert!(!plan(&kept, policy, due, in_use.as_ref()).delete.is_empty(), "due at {} but nothing to delete", due);
        }
    }
}

#[test]
fn a_held_snapshot_is_kept_until_its_hold_lapses() {
    let mut snapshots = hourly(3);
    snapshots[0].held_until = Some(NOW + HOUR * 5);
    snapshots[1].held_until = Some(NOW);
    let result = plan(&snapshots, policy(1, None), NOW, None);
    assert_eq!(deleted(&result), ids([1]), "a hold ends at its time");
    assert!(result.keep.contains(&id(0)));
    assert_eq!(
        result.next_due,
        Some(NOW + HOUR * 5),
        "looked at again when the hold lapses"
    );
    let later = plan(&snapshots, policy(1, None), NOW + HOUR * 5, None);
    assert_eq!(deleted(&later), ids([0, 1]));
}
