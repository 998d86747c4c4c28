//! Times are stored as epoch milliseconds: numbers sort in indexes and DynamoDB can add to them
//! (`idleAt = idleTimeoutMs + :now`). TTL attributes are epoch seconds, as DynamoDB requires.

use std::time::Duration;

use time::OffsetDateTime;

pub fn to_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub fn ttl_seconds(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
}
