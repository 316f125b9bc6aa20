//! The embedded backend: etcd's data model in one redb file, for a cluster with no setup at all.
//!
//! # Layout
//!
//! Four redb tables:
//!
//! - `current`: key → (create revision, mod revision) of every live key: the latest state, for
//!   reads and lists at the latest revision (the value is the log entry at the mod revision, so
//!   each value is written once);
//! - `log`: revision → (key, kind, create revision, value): every write, one revision each; a
//!   delete is a tombstone with an empty value. Watches replay it;
//! - `history`: (key, revision) → kind: the revisions of each key, to read a key or a prefix at
//!   an older revision;
//! - `meta`: the current and the compacted revision.
//!
//! # Writes
//!
//! One writer thread owns every write transaction. Writers queue operations; the thread takes
//! everything queued, applies it in one transaction (one revision per operation, checks included)
//! and commits it with `Durability::Immediate`, so concurrent writers share one fsync (group
//! commit). Only then are the writers answered and the events published to watchers: nothing is
//! acknowledged or seen before it is durable.
//!
//! # Watches
//!
//! Committed events go to a broadcast channel. A watch subscribes, then replays the log from its
//! start revision up to the revision its read snapshot shows, then follows the channel, skipping
//! what it has already sent; if it falls behind the channel it replays from the log again. So
//! each event is delivered once, in revision order, whatever the timing.
//!
//! # Compaction
//!
//! `compact(c)` drops every version older than the newest version at or below `c` of each key,
//! and tombstones below `c`, as etcd does. Like kube-apiserver, the store compacts itself
//! periodically (default every 5 minutes) to the revision it saw one interval earlier.
//!
//! One process at a time: redb locks the file, and a second process gets a clear error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{
    Event, EventKind, KeyValue, ListOptions, ListResult, Preconditions, Revision, Storage,
    StorageError, UpdateFn, WATCH_CHANNEL_CAPACITY, Watch, WatchItem, encode_continue, list_start,
};

const CURRENT: TableDefinition<&str, (u64, u64)> = TableDefinition::new("current");
const LOG: TableDefinition<u64, (&str, u8, u64, &[u8])> = TableDefinition::new("log");
const HISTORY: TableDefinition<(&str, u64), u8> = TableDefinition::new("history");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_CURRENT: &str = "current";
const META_COMPACTED: &str = "compacted";

const PUT: u8 = 0;
const TOMBSTONE: u8 = 1;

/// At most this many queued operations go into one transaction.
const MAX_BATCH: usize = 4096;
/// While gathering a batch under load: commit once no request arrived for this long…
const GATHER_QUIET: Duration = Duration::from_micros(50);
/// …or after this long in all.
const GATHER_MAX: Duration = Duration::from_micros(500);
/// Committed batches a watcher may fall behind before it replays from the log instead. The bus
/// keeps this many batches (and their values) alive even once every watcher has them, so it is
/// small: its readers are the apiserver's watch caches, which keep up, and one that does not
/// loses nothing but time (it replays from the log). Under load a batch holds tens of writes.
/// (This at 256 → 64 and the page cache below at 8 → 4 MB took the apiserver holding 10,000
/// pods from 120–123 to 116–118 MB, with no loss of throughput: BENCHMARKS.md.)
const BROADCAST_CAPACITY: usize = 64;
/// redb's page cache (reads and the write buffer). Reads that matter are served by the
/// apiserver's watch cache, so the store keeps only its hot B-tree pages; the operating
/// system's page cache holds the file. (32 MB cost the apiserver ~40 MB of RSS holding 10,000
/// pods; 8 and then 4 MB lost no measurable throughput: BENCHMARKS.md.)
const CACHE_BYTES: usize = 4 << 20;
/// Events read from the log per blocking read during a replay.
const REPLAY_CHUNK: usize = 2048;

/// How the embedded store behaves.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Compact the history this often, to the revision seen one interval earlier (as
    /// kube-apiserver's `--etcd-compaction-interval`); `None` never compacts on its own.
    pub compaction_interval: Option<Duration>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            compaction_interval: Some(Duration::from_secs(5 * 60)),
        }
    }
}

