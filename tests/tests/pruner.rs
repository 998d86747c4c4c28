//! The snapshot pruner (retention) against DynamoDB Local and the E2B emulator: which snapshots
//! go, what the prune index makes it visit, E2B failures and interrupted ticks, dry runs, the
//! tick deadline, and the Lambda input (`tests/fixtures/scheduled/snapshot-pruner.json` was made
//! with `sam local generate-event cloudwatch scheduled-event`).

use std::collections::BTreeSet;
use std::time::Duration;

use e2b_emulator::{EmulatorConfig, Fault, Route};
use sandman::domain::{
    Actor, ProjectId, ProjectKey, ProjectSpec, RetentionPolicy, Snapshot, SnapshotId, SnapshotKind, SnapshotStatus,
};
use sandman::fork::{FORK_HOLD, ForkFrom};
use sandman::retention::{IN_USE_RECHECK, PassOptions, PruneReport, Reason};
use sandman::store::{SnapshotAdmission, keys};
use sandman_local::testkit::TestStack;
use sandman_snapshot_pruner::tick;
use serde_json::{Value, json};
use time::OffsetDateTime;

const HOUR: Duration = Duration::from_secs(3600);

fn retention(keep_last: u32, max_age: Option<Duration>) -> RetentionPolicy {
    RetentionPolicy { keep_last, max_age }
}

fn spec(stack: &TestStack, project: &str, policy: RetentionPolicy) -> ProjectSpec {
    ProjectSpec {
        retention: policy,
        ..stack.spec(project)
    }
}

/// Registers and opens each project (name, policy).
async fn open_projects(stack: &TestStack, projects: &[(&str, RetentionPolicy)]) -> Vec<ProjectKey> {
    let mut keys = Vec::new();
    for (project, policy) in projects {
        let key = stack.key(project);
        stack.register(&spec(stack, project, *policy)).await;
        stack.sandman.open(&key, Actor::User).await.expect("the project opens");
        keys.push(key);
    }
    keys
}

/// `count` snapshots per project saved in E2B one hour apart, in step across projects, the newest
/// taken now. Only Sandman's clock moves: the sandboxes must not time out in the emulator.
async fn save_hourly(stack: &TestStack, keys: &[ProjectKey], count: usize) -> Vec<Vec<Snapshot>> {
    let mut saved = vec![Vec::new(); keys.len()];
    for n in 0..count {
        if n > 0 {
            stack.clock.advance(HOUR);
        }
        for (key, saved) in keys.iter().zip(saved.iter_mut()) {
            let record = stack.sandman.project(key).await.unwrap();
            saved.push(
                stack
                    .sandman
                    .create_snapshot(&record, SnapshotKind::Manual, format!("s{n}"))
                    .await
                    .expect("snapshot saved"),
            );
        }
    }
    saved
}

/// One project with `count` hourly snapshots.
async fn with_snapshots(
    stack: &TestStack,
    project: &str,
    policy: RetentionPolicy,
    count: usize,
) -> (ProjectKey, Vec<Snapshot>) {
    let key = open_projects(stack, &[(project, policy)]).await.remove(0);
    let saved = save_hourly(stack, std::slice::from_ref(&key), count).await.remove(0);
    (key, saved)
}

async fn prune(stack: &TestStack) -> PruneReport {
    stack
        .sandman
        .prune(PassOptions::default())
        .await
        .expect("the tick runs")
}

async fn records(stack: &TestStack, key: &ProjectKey) -> Vec<Snapshot> {
    stack.store().all_snapshots(key).await.unwrap()
}

fn ids<'a>(snapshots: impl IntoIterator<Item = &'a Snapshot>) -> BTreeSet<SnapshotId> {
    snapshots.into_iter().map(|s| s.snapshot_id.clone()).collect()
}

fn pick(saved: &[Snapshot], indexes: &[usize]) -> BTreeSet<SnapshotId> {
    indexes.iter().map(|&i| saved[i].snapshot_id.clone()).collect()
}

