use time::macros::datetime;

use super::*;
use crate::domain::{Actor, LifecycleRecord, SessionState};

fn secret() -> SigningSecret {
    SigningSecret::from_bytes(b"a signing secret of 32 bytes....".to_vec()).unwrap()
}

#[test]
fn the_signature_is_hmac_sha256_over_id_timestamp_and_body() {
    // RFC 4231-style check of the construction: recomputed by hand from SHA-256.
    use sha2::{Digest, Sha256};
    let key = b"a signing secret of 32 bytes....";
    let message = b"msg_1.1700000000.{\"a\":1}";
    let mut padded = [0u8; 64];
    padded[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(padded.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(padded.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    use base64::Engine;
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(outer));
    assert_eq!(sign(&secret(), "msg_1", 1_700_000_000, br#"{"a":1}"#), expected);
}

#[test]
fn secrets_round_trip_through_their_shown_form_and_bad_ones_are_refused() {
    let shown = secret().expose();
    assert!(shown.starts_with("whsec_"));
    assert_eq!(SigningSecret::parse(&shown).unwrap().expose(), shown);
    for bad in ["", "whsec_", "whsec_!!!", "abc", "whsec_c2hvcnQ="] {
        assert_eq!(
            SigningSecret::parse(bad).unwrap_err(),
            SigningSecretError::Malformed,
            "{bad:?}"
        );
    }
    assert_eq!(format!("{:?}", secret()), "SigningSecret(..)");
}

#[test]
fn a_message_names_the_transition_its_actor_and_cause() {
    let record = LifecycleRecord {
        at: datetime!(2026-11-27 12:00 UTC),
        actor: Actor::IdleEnforcer,
        cause: "idle for 600s".into(),
        from: Some(SessionState::Pausing),
        to: Some(SessionState::Paused),
        sandbox_id: Some("sbx1".into()),
    };
    let json = serde_json::to_value(Message::of("p1", &record).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"type": "sandbox.paused", "timestamp": "2026-11-27T12:00:00Z",
            "data": {"projectId": "p1", "from": "PAUSING", "to": "PAUSED", "actor": "idle-enforcer", "cause": "idle for 600s", "sandboxId": "sbx1"}})
    );
    assert_eq!(
        event_type(Some(SessionState::Resuming), SessionState::Running),
        "sandbox.resumed"
    );
    assert_eq!(
        event_type(Some(SessionState::Starting), SessionState::Running),
        "sandbox.running"
    );
}

fn record(
    event_name: &str,
    keys: serde_json::Value,
    new: Option<serde_json::Value>,
    old: Option<serde_json::Value>,
) -> StreamRecord {
    serde_json::from_value(serde_json::json!({
        "eventName": event_name,
        "dynamodb": { "Keys": keys, "NewImage": new, "OldImage": old },
    }))
    .unwrap()
}

fn log_line(from: Option<&str>, to: &str, restored: bool) -> StreamRecord {
    let mut image = serde_json::json!({
        "pk": {"S": "PROJECT#t1#p1"}, "sk": {"S": "EVENT#01JZZZZZZZZZZZZZZZZZZZZZZZ"},
        "at": {"N": "1795000000000"}, "actor": {"S": "user"}, "cause": {"S": "opened"},
        "to": {"S": to}, "sandboxId": {"S": "sbx1"},
    });
    if let Some(from) = from {
        image["from"] = serde_json::json!({"S": from});
    }
    if restored {
        image["restoredFrom"] = serde_json::json!({"S": "01JSNAP"});
    }
    record(
        "INSERT",
        serde_json::json!({"pk": {"S": "PROJECT#t1#p1"}, "sk": {"S": "EVENT#01JZZZZZZZZZZZZZZZZZZZZZZZ"}}),
        Some(image),
        None,
    )
}

const NOW: time::OffsetDateTime = datetime!(2026-11-28 00:00 UTC);

#[test]
fn a_lifecycle_log_line_becomes_its_event_with_actor_and_cause() {
    let event = classify(&log_line(Some("STARTING"), "RUNNING", false), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(event.event_type, EventType::SandboxRunning);
    assert_eq!(event.team.as_str(), "t1");
    assert_eq!(event.id, "msg_01JZZZZZZZZZZZZZZZZZZZZZZZ");
    let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(body["type"], "sandbox.running");
    assert_eq!(body["data"]["actor"], "user");
    assert_eq!(body["data"]["cause"], "opened");
    assert_eq!(body["data"]["projectId"], "p1");
    let kinds = [
        (Some("STARTING"), "RUNNING", true, EventType::SandboxRestored),
        (Some("RESUMING"), "RUNNING", false, EventType::SandboxResumed),
        (Some("PAUSING"), "PAUSED", false, EventType::SandboxPaused),
        (Some("STOPPING"), "KILLED", false, EventType::SandboxKilled),
        (None, "STARTING", false, EventType::SandboxStarting),
    ];
    for (from, to, restored, expected) in kinds {
        let event = classify(&log_line(from, to, restored), NOW).unwrap().unwrap();
        assert_eq!(event.event_type, expected, "{from:?} -> {to}");
    }
}

#[test]
fn snapshots_are_events_when_they_become_ready_and_when_a_ready_one_is_removed() {
    let keys = serde_json::json!({"pk": {"S": "PROJECT#t1#p1"}, "sk": {"S": "SNAPSHOT#01JSNAP"}});
    let image = |status: &str| Some(serde_json::json!({"status": {"S": status}, "kind": {"S": "manual"}}));
    let created = classify(&record("MODIFY", keys.clone(), image("READY"), image("PENDING")), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(created.event_type, EventType::SnapshotCreated);
    assert_eq!(created.id, "msg_snapshot_01JSNAP_created");
    let deleted = classify(&record("REMOVE", keys.clone(), None, image("DELETING")), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(deleted.event_type, EventType::SnapshotDeleted);
    // Not events: a pin on a READY snapshot, a refused PENDING row removed, a log line expiring.
    assert_eq!(
        classify(&record("MODIFY", keys.clone(), image("READY"), image("READY")), NOW),
        Ok(None)
    );
    assert_eq!(classify(&record("REMOVE", keys, None, image("PENDING")), NOW), Ok(None));
    let expired = record(
        "REMOVE",
        serde_json::json!({"pk": {"S": "PROJECT#t1#p1"}, "sk": {"S": "EVENT#01J"}}),
        None,
        None,
    );
    assert_eq!(classify(&expired, NOW), Ok(None));
    let project = record(
        "MODIFY",
        serde_json::json!({"pk": {"S": "PROJECT#t1#p1"}, "sk": {"S": "PROJECT"}}),
        None,
        None,
    );
    assert_eq!(classify(&project, NOW), Ok(None));
}

#[test]
fn a_malformed_record_is_an_error_not_a_panic() {
    let bad = record(
        "INSERT",
        serde_json::json!({"pk": {"S": "PROJECT#no-project"}, "sk": {"S": "EVENT#01J"}}),
        Some(serde_json::json!({"to": {"S": "RUNNING"}})),
        None,
    );
    assert!(classify(&bad, NOW).is_err());
    let unknown_state = log_line(None, "FLYING", false);
    assert!(classify(&unknown_state, NOW).is_err());
}

#[test]
fn endpoint_urls_are_https_or_loopback_when_allowed_and_never_private() {
    assert!(check_url("https://hooks.example.com/sandman", false).is_ok());
    assert!(check_url("http://127.0.0.1:3002/hook", true).is_ok());
    assert!(check_url("http://localhost:3002/hook", true).is_ok());
    for (url, allow) in [
        ("http://hooks.example.com/", true),
        ("http://127.0.0.1:3002/hook", false),
        ("https://127.0.0.1/hook", false),
        ("https://10.1.2.3/hook", true),
        ("https://169.254.169.254/latest", true),
        ("https://[fd00::1]/hook", true),
        ("https://user:pw@example.com/", false),
        ("ftp://example.com/", false),
        ("not a url", false),
    ] {
        assert!(check_url(url, allow).is_err(), "{url} (loopback allowed: {allow})");
    }
}

#[test]
fn event_names_round_trip_and_the_backoff_grows() {
    for event in EventType::ALL {
        assert_eq!(EventType::parse(event.as_str()), Some(event));
    }
    let base = std::time::Duration::from_secs(30);
    let delays: Vec<u64> = (1..MAX_ATTEMPTS).map(|a| backoff(base, a).as_secs()).collect();
    assert_eq!(delays, [30, 120, 480, 1920]);
}

#[test]
fn a_receiver_verifies_the_signature_and_refuses_a_stale_or_altered_one() {
    let body = br#"{"type":"sandbox.paused"}"#;
    let [_, _, (_, signature)] = headers(&secret(), "msg_1", 1_800_000_000, body);
    assert_eq!(
        verify(&secret(), "msg_1", "1800000000", &signature, body, 1_800_000_010, 300),
        Ok(())
    );
    assert_eq!(
        verify(
            &secret(),
            "msg_1",
            "1800000000",
            &format!("v1,bogus {signature}"),
            body,
            1_800_000_010,
            300
        ),
        Ok(()),
        "one of several signatures may match"
    );
    assert_eq!(
        verify(&secret(), "msg_1", "1800000000", &signature, b"{}", 1_800_000_010, 300),
        Err(VerifyError::NoMatch)
    );
    assert_eq!(
        verify(&secret(), "msg_1", "1800000000", &signature, body, 1_800_001_000, 300),
        Err(VerifyError::Stale)
    );
    assert_eq!(
        verify(&secret(), "msg_1", "soon", &signature, body, 1_800_000_000, 300),
        Err(VerifyError::BadTimestamp)
    );
}

/// Security review L1: every address that is not global unicast is refused at registration,
/// whatever its spelling (IPv4-mapped and -compatible IPv6, NAT64, shorthand IPv4) and a
/// `localhost` with a trailing dot or under `.localhost`.
#[test]
fn endpoint_urls_never_name_a_non_global_address() {
    for url in [
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://[::ffff:169.254.169.254]/latest",
        "https://[::127.0.0.1]/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[febf::1]/hook",
        "https://[fc00::1]/hook",
        "https://[ff02::1]/hook",
        "https://[2001:db8::1]/hook",
        "https://[64:ff9b::7f00:1]/hook",
        "https://100.64.0.1/hook",
        "https://100.127.255.254/hook",
        "https://0.1.2.3/hook",
        "https://127.1/hook",
        "https://0x7f000001/hook",
        "https://198.18.0.1/hook",
        "https://198.19.255.254/hook",
        "https://224.0.0.1/hook",
        "https://239.255.255.250/hook",
        "https://240.0.0.1/hook",
        "https://255.255.255.255/hook",
        "https://192.0.0.8/hook",
        "https://192.0.2.1/hook",
        "https://198.51.100.1/hook",
        "https://203.0.113.1/hook",
        "https://localhost./hook",
        "https://LOCALHOST/hook",
        "https://api.localhost/hook",
        "https://api.localhost./hook",
    ] {
        let refused = check_url(url, false);
        assert!(refused.is_err(), "{url} must be refused: {refused:?}");
    }
    for url in [
        "https://93.184.215.14/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://100.128.0.1/hook",
        "https://198.20.0.1/hook",
        "https://hooks.example.com/hook",
    ] {
        assert!(check_url(url, false).is_ok(), "{url} is public");
    }
}

/// Security review M1: a snapshot deleted to keep its team within the snapshot quota says so in
/// its `snapshot.deleted` event.
#[test]
fn a_snapshot_pruned_for_the_quota_says_so_in_its_event() {
    let keys = serde_json::json!({"pk": {"S": "PROJECT#t1#p1"}, "sk": {"S": "SNAPSHOT#01JSNAP"}});
    let old = serde_json::json!({"status": {"S": "DELETING"}, "kind": {"S": "manual"}, "deleteReason": {"S": "team-snapshot-quota"}});
    let deleted = classify(&record("REMOVE", keys.clone(), None, Some(old)), NOW)
        .unwrap()
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&deleted.body).unwrap();
    assert_eq!(body["data"]["reason"], "team-snapshot-quota", "{body}");
    let plain = serde_json::json!({"status": {"S": "DELETING"}, "kind": {"S": "manual"}});
    let deleted = classify(&record("REMOVE", keys, None, Some(plain)), NOW)
        .unwrap()
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&deleted.body).unwrap();
    assert_eq!(body["data"]["reason"], serde_json::Value::Null, "{body}");
}
