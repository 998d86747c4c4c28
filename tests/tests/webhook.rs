//! E2B's lifecycle webhooks, delivered for real by the emulator (signed, retried, duplicated,
//! reordered on demand) to the webhook router served on 127.0.0.1, against DynamoDB Local.
//! Each test asserts what the table holds afterwards.

#[path = "webhook/support.rs"]
mod support;

use std::time::Duration;

use e2b_emulator::WebhookFaults;
use sandman::domain::{Actor, SessionState};
use sandman::e2b::{NewSandbox, SandboxNetwork};
use sandman::sandbox_metadata;
use sandman::store::{SessionChanges, SessionWrite};
use sandman::workspace::{PauseOutcome, PauseRequest};
use support::{Hooks, assert_usage, timestamp_in, usage_in};

/// Event times as the table keeps them (milliseconds).
fn whole_millis(at: time::OffsetDateTime) -> time::OffsetDateTime {
    at.replace_millisecond(at.millisecond()).expect("valid")
}

async fn idle_index_holds(hooks: &Hooks, key: &sandman::domain::ProjectKey) -> bool {
    let far = hooks.stack.clock.now() + Duration::from_secs(365 * 24 * 3600);
    hooks
        .stack
        .store()
        .idle_candidates(far, 25)
        .await
        .expect("readable")
        .iter()
        .any(|c| c.key == *key)
}

#[tokio::test]
async fn created_confirms_what_the_api_wrote() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let created = hooks.delivered("created");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0.status, Some(200));
    assert_eq!(created[0].1["sandbox_id"], sandbox.as_str());
    let record = hooks.record(&key).await;
    assert_eq!(
        (record.state(), record.version),
        (Some(SessionState::Running), 2),
        "start + running, nothing from the webhook"
    );
    assert_eq!(record.session.unwrap().last_actor, Actor::User);
    assert_eq!(hooks.log(&key).await.len(), 2);
}

#[tokio::test]
async fn an_e2b_timeout_pause_is_recorded_with_its_compute() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    assert!(idle_index_holds(&hooks, &key).await);
    hooks.stack.advance(Duration::from_secs(1801)).await;
    hooks.settle().await;

    let paused = hooks.delivered("paused");
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].0.status, Some(200));
    let record = hooks.record(&key).await;
    assert_eq!((record.state(), record.version), (Some(SessionState::Paused), 3));
    let session = record.session.unwrap();
    assert_eq!(
        (session.last_actor, session.last_cause.as_str()),
        (Actor::Webhook, "e2b: paused (timeout)")
    );
    assert_eq!(session.state_since, timestamp_in(&paused[0].1));
    assert_eq!(session.last_event_at, Some(timestamp_in(&paused[0].1)));
    assert!(usage_in(&paused[0].1).run_seconds >= 1800.0);
    assert_usage(session.usage, usage_in(&paused[0].1));
    assert!(
        !idle_index_holds(&hooks, &key).await,
        "only RUNNING sessions are in the idle index"
    );
    let log = hooks.log(&key).await;
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[0].actor, log[0].from, log[0].to.expect("a transition")),
        (Actor::Webhook, Some(SessionState::Running), SessionState::Paused)
    );
    assert_eq!(log[0].cause, "e2b: paused (timeout)");
    assert_eq!(
        hooks.stack.emulator.sandbox(&sandbox).map(|s| s.state),
        Some(e2b_emulator::SandboxState::Paused)
    );
}

#[tokio::test]
async fn a_resume_started_elsewhere_runs_the_session() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    hooks.stack.advance(Duration::from_secs(1801)).await;
    hooks.settle().await;
    let before = hooks.record(&key).await;
    assert_eq!(before.state(), Some(SessionState::Paused));

    hooks
        .e2b()
        .connect(&sandbox, Duration::from_secs(600))
        .await
        .expect("resumed outside Sandman");
    hooks.settle().await;
    let resumed = hooks.delivered("resumed");
    assert_eq!(resumed.len(), 1);
    let at = timestamp_in(&resumed[0].1);
    let record = hooks.record(&key).await;
    assert_eq!((record.state(), record.version), (Some(SessionState::Running), 4));
    let session = record.session.unwrap();
    assert_eq!(
        (session.last_actor, session.last_cause.as_str()),
        (Actor::Webhook, "e2b: resumed")
    );
    assert_eq!(session.last_active_at, at, "a resumed sandbox gets a full idle timeout");
    assert_eq!(session.idle_at, Some(at + record.project.idle.idle_timeout));
    assert_eq!(
        session.sandbox,
        before.session.unwrap().sandbox,
        "the stored sandbox is kept, domain included"
    );
    assert!(idle_index_holds(&hooks, &key).await);
    assert_eq!(hooks.log(&key).await[0].to, Some(SessionState::Running));
}