fn e2b_ids(stack: &TestStack) -> BTreeSet<String> {
    stack.emulator.snapshots().into_iter().map(|s| s.snapshot_id).collect()
}

/// Projects the prune index says are due at `at`.
async fn due(stack: &TestStack, at: OffsetDateTime) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for shard in keys::prune_shards() {
        let mut cursor = None;
        loop {
            let page = stack
                .store()
                .prune_page(&shard, at, 100, cursor.as_ref())
                .await
                .unwrap();
            found.extend(page.items.iter().map(|c| c.key.project.to_string()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    found
}

fn names(projects: &[&str]) -> BTreeSet<String> {
    projects.iter().map(|p| p.to_string()).collect()
}

async fn recorded_e2b_ids(stack: &TestStack, keys: &[ProjectKey]) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for key in keys {
        all.extend(records(stack, key).await.into_iter().map(|s| s.e2b_snapshot_id));
    }
    all
}

/// Every READY record's E2B snapshot exists: nothing restorable points at nothing.
async fn assert_consistent(stack: &TestStack, key: &ProjectKey) {
    let e2b = e2b_ids(stack);
    for snapshot in records(stack, key).await {
        if snapshot.status == SnapshotStatus::Ready {
            assert!(
                e2b.contains(&snapshot.e2b_snapshot_id),
                "READY record {} has no E2B snapshot",
                snapshot.snapshot_id
            );
        }
    }
}

#[tokio::test]
async fn keeps_exactly_the_right_set_across_pins_ages_and_n() {
    let stack = TestStack::start().await;
    let projects = [
        ("strict", retention(4, Some(8 * HOUR))),
        ("lenient", RetentionPolicy::default()),
        ("not-due", retention(1, None)),
    ];
    let keys = open_projects(&stack, &projects).await;
    // s0 is 11 hours old, s11 was taken just now.
    let saved = save_hourly(&stack, &keys, 12).await;
    let (strict, lenient, idle) = (&keys[0], &keys[1], &keys[2]);
    for pinned in [1, 9] {
        stack
            .sandman
            .set_pinned(strict, &saved[0][pinned].snapshot_id, true)
            .await
            .unwrap();
    }
    stack.store().set_prune_at(idle, None).await.unwrap();

    let report = prune(&stack).await;
    assert_eq!(report.projects_visited, 2, "only due projects are visited");
    assert_eq!(report.failures, 0);
    // "strict", unpinned newest first: s11 s10 s8 s7 stay (the last 4, under 8h); s6 s5 s4 are
    // beyond them; s3 (exactly 8h), s2 and s0 are too old. Pinned s1 and s9 stay whatever their age.
    assert_eq!(
        ids(&records(&stack, strict).await),
        pick(&saved[0], &[1, 7, 8, 9, 10, 11])
    );
    assert_eq!(
        ids(&records(&stack, lenient).await),
        pick(&saved[1], &(2..12).collect::<Vec<_>>()),
        "default: the last 10"
    );
    assert_eq!(
        ids(&records(&stack, idle).await),
        ids(&saved[2]),
        "a project that is not due is not touched"
    );
    assert_eq!(report.snapshots_deleted, 6 + 2);
    assert_eq!(
        e2b_ids(&stack),
        recorded_e2b_ids(&stack, &keys).await,
        "E2B holds exactly what the table records"
    );
    for key in &keys {
        assert_consistent(&stack, key).await;
        assert!(
            records(&stack, key)
                .await
                .iter()
                .all(|s| s.status == SnapshotStatus::Ready)
        );
    }

    // "strict" is next due when s7 turns 8h old; "lenient" has no age limit and left the index.
    let now = stack.clock.now();
    assert!(due(&stack, now).await.is_empty());
    assert!(due(&stack, now + 4 * HOUR - Duration::from_millis(1)).await.is_empty());
    assert_eq!(due(&stack, now + 4 * HOUR).await, names(&["strict"]));
    stack.clock.advance(4 * HOUR);
    let report = prune(&stack).await;
    assert_eq!((report.projects_visited, report.snapshots_deleted), (1, 1));
    assert_eq!(ids(&records(&stack, strict).await), pick(&saved[0], &[1, 8, 9, 10, 11]));
    assert!(!e2b_ids(&stack).contains(&saved[0][7].e2b_snapshot_id));
    assert_eq!(
        due(&stack, stack.clock.now() + HOUR).await,
        names(&["strict"]),
        "then s8, an hour later"
    );
}

#[tokio::test]
async fn the_newest_and_the_one_in_use_survive_the_strictest_policy() {
    let stack = TestStack::start().await;
    let (key, saved) = with_snapshots(&stack, "app", retention(0, Some(HOUR)), 5).await;
    let restored = stack
        .sandman
        .restore(&key, &saved[0].snapshot_id, Actor::User)
        .await
        .unwrap();
    assert_eq!(restored.restored_from, Some(saved[0].snapshot_id.clone()));
    stack.clock.advance(2 * HOUR);

    let report = prune(&stack).await;
    assert_eq!(report.snapshots_deleted, 3);
    assert_eq!(
        ids(&records(&stack, &key).await),
        pick(&saved, &[0, 4]),
        "in use, and newest"
    );
    let now = stack.clock.now();
    assert!(
        due(&stack, now + IN_USE_RECHECK - Duration::from_millis(1))
            .await
            .is_empty()
    );
    assert_eq!(
        due(&stack, now + IN_USE_RECHECK).await,
        names(&["app"]),
        "the snapshot in use is looked at again later"
    );

    // Still in use at the recheck: kept, and looked at again later still.
    stack.clock.advance(IN_USE_RECHECK);
    assert_eq!(prune(&stack).await.snapshots_deleted, 0);
    assert_eq!(ids(&records(&stack, &key).await), pick(&saved, &[0, 4]));

    stack.sandman.kill(&key, Some(false), Actor::User).await.unwrap();
    stack.clock.advance(IN_USE_RECHECK);
    let report = prune(&stack).await;
    assert_eq!(report.snapshots_deleted, 1);
    assert_eq!(
        ids(&records(&stack, &key).await),
        pick(&saved, &[4]),
        "the newest stays, whatever its age"
    );
    assert!(
        due(&stack, stack.clock.now() + 100 * IN_USE_RECHECK).await.is_empty(),
        "nothing left to wait for"
    );
}

#[tokio::test]
async fn a_policy_change_or_an_unpin_makes_the_project_due() {
    let stack = TestStack::start().await;
    let (key, saved) = with_snapshots(&stack, "app", RetentionPolicy::default(), 5).await;
    stack
        .sandman
        .set_pinned(&key, &saved[0].snapshot_id, true)
        .await
        .unwrap();
    assert_eq!(prune(&stack).await.snapshots_deleted, 0);
    assert!(due(&stack, stack.clock.now() + 1000 * HOUR).await.is_empty());

    stack
        .store()
        .put_project(&spec(&stack, "app", retention(2, None)), stack.clock.now())
        .await
        .unwrap();
    let report = prune(&stack).await;
    assert_eq!(report.snapshots_deleted, 2);
    assert_eq!(ids(&records(&stack, &key).await), pick(&saved, &[0, 3, 4]));

    stack
        .sandman
        .set_pinned(&key, &saved[0].snapshot_id, false)
        .await
        .unwrap();
    assert_eq!(prune(&stack).await.snapshots_deleted, 1);
    assert_eq!(ids(&records(&stack, &key).await), pick(&saved, &[3, 4]));
    assert_eq!(e2b_ids(&stack), recorded_e2b_ids(&stack, &[key]).await);
}

#[tokio::test]
async fn e2b_errors_leave_consistent_records_and_the_next_tick_finishes() {
    let stack = TestStack::start().await;
    let (key, saved) = with_snapshots(&stack, "app", retention(2, None), 6).await;
    // E2B refuses the first delete (s3: the pass deletes newest first) and takes the others.
    stack.emulator.set_fault(
        Route::DeleteSnapshot,
        Fault {
            fail_next: 1,
            error_status: 400,
            ..Fault::default()
        },
    );

    // E2B's 400 on a delete is its refusal while a sandbox made from the snapshot runs: not a
    // failure of the pass. The snapshot is READY again (it is still E2B's, and usable), and the
    // project is looked at again later.
    let report = prune(&stack).await;
    assert_eq!((report.failures, report.snapshots_deleted), (0, 3), "{report:?}");
    assert_consistent(&stack, &key).await;
    let after = records(&stack, &key).await;
    assert!(
        after.iter().all(|s| s.status == SnapshotStatus::Ready),
        "a refused delete leaves no record DELETING: {after:?}"
    );
    assert!(
        e2b_ids(&stack).contains(&saved[3].e2b_snapshot_id),
        "E2B refused, so the snapshot is still there"
    );
    assert_eq!(ids(&after), pick(&saved, &[3, 4, 5]));
    assert!(due(&stack, stack.clock.now()).await.is_empty(), "not due again at once");
    let recheck = stack.clock.now() + sandman::retention::IN_USE_RECHECK;
    assert_eq!(due(&stack, recheck).await, names(&["app"]), "looked at again later");

    stack.emulator.clear_faults();
    stack.advance(sandman::retention::IN_USE_RECHECK).await;
    let report = prune(&stack).await;
    assert_eq!(report.failures, 0);
    assert_eq!(ids(&records(&stack, &key).await), pick(&saved, &[4, 5]));
    assert_eq!(e2b_ids(&stack), recorded_e2b_ids(&stack, &[key]).await);
    assert!(due(&stack, stack.clock.now() + 1000 * HOUR).await.is_empty());
}

#[tokio::test]
async fn a_tick_killed_halfway_is_finished_by_the_next() {
    let stack = TestStack::start().await;
    let (key, saved) = with_snapshots(&stack, "app", RetentionPolicy::default(), 4).await;
    // Killed after marking, before E2B was called...
    stack
        .store()
        .mark_deleting_at(&key, &saved[0].snapshot_id, stack.clock.now())
        .await
        .unwrap();
    // ...and killed after E2B deleted, before the record was removed.
    stack
        .store()
        .mark_deleting_at(&key, &saved[1].snapshot_id, stack.clock.now())
        .await
        .unwrap();
    stack
        .sandman
        .e2b_for(&key)
        .await
        .unwrap()
        .delete_snapshot(&saved[1].e2b_snapshot_id)
        .await
        .unwrap();
    assert_consistent(&stack, &key).await;

    let report = prune(&stack).await;
    assert_eq!((report.snapshots_deleted, report.failures), (2, 0));
    assert_eq!(ids(&records(&stack, &key).await), pick(&saved, &[2, 3]));
    assert_eq!(e2b_ids(&stack), recorded_e2b_ids(&stack, &[key]).await);
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing() {
    let stack = TestStack::start().await;
    let (key, saved) = with_snapshots(&stack, "app", retention(2, None), 5).await;
    stack
        .store()
        .mark_deleting_at(&key, &saved[4].snapshot_id, stack.clock.now())
        .await
        .unwrap();
    let table_before = records(&stack, &key).await;
    let e2b_before = stack
        .emulator
        .snapshots()
        .into_iter()
        .map(|s| (s.snapshot_id, s.created_at))
        .collect::<Vec<_>>();
    let due_before = due(&stack, stack.clock.now()).await;
    let project_before = stack.sandman.project(&key).await.unwrap();

    let report = tick(&stack.sandman, &json!({"dryRun": true})).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(
        (report.projects_visited, report.snapshots_deleted, report.would_delete),
        (1, 0, 3)
    );
    let planned: BTreeSet<(SnapshotId, Reason)> = report
        .planned
        .iter()
        .map(|p| (p.snapshot_id.clone(), p.reason))
        .collect();
    let expected = BTreeSet::from([
        (saved[4].snapshot_id.clone(), Reason::Unfinished),
        (saved[0].snapshot_id.clone(), Reason::BeyondKeepLast),
        (saved[1].snapshot_id.clone(), Reason::BeyondKeepLast),
    ]);
    assert_eq!(planned, expected);
    assert_eq!(report.metrics().to_emf(0)["WouldDelete"], 3.0);

    assert_eq!(records(&stack, &key).await, table_before);
    assert_eq!(
        stack
            .emulator
            .snapshots()
            .into_iter()
            .map(|s| (s.snapshot_id, s.created_at))
            .collect::<Vec<_>>(),
        e2b_before
    );
    assert!(stack.emulator.calls_to(Route::DeleteSnapshot).is_empty());
    assert_eq!(due(&stack, stack.clock.now()).await, due_before);
    assert_eq!(stack.sandman.project(&key).await.unwrap(), project_before);
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/scheduled/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists")).expect("fixture is JSON")
}

#[tokio::test]
async fn the_scheduled_event_runs_a_real_tick_and_counts_it() {
    let stack = TestStack::start().await;
    let (key, saved) = with_snapshots(&stack, "app", retention(1, None), 3).await;
    let report = tick(&stack.sandman, &fixture("snapshot-pruner.json")).await.unwrap();
    assert!(!report.dry_run);
    assert_eq!(ids(&records(&stack, &key).await), pick(&saved, &[2]));
    let emf = report.metrics().to_emf(0);
    assert_eq!(emf["Function"], "snapshot-pruner");
    assert_eq!(emf["ProjectsVisited"], 1.0);
    assert_eq!(emf["SnapshotsDeleted"], 2.0);
    assert_eq!(emf["Failures"], 0.0);
    assert!(emf.get("TickDurationMs").is_some());
}

#[tokio::test]
async fn configured_dry_run_holds_for_scheduled_ticks_and_an_invocation_can_lift_it() {
    let stack = TestStack::start_with(EmulatorConfig::default(), |var| {
        (var == "PRUNER_DRY_RUN").then(|| "true".to_string())
    })
    .await;
    let (key, saved) = with_snapshots(&stack, "app", retention(1, None), 3).await;

    let report = tick(&stack.sandman, &fixture("snapshot-pruner.json")).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.would_delete, 2);
    assert_eq!(ids(&records(&stack, &key).await), ids(&saved));
    assert!(stack.emulator.calls_to(Route::DeleteSnapshot).is_empty());

    let report = tick(&stack.sandman, &json!({"dryRun": false})).await.unwrap();
    assert_eq!(report.snapshots_deleted, 2);
    assert_eq!(ids(&records(&stack, &key).await), pick(&saved, &[2]));
}

#[tokio::test]
async fn bad_input_does_nothing() {
    let stack = TestStack::start().await;
    let (key, saved) = with_snapshots(&stack, "app", retention(1, None), 3).await;
    assert!(tick(&stack.sandman, &json!({"dryRun": "no"})).await.is_err());
    assert_eq!(ids(&records(&stack, &key).await), ids(&saved));
}

#[tokio::test]
async fn at_the_deadline_no_new_project_is_started() {
    let stack = TestStack::start_with(EmulatorConfig::default(), |var| {
        (var == "TICK_DEADLINE_SECS").then(|| "0".to_string())
    })
    .await;
    let (key, saved) = with_snapshots(&stack, "app", retention(1, None), 3).await;
    let report = prune(&stack).await;
    assert!(report.stopped_at_deadline);
    assert_eq!(report.projects_visited, 0);
    assert_eq!(ids(&records(&stack, &key).await), ids(&saved));
    assert_eq!(
        due(&stack, stack.clock.now()).await,
        names(&["app"]),
        "left for the next tick"
    );
}

/// Records snapshots straight into the table (their E2B snapshots do not exist: deleting them
/// gets a 404, which counts as deleted). Newest last.
async fn recorded(stack: &TestStack, key: &ProjectKey, count: u32) -> Vec<Snapshot> {
    let mut all = Vec::new();
    for n in 0..count {
        let snapshot = Snapshot {
            snapshot_id: sandman::snapshots::new_snapshot_id(),
            team_id: key.team.clone(),
            project_id: key.project.clone(),
            e2b_snapshot_id: format!("gone-{}-{n}", key.project),
            source_sandbox_id: "sbx".into(),
            description: String::new(),
            kind: SnapshotKind::AutoBeforePause,
            pinned: false,
            status: SnapshotStatus::Ready,
            created_at: stack.clock.now() - HOUR * (count - n),
            size_bytes: None,
            file_count: None,
            held_until: None,
        };
        stack
            .store()
            .put_snapshot(&snapshot, SnapshotAdmission::Always)
            .await
            .unwrap();
        all.push(snapshot);
    }
    all
}

#[tokio::test]
async fn a_tick_pages_through_every_shard() {
    let stack = TestStack::start().await;
    let mut keys = Vec::new();
    for n in 0..130 {
        let project = format!("p{n:03}");
        stack.register(&spec(&stack, &project, retention(1, None))).await;
        let key = stack.key(&project);
        recorded(&stack, &key, 3).await;
        keys.push(key);
    }
    let report = prune(&stack).await;
    assert_eq!(
        (report.projects_visited, report.snapshots_deleted, report.failures),
        (130, 260, 0)
    );
    for key in &keys {
        assert_eq!(records(&stack, key).await.len(), 1);
    }
    assert!(due(&stack, stack.clock.now() + 1000 * HOUR).await.is_empty());
    assert_eq!(
        prune(&stack).await.projects_visited,
        0,
        "a second tick finds nothing due"
    );
}

#[tokio::test]
async fn a_snapshot_recorded_during_a_pass_keeps_the_project_due() {
    let stack = TestStack::start().await;
    stack.register(&spec(&stack, "app", retention(1, None))).await;
    let key = stack.key("app");
    recorded(&stack, &key, 1).await;
    let shard = keys::prune_shard(&key);
    let candidate = stack
        .store()
        .prune_page(&shard, stack.clock.now(), 10, None)
        .await
        .unwrap()
        .items
        .remove(0);

    let marks = stack.sandman.project(&key).await.unwrap().prune_marks;

    // Recorded in the same millisecond (the clock has not moved): `pruneAt` alone cannot tell.
    recorded(&stack, &key, 1).await;
    let moved = stack
        .store()
        .reschedule_prune(&key, candidate.due_at, marks, None)
        .await
        .unwrap();
    assert!(!moved, "a snapshot was recorded since the pass read");
    assert_eq!(due(&stack, stack.clock.now()).await, names(&["app"]));

    let fresh = stack
        .store()
        .prune_page(&shard, stack.clock.now(), 10, None)
        .await
        .unwrap()
        .items
        .remove(0);
    let marks = stack.sandman.project(&key).await.unwrap().prune_marks;
    // Marked due again in the same millisecond (a fork's hold released, a policy changed).
    stack.store().set_prune_at(&key, Some(stack.clock.now())).await.unwrap();
    assert!(
        !stack
            .store()
            .reschedule_prune(&key, fresh.due_at, marks, None)
            .await
            .unwrap(),
        "marked due since the pass read"
    );
    let (marks, fresh) = (
        stack.sandman.project(&key).await.unwrap().prune_marks,
        stack
            .store()
            .prune_page(&shard, stack.clock.now(), 10, None)
            .await
            .unwrap()
            .items
            .remove(0),
    );
    assert!(
        stack
            .store()
            .reschedule_prune(&key, fresh.due_at, marks, None)
            .await
            .unwrap()
    );
    assert!(due(&stack, stack.clock.now()).await.is_empty());
}

/// A team whose snapshot count does not exist yet (a deployment from before counting began) is
/// counted once, from its projects' rows, by the first counted write: here the pruner's, as its
/// own function (the IAM check holds the pruner's role to the `byTeam` query this makes).
#[tokio::test]
async fn the_pruner_seeds_a_teams_missing_snapshot_count_from_its_rows() {
    let stack = TestStack::start().await;
    let (key, _saved) = with_snapshots(&stack, "app", retention(1, None), 3).await;
    stack
        .table
        .client
        .delete_item()
        .table_name(&stack.table.name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("TEAM#{}", key.team)),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("SNAPSHOTS".into()))
        .send()
        .await
        .unwrap();

    let pruner = stack.sandman.as_function(sandman::secrets::Function::SnapshotPruner);
    let report = pruner.prune(PassOptions::default()).await.expect("the tick runs");

    assert_eq!((report.snapshots_deleted, report.failures), (2, 0), "{report:?}");
    assert_eq!(records(&stack, &key).await.len(), 1);
    assert_eq!(
        stack.store().team_snapshot_count(&key.team).await.unwrap(),
        1,
        "seeded, then counted down"
    );
}

/// A snapshot a fork holds is kept past `keepLast` only while the fork needs it: the fork's first
/// open releases it and makes its source due again, and a hold never released (a fork never
/// opened) brings the source back when it lapses.
#[tokio::test]
async fn a_snapshot_held_by_a_fork_goes_once_the_fork_no_longer_needs_it() {
    let stack = TestStack::start().await;
    let keys = open_projects(&stack, &[("app", retention(1, None)), ("other", retention(1, None))]).await;
    let first = save_hourly(&stack, &keys, 1).await;
    for (source, fork) in keys.iter().zip(["copy", "copy-never-opened"]) {
        stack
            .sandman
            .fork(source, ProjectId::parse(fork).unwrap(), ForkFrom::Snapshot(None))
            .await
            .expect("forked from the newest snapshot");
    }
    stack.clock.advance(HOUR);
    let second = save_hourly(&stack, &keys, 1).await;
    assert_eq!(
        prune(&stack).await.snapshots_deleted,
        0,
        "both held snapshots stay while held"
    );
    for (key, (first, second)) in keys.iter().zip(first.iter().zip(&second)) {
        assert_eq!(ids(&records(&stack, key).await), ids([&first[0], &second[0]]));
    }

    stack
        .sandman
        .open(&stack.key("copy"), Actor::User)
        .await
        .expect("the fork opens");
    // E2B keeps a snapshot while a sandbox made from it runs: the fork's is paused first.
    stack
        .sandman
        .pause_by_user(&stack.key("copy"))
        .await
        .expect("the fork pauses");
    assert_eq!(
        prune(&stack).await.snapshots_deleted,
        1,
        "the fork's open released its hold"
    );
    assert_eq!(ids(&records(&stack, &keys[0]).await), ids(&second[0]));
    assert_eq!(
        due(&stack, stack.clock.now() + FORK_HOLD - 2 * HOUR).await,
        BTreeSet::new(),
        "nothing is due before the other hold lapses"
    );
    // The hold was taken an hour ago.
    assert_eq!(
        due(&stack, stack.clock.now() + FORK_HOLD - HOUR).await,
        names(&["other"])
    );

    stack.clock.advance(FORK_HOLD - HOUR);
    assert_eq!(
        prune(&stack).await.snapshots_deleted,
        1,
        "the lapsed hold keeps nothing"
    );
    assert_eq!(ids(&records(&stack, &keys[1]).await), ids(&second[1]));
    assert_eq!(e2b_ids(&stack), recorded_e2b_ids(&stack, &keys).await);
}
