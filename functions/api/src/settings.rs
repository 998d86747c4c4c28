//! The body of `PUT /v1/projects/{projectId}`, checked and turned into the core's `ProjectSpec`.

use std::ops::RangeInclusive;
use std::time::Duration;

use sandman::config::Config;
use sandman::domain::{CapHandoff, IdlePolicy, InactivityPolicy, ProjectKey, ProjectSpec, RetentionPolicy};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::json_shape::{object, whole};

mod idle;
pub use idle::{IdleSettings, IdleView};

/// A project's settings. `PUT` replaces them: an omitted field takes the deployment's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectSettings {
    /// The E2B template new sandboxes start from when there is no snapshot to restore: one the
    /// deployment or the team allows, 1 to 128 visible ASCII characters.
    #[schema(pattern = "^[!-~]{1,128}$", min_length = 1, max_length = 128)]
    pub template_id: String,
    /// Idle time after which the sandbox is paused, 60 to 86400 seconds (with `idle.mode`
    /// "adaptive" it is learned instead, and must not be set).
    #[schema(minimum = 60, maximum = 86400)]
    #[serde(default, deserialize_with = "whole")]
    pub idle_timeout_seconds: Option<u64>,
    /// Fixed (the default) or adaptive idle timeout.
    #[serde(default, deserialize_with = "object")]
    pub idle: Option<IdleSettings>,
    /// Save a snapshot before each idle pause.
    pub snapshot_on_idle: Option<bool>,
    /// Save a snapshot before the sandbox is killed (unless the kill says otherwise).
    pub snapshot_before_kill: Option<bool>,
    /// Let the sandbox's URLs answer without E2B's traffic access token (off by default).
    pub public_traffic: Option<bool>,
    /// The E2B timeout given on create and resume, 60 to 86400 seconds.
    #[schema(minimum = 60, maximum = 86400)]
    #[serde(default, deserialize_with = "whole")]
    pub sandbox_timeout_seconds: Option<u64>,
    #[serde(default, deserialize_with = "object")]
    pub retention: Option<RetentionSettings>,
    /// Busy-aware idle: an idle sandbox whose CPU (E2B's metrics, read by the enforcer) is above
    /// this percentage, 1 to 100, is not paused yet. Unset (the default): off.
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "whole")]
    pub busy_cpu_percent: Option<u8>,
    /// How long busy deferrals may keep a sandbox up without any activity, 300 to 604800 seconds
    /// (default 7200).
    #[schema(minimum = 300, maximum = 604800)]
    #[serde(default, deserialize_with = "whole")]
    pub max_busy_deferral_seconds: Option<u64>,
    /// The longest hold one activity call's `busyForSeconds` may ask for, 60 to 86400 seconds
    /// (default 3600).
    #[schema(minimum = 60, maximum = 86400)]
    #[serde(default, deserialize_with = "whole")]
    pub max_busy_for_seconds: Option<u64>,
    /// What happens to an active sandbox before E2B's session cap ends its run: `pause-resume`
    /// (the default: memory kept, a short RESUMING) or `snapshot-reopen`.
    pub cap_handoff: Option<CapHandoffSetting>,
    #[serde(default, deserialize_with = "object")]
    pub inactivity: Option<InactivitySettings>,
}

/// Session-cap handoff: what happens to an active sandbox before E2B's cap on one continuous run
/// (set per deployment and team) ends it. `pause-resume` (the default) pauses and resumes it at
/// once, keeping memory and processes (a short RESUMING); `snapshot-reopen` snapshots it, kills
/// it and reopens from the snapshot. An idle sandbox near the cap is simply paused.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CapHandoffSetting {
    PauseResume,
    SnapshotReopen,
}

impl From<CapHandoffSetting> for CapHandoff {
    fn from(setting: CapHandoffSetting) -> Self {
        match setting {
            CapHandoffSetting::PauseResume => CapHandoff::PauseResume,
            CapHandoffSetting::SnapshotReopen => CapHandoff::SnapshotReopen,
        }
    }
}

