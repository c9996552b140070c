//! Backoff shared by every retry of pushpool: the REST transport ([`crate::http`]) and the
//! cloud creates that cannot be left to an SDK's automatic retries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many times an operation that failed transiently is tried in all.
pub const ATTEMPTS: u32 = 6;

/// The wait before poll `n` of a long-running operation: 0.2 s doubling to a 5 s ceiling.
pub fn poll_wait(n: u32) -> Duration {
    Duration::from_millis((200u64 << n.min(5)).min(5_000))
}

/// Exponential backoff from 100 ms (capped at 6.4 s), plus up to as much again of jitter so
/// that concurrent retries spread out. `attempt` counts from 1.
pub fn backoff(attempt: u32) -> Duration {
    let base = 100u64 << attempt.min(6);
    let jitter = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::from(d.subsec_nanos()) % base).unwrap_or(0);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    #[test]
    fn polls_back_off_to_a_ceiling() {
        use std::time::Duration;
        assert_eq!(super::poll_wait(0), Duration::from_millis(200));
        assert_eq!(super::poll_wait(3), Duration::from_millis(1600));
        assert_eq!(super::poll_wait(40), Duration::from_secs(5));
    }

    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) >= Duration::from_millis(200) && backoff(1) < Duration::from_millis(400));
        assert!(backoff(3) >= Duration::from_millis(800));
        assert!(backoff(60) < Duration::from_millis(12_800));
    }
}
