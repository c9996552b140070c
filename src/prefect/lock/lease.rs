//! The lease of an apply marker: the run that holds it renews it while it applies, and a
//! marker not renewed for [`LEASE_SECONDS`] is stale on any machine.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often a run renews its markers while it applies. An apply shorter than this (most
/// take a second or two) renews nothing: the first renewal comes one period after the start.
pub(super) const RENEW: Duration = Duration::from_secs(20);

/// A marker not renewed for this long is stale: its run missed four renewals. Renewals carry
/// the holder's clock and are judged by the reader's, so the clocks of two machines may be
/// over a minute apart before a live run looks stale.
pub const LEASE_SECONDS: i64 = 90;

/// The last time `holder` said it was alive (Unix seconds): its last renewal, else its start.
pub(super) fn renewed(holder: &Value) -> Option<i64> {
    holder["renewed"].as_i64().or_else(|| holder["since"].as_i64())
}

/// True when `holder`'s lease had lapsed at `now`; a marker that says no time holds none.
pub(super) fn lapsed(holder: &Value, now: i64) -> bool {
    renewed(holder).is_none_or(|renewed| now - renewed > LEASE_SECONDS)
}

/// The renewals of a running apply, in a task of their own beside it.
pub(super) struct Renewal {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Renewal {
    /// Calls `renew` every `period`, the first time one period from now, until stopped (or
    /// dropped). A renewal that fails is for `renew` to bear: the next one comes all the same.
    pub(super) fn start<F, R>(period: Duration, mut renew: F) -> Self
    where
        F: FnMut() -> R + Send + 'static,
        R: Future<Output = ()> + Send + 'static,
    {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                // Stop first: once asked, no renewal begins, even one that is due.
                tokio::select! {
                    biased;
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(period) => renew().await,
                }
            }
        });
        Self { stop, task }
    }

    /// Stops the renewals, after the one under way if any: no renewal lands after the
    /// marker's last write.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use tokio::sync::Notify;

    use super::*;

    #[test]
    fn the_lease_runs_from_the_last_renewal_else_the_start() {
        let now = 1_000_000;
        assert!(!lapsed(&json!({"since": now - 3600, "renewed": now - LEASE_SECONDS}), now), "renewed just in time");
        assert!(lapsed(&json!({"since": now, "renewed": now - LEASE_SECONDS - 1}), now));
        assert!(!lapsed(&json!({"since": now - 5}), now), "not renewed yet: its start counts");
        assert!(lapsed(&json!({"since": now - LEASE_SECONDS - 1}), now));
        assert!(lapsed(&json!({"pid": 7}), now), "no time, no lease");
    }

    #[tokio::test]
    async fn nothing_is_renewed_before_one_period() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let renewal = Renewal::start(RENEW, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        // The task runs (this runtime has one thread) and waits for its first period.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        renewal.stop().await;
        assert_eq!(calls.load(Ordering::SeqCst), 0, "an apply shorter than RENEW makes no extra call");
    }

    #[tokio::test]
    async fn stopping_waits_for_the_renewal_under_way_and_starts_no_other() {
        let (began, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (started, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let renewal = {
            let (began, gate, started, finished) = (began.clone(), gate.clone(), started.clone(), finished.clone());
            Renewal::start(Duration::from_millis(1), move || {
                let (began, gate, finished) = (began.clone(), gate.clone(), finished.clone());
                started.fetch_add(1, Ordering::SeqCst);
                async move {
                    began.notify_one();
                    gate.notified().await;
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        began.notified().await;
        let mut stop = Box::pin(renewal.stop());
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut stop).await;
        assert!(waited.is_err(), "stop returned while a renewal was under way");
        gate.notify_one();
        stop.await;
        assert_eq!((started.load(Ordering::SeqCst), finished.load(Ordering::SeqCst)), (1, 1));
    }
}