#[tokio::test]
async fn a_kill_by_e2b_ends_the_session_and_counts_its_compute() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    hooks.stack.advance(Duration::from_secs(120)).await;
    hooks.e2b().kill(&sandbox).await.expect("killed outside Sandman");
    hooks.settle().await;

    let killed = hooks.delivered("killed");
    assert_eq!(killed.len(), 1);
    let record = hooks.record(&key).await;
    assert_eq!((record.state(), record.version), (Some(SessionState::Killed), 3));
    let session = record.session.unwrap();
    assert_eq!(session.last_cause, "e2b: killed (request)");
    assert_usage(session.usage, usage_in(&killed[0].1));
    assert!(session.usage.run_seconds >= 120.0);
    assert!(!idle_index_holds(&hooks, &key).await);
    let log = hooks.log(&key).await;
    assert_eq!(
        (log[0].actor, log[0].to.expect("a transition")),
        (Actor::Webhook, SessionState::Killed)
    );
}

#[tokio::test]
async fn an_updated_timeout_is_refreshed_without_a_transition() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    hooks
        .e2b()
        .set_timeout(&sandbox, Duration::from_secs(7200))
        .await
        .expect("timeout set");
    hooks.settle().await;

    let updated = hooks.delivered("updated");
    assert_eq!(updated.len(), 1);
    let set_timeout = time::OffsetDateTime::parse(
        updated[0].1["event_data"]["set_timeout"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let record = hooks.record(&key).await;
    assert_eq!((record.state(), record.version), (Some(SessionState::Running), 3));
    let session = record.session.unwrap();
    assert_eq!(
        session.timeout_at,
        Some(set_timeout.replace_millisecond(set_timeout.millisecond()).unwrap())
    );
    assert_eq!(session.last_actor, Actor::User, "no transition, so no actor change");
    assert_eq!(hooks.log(&key).await.len(), 2, "no lifecycle line for a refresh");
}

#[tokio::test]
async fn a_checkpoint_is_acknowledged_and_changes_nothing() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let before = hooks.record(&key).await;
    hooks
        .e2b()
        .create_snapshot(&sandbox, Some("cp"))
        .await
        .expect("snapshot");
    hooks.settle().await;
    let checkpointed = hooks.delivered("checkpointed");
    assert_eq!(checkpointed.len(), 1);
    assert_eq!(checkpointed[0].0.status, Some(200));
    assert_eq!(hooks.record(&key).await, before);
}

#[tokio::test]
async fn duplicate_deliveries_apply_once() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        duplicate: true,
        ..WebhookFaults::default()
    });
    hooks.stack.advance(Duration::from_secs(60)).await;
    hooks.e2b().pause(&sandbox).await.expect("paused outside Sandman");
    hooks.settle().await;

    let paused = hooks.delivered("paused");
    assert_eq!(paused.len(), 2, "the emulator sent the event twice");
    assert_eq!(paused[0].1["id"], paused[1].1["id"]);
    assert_ne!(paused[0].0.delivery_id, paused[1].0.delivery_id);
    assert!(
        paused.iter().all(|(d, _)| d.status == Some(200)),
        "a duplicate is acknowledged"
    );
    let record = hooks.record(&key).await;
    assert_eq!((record.state(), record.version), (Some(SessionState::Paused), 3));
    assert_usage(record.session.as_ref().unwrap().usage, usage_in(&paused[0].1));
    assert_eq!(hooks.log(&key).await.len(), 3, "one PAUSED line");

    let (delivery, _) = &paused[0];
    let signature = delivery.headers.get("e2b-signature").map(String::as_str);
    let (status, answer) = hooks.post(delivery.body.as_bytes(), signature).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        matches!(answer["outcome"].as_str(), Some("duplicate" | "ignored")),
        "{answer}"
    );
    assert_eq!(hooks.record(&key).await, record, "a replay changes nothing");
}

