//! Wall-clock time as Unix seconds: what markers that other runs read carry (a lock's age, the
//! time before an access key was minted), comparable with AWS's own timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
