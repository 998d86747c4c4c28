//! The store against DynamoDB Local (started by `make test`), with the table created from template.yaml.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use sandman::domain::{
    Actor, IdlePolicy, ProjectId, ProjectKey, ProjectSpec, RetentionPolicy, SandboxRef, SessionEvent, SessionState,
    TeamId,
};
use sandman::store::{Consistency, Dedupe, ProjectRecord, SessionChanges, SessionWrite, Store, StoreError, keys};
use sandman_local::testkit::TestTable;
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

async fn store() -> Store {
    let table = TestTable::create().await;
    Store::new(table.client.clone(), table.name.clone())
}

fn key(project: &str) -> ProjectKey {
    ProjectKey::new(TeamId::parse("team-a").unwrap(), ProjectId::parse(project).unwrap())
}

fn spec(project: &str, idle_timeout: Duration) -> ProjectSpec {
    ProjectSpec {
        inactivity: Default::default(),
        key: key(project),
        template_id: "base".into(),
        idle: IdlePolicy {
            idle_timeout,
            ..IdlePolicy::default()
        },
        retention: RetentionPolicy::default(),
        sandbox_timeout: Duration::from_secs(900),
        snapshot_before_kill: false,
        public_traffic: false,
    }
}

async fn read(store: &Store, key: &ProjectKey) -> ProjectRecord {
    store
        .get_project(key, Consistency::Strong)
        .await
        .unwrap()
        .expect("project exists")
}

/// A project whose sandbox started and was last active at `active_at`.
async fn running(store: &Store, project: &str, idle_timeout: Duration, active_at: OffsetDateTime) -> ProjectRecord {
    let record = store.put_project(&spec(project, idle_timeout), T0).await.unwrap();
    let start = SessionWrite::new(&record, Actor::User, "open", active_at)
        .event(SessionEvent::Start)
        .changes(SessionChanges {
            session_id: Some(format!("s-{project}")),
            ..Default::default()
        });
    store.write_session(&start).await.unwrap();
    let record = read(store, &record.project.key()).await;
    let started = SessionWrite::new(&record, Actor::User, "created", active_at)
        .event(SessionEvent::Running)
        .changes(SessionChanges {
            sandbox: Some(SandboxRef {
                sandbox_id: format!("sbx-{project}"),
                domain: None,
                access_token: None,
            }),
            last_active_at: Some(active_at),
            ..Default::default()
        });
    store.write_session(&started).await.unwrap();
    read(store, &record.project.key()).await
}

