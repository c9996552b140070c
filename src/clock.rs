//! Wall-clock time as Unix seconds: what markers that other runs read carry (a lock's age, the
//! time before an access key was minted), comparable with AWS's own timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds of an RFC 3339 time as Google and Microsoft Graph return them
/// (`2026-11-30T16:00:00Z`, fractions of a second allowed and dropped).
pub fn unix_of_rfc3339(time: &str) -> Option<i64> {
    let parsed = humantime::parse_rfc3339_weak(time.trim_end_matches('Z').split('.').next()?).ok()?;
    parsed.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs() as i64)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_times_are_read_as_unix_seconds() {
        assert_eq!(super::unix_of_rfc3339("2026-11-30T16:00:00Z"), Some(1_796_054_400));
        assert_eq!(super::unix_of_rfc3339("2026-11-30T16:00:00.123456Z"), Some(1_796_054_400));
        assert_eq!(super::unix_of_rfc3339("not a time"), None);
    }
}
