//! The etcd backend: objects in etcd v3, read and written the way kube-apiserver does it
//! (`k8s.io/apiserver/pkg/storage/etcd3/store.go`).
//!
//! - `create` is a transaction `If(create_revision(key) == 0) Then(put)`;
//! - `guaranteed_update` and `delete` are compare-and-swap loops on the key's modification
//!   revision, whose `Else` branch reads the key so that a lost race costs no extra round trip;
//! - `list` reads one revision in pages, and resumes from a Kubernetes continue token;
//! - `watch` is one etcd watch per consumer, with `prev_kv` and progress notifications, that
//!   reconnects after a broken stream from the last delivered revision;
//! - a background task compacts the history every [`EtcdConfig::compaction_interval`], as
//!   kube-apiserver's `--etcd-compaction-interval` does (and coordinated with other apiservers
//!   through the same `compact_rev_key` key).
//!
//! One gRPC connection (an [`etcd_client::Client`]) is shared by every operation; unary
//! operations are retried with exponential backoff while etcd is unreachable. Every write is a
//! transaction guarded by a revision compare, so a retry whose first attempt actually applied
//! cannot apply twice: it fails its compare instead (a `create` then reports
//! [`StorageError::AlreadyExists`], a `delete` [`StorageError::NotFound`]; the same ambiguity
//! exists in kube-apiserver and in every etcd client).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse,
    TxnResponse, WatchClient, WatchOptions, WatchRequestSender, WatchResponse, WatchResponseStream,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::etcd_channel;
use super::{
    Event, EventKind, KeyValue, ListOptions, ListResult, Preconditions, Revision, Storage,
    StorageError, UpdateFn, WATCH_CHANNEL_CAPACITY, Watch, WatchItem, encode_continue, list_start,
    prefix_end,
};

/// How often kube-apiserver compacts by default (`--etcd-compaction-interval`).
const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The largest gRPC message the client accepts (tonic's default is 4 MiB; etcd sends up to
/// `math.MaxInt32`). Lists are also read in pages of at most [`LIST_PAGE_SIZE`] keys, and a page
/// that is still too large is read again in smaller pages.
const MAX_DECODING_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// How many keys one range request reads at most when a list is paged internally.
const LIST_PAGE_SIZE: usize = 10_000;

/// The first delay between retries of an operation that found etcd unreachable.
const RETRY_INITIAL_DELAY: Duration = Duration::from_millis(50);
/// The longest delay between two retries.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(2);
/// How long a unary operation keeps retrying before it reports [`StorageError::Unavailable`].
const RETRY_BUDGET: Duration = Duration::from_secs(10);
/// How long a watch keeps trying to re-establish a broken stream before it reports
/// [`StorageError::Unavailable`] and ends.
const WATCH_RECONNECT_BUDGET: Duration = Duration::from_secs(30);

/// The key kube-apiserver's compactor uses to elect, each interval, one apiserver to compact.
/// Its value is the revision last compacted; its `version` counts compaction rounds.
const COMPACT_REV_KEY: &str = "compact_rev_key";

/// Settle time of a requested progress notification on an etcd that can send it ahead of
/// events (see [`progress_is_ordered`]), once the watcher is known to be in sync.
const PROGRESS_SETTLE_SYNCED: Duration = Duration::from_millis(50);
/// The same while the watcher may still be replaying history (etcd catches up unsynced
/// watchers every 100 ms).
const PROGRESS_SETTLE_CATCHING_UP: Duration = Duration::from_millis(300);

/// How to reach etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Compact the history this often, keeping the last interval's worth (kube-apiserver's
    /// `--etcd-compaction-interval`); `None` never compacts in the background.
    pub compaction_interval: Option<Duration>,
}

impl EtcdConfig {
    /// The given endpoints, compacted every 5 minutes (kube-apiserver's default).
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            compaction_interval: Some(DEFAULT_COMPACTION_INTERVAL),
        }
    }
}

/// [`Storage`] in etcd v3. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct EtcdStorage {
    inner: Arc<Inner>,
}

struct Inner {
    /// Keeps the connection's endpoint set alive; operations use the clients below.
    _client: Client,
    kv: KvClient,
    watch: WatchClient,
    /// Whether this etcd orders requested progress notifications after pending events
    /// (see [`progress_is_ordered`]).
    ordered_progress: bool,
    /// The highest revision this process knows etcd is compacted to.
    compacted: Arc<AtomicI64>,
    /// Dropped with the last clone of the store, which stops the background compactor.
    _stop_compactor: Option<oneshot::Sender<()>>,
}

