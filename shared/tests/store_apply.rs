//! The store's session transaction against `record::apply`, its meaning as a pure function: the
//! model checker applies writes with `apply`, so the two must agree on every write. Random writes
//! (legal and illegal events, every kind of change, stale versions and states, idle conditions)
//! go to DynamoDB Local and to `apply`; the item read back must be what `apply` says, and every
//! refusal the same refusal.

use std::time::Duration;

use sandman::domain::{
    Actor, IdlePolicy, ProjectId, ProjectKey, ProjectSpec, RetentionPolicy, SandboxRef, Secret, SessionEvent,
    SessionState, SnapshotId, TeamId,
};
use sandman::protocol::record::{ApplyError, apply};
use sandman::store::{Consistency, FailureCount, Field, ProjectRecord, SessionWrite, Store, StoreError};
use sandman_local::testkit::TestTable;
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

fn spec(project: &str) -> ProjectSpec {
    ProjectSpec {
        inactivity: Default::default(),
        key: ProjectKey::new(TeamId::parse("team-a").unwrap(), ProjectId::parse(project).unwrap()),
        template_id: "base".into(),
        idle: IdlePolicy {
            idle_timeout: Duration::from_secs(600),
            ..IdlePolicy::default()
        },
        retention: RetentionPolicy::default(),
        sandbox_timeout: Duration::from_secs(900),
        snapshot_before_kill: false,
        public_traffic: false,
    }
}

fn pick<T: Clone>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())].clone()
}

fn field<T: Clone>(rng: &mut fastrand::Rng, value: T) -> Field<T> {
    pick(rng, &[Field::Keep, Field::Keep, Field::Set(value), Field::Clear])
}

fn sometimes<T>(rng: &mut fastrand::Rng, value: T) -> Option<T> {
    rng.bool().then_some(value)
}

/// A write someone could send after reading `record` (or a stale one: another version or state).
fn random_write(rng: &mut fastrand::Rng, record: &ProjectRecord, at: OffsetDateTime, n: usize) -> SessionWrite {
    let mut write = SessionWrite::new(
        record,
        pick(rng, &[Actor::User, Actor::Webhook, Actor::Reconciler]),
        "test",
        at,
    );
    if rng.u8(..10) == 0 {
        write.expected_version += 1;
    }
    if rng.u8(..10) == 0 {
        write.from = pick(rng, &[None, Some(SessionState::Running), Some(SessionState::Paused)]);
    }
    write.event = if rng.u8(..5) == 0 {
        None
    } else {
        Some(pick(rng, &SessionEvent::ALL))
    };
    if record.session.is_none() && write.event.is_none() {
        // No writer changes a session that does not exist: the first write of one is a claim.
        write.event = Some(SessionEvent::Start);
    }
    if write.from.is_none() && write.event.is_some() {
        // A first claim always names its session (the decoder drops a session without one).
        write.changes.session_id = Some(format!("s{n}"));
    }
    let c = &mut write.changes;
    if rng.u8(..4) == 0 {
        c.session_id = Some(format!("s{n}"));
    }
    if rng.u8(..3) == 0 {
        c.sandbox = Some(SandboxRef {
            sandbox_id: format!("sbx{n}"),
            domain: sometimes(rng, "e2b.app".to_string()),
            access_token: sometimes(rng, Secret::new(format!("token{n}"))),
        });
    }
    let active = at - time::Duration::seconds(rng.i64(0..30));
    c.last_active_at = sometimes(rng, active);
    c.timeout_at = sometimes(rng, at + time::Duration::minutes(15));
    c.last_error = field(rng, format!("error {n}"));
    c.failures = pick(rng, &[FailureCount::Keep, FailureCount::Reset, FailureCount::Increment]);
    c.restored_from = field(rng, SnapshotId::parse(format!("snap{n}")).unwrap());
    c.replaces_session = field(rng, format!("old{n}"));
    c.event_at = sometimes(rng, at - time::Duration::seconds(1));
    if rng.u8(..6) == 0 {
        c.retiring = Some(format!("retiring{n}"));
    }
    // Only the enforcer names an idle deadline, one it read from a session. (A project item without
    // a session holds `idleAt` from its settings, outside the index and outside the decoded record.)
    if record.session.is_some() && rng.u8(..4) == 0 {
        write.idle_by = Some(at + time::Duration::seconds(rng.i64(-900..900)));
    }
    write
}

#[tokio::test]
async fn the_store_does_what_record_apply_says_for_every_write() {
    let table = TestTable::create().await;
    let store = Store::new(table.client.clone(), table.name.clone());
    let mut rng = fastrand::Rng::with_seed(20261206);
    let (mut applied, mut refused, mut conflicts) = (0, 0, 0);
    let mut at = T0;
    for project in 0..12 {
        let spec = spec(&format!("p{project}"));
        let mut record = store.put_project(&spec, T0).await.unwrap();
        for step in 0..40 {
            at += time::Duration::milliseconds(rng.i64(1..20_000));
            let write = random_write(&mut rng, &record, at, project * 100 + step);
            let expected = apply(&record, &write);
            let got = store.write_session(&write).await;
            let context = format!("project {project} step {step}: {write:?}");
            match (expected, got) {
                (Ok((next, written)), Ok(stored)) => {
                    assert_eq!(stored, written, "{context}");
                    let read = store
                        .get_project(&spec.key, Consistency::Strong)
                        .await
                        .unwrap()
                        .unwrap();
                    assert_eq!(read, next, "{context}");
                    record = read;
                    applied += 1;
                }
                (Err(ApplyError::Refused(a)), Err(StoreError::Refused(b))) => {
                    assert_eq!(a, b, "{context}");
                    refused += 1;
                }
                (Err(ApplyError::Conflict), Err(StoreError::Conflict { .. })) => conflicts += 1,
                (expected, got) => panic!("{context}\napply: {expected:?}\nstore: {got:?}"),
            }
        }
    }
    println!("judged {applied} applied writes, {refused} refusals, {conflicts} conflicts");
    assert!(
        applied > 100 && refused > 20 && conflicts > 20,
        "{applied} {refused} {conflicts}"
    );
}