/// Inactivity tiers, all off unless set.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InactivitySettings {
    /// A sandbox paused longer than this is archived: snapshotted (unless a snapshot taken since the
    /// pause exists) and killed, so E2B keeps nothing paused for it; the next open restores the
    /// snapshot. 60 seconds to 1 year; off by default.
    #[schema(minimum = 60, maximum = 31536000)]
    #[serde(default, deserialize_with = "whole")]
    pub archive_after_seconds: Option<u64>,
    /// The snapshots of a project with no activity for this long are deleted (the project and its
    /// log stay; the next open starts from the template). 86400 seconds to 3 years; off by default.
    #[schema(minimum = 86400, maximum = 94608000)]
    #[serde(default, deserialize_with = "whole")]
    pub delete_after_seconds: Option<u64>,
    /// Whether `deleteAfterSeconds` deletes pinned snapshots too (default false: pins stay).
    pub delete_pinned: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionSettings {
    /// Unpinned snapshots kept, 0 to 100 (the team's snapshot quota bounds them all).
    #[schema(minimum = 0, maximum = 100)]
    #[serde(default, deserialize_with = "whole")]
    pub keep_last: Option<u32>,
    /// Unpinned snapshots older than this are deleted, 3600 seconds to 3 years.
    #[schema(minimum = 3600, maximum = 94608000)]
    #[serde(default, deserialize_with = "whole")]
    pub max_age_seconds: Option<u64>,
}

const TIMEOUT_SECONDS: RangeInclusive<u64> = 60..=86_400;
const MAX_AGE_SECONDS: RangeInclusive<u64> = 3_600..=3 * 365 * 86_400;
const MAX_KEEP_LAST: u32 = sandman::config::MAX_KEEP_LAST;
const BUSY_DEFERRAL_SECONDS: RangeInclusive<u64> = 300..=7 * 86_400;
const BUSY_FOR_SECONDS: RangeInclusive<u64> = 60..=86_400;
const ARCHIVE_AFTER_SECONDS: RangeInclusive<u64> = 60..=365 * 86_400;
const DELETE_AFTER_SECONDS: RangeInclusive<u64> = 86_400..=3 * 365 * 86_400;

