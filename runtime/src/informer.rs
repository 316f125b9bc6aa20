//! Shared informers: one list+watch per resource type for the whole process, feeding a cache
//! (kube-runtime's reflector `Store`) and telling every subscribed controller what changed.
//!
//! The cache has one writer, this task; controllers read it through cheap `Store` handles. A
//! change is announced only after the cache holds it, so a controller woken by a change always
//! finds it in the cache. After each (re)list the informer announces [`Change::Resync`], and a
//! subscriber that fell behind the announcements gets one too: either way it re-queues every key
//! rather than trusting what it missed.
//!
//! Each subscriber has its own bounded queue, so an announcement is freed as soon as every
//! subscriber has taken it (a shared ring buffer would keep the last [`BUFFER`] object versions
//! alive whether or not anyone still needs them).

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

/// What an informer announces.
#[derive(Debug, Clone)]
pub enum Change<K> {
    /// Added or modified (the new state).
    Applied(Arc<K>),
    /// Deleted (the last state seen).
    Deleted(Arc<K>),
    /// The cache was (re)filled from a list: look at everything again.
    Resync,
}

/// A running informer: its cache and its announcements.
pub struct Informer<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    changes: Arc<Subscribers<K>>,
    /// True once the first list is in the cache. (The store's own `wait_until_ready` wakes only
    /// one waiter — kube-runtime's `DelayedInit` sits on a oneshot channel — and an informer is
    /// shared, so readiness has its own channel.)
    ready: watch::Receiver<bool>,
}

/// Announcements buffered per subscriber before it counts as behind (and gets a resync).
const BUFFER: usize = 16 * 1024;

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts listing and watching every `K` in the cluster.
    pub fn start(client: Client) -> Arc<Informer<K>> {
        Self::start_trimmed(client, |_| {})
    }

    /// As [`Informer::start`], keeping each object as `trim` leaves it (besides dropping
    /// `managedFields`): a process that reads only part of a large object keeps only that part.
    pub fn start_trimmed(client: Client, trim: fn(&mut K)) -> Arc<Informer<K>> {
        let (store, mut writer) = reflector::store();
        let changes = Arc::new(Subscribers(Mutex::new(Vec::new())));
        let (ready_tx, ready) = watch::channel(false);
        let informer = Arc::new(Informer {
            store,
            changes: changes.clone(),
            ready,
        });
        let api: Api<K> = Api::all(client);
        let reader = informer.store.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => trimmed(event, trim),
                    Err(error) => {
                        tracing::warn!(kind = %K::kind(&()), %error, "watch failed; retrying");
                        continue;
                    }
                };
                writer.apply_watcher_event(&event);
                let change = match event {
                    // The cache's own copy, shared: one copy of each object in memory.
                    watcher::Event::Apply(obj) => Change::Applied(
                        reader
                            .get(&ObjectRef::from_obj(&obj))
                            .unwrap_or_else(|| Arc::new(obj)),
                    ),
                    watcher::Event::Delete(obj) => Change::Deleted(Arc::new(obj)),
                    watcher::Event::InitDone => {
                        let _ = ready_tx.send(true);
                        Change::Resync
                    }
                    watcher::Event::Init | watcher::Event::InitApply(_) => continue,
                };
                // No subscriber yet is fine: they start from the cache.
                changes.send(&change);
            }
        });
        informer
    }
}

