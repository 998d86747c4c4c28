//! Holds on a snapshot (concurrency review #4): each fork keeps its source's snapshot until its
//! own first open, whatever other forks and the source's restores do; a fork request that loses
//! its name takes back only its own hold; a fork deleted unopened gives its hold back.

use sandman::Error;
use sandman::domain::{Actor, ProjectId, ProjectKey, Snapshot, SnapshotKind};
use sandman::fork::ForkFrom;
use sandman_local::testkit::TestStack;
use time::OffsetDateTime;

fn id(project: &str) -> ProjectId {
    ProjectId::parse(project).unwrap()
}

async fn fork(stack: &TestStack, source: &ProjectKey, snapshot: &Snapshot, project: &str) -> Result<(), Error> {
    let from = ForkFrom::Snapshot(Some(snapshot.snapshot_id.clone()));
    stack.sandman.fork(source, id(project), from).await.map(|_| ())
}

/// Until when the snapshot is held, as the pruner and a user's delete read it.
async fn held_until(stack: &TestStack, key: &ProjectKey, snapshot: &Snapshot) -> Option<OffsetDateTime> {
    let row = stack.store().get_snapshot(key, &snapshot.snapshot_id).await.unwrap();
    row.expect("the snapshot is there")
        .held_until
        .filter(|until| *until > stack.clock.now())
}

#[tokio::test]
async fn each_fork_keeps_its_snapshot_until_its_own_first_open() {
    let stack = TestStack::start().await;
    let source = stack.key("app");
    stack.register(&stack.spec("app")).await;
    stack
        .sandman
        .open(&source, Actor::User)
        .await
        .expect("the source opens");
    let record = stack.sandman.project(&source).await.unwrap();
    let snapshot = stack
        .sandman
        .create_snapshot(&record, SnapshotKind::Manual, "base".into())
        .await
        .expect("a snapshot");
    for project in ["one", "two"] {
        fork(&stack, &source, &snapshot, project).await.expect("forked");
    }
    assert!(
        matches!(fork(&stack, &source, &snapshot, "two").await, Err(Error::Conflict(_))),
        "the name is taken"
    );
    assert!(
        held_until(&stack, &source, &snapshot).await.is_some(),
        "the losing request took back only its own hold"
    );

    stack
        .sandman
        .open(&stack.key("one"), Actor::User)
        .await
        .expect("the first fork opens");
    assert!(
        held_until(&stack, &source, &snapshot).await.is_some(),
        "the second fork has not opened: its hold stays"
    );

    // A restore of the source from the same snapshot holds it and releases its own hold only.
    stack
        .sandman
        .restore(&source, &snapshot.snapshot_id, Actor::User)
        .await
        .expect("the source restores");
    assert!(
        held_until(&stack, &source, &snapshot).await.is_some(),
        "a restore's release leaves the forks' hold"
    );

    stack
        .sandman
        .delete_project(&stack.key("two"))
        .await
        .expect("the unopened fork is deleted");
    assert_eq!(
        held_until(&stack, &source, &snapshot).await,
        None,
        "every fork has given its hold back"
    );
}