impl EtcdStorage {
    /// Connects to etcd and checks that it answers (retrying for a few seconds while it does
    /// not); starts the background compactor if the config asks for one.
    pub async fn connect(config: EtcdConfig) -> Result<EtcdStorage, StorageError> {
        if config.endpoints.is_empty() {
            return Err(StorageError::Internal(
                "no etcd endpoints configured".to_owned(),
            ));
        }
        // One HTTP/2 connection, requests sent from the task that makes them; keep-alive and
        // reconnection as kube-apiserver's etcd client has them (`etcd_channel`).
        let channel = etcd_channel::channel(&config.endpoints).map_err(|e| {
            StorageError::Internal(format!("etcd endpoints {:?}: {e}", config.endpoints))
        })?;
        let client = Client::from_channel(channel, None).await.map_err(|e| {
            StorageError::Unavailable(format!("connecting to etcd {:?}: {e}", config.endpoints))
        })?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE);
        let watch = client
            .watch_client()
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE);

        let maintenance = client.maintenance_client();
        let status = retry(|| {
            let mut maintenance = maintenance.clone();
            async move { maintenance.status().await }
        })
        .await
        .map_err(|e| unary_error(e, "reading etcd's status"))?;
        let version = status.version().to_owned();
        let ordered_progress = progress_is_ordered(&version);
        info!(endpoints = ?config.endpoints, %version, "connected to etcd");
        if !ordered_progress {
            info!(
                %version,
                "this etcd may send requested watch progress notifications ahead of events \
                 (fixed in 3.4.25 and 3.5.8); progress is delayed until the watch settles"
            );
        }

        let compacted = Arc::new(AtomicI64::new(0));
        let stop_compactor = config.compaction_interval.map(|interval| {
            let (stop, stopped) = oneshot::channel();
            tokio::spawn(run_compactor(
                kv.clone(),
                interval,
                compacted.clone(),
                stopped,
            ));
            stop
        });
        Ok(EtcdStorage {
            inner: Arc::new(Inner {
                _client: client,
                kv,
                watch,
                ordered_progress,
                compacted,
                _stop_compactor: stop_compactor,
            }),
        })
    }

    fn kv(&self) -> KvClient {
        self.inner.kv.clone()
    }

    /// Reads `key` at the latest revision; `None` when it does not exist.
    async fn get_current(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let mut resp = retry(|| {
            let mut kv = self.kv();
            async move { kv.get(key, None).await }
        })
        .await
        .map_err(|e| unary_error(e, "reading a key"))?;
        Ok(resp.take_kvs().into_iter().next().map(key_value))
    }

    /// How many keys `[from, end)` holds at `revision` (the latest when `None`).
    async fn count_range(
        &self,
        from: &[u8],
        end: &[u8],
        revision: Option<Revision>,
    ) -> Result<i64, StorageError> {
        let mut options = GetOptions::new().with_range(end).with_count_only();
        if let Some(rev) = revision {
            options = options.with_revision(rev);
        }
        let resp = retry(|| {
            let mut kv = self.kv();
            let options = options.clone();
            async move { kv.get(from, Some(options)).await }
        })
        .await
        .map_err(|e| unary_error(e, "counting keys"))?;
        Ok(resp.count())
    }

    /// Turns the error of a read at `requested` into a [`StorageError`], finding out the
    /// compacted or the current revision when that is what went wrong.
    async fn read_error(
        &self,
        err: etcd_client::Error,
        requested: Revision,
        what: &str,
    ) -> StorageError {
        match classify(&err) {
            ErrorClass::Compacted => StorageError::TooOld {
                requested,
                compacted: self.compacted_revision().await,
            },
            ErrorClass::FutureRevision => StorageError::FutureRevision {
                requested,
                current: self.current_revision().await.unwrap_or_default(),
            },
            _ => unary_error(err, what),
        }
    }

    /// The revision etcd is compacted to. etcd's "required revision has been compacted" error
    /// does not say, so this asks a watch from revision 1, which etcd cancels with the
    /// compaction revision; if that fails, the highest compaction this process has seen.
    async fn compacted_revision(&self) -> Revision {
        let known = self.inner.compacted.load(Ordering::Relaxed);
        let mut watch = self.inner.watch.clone();
        let probe = async move {
            let options = WatchOptions::new().with_start_revision(1);
            let mut stream = watch
                .watch("\0ferry/compaction-probe", Some(options))
                .await?;
            while let Some(resp) = stream.message().await? {
                if resp.compact_revision() != 0 {
                    return Ok(resp.compact_revision());
                }
                if resp.canceled() {
                    break;
                }
            }
            Ok::<_, etcd_client::Error>(0)
        };
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(rev)) => {
                self.inner.compacted.fetch_max(rev, Ordering::Relaxed);
                rev.max(known)
            }
            Ok(Err(e)) => {
                debug!(error = %e, "could not ask etcd for its compaction revision");
                known
            }
            Err(_) => known,
        }
    }
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let resp = retry(|| {
            let mut kv = self.kv();
            let txn = Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value.to_vec(), None)]);
            async move { kv.txn(txn).await }
        })
        .await
        .map_err(|e| unary_error(e, "creating a key"))?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = header_revision(&resp)?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<KeyValue, StorageError> {
        let revision = revision.filter(|r| *r > 0);
        let options = match revision {
            Some(rev) => GetOptions::new().with_revision(rev),
            None => GetOptions::new(),
        };
        let result = retry(|| {
            let mut kv = self.kv();
            let options = options.clone();
            async move { kv.get(key, Some(options)).await }
        })
        .await;
        let mut resp = match result {
            Ok(resp) => resp,
            Err(e) => {
                return Err(self
                    .read_error(e, revision.unwrap_or_default(), "reading a key")
                    .await);
            }
        };
        resp.take_kvs()
            .into_iter()
            .next()
            .map(key_value)
            .ok_or_else(|| StorageError::NotFound {
                key: key.to_owned(),
            })
    }

    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError> {
        let (start, mut revision) = list_start(prefix, opts)?;
        let range_end = range_end(prefix);
        let limit = opts.limit.filter(|l| *l > 0);
        let mut items: Vec<KeyValue> = Vec::new();
        let mut from = start.into_bytes();
        // Halved whenever a page is too large for one gRPC message (very large objects).
        let mut page_size = LIST_PAGE_SIZE;
        loop {
            let want = limit.map_or(page_size, |l| (l - items.len()).min(page_size));
            let mut options = GetOptions::new()
                .with_range(range_end.clone())
                .with_limit(want as i64);
            if let Some(rev) = revision {
                options = options.with_revision(rev);
            }
            let result = retry(|| {
                let mut kv = self.kv();
                let (from, options) = (from.clone(), options.clone());
                async move { kv.get(from, Some(options)).await }
            })
            .await;
            let mut resp = match result {
                Ok(resp) => resp,
                Err(e) if classify(&e) == ErrorClass::TooLarge && want > 1 => {
                    // The message held min(want, keys left) keys: count them to size the page.
                    let left = self
                        .count_range(&from, &range_end, revision)
                        .await
                        .unwrap_or(want as i64);
                    page_size = smaller_page(want.min(left.max(1) as usize), reported_length(&e));
                    debug!(prefix, page_size, error = %e, "a list page exceeded the message size limit; reading smaller pages");
                    continue;
                }
                Err(e) => {
                    return Err(self
                        .read_error(e, revision.unwrap_or_default(), "listing keys")
                        .await);
                }
            };
            // The first page of a list at the latest revision fixes the revision of the rest.
            let read_at = *revision.get_or_insert(resp.header().map_or(0, |h| h.revision()));
            let (more, count) = (resp.more(), resp.count());
            let kvs = resp.take_kvs();
            if kvs.is_empty() && more {
                return Err(StorageError::Internal(
                    "no results were found, but etcd indicated there were more values remaining"
                        .to_owned(),
                ));
            }
            let fetched = kvs.len() as i64;
            items.extend(kvs.into_iter().map(key_value));
            if !more {
                return Ok(ListResult {
                    items,
                    revision: read_at,
                    continue_token: None,
                    remaining: None,
                });
            }
            if let Some(limit) = limit
                && items.len() >= limit
            {
                let last = items.last().map(|kv| kv.key.clone()).unwrap_or_default();
                return Ok(ListResult {
                    items,
                    revision: read_at,
                    continue_token: Some(encode_continue(prefix, &last, read_at)),
                    remaining: Some(count - fetched),
                });
            }
            if let Some(last) = items.last() {
                from = format!("{}\0", last.key).into_bytes();
            }
        }
    }

    async fn count(&self, prefix: &str) -> Result<i64, StorageError> {
        self.count_range(prefix.as_bytes(), &range_end(prefix), None)
            .await
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        preconditions: &Preconditions,
        ignore_not_found: bool,
        update: &mut UpdateFn<'_>,
    ) -> Result<KeyValue, StorageError> {
        let mut current = self.get_current(key).await?;
        loop {
            match &current {
                Some(kv) => preconditions.check(kv)?,
                None if !ignore_not_found => {
                    return Err(StorageError::NotFound {
                        key: key.to_owned(),
                    });
                }
                // As kube-apiserver: the preconditions are checked against an empty object, so a
                // UID or resourceVersion precondition fails on a missing key.
                None => preconditions.check(&KeyValue {
                    key: key.to_owned(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: 0,
                })?,
            }
            let value = update(current.as_ref())?;
            if let Some(kv) = &current
                && kv.value == value
            {
                return Ok(kv.clone());
            }
            // `mod_revision == 0` also holds for a missing key, as kube-apiserver relies on.
            let expected = current.as_ref().map_or(0, |kv| kv.mod_revision);
            let resp = retry(|| {
                let mut kv = self.kv();
                let txn = Txn::new()
                    .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
                    .and_then([TxnOp::put(key, value.to_vec(), None)])
                    .or_else([TxnOp::get(key, None)]);
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(|e| unary_error(e, "updating a key"))?;
            if resp.succeeded() {
                let revision = header_revision(&resp)?;
                let create_revision = current.as_ref().map_or(revision, |kv| kv.create_revision);
                return Ok(KeyValue {
                    key: key.to_owned(),
                    value,
                    create_revision,
                    mod_revision: revision,
                });
            }
            debug!(
                key,
                "guaranteed update lost a race; retrying with the state etcd returned"
            );
            current = txn_else_get(&resp);
        }
    }

    async fn delete(
        &self,
        key: &str,
        preconditions: &Preconditions,
    ) -> Result<KeyValue, StorageError> {
        let not_found = || StorageError::NotFound {
            key: key.to_owned(),
        };
        let mut current = self.get_current(key).await?.ok_or_else(not_found)?;
        loop {
            preconditions.check(&current)?;
            let expected = current.mod_revision;
            let resp = retry(|| {
                let mut kv = self.kv();
                let txn = Txn::new()
                    .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
                    .and_then([TxnOp::delete(key, None)])
                    .or_else([TxnOp::get(key, None)]);
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(|e| unary_error(e, "deleting a key"))?;
            if resp.succeeded() {
                return Ok(current);
            }
            debug!(
                key,
                "delete lost a race; retrying with the state etcd returned"
            );
            current = txn_else_get(&resp).ok_or_else(not_found)?;
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StorageError> {
        // "From now" is resolved here, before returning, so that every write that completes
        // after `watch()` returns is delivered, however late the etcd watch is established.
        let start = if after > 0 {
            after + 1
        } else {
            self.current_revision().await? + 1
        };
        let (events_tx, events_rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY);
        let (progress_tx, progress_rx) = mpsc::channel(1);
        let task = WatchTask {
            client: self.inner.watch.clone(),
            prefix: prefix.to_owned(),
            range_end: range_end(prefix),
            next_rev: start,
            ordered_progress: self.inner.ordered_progress,
            events: events_tx,
            progress_requests: progress_rx,
            progress_wanted: false,
            last_progress: 0,
            broken_since: None,
            delay: RETRY_INITIAL_DELAY,
        };
        tokio::spawn(task.run());
        Ok(Watch::new(events_rx, progress_tx))
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        let options = GetOptions::new().with_count_only();
        let resp = retry(|| {
            let mut kv = self.kv();
            let options = options.clone();
            async move { kv.get(COMPACT_REV_KEY, Some(options)).await }
        })
        .await
        .map_err(|e| unary_error(e, "reading the current revision"))?;
        resp.header().map(|h| h.revision()).ok_or_else(|| {
            StorageError::Internal("etcd sent a response without a header".to_owned())
        })
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        match compact_to(&self.inner.kv, revision).await {
            Ok(()) => {
                self.inner.compacted.fetch_max(revision, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if classify(&e) == ErrorClass::FutureRevision => {
                Err(StorageError::FutureRevision {
                    requested: revision,
                    current: self.current_revision().await.unwrap_or_default(),
                })
            }
            Err(e) => Err(unary_error(e, "compacting")),
        }
    }
}

/// Compacts etcd to `revision`; a revision that is already compacted is not an error.
async fn compact_to(kv: &KvClient, revision: Revision) -> Result<(), etcd_client::Error> {
    let result = retry(|| {
        let mut kv = kv.clone();
        async move { kv.compact(revision, None).await }
    })
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if classify(&e) == ErrorClass::Compacted => Ok(()),
        Err(e) => Err(e),
    }
}

/// The background compactor, as kube-apiserver's (`etcd3/compact.go`): every `interval`, one
/// apiserver wins a transaction on [`COMPACT_REV_KEY`] and compacts to the revision that was
/// current at the previous interval, so the last interval's history is always kept. Ends when
/// `stop`'s sender is dropped.
async fn run_compactor(
    kv: KvClient,
    interval: Duration,
    compacted: Arc<AtomicI64>,
    mut stop: oneshot::Receiver<()>,
) {
    // `compact_time` is the version of COMPACT_REV_KEY this apiserver expects; `revision` the
    // revision observed one interval ago, which the next winner compacts to.
    let (mut compact_time, mut revision) = (0_i64, 0_i64);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut stop => return,
        }
        let txn = Txn::new()
            .when([Compare::version(
                COMPACT_REV_KEY,
                CompareOp::Equal,
                compact_time,
            )])
            .and_then([TxnOp::put(COMPACT_REV_KEY, revision.to_string(), None)])
            .or_else([TxnOp::get(COMPACT_REV_KEY, None)]);
        let resp = match retry(|| {
            let mut kv = kv.clone();
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
        {
            Ok(resp) => resp,
            Err(e) => {
                warn!(error = %e, "etcd compaction: could not take this round");
                continue;
            }
        };
        let current = resp.header().map_or(0, |h| h.revision());
        if !resp.succeeded() {
            // Another apiserver compacted this round; follow its count.
            compact_time = txn_else_get_version(&resp).unwrap_or(compact_time);
            revision = current;
            continue;
        }
        compact_time += 1;
        let target = std::mem::replace(&mut revision, current);
        if target == 0 {
            // The first round only records the revision; nothing is compacted on start.
            continue;
        }
        match compact_to(&kv, target).await {
            Ok(()) => {
                compacted.fetch_max(target, Ordering::Relaxed);
                info!(revision = target, "etcd: compacted");
            }
            Err(e) => warn!(revision = target, error = %e, "etcd compaction failed"),
        }
    }
}

/// One watch: owns the etcd watch stream, converts its responses, and re-establishes it from the
/// first undelivered revision when it breaks.
struct WatchTask {
    client: WatchClient,
    prefix: String,
    range_end: Vec<u8>,
    /// The first revision not delivered yet: the start revision of the next etcd watch.
    next_rev: Revision,
    ordered_progress: bool,
    events: mpsc::Sender<Result<WatchItem, StorageError>>,
    progress_requests: mpsc::Receiver<()>,
    /// The consumer asked for progress that has not been sent yet.
    progress_wanted: bool,
    /// The last progress sent, so that progress never goes backwards.
    last_progress: Revision,
    /// Since when the watch has been trying to re-establish its etcd watch.
    broken_since: Option<Instant>,
    /// The next delay between two attempts to re-establish it.
    delay: Duration,
}

/// Why one etcd watch stream ended.
enum StreamEnd {
    /// The consumer is gone or the watch ended for good (its error has been sent).
    Done,
    /// The stream broke; it is worth establishing again.
    Broken(String),
}

impl WatchTask {
    async fn run(mut self) {
        loop {
            let options = WatchOptions::new()
                .with_range(self.range_end.clone())
                .with_start_revision(self.next_rev)
                .with_prev_key()
                .with_progress_notify();
            let mut client = self.client.clone();
            let prefix = self.prefix.clone();
            let opened = tokio::select! {
                _ = self.events.closed() => return,
                opened = client.watch(prefix, Some(options)) => opened,
            };
            let why = match opened {
                Ok(stream) => {
                    let (sender, responses) = stream.split();
                    match self.pump(sender, responses).await {
                        StreamEnd::Done => return,
                        StreamEnd::Broken(why) => why,
                    }
                }
                Err(e) if classify(&e) == ErrorClass::Transient => e.to_string(),
                Err(e) => {
                    let _ = self.events.send(Err(unary_error(e, "watching"))).await;
                    return;
                }
            };
            match self.broken_since {
                None => {
                    warn!(prefix = %self.prefix, from = self.next_rev, error = %why, "etcd watch broke; re-establishing it");
                    self.broken_since = Some(Instant::now());
                    self.delay = RETRY_INITIAL_DELAY;
                }
                Some(since) if since.elapsed() > WATCH_RECONNECT_BUDGET => {
                    warn!(prefix = %self.prefix, error = %why, "etcd watch: giving up re-establishing it");
                    let message =
                        format!("the etcd watch broke and could not be re-established: {why}");
                    let _ = self
                        .events
                        .send(Err(StorageError::Unavailable(message)))
                        .await;
                    return;
                }
                Some(_) => {
                    debug!(prefix = %self.prefix, error = %why, "etcd watch: still re-establishing")
                }
            }
            tokio::select! {
                _ = self.events.closed() => return,
                _ = tokio::time::sleep(self.delay) => {}
            }
            self.delay = (self.delay * 2).min(RETRY_MAX_DELAY);
        }
    }

    /// Runs one etcd watch stream until it ends.
    async fn pump(
        &mut self,
        mut sender: WatchRequestSender,
        mut responses: WatchResponseStream,
    ) -> StreamEnd {
        let start = self.next_rev;
        let mut watch_id = None::<i64>;
        // Whether the etcd watcher has certainly replayed the history it started in, which
        // matters only where requested progress can overtake events (`!ordered_progress`).
        let mut synced = false;
        let mut created_rev = Revision::MAX;
        // A requested progress notification held back until the stream settles.
        let mut held: Option<(Revision, Instant)> = None;
        if self.progress_wanted && sender.request_progress().await.is_err() {
            return StreamEnd::Broken("could not request progress".to_owned());
        }
        let far = Instant::now() + Duration::from_secs(3600);
        loop {
            let deadline = held.map_or(far, |(_, at)| at);
            tokio::select! {
                _ = self.events.closed() => {
                    if let Some(id) = watch_id {
                        let _ = sender.cancel(id).await;
                    }
                    return StreamEnd::Done;
                }
                request = self.progress_requests.recv() => {
                    if request.is_none() {
                        // The `Watch` is gone; `events.closed()` fires too.
                        return StreamEnd::Done;
                    }
                    self.progress_wanted = true;
                    if sender.request_progress().await.is_err() {
                        return StreamEnd::Broken("could not request progress".to_owned());
                    }
                }
                _ = tokio::time::sleep_until(deadline), if held.is_some() => {
                    if let Some((rev, _)) = held.take()
                        && !self.send_progress(rev).await
                    {
                        return StreamEnd::Done;
                    }
                }
                message = responses.message() => {
                    let resp = match message {
                        Ok(Some(resp)) => resp,
                        Ok(None) => return StreamEnd::Broken("etcd closed the watch stream".to_owned()),
                        Err(e) => return StreamEnd::Broken(e.to_string()),
                    };
                    if resp.compact_revision() != 0 {
                        let err = StorageError::TooOld { requested: self.next_rev - 1, compacted: resp.compact_revision() };
                        let _ = self.events.send(Err(err)).await;
                        return StreamEnd::Done;
                    }
                    if resp.canceled() {
                        let reason = resp.cancel_reason().to_owned();
                        let _ = self.events.send(Err(StorageError::Internal(format!("etcd canceled the watch: {reason}")))).await;
                        return StreamEnd::Done;
                    }
                    if resp.created() {
                        if let Some(since) = self.broken_since.take() {
                            info!(prefix = %self.prefix, from = start, after = ?since.elapsed(), "etcd watch re-established");
                        }
                        watch_id = Some(resp.watch_id());
                        created_rev = resp.header().map_or(0, |h| h.revision());
                        // A watcher that starts after the current revision is in sync at once.
                        synced = start > created_rev;
                        continue;
                    }
                    if resp.events().is_empty() {
                        let rev = resp.header().map_or(0, |h| h.revision());
                        // Periodic notifications (sent with the watcher's id) are only sent to a
                        // watcher in sync, in order with its events; requested ones (id -1) are
                        // ordered only by a fixed etcd.
                        let periodic = watch_id.is_some_and(|id| id == resp.watch_id());
                        if self.ordered_progress || periodic {
                            synced = true;
                            self.next_rev = self.next_rev.max(rev + 1);
                            held = None;
                            if !self.send_progress(rev).await {
                                return StreamEnd::Done;
                            }
                        } else {
                            let settle = if synced { PROGRESS_SETTLE_SYNCED } else { PROGRESS_SETTLE_CATCHING_UP };
                            let rev = held.map_or(rev, |(h, _)| h.max(rev));
                            held = Some((rev, Instant::now() + settle));
                        }
                        continue;
                    }
                    let settle = if synced { PROGRESS_SETTLE_SYNCED } else { PROGRESS_SETTLE_CATCHING_UP };
                    if !self.deliver(&resp, &mut held, settle).await {
                        return StreamEnd::Done;
                    }
                    if self.next_rev > created_rev {
                        synced = true;
                    }
                }
            }
        }
    }

    /// Sends the events of one response; `false` when the consumer is gone. A held progress
    /// notification is sent before the first event after it, or pushed back while events it
    /// claimed were delivered still arrive.
    async fn deliver(
        &mut self,
        resp: &WatchResponse,
        held: &mut Option<(Revision, Instant)>,
        settle: Duration,
    ) -> bool {
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let raw = RawKv::of(kv);
            if let Some((rev, _)) = *held
                && raw.mod_revision > rev
            {
                *held = None;
                if !self.send_progress(rev).await {
                    return false;
                }
            }
            let converted = convert_event(
                event.event_type() == EventType::Delete,
                raw,
                event.prev_kv().map(RawKv::of),
            );
            let revision = converted.revision;
            if self
                .events
                .send(Ok(WatchItem::Event(converted)))
                .await
                .is_err()
            {
                return false;
            }
            self.next_rev = self.next_rev.max(revision + 1);
        }
        if let Some((rev, at)) = held.as_mut() {
            // Events the progress claimed were delivered arrived after it: the stream was
            // behind, so wait for it to settle again.
            if self.next_rev - 1 <= *rev {
                *at = Instant::now() + settle;
            }
        }
        true
    }

    /// Sends `Progress(max(rev, last delivered, last progress))`; `false` when the consumer is
    /// gone.
    async fn send_progress(&mut self, rev: Revision) -> bool {
        let rev = rev.max(self.next_rev - 1).max(self.last_progress);
        self.last_progress = rev;
        self.progress_wanted = false;
        self.events.send(Ok(WatchItem::Progress(rev))).await.is_ok()
    }
}

/// The parts of an etcd key-value an event is made of.
#[derive(Clone, Copy, Debug)]
struct RawKv<'a> {
    key: &'a [u8],
    value: &'a [u8],
    create_revision: Revision,
    mod_revision: Revision,
}

impl<'a> RawKv<'a> {
    fn of(kv: &'a etcd_client::KeyValue) -> Self {
        Self {
            key: kv.key(),
            value: kv.value(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        }
    }
}

/// Converts one etcd watch event. A put that created the key (`create_revision ==
/// mod_revision`) is [`EventKind::Added`], any other put [`EventKind::Modified`]; a delete is
/// [`EventKind::Deleted`] at the delete's revision, carrying the last state from `prev_kv`.
///
/// etcd omits `prev_kv` when the previous revision is already compacted: a `Modified` event then
/// has no `prev_value`, and a `Deleted` event has an empty value (kube-apiserver fails the watch
/// in that case; here the consumer gets the key and the revision of the deletion).
fn convert_event(is_delete: bool, kv: RawKv<'_>, prev: Option<RawKv<'_>>) -> Event {
    let key = key_string(kv.key.to_vec());
    if is_delete {
        return Event {
            kind: EventKind::Deleted,
            key,
            value: prev.map_or_else(Bytes::new, |p| Bytes::copy_from_slice(p.value)),
            prev_value: prev.map(|p| Bytes::copy_from_slice(p.value)),
            revision: kv.mod_revision,
        };
    }
    let added = kv.create_revision == kv.mod_revision;
    Event {
        kind: if added {
            EventKind::Added
        } else {
            EventKind::Modified
        },
        key,
        value: Bytes::copy_from_slice(kv.value),
        prev_value: if added {
            None
        } else {
            prev.map(|p| Bytes::copy_from_slice(p.value))
        },
        revision: kv.mod_revision,
    }
}

/// An etcd key-value as a [`KeyValue`], without copying the value.
fn key_value(kv: etcd_client::KeyValue) -> KeyValue {
    let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
    let (key, value) = kv.into_key_value();
    KeyValue {
        key: key_string(key),
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    }
}

/// Keys are written by this process as strings; anything else is shown lossily.
fn key_string(key: Vec<u8>) -> String {
    String::from_utf8(key).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The end of the range of keys under `prefix` (`"\0"`, every key from `prefix` on, when the
/// prefix has no successor).
fn range_end(prefix: &str) -> Vec<u8> {
    prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0])
}

fn header_revision(resp: &TxnResponse) -> Result<Revision, StorageError> {
    resp.header().map(|h| h.revision()).ok_or_else(|| {
        StorageError::Internal("etcd sent a transaction response without a header".to_owned())
    })
}

/// The key read by the `Else(get key)` branch of a failed transaction.
fn txn_else_get(resp: &TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next().map(key_value),
        _ => None,
    })
}

/// The version of the key read by the `Else(get key)` branch of a failed transaction.
fn txn_else_get_version(resp: &TxnResponse) -> Option<i64> {
    resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.version()),
        _ => None,
    })
}

/// What an etcd client error means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorClass {
    /// etcd is unreachable or overloaded for now: worth retrying.
    Transient,
    /// A read or watch at a compacted revision.
    Compacted,
    /// A read at a revision etcd has not reached.
    FutureRevision,
    /// A response larger than [`MAX_DECODING_MESSAGE_SIZE`].
    TooLarge,
    /// Anything else.
    Other,
}

