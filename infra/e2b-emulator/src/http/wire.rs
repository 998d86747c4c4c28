//! Request parsing and response shapes of E2B's REST API (e2b-openapi.yml).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::Query;
use axum::http::Uri;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::sandbox::{OnTimeout, SandboxState, SandboxView};
use crate::snapshot::SnapshotView;

/// Reported as `envdVersion`; the SDKs refuse anything below 0.1.0.
pub(crate) const ENVD_VERSION: &str = "0.2.0";
/// Deprecated in the spec but still required.
const CLIENT_ID: &str = "6532622b";

pub(crate) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("request body is required".to_owned()));
    }
    serde_json::from_slice(body).map_err(|err| ApiError::BadRequest(format!("invalid request body: {err}")))
}

/// An absent or empty body reads as the type's default.
pub(crate) fn parse_optional<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse(body)
}

pub(crate) fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, ApiError> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|Query(pairs)| pairs)
        .map_err(|err| ApiError::BadRequest(format!("invalid query: {err}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewSandboxBody {
    #[serde(rename = "templateID")]
    pub template_id: Option<String>,
    pub timeout: Option<i64>,
    pub auto_pause: Option<bool>,
    pub auto_pause_memory: Option<bool>,
    pub auto_resume: Option<AutoResumeBody>,
    /// Not in the spec's request; accepted for clients that send the lifecycle policy.
    pub lifecycle: Option<LifecycleBody>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub env_vars: Option<BTreeMap<String, String>>,
    pub network: Option<NetworkBody>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NetworkBody {
    #[serde(default)]
    pub rules: crate::secrets::NetworkRules,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AutoResumeBody {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LifecycleBody {
    pub on_timeout: Option<OnTimeout>,
    pub auto_resume: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TimeoutBody {
    pub timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RefreshBody {
    pub duration: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SnapshotBody {
    pub name: Option<String>,
}

/// `SandboxForkRequest`
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ForkBody {
    pub timeout: Option<i64>,
    pub count: Option<i64>,
}

/// `SandboxForkResult`: exactly one of `sandbox` and `error`.
#[derive(Debug, Serialize)]
pub(crate) struct ForkResultBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PauseBody {
    #[allow(dead_code)]
    pub memory: Option<bool>,
}

/// `Sandbox`: what create, connect and resume return.
#[derive(Debug, Serialize)]
pub(crate) struct SandboxBody {
    #[serde(rename = "templateID")]
    template_id: String,
    #[serde(rename = "sandboxID")]
    sandbox_id: String,
    #[serde(rename = "clientID")]
    client_id: &'static str,
    #[serde(rename = "envdVersion")]
    envd_version: &'static str,
    #[serde(rename = "envdAccessToken")]
    envd_access_token: String,
}

impl From<&SandboxView> for SandboxBody {
    fn from(sandbox: &SandboxView) -> Self {
        Self {
            template_id: sandbox.template_id.clone(),
            sandbox_id: sandbox.sandbox_id.clone(),
            client_id: CLIENT_ID,
            envd_version: ENVD_VERSION,
            envd_access_token: sandbox.envd_access_token.clone(),
        }
    }
}

/// `ListedSandbox`, and `SandboxDetail` when the detail-only fields are filled.
#[derive(Debug, Serialize)]
pub(crate) struct SandboxDetailBody {
    #[serde(rename = "templateID")]
    template_id: String,
    #[serde(rename = "sandboxID")]
    sandbox_id: String,
    #[serde(rename = "clientID")]
    client_id: &'static str,
    #[serde(rename = "startedAt", with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(rename = "endAt", with = "time::serde::rfc3339")]
    end_at: OffsetDateTime,
    #[serde(rename = "envdVersion")]
    envd_version: &'static str,
    #[serde(rename = "cpuCount")]
    cpu_count: u32,
    #[serde(rename = "memoryMB")]
    memory_mb: u32,
    #[serde(rename = "diskSizeMB")]
    disk_size_mb: u32,
    metadata: BTreeMap<String, String>,
    state: SandboxState,
    #[serde(rename = "envdAccessToken", skip_serializing_if = "Option::is_none")]
    envd_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifecycle: Option<LifecycleView>,
}

#[derive(Debug, Serialize)]
struct LifecycleView {
    #[serde(rename = "autoResume")]
    auto_resume: bool,
    #[serde(rename = "onTimeout")]
    on_timeout: OnTimeout,
}

impl SandboxDetailBody {
    pub(crate) fn listed(sandbox: &SandboxView) -> Self {
        Self {
            template_id: sandbox.template_id.clone(),
            sandbox_id: sandbox.sandbox_id.clone(),
            client_id: CLIENT_ID,
            started_at: sandbox.started_at,
            end_at: sandbox.end_at,
            envd_version: ENVD_VERSION,
            cpu_count: sandbox.cpu_count,
            memory_mb: sandbox.memory_mb,
            disk_size_mb: sandbox.disk_size_mb,
            metadata: sandbox.metadata.clone(),
            state: sandbox.reported_state(),
            envd_access_token: None,
            lifecycle: None,
        }
    }

    pub(crate) fn detail(sandbox: &SandboxView) -> Self {
        Self {
            envd_access_token: Some(sandbox.envd_access_token.clone()),
            lifecycle: Some(LifecycleView {
                auto_resume: sandbox.auto_resume,
                on_timeout: sandbox.on_timeout,
            }),
            ..Self::listed(sandbox)
        }
    }
}

/// `SnapshotInfo`
#[derive(Debug, Serialize)]
pub(crate) struct SnapshotInfoBody {
    #[serde(rename = "snapshotID")]
    snapshot_id: String,
    names: Vec<String>,
}

impl From<&SnapshotView> for SnapshotInfoBody {
    fn from(snapshot: &SnapshotView) -> Self {
        Self {
            snapshot_id: snapshot.snapshot_id.clone(),
            names: snapshot.names.clone(),
        }
    }
}

/// `SandboxMetric`
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SandboxMetricBody {
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub timestamp_unix: i64,
    pub cpu_count: u32,
    pub cpu_used_pct: f64,
    pub mem_used: u64,
    pub mem_total: u64,
    pub mem_cache: u64,
    pub disk_used: u64,
    pub disk_total: u64,
}

/// Decodes one `%XX`-escaped component (`+` is a space, as in forms).
pub(crate) fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = input.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The opaque `nextToken`: the sort position of the last item returned.
pub(crate) fn encode_token(at: OffsetDateTime, id: &str) -> String {
    let raw = format!("{}:{id}", at.unix_timestamp_nanos());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub(crate) fn decode_token(token: &str) -> Result<(OffsetDateTime, String), ApiError> {
    let invalid = || ApiError::BadRequest("invalid nextToken".to_owned());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (nanos, id) = raw.split_once(':').ok_or_else(invalid)?;
    let nanos: i128 = nanos.parse().map_err(|_| invalid())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid())?;
    Ok((at, id.to_owned()))
}

pub(crate) fn parse_limit(value: Option<&str>) -> Result<usize, ApiError> {
    let Some(value) = value else { return Ok(100) };
    match value.parse::<usize>() {
        Ok(limit) if (1..=100).contains(&limit) => Ok(limit),
        _ => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and 100, got {value:?}"
        ))),
    }
}

pub(crate) struct Page<'a, T> {
    pub items: Vec<&'a T>,
    pub next_token: Option<String>,
}

/// Where an item sits in a listing: by time, ties broken by id.
pub(crate) trait SortKey {
    fn sort_key(&self) -> (OffsetDateTime, &str);
}

impl SortKey for SandboxView {
    fn sort_key(&self) -> (OffsetDateTime, &str) {
        (self.started_at, &self.sandbox_id)
    }
}

impl SortKey for SnapshotView {
    fn sort_key(&self) -> (OffsetDateTime, &str) {
        (self.created_at, &self.template_id)
    }
}

/// Sorts by (time, id), newest first unless `ascending`, and returns the page after `after`.
pub(crate) fn paginate<'a, T: SortKey>(
    mut items: Vec<&'a T>,
    ascending: bool,
    limit: usize,
    after: Option<(OffsetDateTime, String)>,
) -> Page<'a, T> {
    items.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    if !ascending {
        items.reverse();
    }
    let start = match &after {
        None => 0,
        Some((at, id)) => {
            let cursor = (*at, id.as_str());
            items
                .iter()
                .position(|item| {
                    let key = item.sort_key();
                    if ascending { key > cursor } else { key < cursor }
                })
                .unwrap_or(items.len())
        }
    };
    let remaining = items.len() - start;
    let page: Vec<&T> = items.into_iter().skip(start).take(limit).collect();
    let next_token = if remaining > limit {
        page.last().map(|item| {
            let (at, id) = item.sort_key();
            encode_token(at, id)
        })
    } else {
        None
    };
    Page {
        items: page,
        next_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%3Db%26c").as_deref(), Some("a=b&c"));
        assert_eq!(percent_decode("bad%zz"), None);
    }

    struct Item(OffsetDateTime, String);

    impl SortKey for Item {
        fn sort_key(&self) -> (OffsetDateTime, &str) {
            (self.0, &self.1)
        }
    }

    #[test]
    fn pages_walk_every_item_once() {
        let base = OffsetDateTime::UNIX_EPOCH;
        let items: Vec<Item> = (0..5)
            .map(|i| Item(base + time::Duration::seconds(i % 2), format!("id{i}")))
            .collect();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = paginate(items.iter().collect(), false, 2, after.clone());
            seen.extend(page.items.iter().map(|i| i.1.clone()));
            match page.next_token {
                Some(token) => after = Some(decode_token(&token).expect("valid token")),
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, vec!["id0", "id1", "id2", "id3", "id4"]);
    }
}