#[tokio::test]
async fn a_late_paused_does_not_undo_a_resume() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    // Held until settled (or 5 s), then delivered newest first.
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        reorder: true,
        delay: Duration::from_secs(5),
        ..WebhookFaults::default()
    });
    hooks.stack.advance(Duration::from_secs(30)).await;
    hooks.e2b().pause(&sandbox).await.expect("paused");
    // Stored event times are milliseconds: keep the two events apart.
    hooks.stack.advance(Duration::from_secs(1)).await;
    hooks
        .e2b()
        .connect(&sandbox, Duration::from_secs(600))
        .await
        .expect("resumed");
    hooks.settle().await;

    let order: Vec<String> = hooks
        .stack
        .emulator
        .deliveries()
        .iter()
        .map(|d| d.event_type.clone())
        .collect();
    let position = |t: &str| order.iter().position(|o| o == t).expect("delivered");
    assert!(
        position("sandbox.lifecycle.resumed") < position("sandbox.lifecycle.paused"),
        "newest first: {order:?}"
    );
    let (paused, resumed) = (&hooks.delivered("paused")[0].1, &hooks.delivered("resumed")[0].1);
    assert!(timestamp_in(paused) < timestamp_in(resumed));

    let record = hooks.record(&key).await;
    assert_eq!(
        record.state(),
        Some(SessionState::Running),
        "the late pause must not undo the resume"
    );
    let session = record.session.unwrap();
    assert_eq!(session.last_event_at, Some(timestamp_in(resumed)));
    assert_usage(session.usage, usage_in(paused));
    let log = hooks.log(&key).await;
    assert_eq!(
        log.len(),
        2,
        "no transition at all, RUNNING throughout as far as the table knows: {log:#?}"
    );
}

#[tokio::test]
async fn compute_is_counted_when_sandman_paused_first() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    // E2B's event arrives after Sandman has recorded PAUSED itself.
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        delay: Duration::from_millis(300),
        ..WebhookFaults::default()
    });
    hooks.stack.advance(Duration::from_secs(90)).await;
    let record = hooks.record(&key).await;
    let pause = PauseRequest {
        key: key.clone(),
        expected_version: record.version,
        sandbox_id: sandbox.clone(),
        actor: Actor::User,
        cause: "user".into(),
        idle_by: None,
        snapshot_first: false,
    };
    assert!(matches!(
        hooks.stack.sandman.pause(pause).await.unwrap(),
        PauseOutcome::Paused
    ));
    hooks.settle().await;

    let paused = hooks.delivered("paused");
    assert_eq!(paused.len(), 1);
    let record = hooks.record(&key).await;
    assert_eq!(record.state(), Some(SessionState::Paused));
    let session = record.session.unwrap();
    assert_usage(session.usage, usage_in(&paused[0].1));
    let log = hooks.log(&key).await;
    assert_eq!(log.iter().filter(|l| l.to == Some(SessionState::Paused)).count(), 1);
}

#[tokio::test]
async fn events_about_an_older_sandbox_change_nothing() {
    let hooks = Hooks::start().await;
    let (key, first) = hooks.running("app").await;
    // The old sandbox's `killed` arrives after the project already has a new one.
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        delay: Duration::from_secs(1),
        ..WebhookFaults::default()
    });
    hooks
        .stack
        .sandman
        .kill(&key, Some(false), Actor::User)
        .await
        .expect("killed");
    let reopened = hooks.stack.sandman.open(&key, Actor::User).await.expect("reopened");
    let second = reopened
        .record
        .session
        .as_ref()
        .and_then(|s| s.sandbox.clone())
        .unwrap()
        .sandbox_id;
    assert_ne!(first, second);
    let before = hooks.record(&key).await;
    hooks.settle().await;

    let killed = hooks.delivered("killed");
    assert_eq!(
        (killed.len(), killed[0].1["sandbox_id"].as_str()),
        (1, Some(first.as_str()))
    );
    assert_eq!(killed[0].0.status, Some(200));
    let after = hooks.record(&key).await;
    assert_eq!(
        (after.state(), after.version, after.sandbox_id()),
        (before.state(), before.version, before.sandbox_id()),
        "acknowledged, the session unchanged"
    );
    assert_eq!(after.state(), Some(SessionState::Running));
    assert!(
        after.session.unwrap().usage.run_seconds > before.session.unwrap().usage.run_seconds,
        "the old sandbox's last run is still counted"
    );
}