/// A handle on an embedded store; clones share it. The file closes when the last handle is
/// dropped; watches do not keep it open (they end with [`StorageError::Unavailable`]).
#[derive(Clone)]
pub struct EmbeddedStorage {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    ops: Option<std_mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    bus: broadcast::Sender<Arc<[Event]>>,
    /// The revision up to which every event has been published on `bus`.
    published: Arc<AtomicI64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer thread, which then releases the file.
        self.ops.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl EmbeddedStorage {
    /// Opens (or creates) the store at `path` with the default options.
    pub fn open(path: &Path) -> Result<EmbeddedStorage, StorageError> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// Opens (or creates) the store at `path`.
    pub fn open_with(
        path: &Path,
        options: EmbeddedOptions,
    ) -> Result<EmbeddedStorage, StorageError> {
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StorageError::Unavailable(format!(
                "the embedded store {} is already in use by another process (only one process may open it at a time)",
                path.display()
            )),
            other => StorageError::Internal(format!("cannot open the embedded store {}: {other}", path.display())),
        })?;
        let db = Arc::new(db);
        let (current, compacted) = init_tables(&db)?;
        let (bus, _) = broadcast::channel(BROADCAST_CAPACITY);
        let published = Arc::new(AtomicI64::new(current as i64));
        let (ops, queue) = std_mpsc::channel();
        let (done, committed) = std_mpsc::channel();
        let notifier = {
            let (bus, published) = (bus.clone(), published.clone());
            std::thread::Builder::new()
                .name("ferry-store-notify".into())
                .spawn(move || notify(committed, bus, published))
                .map_err(|e| {
                    StorageError::Internal(format!("cannot start the store's notifier thread: {e}"))
                })?
        };
        let writer = Writer {
            db: db.clone(),
            queue,
            done,
            next: current + 1,
            compacted,
            compaction_interval: options.compaction_interval,
        };
        let writer = std::thread::Builder::new()
            .name("ferry-store-writer".into())
            .spawn(move || {
                writer.run();
                // `run` dropped the sender: the notifier drains what is left and stops.
                let _ = notifier.join();
            })
            .map_err(|e| {
                StorageError::Internal(format!("cannot start the store's writer thread: {e}"))
            })?;
        tracing::info!(path = %path.display(), revision = current, compacted, "opened the embedded store");
        Ok(EmbeddedStorage {
            inner: Arc::new(Inner {
                db,
                ops: Some(ops),
                writer: Some(writer),
                bus,
                published,
            }),
        })
    }

    async fn submit(&self, op: Op) -> Result<Outcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        let ops = self.inner.ops.as_ref().ok_or_else(closed)?;
        ops.send(Request { op, reply }).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs a read on the blocking pool (reads may touch the disk).
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || read(&db))
            .await
            .map_err(|e| StorageError::Internal(format!("a store read failed: {e}")))?
    }

    async fn latest(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let key = key.to_owned();
        self.read(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let current = txn.open_table(CURRENT).map_err(internal)?;
            let log = txn.open_table(LOG).map_err(internal)?;
            let Some(found) = current.get(key.as_str()).map_err(internal)? else {
                return Ok(None);
            };
            let (create, modified) = found.value();
            Ok(Some(kv(
                &key,
                create,
                modified,
                logged_value(&log, modified)?,
            )))
        })
        .await
    }
}

fn closed() -> StorageError {
    StorageError::Unavailable("the embedded store is closed".into())
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(e.to_string())
}

/// Creates the tables on a new file and reads the current and compacted revisions.
fn init_tables(db: &Database) -> Result<(u64, u64), StorageError> {
    let txn = db.begin_write().map_err(internal)?;
    let revs = {
        txn.open_table(CURRENT).map_err(internal)?;
        txn.open_table(LOG).map_err(internal)?;
        txn.open_table(HISTORY).map_err(internal)?;
        let meta = txn.open_table(META).map_err(internal)?;
        let current = meta
            .get(META_CURRENT)
            .map_err(internal)?
            .map(|v| v.value())
            .unwrap_or(0);
        let compacted = meta
            .get(META_COMPACTED)
            .map_err(internal)?
            .map(|v| v.value())
            .unwrap_or(0);
        (current, compacted)
    };
    txn.commit().map_err(internal)?;
    Ok(revs)
}

/// What a writer asks the writer thread to do.
enum Op {
    Put {
        key: String,
        value: Bytes,
        expect: Expect,
    },
    Delete {
        key: String,
        mod_revision: u64,
    },
    Compact {
        revision: u64,
    },
}

/// The state a write requires, checked inside the transaction.
#[derive(Clone, Copy)]
enum Expect {
    Absent,
    ModRevision(u64),
}

enum Outcome {
    /// The write applied; the key's new state (for a delete: its last state).
    Done(KeyValue),
    /// The check failed; the key's current state.
    Changed(Option<KeyValue>),
    Compacted,
}

/// Where the writer of a request waits for its outcome.
type Reply = oneshot::Sender<Result<Outcome, StorageError>>;

struct Request {
    op: Op,
    reply: Reply,
}

/// A committed batch, for the notifier thread.
struct Committed {
    replies: Vec<(Reply, Result<Outcome, StorageError>)>,
    events: Vec<Event>,
    /// The store's revision after the batch.
    last: u64,
}

