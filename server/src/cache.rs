//! A small keyed cache whose values are refreshed in the background, so a slow upstream never
//! makes a request wait on it; bounded in entries.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How long the first request for a key waits for its first read before answering without.
pub const FIRST_WAIT: Duration = Duration::from_millis(1500);
/// Keys remembered; entries nobody asked for in a minute go first.
const MAX_ENTRIES: usize = 2048;

/// A keyed cache whose values are refreshed in the background once older than its freshness,
/// at most one refresh per key at a time. Bounded: at [`MAX_ENTRIES`], entries nobody asked for
/// in a minute are dropped, then the least recently asked.
pub struct Cache<V> {
    fresh_for: Duration,
    entries: Arc<Mutex<HashMap<String, Entry<V>>>>,
}

struct Entry<V> {
    value: Option<V>,
    fetched: Option<Instant>,
    asked: Instant,
    refreshing: bool,
    /// Bumped after every refresh, for the first request to wait on.
    done: watch::Sender<u64>,
}

impl<V: Clone + Send + 'static> Cache<V> {
    /// A cache whose values stay fresh for `fresh_for`.
    pub fn new(fresh_for: Duration) -> Self {
        Cache { fresh_for, entries: Arc::default() }
    }

    /// The value for `key`. When it is missing or stale, `read` runs in the background and
    /// `apply(previous, result)` becomes the new value; only a key never read yet waits for it,
    /// up to [`FIRST_WAIT`]. `None` when there is no value yet.
    pub async fn get<R, F>(&self, key: &str, read: F, apply: fn(Option<V>, R) -> V) -> Option<V>
    where
        F: Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        let (value, mut done) = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
                evict(&mut entries);
            }
            let entry = entries.entry(key.to_owned()).or_insert_with(|| Entry {
                value: None,
                fetched: None,
                asked: Instant::now(),
                refreshing: false,
                done: watch::channel(0).0,
            });
            entry.asked = Instant::now();
            let stale = entry.fetched.is_none_or(|t| t.elapsed() >= self.fresh_for);
            if stale && !entry.refreshing {
                entry.refreshing = true;
                let (entries, key) = (self.entries.clone(), key.to_owned());
                tokio::spawn(async move {
                    let result = read.await;
                    let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(entry) = entries.get_mut(&key) {
                        entry.value = Some(apply(entry.value.take(), result));
                        entry.fetched = Some(Instant::now());
                        entry.refreshing = false;
                        entry.done.send_modify(|n| *n += 1);
                    }
                });
            }
            (entry.value.clone(), entry.done.subscribe())
        };
        if value.is_some() {
            return value;
        }
        let _ = tokio::time::timeout(FIRST_WAIT, done.changed()).await;
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).and_then(|e| e.value.clone())
    }
}

fn evict<V>(entries: &mut HashMap<String, Entry<V>>) {
    entries.retain(|_, e| e.asked.elapsed() < Duration::from_secs(60));
    if entries.len() >= MAX_ENTRIES {
        if let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.asked).map(|(k, _)| k.clone()) {
            entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn many_askers_share_one_read_and_a_slow_read_never_blocks_a_cached_answer() {
        let cache: Cache<u32> = Cache::new(Duration::from_millis(50));
        let reads = Arc::new(AtomicUsize::new(0));
        let read = |reads: Arc<AtomicUsize>, delay: u64| async move {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            7
        };
        // Ten pages ask at once: one read, every page gets its answer.
        let asks = (0..10).map(|_| cache.get("a/b", read(reads.clone(), 10), |_, r| r));
        let answers = futures::future::join_all(asks).await;
        assert!(answers.iter().all(|a| *a == Some(7)));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Stale now; the next read hangs far longer than any page would wait, yet the answer is
        // immediate: the cached value.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let started = Instant::now();
        assert_eq!(cache.get("a/b", read(reads.clone(), 10_000), |_, r| r).await, Some(7));
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        // A cluster never read waits at most FIRST_WAIT for a hanging read, then answers without.
        let started = Instant::now();
        assert_eq!(cache.get("c/d", read(reads.clone(), 10_000), |_, r| r).await, None);
        assert!(started.elapsed() < FIRST_WAIT + Duration::from_millis(500));
    }
}
