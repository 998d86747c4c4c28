//! The policies compared.

use std::time::Duration;

use sandman_protocol::adaptive::{AdaptiveIdle, COLD_RESUME_WEIGHT, Warmup};

/// How a project's running sandbox is judged idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// A fixed idle timeout, as Sandman has today.
    Fixed(Duration),
    /// Sandman's adaptive idle: learned from the project's gaps within these bounds.
    Adaptive(AdaptiveIdle),
    /// The hybrid-histogram policy (`hybrid`), falling back to this fixed keep-alive.
    Hybrid { fallback: Duration },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub idle: Idle,
    pub warmup: Option<Warmup>,
}

/// The adaptive bounds the simulator uses: 2 minutes (the enforcer's tick) to an hour.
pub const ADAPTIVE_BOUNDS: AdaptiveIdle = AdaptiveIdle {
    min: Duration::from_secs(120),
    max: Duration::from_secs(3600),
    cold_weight: COLD_RESUME_WEIGHT,
};

/// The adaptive policy with another cost weight (for `SIM_WEIGHTS`, a sweep).
pub fn adaptive_weighted(minutes: u64) -> Policy {
    Policy {
        name: format!("adaptive w={minutes}m"),
        idle: Idle::Adaptive(AdaptiveIdle {
            cold_weight: Duration::from_secs(minutes * 60),
            ..ADAPTIVE_BOUNDS
        }),
        warmup: None,
    }
}

/// The warm-up the simulator uses: resume 5 minutes before the predicted window.
pub const WARMUP: Warmup = Warmup {
    lead: Duration::from_secs(300),
};

/// The hybrid policy's fallback: the fixed 10 minutes it is compared with.
pub const HYBRID_FALLBACK: Duration = Duration::from_secs(600);

pub const BASELINE: &str = "fixed 10m";

/// Fixed 5, 10, 15 and 30 minutes, adaptive, hybrid histogram; then each with warm-up.
pub fn standard() -> Vec<Policy> {
    let mut bases: Vec<(String, Idle)> = [5, 10, 15, 30]
        .into_iter()
        .map(|m| (format!("fixed {m}m"), Idle::Fixed(Duration::from_secs(m * 60))))
        .collect();
    bases.push(("adaptive".to_string(), Idle::Adaptive(ADAPTIVE_BOUNDS)));
    bases.push((
        "hybrid histogram".to_string(),
        Idle::Hybrid {
            fallback: HYBRID_FALLBACK,
        },
    ));
    let plain = bases.iter().map(|(name, idle)| Policy {
        name: name.clone(),
        idle: *idle,
        warmup: None,
    });
    let warm = bases.iter().map(|(name, idle)| Policy {
        name: format!("{name} + warm-up"),
        idle: *idle,
        warmup: Some(WARMUP),
    });
    plain.chain(warm).collect()
}