/// Drops `metadata.managedFields` from what the informer keeps, as kube-scheduler's and
/// kube-controller-manager's informers do (`TransformStripManagedFields`): no controller reads
/// them, and they are often the larger part of an object in memory. Then `trim`.
fn trimmed<K: Resource>(event: watcher::Event<K>, trim: fn(&mut K)) -> watcher::Event<K> {
    let strip = |mut obj: K| {
        obj.meta_mut().managed_fields = None;
        trim(&mut obj);
        obj
    };
    match event {
        watcher::Event::Apply(obj) => watcher::Event::Apply(strip(obj)),
        watcher::Event::InitApply(obj) => watcher::Event::InitApply(strip(obj)),
        watcher::Event::Delete(obj) => watcher::Event::Delete(strip(obj)),
        other => other,
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Informer<K> {
    /// A read handle on the cache.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Announcements from now on.
    pub fn subscribe(&self) -> Subscription<K> {
        self.changes.subscribe()
    }

    /// Waits until the first list is in the cache.
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

/// Every subscriber's queue.
struct Subscribers<K>(Mutex<Vec<Subscriber<K>>>);

struct Subscriber<K> {
    tx: mpsc::Sender<Change<K>>,
    /// Set when an announcement did not fit in the queue: the subscriber resyncs.
    lagged: Arc<AtomicBool>,
}

impl<K: Clone> Subscribers<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber<K>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn subscribe(&self) -> Subscription<K> {
        let (tx, rx) = mpsc::channel(BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        self.lock().push(Subscriber {
            tx,
            lagged: lagged.clone(),
        });
        Subscription { rx, lagged }
    }

    /// Queues `change` for every subscriber; forgets those that are gone.
    fn send(&self, change: &Change<K>) {
        self.lock().retain(|s| match s.tx.try_send(change.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                s.lagged.store(true, Ordering::Release);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }
}

/// One subscriber's announcements.
pub struct Subscription<K> {
    rx: mpsc::Receiver<Change<K>>,
    lagged: Arc<AtomicBool>,
}

impl<K: Clone + Send + Sync + 'static> Subscription<K> {
    /// Hands every change to `handle`, on a task of its own, until the informer is gone.
    pub fn forward(mut self, handle: impl Fn(Change<K>) + Send + 'static) {
        tokio::spawn(async move {
            while let Some(change) = self.next().await {
                handle(change);
            }
        });
    }

    /// The next change; a subscriber that fell behind gets [`Change::Resync`]; `None` when the
    /// informer is gone.
    pub async fn next(&mut self) -> Option<Change<K>> {
        // A full queue made the informer drop an announcement: everything is looked at again
        // (the announcements still queued are older than the cache the resync reads).
        if self.lagged.swap(false, Ordering::AcqRel) {
            return Some(Change::Resync);
        }
        self.rx.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_announcement_is_freed() {
        let subscribers = Arc::new(Subscribers::<String>(Mutex::new(Vec::new())));
        let mut a = subscribers.subscribe();
        let mut b = subscribers.subscribe();
        let obj = Arc::new("pod".to_owned());
        subscribers.send(&Change::Applied(obj.clone()));
        assert_eq!(Arc::strong_count(&obj), 3);
        assert!(matches!(a.next().await, Some(Change::Applied(_))));
        assert!(matches!(b.next().await, Some(Change::Applied(_))));
        assert_eq!(
            Arc::strong_count(&obj),
            1,
            "nothing keeps a taken announcement"
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_resyncs_and_the_others_do_not() {
        let subscribers = Arc::new(Subscribers::<String>(Mutex::new(Vec::new())));
        let mut slow = subscribers.subscribe();
        let mut fast = subscribers.subscribe();
        for i in 0..=BUFFER {
            subscribers.send(&Change::Applied(Arc::new(i.to_string())));
            assert!(matches!(fast.next().await, Some(Change::Applied(_))));
        }
        assert!(matches!(slow.next().await, Some(Change::Resync)));
        for _ in 0..BUFFER {
            assert!(matches!(slow.next().await, Some(Change::Applied(_))));
        }
        subscribers.send(&Change::Deleted(Arc::new("x".to_owned())));
        assert!(matches!(slow.next().await, Some(Change::Deleted(_))));
    }

    #[tokio::test]
    async fn gone_subscribers_are_forgotten_and_subscribers_see_the_end() {
        let subscribers = Arc::new(Subscribers::<String>(Mutex::new(Vec::new())));
        let gone = subscribers.subscribe();
        let mut kept = subscribers.subscribe();
        drop(gone);
        subscribers.send(&Change::Resync);
        assert_eq!(subscribers.lock().len(), 1);
        drop(subscribers);
        assert!(matches!(kept.next().await, Some(Change::Resync)));
        assert!(kept.next().await.is_none());
    }
}
