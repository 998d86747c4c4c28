//! What E2B's sandbox and snapshot calls send and answer, named as on the wire (camelCase, `…ID`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;

pub use crate::domain::Secret;

/// The states E2B reports. A sandbox that is pausing already reads as paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Running,
    Paused,
}

impl SandboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
        }
    }
}

/// `POST /v2/sandboxes`. `timeout` is sent in whole seconds, rounded up.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(serialize_with = "as_seconds")]
    pub timeout: Duration,
    pub auto_pause: bool,
    pub metadata: BTreeMap<String, String>,
    /// Values never reach a log line (`Secret`'s `Debug` is redacted): where an account has no
    /// secrets API, a project's secrets travel here.
    pub env_vars: BTreeMap<String, Secret>,
    /// envd then requires the `envdAccessToken` create and connect return.
    pub secure: bool,
    pub network: SandboxNetwork,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxNetwork {
    /// E2B's default is true; Sandman sends false unless the project asks for public URLs.
    pub allow_public_traffic: bool,
    /// Per-host transforms of the sandbox's outbound HTTP(S) requests, applied by E2B's egress
    /// proxy: how a secret reaches a host by reference (`${e2b.secrets.NAME}`) without entering
    /// the sandbox. Not sent when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: NetworkRules,
}

/// `network.rules`: host (`api.example.com`) to the transforms of requests to it.
pub type NetworkRules = BTreeMap<String, Vec<NetworkRule>>;

/// One transform rule of `network.rules`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkRule {
    pub transform: NetworkTransform,
}

/// Headers E2B's egress proxy sets on matching requests (an existing header of the same name is
/// replaced). A value holds markers, `${e2b.secrets.NAME}`, never a secret itself; a marker the
/// proxy cannot resolve drops the header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkTransform {
    pub headers: BTreeMap<String, String>,
}

/// What a project's new sandbox is given besides its template (`Port::launch_settings`): its
/// environment (plain variables; secrets too where the E2B account has no secrets API) and the
/// egress rules that carry secrets by reference. `version` is the project's settings version they
/// were read at: a session records it, and a later change shows as a restart required. Values
/// are `Secret`s: never in a record, never in a log line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LaunchSettings {
    pub env_vars: BTreeMap<String, Secret>,
    pub rules: NetworkRules,
    pub version: u64,
}

/// The marker E2B's egress proxy fills in with the current version of the account's secret `name`.
pub fn secret_marker(name: &str) -> String {
    format!("${{e2b.secrets.{name}}}")
}

/// A sandbox as returned by create and connect.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    pub envd_version: String,
    #[serde(default)]
    pub envd_access_token: Option<Secret>,
    #[serde(default)]
    pub traffic_access_token: Option<Secret>,
}

/// The answer to connect: the sandbox, and whether this call resumed it (201) or it was running (200).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Connected {
    pub sandbox: Sandbox,
    pub resumed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    Kill,
    Pause,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxLifecycle {
    pub auto_resume: bool,
    pub on_timeout: OnTimeout,
}

/// `GET /sandboxes/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxDetail {
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(default)]
    pub alias: Option<String>,
    pub state: SandboxState,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end_at: OffsetDateTime,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub lifecycle: Option<SandboxLifecycle>,
    #[serde(default)]
    pub domain: Option<String>,
    pub envd_version: String,
    #[serde(default)]
    pub envd_access_token: Option<Secret>,
    #[serde(default)]
    pub cpu_count: u32,
    #[serde(default, rename = "memoryMB")]
    pub memory_mb: u32,
    #[serde(default, rename = "diskSizeMB")]
    pub disk_size_mb: u32,
}

/// One entry of `GET /v2/sandboxes`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedSandbox {
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(default)]
    pub alias: Option<String>,
    pub state: SandboxState,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end_at: OffsetDateTime,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub envd_version: String,
    #[serde(default)]
    pub cpu_count: u32,
    #[serde(default, rename = "memoryMB")]
    pub memory_mb: u32,
    #[serde(default, rename = "diskSizeMB")]
    pub disk_size_mb: u32,
}

/// Which sandboxes to list. Empty `states` means every state; `metadata` pairs must all match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SandboxFilter {
    pub states: Vec<SandboxState>,
    pub metadata: BTreeMap<String, String>,
}

/// A persistent snapshot. `snapshot_id` is also the template ID to create a sandbox from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    #[serde(rename = "snapshotID")]
    pub snapshot_id: String,
    #[serde(default)]
    pub names: Vec<String>,
}