impl ProjectSettings {
    pub fn into_spec(self, key: ProjectKey, config: &Config) -> Result<ProjectSpec, ApiError> {
        let defaults = &config.defaults;
        let template_id = self.template_id;
        let visible = template_id.bytes().all(|b| b.is_ascii_graphic());
        if template_id.is_empty() || template_id.len() > 128 || !visible {
            return Err(ApiError::invalid(
                "templateId",
                "templateId must be 1 to 128 visible ASCII characters",
            ));
        }
        config
            .templates
            .check(&key.team, &template_id)
            .map_err(|refused| ApiError::invalid("templateId", refused.to_string()))?;
        let retention = self.retention.unwrap_or_default();
        let keep_last = retention.keep_last.unwrap_or(defaults.keep_last);
        if keep_last > MAX_KEEP_LAST {
            return Err(ApiError::invalid(
                "retention.keepLast",
                format!("retention.keepLast must be from 0 to {MAX_KEEP_LAST}"),
            ));
        }
        let max_age = retention
            .max_age_seconds
            .map(|s| seconds("retention.maxAgeSeconds", s, MAX_AGE_SECONDS))
            .transpose()?;
        let idle_timeout = self
            .idle_timeout_seconds
            .map(|s| seconds("idleTimeoutSeconds", s, TIMEOUT_SECONDS))
            .transpose()?;
        let sandbox_timeout = self
            .sandbox_timeout_seconds
            .map(|s| seconds("sandboxTimeoutSeconds", s, TIMEOUT_SECONDS))
            .transpose()?;
        if self.busy_cpu_percent.is_some_and(|pct| !(1..=100).contains(&pct)) {
            return Err(ApiError::invalid(
                "busyCpuPercent",
                "busyCpuPercent must be from 1 to 100",
            ));
        }
        let handoff = config.session_cap.handoff_after(key.team.as_str());
        let backstop = sandbox_timeout.unwrap_or(defaults.sandbox_timeout);
        let adaptive = idle::adaptive(self.idle, idle_timeout, handoff, backstop)?;
        let idle_timeout = adaptive.map_or(idle_timeout.unwrap_or(defaults.idle_timeout), |(_, first)| first);
        // The idle index finds a session at the earlier of its idle and handoff deadlines; a new
        // run's first deadline is its idle one, so it must come before the handoff.
        if let Some(handoff_after) = config.session_cap.handoff_after(key.team.as_str())
            && idle_timeout >= handoff_after
        {
            return Err(ApiError::invalid(
                "idleTimeoutSeconds",
                format!(
                    "idleTimeoutSeconds must be under {} (the team's session cap less its handoff margin)",
                    handoff_after.as_secs()
                ),
            ));
        }
        let policy_defaults = IdlePolicy::default();
        let max_busy_deferral = self
            .max_busy_deferral_seconds
            .map(|s| seconds("maxBusyDeferralSeconds", s, BUSY_DEFERRAL_SECONDS))
            .transpose()?;
        let max_busy_for = self
            .max_busy_for_seconds
            .map(|s| seconds("maxBusyForSeconds", s, BUSY_FOR_SECONDS))
            .transpose()?;
        let tiers = self.inactivity.unwrap_or_default();
        let inactivity = InactivityPolicy {
            archive_after: tiers
                .archive_after_seconds
                .map(|s| seconds("inactivity.archiveAfterSeconds", s, ARCHIVE_AFTER_SECONDS))
                .transpose()?,
            delete_after: tiers
                .delete_after_seconds
                .map(|s| seconds("inactivity.deleteAfterSeconds", s, DELETE_AFTER_SECONDS))
                .transpose()?,
            delete_pinned: tiers.delete_pinned.unwrap_or(false),
        };
        Ok(ProjectSpec {
            inactivity,
            key,
            template_id,
            idle: IdlePolicy {
                idle_timeout,
                snapshot_on_idle: self.snapshot_on_idle.unwrap_or(false),
                busy_cpu_percent: self.busy_cpu_percent,
                max_busy_deferral: max_busy_deferral.unwrap_or(policy_defaults.max_busy_deferral),
                max_busy_for: max_busy_for.unwrap_or(policy_defaults.max_busy_for),
                cap_handoff: self.cap_handoff.map(CapHandoff::from).unwrap_or_default(),
                adaptive: adaptive.map(|(bounds, _)| bounds),
            },
            retention: RetentionPolicy { keep_last, max_age },
            sandbox_timeout: sandbox_timeout.unwrap_or(defaults.sandbox_timeout),
            snapshot_before_kill: self.snapshot_before_kill.unwrap_or(false),
            public_traffic: self.public_traffic.unwrap_or(false),
        })
    }
}

