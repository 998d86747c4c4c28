//! `idle: {mode, minSeconds, maxSeconds}`: a fixed idle timeout (`idleTimeoutSeconds`), or one
//! learned from the project's own idle gaps within bounds (docs/ADAPTIVE.md).

use std::ops::RangeInclusive;
use std::time::Duration;

use sandman::protocol::adaptive::{AdaptiveIdle, COLD_RESUME_WEIGHT, FIRST_TIMEOUT};
use sandman::protocol::ops::activity::BACKSTOP_MARGIN;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::json_shape::whole;

/// How the idle timeout is chosen.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdleSettings {
    /// `fixed` (the default): `idleTimeoutSeconds`. `adaptive`: learned from the project's own
    /// idle gaps, the timeout within the bounds that costs least, a cold resume weighing 20
    /// minutes of running; 10 minutes (within the bounds) until 8 gaps were seen. Heartbeats are
    /// then written at least every 30 seconds.
    pub mode: Option<IdleMode>,
    /// Adaptive only: the shortest learned timeout, 120 to 86400 seconds (default 120).
    #[schema(minimum = 120, maximum = 86400)]
    #[serde(default, deserialize_with = "whole")]
    pub min_seconds: Option<u64>,
    /// Adaptive only: the longest learned timeout, 120 to 86400 seconds, at least `minSeconds`
    /// and at most `sandboxTimeoutSeconds` less 300 (default 3600, or that if less).
    #[schema(minimum = 120, maximum = 86400)]
    #[serde(default, deserialize_with = "whole")]
    pub max_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IdleMode {
    #[default]
    Fixed,
    Adaptive,
}

/// A learned timeout is never under the enforcer's tick (2 minutes).
const BOUND_SECONDS: RangeInclusive<u64> = 120..=86_400;
const DEFAULT_MIN: u64 = 120;
const DEFAULT_MAX: u64 = 3_600;

/// The adaptive bounds `idle` asks for, and the idle timeout to start from; `None` for fixed.
/// `idle_timeout`: the body's `idleTimeoutSeconds`, with adaptive the timeout to start from.
/// `handoff_after`: the team's session-cap handoff, which every idle timeout stays under.
/// `sandbox_timeout`: E2B's own timeout, the backstop, which the longest timeout stays under.
///
/// Each bound is checked alone (120 to 86400, as the OpenAPI document says); how they fit each
/// other and the deployment is settled, not refused, and `GET` shows the bounds applied: a
/// maximum under the minimum is raised to it, both stay under the handoff, and the maximum under
/// the backstop unless the minimum is past it (E2B's own pause, on its timeout, then comes first).
pub fn adaptive(
    idle: Option<IdleSettings>,
    idle_timeout: Option<Duration>,
    handoff_after: Option<Duration>,
    sandbox_timeout: Duration,
) -> Result<Option<(AdaptiveIdle, Duration)>, ApiError> {
    let idle = idle.unwrap_or_default();
    if idle.mode.unwrap_or_default() == IdleMode::Fixed {
        if let Some(field) = [
            ("idle.minSeconds", idle.min_seconds),
            ("idle.maxSeconds", idle.max_seconds),
        ]
        .into_iter()
        .find_map(|(field, value)| value.map(|_| field))
        {
            return Err(ApiError::invalid(
                field,
                format!("{field} is only for idle.mode \"adaptive\""),
            ));
        }
        return Ok(None);
    }
    let bound = |field: &'static str, value: u64| {
        if BOUND_SECONDS.contains(&value) {
            Ok(value)
        } else {
            Err(ApiError::invalid(
                field,
                format!(
                    "{field} must be from {} to {}",
                    BOUND_SECONDS.start(),
                    BOUND_SECONDS.end()
                ),
            ))
        }
    };
    let min = bound("idle.minSeconds", idle.min_seconds.unwrap_or(DEFAULT_MIN))?;
    let backstop = sandbox_timeout.saturating_sub(BACKSTOP_MARGIN).as_secs();
    let max = match idle.max_seconds {
        Some(max) => bound("idle.maxSeconds", max)?,
        None => DEFAULT_MAX,
    };
    let max = max.min(backstop).max(min);
    // Under the handoff: a run's first deadline is its idle one (settings.rs says why).
    let (min, max) = match handoff_after.map(|h| h.as_secs().saturating_sub(1).max(1)) {
        Some(ceiling) => (min.min(ceiling), max.min(ceiling)),
        None => (min, max),
    };
    let bounds = AdaptiveIdle {
        min: Duration::from_secs(min),
        max: Duration::from_secs(max),
        cold_weight: COLD_RESUME_WEIGHT,
    };
    let first = idle_timeout.unwrap_or(FIRST_TIMEOUT);
    Ok(Some((bounds, first.clamp(bounds.min, bounds.max))))
}

/// How a project's idle timeout is chosen, as `GET` shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdleView {
    pub mode: IdleMode,
    /// Adaptive only: the shortest timeout it may learn (`idleTimeoutSeconds` is the one so far).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seconds: Option<u64>,
    /// Adaptive only: the longest timeout it may learn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<u64>,
    /// Adaptive only: idle gaps learned from (the last ones weigh most; counts halve at 255).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gaps_seen: Option<u32>,
}

impl IdleView {
    pub fn of(project: &sandman::domain::Project) -> IdleView {
        match project.idle.adaptive {
            None => IdleView {
                mode: IdleMode::Fixed,
                min_seconds: None,
                max_seconds: None,
                gaps_seen: None,
            },
            Some(bounds) => IdleView {
                mode: IdleMode::Adaptive,
                min_seconds: Some(bounds.min.as_secs()),
                max_seconds: Some(bounds.max.as_secs()),
                gaps_seen: Some(project.idle_gaps.total()),
            },
        }
    }
}