async fn idle_keys(store: &Store, now: OffsetDateTime) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for shard in keys::idle_shards() {
        let mut cursor = None;
        loop {
            let page = store.idle_page(&shard, now, 2, cursor.as_ref()).await.unwrap();
            found.extend(page.items.iter().map(|c| c.key.project.to_string()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    found
}

#[tokio::test]
async fn a_project_round_trips_and_keeps_its_session_when_updated() {
    let store = store().await;
    let record = running(&store, "p1", Duration::from_secs(600), T0).await;
    assert_eq!(record.state(), Some(SessionState::Running));
    assert_eq!(record.version, 2);
    let session = record.session.as_ref().unwrap();
    assert_eq!(session.idle_at, Some(T0 + Duration::from_secs(600)));

    let updated = store
        .put_project(&spec("p1", Duration::from_secs(60)), T0 + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(updated.version, 2, "settings are not a transition");
    assert_eq!(updated.state(), Some(SessionState::Running));
    assert_eq!(updated.project.idle.idle_timeout, Duration::from_secs(60));
    assert_eq!(
        updated.session.unwrap().idle_at,
        Some(T0 + Duration::from_secs(60)),
        "idle deadline follows the new timeout"
    );
    assert_eq!(updated.project.created_at, T0);
}

#[tokio::test]
async fn a_stale_version_or_wrong_state_is_refused_and_changes_nothing() {
    let store = store().await;
    let record = running(&store, "p1", Duration::from_secs(600), T0).await;

    let mut stale = SessionWrite::new(&record, Actor::IdleEnforcer, "idle 10m", T0).event(SessionEvent::Pause);
    stale.expected_version -= 1;
    match store.write_session(&stale).await {
        Err(StoreError::Conflict { current: Some(current) }) => assert_eq!(current.version, record.version),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let mut wrong_state = SessionWrite::new(&record, Actor::IdleEnforcer, "idle 10m", T0).event(SessionEvent::Pause);
    wrong_state.from = Some(SessionState::Paused);
    assert!(
        matches!(store.write_session(&wrong_state).await, Err(StoreError::Refused(_))),
        "PAUSED + PAUSE is refused by the state machine"
    );
    wrong_state.from = Some(SessionState::Resuming);
    wrong_state.event = Some(SessionEvent::Paused);
    assert!(
        matches!(
            store.write_session(&wrong_state).await,
            Err(StoreError::Conflict { .. })
        ),
        "the stored state is RUNNING, not RESUMING"
    );

    assert_eq!(
        read(&store, &record.project.key()).await,
        record,
        "the item is unchanged"
    );
    assert_eq!(
        store
            .list_events(&record.project.key(), None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2,
        "no log line for refused writes"
    );
}

#[tokio::test]
async fn of_many_concurrent_writers_exactly_one_wins() {
    let store = store().await;
    let record = running(&store, "p1", Duration::from_secs(600), T0).await;
    let writers = (0..24).map(|i| {
        let (store, record) = (store.clone(), record.clone());
        tokio::spawn(async move {
            let write =
                SessionWrite::new(&record, Actor::IdleEnforcer, format!("writer {i}"), T0).event(SessionEvent::Pause);
            store.write_session(&write).await
        })
    });
    let results = futures::future::join_all(writers).await;
    let wins = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(StoreError::Conflict { .. }))))
        .count();
    assert_eq!((wins, conflicts), (1, 23));
    let after = read(&store, &record.project.key()).await;
    assert_eq!(
        (after.state(), after.version),
        (Some(SessionState::Pausing), record.version + 1)
    );
    let log = store.list_events(&record.project.key(), None, 50).await.unwrap().items;
    assert_eq!(log.iter().filter(|e| e.to == Some(SessionState::Pausing)).count(), 1);
}

#[tokio::test]
async fn a_session_leaves_the_idle_index_the_moment_it_stops_running() {
    let store = store().await;
    let record = running(&store, "p1", Duration::from_secs(60), T0).await;
    let later = T0 + Duration::from_secs(120);
    assert_eq!(idle_keys(&store, later).await, BTreeSet::from(["p1".to_string()]));

    let claim = SessionWrite {
        idle_by: Some(later),
        ..SessionWrite::new(&record, Actor::IdleEnforcer, "idle 1m", later).event(SessionEvent::Pause)
    };
    store.write_session(&claim).await.unwrap();
    assert!(idle_keys(&store, later).await.is_empty());

    let pausing = read(&store, &record.project.key()).await;
    store
        .write_session(
            &SessionWrite::new(&pausing, Actor::IdleEnforcer, "pause failed", later).event(SessionEvent::Failed),
        )
        .await
        .unwrap();
    assert_eq!(
        idle_keys(&store, later).await,
        BTreeSet::from(["p1".to_string()]),
        "back to RUNNING, still idle: back in the index"
    );
}

#[tokio::test]
async fn the_idle_claim_loses_to_a_heartbeat() {
    let store = store().await;
    let record = running(&store, "p1", Duration::from_secs(60), T0).await;
    let now = T0 + Duration::from_secs(120);
    assert!(
        store
            .record_activity(&record.project.key(), "sbx-p1", now, now - Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_activity(&record.project.key(), "sbx-p1", now, now - Duration::from_secs(30))
            .await
            .unwrap(),
        "throttled"
    );

    let claim = SessionWrite {
        idle_by: Some(now),
        ..SessionWrite::new(&record, Actor::IdleEnforcer, "idle 1m", now).event(SessionEvent::Pause)
    };
    assert!(matches!(
        store.write_session(&claim).await,
        Err(StoreError::Conflict { .. })
    ));
    let after = read(&store, &record.project.key()).await;
    assert_eq!(after.state(), Some(SessionState::Running));
    assert_eq!(after.version, record.version, "heartbeats do not bump the version");
    assert_eq!(after.session.unwrap().last_active_at, now);
}

#[tokio::test]
async fn the_event_log_records_every_transition_newest_first() {
    let store = store().await;
    let mut record = running(&store, "p1", Duration::from_secs(60), T0).await;
    for (i, event) in [
        SessionEvent::Pause,
        SessionEvent::Paused,
        SessionEvent::Resume,
        SessionEvent::Running,
        SessionEvent::Stop,
        SessionEvent::Killed,
    ]
    .into_iter()
    .enumerate()
    {
        let at = T0 + Duration::from_secs(i as u64 + 1);
        store
            .write_session(&SessionWrite::new(&record, Actor::User, format!("step {i}"), at).event(event))
            .await
            .unwrap();
        record = read(&store, &record.project.key()).await;
    }
    let log = store.list_events(&record.project.key(), None, 100).await.unwrap().items;
    let path: Vec<_> = log
        .iter()
        .rev()
        .map(|e| (e.from, e.to.expect("a transition")))
        .collect();
    use SessionState::*;
    assert_eq!(
        path,
        vec![
            (None, Starting),
            (Some(Starting), Running),
            (Some(Running), Pausing),
            (Some(Pausing), Paused),
            (Some(Paused), Resuming),
            (Some(Resuming), Running),
            (Some(Running), Stopping),
            (Some(Stopping), Killed)
        ]
    );
    assert_eq!(log[0].cause, "step 5");
    assert_eq!(log[0].actor, Actor::User);
}

#[tokio::test]
async fn a_redelivered_webhook_event_changes_nothing() {
    let store = store().await;
    let record = running(&store, "p1", Duration::from_secs(60), T0).await;
    let dedupe = Dedupe {
        id: "evt-1".into(),
        expires_at: T0 + Duration::from_secs(3600),
    };
    let write = SessionWrite {
        dedupe: Some(dedupe.clone()),
        ..SessionWrite::new(&record, Actor::Webhook, "e2b paused", T0).event(SessionEvent::Paused)
    };
    store.write_session(&write).await.unwrap();
    let after = read(&store, &record.project.key()).await;
    let again = SessionWrite {
        dedupe: Some(dedupe),
        ..SessionWrite::new(&after, Actor::Webhook, "e2b paused", T0).event(SessionEvent::Killed)
    };
    assert!(matches!(store.write_session(&again).await, Err(StoreError::Duplicate)));
    assert_eq!(read(&store, &record.project.key()).await, after);
}

#[tokio::test]
async fn a_sandbox_id_finds_its_project() {
    let store = store().await;
    running(&store, "p1", Duration::from_secs(60), T0).await;
    let found = store.find_by_sandbox("sbx-p1").await.unwrap().expect("found");
    assert_eq!(found.project.project_id.as_str(), "p1");
    assert!(store.find_by_sandbox("sbx-unknown").await.unwrap().is_none());
}

#[tokio::test]
async fn a_team_lists_only_its_projects() {
    let store = store().await;
    running(&store, "p1", Duration::from_secs(60), T0).await;
    store
        .put_project(&spec("p2", Duration::from_secs(60)), T0)
        .await
        .unwrap();
    let mut other = spec("p3", Duration::from_secs(60));
    other.key.team = TeamId::parse("team-b").unwrap();
    store.put_project(&other, T0).await.unwrap();

    let first = store.list_projects(&key("x").team, None, 1).await.unwrap();
    let second = store
        .list_projects(&key("x").team, first.next.as_ref(), 1)
        .await
        .unwrap();
    let ids: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|p| (p.project_id.to_string(), p.state))
        .collect();
    assert_eq!(
        ids,
        vec![("p1".into(), Some(SessionState::Running)), ("p2".into(), None)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Random fleets: the idle query across all shards returns exactly the running sessions whose own
    /// idle deadline has passed, read two items a page.
    #[test]
    fn the_idle_query_returns_exactly_the_sessions_idle_past_their_deadline(
        fleet in proptest::collection::vec((1u64..=30, 0u64..=60, any::<bool>()), 1..40),
        now_offset in 0u64..=90,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = store().await;
            let now = T0 + Duration::from_secs(now_offset * 60);
            let mut expected = BTreeSet::new();
            let created = fleet.iter().enumerate().map(|(i, (timeout_min, active_min, paused))| {
                let store = store.clone();
                async move {
                    let project = format!("p{i}");
                    let record = running(&store, &project, Duration::from_secs(timeout_min * 60), T0 + Duration::from_secs(active_min * 60)).await;
                    if *paused {
                        store.write_session(&SessionWrite::new(&record, Actor::User, "pause", T0).event(SessionEvent::Paused)).await.unwrap();
                    }
                    project
                }
            });
            futures::future::join_all(created).await;
            for (i, (timeout_min, active_min, paused)) in fleet.iter().enumerate() {
                if !paused && active_min + timeout_min <= now_offset {
                    expected.insert(format!("p{i}"));
                }
            }
            prop_assert_eq!(idle_keys(&store, now).await, expected);
            Ok(())
        })?;
    }
}