#[tokio::test]
async fn a_start_abandoned_by_its_writer_is_completed_by_created() {
    let hooks = Hooks::start().await;
    let key = hooks.stack.key("app");
    let record = hooks.stack.register(&hooks.stack.spec("app")).await;
    let start = SessionWrite::new(&record, Actor::User, "open", hooks.stack.clock.now())
        .event(sandman::domain::SessionEvent::Start)
        .changes(SessionChanges {
            session_id: Some("s-abandoned".into()),
            ..SessionChanges::default()
        });
    hooks.stack.store().write_session(&start).await.expect("STARTING");
    // Sandman's writer is gone for longer than `stuck_after`; E2B made the sandbox meanwhile.
    hooks.stack.clock.advance(Duration::from_secs(301));
    let new = NewSandbox {
        template_id: "base".into(),
        timeout: Duration::from_secs(600),
        auto_pause: true,
        metadata: sandbox_metadata::for_session(&key, "s-abandoned"),
        env_vars: Default::default(),
        secure: true,
        network: SandboxNetwork {
            allow_public_traffic: false,
            rules: Default::default(),
        },
    };
    let sandbox = hooks.e2b().create_sandbox(&new).await.expect("created").sandbox_id;
    hooks.settle().await;

    let record = hooks.record(&key).await;
    assert_eq!((record.state(), record.version), (Some(SessionState::Running), 2));
    let session = record.session.unwrap();
    assert_eq!(session.sandbox.map(|s| s.sandbox_id), Some(sandbox));
    assert_eq!(
        (session.last_actor, session.last_cause.as_str()),
        (Actor::Webhook, "e2b: created")
    );
    assert!(idle_index_holds(&hooks, &key).await);
}

#[tokio::test]
async fn a_recent_start_is_left_to_its_writer() {
    let hooks = Hooks::start().await;
    let key = hooks.stack.key("app");
    let record = hooks.stack.register(&hooks.stack.spec("app")).await;
    let start = SessionWrite::new(&record, Actor::User, "open", hooks.stack.clock.now())
        .event(sandman::domain::SessionEvent::Start)
        .changes(SessionChanges {
            session_id: Some("s-live".into()),
            ..SessionChanges::default()
        });
    hooks.stack.store().write_session(&start).await.expect("STARTING");
    let before = hooks.record(&key).await;
    let new = NewSandbox {
        template_id: "base".into(),
        timeout: Duration::from_secs(600),
        auto_pause: true,
        metadata: sandbox_metadata::for_session(&key, "s-live"),
        env_vars: Default::default(),
        secure: true,
        network: SandboxNetwork {
            allow_public_traffic: false,
            rules: Default::default(),
        },
    };
    hooks.e2b().create_sandbox(&new).await.expect("created");
    hooks.settle().await;
    assert_eq!(hooks.delivered("created").len(), 1);
    assert_eq!(
        hooks.record(&key).await,
        before,
        "the API records RUNNING with everything it knows"
    );
}