fn seconds(field: &'static str, value: u64, range: RangeInclusive<u64>) -> Result<Duration, ApiError> {
    if range.contains(&value) {
        Ok(Duration::from_secs(value))
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be from {} to {}", range.start(), range.end()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use sandman::domain::{ProjectId, TeamId};
    use serde_json::json;

    use super::*;

    fn spec(body: serde_json::Value) -> Result<ProjectSpec, ApiError> {
        spec_with(body, &[])
    }

    fn spec_with(body: serde_json::Value, env: &[(&str, &str)]) -> Result<ProjectSpec, ApiError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = sandman::config::Config::from_lookup(|name| match name {
            "SANDMAN_TABLE" => Some("t".into()),
            "SANDMAN_TEMPLATES" => Some("base".into()),
            _ => env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        })
        .unwrap();
        let key = ProjectKey::new(TeamId::parse("t").unwrap(), ProjectId::parse("p").unwrap());
        serde_json::from_value::<ProjectSettings>(body)
            .expect("parses")
            .into_spec(key, &config)
    }

    #[test]
    fn busy_and_handoff_settings_parse_and_default() {
        let parsed = spec(json!({"templateId": "base"})).unwrap();
        assert_eq!(parsed.idle.busy_cpu_percent, None, "busy-aware idle is off by default");
        assert_eq!(parsed.idle.max_busy_deferral, Duration::from_secs(7200));
        assert_eq!(parsed.idle.max_busy_for, Duration::from_secs(3600));
        assert_eq!(parsed.idle.cap_handoff, CapHandoff::PauseResume);
        let parsed = spec_json(
            json!({"templateId": "base", "busyCpuPercent": 60, "maxBusyDeferralSeconds": 600,
            "maxBusyForSeconds": 120, "capHandoff": "snapshot-reopen"}),
        );
        assert_eq!(parsed.idle.busy_cpu_percent, Some(60));
        assert_eq!(parsed.idle.max_busy_deferral, Duration::from_secs(600));
        assert_eq!(parsed.idle.max_busy_for, Duration::from_secs(120));
        assert_eq!(parsed.idle.cap_handoff, CapHandoff::SnapshotReopen);
        for (body, field) in [
            (json!({"templateId": "base", "busyCpuPercent": 0}), "busyCpuPercent"),
            (json!({"templateId": "base", "busyCpuPercent": 101}), "busyCpuPercent"),
            (
                json!({"templateId": "base", "maxBusyDeferralSeconds": 10}),
                "maxBusyDeferralSeconds",
            ),
            (
                json!({"templateId": "base", "maxBusyForSeconds": 86401}),
                "maxBusyForSeconds",
            ),
        ] {
            let err = format!("{:?}", spec(body.clone()).unwrap_err());
            assert!(err.contains(&format!("field: Some(\"{field}\")")), "{body}: {err}");
        }
    }

    #[test]
    fn adaptive_idle_parses_with_bounds_and_refuses_what_contradicts_it() {
        let fixed = spec(json!({"templateId": "base", "idle": {"mode": "fixed"}})).unwrap();
        assert_eq!(fixed.idle.adaptive, None);
        let parsed = spec(json!({"templateId": "base", "idle": {"mode": "adaptive", "minSeconds": 300}})).unwrap();
        let bounds = parsed.idle.adaptive.expect("adaptive");
        assert_eq!(
            (bounds.min.as_secs(), bounds.max.as_secs()),
            (300, 1500),
            "under the 1800 s backstop"
        );
        assert_eq!(
            parsed.idle.idle_timeout,
            Duration::from_secs(600),
            "10 minutes until gaps are seen"
        );
        let capped = [("SESSION_CAP_SECS", "1200"), ("SESSION_CAP_MARGIN_SECS", "300")];
        // A bound out of its own range, or one given with the fixed mode, is refused.
        for (body, field) in [
            (json!({"mode": "adaptive", "minSeconds": 60}), "idle.minSeconds"),
            (json!({"mode": "adaptive", "maxSeconds": 86401}), "idle.maxSeconds"),
            (json!({"mode": "fixed", "maxSeconds": 600}), "idle.maxSeconds"),
        ] {
            let err = format!("{:?}", spec(json!({"templateId": "base", "idle": body})).unwrap_err());
            assert!(err.contains(&format!("field: Some(\"{field}\")")), "{body}: {err}");
        }
        // How the bounds fit each other and the deployment is settled, and shown as applied.
        for (body, env, idle_timeout, expected) in [
            (
                json!({"mode": "adaptive", "minSeconds": 900, "maxSeconds": 600}),
                &[][..],
                None,
                (900, 900, 900),
            ),
            (
                json!({"mode": "adaptive", "maxSeconds": 1501}),
                &[][..],
                None,
                (120, 1500, 600),
            ),
            (json!({"mode": "adaptive"}), &capped[..], None, (120, 899, 600)),
            (json!({"mode": "adaptive"}), &[][..], Some(1000), (120, 1500, 1000)),
            (
                json!({"mode": "adaptive", "maxSeconds": 300}),
                &[][..],
                Some(1000),
                (120, 300, 300),
            ),
        ] {
            let mut settings = json!({"templateId": "base", "idle": body});
            if let Some(seconds) = idle_timeout {
                settings["idleTimeoutSeconds"] = json!(seconds);
            }
            let parsed = spec_with(settings, env).unwrap();
            let bounds = parsed.idle.adaptive.expect("adaptive");
            assert_eq!(
                (
                    bounds.min.as_secs(),
                    bounds.max.as_secs(),
                    parsed.idle.idle_timeout.as_secs()
                ),
                expected,
                "{body} {idle_timeout:?}"
            );
        }
        assert!(
            serde_json::from_value::<ProjectSettings>(json!({"templateId": "b", "idle": {"mode": "smart"}})).is_err()
        );
    }

    #[test]
    fn the_idle_timeout_must_end_before_the_handoff() {
        let capped = [("SESSION_CAP_SECS", "3600"), ("SESSION_CAP_MARGIN_SECS", "300")];
        assert!(spec_with(json!({"templateId": "base", "idleTimeoutSeconds": 3299}), &capped).is_ok());
        let err = format!(
            "{:?}",
            spec_with(json!({"templateId": "base", "idleTimeoutSeconds": 3300}), &capped).unwrap_err()
        );
        assert!(
            err.contains("field: Some(\"idleTimeoutSeconds\")") && err.contains("3300"),
            "{err}"
        );
        assert!(
            spec(json!({"templateId": "base", "idleTimeoutSeconds": 86400})).is_ok(),
            "no cap, no bound"
        );
    }

    fn spec_json(body: serde_json::Value) -> ProjectSpec {
        spec(body).expect("valid")
    }

    #[test]
    fn omitted_fields_take_the_defaults() {
        let spec = spec(json!({"templateId": "base"})).unwrap();
        assert_eq!(spec.idle.idle_timeout, Duration::from_secs(600));
        assert_eq!(spec.sandbox_timeout, Duration::from_secs(1800));
        assert_eq!(
            spec.retention,
            RetentionPolicy {
                keep_last: 10,
                max_age: None
            }
        );
        assert!(!spec.snapshot_before_kill && !spec.idle.snapshot_on_idle);
    }

    /// Security review M1: `keepLast` is bounded (100), far below what a team's snapshot quota
    /// holds across its projects.
    #[test]
    fn keep_last_has_a_sane_maximum() {
        let keep = |n: u32| spec(json!({"templateId": "base", "retention": {"keepLast": n}}));
        assert_eq!(keep(100).unwrap().retention.keep_last, 100);
        for n in [101, 1000] {
            let err = format!("{:?}", keep(n).unwrap_err());
            assert!(
                err.contains("field: Some(\"retention.keepLast\")") && err.contains("100"),
                "{n}: {err}"
            );
        }
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let cases = [
            (
                json!({"templateId": "base", "idleTimeoutSeconds": 59}),
                "idleTimeoutSeconds",
            ),
            (
                json!({"templateId": "base", "sandboxTimeoutSeconds": 86401}),
                "sandboxTimeoutSeconds",
            ),
            (
                json!({"templateId": "base", "retention": {"keepLast": 101}}),
                "retention.keepLast",
            ),
            (
                json!({"templateId": "base", "retention": {"maxAgeSeconds": 10}}),
                "retention.maxAgeSeconds",
            ),
            (json!({"templateId": " "}), "templateId"),
            (json!({"templateId": "has space"}), "templateId"),
            (
                json!({"templateId": "sandman-01jd2k3m4n5p6q7r8s9t0v1w2x"}),
                "templateId",
            ),
            (json!({"templateId": "not-allowed"}), "templateId"),
        ];
        for (body, field) in cases {
            let err = format!("{:?}", spec(body.clone()).unwrap_err());
            assert!(err.contains(&format!("field: Some(\"{field}\")")), "{body}: {err}");
        }
        assert!(spec(json!({"templateId": "base", "idleTimeoutSeconds": 60, "sandboxTimeoutSeconds": 86400})).is_ok());
    }
}
