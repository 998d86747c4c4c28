//! The README's walkthrough (`make demo`) against the local stack (`make dev`'s code), with the
//! clock moved by hand instead of waiting for the idle timeout.

use sandman::clock::Clock;
use sandman_local::dev::{DevOptions, dev_token, start};
use sandman_local::testkit::TestTable;
use sandman_local::walkthrough::{Wait, Walkthrough};

#[tokio::test]
async fn the_lifecycle_walkthrough_runs_end_to_end_on_the_local_stack() {
    let table = TestTable::create().await;
    let clock = Clock::manual(time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap());
    let stack = start(DevOptions::walkthrough(table.name.clone(), false, clock.clone()))
        .await
        .expect("the local stack starts");
    let token = dev_token(&stack).expect("a development token");
    let emulator = stack.emulator.as_ref().expect("the stack runs the emulator");
    let wait: Wait<'_> = Box::new(|by| {
        clock.advance(by);
        Box::pin(emulator.advance_clock(by))
    });
    let lines = std::sync::Mutex::new(Vec::new());
    let result = Walkthrough::new(&stack, token, wait, |line| lines.lock().unwrap().push(line.to_string()))
        .run()
        .await;
    const PAUSES: usize = 9;
    let lines = lines.into_inner().unwrap();
    assert!(result.is_ok(), "{:?}\nafter:\n{}", result, lines.join("\n"));
    assert_eq!(lines.len(), 16, "every step ran: {lines:#?}");
    let paused: Vec<_> = emulator
        .deliveries()
        .into_iter()
        .filter(|d| d.event_type == "sandbox.lifecycle.paused")
        .collect();
    assert!(
        paused.iter().all(|d| d.status == Some(200)),
        "the receiver accepted them: {paused:?}"
    );
    // demo idle twice, the two handoffs, `archived`, then the budget pausing what still runs.
    assert_eq!(emulator.calls_to(e2b_emulator::Route::PauseSandbox).len(), PAUSES);
    // The busy sandbox's CPU is read at least once (again if it is still a candidate at a later tick).
    assert!(!emulator.calls_to(e2b_emulator::Route::BatchMetrics).is_empty());
    assert_eq!(
        emulator.calls_to(e2b_emulator::Route::DeleteSnapshot).len(),
        1,
        "the pruner deleted the older snapshot in E2B"
    );
    assert_eq!(
        emulator.snapshots().len(),
        2,
        "demo's newest and `archived`'s archive snapshot"
    );
    let live: Vec<_> = emulator
        .sandboxes()
        .into_iter()
        .filter(|s| s.state == e2b_emulator::SandboxState::Running)
        .collect();
    assert!(live.is_empty(), "the budget paused everything: {live:?}");

    let project = stack
        .sandman
        .project(&sandman::domain::ProjectKey::new(
            sandman::domain::TeamId::parse(sandman_local::dev::DEV_TEAM).unwrap(),
            sandman::domain::ProjectId::parse(sandman_local::walkthrough::PROJECT).unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(
        project.state(),
        Some(sandman::domain::SessionState::Paused),
        "paused by the budget"
    );
    assert_eq!(
        stack.store().all_snapshots(&project.project.key()).await.unwrap().len(),
        1
    );
    let key = |project: &str| {
        sandman::domain::ProjectKey::new(
            sandman::domain::TeamId::parse(sandman_local::dev::DEV_TEAM).unwrap(),
            sandman::domain::ProjectId::parse(project).unwrap(),
        )
    };
    for project in [
        sandman_local::walkthrough::BUSY_PROJECT,
        sandman_local::walkthrough::AGENT_PROJECT,
    ] {
        let record = stack.sandman.project(&key(project)).await.unwrap();
        // Handed off at the cap and running since, until the budget step paused it: the table and
        // E2B agree on the same sandbox.
        assert_eq!(record.state(), Some(sandman::domain::SessionState::Paused), "{project}");
        let sandbox = record.session.and_then(|s| s.sandbox).unwrap().sandbox_id;
        assert_eq!(
            emulator.sandbox(&sandbox).map(|s| s.state),
            Some(e2b_emulator::SandboxState::Paused),
            "{project}'s sandbox is paused in E2B"
        );
    }
    stack.shutdown().await;
}