#[tokio::test]
async fn one_delivery_posted_four_times_at_once_applies_once() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let before = hooks.record(&key).await;
    let session = before.session.as_ref().unwrap().session_id.clone();
    let at = whole_millis(hooks.stack.emulator.now()) + Duration::from_secs(1);
    let body = support::event_body("evt-once", "paused", at, &sandbox, support::metadata_of(&key, &session));
    let signature = sandman::webhook::sign(support::WEBHOOK_SECRET, &body);
    // The same bytes four times concurrently, as E2B's retries or a duplicating network send them.
    let posts = (0..4).map(|_| hooks.post(&body, Some(&signature)));
    let answers = futures::future::join_all(posts).await;

    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let outcomes = |outcome: &str| answers.iter().filter(|(_, a)| a["outcome"] == outcome).count();
    assert_eq!(
        (outcomes("applied"), outcomes("duplicate") + outcomes("ignored")),
        (1, 3),
        "{answers:?}"
    );
    let record = hooks.record(&key).await;
    assert_eq!(
        (record.state(), record.version),
        (Some(SessionState::Paused), before.version + 1),
        "one transition"
    );
    let written = record.session.unwrap();
    assert_eq!(written.usage.run_seconds, 30.0, "the event's compute counted once");
    assert_eq!(written.last_event_at, Some(at));
    let log = hooks.log(&key).await;
    assert_eq!(log.len(), 3, "start, running, one PAUSED line: {log:?}");
    assert_eq!(log[0].to, Some(SessionState::Paused));
}

#[tokio::test]
async fn racing_events_for_one_session_each_apply_once() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    let session = hooks.record(&key).await.session.unwrap().session_id;
    let start = whole_millis(hooks.stack.emulator.now());
    // Four different reports racing on one session item: losers re-read and decide again (at most
    // three losses each, within the receiver's four attempts).
    let signed: Vec<(Vec<u8>, String)> = (0..4)
        .map(|n| {
            let at = start + Duration::from_secs(n + 1);
            let metadata = support::metadata_of(&key, &session);
            let mut body: serde_json::Value = serde_json::from_slice(&support::event_body(
                &format!("evt-{n}"),
                "paused",
                at,
                &sandbox,
                metadata,
            ))
            .unwrap();
            // Four runs of the sandbox, each reported once.
            body["sandbox_execution_id"] = format!("exec-{n}").into();
            let body = serde_json::to_vec(&body).unwrap();
            let signature = sandman::webhook::sign(support::WEBHOOK_SECRET, &body);
            (body, signature)
        })
        .collect();
    let posts = signed.iter().map(|(body, signature)| hooks.post(body, Some(signature)));
    let answers = futures::future::join_all(posts).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    assert!(
        answers.iter().any(|(_, answer)| answer["outcome"] == "applied"),
        "{answers:?}"
    );

    let record = hooks.record(&key).await;
    assert_eq!(record.state(), Some(SessionState::Paused));
    let session = record.session.unwrap();
    assert_eq!(
        session.usage.run_seconds,
        4.0 * 30.0,
        "each event's compute counted exactly once"
    );
    assert_eq!(
        session.last_event_at,
        Some(start + Duration::from_secs(4)),
        "the newest event's time is kept, whichever order they were applied in"
    );
    let log = hooks.log(&key).await;
    assert_eq!(log.iter().filter(|l| l.to == Some(SessionState::Paused)).count(), 1);
}

#[tokio::test]
async fn concurrent_out_of_order_deliveries_leave_the_state_e2b_ended_in() {
    let hooks = Hooks::start().await;
    let (key, sandbox) = hooks.running("app").await;
    // Each first attempt in its own task after up to 300 ms: arrival order is anyone's.
    hooks.stack.emulator.set_webhook_faults(WebhookFaults {
        concurrent: true,
        jitter: Duration::from_millis(300),
        duplicate: true,
        ..WebhookFaults::default()
    });
    hooks.stack.advance(Duration::from_secs(30)).await;
    for round in 0..3 {
        hooks.e2b().pause(&sandbox).await.expect("paused");
        hooks.stack.advance(Duration::from_secs(1)).await;
        if round < 2 {
            hooks
                .e2b()
                .connect(&sandbox, Duration::from_secs(600))
                .await
                .expect("resumed");
            hooks.stack.advance(Duration::from_secs(1)).await;
        }
    }
    hooks.settle().await;

    assert_eq!(hooks.delivered("paused").len(), 6, "three pauses, each sent twice");
    let record = hooks.record(&key).await;
    assert_eq!(record.state(), Some(SessionState::Paused), "E2B ended paused");
    let newest = hooks
        .delivered("paused")
        .iter()
        .map(|(_, body)| timestamp_in(body))
        .max();
    assert_eq!(record.session.unwrap().last_event_at, newest);
}
