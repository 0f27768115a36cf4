//! The small conversions every stage shares: how numbers and times are written.
//!
//! Nothing here knows the domain, so any stage may use it without reaching into another.

use chrono::{DateTime, SecondsFormat, Utc};

/// Bytes in one MiB.
pub const MIB: f64 = 1024.0 * 1024.0;

/// Rounds to six decimals, the precision of every number Chameleon writes.
pub fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// A time as Unix seconds, to the microsecond.
pub fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// RFC 3339 with seconds and a `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
