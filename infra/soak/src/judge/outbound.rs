//! What the teams' outbound receiver got: each delivery to an endpoint the API said it
//! registered verifies with that endpoint's secret, and concerns a project of that team.

use sandman::outbound::{SigningSecret, verify};

use super::{OUTBOUND_SIGNED, Soak};
use crate::model::Model;

pub fn judge(soak: &Soak) {
    for got in soak.receiver.received() {
        let Some(endpoint) = soak.receiver.endpoint(&got.url) else {
            // Its registration's answer was lost: its secret is not known.
            continue;
        };
        soak.ledger.judged(OUTBOUND_SIGNED, 1);
        let verified = SigningSecret::parse(&endpoint.secret).is_ok_and(|secret| {
            let at: i64 = got.timestamp.parse().unwrap_or_default();
            verify(&secret, &got.id, &got.timestamp, &got.signature, &got.body, at, 0).is_ok()
        });
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
