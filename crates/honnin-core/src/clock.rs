//! Wall-clock time as the service stores it (milliseconds since the Unix epoch) and
//! shows it (RFC 3339).

use std::time::Duration;

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `ms` (milliseconds since the epoch) as RFC 3339 UTC with milliseconds,
/// e.g. `2026-12-07T15:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}
