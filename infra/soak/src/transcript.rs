//! Every answer the API gave in the run (and every request given up on), with when it was sent
//! and answered, in real time and in E2B's: what the judge holds against E2B's own record.

use std::sync::Mutex;
use std::time::Instant;

use http::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct Answer {
    /// What was asked: `open`, `heartbeat`, `restore`, …
    pub op: &'static str,
    /// The soak's project (its index), when the request was about one.
    pub index: Option<usize>,
    pub path: String,
    /// Real time.
    pub sent: Instant,
    pub answered: Instant,
    /// E2B's time.
    pub e2b_sent: OffsetDateTime,
    pub e2b_answered: OffsetDateTime,
    /// `None`: the caller gave up (the invocation was cut at its deadline).
    pub status: Option<StatusCode>,
    pub json: Value,
    /// What the request named besides the project (a snapshot, a fork's new project, a key).
    pub detail: String,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.is_success())
    }

    /// The sandbox the answer names and the state it gives it (an open's, a resume's, a restore's,
    /// a woken heartbeat's, a fork's, a pause's or a status).
    pub fn sandbox(&self) -> Option<(&str, &str)> {
        let status = [&self.json["sandbox"], &self.json["opened"]["sandbox"], &self.json]
            .into_iter()
            .find(|s| s["sandboxId"].is_string())?;
        Some((status["sandboxId"].as_str()?, status["state"].as_str().unwrap_or("")))
    }
}

#[derive(Debug, Default)]
pub struct Transcript {
    answers: Mutex<Vec<Answer>>,
}

impl Transcript {
    pub fn push(&self, answer: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(answer);
    }

    pub fn all(&self) -> Vec<Answer> {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