/// Answers the writers of each committed batch and publishes its events, in commit order.
fn notify(
    committed: std_mpsc::Receiver<Committed>,
    bus: broadcast::Sender<Arc<[Event]>>,
    published: Arc<AtomicI64>,
) {
    for Committed {
        replies,
        events,
        last,
    } in committed
    {
        if !events.is_empty() {
            // No receivers is fine: nobody is watching.
            let _ = bus.send(events.into());
        }
        published.store(last as i64, Ordering::Release);
        for (reply, outcome) in replies {
            let _ = reply.send(outcome);
        }
    }
}

struct Writer {
    db: Arc<Database>,
    queue: std_mpsc::Receiver<Request>,
    /// To the notifier thread, which answers writers and publishes events in commit order.
    done: std_mpsc::Sender<Committed>,
    /// The revision the next write gets.
    next: u64,
    compacted: u64,
    compaction_interval: Option<Duration>,
}

impl Writer {
    fn run(mut self) {
        let mut next_compaction = self
            .compaction_interval
            .map(|every| (Instant::now() + every, self.next - 1));
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut last_batch = 0;
        loop {
            let first = match next_compaction {
                Some((at, _)) => match self
                    .queue
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Ok(request) => Some(request),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                },
                None => match self.queue.recv() {
                    Ok(request) => Some(request),
                    Err(_) => return,
                },
            };
            if let Some((at, target)) = next_compaction
                && Instant::now() >= at
            {
                // Compact to what was current one interval ago, so the last interval's
                // history stays available to watches, as kube-apiserver's compactor does.
                if target > self.compacted
                    && let Err(e) = self.compact(target)
                {
                    tracing::warn!(error = %e, revision = target, "periodic compaction failed");
                }
                let every = self.compaction_interval.unwrap_or_default();
                next_compaction = Some((Instant::now() + every, self.next - 1));
            }
            let Some(first) = first else { continue };
            batch.push(first);
            self.gather(&mut batch, last_batch);
            last_batch = batch.len();
            self.apply(&mut batch);
        }
    }

    /// Adds what else is queued to `batch`. Under concurrent load (more than one writer in this
    /// batch or the last), also waits while requests keep arriving: the writers answered by the
    /// previous commit are about to send their next request, and one fsync for all of them beats
    /// one for each half (closed-loop writers otherwise settle into two alternating groups).
    /// A single writer never waits.
    fn gather(&self, batch: &mut Vec<Request>, last_batch: usize) {
        let drain = |batch: &mut Vec<Request>| {
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
        };
        drain(batch);
        if batch.len() <= 1 && last_batch <= 1 {
            return;
        }
        let started = Instant::now();
        while batch.len() < MAX_BATCH && started.elapsed() < GATHER_MAX {
            match self.queue.recv_timeout(GATHER_QUIET) {
                Ok(request) => {
                    batch.push(request);
                    drain(batch);
                }
                Err(_) => break,
            }
        }
    }

    /// Applies a batch of requests in one durable transaction, then answers them and publishes
    /// the events.
    fn apply(&mut self, batch: &mut Vec<Request>) {
        let start = self.next;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let committed = (|| -> Result<(), StorageError> {
            let txn = self.db.begin_write().map_err(internal)?;
            {
                let mut current = txn.open_table(CURRENT).map_err(internal)?;
                let mut log = txn.open_table(LOG).map_err(internal)?;
                let mut history = txn.open_table(HISTORY).map_err(internal)?;
                for request in batch.iter() {
                    let outcome = match &request.op {
                        Op::Put { key, value, expect } => {
                            let existing = current_state(&current, &log, key)?;
                            let holds = match (expect, &existing) {
                                (Expect::Absent, None) => true,
                                (Expect::ModRevision(want), Some((_, modified, _))) => {
                                    want == modified
                                }
                                _ => false,
                            };
                            if !holds {
                                Ok(Outcome::Changed(existing.map(|(c, m, v)| kv(key, c, m, v))))
                            } else {
                                let revision = self.next;
                                self.next += 1;
                                let create = existing.as_ref().map_or(revision, |(c, _, _)| *c);
                                current
                                    .insert(key.as_str(), (create, revision))
                                    .map_err(internal)?;
                                log.insert(revision, (key.as_str(), PUT, create, value.as_ref()))
                                    .map_err(internal)?;
                                history
                                    .insert((key.as_str(), revision), PUT)
                                    .map_err(internal)?;
                                events.push(Event {
                                    kind: if existing.is_some() {
                                        EventKind::Modified
                                    } else {
                                        EventKind::Added
                                    },
                                    key: key.clone(),
                                    value: value.clone(),
                                    prev_value: existing.map(|(_, _, v)| v),
                                    revision: revision as i64,
                                });
                                Ok(Outcome::Done(kv(key, create, revision, value.clone())))
                            }
                        }
                        Op::Delete { key, mod_revision } => {
                            match current_state(&current, &log, key)? {
                                Some((create, modified, value)) if modified == *mod_revision => {
                                    let revision = self.next;
                                    self.next += 1;
                                    current.remove(key.as_str()).map_err(internal)?;
                                    log.insert(
                                        revision,
                                        (key.as_str(), TOMBSTONE, create, &[][..]),
                                    )
                                    .map_err(internal)?;
                                    history
                                        .insert((key.as_str(), revision), TOMBSTONE)
                                        .map_err(internal)?;
                                    events.push(Event {
                                        kind: EventKind::Deleted,
                                        key: key.clone(),
                                        value: value.clone(),
                                        prev_value: Some(value.clone()),
                                        revision: revision as i64,
                                    });
                                    Ok(Outcome::Done(kv(key, create, modified, value)))
                                }
                                other => {
                                    Ok(Outcome::Changed(other.map(|(c, m, v)| kv(key, c, m, v))))
                                }
                            }
                        }
                        // Compactions run in their own transaction, below.
                        Op::Compact { .. } => Ok(Outcome::Compacted),
                    };
                    outcomes.push(outcome);
                }
                if self.next != start {
                    let mut meta = txn.open_table(META).map_err(internal)?;
                    meta.insert(META_CURRENT, self.next - 1).map_err(internal)?;
                }
            }
            if self.next != start {
                txn.commit().map_err(internal)?;
            }
            Ok(())
        })();

        if let Err(e) = committed {
            // Nothing was written: fail every request of the batch and reuse the revisions.
            tracing::error!(error = %e, "the embedded store could not commit a batch");
            self.next = start;
            for request in batch.drain(..) {
                let _ = request
                    .reply
                    .send(Err(StorageError::Internal(format!("commit failed: {e}"))));
            }
            return;
        }

        let mut replies = Vec::with_capacity(batch.len());
        for (request, outcome) in batch.drain(..).zip(outcomes) {
            let outcome = match request.op {
                Op::Compact { revision } => self.compact(revision).map(|()| Outcome::Compacted),
                _ => outcome,
            };
            replies.push((request.reply, outcome));
        }
        // Answering and publishing happen on the notifier thread, so that the next batch can
        // start while this one's writers are woken.
        let _ = self.done.send(Committed {
            replies,
            events,
            last: self.next - 1,
        });
    }

    /// Drops the history older than `revision`, keeping the newest version of each key at or
    /// below it (unless that is a tombstone older than `revision`).
    fn compact(&mut self, revision: u64) -> Result<(), StorageError> {
        let current = self.next - 1;
        if revision > current {
            return Err(StorageError::FutureRevision {
                requested: revision as i64,
                current: current as i64,
            });
        }
        if revision <= self.compacted {
            return Ok(());
        }
        let started = Instant::now();
        let txn = self.db.begin_write().map_err(internal)?;
        let mut removed = 0usize;
        {
            let mut log = txn.open_table(LOG).map_err(internal)?;
            let mut history = txn.open_table(HISTORY).map_err(internal)?;
            // Every write since the last compaction that is older than the new one.
            let window: Vec<(u64, String, u8)> = log
                .range(self.compacted..revision)
                .map_err(internal)?
                .map(|entry| {
                    let (rev, value) = entry.map_err(internal)?;
                    let (key, kind, _, _) = value.value();
                    Ok((rev.value(), key.to_owned(), kind))
                })
                .collect::<Result<_, StorageError>>()?;
            for (rev, key, kind) in window {
                // Older versions of this key are superseded by this one.
                let older: Vec<u64> = history
                    .range((key.as_str(), 0)..(key.as_str(), rev))
                    .map_err(internal)?
                    .map(|entry| entry.map(|(k, _)| k.value().1).map_err(internal))
                    .collect::<Result<_, _>>()?;
                for old in older {
                    history.remove((key.as_str(), old)).map_err(internal)?;
                    log.remove(old).map_err(internal)?;
                    removed += 1;
                }
                if kind == TOMBSTONE {
                    history.remove((key.as_str(), rev)).map_err(internal)?;
                    log.remove(rev).map_err(internal)?;
                    removed += 1;
                }
            }
            let mut meta = txn.open_table(META).map_err(internal)?;
            meta.insert(META_COMPACTED, revision).map_err(internal)?;
        }
        txn.commit().map_err(internal)?;
        self.compacted = revision;
        tracing::info!(revision, removed, elapsed = ?started.elapsed(), "compacted the embedded store");
        Ok(())
    }
}

