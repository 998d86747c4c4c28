//! What E2B compute costs, for estimates: per vCPU-second and per GiB-second of memory.

use crate::domain::Usage;

/// E2B's published per-second prices, read 2026-11-27 (e2b.dev/pricing and e2b.dev/docs/billing:
/// $0.000014 per vCPU-second, $0.0000045 per GiB-second). A deployment with other prices sets
/// `E2B_PRICE_VCPU_SECOND_USD` and `E2B_PRICE_GIB_SECOND_USD`.
pub const PRICES_AS_OF: &str = "2026-11-27";
pub const DEFAULT_VCPU_SECOND_USD: f64 = 0.000_014;
pub const DEFAULT_GIB_SECOND_USD: f64 = 0.000_004_5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub vcpu_second_usd: f64,
    pub gib_second_usd: f64,
    /// The date the rates were read from E2B's pricing, or `configured` when the deployment set them.
    pub as_of: &'static str,
}

impl Default for Rates {
    fn default() -> Self {
        Self {
            vcpu_second_usd: DEFAULT_VCPU_SECOND_USD,
            gib_second_usd: DEFAULT_GIB_SECOND_USD,
            as_of: PRICES_AS_OF,
        }
    }
}

/// Configuration refuses NaN prices, so equality is total.
impl Eq for Rates {}

impl Rates {
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        usage.vcpu_seconds * self.vcpu_second_usd + usage.memory_mb_seconds / 1024.0 * self.gib_second_usd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2b_example_prices_an_hour_of_8_vcpu_and_4_gib_at_0_468() {
        let hour = Usage {
            run_seconds: 3600.0,
            vcpu_seconds: 8.0 * 3600.0,
            memory_mb_seconds: 4096.0 * 3600.0,
        };
        assert!((Rates::default().cost_usd(&hour) - 0.468).abs() < 1e-9);
    }
}
