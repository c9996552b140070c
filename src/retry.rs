//! Backoff shared by every retry of pushpool: the REST transport ([`crate::http`]), the
//! cloud creates that cannot be left to an SDK's automatic retries, and the waits for a
//! cloud's consistency delays ([`settle`]).

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

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

/// How many times [`settle`] tries before giving up: about three minutes with the backoff, what
/// the clouds' own CLIs allow their directories to replicate.
pub const SETTLE_TRIES: u32 = 25;

/// What one try of [`settle`] found.
pub enum Settling<T> {
    /// The cloud answered for good (a success, or an error that waiting does not cure).
    Done(T),
    /// The cloud has not caught up yet with a change it made moments ago; the error to give if
    /// it never does.
    NotYet(Error),
}

/// Tries `attempt` until a cloud has caught up with a change it made moments ago (a principal,
/// an application or a key being replicated), up to [`SETTLE_TRIES`] times with backoff in
/// between, naming the wait (`waiting_for`: "Entra ID to replicate application x") on the
/// running step's progress line. If the cloud never catches up: the last try's error, with a
/// fix that says to run again.
pub async fn settle<T, F, Fut>(waiting_for: &str, attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Settling<T>>>,
{
    settle_within(SETTLE_TRIES, waiting_for, attempt).await
}

/// [`settle`] with `tries` tries.
async fn settle_within<T, F, Fut>(tries: u32, waiting_for: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Settling<T>>>,
{
    let mut tried = 1;
    loop {
        match attempt().await? {
            Settling::Done(value) => return Ok(value),
            Settling::NotYet(error) if tried >= tries => {
                return Err(
                    error.fix(format!("pushpool waited {tried} times for {waiting_for}, which can take minutes: run again, and pushpool picks up where it stopped"))
                );
            }
            Settling::NotYet(_) => {
                crate::engine::waiting(format!("waiting for {waiting_for} (try {} of {tries})", tried + 1));
                tokio::time::sleep(backoff(tried.min(6))).await;
                tried += 1;
            }
        }
    }
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

    #[tokio::test]
    async fn settle_waits_until_the_cloud_catches_up_and_gives_up_with_a_fix() {
        let mut tries = 0;
        let settled = settle("the test cloud", || {
            tries += 1;
            let now = tries;
            async move { Ok(if now < 3 { Settling::NotYet(Error::remote("x", "not yet")) } else { Settling::Done(now) }) }
        })
        .await;
        assert_eq!(settled.unwrap(), 3);
        let never = settle_within(2, "the test cloud to replicate x", || async { Ok(Settling::<()>::NotYet(Error::remote("x", "still missing"))) }).await.unwrap_err();
        assert_eq!(never.cause, "still missing");
        let fix = never.fix.unwrap();
        assert!(fix.contains("waited 2 times for the test cloud to replicate x") && fix.contains("run again"), "{fix}");
        let failed = settle("the test cloud", || async { Err::<Settling<()>, _>(Error::remote("x", "refused")) }).await.unwrap_err();
        assert_eq!(failed.cause, "refused", "an error that waiting does not cure ends it at once");
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) >= Duration::from_millis(200) && backoff(1) < Duration::from_millis(400));
        assert!(backoff(3) >= Duration::from_millis(800));
        assert!(backoff(60) < Duration::from_millis(12_800));
    }
}