/// The value written at `revision`.
fn logged_value(
    log: &impl ReadableTable<u64, (&'static str, u8, u64, &'static [u8])>,
    revision: u64,
) -> Result<Bytes, StorageError> {
    let entry = log
        .get(revision)
        .map_err(internal)?
        .ok_or_else(|| internal(format!("log entry {revision} is missing")))?;
    Ok(Bytes::copy_from_slice(entry.value().3))
}

/// The live state of `key` inside a write transaction: (create revision, mod revision, value).
fn current_state(
    current: &impl ReadableTable<&'static str, (u64, u64)>,
    log: &impl ReadableTable<u64, (&'static str, u8, u64, &'static [u8])>,
    key: &str,
) -> Result<Option<(u64, u64, Bytes)>, StorageError> {
    let Some(found) = current.get(key).map_err(internal)? else {
        return Ok(None);
    };
    let (create, modified) = found.value();
    Ok(Some((create, modified, logged_value(log, modified)?)))
}

fn kv(key: &str, create: u64, modified: u64, value: Bytes) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value,
        create_revision: create as i64,
        mod_revision: modified as i64,
    }
}

fn revisions(meta: &impl ReadableTable<&'static str, u64>) -> Result<(u64, u64), StorageError> {
    let current = meta
        .get(META_CURRENT)
        .map_err(internal)?
        .map(|v| v.value())
        .unwrap_or(0);
    let compacted = meta
        .get(META_COMPACTED)
        .map_err(internal)?
        .map(|v| v.value())
        .unwrap_or(0);
    Ok((current, compacted))
}

