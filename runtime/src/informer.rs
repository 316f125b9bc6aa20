//! Shared informers: one list+watch per resource type for the whole process, feeding a cache
//! (kube-runtime's reflector `Store`) and telling every subscribed controller what changed.
//!
//! The cache has one writer, this task; controllers read it through cheap `Store` handles. A
//! change is announced only after the cache holds it, so a controller woken by a change always
//! finds it in the cache. After each (re)list the informer announces [`Change::Resync`], and a
//! subscriber that fell behind the announcements gets one too: either way it re-queues every key
//! rather than trusting what it missed.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt as _;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

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
    changes: broadcast::Sender<Change<K>>,
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
        let (store, mut writer) = reflector::store();
        let (changes, _) = broadcast::channel(BUFFER);
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
                    Ok(event) => strip_managed_fields(event),
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
                let _ = changes.send(change);
            }
        });
        informer
    }
}

/// Drops `metadata.managedFields` from what the informer keeps, as kube-scheduler's and
/// kube-controller-manager's informers do (`TransformStripManagedFields`): no controller reads
/// them, and they are often the larger part of an object in memory.
fn strip_managed_fields<K: Resource>(event: watcher::Event<K>) -> watcher::Event<K> {
    let strip = |mut obj: K| {
        obj.meta_mut().managed_fields = None;
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
        Subscription(self.changes.subscribe())
    }

    /// Waits until the first list is in the cache.
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

/// One subscriber's announcements.
pub struct Subscription<K>(broadcast::Receiver<Change<K>>);

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
        match self.0.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
