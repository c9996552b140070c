//! Reads that several nodes need, done once per run.
//!
//! The access key and the credentials block both need the block document; every network
//! node needs the default VPC's state. A [`Memo`] runs the first request for a key and hands
//! every later caller the same result, even while the first is still in flight.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// A per-key cache of one async computation's result.
pub struct Memo<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self { cells: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    /// The value for `key`, computed by `init` once; concurrent callers wait for it.
    pub async fn get_or_init<F, Fut>(&self, key: &K, init: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = {
            let mut cells = self.cells.lock().expect("memo lock is never poisoned");
            cells.entry(key.clone()).or_default().clone()
        };
        cell.get_or_init(init).await.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_computation() {
        let memo: Memo<&str, usize> = Memo::default();
        let calls = AtomicUsize::new(0);
        let compute = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            7
        };
        let (a, b) = tokio::join!(memo.get_or_init(&"k", compute), memo.get_or_init(&"k", compute));
        assert_eq!((a, b), (7, 7));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