/// gRPC status codes, as numbers (tonic is not a direct dependency).
mod code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

fn classify(err: &etcd_client::Error) -> ErrorClass {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            classify_status(i32::from(status.code()), status.message())
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            ErrorClass::Transient
        }
        _ => ErrorClass::Other,
    }
}

/// Classifies a gRPC status by its code and etcd's message
/// (`etcd/api/v3rpc/rpctypes/error.go`).
fn classify_status(code: i32, message: &str) -> ErrorClass {
    if message.contains("required revision has been compacted") {
        return ErrorClass::Compacted;
    }
    if message.contains("required revision is a future revision") {
        return ErrorClass::FutureRevision;
    }
    if message.contains("decoded message length too large") {
        return ErrorClass::TooLarge;
    }
    let lower = message.to_ascii_lowercase();
    match code {
        // etcd's "no leader", "leader changed", "request timed out", and connection failures.
        code::UNAVAILABLE | code::DEADLINE_EXCEEDED => ErrorClass::Transient,
        code::RESOURCE_EXHAUSTED if lower.contains("too many requests") => ErrorClass::Transient,
        // A connection that broke under a request shows up with these codes.
        code::UNKNOWN | code::CANCELLED | code::INTERNAL
            if [
                "transport",
                "connect",
                "connection",
                "broken pipe",
                "h2 protocol",
                "stream closed",
                "go away",
                "goaway",
            ]
            .iter()
            .any(|needle| lower.contains(needle)) =>
        {
            ErrorClass::Transient
        }
        _ => ErrorClass::Other,
    }
}

