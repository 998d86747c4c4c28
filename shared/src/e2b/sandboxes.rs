//! Sandbox lifecycle calls: create, fork, inspect, list, pause, connect (resume), timeouts, kill,
//! metrics.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use time::OffsetDateTime;

use super::accounts::E2b;
use super::request::Request;
use sandman_protocol::e2b::E2bError;
use sandman_protocol::e2b::{
    Connected, ListedSandbox, NewSandbox, Sandbox, SandboxDetail, SandboxFilter, SandboxMetric, whole_seconds,
};

impl E2b {
    /// Not idempotent: retried only when E2B refused it (429), never after a 5xx or a timeout.
    pub async fn create_sandbox(&self, new: &NewSandbox) -> Result<Sandbox, E2bError> {
        const ROUTE: &str = "POST /v2/sandboxes";
        let request = Request::new(Method::POST, ROUTE, &["v2", "sandboxes"])
            .with_json(new)?
            .not_idempotent();
        self.send(request).await?.json(ROUTE)
    }

    /// E2B's fork: checkpoints the running `source` in place (it keeps running, with its id and
    /// expiry) and starts one new sandbox from that full-memory checkpoint, living `timeout`. The
    /// new sandbox carries the *source's* metadata: the request cannot set any.
    ///
    /// Not idempotent, as create: retried only when E2B refused it (429), never after a 5xx or a
    /// timeout. A fork E2B reports as failed to start is that fork's error (a 5xx there is treated
    /// as possibly taken effect, so the caller looks before moving on).
    pub async fn fork(&self, source: &str, timeout: Duration) -> Result<Sandbox, E2bError> {
        const ROUTE: &str = "POST /sandboxes/{id}/fork";
        let request = Request::new(Method::POST, ROUTE, &["sandboxes", source, "fork"])
            .with_json(&json!({ "timeout": whole_seconds(timeout), "count": 1 }))?
            .for_sandbox(source)
            .not_idempotent();
        let results: Vec<ForkResult> = self.send(request).await?.json(ROUTE)?;
        match results.into_iter().next() {
            Some(ForkResult {
                sandbox: Some(sandbox), ..
            }) => Ok(sandbox),
            Some(ForkResult { error: Some(error), .. }) => {
                let status = u16::try_from(error.code).unwrap_or(500);
                Err(E2bError::from_status(status, error.message.as_bytes(), None, 1))
            }
            _ => Err(E2bError::Unexpected {
                status: 201,
                message: "a fork answer without a sandbox or an error".into(),
            }),
        }
    }

    pub async fn get_sandbox(&self, sandbox_id: &str) -> Result<SandboxDetail, E2bError> {
        const ROUTE: &str = "GET /sandboxes/{id}";
        let request = Request::new(Method::GET, ROUTE, &["sandboxes", sandbox_id]).for_sandbox(sandbox_id);
        self.send(request).await?.json(ROUTE)
    }

    /// Every matching sandbox, across all pages.
    pub async fn list_sandboxes(&self, filter: &SandboxFilter) -> Result<Vec<ListedSandbox>, E2bError> {
        Ok(self.list_sandboxes_up_to(filter, usize::MAX).await?.0)
    }