/// Checks that `revision` can be read: not compacted away, not in the future.
fn check_readable(revision: u64, current: u64, compacted: u64) -> Result<(), StorageError> {
    if revision < compacted {
        return Err(StorageError::TooOld {
            requested: revision as i64,
            compacted: compacted as i64,
        });
    }
    if revision > current {
        return Err(StorageError::FutureRevision {
            requested: revision as i64,
            current: current as i64,
        });
    }
    Ok(())
}

/// The newest version of `key` at or below `revision`, if it was alive then.
fn read_at(
    history: &impl ReadableTable<(&'static str, u64), u8>,
    log: &impl ReadableTable<u64, (&'static str, u8, u64, &'static [u8])>,
    key: &str,
    revision: u64,
) -> Result<Option<KeyValue>, StorageError> {
    let newest = history
        .range((key, 0)..=(key, revision))
        .map_err(internal)?
        .next_back();
    let Some(entry) = newest else { return Ok(None) };
    let (k, kind) = entry.map_err(internal)?;
    if kind.value() == TOMBSTONE {
        return Ok(None);
    }
    let rev = k.value().1;
    let found = log
        .get(rev)
        .map_err(internal)?
        .ok_or_else(|| internal(format!("log entry {rev} is missing")))?;
    let (_, _, create, value) = found.value();
    Ok(Some(kv(key, create, rev, Bytes::copy_from_slice(value))))
}

/// Reads the log from revision `from` (inclusive) on, at most `max` events under `prefix`, up to
/// revision `until` (inclusive). Returns the events and the last revision examined.
fn read_log(
    db: &Database,
    prefix: &str,
    from: u64,
    until: u64,
    max: usize,
) -> Result<(Vec<Event>, u64), StorageError> {
    let txn = db.begin_read().map_err(internal)?;
    let meta = txn.open_table(META).map_err(internal)?;
    let (_, compacted) = revisions(&meta)?;
    if from < compacted {
        return Err(StorageError::TooOld {
            requested: from as i64,
            compacted: compacted as i64,
        });
    }
    let log = txn.open_table(LOG).map_err(internal)?;
    let history = txn.open_table(HISTORY).map_err(internal)?;
    let mut events = Vec::new();
    let mut last = from.saturating_sub(1);
    for entry in log.range(from..=until).map_err(internal)? {
        let (rev, value) = entry.map_err(internal)?;
        let rev = rev.value();
        last = rev;
        let (key, kind, create, value) = value.value();
        if !key.starts_with(prefix) {
            continue;
        }
        let previous = read_at(&history, &log, key, rev - 1)?.map(|kv| kv.value);
        let event = if kind == TOMBSTONE {
            let last_state = previous.clone().unwrap_or_default();
            Event {
                kind: EventKind::Deleted,
                key: key.to_owned(),
                value: last_state,
                prev_value: previous,
                revision: rev as i64,
            }
        } else {
            Event {
                kind: if create == rev {
                    EventKind::Added
                } else {
                    EventKind::Modified
                },
                key: key.to_owned(),
                value: Bytes::copy_from_slice(value),
                prev_value: if create == rev { None } else { previous },
                revision: rev as i64,
            }
        };
        events.push(event);
        if events.len() >= max {
            break;
        }
    }
    if events.len() < max {
        last = until;
    }
    Ok((events, last))
}

/// Lists `prefix` from `start` at `revision` (`None`: the latest) in one read transaction.
fn list_blocking(
    db: &Database,
    prefix: &str,
    start: &str,
    revision: Option<u64>,
    limit: usize,
) -> Result<ListResult, StorageError> {
    let txn = db.begin_read().map_err(internal)?;
    let meta = txn.open_table(META).map_err(internal)?;
    let (current, compacted) = revisions(&meta)?;
    let at = match revision {
        Some(rev) => {
            check_readable(rev, current, compacted)?;
            rev
        }
        None => current,
    };
    let mut items = Vec::new();
    let mut more = 0i64;
    if at == current {
        let table = txn.open_table(CURRENT).map_err(internal)?;
        let log = txn.open_table(LOG).map_err(internal)?;
        for entry in table.range(start..).map_err(internal)? {
            let (key, value) = entry.map_err(internal)?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            if items.len() < limit {
                let (create, modified) = value.value();
                items.push(kv(key, create, modified, logged_value(&log, modified)?));
            } else {
                more += 1;
            }
        }
    } else {
        let history = txn.open_table(HISTORY).map_err(internal)?;
        let log = txn.open_table(LOG).map_err(internal)?;
        // History is ordered by (key, revision): the newest version at or below `at` of each
        // key is the last one seen before the key changes.
        let mut pending: Option<(String, u64, u8)> = None;
        let emit = |pending: Option<(String, u64, u8)>,
                    items: &mut Vec<KeyValue>,
                    more: &mut i64|
         -> Result<(), StorageError> {
            let Some((key, rev, kind)) = pending else {
                return Ok(());
            };
            if kind == TOMBSTONE {
                return Ok(());
            }
            if items.len() < limit {
                let found = log
                    .get(rev)
                    .map_err(internal)?
                    .ok_or_else(|| internal(format!("log entry {rev} is missing")))?;
                let (_, _, create, value) = found.value();
                items.push(kv(&key, create, rev, Bytes::copy_from_slice(value)));
            } else {
                *more += 1;
            }
            Ok(())
        };
        for entry in history.range((start, 0)..).map_err(internal)? {
            let (k, kind) = entry.map_err(internal)?;
            let (key, rev) = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if rev > at {
                continue;
            }
            if pending.as_ref().is_some_and(|(p, _, _)| p != key) {
                emit(pending.take(), &mut items, &mut more)?;
            }
            pending = Some((key.to_owned(), rev, kind.value()));
        }
        emit(pending.take(), &mut items, &mut more)?;
    }
    let continue_token = (more > 0).then(|| {
        let last = items.last().map(|kv| kv.key.as_str()).unwrap_or(start);
        encode_continue(prefix, last, at as i64)
    });
    Ok(ListResult {
        items,
        revision: at as i64,
        continue_token,
        remaining: (more > 0).then_some(more),
    })
}

#[async_trait]
impl Storage for EmbeddedStorage {
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        match self
            .submit(Op::Put {
                key: key.to_owned(),
                value,
                expect: Expect::Absent,
            })
            .await?
        {
            Outcome::Done(kv) => Ok(kv),
            _ => Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            }),
        }
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<KeyValue, StorageError> {
        let not_found = || StorageError::NotFound {
            key: key.to_owned(),
        };
        let Some(revision) = revision.filter(|r| *r > 0) else {
            return self.latest(key).await?.ok_or_else(not_found);
        };
        let owned = key.to_owned();
        let found = self
            .read(move |db| {
                let txn = db.begin_read().map_err(internal)?;
                let meta = txn.open_table(META).map_err(internal)?;
                let (current, compacted) = revisions(&meta)?;
                check_readable(revision as u64, current, compacted)?;
                let history = txn.open_table(HISTORY).map_err(internal)?;
                let log = txn.open_table(LOG).map_err(internal)?;
                read_at(&history, &log, &owned, revision as u64)
            })
            .await?;
        found.ok_or_else(not_found)
    }

    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError> {
        let (start, revision) = list_start(prefix, opts)?;
        let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let prefix = prefix.to_owned();
        self.read(move |db| list_blocking(db, &prefix, &start, revision.map(|r| r as u64), limit))
            .await
    }

    async fn count(&self, prefix: &str) -> Result<i64, StorageError> {
        let prefix = prefix.to_owned();
        self.read(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let table = txn.open_table(CURRENT).map_err(internal)?;
            let mut count = 0;
            for entry in table.range(prefix.as_str()..).map_err(internal)? {
                let (key, _) = entry.map_err(internal)?;
                if !key.value().starts_with(prefix.as_str()) {
                    break;
                }
                count += 1;
            }
            Ok(count)
        })
        .await
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        preconditions: &Preconditions,
        ignore_not_found: bool,
        update: &mut UpdateFn<'_>,
    ) -> Result<KeyValue, StorageError> {
        let mut state = self.latest(key).await?;
        loop {
            match &state {
                Some(current) => preconditions.check(current)?,
                None if !ignore_not_found => {
                    return Err(StorageError::NotFound {
                        key: key.to_owned(),
                    });
                }
                None if *preconditions != Preconditions::none() => {
                    return Err(StorageError::Conflict {
                        key: key.to_owned(),
                        message: "Precondition failed: the object does not exist".into(),
                    });
                }
                None => {}
            }
            let value = update(state.as_ref())?;
            if let Some(current) = &state
                && current.value == value
            {
                return Ok(current.clone());
            }
            let expect = state.as_ref().map_or(Expect::Absent, |s| {
                Expect::ModRevision(s.mod_revision as u64)
            });
            match self
                .submit(Op::Put {
                    key: key.to_owned(),
                    value,
                    expect,
                })
                .await?
            {
                Outcome::Done(kv) => return Ok(kv),
                Outcome::Changed(now) => state = now,
                Outcome::Compacted => return Err(internal("unexpected answer to a write")),
            }
        }
    }

    async fn delete(
        &self,
        key: &str,
        preconditions: &Preconditions,
    ) -> Result<KeyValue, StorageError> {
        let mut state = self.latest(key).await?;
        loop {
            let Some(current) = state else {
                return Err(StorageError::NotFound {
                    key: key.to_owned(),
                });
            };
            preconditions.check(&current)?;
            let op = Op::Delete {
                key: key.to_owned(),
                mod_revision: current.mod_revision as u64,
            };
            match self.submit(op).await? {
                Outcome::Done(last) => return Ok(last),
                Outcome::Changed(now) => state = now,
                Outcome::Compacted => return Err(internal("unexpected answer to a delete")),
            }
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StorageError> {
        let (events_tx, events_rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY);
        let (progress_tx, progress_rx) = mpsc::channel(1);
        let bus = self.inner.bus.subscribe();
        // "From now" is the revision the store shows after subscribing: everything after it is
        // either on the bus or in the log.
        let after = match after {
            after if after > 0 => after as u64,
            _ => self.current_revision().await? as u64,
        };
        let watcher = Watcher {
            store: Arc::downgrade(&self.inner),
            prefix: prefix.to_owned(),
            sent: after,
            events: events_tx,
            progress: progress_rx,
        };
        tokio::spawn(watcher.run(bus));
        Ok(Watch::new(events_rx, progress_tx))
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.read(|db| {
            let txn = db.begin_read().map_err(internal)?;
            let meta = txn.open_table(META).map_err(internal)?;
            Ok(revisions(&meta)?.0 as i64)
        })
        .await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.submit(Op::Compact {
            revision: revision.max(0) as u64,
        })
        .await
        .map(|_| ())
    }
}

/// The task behind one watch.
struct Watcher {
    /// Weak, so that a forgotten watch does not keep the file open.
    store: Weak<Inner>,
    prefix: String,
    /// Every event up to this revision has been sent (or did not match the prefix).
    sent: u64,
    events: mpsc::Sender<Result<WatchItem, StorageError>>,
    progress: mpsc::Receiver<()>,
}

impl Watcher {
    async fn run(mut self, mut bus: broadcast::Receiver<Arc<[Event]>>) {
        loop {
            // Catch up from the log with everything committed so far.
            if let Err(e) = self.replay().await {
                let _ = self.events.send(Err(e)).await;
                return;
            }
            // Then follow the bus.
            loop {
                tokio::select! {
                    batch = bus.recv() => match batch {
                        Ok(batch) => {
                            if !self.forward(&batch).await {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let Some(store) = self.store.upgrade() else { return self.closed().await };
                            bus = store.bus.subscribe();
                            break;
                        }
                        Err(broadcast::error::RecvError::Closed) => return self.closed().await,
                    },
                    Some(()) = self.progress.recv() => {
                        let Some(store) = self.store.upgrade() else { return self.closed().await };
                        let published = store.published.load(Ordering::Acquire) as u64;
                        drop(store);
                        // Everything up to `published` is on the bus already: pass it on first.
                        let mut lagged = false;
                        loop {
                            match bus.try_recv() {
                                Ok(batch) => {
                                    if !self.forward(&batch).await {
                                        return;
                                    }
                                }
                                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                    lagged = true;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        if lagged {
                            // Fell behind the bus: catch up from the log before answering.
                            let Some(store) = self.store.upgrade() else { return self.closed().await };
                            bus = store.bus.subscribe();
                            drop(store);
                            if let Err(e) = self.replay().await {
                                let _ = self.events.send(Err(e)).await;
                                return;
                            }
                        }
                        let revision = published.max(self.sent);
                        if self.events.send(Ok(WatchItem::Progress(revision as i64))).await.is_err() {
                            return;
                        }
                    }
                    () = self.events.closed() => return,
                }
            }
        }
    }

    /// Sends the events of a batch that are new and under the prefix. False when the consumer is gone.
    async fn forward(&mut self, batch: &[Event]) -> bool {
        for event in batch {
            let revision = event.revision as u64;
            if revision <= self.sent {
                continue;
            }
            self.sent = revision;
            if event.key.starts_with(&self.prefix)
                && self
                    .events
                    .send(Ok(WatchItem::Event(event.clone())))
                    .await
                    .is_err()
            {
                return false;
            }
        }
        true
    }

    /// Ends the watch because the store was closed.
    async fn closed(&self) {
        let _ = self.events.send(Err(closed())).await;
    }

    /// A handle on the store for one read; fails once the store is closed.
    fn store(&self) -> Result<EmbeddedStorage, StorageError> {
        self.store
            .upgrade()
            .map(|inner| EmbeddedStorage { inner })
            .ok_or_else(closed)
    }

    /// Sends every event committed after `sent`, from the log.
    async fn replay(&mut self) -> Result<(), StorageError> {
        let until = self.store()?.current_revision().await? as u64;
        while self.sent < until {
            let (prefix, from) = (self.prefix.clone(), self.sent + 1);
            let (events, last) = self
                .store()?
                .read(move |db| read_log(db, &prefix, from, until, REPLAY_CHUNK))
                .await?;
            for event in events {
                if self.events.send(Ok(WatchItem::Event(event))).await.is_err() {
                    return Ok(());
                }
            }
            self.sent = last;
        }
        Ok(())
    }
}

/// Where `ferry` keeps the embedded store under a data directory.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ferry.redb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_revisions_are_between_compacted_and_current() {
        assert!(check_readable(5, 10, 3).is_ok());
        assert!(check_readable(3, 10, 3).is_ok());
        assert!(matches!(
            check_readable(2, 10, 3),
            Err(StorageError::TooOld {
                requested: 2,
                compacted: 3
            })
        ));
        assert!(matches!(
            check_readable(11, 10, 3),
            Err(StorageError::FutureRevision {
                requested: 11,
                current: 10
            })
        ));
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;

    fn value(n: u32) -> Bytes {
        Bytes::from(format!(r#"{{"metadata":{{"name":"x"}},"n":{n}}}"#))
    }

    async fn set(store: &EmbeddedStorage, key: &str, v: Bytes) -> KeyValue {
        store
            .guaranteed_update(key, &Preconditions::none(), true, &mut |_| Ok(v.clone()))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_keeps_the_state_at_the_compacted_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStorage::open_with(
            &dir.path().join("s.redb"),
            EmbeddedOptions {
                compaction_interval: None,
            },
        )
        .unwrap();
        let a1 = set(&store, "/r/a", value(1)).await;
        set(&store, "/r/a", value(2)).await;
        let b = set(&store, "/r/b", value(1)).await;
        store.delete("/r/b", &Preconditions::none()).await.unwrap();
        let a3 = set(&store, "/r/a", value(3)).await;
        let c = set(&store, "/r/c", value(1)).await.mod_revision;
        set(&store, "/r/a", value(4)).await;

        store.compact(c).await.unwrap();
        // At the compacted revision: a=3, c=1, no b.
        let at_c = store
            .list(
                "/r/",
                &ListOptions {
                    revision: Some(c),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let got: Vec<_> = at_c
            .items
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.clone()))
            .collect();
        assert_eq!(got, vec![("/r/a", value(3)), ("/r/c", value(1))]);
        assert_eq!(
            store.get("/r/a", Some(c)).await.unwrap().mod_revision,
            a3.mod_revision
        );
        assert!(store.get("/r/b", Some(c)).await.unwrap_err().is_not_found());
        assert!(matches!(
            store.get("/r/a", Some(a1.mod_revision)).await,
            Err(StorageError::TooOld { .. })
        ));
        assert!(matches!(
            store.get("/r/b", Some(b.mod_revision)).await,
            Err(StorageError::TooOld { .. })
        ));

        // A watch from the compacted revision replays the writes after it, with the previous value.
        let mut watch = store.watch("/r/", c).await.unwrap();
        let Some(Ok(WatchItem::Event(event))) = watch.next().await else {
            panic!("no event")
        };
        assert_eq!(
            (event.kind, event.value, event.prev_value),
            (EventKind::Modified, value(4), Some(value(3)))
        );

        // The file survives a reopen with the same revisions.
        let current = store.current_revision().await.unwrap();
        drop(watch);
        drop(store);
        let store = EmbeddedStorage::open(&dir.path().join("s.redb")).unwrap();
        assert_eq!(store.current_revision().await.unwrap(), current);
        assert!(matches!(
            store.get("/r/a", Some(a1.mod_revision)).await,
            Err(StorageError::TooOld { .. })
        ));
    }
}
