//! The watch cache, as kube-apiserver's `Cacher`: one storage watch per resource type (per
//! storage path; core and `events.k8s.io` events share one) feeds an in-memory copy of the
//! current objects and a bounded window of recent events. Every watch is served from it, and so
//! are the reads Kubernetes serves from cache: lists with `resourceVersion=0`, lists not older
//! than a given revision, consistent lists without `limit`, and gets with `resourceVersion=0`.
//!
//! - **Consistency.** The cache applies the storage watch's events in revision order under one
//!   lock, and publishes each to the watchers while holding it; a watch takes its starting state
//!   (a snapshot, or the window's events after its revision) and subscribes under the same
//!   lock, so it sees every event exactly once. A read that must be at least as new as revision
//!   R waits until the cache has reached R, asking the store for a progress notification when no
//!   event for this resource would otherwise move the cache on (kube-apiserver's
//!   `WaitUntilFreshAndList` with its progress requester).
//! - **Bounds.** The window keeps the events of the last [`WINDOW_AGE`] (kube-apiserver's
//!   `eventFreshDuration`), at least the last [`WINDOW_MIN`] and at most the last
//!   [`WINDOW_CAPACITY`] or [`WINDOW_BYTES`] of objects (a bound of Ferry's own: a burst of
//!   updates to big objects would otherwise hold thousands of old versions); a watch from
//!   before the window gets `410 Expired` and relists, as with Kubernetes. Each watcher has
//!   its own queue of at most [`DEFAULT_QUEUE_CAPACITY`] events (configurable): a watcher that
//!   falls that far behind (its client reads too slowly) is ended, and resumes from its last
//!   resourceVersion. Nothing waits for a slow watcher, nothing
//!   grows with one, and an event is freed once every watcher has taken it and it has left
//!   the window.
//! - **Failure.** If the storage watch ends (the store went away, or compacted past it), the
//!   cache ends every watch, relists and starts again; reads fall back to the store meanwhile.
//! - **Serialization.** Each object version is serialized at most once, however many watchers
//!   and lists send it (kube-apiserver's `cachingObject`). A create made through this server
//!   hands the cache the version it wrote and answered with ([`Cacher::offer`]), so the storage
//!   watch's event for it is not parsed and serialized again; any other event is.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use api_types::fields;
use api_types::json::At;
use api_types::registry::{self, ResourceInfo};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch as tokio_watch};

use super::handlers::decode_stored;
use crate::storage::{EventKind, ListOptions, Revision, Storage, StorageError, WatchItem};

/// Events kept per resource at most for watches that start from a past revision.
pub const WINDOW_CAPACITY: usize = 10_000;
/// Events older than this leave the window (beyond the last [`WINDOW_MIN`]).
pub const WINDOW_AGE: Duration = Duration::from_secs(75);
/// Events kept per resource however old (kube-apiserver's lower bound).
pub const WINDOW_MIN: usize = 100;
/// The objects of the window's events (their JSON, both versions of each event) take at most
/// this many bytes per resource, beyond the last [`WINDOW_MIN`] events.
pub const WINDOW_BYTES: usize = 16 << 20;
/// Events a watcher may fall behind before it is ended, unless configured otherwise.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// How long a read waits for the cache to become ready or fresh enough.
pub const WAIT_FRESH: Duration = Duration::from_secs(3);
/// Page size of the cache's own lists of the store.
const LIST_PAGE: usize = 1000;

/// One version of an object, as the API shows it (with `kind`, `apiVersion` and
/// `resourceVersion` of the resource's primary form), serialized on first use.
pub struct Cached {
    /// The object as served (resourceVersion set), serialized once for every reader.
    json: Bytes,
    /// What selectors look at, extracted once: the object itself is not kept parsed (a parsed
    /// object costs several times its JSON), as kube-apiserver's cache keeps labels and fields
    /// beside each object.
    labels: Pairs,
    fields: Pairs,
}

/// Names and values sorted by name, as compact as they come: the watch cache holds one set per
/// object version, so they are two allocations whatever their count (a map, or a box per
/// string, cost several times the strings: ~0.7 KB per pod version, measured with heaptrack).
pub struct Pairs {
    /// Every name and value, in order: name₀ value₀ name₁ value₁ …
    text: Box<str>,
    /// Where each of them ends in `text`.
    ends: Box<[u32]>,
}

