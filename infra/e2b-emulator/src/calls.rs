//! A record of every API request the emulator answered, for tests to inspect.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::faults::{Route, lock};

#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    pub route: Route,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The request body, when it was JSON.
    pub body: Option<Value>,
    /// What the caller was (or would have been) answered.
    pub status: u16,
    /// What the handler answered, when the call reached it (`None`: refused before it, so nothing
    /// was done): a 2xx here under another `status` is work done whose answer was lost.
    pub handler_status: Option<u16>,
    /// Who called, when the call came through `/callers/{caller}/…` (see the README).
    pub caller: Option<String>,
    /// When the call was taken in (emulated time); `at` is when it was answered.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The team whose API key was presented, if it was a valid one.
    pub team_id: Option<String>,
    /// Which key was presented (valid or not): its fingerprint, never the key.
    pub key_fingerprint: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Default)]
pub(crate) struct CallLog {
    calls: Mutex<Vec<RecordedCall>>,
}

impl CallLog {
    pub(crate) fn record(&self, call: RecordedCall) {
        lock(&self.calls).push(call);
    }

    pub(crate) fn all(&self) -> Vec<RecordedCall> {
        lock(&self.calls).clone()
    }

    pub(crate) fn to(&self, route: Route) -> Vec<RecordedCall> {
        lock(&self.calls)
            .iter()
            .filter(|call| call.route == route)
            .cloned()
            .collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.calls).clear();
    }
}

/// The first 8 bytes of SHA-256 of a key, in hex: the same fingerprint Sandman logs
/// (`sandman::e2b::key_fingerprint`), so a test can match the two without either holding the key.
pub fn key_fingerprint(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
