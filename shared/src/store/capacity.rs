use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::ConsumedCapacity;

/// Read and write capacity units in hundredths (DynamoDB reports halves for eventually consistent reads).
/// Writes refused by their condition are included: DynamoDB bills them too.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    pub read_units: f64,
    pub write_units: f64,
    pub calls: u64,
}

#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    read_centi: Arc<AtomicU64>,
    write_centi: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
}

impl CapacityMeter {
    pub fn total(&self) -> Capacity {
        Capacity {
            read_units: self.read_centi.load(Ordering::Relaxed) as f64 / 100.0,
            write_units: self.write_centi.load(Ordering::Relaxed) as f64 / 100.0,
            calls: self.calls.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn record_read<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.record(consumed, &self.read_centi);
    }

    pub(crate) fn record_write<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.record(consumed, &self.write_centi);
    }

    /// A write its condition refused. DynamoDB bills it (one write unit per item at least, twice
    /// that in a transaction) but reports no consumed capacity with the error, so it is counted here.
    pub(crate) fn record_failed_write(&self, units: f64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.write_centi
            .fetch_add((units * 100.0).round() as u64, Ordering::Relaxed);
    }

    fn record<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>, into: &AtomicU64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let units: f64 = consumed.into_iter().filter_map(|c| c.capacity_units()).sum();
        into.fetch_add((units * 100.0).round() as u64, Ordering::Relaxed);
    }
}
