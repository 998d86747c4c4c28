//! `GET /sandboxes/{id}/metrics` and the batch `GET /sandboxes/metrics?sandbox_ids=…`: synthetic
//! but well-formed resource samples, with the CPU use a test set when it set one.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::{Extension, Json};
use serde::Serialize;
use time::OffsetDateTime;

use super::wire::{self, SandboxMetricBody};
use crate::app::{App, Team};
use crate::error::ApiError;
use crate::sandbox::{SandboxState, SandboxView};

const METRIC_STEP_SECS: i64 = 5;
const MAX_METRICS: usize = 100;
/// E2B's limit on ids per batch metrics call.
const MAX_BATCH_IDS: usize = 100;

/// Synthetic samples every 5 s over the current execution; none while paused.
pub(crate) async fn metrics(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Vec<SandboxMetricBody>>, ApiError> {
    let pairs = wire::query_pairs(&uri)?;
    let bound = |name: &str| -> Result<Option<i64>, ApiError> {
        let Some((_, value)) = pairs.iter().find(|(k, _)| k == name) else {
            return Ok(None);
        };
        value
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a unix timestamp in seconds")))
    };
    let (start, end) = (bound("start")?, bound("end")?);
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(ApiError::BadRequest("start must not be after end".to_owned()));
    }
    let sandbox = app.world().get(&team, &id)?;
    if sandbox.reported_state() != SandboxState::Running {
        return Ok(Json(Vec::new()));
    }
    let now = app.now().unix_timestamp();
    let from = start.unwrap_or(i64::MIN).max(sandbox.started_at.unix_timestamp());
    let to = end.unwrap_or(i64::MAX).min(now);
    let mut samples: Vec<SandboxMetricBody> = (0..)
        .map(|step| to - step * METRIC_STEP_SECS)
        .take_while(|at| *at >= from)
        .take(MAX_METRICS)
        .filter_map(|at| sample(&sandbox, at))
        .collect();
    samples.reverse();
    Ok(Json(samples))
}

#[derive(Serialize)]
pub(crate) struct SandboxesWithMetrics {
    sandboxes: BTreeMap<String, SandboxMetricBody>,
}

/// The latest sample of each running sandbox named (up to 100); paused, killed, unknown and
/// other teams' ids are left out, as E2B lists only running sandboxes.
pub(crate) async fn batch(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    uri: Uri,
) -> Result<Json<SandboxesWithMetrics>, ApiError> {
    let pairs = wire::query_pairs(&uri)?;
    let mut ids: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "sandbox_ids")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(ApiError::BadRequest("sandbox_ids is required".to_owned()));
    }
    if ids.len() > MAX_BATCH_IDS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_BATCH_IDS} sandbox_ids per request"
        )));
    }
    let now = app.now().unix_timestamp();
    let world = app.world();
    let sandboxes = ids
        .into_iter()
        .filter_map(|id| world.get(&team, id).ok())
        .filter(|sandbox| sandbox.reported_state() == SandboxState::Running)
        .filter_map(|sandbox| Some((sandbox.sandbox_id.clone(), sample(&sandbox, now)?)))
        .collect();
    Ok(Json(SandboxesWithMetrics { sandboxes }))
}

fn sample(sandbox: &SandboxView, at: i64) -> Option<SandboxMetricBody> {
    let timestamp = OffsetDateTime::from_unix_timestamp(at).ok()?;
    let mem_total = u64::from(sandbox.memory_mb) * 1024 * 1024;
    let disk_total = u64::from(sandbox.disk_size_mb) * 1024 * 1024;
    let wobble = (at.rem_euclid(7)) as u64;
    Some(SandboxMetricBody {
        timestamp,
        timestamp_unix: at,
        cpu_count: sandbox.cpu_count,
        cpu_used_pct: sandbox.cpu_used_pct.unwrap_or(1.5 + wobble as f64),
        mem_used: mem_total / 4 + wobble * 1024 * 1024,
        mem_total,
        mem_cache: mem_total / 16,
        disk_used: disk_total / 10,
        disk_total,
    })
}
