//! What the teams' outbound receiver got: each delivery to an endpoint the API said it
//! registered verifies with that endpoint's secret, and concerns a project of that team. The
//! signature is checked as Standard Webhooks defines it, here, not with Sandman's own code.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

use super::{OUTBOUND_SIGNED, Soak};
use crate::model::Model;

pub fn judge(soak: &Soak) {
    for got in soak.receiver.received() {
        let Some(endpoint) = soak.receiver.endpoint(&got.url) else {
            // Its registration's answer was lost: its secret is not known.
            continue;
        };
        soak.ledger.judged(OUTBOUND_SIGNED, 1);
        let verified = signed_by(&endpoint.secret, &got.id, &got.timestamp, &got.body, &got.signature);
        let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap_or_default();
        let project = body["data"]["projectId"].as_str().unwrap_or_default();
        let of_team = Model::index_of(project).is_some_and(|i| soak.fleet.account_of(i) == endpoint.account);
        if !verified || !of_team {
            soak.ledger.violation(
                OUTBOUND_SIGNED,
                project,
                format!(
                    "delivery {} to team {}'s endpoint: signature {}, {}",
                    got.id,
                    endpoint.account,
                    if verified { "verifies" } else { "does NOT verify" },
                    if of_team {
                        "its project"
                    } else {
                        "another team's project"
                    }
                ),
            );
        }
    }
}

/// Standard Webhooks: `v1,` and base64 of HMAC-SHA256, keyed with the secret's bytes (`whsec_` and
/// base64), over `{id}.{timestamp}.{body}`; the header may hold several, space-separated.
fn signed_by(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(key) = secret.strip_prefix("whsec_").and_then(|k| STANDARD.decode(k).ok()) else {
        return false;
    };
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|signature| signature == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard Webhooks' own example (its specification's test vector).
    #[test]
    fn verifies_the_specifications_example_and_nothing_else() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (id, timestamp) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330");
        let body = br#"{"test": 2432232314}"#;
        let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(signed_by(secret, id, timestamp, body, signature));
        assert!(signed_by(
            secret,
            id,
            timestamp,
            body,
            &format!("v1,bm9wZQ== {signature}")
        ));
        assert!(!signed_by(secret, id, timestamp, br#"{"test": 2432232315}"#, signature));
        assert!(!signed_by(secret, id, "1614265331", body, signature));
    }
}
