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
        to: SessionState::Paused,
        sandbox_id: Some("sbx1".into()),
    };
    let json = serde_json::to_value(Message::of("p1", &record)).unwrap();
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