    /// At most `max_pages` pages (of 100) of the listing, and whether that was all of it.
    pub async fn list_sandboxes_up_to(
        &self,
        filter: &SandboxFilter,
        max_pages: usize,
    ) -> Result<(Vec<ListedSandbox>, bool), E2bError> {
        const ROUTE: &str = "GET /v2/sandboxes";
        let states = filter
            .states
            .iter()
            .map(|state| state.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let metadata = metadata_query(&filter.metadata);
        self.pages_up_to(
            || {
                let mut request = Request::new(Method::GET, ROUTE, &["v2", "sandboxes"]);
                if !states.is_empty() {
                    request = request.with_query("state", states.clone());
                }
                if !metadata.is_empty() {
                    request = request.with_query("metadata", metadata.clone());
                }
                request
            },
            max_pages,
        )
        .await
    }

    /// Whether E2B accepts this key: one page of at most one sandbox (`Unauthorized` if not).
    pub async fn check_key(&self) -> Result<(), E2bError> {
        const ROUTE: &str = "GET /v2/sandboxes";
        let request = Request::new(Method::GET, ROUTE, &["v2", "sandboxes"]).with_query("limit", "1");
        self.send(request).await.map(drop)
    }

    /// Pauses with memory. A sandbox already paused (or mid-transition) answers `Conflict`.
    pub async fn pause(&self, sandbox_id: &str) -> Result<(), E2bError> {
        const ROUTE: &str = "POST /sandboxes/{id}/pause";
        let request = Request::new(Method::POST, ROUTE, &["sandboxes", sandbox_id, "pause"]).for_sandbox(sandbox_id);
        self.send(request).await.map(drop)
    }

    /// Resumes a paused sandbox, or just reaches a running one. `timeout` is always sent: without
    /// it E2B resets a resumed sandbox to 5 minutes.
    pub async fn connect(&self, sandbox_id: &str, timeout: Duration) -> Result<Connected, E2bError> {
        const ROUTE: &str = "POST /v2/sandboxes/{id}/connect";
        let request = Request::new(Method::POST, ROUTE, &["v2", "sandboxes", sandbox_id, "connect"])
            .with_json(&json!({ "timeout": whole_seconds(timeout) }))?
            .for_sandbox(sandbox_id);
        let reply = self.send(request).await?;
        Ok(Connected {
            sandbox: reply.json(ROUTE)?,
            resumed: reply.status == StatusCode::CREATED,
        })
    }

    /// The sandbox now ends `timeout` from now (this can shorten its life).
    pub async fn set_timeout(&self, sandbox_id: &str, timeout: Duration) -> Result<(), E2bError> {
        const ROUTE: &str = "POST /sandboxes/{id}/timeout";
        let request = Request::new(Method::POST, ROUTE, &["sandboxes", sandbox_id, "timeout"])
            .with_json(&json!({ "timeout": whole_seconds(timeout) }))?
            .for_sandbox(sandbox_id);
        self.send(request).await.map(drop)
    }

    /// Keeps the sandbox alive for at least `duration` more (E2B accepts up to an hour; only extends).
    pub async fn refresh(&self, sandbox_id: &str, duration: Duration) -> Result<(), E2bError> {
        const ROUTE: &str = "POST /sandboxes/{id}/refreshes";
        let request = Request::new(Method::POST, ROUTE, &["sandboxes", sandbox_id, "refreshes"])
            .with_json(&json!({ "duration": whole_seconds(duration) }))?
            .for_sandbox(sandbox_id);
        self.send(request).await.map(drop)
    }

    /// Retried like every safe call, so a kill whose answer was lost may end in `NotFound`.
    pub async fn kill(&self, sandbox_id: &str) -> Result<(), E2bError> {
        const ROUTE: &str = "DELETE /sandboxes/{id}";
        let request = Request::new(Method::DELETE, ROUTE, &["sandboxes", sandbox_id]).for_sandbox(sandbox_id);
        self.send(request).await.map(drop)
    }

    pub async fn metrics(
        &self,
        sandbox_id: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Vec<SandboxMetric>, E2bError> {
        const ROUTE: &str = "GET /sandboxes/{id}/metrics";
        let request = Request::new(Method::GET, ROUTE, &["sandboxes", sandbox_id, "metrics"])
            .with_query("start", start.unix_timestamp().max(0).to_string())
            .with_query("end", end.unix_timestamp().max(0).to_string())
            .for_sandbox(sandbox_id);
        self.send(request).await?.json(ROUTE)
    }

    /// The latest CPU use of each of `sandbox_ids` that is running (up to `MAX_METRICS_BATCH` ids
    /// per call; the caller batches). Sandboxes E2B does not list are absent from the answer.
    pub async fn batch_cpu(&self, sandbox_ids: &[&str]) -> Result<HashMap<String, f64>, E2bError> {
        const ROUTE: &str = "GET /sandboxes/metrics";
        if sandbox_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let request = Request::new(Method::GET, ROUTE, &["sandboxes", "metrics"])
            .with_query("sandbox_ids", sandbox_ids.join(","));
        let answer: SandboxesWithMetrics = self.send(request).await?.json(ROUTE)?;
        Ok(answer
            .sandboxes
            .into_iter()
            .map(|(id, metric)| (id, metric.cpu_used_pct))
            .collect())
    }
}

/// E2B's limit on ids in one `GET /sandboxes/metrics`.
pub const MAX_METRICS_BATCH: usize = 100;

/// `SandboxForkResult`: exactly one of `sandbox` and `error`.
#[derive(serde::Deserialize)]
struct ForkResult {
    #[serde(default)]
    sandbox: Option<Sandbox>,
    #[serde(default)]
    error: Option<ForkError>,
}

#[derive(serde::Deserialize)]
struct ForkError {
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(serde::Deserialize)]
struct SandboxesWithMetrics {
    #[serde(default)]
    sandboxes: HashMap<String, SandboxMetric>,
}

/// E2B's `metadata` filter is itself a query string (`k=v&k2=v2`, each part URL-encoded), sent
/// as the value of one parameter (and so encoded a second time).
fn metadata_query(metadata: &BTreeMap<String, String>) -> String {
    metadata
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_filter_is_an_encoded_query_string() {
        let metadata = BTreeMap::from([
            ("projectId".to_owned(), "p 1&2".to_owned()),
            ("app".to_owned(), "sandman".to_owned()),
        ]);
        assert_eq!(metadata_query(&metadata), "app=sandman&projectId=p%201%262");
        assert_eq!(metadata_query(&BTreeMap::new()), "");
        assert_eq!(percent_encode("é=~"), "%C3%A9%3D~");
    }
}