/// The page size to try after a page of `keys` keys was `found` bytes, too large for one
/// message: what fits in 3/4 of the limit, at most half; half when the size is unknown.
fn smaller_page(keys: usize, found: Option<usize>) -> usize {
    let smaller = match found {
        Some(found) if found > 0 => {
            let fits = (keys as u128 * (MAX_DECODING_MESSAGE_SIZE as u128 * 3 / 4) / found as u128)
                as usize;
            fits.min(keys / 2)
        }
        _ => keys / 2,
    };
    smaller.max(1)
}

/// The length of the message an error says was too large.
fn reported_length(err: &etcd_client::Error) -> Option<usize> {
    match err {
        etcd_client::Error::GRpcStatus(status) => message_length(status.message()),
        _ => None,
    }
}

/// The `N` of tonic's "decoded message length too large: found N bytes".
fn message_length(message: &str) -> Option<usize> {
    let rest = &message[message.find("found ")? + "found ".len()..];
    rest.split(' ').next()?.parse().ok()
}

/// The [`StorageError`] for an error of a unary operation (after its retries).
fn unary_error(err: etcd_client::Error, what: &str) -> StorageError {
    match classify(&err) {
        ErrorClass::Transient => StorageError::Unavailable(format!("{what}: {err}")),
        _ => StorageError::Internal(format!("{what}: {err}")),
    }
}

