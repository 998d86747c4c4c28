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
/// `idle_timeout_given`: whether the body set `idleTimeoutSeconds` (refused with adaptive).
/// `handoff_after`: the team's session-cap handoff, which every idle timeout must stay under.
/// `sandbox_timeout`: E2B's own timeout, the backstop, which must outlast the longest timeout.
pub fn adaptive(
    idle: Option<IdleSettings>,
    idle_timeout_given: bool,
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
    if idle_timeout_given {
        return Err(ApiError::invalid(
            "idleTimeoutSeconds",
            "idleTimeoutSeconds is learned when idle.mode is \"adaptive\": set idle.minSeconds and idle.maxSeconds instead",
        ));
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
    let backstop_max = sandbox_timeout.saturating_sub(BACKSTOP_MARGIN).as_secs();
    let max = bound(
        "idle.maxSeconds",
        idle.max_seconds.unwrap_or(DEFAULT_MAX.min(backstop_max).max(min)),
    )?;
    if max < min {
        return Err(ApiError::invalid(
            "idle.maxSeconds",
            format!("idle.maxSeconds ({max}) must be at least idle.minSeconds ({min})"),
        ));
    }
    if let Some(handoff_after) = handoff_after
        && max >= handoff_after.as_secs()
    {
        return Err(ApiError::invalid(
            "idle.maxSeconds",
            format!(
                "idle.maxSeconds must be under {} (the team's session cap less its handoff margin)",
                handoff_after.as_secs()
            ),
        ));
    }
    let backstop = sandbox_timeout.saturating_sub(BACKSTOP_MARGIN).as_secs();
    if max > backstop {
        return Err(ApiError::invalid(
            "idle.maxSeconds",
            format!(
                "idle.maxSeconds must be at most {backstop} (sandboxTimeoutSeconds less {} s: E2B's own pause comes after Sandman's)",
                BACKSTOP_MARGIN.as_secs()
            ),
        ));
    }
    let bounds = AdaptiveIdle {
        min: Duration::from_secs(min),
        max: Duration::from_secs(max),
        cold_weight: COLD_RESUME_WEIGHT,
    };
    Ok(Some((bounds, FIRST_TIMEOUT.clamp(bounds.min, bounds.max))))
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
