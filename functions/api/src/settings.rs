//! The body of `PUT /v1/projects/{projectId}`, checked and turned into the core's `ProjectSpec`.

use std::ops::RangeInclusive;
use std::time::Duration;

use sandman::config::Config;
use sandman::domain::{IdlePolicy, InactivityPolicy, ProjectKey, ProjectSpec, RetentionPolicy};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// A project's settings. `PUT` replaces them: an omitted field takes the deployment's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectSettings {
    /// The E2B template new sandboxes start from when there is no snapshot to restore.
    pub template_id: String,
    /// Idle time after which the sandbox is paused, 60 to 86400 seconds.
    pub idle_timeout_seconds: Option<u64>,
    /// Save a snapshot before each idle pause.
    pub snapshot_on_idle: Option<bool>,
    /// Save a snapshot before the sandbox is killed (unless the kill says otherwise).
    pub snapshot_before_kill: Option<bool>,
    /// Let the sandbox's URLs answer without E2B's traffic access token (off by default).
    pub public_traffic: Option<bool>,
    /// The E2B timeout given on create and resume, 60 to 86400 seconds.
    pub sandbox_timeout_seconds: Option<u64>,
    pub retention: Option<RetentionSettings>,
    pub inactivity: Option<InactivitySettings>,
}

/// Inactivity tiers, all off unless set.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InactivitySettings {
    /// A sandbox paused longer than this is archived: snapshotted (unless a snapshot taken since the
    /// pause exists) and killed, so E2B keeps nothing paused for it; the next open restores the
    /// snapshot. 60 seconds to 1 year; off by default.
    pub archive_after_seconds: Option<u64>,
    /// The snapshots of a project with no activity for this long are deleted (the project and its
    /// log stay; the next open starts from the template). 86400 seconds to 3 years; off by default.
    pub delete_after_seconds: Option<u64>,
    /// Whether `deleteAfterSeconds` deletes pinned snapshots too (default false: pins stay).
    pub delete_pinned: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionSettings {
    /// Unpinned snapshots kept, 0 to 1000.
    pub keep_last: Option<u32>,
    /// Unpinned snapshots older than this are deleted, 3600 seconds to 3 years.
    pub max_age_seconds: Option<u64>,
}

const TIMEOUT_SECONDS: RangeInclusive<u64> = 60..=86_400;
const MAX_AGE_SECONDS: RangeInclusive<u64> = 3_600..=3 * 365 * 86_400;
const MAX_KEEP_LAST: u32 = 1000;
const ARCHIVE_AFTER_SECONDS: RangeInclusive<u64> = 60..=365 * 86_400;
const DELETE_AFTER_SECONDS: RangeInclusive<u64> = 86_400..=3 * 365 * 86_400;

impl ProjectSettings {
    pub fn into_spec(self, key: ProjectKey, config: &Config) -> Result<ProjectSpec, ApiError> {
        let defaults = &config.defaults;
        let template_id = self.template_id.trim().to_string();
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
                idle_timeout: idle_timeout.unwrap_or(defaults.idle_timeout),
                snapshot_on_idle: self.snapshot_on_idle.unwrap_or(false),
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
        let config = sandman::config::Config::from_lookup(|name| match name {
            "SANDMAN_TABLE" => Some("t".into()),
            "SANDMAN_TEMPLATES" => Some("base".into()),
            _ => None,
        })
        .unwrap();
        let key = ProjectKey::new(TeamId::parse("t").unwrap(), ProjectId::parse("p").unwrap());
        serde_json::from_value::<ProjectSettings>(body)
            .expect("parses")
            .into_spec(key, &config)
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
                json!({"templateId": "base", "retention": {"keepLast": 1001}}),
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