impl Pairs {
    fn new(map: BTreeMap<String, String>) -> Self {
        let mut text = String::with_capacity(map.iter().map(|(k, v)| k.len() + v.len()).sum());
        let mut ends = Vec::with_capacity(map.len() * 2);
        for (k, v) in &map {
            for part in [k, v] {
                text.push_str(part);
                // Labels and fields of an object under the 3 MiB body limit fit in u32.
                ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            }
        }
        Pairs {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The `i`th string (names at even, values at odd positions).
    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (mut low, mut high) = (0, self.ends.len() / 2);
        while low < high {
            let mid = (low + high) / 2;
            match self.part(2 * mid).cmp(name) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(self.part(2 * mid + 1)),
            }
        }
        None
    }
}

impl Cached {
    /// `obj` as the cache of `primary` holds it: `obj` must be in the primary form, with its
    /// `resourceVersion`.
    pub fn new(primary: &ResourceInfo, obj: &Value) -> Self {
        Self::with_json(primary, obj, serde_json::to_vec(obj).unwrap_or_default())
    }

    /// [`Self::new`] of `obj` already serialized as `json`.
    pub fn with_json(primary: &ResourceInfo, obj: &Value, mut json: Vec<u8>) -> Self {
        let labels = obj
            .at("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let qualified = primary.qualified_resource();
        let mut fields = fields::object_fields(&qualified, obj);
        // Events are served in two groups whose field selectors name the same fields apart.
        if qualified == "events" {
            fields.extend(fields::object_fields("events.events.k8s.io", obj));
        }
        // serde_json grows its buffer by doubling; the cache holds this for as long as the
        // object lives, so without this up to half of it would be slack.
        json.shrink_to_fit();
        Self {
            json: Bytes::from(json),
            labels: Pairs::new(labels),
            fields: Pairs::new(fields),
        }
    }

    /// The object as JSON.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The object, parsed (for conversions and Tables).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    pub fn labels(&self) -> &Pairs {
        &self.labels
    }

    /// The object's selectable fields (both groups' names, for events).
    pub fn fields(&self) -> &Pairs {
        &self.fields
    }
}

/// One change, as every watcher receives it.
pub struct CachedEvent {
    pub kind: EventKind,
    pub key: String,
    /// After the change; for a deletion, the last state (with the deletion's revision).
    pub obj: Arc<Cached>,
    /// Before the change.
    pub prev: Option<Arc<Cached>>,
    pub revision: Revision,
    /// When the cache received it.
    received: Instant,
}

impl CachedEvent {
    /// The JSON bytes it keeps alive: both versions (the previous one is often held by nothing
    /// else, e.g. a pod's status before the kubelet's update).
    fn bytes(&self) -> usize {
        self.obj.json.len() + self.prev.as_ref().map_or(0, |prev| prev.json.len())
    }
}

/// What a watcher's queue carries.
#[derive(Clone)]
pub enum Item {
    Event(Arc<CachedEvent>),
    /// Every event up to this revision has been published.
    Progress(Revision),
    /// The cache lost its storage watch: every watch ends (and its client resumes).
    Reset,
}

/// A watcher's queue: what the cache has published since the watch started. It ends (`None`)
/// after the last item if the watcher fell [`Cacher::queue_capacity`] behind, or the cache
/// lost its storage watch.
pub type Queue = mpsc::Receiver<Item>;

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Arc<Cached>>,
    window: VecDeque<Arc<CachedEvent>>,
    /// The JSON bytes of the window's objects, each event's previous version included.
    window_bytes: usize,
    /// Every event after this revision is in the window.
    window_start: Revision,
    /// What the cache reflects; 0 while it is not ready.
    revision: Revision,
}

impl State {
    /// Adds `event` to the window (which [`Cacher::trim`] then bounds).
    fn push(&mut self, event: Arc<CachedEvent>) {
        self.window_bytes += event.bytes();
        self.window.push_back(event);
    }
}

/// How a watch starts.
pub enum WatchStart {
    /// The current objects under the prefix, at `revision`, then the queue.
    Snapshot {
        objects: Vec<Arc<Cached>>,
        revision: Revision,
        queue: Queue,
    },
    /// The window's events after the asked-for revision, then the queue.
    Replay {
        events: Vec<Arc<CachedEvent>>,
        queue: Queue,
    },
    /// The revision is older than the window.
    TooOld { oldest: Revision },
}