/// One sample of `GET /sandboxes/{id}/metrics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxMetric {
    #[serde(rename = "timestampUnix", with = "time::serde::timestamp")]
    pub timestamp: OffsetDateTime,
    #[serde(default)]
    pub cpu_count: u32,
    #[serde(default)]
    pub cpu_used_pct: f64,
    #[serde(default)]
    pub mem_used: u64,
    #[serde(default)]
    pub mem_total: u64,
    #[serde(default)]
    pub mem_cache: u64,
    #[serde(default)]
    pub disk_used: u64,
    #[serde(default)]
    pub disk_total: u64,
}

/// E2B takes timeouts as whole seconds; rounding up never gives a sandbox less than asked.
pub fn whole_seconds(duration: Duration) -> u64 {
    let rounded_up = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    rounded_up.min(i32::MAX as u64)
}

fn as_seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(whole_seconds(*duration))
}

impl From<Sandbox> for crate::domain::SandboxRef {
    fn from(sandbox: Sandbox) -> Self {
        Self {
            sandbox_id: sandbox.sandbox_id,
            domain: sandbox.domain,
            access_token: sandbox.envd_access_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_sandbox_serializes_as_e2b_expects() {
        let new = NewSandbox {
            template_id: "base".into(),
            timeout: Duration::from_millis(300_500),
            auto_pause: true,
            metadata: BTreeMap::from([("projectId".into(), "p1".into())]),
            env_vars: BTreeMap::new(),
            secure: true,
            network: SandboxNetwork {
                allow_public_traffic: false,
                rules: NetworkRules::new(),
            },
        };
        assert_eq!(
            serde_json::to_value(&new).unwrap(),
            json!({"templateID": "base", "timeout": 301, "autoPause": true,
                   "metadata": {"projectId": "p1"}, "envVars": {},
                   "secure": true, "network": {"allowPublicTraffic": false}})
        );
    }

    #[test]
    fn env_values_and_rules_go_on_the_wire_but_never_into_debug() {
        let rule = NetworkRule {
            transform: NetworkTransform {
                headers: BTreeMap::from([("Authorization".into(), format!("Bearer {}", secret_marker("sm-x")))]),
            },
        };
        let new = NewSandbox {
            template_id: "base".into(),
            timeout: Duration::from_secs(60),
            auto_pause: true,
            metadata: BTreeMap::new(),
            env_vars: BTreeMap::from([("TOKEN".into(), Secret::new("v4lue-never-logged"))]),
            secure: true,
            network: SandboxNetwork {
                allow_public_traffic: false,
                rules: NetworkRules::from([("api.example.com".into(), vec![rule])]),
            },
        };
        let wire = serde_json::to_value(&new).unwrap();
        assert_eq!(wire["envVars"], json!({"TOKEN": "v4lue-never-logged"}));
        assert_eq!(
            wire["network"]["rules"],
            json!({"api.example.com": [{"transform": {"headers": {"Authorization": "Bearer ${e2b.secrets.sm-x}"}}}]})
        );
        assert!(!format!("{new:?}").contains("v4lue"));
    }

    #[test]
    fn sandbox_detail_reads_the_wire_shape() {
        let wire = json!({
            "templateID": "base", "sandboxID": "sbx1", "clientID": "c", "startedAt": "2026-10-01T12:00:00Z",
            "endAt": "2026-10-01T12:05:00.5Z", "cpuCount": 2, "memoryMB": 512, "diskSizeMB": 1024,
            "state": "paused", "envdVersion": "0.2.0", "metadata": {"projectId": "p1"},
            "lifecycle": {"autoResume": false, "onTimeout": "pause"}, "envdAccessToken": "t0p-s3cret"
        });
        let detail: SandboxDetail = serde_json::from_value(wire).unwrap();
        assert_eq!(detail.state, SandboxState::Paused);
        assert_eq!(detail.memory_mb, 512);
        assert_eq!(detail.metadata["projectId"], "p1");
        assert_eq!(detail.lifecycle.unwrap().on_timeout, OnTimeout::Pause);
        assert_eq!((detail.end_at - detail.started_at).whole_milliseconds(), 300_500);
        assert!(!format!("{detail:?}").contains("s3cret"));
    }

    #[test]
    fn metric_timestamps_are_unix_seconds() {
        let wire = json!({"timestamp": "ignored", "timestampUnix": 1_790_000_000, "cpuCount": 2,
            "cpuUsedPct": 12.5, "memUsed": 1, "memTotal": 2, "memCache": 0, "diskUsed": 3, "diskTotal": 4});
        let metric: SandboxMetric = serde_json::from_value(wire).unwrap();
        assert_eq!(metric.timestamp.unix_timestamp(), 1_790_000_000);
        assert_eq!(metric.cpu_used_pct, 12.5);
    }

    #[test]
    fn whole_seconds_rounds_up_and_saturates() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(300)), 300);
        assert_eq!(whole_seconds(Duration::MAX), i32::MAX as u64);
    }
}
