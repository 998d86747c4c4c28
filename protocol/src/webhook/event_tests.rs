use time::macros::datetime;

use super::*;

const SNAKE: &str = r#"{
  "id": "0b6a6f5e-7d52-4a8e-9f3e-2f1f5c7b2a10",
  "version": "v2",
  "type": "sandbox.lifecycle.killed",
  "timestamp": "2026-11-01T12:00:05.250987Z",
  "event_category": "lifecycle",
  "event_label": "kill",
  "sandbox_id": "sbx-1",
  "sandbox_execution_id": "exec-2",
  "sandbox_template_id": "base",
  "sandbox_build_id": "build-1",
  "sandbox_team_id": "team-e2b",
  "event_data": {
    "sandbox_metadata": {"sandmanTeam": "t", "sandmanProject": "p", "sandmanSession": "s1", "count": 3},
    "execution": {"started_at": "2026-11-01T11:58:05Z", "vcpu_count": 2, "memory_mb": 512, "execution_time": 120000},
    "kill_reason": "timeout"
  }
}"#;

const CAMEL: &str = r#"{
  "id": "e-2",
  "version": "v2",
  "type": "sandbox.lifecycle.updated",
  "timestamp": "2026-11-01T12:00:00Z",
  "eventCategory": "lifecycle",
  "sandboxId": "sbx-1",
  "sandboxExecutionId": "exec-2",
  "sandboxTeamId": "team-e2b",
  "eventData": {"sandboxMetadata": {"sandmanSession": "s1"}, "setTimeout": "2026-11-01T12:30:00Z"}
}"#;

#[test]
fn reads_the_snake_case_webhook_payload() {
    let event = LifecycleEvent::parse(SNAKE.as_bytes()).unwrap();
    assert_eq!(event.kind, EventKind::Killed);
    assert_eq!(event.id.as_deref(), Some("0b6a6f5e-7d52-4a8e-9f3e-2f1f5c7b2a10"));
    assert_eq!(
        event.timestamp,
        datetime!(2026-11-01 12:00:05.25 UTC),
        "kept to the millisecond, as stored"
    );
    assert_eq!(event.sandbox_id, "sbx-1");
    assert_eq!(event.execution_id.as_deref(), Some("exec-2"));
    assert_eq!(event.kill_reason.as_deref(), Some("timeout"));
    assert_eq!(event.metadata.get("sandmanSession").map(String::as_str), Some("s1"));
    assert!(
        !event.metadata.contains_key("count"),
        "non-string metadata is dropped, not fatal"
    );
    assert_eq!(
        event.usage(),
        Some(Usage {
            run_seconds: 120.0,
            vcpu_seconds: 240.0,
            memory_mb_seconds: 61_440.0
        })
    );
}

#[test]
fn reads_the_camel_case_shape_of_the_events_api() {
    let event = LifecycleEvent::parse(CAMEL.as_bytes()).unwrap();
    assert_eq!(event.kind, EventKind::Updated);
    assert_eq!(event.sandbox_id, "sbx-1");
    assert_eq!(event.set_timeout, Some(datetime!(2026-11-01 12:30 UTC)));
    assert_eq!(event.metadata.get("sandmanSession").map(String::as_str), Some("s1"));
    assert_eq!(event.usage(), None, "only paused and killed carry usage");
}

#[test]
fn camel_case_execution_fields_are_read_too() {
    let body = r#"{"type":"sandbox.lifecycle.paused","timestamp":"2026-11-01T12:00:00Z","sandboxId":"s",
        "eventData":{"execution":{"vcpuCount":1,"memoryMb":1024,"executionTime":1500}}}"#;
    let event = LifecycleEvent::parse(body.as_bytes()).unwrap();
    assert_eq!(event.id, None);
    assert_eq!(
        event.usage(),
        Some(Usage {
            run_seconds: 1.5,
            vcpu_seconds: 1.5,
            memory_mb_seconds: 1536.0
        })
    );
}

#[test]
fn minimal_events_and_unknown_types_parse() {
    let body = r#"{"id":"x","type":"sandbox.lifecycle.hibernated","timestamp":"2026-11-01T12:00:00+02:00","sandbox_id":"s","event_data":null}"#;
    let event = LifecycleEvent::parse(body.as_bytes()).unwrap();
    assert_eq!(event.kind, EventKind::Other);
    assert_eq!(event.type_name, "sandbox.lifecycle.hibernated");
    assert_eq!(event.timestamp, datetime!(2026-11-01 10:00 UTC));
    assert!(event.metadata.is_empty());
    assert_eq!(event.usage(), None);
}

#[test]
fn an_execution_without_time_adds_no_usage() {
    let body = r#"{"type":"sandbox.lifecycle.paused","timestamp":"2026-11-01T12:00:00Z","sandbox_id":"s","event_data":{"execution":{}}}"#;
    assert_eq!(LifecycleEvent::parse(body.as_bytes()).unwrap().usage(), None);
}

#[test]
fn malformed_bodies_are_refused_with_a_reason() {
    for body in [
        "",
        "not json",
        "[]",
        r#"{"type":"sandbox.lifecycle.paused","sandbox_id":"s"}"#,
        r#"{"type":"sandbox.lifecycle.paused","timestamp":"yesterday","sandbox_id":"s"}"#,
        r#"{"type":"sandbox.lifecycle.paused","timestamp":"2026-11-01T12:00:00Z"}"#,
        r#"{"type":"sandbox.lifecycle.paused","timestamp":"2026-11-01T12:00:00Z","sandbox_id":" "}"#,
        r#"{"type":"sandbox.lifecycle.paused","timestamp":"2026-11-01T12:00:00Z","sandbox_id":"s","sandboxId":"s"}"#,
        r#"{"type":"sandbox.lifecycle.updated","timestamp":"2026-11-01T12:00:00Z","sandbox_id":"s","event_data":{"set_timeout":"soon"}}"#,
    ] {
        let err = LifecycleEvent::parse(body.as_bytes()).expect_err(body);
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn kinds_are_read_with_or_without_the_prefix() {
    assert_eq!(EventKind::parse("sandbox.lifecycle.resumed"), EventKind::Resumed);
    assert_eq!(EventKind::parse("checkpointed"), EventKind::Checkpointed);
    assert_eq!(EventKind::parse("sandbox.lifecycle."), EventKind::Other);
}

/// Security review L3: a report of negative vCPUs or memory adds nothing negative to usage.
#[test]
fn negative_execution_figures_count_as_zero() {
    let body = SNAKE
        .replace(r#""vcpu_count": 2"#, r#""vcpu_count": -4"#)
        .replace(r#""memory_mb": 512"#, r#""memory_mb": -1e12"#);
    let usage = LifecycleEvent::parse(body.as_bytes()).unwrap().usage().unwrap();
    assert_eq!(usage.run_seconds, 120.0);
    assert_eq!(usage.vcpu_seconds, 0.0, "{usage:?}");
    assert_eq!(usage.memory_mb_seconds, 0.0, "{usage:?}");
}