/// The cache of one resource type.
pub struct Cacher {
    /// The form objects are cached in (for events, core/v1).
    pub primary: &'static ResourceInfo,
    /// The storage prefix of the whole resource, ending in `/`.
    prefix: String,
    state: RwLock<State>,
    /// Every watcher's queue, fed while `state` is write-locked.
    watchers: Mutex<Vec<mpsc::Sender<Item>>>,
    /// A watcher queue's capacity: a watcher this far behind is ended.
    pub queue_capacity: usize,
    revision: tokio_watch::Sender<Revision>,
    /// Versions this server wrote, by key, with their revision, until the storage watch's event
    /// for them arrives ([`Cacher::offer`]).
    offered: Mutex<HashMap<String, (Revision, Arc<Cached>)>>,
    progress_wanted: Notify,
    events_received: AtomicU64,
    initializations: AtomicU64,
    lists_served: AtomicU64,
}

impl Cacher {
    fn new(primary: &'static ResourceInfo, prefix: String, queue_capacity: usize) -> Self {
        Self {
            primary,
            prefix,
            state: RwLock::new(State::default()),
            watchers: Mutex::new(Vec::new()),
            queue_capacity: queue_capacity.max(1),
            revision: tokio_watch::channel(0).0,
            offered: Mutex::new(HashMap::new()),
            progress_wanted: Notify::new(),
            events_received: AtomicU64::new(0),
            initializations: AtomicU64::new(0),
            lists_served: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn watchers(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<Item>>> {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn offered(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Revision, Arc<Cached>)>> {
        self.offered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the cache `obj`, which this server has just written to `key` at `revision` and
    /// serialized for its answer: the storage watch's event for that revision then takes it as
    /// it is instead of parsing the stored bytes. Ignored when the cache is not following the
    /// store, or has already applied the revision.
    pub fn offer(&self, key: &str, revision: Revision, obj: Arc<Cached>) {
        // Under the state lock, so that the event cannot be applied in between: an offer is
        // either taken by its event or dropped by the first event after it (see `apply`).
        let state = self.read();
        if state.revision == 0 || state.revision >= revision {
            return;
        }
        self.offered().insert(key.to_owned(), (revision, obj));
    }

    /// The version offered for what `event` creates, if any (only creates are offered).
    fn take_offered(&self, event: &crate::storage::Event) -> Option<Arc<Cached>> {
        if event.kind != EventKind::Added {
            return None;
        }
        let (key, revision) = (event.key.as_str(), event.revision);
        let mut offered = self.offered();
        if offered.is_empty() {
            return None;
        }
        match offered.remove(key) {
            Some((at, obj)) if at == revision => Some(obj),
            // An offer for another revision of the key: keep it if it is still to come.
            Some(other) if other.0 > revision => {
                offered.insert(key.to_owned(), other);
                None
            }
            _ => None,
        }
    }

    /// Drops the offers the cache has passed (their event came in before the offer).
    fn drop_passed_offers(&self, revision: Revision) {
        let mut offered = self.offered();
        if !offered.is_empty() {
            offered.retain(|_, (at, _)| *at > revision);
        }
    }

    /// A new watcher's queue. Called with `state` locked, so that it starts exactly where the
    /// watcher's starting state ends.
    fn subscribe(&self) -> Queue {
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        self.watchers().push(tx);
        rx
    }

    /// Hands `item` to every watcher. One whose queue is full is dropped: its stream ends
    /// after what it has queued, and its client resumes from its last resourceVersion.
    /// Called with `state` write-locked.
    fn publish(&self, item: &Item) {
        self.watchers()
            .retain(|tx| tx.try_send(item.clone()).is_ok());
    }

    /// Drops the window's events beyond its bounds.
    fn trim(state: &mut State, now: Instant) {
        while let Some(oldest) = state.window.front() {
            let len = state.window.len();
            let stale = len > WINDOW_MIN
                && (now.duration_since(oldest.received) > WINDOW_AGE
                    || state.window_bytes > WINDOW_BYTES);
            if len <= WINDOW_CAPACITY && !stale {
                break;
            }
            state.window_start = oldest.revision;
            state.window_bytes -= oldest.bytes();
            state.window.pop_front();
        }
    }

    /// The revision the cache reflects; 0 while it is not ready.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Waits until the cache is ready and reflects at least `revision` (0: just ready). Returns
    /// false after [`WAIT_FRESH`].
    pub async fn wait_fresh(&self, revision: Revision) -> bool {
        let want = revision.max(1);
        let mut rx = self.revision.subscribe();
        if *rx.borrow_and_update() >= want {
            return true;
        }
        self.progress_wanted.notify_one();
        matches!(
            tokio::time::timeout(WAIT_FRESH, rx.wait_for(|r| *r >= want)).await,
            Ok(Ok(_))
        )
    }

    /// The cached objects under `prefix` for which `keep` holds, and the revision they reflect:
    /// a list served to a client (counted in `apiserver_cache_list_total`) — or `None` when more
    /// than `at_most` match (a page the cache cannot continue: the store serves it).
    pub fn list_matching(
        &self,
        prefix: &str,
        keep: impl Fn(&Cached) -> bool,
        at_most: Option<usize>,
    ) -> Option<(Vec<Arc<Cached>>, Revision)> {
        let found = self.matching(prefix, keep, at_most)?;
        self.lists_served.fetch_add(1, Ordering::Relaxed);
        Some(found)
    }

    fn matching(
        &self,
        prefix: &str,
        keep: impl Fn(&Cached) -> bool,
        at_most: Option<usize>,
    ) -> Option<(Vec<Arc<Cached>>, Revision)> {
        let state = self.read();
        let mut items = Vec::new();
        for (_, obj) in state
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            if keep(obj) {
                if at_most.is_some_and(|n| items.len() == n) {
                    return None;
                }
                items.push(obj.clone());
            }
        }
        Some((items, state.revision))
    }

    /// The cached objects under `prefix` and the revision they reflect, for the server's own
    /// reads (admission), which are not counted as lists.
    pub fn snapshot(&self, prefix: &str) -> (Vec<Arc<Cached>>, Revision) {
        // Without a bound there is always an answer.
        self.matching(prefix, |_| true, None).unwrap_or_default()
    }

    /// One cached object.
    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.read().objects.get(key).cloned()
    }

    /// Starts a watch: from a snapshot of `prefix` (`after` = None) or after a revision.
    pub fn start_watch(&self, prefix: &str, after: Option<Revision>) -> WatchStart {
        let state = self.read();
        match after {
            None => WatchStart::Snapshot {
                objects: state
                    .objects
                    .range(prefix.to_owned()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(_, v)| v.clone())
                    .collect(),
                revision: state.revision,
                queue: self.subscribe(),
            },
            Some(after) if after < state.window_start => WatchStart::TooOld {
                oldest: state.window_start,
            },
            Some(after) => {
                let skip = state.window.partition_point(|e| e.revision <= after);
                WatchStart::Replay {
                    events: state.window.iter().skip(skip).cloned().collect(),
                    queue: self.subscribe(),
                }
            }
        }
    }

    /// Lists the store and follows it until the watch fails or the server stops.
    async fn list_and_watch(
        &self,
        store: &dyn Storage,
        stopping: &mut tokio_watch::Receiver<bool>,
        progress_every: Duration,
    ) -> Result<(), StorageError> {
        let mut objects = BTreeMap::new();
        let mut options = ListOptions {
            limit: Some(LIST_PAGE),
            ..ListOptions::default()
        };
        let revision = loop {
            let page = store.list(&self.prefix, &options).await?;
            for kv in page.items {
                match decode_stored(self.primary, &kv.value, kv.mod_revision) {
                    Ok(obj) => {
                        objects.insert(kv.key, Arc::new(Cached::new(self.primary, &obj)));
                    }
                    Err(e) => {
                        tracing::warn!(key = %kv.key, error = %e.message, "skipping an undecodable object")
                    }
                }
            }
            match page.continue_token {
                Some(token) => {
                    options = ListOptions {
                        continue_token: Some(token),
                        limit: Some(LIST_PAGE),
                        revision: None,
                    }
                }
                None => break page.revision,
            }
        };
        let mut watch = store.watch(&self.prefix, revision).await?;
        {
            let mut state = self.write();
            *state = State {
                objects,
                window: VecDeque::new(),
                window_bytes: 0,
                window_start: revision,
                revision,
            };
        }
        self.revision.send_replace(revision);
        self.initializations.fetch_add(1, Ordering::Relaxed);
        let mut ticker = tokio::time::interval(progress_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                item = watch.next() => match item {
                    Some(Ok(WatchItem::Event(event))) => {
                        let mut offered = self.take_offered(&event);
                        if offered.is_none() && event.kind == EventKind::Added {
                            // The writer of a create offers what it answered with once the
                            // store has answered, and the store's event often beats it here
                            // (about four times in five at 64 concurrent creates): one turn of
                            // the scheduler lets it, which saves parsing the event and
                            // serializing the object again.
                            tokio::task::yield_now().await;
                            offered = self.take_offered(&event);
                        }
                        self.apply(event, offered);
                    }
                    Some(Ok(WatchItem::Progress(revision))) => self.progress(revision),
                    Some(Err(e)) => return Err(e),
                    None => return Err(StorageError::Unavailable("the store ended the watch".into())),
                },
                _ = ticker.tick() => watch.request_progress(),
                () = self.progress_wanted.notified() => watch.request_progress(),
                _ = stopping.changed() => return Ok(()),
            }
        }
    }

    /// Applies `event`, whose object is `offered` when its writer handed it over.
    fn apply(&self, event: crate::storage::Event, offered: Option<Arc<Cached>>) {
        self.events_received.fetch_add(1, Ordering::Relaxed);
        let obj = match offered {
            Some(obj) => obj,
            None => match decode_stored(self.primary, &event.value, event.revision) {
                Ok(obj) => Arc::new(Cached::new(self.primary, &obj)),
                Err(e) => {
                    tracing::warn!(key = %event.key, error = %e.message, "skipping an undecodable event");
                    return;
                }
            },
        };
        let revision = event.revision;
        {
            let mut state = self.write();
            let prev = match event.kind {
                EventKind::Deleted => state.objects.remove(&event.key),
                EventKind::Added | EventKind::Modified => {
                    state.objects.insert(event.key.clone(), obj.clone())
                }
            };
            let cached = Arc::new(CachedEvent {
                kind: event.kind,
                key: event.key,
                obj,
                prev,
                revision,
                received: Instant::now(),
            });
            state.push(cached.clone());
            Self::trim(&mut state, cached.received);
            state.revision = state.revision.max(revision);
            // Published under the lock, so that a watch starting now sees it exactly once.
            self.publish(&Item::Event(cached));
            self.drop_passed_offers(state.revision);
        }
        self.revision.send_replace(self.read().revision);
    }

    fn progress(&self, revision: Revision) {
        let now = {
            let mut state = self.write();
            state.revision = state.revision.max(revision);
            // A quiet resource's window ages out here.
            Self::trim(&mut state, Instant::now());
            self.publish(&Item::Progress(state.revision));
            self.drop_passed_offers(state.revision);
            state.revision
        };
        self.revision.send_replace(now);
    }

    fn reset(&self) {
        {
            let mut state = self.write();
            *state = State::default();
            self.publish(&Item::Reset);
            self.watchers().clear();
            self.offered().clear();
        }
        self.revision.send_replace(0);
    }
}

/// Sizes of one cache, for `/metrics`.
pub struct CacheStats {
    pub resource: String,
    pub objects: usize,
    pub window: usize,
    pub window_bytes: usize,
    pub capacity: usize,
    pub events_received: u64,
    pub initializations: u64,
    pub lists_served: u64,
    pub revision: Revision,
}

/// The caches of every resource type.
pub struct Caches {
    by_path: HashMap<&'static str, Arc<Cacher>>,
}

impl Caches {
    /// Starts one cache per storage path; they run until `stopping` flips.
    pub fn start(
        store: Arc<dyn Storage>,
        prefix: &str,
        stopping: tokio_watch::Receiver<bool>,
        progress_every: Duration,
        queue_capacity: usize,
    ) -> Caches {
        let mut by_path = HashMap::new();
        for info in registry::all() {
            if by_path.contains_key(info.storage_path) {
                continue;
            }
            let cache_prefix = format!(
                "{}/",
                api_types::keys::collection_prefix(prefix, info.storage_path, None)
                    .trim_end_matches('/')
            );
            let cacher = Arc::new(Cacher::new(info, cache_prefix, queue_capacity));
            tokio::spawn(run(
                cacher.clone(),
                store.clone(),
                stopping.clone(),
                progress_every,
            ));
            by_path.insert(info.storage_path, cacher);
        }
        Caches { by_path }
    }

    /// The cache that holds a resource's objects.
    pub fn get(&self, info: &ResourceInfo) -> Option<&Arc<Cacher>> {
        self.by_path.get(info.storage_path)
    }

    pub fn stats(&self) -> Vec<CacheStats> {
        let mut stats: Vec<CacheStats> = self
            .by_path
            .values()
            .map(|c| {
                let state = c.read();
                CacheStats {
                    resource: c.primary.qualified_resource(),
                    objects: state.objects.len(),
                    window: state.window.len(),
                    window_bytes: state.window_bytes,
                    capacity: WINDOW_CAPACITY,
                    events_received: c.events_received.load(Ordering::Relaxed),
                    initializations: c.initializations.load(Ordering::Relaxed),
                    lists_served: c.lists_served.load(Ordering::Relaxed),
                    revision: state.revision,
                }
            })
            .collect();
        stats.sort_by(|a, b| a.resource.cmp(&b.resource));
        stats
    }
}

async fn run(
    cacher: Arc<Cacher>,
    store: Arc<dyn Storage>,
    mut stopping: tokio_watch::Receiver<bool>,
    progress_every: Duration,
) {
    loop {
        if *stopping.borrow() {
            return;
        }
        match cacher
            .list_and_watch(store.as_ref(), &mut stopping, progress_every)
            .await
        {
            Ok(()) => {
                cacher.reset();
                return;
            }
            Err(e) => {
                tracing::warn!(resource = %cacher.primary.qualified_resource(), error = %e, "watch cache lost its storage watch; relisting");
                cacher.reset();
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopping.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::embedded::EmbeddedStorage;

    fn pods() -> &'static ResourceInfo {
        registry::by_group_version_resource("", "v1", "pods").unwrap()
    }

    fn pod(ns: &str, name: &str) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"containers": [{"name": "c", "image": "i"}]}
            }))
            .unwrap(),
        )
    }

    async fn started() -> (
        tempfile::TempDir,
        Arc<dyn Storage>,
        Caches,
        tokio_watch::Sender<bool>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> =
            Arc::new(EmbeddedStorage::open(&dir.path().join("s.redb")).unwrap());
        store
            .create("/registry/pods/a/p0", pod("a", "p0"))
            .await
            .unwrap();
        let (stop, stopping) = tokio_watch::channel(false);
        let caches = Caches::start(
            store.clone(),
            "/registry",
            stopping,
            Duration::from_millis(200),
            DEFAULT_QUEUE_CAPACITY,
        );
        (dir, store, caches, stop)
    }

    #[tokio::test]
    async fn lists_the_store_then_follows_it() {
        let (_dir, store, caches, _stop) = started().await;
        let cacher = caches.get(pods()).unwrap().clone();
        assert!(cacher.wait_fresh(0).await);
        assert_eq!(cacher.snapshot("/registry/pods/").0.len(), 1);
        let kv = store
            .create("/registry/pods/b/p1", pod("b", "p1"))
            .await
            .unwrap();
        assert!(cacher.wait_fresh(kv.mod_revision).await);
        assert_eq!(cacher.snapshot("/registry/pods/").0.len(), 2);
        assert_eq!(cacher.snapshot("/registry/pods/b/").0.len(), 1);
        let got = cacher.get("/registry/pods/b/p1").unwrap();
        assert_eq!(got.value()["kind"], "Pod");
        assert_eq!(
            got.value()["metadata"]["resourceVersion"],
            kv.mod_revision.to_string()
        );
        // No pod changes, but the store moves on: a fresh read still completes.
        let other = store
            .create(
                "/registry/configmaps/a/c",
                Bytes::from_static(b"{\"metadata\":{\"name\":\"c\"}}"),
            )
            .await
            .unwrap();
        assert!(cacher.wait_fresh(other.mod_revision).await);
        assert!(cacher.revision() >= other.mod_revision);
    }

    #[tokio::test]
    async fn a_create_offered_by_its_writer_is_cached_as_offered_and_late_offers_are_dropped() {
        let (_dir, store, caches, _stop) = started().await;
        let cacher = caches.get(pods()).unwrap().clone();
        assert!(cacher.wait_fresh(0).await);
        // The writer offers what it answered with; the cache takes that version as it is
        // (the marker label shows it did not parse the stored bytes instead). Offered before
        // the write here, at the revision the write is going to get, so that the event cannot
        // overtake the offer.
        let revision = cacher.revision() + 1;
        let answered = serde_json::json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p1", "namespace": "a", "labels": {"offered": "yes"},
                         "resourceVersion": revision.to_string()},
        });
        let offered = Arc::new(Cached::new(pods(), &answered));
        cacher.offer("/registry/pods/a/p1", revision, offered.clone());
        let kv = store
            .create("/registry/pods/a/p1", pod("a", "p1"))
            .await
            .unwrap();
        assert_eq!(kv.mod_revision, revision);
        assert!(cacher.wait_fresh(kv.mod_revision).await);
        let got = cacher.get("/registry/pods/a/p1").unwrap();
        assert!(Arc::ptr_eq(&got, &offered));
        assert_eq!(got.labels().get("offered"), Some("yes"));
        assert!(cacher.offered().is_empty(), "taken by its event");
        // An offer for a revision the cache has passed is refused.
        cacher.offer(&kv.key, kv.mod_revision, offered.clone());
        assert!(cacher.offered().is_empty());
        // An offer whose event never comes (another key) is dropped by the next event.
        cacher.offer("/registry/pods/a/ghost", cacher.revision() + 1, offered);
        assert_eq!(cacher.offered().len(), 1);
        let next = store
            .create("/registry/pods/a/p2", pod("a", "p2"))
            .await
            .unwrap();
        assert!(cacher.wait_fresh(next.mod_revision).await);
        assert!(cacher.offered().is_empty());
        assert!(cacher.get("/registry/pods/a/ghost").is_none());
        let p2 = cacher.get("/registry/pods/a/p2").unwrap();
        assert_eq!(p2.value()["metadata"]["name"], "p2");
    }

    #[tokio::test]
    async fn watches_replay_the_window_and_then_follow() {
        let (_dir, store, caches, _stop) = started().await;
        let cacher = caches.get(pods()).unwrap().clone();
        assert!(cacher.wait_fresh(0).await);
        let start = cacher.revision();
        let first = store
            .create("/registry/pods/a/p1", pod("a", "p1"))
            .await
            .unwrap();
        assert!(cacher.wait_fresh(first.mod_revision).await);
        let WatchStart::Replay { events, mut queue } =
            cacher.start_watch("/registry/pods/", Some(start))
        else {
            panic!("expected a replay");
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].revision, first.mod_revision);
        store
            .delete(
                "/registry/pods/a/p1",
                &crate::storage::Preconditions::none(),
            )
            .await
            .unwrap();
        loop {
            match queue.recv().await.unwrap() {
                Item::Event(e) => {
                    assert_eq!(e.kind, EventKind::Deleted);
                    assert!(e.prev.is_some());
                    break;
                }
                Item::Progress(_) => continue,
                Item::Reset => panic!("unexpected reset"),
            }
        }
        assert!(matches!(
            cacher.start_watch("/registry/pods/", Some(start - 1)),
            WatchStart::TooOld { .. }
        ));
    }

    fn event_at(revision: Revision, received: Instant) -> Arc<CachedEvent> {
        let obj = serde_json::json!({"metadata": {"name": "p", "namespace": "a"}});
        event_of(Arc::new(Cached::new(pods(), &obj)), revision, received)
    }

    fn event_of(obj: Arc<Cached>, revision: Revision, received: Instant) -> Arc<CachedEvent> {
        Arc::new(CachedEvent {
            kind: EventKind::Modified,
            key: "/registry/pods/a/p".into(),
            obj,
            prev: None,
            revision,
            received,
        })
    }

    #[test]
    fn the_window_holds_at_most_its_bytes_of_objects_beyond_the_last_hundred() {
        let now = Instant::now();
        let blob = "x".repeat(64 << 10);
        let big = Arc::new(Cached::new(
            pods(),
            &serde_json::json!({"metadata": {"name": "p", "namespace": "a"}, "data": blob}),
        ));
        let size = big.json().len();
        let count = WINDOW_BYTES / size + 50;
        let mut state = State::default();
        for r in 1..=count as Revision {
            state.push(event_of(big.clone(), r, now));
            Cacher::trim(&mut state, now);
        }
        assert!(state.window_bytes <= WINDOW_BYTES);
        assert_eq!(state.window.len(), WINDOW_BYTES / size);
        assert_eq!(state.window_bytes, state.window.len() * size);
        // An update's previous version counts too.
        let mut state = State::default();
        for r in 1..=count as Revision {
            let mut event = event_of(big.clone(), r, now);
            Arc::get_mut(&mut event).unwrap().prev = Some(big.clone());
            state.push(event);
            Cacher::trim(&mut state, now);
        }
        assert_eq!(state.window.len(), WINDOW_BYTES / size / 2);
        assert_eq!(state.window_bytes, state.window.len() * size * 2);
        assert_eq!(
            state.window_start,
            state.window.front().unwrap().revision - 1,
            "every event after window_start is kept"
        );
        // However big, the last hundred stay.
        let mut state = State::default();
        let huge = Arc::new(Cached::new(
            pods(),
            &serde_json::json!({"metadata": {"name": "p"}, "data": "x".repeat(WINDOW_BYTES / 50)}),
        ));
        for r in 1..=150 {
            state.push(event_of(huge.clone(), r, now));
            Cacher::trim(&mut state, now);
        }
        assert_eq!(state.window.len(), WINDOW_MIN);
        assert_eq!(state.window_start, 50);
    }

    #[test]
    fn the_window_keeps_recent_events_and_at_least_the_last_hundred() {
        let now = Instant::now();
        let old = now - WINDOW_AGE - Duration::from_secs(1);
        let mut state = State::default();
        // 150 old events, then 20 recent ones: the old ones go, except as many as keep 100.
        for r in 1..=150 {
            state.push(event_at(r, old));
        }
        for r in 151..=170 {
            state.push(event_at(r, now));
        }
        Cacher::trim(&mut state, now);
        assert_eq!(state.window.len(), WINDOW_MIN);
        assert_eq!(
            state.window_start, 70,
            "every event after window_start is kept"
        );
        assert_eq!(state.window.front().unwrap().revision, 71);
        // However recent, no more than the capacity.
        let mut state = State::default();
        for r in 1..=(WINDOW_CAPACITY as Revision + 5) {
            state.push(event_at(r, now));
        }
        Cacher::trim(&mut state, now);
        assert_eq!(state.window.len(), WINDOW_CAPACITY);
        assert_eq!(state.window_start, 5);
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_dropped_and_taken_events_are_freed() {
        let cacher = Cacher::new(pods(), "/registry/pods/".into(), 2);
        let mut slow = cacher.subscribe();
        let mut fast = cacher.subscribe();
        let event = event_at(1, Instant::now());
        for _ in 0..3 {
            cacher.publish(&Item::Event(event.clone()));
            assert!(matches!(fast.recv().await, Some(Item::Event(_))));
        }
        // The slow watcher gets what fitted in its queue, then its stream ends.
        assert!(matches!(slow.recv().await, Some(Item::Event(_))));
        assert!(matches!(slow.recv().await, Some(Item::Event(_))));
        assert!(slow.recv().await.is_none());
        assert_eq!(cacher.watchers().len(), 1);
        // Nothing but the test holds the event once the watchers have taken it.
        assert_eq!(Arc::strong_count(&event), 1);
    }

    #[test]
    fn pairs_answer_as_the_map_they_came_from() {
        let map: BTreeMap<String, String> = [("b", "2"), ("a", "1"), ("c", ""), ("a.b/c", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let pairs = Pairs::new(map.clone());
        for k in ["a", "b", "c", "a.b/c", "d", "", "A", "bb", "0"] {
            assert_eq!(pairs.get(k), map.get(k).map(String::as_str), "{k}");
        }
        assert_eq!(Pairs::new(BTreeMap::new()).get(""), None);
        let one = Pairs::new([(String::new(), "v".to_owned())].into_iter().collect());
        assert_eq!(one.get(""), Some("v"));
        assert_eq!(one.get("v"), None);
    }
}
