//! The work queue each controller drains: client-go's rate-limited queue, in Rust.
//!
//! - A key added while it waits is not added twice (de-duplication).
//! - A key being processed is never handed to a second worker; added meanwhile, it is queued
//!   again when the first worker is [`WorkQueue::done`] with it.
//! - A failed key comes back after a per-key exponential delay, 5 ms doubling to 1000 s, or
//!   later when the overall token bucket (10 per second, bursts of 100) is short — client-go's
//!   `DefaultControllerRateLimiter`, the larger of the two.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Per-key backoff: 5 ms × 2^failures, at most 1000 s.
pub const BASE_DELAY: Duration = Duration::from_millis(5);
pub const MAX_DELAY: Duration = Duration::from_secs(1000);
/// The overall bucket: 10 rate-limited adds per second, bursts of 100.
const BUCKET_QPS: f64 = 10.0;
const BUCKET_BURST: f64 = 100.0;

struct Inner<K> {
    queue: VecDeque<K>,
    /// Keys waiting in `queue` or to be queued again once processed.
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    bucket: Bucket,
    shut_down: bool,
}

/// A de-duplicating, rate-limited queue of keys.
pub struct WorkQueue<K> {
    inner: Mutex<Inner<K>>,
    ready: Notify,
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    pub fn new() -> Arc<WorkQueue<K>> {
        Arc::new(WorkQueue {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                bucket: Bucket::new(),
                shut_down: false,
            }),
            ready: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: K) {
        let mut inner = self.lock();
        if inner.shut_down || !inner.dirty.insert(key.clone()) {
            return;
        }
        if inner.processing.contains(&key) {
            return; // queued again by `done`
        }
        inner.queue.push_back(key);
        drop(inner);
        self.ready.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: K, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queues a key that failed, after its backoff (and the overall bucket's).
    pub fn add_rate_limited(self: &Arc<Self>, key: K) {
        let delay = {
            let mut inner = self.lock();
            let failures = inner.failures.entry(key.clone()).or_insert(0);
            let per_key = backoff(*failures);
            *failures = failures.saturating_add(1);
            per_key.max(inner.bucket.reserve(Instant::now()))
        };
        self.add_after(key, delay);
    }

    /// The key succeeded: its backoff starts over.
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// How many times `key` failed since it last succeeded.
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to process (waiting for one); `None` once shut down.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.ready.notified();
            {
                let mut inner = self.lock();
                if let Some(key) = inner.queue.pop_front() {
                    inner.dirty.remove(&key);
                    inner.processing.insert(key.clone());
                    let more = !inner.queue.is_empty();
                    drop(inner);
                    if more {
                        // Wake another worker for the rest.
                        self.ready.notify_one();
                    }
                    return Some(key);
                }
                if inner.shut_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The worker is finished with `key`; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let mut inner = self.lock();
        inner.processing.remove(key);
        if inner.dirty.contains(key) {
            inner.queue.push_back(key.clone());
            drop(inner);
            self.ready.notify_one();
        }
    }

    /// Stops handing out keys; waiting workers get `None`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.ready.notify_waiters();
    }

    /// Keys waiting (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The per-key exponential delay after `failures` earlier failures: 5 ms, 10 ms, 20 ms, …,
/// capped at 1000 s (reached after 18 failures: 5 ms × 2^18 ≈ 1311 s).
pub fn backoff(failures: u32) -> Duration {
    let factor = 2u64.saturating_pow(failures.min(40));
    BASE_DELAY
        .checked_mul(u32::try_from(factor).unwrap_or(u32::MAX))
        .map_or(MAX_DELAY, |d| d.min(MAX_DELAY))
}

/// A token bucket: `reserve` takes a token and says how long until it is available.
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            tokens: BUCKET_BURST,
            last: None,
        }
    }

    fn reserve(&mut self, now: Instant) -> Duration {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * BUCKET_QPS;
            self.tokens = (self.tokens + refill).min(BUCKET_BURST);
        }
        self.last = Some(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / BUCKET_QPS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5ms_to_1000s() {
        assert_eq!(backoff(0), Duration::from_millis(5));
        assert_eq!(backoff(1), Duration::from_millis(10));
        assert_eq!(backoff(10), Duration::from_millis(5120));
        assert_eq!(backoff(18), MAX_DELAY);
        assert_eq!(backoff(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn bucket_allows_a_burst_of_100_then_10_per_second() {
        let mut bucket = Bucket::new();
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(bucket.reserve(now), Duration::ZERO);
        }
        assert_eq!(bucket.reserve(now), Duration::from_millis(100));
        assert_eq!(bucket.reserve(now), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn keys_are_deduplicated_and_never_processed_twice_at_once() {
        let queue = WorkQueue::new();
        queue.add("a");
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.len(), 2);
        let first = queue.get().await.unwrap();
        assert_eq!(first, "a");
        // Added while processing: not handed out again until done.
        queue.add("a");
        assert_eq!(queue.get().await.unwrap(), "b");
        assert!(queue.is_empty());
        queue.done(&"a");
        assert_eq!(queue.get().await.unwrap(), "a");
        queue.done(&"a");
        queue.done(&"b");
        queue.shut_down();
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_keys_come_back_after_their_backoff() {
        let queue = WorkQueue::new();
        queue.add_rate_limited("k");
        queue.add_rate_limited("k");
        assert_eq!(queue.failures(&"k"), 2);
        let start = Instant::now();
        assert_eq!(queue.get().await.unwrap(), "k");
        assert_eq!(start.elapsed(), Duration::from_millis(5));
        queue.done(&"k");
        assert_eq!(queue.get().await.unwrap(), "k");
        assert_eq!(start.elapsed(), Duration::from_millis(10));
        queue.forget(&"k");
        assert_eq!(queue.failures(&"k"), 0);
    }
}