/// Runs `op` until it succeeds, fails with a non-transient error, or [`RETRY_BUDGET`] is spent,
/// backing off exponentially from [`RETRY_INITIAL_DELAY`] to [`RETRY_MAX_DELAY`].
async fn retry<T, F, Fut>(mut op: F) -> Result<T, etcd_client::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let started = Instant::now();
    let mut delay = RETRY_INITIAL_DELAY;
    loop {
        match op().await {
            Err(e)
                if classify(&e) == ErrorClass::Transient
                    && started.elapsed() + delay <= RETRY_BUDGET =>
            {
                debug!(error = %e, retry_in = ?delay, "etcd unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX_DELAY);
            }
            result => return result,
        }
    }
}

/// Whether an etcd of this version sends a requested progress notification only after every
/// event it covers (etcd-io/etcd#15220, fixed in 3.4.25 and 3.5.8). Older versions can send it
/// ahead of pending events, so the watch holds it back until the stream settles.
fn progress_is_ordered(version: &str) -> bool {
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>());
    let (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    match (major, minor) {
        (3, 4) => patch >= 25,
        (3, 5) => patch >= 8,
        (3, 0..=3) | (0..=2, _) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(
        key: &'a str,
        value: &'a str,
        create_revision: Revision,
        mod_revision: Revision,
    ) -> RawKv<'a> {
        RawKv {
            key: key.as_bytes(),
            value: value.as_bytes(),
            create_revision,
            mod_revision,
        }
    }

    #[test]
    fn puts_become_added_or_modified() {
        let added = convert_event(false, raw("/p/a", "v1", 5, 5), None);
        assert_eq!(added.kind, EventKind::Added);
        assert_eq!(
            (added.key.as_str(), &added.value[..], added.revision),
            ("/p/a", &b"v1"[..], 5)
        );
        assert_eq!(added.prev_value, None);

        let modified = convert_event(
            false,
            raw("/p/a", "v2", 5, 7),
            Some(raw("/p/a", "v1", 5, 5)),
        );
        assert_eq!(modified.kind, EventKind::Modified);
        assert_eq!(&modified.value[..], b"v2");
        assert_eq!(modified.prev_value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(modified.revision, 7);

        // A re-creation after a delete is an Added, even when etcd sends a prev_kv.
        let recreated = convert_event(
            false,
            raw("/p/a", "v3", 9, 9),
            Some(raw("/p/a", "v2", 5, 7)),
        );
        assert_eq!(recreated.kind, EventKind::Added);
        assert_eq!(recreated.prev_value, None);
    }

    #[test]
    fn deletes_carry_the_last_state_at_the_delete_revision() {
        let deleted = convert_event(true, raw("/p/a", "", 0, 8), Some(raw("/p/a", "v2", 5, 7)));
        assert_eq!(deleted.kind, EventKind::Deleted);
        assert_eq!(&deleted.value[..], b"v2");
        assert_eq!(deleted.prev_value.as_deref(), Some(&b"v2"[..]));
        assert_eq!(deleted.revision, 8);

        let compacted = convert_event(true, raw("/p/a", "", 0, 8), None);
        assert_eq!(compacted.kind, EventKind::Deleted);
        assert!(compacted.value.is_empty());
        assert_eq!(compacted.revision, 8);
    }

    #[test]
    fn etcd_errors_are_classified() {
        assert_eq!(
            classify_status(11, "etcdserver: mvcc: required revision has been compacted"),
            ErrorClass::Compacted
        );
        assert_eq!(
            classify_status(
                11,
                "etcdserver: mvcc: required revision is a future revision"
            ),
            ErrorClass::FutureRevision
        );
        // tonic's own "message too large" shares etcd's OutOfRange code but is not a compaction.
        assert_eq!(
            classify_status(
                11,
                "Error, decoded message length too large: found 5 bytes, the limit is: 4 bytes"
            ),
            ErrorClass::TooLarge
        );
        assert_eq!(
            classify_status(14, "etcdserver: leader changed"),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_status(14, "tcp connect error: Connection refused"),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_status(4, "context deadline exceeded"),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_status(8, "etcdserver: too many requests"),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_status(8, "grpc: received message larger than max"),
            ErrorClass::Other
        );
        assert_eq!(
            classify_status(2, "h2 protocol error: error reading a body from connection"),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_status(3, "etcdserver: key is not provided"),
            ErrorClass::Other
        );
        assert_eq!(
            classify_status(2, "etcdserver: request is too large"),
            ErrorClass::Other
        );
    }

    #[test]
    fn oversized_pages_shrink_to_fit() {
        let message = "Error, decoded message length too large: found 1000000000 bytes, the limit is: 268435456 bytes";
        assert_eq!(message_length(message), Some(1_000_000_000));
        assert_eq!(message_length("something else"), None);
        // 10,000 keys of 100 KB: 1 GB; a page that fits ~3/4 of the limit is ~2,000 keys.
        let page = smaller_page(10_000, Some(1_000_000_000));
        assert!((1_900..=2_100).contains(&page), "{page}");
        // Never grows, never reaches zero; halves when the size is unknown.
        assert_eq!(smaller_page(10, Some(MAX_DECODING_MESSAGE_SIZE + 1)), 5);
        assert_eq!(smaller_page(1, Some(usize::MAX / 2)), 1);
        assert_eq!(smaller_page(8, None), 4);
    }

    #[test]
    fn progress_ordering_depends_on_the_etcd_version() {
        for (version, ordered) in [
            ("3.4.23", false),
            ("3.4.25", true),
            ("3.4.37", true),
            ("3.5.7", false),
            ("3.5.8", true),
            ("3.5.21", true),
            ("3.6.0", true),
            ("v3.6.4", true),
            ("3.3.27", false),
            ("4.0.0-alpha.1", true),
            ("", false),
            ("garbage", false),
        ] {
            assert_eq!(progress_is_ordered(version), ordered, "{version}");
        }
    }

    #[test]
    fn the_range_of_a_prefix_ends_at_its_successor() {
        assert_eq!(range_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(range_end(""), vec![0]);
    }

    #[test]
    fn non_utf8_keys_are_shown_lossily() {
        assert_eq!(key_string(b"/a/b".to_vec()), "/a/b");
        assert_eq!(key_string(vec![b'/', 0xff]), "/\u{fffd}");
    }
}
