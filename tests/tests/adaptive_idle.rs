//! Adaptive idle (`idle.mode: "adaptive"`) against DynamoDB Local and the E2B emulator: the
//! project learns its idle timeout from its own gaps, in the writes Sandman makes anyway (a
//! user's resume after a pause, a heartbeat after a gap), and the enforcer pauses at the learned
//! deadline. Judged by what E2B was asked (pause calls, its sandbox state).

#[path = "enforcer_kit/mod.rs"]
mod kit;

use e2b_emulator::SandboxState as E2bState;
use kit::{MINUTE, e2b_state, pause_calls, record, stack, state};
use sandman::domain::{Actor, IdlePolicy, SessionState};
use sandman::protocol::adaptive::{AdaptiveIdle, COLD_RESUME_WEIGHT, MIN_GAPS};

#[tokio::test]
async fn a_user_who_steps_away_for_15_minutes_stops_being_paused_for_it() {
    let stack = stack(&[]).await;
    let mut spec = stack.spec("habit");
    spec.idle = IdlePolicy {
        idle_timeout: 10 * MINUTE,
        adaptive: Some(AdaptiveIdle {
            min: 2 * MINUTE,
            max: 25 * MINUTE,
            cold_weight: COLD_RESUME_WEIGHT,
        }),
        ..IdlePolicy::default()
    };
    stack.register(&spec).await;
    let key = spec.key.clone();
    let opened = stack.sandman.open(&key, Actor::User).await.expect("opens");
    let sandbox = opened
        .record
        .session
        .and_then(|s| s.sandbox)
        .expect("a sandbox")
        .sandbox_id;

    // Learning: every break of 15 minutes outlasts the first timeout (10): paused, then resumed
    // by the user's next heartbeat, whose resume counts the gap.
    for gap in 1..=MIN_GAPS {
        stack.advance(11 * MINUTE).await;
        assert_eq!(
            stack.sandman.enforce_idle().await.paused,
            1,
            "gap {gap}: paused at 10 minutes"
        );
        stack.advance(4 * MINUTE).await;
        stack.sandman.activity(&key).await.expect("the user is back");
        assert_eq!(state(&stack, &key).await, Some(SessionState::Running));
        assert_eq!(
            record(&stack, &key).await.project.idle_gaps.total(),
            gap,
            "gap {gap} counted"
        );
    }
    let learned = record(&stack, &key).await;
    assert_eq!(
        learned.project.idle.idle_timeout,
        20 * MINUTE,
        "covers the 15-20 minute bucket"
    );
    assert_eq!(pause_calls(&stack, &sandbox), MIN_GAPS as usize);

    // Learned: the same breaks no longer pause the sandbox, and a heartbeat after one (not a
    // resume this time) is counted too.
    for break_number in 1..=3 {
        stack.advance(15 * MINUTE).await;
        assert_eq!(stack.sandman.enforce_idle().await.candidates, 0, "break {break_number}");
        let back = stack.clock.now();
        stack.sandman.activity(&key).await.expect("heartbeat");
        let now = record(&stack, &key).await;
        assert_eq!(now.project.idle_gaps.total(), MIN_GAPS + break_number);
        assert_eq!(now.session.expect("session").idle_at, Some(back + 20 * MINUTE));
    }
    assert_eq!(
        pause_calls(&stack, &sandbox),
        MIN_GAPS as usize,
        "no pause since it learned"
    );
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Running));

    // The learned deadline still pauses a sandbox left alone.
    stack.advance(21 * MINUTE).await;
    assert_eq!(stack.sandman.enforce_idle().await.paused, 1);
    assert_eq!(e2b_state(&stack, &sandbox), Some(E2bState::Paused));
}
