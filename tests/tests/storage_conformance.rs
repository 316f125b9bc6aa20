//! The storage conformance suite: one set of cases, each run against both backends.
//!
//! Every case is an `async fn case(store: Arc<dyn Storage>, prefix: &str)` that works under
//! `prefix` on a store of its own. The `conformance!` macro at the bottom turns each into two
//! tests, `etcd_<case>` (a fresh etcd started by the test through `tests::etcd::EtcdServer`;
//! it panics if etcd is not installed, never skips) and `embedded_<case>` (a fresh redb file in a
//! temporary directory).
//!
//! The semantics checked are those of Kubernetes' storage.Interface as documented on the
//! `Storage` trait. Revision numbers are never hard-coded (etcd's first write is revision 2, the
//! embedded store's is 1): expectations are built from the revisions the store returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use apiserver::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use apiserver::storage::etcd::{EtcdConfig, EtcdStorage};
use apiserver::storage::{
    Event, EventKind, KeyValue, ListOptions, ListResult, Preconditions, Revision, Storage,
    StorageError, UpdateResult, Watch, WatchItem,
};
use bytes::Bytes;
use futures::StreamExt as _;
use tests::etcd::EtcdServer;

/// The prefix every case works under.
const PREFIX: &str = "/registry/pods/";

/// How long a watch may stay silent when an item is expected.
const WATCH_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Stores

async fn etcd_store() -> (Arc<dyn Storage>, EtcdServer) {
    let server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let mut config = EtcdConfig::new(vec![server.endpoint().to_string()]);
    config.compaction_interval = None;
    let store = EtcdStorage::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connect to the test etcd at {}: {e}", server.endpoint()));
    (Arc::new(store), server)
}

fn embedded_store() -> (Arc<dyn Storage>, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("ferry-embedded-")
        .tempdir()
        .expect("create a temp dir");
    let path = dir.path().join("store.redb");
    // No periodic compaction, as for etcd: only the compaction case compacts.
    let options = EmbeddedOptions {
        compaction_interval: None,
    };
    let store = EmbeddedStorage::open_with(&path, options)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    (Arc::new(store), dir)
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A JSON object value as Ferry stores them.
fn obj(name: &str, uid: &str, data: i64) -> Bytes {
    Bytes::from(format!(
        r#"{{"metadata":{{"name":"{name}","uid":"{uid}"}},"data":{data}}}"#
    ))
}

/// The `data` field of a value made by [`obj`].
fn data_of(value: &[u8]) -> i64 {
    let v: serde_json::Value = serde_json::from_slice(value).unwrap_or_else(|e| {
        panic!(
            "stored value is not JSON ({e}): {}",
            String::from_utf8_lossy(value)
        )
    });
    v["data"]
        .as_i64()
        .unwrap_or_else(|| panic!("no data field in {v}"))
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// Asserts that `$result` is an `Err` matching `$pattern` and returns the error.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(,)?) => {
        assert_err!($result, $pattern, "")
    };
    ($result:expr, $pattern:pat, $($ctx:tt)+) => {
        match $result {
            Err(e @ $pattern) => e,
            Err(other) => panic!(
                "expected Err({}), got Err({other:?}) [{}] {}",
                stringify!($pattern),
                stringify!($result),
                format!($($ctx)+)
            ),
            Ok(v) => panic!(
                "expected Err({}), got Ok({v:?}) [{}] {}",
                stringify!($pattern),
                stringify!($result),
                format!($($ctx)+)
            ),
        }
    };
}

/// Unwraps a storage result with the failing expression in the message.
macro_rules! ok {
    ($result:expr) => {
        match $result {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {e} ({e:?})", stringify!($result)),
        }
    };
}

/// `guaranteed_update` with a closure.
async fn update(
    store: &dyn Storage,
    key: &str,
    preconditions: &Preconditions,
    ignore_not_found: bool,
    mut f: impl FnMut(Option<&KeyValue>) -> UpdateResult + Send,
) -> Result<KeyValue, StorageError> {
    store
        .guaranteed_update(key, preconditions, ignore_not_found, &mut f)
        .await
}

/// Sets `key` to `value` unconditionally (the key must exist).
async fn set(store: &dyn Storage, key: &str, value: Bytes) -> KeyValue {
    ok!(update(store, key, &Preconditions::none(), false, |_| Ok(
        value.clone()
    ))
    .await)
}

async fn current(store: &dyn Storage) -> Revision {
    ok!(store.current_revision().await)
}

/// Every page of a list of `prefix` with `limit`, following continue tokens.
async fn list_pages(store: &dyn Storage, prefix: &str, limit: usize) -> Vec<ListResult> {
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let opts = ListOptions {
            revision: None,
            limit: Some(limit),
            continue_token: token.take(),
        };
        let page = ok!(store.list(prefix, &opts).await);
        token = page.continue_token.clone();
        pages.push(page);
        if token.is_none() {
            return pages;
        }
        assert!(pages.len() < 10_000, "list of {prefix} never ends");
    }
}

/// The next item of a watch; panics if it ends or stays silent for [`WATCH_TIMEOUT`].
async fn next_item(watch: &mut Watch, what: &str) -> Result<WatchItem, StorageError> {
    match tokio::time::timeout(WATCH_TIMEOUT, watch.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("the watch ended while waiting for {what}"),
        Err(_) => {
            panic!("the watch delivered nothing in {WATCH_TIMEOUT:?} while waiting for {what}")
        }
    }
}

/// The next event of a watch, skipping progress notifications.
async fn next_event(watch: &mut Watch, what: &str) -> Event {
    loop {
        match next_item(watch, what).await {
            Ok(WatchItem::Event(event)) => return event,
            Ok(WatchItem::Progress(_)) => continue,
            Err(e) => panic!("the watch failed while waiting for {what}: {e} ({e:?})"),
        }
    }
}

/// Asks for progress and waits for a `Progress(rev)` with `rev >= at_least`; any event arriving
/// meanwhile is a failure (an event delivered twice, or one that should not exist).
async fn expect_progress(watch: &mut Watch, at_least: Revision) -> Revision {
    watch.request_progress();
    loop {
        match next_item(
            watch,
            &format!("a progress notification at or after revision {at_least}"),
        )
        .await
        {
            Ok(WatchItem::Progress(rev)) if rev >= at_least => return rev,
            Ok(WatchItem::Progress(_)) => continue,
            Ok(WatchItem::Event(event)) => {
                panic!(
                    "unexpected event while waiting for progress >= {at_least}: {}",
                    describe(&event)
                )
            }
            Err(e) => panic!("the watch failed while waiting for progress: {e} ({e:?})"),
        }
    }
}

fn describe(e: &Event) -> String {
    format!(
        "{:?} {} @{} value={} prev={}",
        e.kind,
        e.key,
        e.revision,
        text(&e.value),
        e.prev_value
            .as_deref()
            .map(text)
            .unwrap_or_else(|| "None".into())
    )
}

fn assert_events(got: &[Event], want: &[Event], context: &str) {
    let got_s: Vec<String> = got.iter().map(describe).collect();
    let want_s: Vec<String> = want.iter().map(describe).collect();
    assert_eq!(
        got_s, want_s,
        "{context}: events differ (got left, want right)"
    );
    assert_eq!(got, want, "{context}");
}

fn added(kv: &KeyValue) -> Event {
    Event {
        kind: EventKind::Added,
        key: kv.key.clone(),
        value: kv.value.clone(),
        prev_value: None,
        revision: kv.mod_revision,
    }
}

fn modified(kv: &KeyValue, prev: &KeyValue) -> Event {
    Event {
        kind: EventKind::Modified,
        key: kv.key.clone(),
        value: kv.value.clone(),
        prev_value: Some(prev.value.clone()),
        revision: kv.mod_revision,
    }
}

fn deleted(last: &KeyValue, revision: Revision) -> Event {
    Event {
        kind: EventKind::Deleted,
        key: last.key.clone(),
        value: last.value.clone(),
        prev_value: Some(last.value.clone()),
        revision,
    }
}

/// Deletes `key` without preconditions and returns the deletion's event. The store must have no
/// other writer: the deletion's revision is read back as the current revision.
async fn delete_event(store: &dyn Storage, key: &str) -> Event {
    let before = current(store).await;
    let last = ok!(store.delete(key, &Preconditions::none()).await);
    let rev = current(store).await;
    assert_eq!(
        rev,
        before + 1,
        "a delete must advance the revision by exactly one"
    );
    deleted(&last, rev)
}

/// An error the update function returns, to check it comes back unchanged.
#[derive(Debug, PartialEq)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

// ---------------------------------------------------------------------------------------------
// Cases

/// create / get / AlreadyExists / NotFound / get at an old revision.
async fn create_and_get(store: Arc<dyn Storage>, p: &str) {
    let store = &*store;
    // Something outside the prefix first, so that "before the key existed" is a real revision.
    ok!(store
        .create("/registry/other/seed", obj("seed", "u0", 0))
        .await);
    let before = current(store).await;
    assert!(
        before > 0,
        "current_revision after a write must be positive, got {before}"
    );

    let key = format!("{p}default/a");
    let created = ok!(store.create(&key, obj("a", "u1", 1)).await);
    assert_eq!(created.key, key);
    assert_eq!(created.value, obj("a", "u1", 1));
    assert_eq!(
        created.mod_revision,
        before + 1,
        "a create must advance the revision by exactly one"
    );
    assert_eq!(
        created.create_revision, created.mod_revision,
        "a new key's create and mod revisions are equal"
    );
    assert_eq!(current(store).await, created.mod_revision);
    assert_eq!(ok!(store.get(&key, None).await), created);

    // A second create fails and changes nothing.
    let err = assert_err!(
        store.create(&key, obj("a", "u2", 2)).await,
        StorageError::AlreadyExists { .. }
    );
    assert!(
        matches!(&err, StorageError::AlreadyExists { key: k } if *k == key),
        "{err:?}"
    );
    assert_eq!(ok!(store.get(&key, None).await), created);
    assert_eq!(
        current(store).await,
        created.mod_revision,
        "a failed create must not write"
    );

    // Missing keys.
    let err = assert_err!(
        store.get(&format!("{p}default/missing"), None).await,
        StorageError::NotFound { .. }
    );
    assert!(err.is_not_found());
    assert_err!(
        store.get(&format!("{p}default"), None).await,
        StorageError::NotFound { .. },
        "a prefix of a key is not the key"
    );
    assert_err!(
        store.get(&format!("{p}default/a/"), None).await,
        StorageError::NotFound { .. }
    );

    // History.
    let v2 = set(store, &key, obj("a", "u1", 2)).await;
    assert_eq!(v2.create_revision, created.create_revision);
    assert_eq!(v2.mod_revision, created.mod_revision + 1);
    let v3 = set(store, &key, obj("a", "u1", 3)).await;
    assert_eq!(
        ok!(store.get(&key, Some(created.mod_revision)).await),
        created,
        "get at the creating revision"
    );
    assert_eq!(
        ok!(store.get(&key, Some(v2.mod_revision)).await),
        v2,
        "get at an old revision"
    );
    assert_eq!(ok!(store.get(&key, Some(v3.mod_revision)).await), v3);
    assert_eq!(ok!(store.get(&key, None).await), v3);
    assert_err!(
        store.get(&key, Some(before)).await,
        StorageError::NotFound { .. },
        "get before the key was created"
    );
}

/// guaranteed_update with every precondition outcome.
async fn guaranteed_update_preconditions(store: Arc<dyn Storage>, p: &str) {
    let store = &*store;
    let key = format!("{p}default/u");
    let v0 = ok!(store.create(&key, obj("u", "uid-1", 0)).await);

    // No preconditions: the function sees the current state.
    let mut seen = Vec::new();
    let v1 = ok!(update(store, &key, &Preconditions::none(), false, |cur| {
        let cur = cur.expect("the key exists");
        seen.push(cur.clone());
        Ok(obj("u", "uid-1", data_of(&cur.value) + 1))
    })
    .await);
    assert_eq!(
        seen.last(),
        Some(&v0),
        "the update function must see the current state"
    );
    assert_eq!(v1.value, obj("u", "uid-1", 1));
    assert_eq!(v1.create_revision, v0.create_revision);
    assert_eq!(v1.mod_revision, v0.mod_revision + 1);
    assert_eq!(
        ok!(store.get(&key, None).await),
        v1,
        "the returned state is the stored state"
    );

    // Matching uid.
    let uid_ok = Preconditions {
        uid: Some("uid-1".into()),
        resource_version: None,
    };
    let v2 = ok!(update(store, &key, &uid_ok, false, |_| Ok(obj("u", "uid-1", 2))).await);
    assert_eq!(v2.mod_revision, v1.mod_revision + 1);
    assert_eq!(ok!(store.get(&key, None).await), v2);

    // Mismatching uid: Conflict, nothing written, update function never asked to write.
    let uid_bad = Preconditions {
        uid: Some("uid-2".into()),
        resource_version: None,
    };
    let err = assert_err!(
        update(store, &key, &uid_bad, false, |_| Ok(obj("u", "uid-1", 99))).await,
        StorageError::Conflict { .. }
    );
    assert!(
        matches!(&err, StorageError::Conflict { key: k, .. } if *k == key),
        "{err:?}"
    );
    assert_eq!(
        ok!(store.get(&key, None).await),
        v2,
        "a failed precondition must not write"
    );
    assert_eq!(current(store).await, v2.mod_revision);

    // Matching resource version (together with uid).
    let rv_ok = Preconditions {
        uid: Some("uid-1".into()),
        resource_version: Some(v2.mod_revision),
    };
    let v3 = ok!(update(store, &key, &rv_ok, false, |_| Ok(obj("u", "uid-1", 3))).await);
    assert_eq!(v3.mod_revision, v2.mod_revision + 1);

    // Stale resource version: Conflict, nothing written.
    let rv_stale = Preconditions {
        uid: None,
        resource_version: Some(v2.mod_revision),
    };
    assert_err!(
        update(store, &key, &rv_stale, false, |_| Ok(obj("u", "uid-1", 99))).await,
        StorageError::Conflict { .. }
    );
    assert_eq!(ok!(store.get(&key, None).await), v3);
    assert_eq!(current(store).await, v3.mod_revision);

    // Missing key: NotFound, nothing created.
    let missing = format!("{p}default/missing");
    assert_err!(
        update(store, &missing, &Preconditions::none(), false, |_| Ok(obj(
            "missing", "uid-m", 1
        )))
        .await,
        StorageError::NotFound { .. }
    );
    assert_err!(
        store.get(&missing, None).await,
        StorageError::NotFound { .. }
    );
    assert_eq!(
        current(store).await,
        v3.mod_revision,
        "a NotFound update must not write"
    );

    // Missing key with ignore_not_found: the function sees None and its result is created.
    let mut saw_none = false;
    let created = ok!(
        update(store, &missing, &Preconditions::none(), true, |cur| {
            saw_none = cur.is_none();
            Ok(obj("missing", "uid-m", 1))
        })
        .await
    );
    assert!(
        saw_none,
        "with ignore_not_found the update function must see None for a missing key"
    );
    assert_eq!(created.value, obj("missing", "uid-m", 1));
    assert_eq!(created.mod_revision, v3.mod_revision + 1);
    assert_eq!(created.create_revision, created.mod_revision);
    assert_eq!(ok!(store.get(&missing, None).await), created);

    // ignore_not_found on an existing key behaves as a plain update.
    let v4 = ok!(update(store, &key, &Preconditions::none(), true, |cur| {
        assert!(cur.is_some(), "the key exists");
        Ok(obj("u", "uid-1", 4))
    })
    .await);
    assert_eq!(v4.create_revision, v0.create_revision);
    let rev_before_refusal = current(store).await;
    assert_eq!(rev_before_refusal, v4.mod_revision);

    // The update function's error comes back unchanged and nothing is written.
    let err = assert_err!(
        update(store, &key, &Preconditions::none(), false, |_| Err(
            StorageError::Rejected(Box::new(Refused("no")))
        ))
        .await,
        StorageError::Rejected(_)
    );
    let StorageError::Rejected(inner) = &err else {
        unreachable!()
    };
    assert_eq!(
        inner.downcast_ref::<Refused>(),
        Some(&Refused("no")),
        "the update function's own error: {err}"
    );
    assert_eq!(ok!(store.get(&key, None).await), v4);
    assert_eq!(
        current(store).await,
        rev_before_refusal,
        "a refused update must not write"
    );

    // Also when the function refuses creating a missing key.
    let other = format!("{p}default/never");
    assert_err!(
        update(store, &other, &Preconditions::none(), true, |_| Err(
            StorageError::Rejected(Box::new(Refused("create")))
        ))
        .await,
        StorageError::Rejected(_)
    );
    assert_err!(store.get(&other, None).await, StorageError::NotFound { .. });
    assert_eq!(current(store).await, rev_before_refusal);
}

/// delete with preconditions.
async fn delete_preconditions(store: Arc<dyn Storage>, p: &str) {
    let store = &*store;
    let key = format!("{p}default/d");
    ok!(store.create(&key, obj("d", "uid-1", 0)).await);
    let last = set(store, &key, obj("d", "uid-1", 1)).await;

    // uid mismatch: Conflict, key still present, nothing written.
    let err = assert_err!(
        store
            .delete(
                &key,
                &Preconditions {
                    uid: Some("uid-2".into()),
                    resource_version: None
                }
            )
            .await,
        StorageError::Conflict { .. }
    );
    assert!(
        matches!(&err, StorageError::Conflict { key: k, .. } if *k == key),
        "{err:?}"
    );
    assert_eq!(ok!(store.get(&key, None).await), last);
    assert_eq!(current(store).await, last.mod_revision);

    // Stale resource version: Conflict.
    assert_err!(
        store
            .delete(
                &key,
                &Preconditions {
                    uid: None,
                    resource_version: Some(last.mod_revision - 1)
                }
            )
            .await,
        StorageError::Conflict { .. }
    );
    assert_eq!(ok!(store.get(&key, None).await), last);
    assert_eq!(current(store).await, last.mod_revision);

    // Both match: returns the last state, the key is gone, one revision used.
    let both = Preconditions {
        uid: Some("uid-1".into()),
        resource_version: Some(last.mod_revision),
    };
    let gone = ok!(store.delete(&key, &both).await);
    assert_eq!(gone, last, "delete returns the last state");
    assert_err!(store.get(&key, None).await, StorageError::NotFound { .. });
    assert_eq!(
        current(store).await,
        last.mod_revision + 1,
        "a delete advances the revision by one"
    );
    assert_eq!(ok!(store.count(p).await), 0);
    // History still has it.
    assert_eq!(ok!(store.get(&key, Some(last.mod_revision)).await), last);

    // Missing: NotFound, with or without preconditions.
    assert_err!(
        store.delete(&key, &Preconditions::none()).await,
        StorageError::NotFound { .. }
    );
    assert_err!(
        store.delete(&key, &both).await,
        StorageError::NotFound { .. }
    );
    assert_eq!(current(store).await, last.mod_revision + 1);

    // A new incarnation gets a new create revision; delete without preconditions.
    let again = ok!(store.create(&key, obj("d", "uid-3", 0)).await);
    assert!(
        again.create_revision > last.mod_revision,
        "a re-created key starts a new incarnation: {again:?}"
    );
    assert_eq!(ok!(store.delete(&key, &Preconditions::none()).await), again);
    assert_err!(store.get(&key, None).await, StorageError::NotFound { .. });
}

/// An update that writes the bytes already stored writes nothing.
async fn noop_update(store: Arc<dyn Storage>, p: &str) {
    let store = &*store;
    let key = format!("{p}default/n");
    let other = format!("{p}default/o");
    let kv = ok!(store.create(&key, obj("n", "uid-1", 7)).await);
    let rev = current(store).await;
    let mut watch = ok!(store.watch(p, rev).await);

    let mut calls = 0;
    let same = ok!(update(store, &key, &Preconditions::none(), false, |cur| {
        calls += 1;
        Ok(cur.expect("exists").value.clone())
    })
    .await);
    assert!(calls >= 1);
    assert_eq!(
        same, kv,
        "a no-op update returns the unchanged state, mod_revision included"
    );
    assert_eq!(
        current(store).await,
        rev,
        "a no-op update must not advance the revision"
    );
    // Identical bytes built anew are still a no-op, and so with preconditions.
    let pre = Preconditions {
        uid: Some("uid-1".into()),
        resource_version: Some(kv.mod_revision),
    };
    let same = ok!(update(store, &key, &pre, false, |_| Ok(obj("n", "uid-1", 7))).await);
    assert_eq!(same, kv);
    assert_eq!(current(store).await, rev);
    assert_eq!(ok!(store.get(&key, None).await), kv);

    // No event for the no-ops: the first event is the next real write.
    let o = ok!(store.create(&other, obj("o", "uid-2", 0)).await);
    assert_eq!(o.mod_revision, rev + 1);
    let event = next_event(&mut watch, "the create after the no-op updates").await;
    assert_events(&[event], &[added(&o)], "no-op updates produce no events");
}

/// Many concurrent read-modify-write increments of one counter: none lost, none applied twice.
async fn concurrent_increments(store: Arc<dyn Storage>, p: &str) {
    const TASKS: i64 = 32;
    const EACH: i64 = 20;
    let key = format!("{p}default/counter");
    ok!(store.create(&key, obj("counter", "uid-c", 0)).await);
    let start = current(&*store).await;

    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = store.clone();
        let key = key.clone();
        tasks.spawn(async move {
            let mut last_seen = -1;
            for _ in 0..EACH {
                let kv = ok!(update(
                    &*store,
                    &key,
                    &Preconditions {
                        uid: Some("uid-c".into()),
                        resource_version: None
                    },
                    false,
                    |cur| {
                        let cur = cur.expect("the counter exists");
                        Ok(obj("counter", "uid-c", data_of(&cur.value) + 1))
                    }
                )
                .await);
                let n = data_of(&kv.value);
                assert!(
                    n > last_seen,
                    "task {t}: the counter went back from {last_seen} to {n}"
                );
                last_seen = n;
            }
        });
    }
    let all = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(r) = tasks.join_next().await {
            r.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        }
    })
    .await;
    assert!(
        all.is_ok(),
        "{TASKS}x{EACH} increments did not finish in 300 s"
    );

    let kv = ok!(store.get(&key, None).await);
    assert_eq!(
        data_of(&kv.value),
        TASKS * EACH,
        "every increment applied exactly once"
    );
    assert_eq!(
        kv.mod_revision,
        start + TASKS * EACH,
        "one revision per increment"
    );
    assert_eq!(
        current(&*store).await,
        start + TASKS * EACH,
        "one revision per increment"
    );
}

/// Paging through a list while others write: the pages are one consistent snapshot.
async fn list_paging_is_a_snapshot(store: Arc<dyn Storage>, p: &str) {
    const KEYS: usize = 100;
    const LIMIT: usize = 7;
    let key = |i: usize| format!("{p}default/k{i:03}");
    let mut snapshot = Vec::new();
    for i in 0..KEYS {
        snapshot.push(ok!(store
            .create(
                &key(i),
                obj(&format!("k{i:03}"), &format!("uid-{i}"), i as i64)
            )
            .await));
    }
    // Keys outside the prefix, sorting right before and after it.
    ok!(store.create(&p[..p.len() - 1], obj("before", "x", 0)).await);
    ok!(store
        .create(&format!("{}0", &p[..p.len() - 1]), obj("after", "x", 0))
        .await);
    let rev0 = current(&*store).await;

    // After the first page: a free-running writer for the rest of the list, plus a batch of
    // writes between pages.
    let stop = Arc::new(AtomicBool::new(false));
    let start_churn = || {
        let (store, stop, p) = (store.clone(), stop.clone(), p.to_owned());
        tokio::spawn(async move {
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let k = format!("{p}default/k050");
                ok!(
                    update(&*store, &k, &Preconditions::none(), true, |_| Ok(obj(
                        "k050",
                        "uid-50",
                        1000 + n
                    )))
                    .await
                );
                let c = format!("{p}default/k020-churn{n}");
                ok!(store.create(&c, obj("churn", "uid-churn", n)).await);
                ok!(store.delete(&c, &Preconditions::none()).await);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            n
        })
    };
    let batch = |b: usize| {
        let (store, p) = (store.clone(), p.to_owned());
        async move {
            let k = |s: &str| format!("{p}default/{s}");
            let b64 = b as i64;
            // New keys behind the cursor, ahead of it, and after the last key.
            ok!(store
                .create(&k(&format!("k000-new{b:02}")), obj("new", "n", b64))
                .await);
            ok!(store
                .create(&k(&format!("k098-new{b:02}")), obj("new", "n", b64))
                .await);
            ok!(store
                .create(&k(&format!("zz{b:02}")), obj("new", "n", b64))
                .await);
            // Updates ahead and behind.
            for i in [99, 0, (7 * (b + 2)) % 100] {
                let name = format!("k{i:03}");
                ok!(
                    update(&*store, &k(&name), &Preconditions::none(), true, |_| Ok(
                        obj(&name, "u", 5000 + b64)
                    ))
                    .await
                );
            }
            // A delete, ahead of the cursor for the early pages and behind it for the late ones.
            ok!(store
                .delete(&k(&format!("k{:03}", 95 - b)), &Preconditions::none())
                .await);
        }
    };

    let mut pages = Vec::new();
    let mut token = None;
    let mut batches = 0;
    let mut churn = None;
    loop {
        let opts = ListOptions {
            revision: None,
            limit: Some(LIMIT),
            continue_token: token.take(),
        };
        let page = ok!(store.list(p, &opts).await);
        token = page.continue_token.clone();
        pages.push(page);
        if token.is_none() {
            break;
        }
        assert!(pages.len() <= KEYS, "the list does not end");
        churn.get_or_insert_with(start_churn);
        batch(batches).await;
        batches += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let churned = match churn {
        Some(task) => task
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        None => 0,
    };

    assert!(
        churned > 0 && batches > 0,
        "the concurrent writer must have written during the list"
    );
    assert!(
        current(&*store).await > rev0,
        "writes happened during the list"
    );
    assert_eq!(
        pages[0].revision, rev0,
        "the first page is read at the latest revision"
    );
    assert_eq!(pages.len(), KEYS.div_ceil(LIMIT), "pages of {LIMIT}");
    let mut seen = 0;
    for (i, page) in pages.iter().enumerate() {
        assert_eq!(
            page.revision, rev0,
            "page {i}: every page of one list has the first page's revision"
        );
        let last = i + 1 == pages.len();
        assert_eq!(
            page.items.len(),
            if last { KEYS - LIMIT * i } else { LIMIT },
            "page {i} size"
        );
        seen += page.items.len();
        if last {
            assert_eq!(
                page.continue_token, None,
                "the last page has no continue token"
            );
            assert_eq!(page.remaining, None, "the last page has no remaining count");
        } else {
            assert!(page.continue_token.is_some(), "page {i}");
            assert_eq!(
                page.remaining,
                Some((KEYS - seen) as i64),
                "page {i}: remaining"
            );
        }
    }
    let listed: Vec<KeyValue> = pages.into_iter().flat_map(|p| p.items).collect();
    assert_eq!(listed.len(), snapshot.len());
    for (got, want) in listed.iter().zip(&snapshot) {
        assert_eq!(
            got, want,
            "the pages must equal the snapshot at revision {rev0}"
        );
    }

    // The same snapshot by exact revision, and the latest state differs from it.
    let exact = ok!(store
        .list(
            p,
            &ListOptions {
                revision: Some(rev0),
                ..Default::default()
            }
        )
        .await);
    assert_eq!(exact.items, snapshot, "list at exactly revision {rev0}");
    assert_eq!(exact.revision, rev0);
    let latest = ok!(store.list(p, &ListOptions::default()).await);
    assert_ne!(latest.items, snapshot);
    assert_eq!(latest.items.len() as i64, ok!(store.count(p).await));
}

/// 1,000 objects of over 1 KiB: listed whole, counted, and in two pages of 500.
async fn list_many_large_objects(store: Arc<dyn Storage>, p: &str) {
    const N: usize = 1000;
    let pad = "x".repeat(1100);
    let key = |i: usize| format!("{p}ns-{:02}/obj-{i:04}", i % 7);
    let value = move |i: usize| {
        Bytes::from(format!(
            r#"{{"metadata":{{"name":"obj-{i:04}","uid":"u{i}"}},"data":{i},"pad":"{pad}"}}"#
        ))
    };
    // Created concurrently, in no particular order.
    let results: Vec<Result<KeyValue, StorageError>> = futures::stream::iter((0..N).rev())
        .map(|i| {
            let (store, k, v) = (store.clone(), key(i), value(i));
            async move { store.create(&k, v).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        ok!(r);
    }
    let mut want: Vec<(String, Bytes)> = (0..N).map(|i| (key(i), value(i))).collect();
    want.sort();
    assert!(want[0].1.len() >= 1024);

    let all = ok!(store.list(p, &ListOptions::default()).await);
    assert_eq!(all.items.len(), N);
    assert_eq!(all.continue_token, None);
    assert_eq!(all.remaining, None);
    let got: Vec<(String, Bytes)> = all
        .items
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert!(
        got == want,
        "the full list must hold every object, in key order"
    );
    assert_eq!(ok!(store.count(p).await), N as i64);
    assert_eq!(
        ok!(store.count(&format!("{p}ns-03/")).await),
        (0..N).filter(|i| i % 7 == 3).count() as i64
    );

    // A limit of 0 means no limit.
    let unlimited = ok!(store
        .list(
            p,
            &ListOptions {
                limit: Some(0),
                ..Default::default()
            }
        )
        .await);
    assert_eq!(unlimited.items.len(), N);

    let pages = list_pages(&*store, p, 500).await;
    assert_eq!(pages.len(), 2, "1000 objects in pages of 500");
    assert_eq!(pages[0].items.len(), 500);
    assert_eq!(pages[0].remaining, Some(500));
    assert!(pages[0].continue_token.is_some());
    assert_eq!(pages[1].items.len(), 500);
    assert_eq!(pages[1].continue_token, None);
    assert_eq!(pages[1].remaining, None);
    assert_eq!(pages[0].revision, all.revision);
    assert_eq!(pages[1].revision, all.revision);
    let paged: Vec<KeyValue> = pages.into_iter().flat_map(|p| p.items).collect();
    assert!(
        paged == all.items,
        "the two pages concatenated equal the full list"
    );
}

/// List at an exact revision, in the future, and prefix isolation.
async fn list_revisions_and_prefixes(store: Arc<dyn Storage>, p: &str) {
    let store = &*store;
    let k = |s: &str| format!("{p}{s}");
    let a1 = ok!(store.create(&k("a/x"), obj("x", "ux", 1)).await);
    let b1 = ok!(store.create(&k("a/y"), obj("y", "uy", 1)).await);
    let ab = ok!(store.create(&k("ab/x"), obj("abx", "uab", 1)).await);
    ok!(store.create(&k("a"), obj("a", "ua", 1)).await);
    ok!(store.create(&format!("{p}a0/z"), obj("z", "uz", 1)).await);
    let r1 = current(store).await;

    let a2 = set(store, &k("a/x"), obj("x", "ux", 2)).await;
    ok!(store.delete(&k("a/y"), &Preconditions::none()).await);
    let c = ok!(store.create(&k("a/z"), obj("z", "uz", 1)).await);
    let r2 = current(store).await;

    // Prefix isolation: /registry/pods/a/ does not see /registry/pods/ab/x, /registry/pods/a, ...
    let old = ok!(store
        .list(
            &k("a/"),
            &ListOptions {
                revision: Some(r1),
                ..Default::default()
            }
        )
        .await);
    assert_eq!(
        old.items,
        vec![a1.clone(), b1.clone()],
        "list at revision {r1}"
    );
    assert_eq!(old.revision, r1);
    let now = ok!(store.list(&k("a/"), &ListOptions::default()).await);
    assert_eq!(now.items, vec![a2.clone(), c.clone()], "latest list");
    assert_eq!(now.revision, r2);
    assert_eq!(ok!(store.count(&k("a/")).await), 2);
    let abl = ok!(store.list(&k("ab/"), &ListOptions::default()).await);
    assert_eq!(abl.items, vec![ab.clone()]);
    assert_eq!(ok!(store.count(&k("ab/")).await), 1);
    assert_eq!(ok!(store.count(&k("nothing/")).await), 0);
    let empty = ok!(store.list(&k("nothing/"), &ListOptions::default()).await);
    assert!(
        empty.items.is_empty() && empty.continue_token.is_none(),
        "{empty:?}"
    );
    assert_eq!(
        empty.revision, r2,
        "an empty list still reports the revision it was read at"
    );

    // Paging at an exact revision keeps that revision.
    let page = ok!(store
        .list(
            &k("a/"),
            &ListOptions {
                revision: Some(r1),
                limit: Some(1),
                continue_token: None
            }
        )
        .await);
    assert_eq!(page.items, vec![a1]);
    assert_eq!(page.revision, r1);
    assert_eq!(page.remaining, Some(1));
    let page2 = ok!(store
        .list(
            &k("a/"),
            &ListOptions {
                revision: None,
                limit: Some(1),
                continue_token: page.continue_token.clone()
            }
        )
        .await);
    assert_eq!(
        page2.items,
        vec![b1],
        "the continue token carries revision {r1}"
    );
    assert_eq!(page2.revision, r1);
    assert_eq!(page2.continue_token, None);

    // A token for a list and an explicit revision together are refused; so is garbage.
    assert_err!(
        store
            .list(
                &k("a/"),
                &ListOptions {
                    revision: Some(r1),
                    limit: Some(1),
                    continue_token: page.continue_token
                }
            )
            .await,
        StorageError::InvalidContinue(_)
    );
    assert_err!(
        store
            .list(
                &k("a/"),
                &ListOptions {
                    continue_token: Some("garbage!".into()),
                    ..Default::default()
                }
            )
            .await,
        StorageError::InvalidContinue(_)
    );

    // The future.
    let err = assert_err!(
        store
            .list(
                &k("a/"),
                &ListOptions {
                    revision: Some(r2 + 100),
                    ..Default::default()
                }
            )
            .await,
        StorageError::FutureRevision { .. }
    );
    assert!(
        matches!(err, StorageError::FutureRevision { requested, .. } if requested == r2 + 100),
        "{err:?}"
    );
    assert_eq!(current(store).await, r2, "reads do not write");
}

/// A watch from an old revision replays history exactly, then goes live.
async fn watch_replays_history(store: Arc<dyn Storage>, p: &str) {
    let store = &*store;
    let wp = format!("{p}w/");
    let k = |s: &str| format!("{wp}{s}");
    let outside = [format!("{p}wx/o"), format!("{p}w"), format!("{p}v/o")];
    ok!(store
        .create("/registry/other/seed", obj("seed", "u0", 0))
        .await);
    let r0 = current(store).await;

    let mut want = Vec::new();
    let a1 = ok!(store.create(&k("a"), obj("a", "ua", 1)).await);
    want.push(added(&a1));
    ok!(store.create(&outside[0], obj("o", "uo", 1)).await);
    let b1 = ok!(store.create(&k("b"), obj("b", "ub", 1)).await);
    want.push(added(&b1));
    let a2 = set(store, &k("a"), obj("a", "ua", 2)).await;
    want.push(modified(&a2, &a1));
    ok!(store.create(&outside[1], obj("o", "uo", 1)).await);
    want.push(delete_event(store, &k("b")).await);
    let a3 = ok!(update(
        store,
        &k("a"),
        &Preconditions {
            uid: Some("ua".into()),
            resource_version: Some(a2.mod_revision)
        },
        false,
        |_| { Ok(obj("a", "ua", 3)) }
    )
    .await);
    want.push(modified(&a3, &a2));
    ok!(store.create(&outside[2], obj("o", "uo", 1)).await);
    let c1 = ok!(store.create(&k("sub/c"), obj("c", "uc", 1)).await);
    want.push(added(&c1));
    want.push(delete_event(store, &k("a")).await);
    let a4 = ok!(store.create(&k("a"), obj("a", "ua2", 4)).await);
    want.push(added(&a4));
    ok!(store.delete(&outside[0], &Preconditions::none()).await);
    let end = current(store).await;

    let mut watch = ok!(store.watch(&wp, r0).await);
    let mut got = Vec::new();
    for i in 0..want.len() {
        got.push(next_event(&mut watch, &format!("replayed event {i} of {}", want.len())).await);
    }
    assert_events(&got, &want, &format!("watch({wp}, {r0}) replay"));
    let revs: Vec<Revision> = got.iter().map(|e| e.revision).collect();
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "events in strictly increasing revision order: {revs:?}"
    );

    // Live writes, inside and outside the prefix.
    ok!(store.create(&outside[0], obj("o", "uo", 2)).await);
    let d1 = ok!(store.create(&k("d"), obj("d", "ud", 1)).await);
    assert!(d1.mod_revision > end);
    let a5 = set(store, &k("a"), obj("a", "ua2", 5)).await;
    ok!(store.delete(&outside[1], &Preconditions::none()).await);
    let live_want = vec![
        added(&d1),
        modified(&a5, &a4),
        delete_event(store, &k("d")).await,
    ];
    let mut live = Vec::new();
    for i in 0..live_want.len() {
        live.push(next_event(&mut watch, &format!("live event {i}")).await);
    }
    assert_events(&live, &live_want, "live events after the replay");

    // Progress: nothing else is pending, and the reported revision covers every event.
    let last = live_want.last().map(|e| e.revision).unwrap();
    let progress = expect_progress(&mut watch, last).await;
    assert!(
        progress <= current(store).await,
        "progress {progress} beyond the store's revision"
    );

    // A second watch from the middle of the history starts right after that revision.
    let mid = want[3].revision;
    let mut from_mid = ok!(store.watch(&wp, mid).await);
    let mut rest = Vec::new();
    for i in 4..want.len() {
        rest.push(next_event(&mut from_mid, &format!("event {i} from revision {mid}")).await);
    }
    rest.push(next_event(&mut from_mid, "live event 0").await);
    let mut rest_want = want[4..].to_vec();
    rest_want.push(live_want[0].clone());
    assert_events(&rest, &rest_want, &format!("watch({wp}, {mid})"));
}

/// A watch from revision 0 starts now: it sees only later writes.
async fn watch_from_now(store: Arc<dyn Storage>, p: &str) {
    let store = &*store;
    ok!(store.create(&format!("{p}x"), obj("x", "ux", 1)).await);
    let x2 = set(store, &format!("{p}x"), obj("x", "ux", 2)).await;
    ok!(store.create(&format!("{p}gone"), obj("g", "ug", 1)).await);
    ok!(store
        .delete(&format!("{p}gone"), &Preconditions::none())
        .await);
    let before = current(store).await;

    let mut watch = ok!(store.watch(p, 0).await);
    let x3 = set(store, &format!("{p}x"), obj("x", "ux", 3)).await;
    let y1 = ok!(store.create(&format!("{p}y"), obj("y", "uy", 1)).await);
    let dx = delete_event(store, &format!("{p}x")).await;
    let mut got = Vec::new();
    for i in 0..3 {
        got.push(next_event(&mut watch, &format!("event {i} after watching from now")).await);
    }
    assert!(
        got[0].revision > before,
        "an event from before the watch: {}",
        describe(&got[0])
    );
    assert_events(&got, &[modified(&x3, &x2), added(&y1), dx], "watch from 0");
    expect_progress(&mut watch, y1.mod_revision).await;
}

/// Compaction: old revisions are gone (TooOld) for get, list, continue tokens and watches; the
/// latest state stays.
async fn compaction(store: Arc<dyn Storage>, p: &str) {
    let store = &*store;
    let k = |s: &str| format!("{p}{s}");
    let a1 = ok!(store.create(&k("a"), obj("a", "ua", 1)).await);
    ok!(store.create(&k("b"), obj("b", "ub", 1)).await);
    ok!(store.create(&k("c"), obj("c", "uc", 1)).await);
    // A paged list at an old revision, to resume after compaction.
    let page = ok!(store
        .list(
            p,
            &ListOptions {
                limit: Some(1),
                ..Default::default()
            }
        )
        .await);
    let old_token = page
        .continue_token
        .clone()
        .expect("three keys, a page of one");
    let a2 = set(store, &k("a"), obj("a", "ua", 2)).await;
    let gone = ok!(store.create(&k("gone"), obj("gone", "ug", 1)).await);
    ok!(store.delete(&k("gone"), &Preconditions::none()).await);
    let a3 = set(store, &k("a"), obj("a", "ua", 3)).await;
    // The compaction revision is a create, so the first event at or after it has no previous value.
    let d1 = ok!(store.create(&k("d"), obj("d", "ud", 1)).await);
    let c = d1.mod_revision;
    let a4 = set(store, &k("a"), obj("a", "ua", 4)).await;
    let latest_before = ok!(store.list(p, &ListOptions::default()).await);

    ok!(store.compact(c).await);

    // Reads below c: TooOld.
    for old in [a1.mod_revision, a2.mod_revision, c - 1] {
        assert_err!(
            store.get(&k("a"), Some(old)).await,
            StorageError::TooOld { .. },
            "get at {old} after compact({c})"
        );
        assert_err!(
            store
                .list(
                    p,
                    &ListOptions {
                        revision: Some(old),
                        ..Default::default()
                    }
                )
                .await,
            StorageError::TooOld { .. },
            "list at {old} after compact({c})"
        );
    }
    assert_err!(
        store.get(&k("gone"), Some(gone.mod_revision)).await,
        StorageError::TooOld { .. }
    );
    assert_err!(
        store
            .list(
                p,
                &ListOptions {
                    continue_token: Some(old_token),
                    ..Default::default()
                }
            )
            .await,
        StorageError::TooOld { .. },
        "a continue token from revision {} after compact({c})",
        page.revision
    );

    // A watch from below c: the first item is TooOld, then the stream ends.
    let mut watch = ok!(store.watch(p, c - 2).await);
    match next_item(
        &mut watch,
        "TooOld from a watch below the compacted revision",
    )
    .await
    {
        Err(StorageError::TooOld { .. }) => {}
        other => panic!(
            "watch({p}, {}) after compact({c}): expected Err(TooOld), got {other:?}",
            c - 2
        ),
    }
    match tokio::time::timeout(WATCH_TIMEOUT, watch.next()).await {
        Ok(None) => {}
        Ok(Some(item)) => panic!("the watch must end after its TooOld error, got {item:?}"),
        Err(_) => panic!("the watch did not end within {WATCH_TIMEOUT:?} after its TooOld error"),
    }

    // The latest state, and revision c itself, are still there.
    assert_eq!(ok!(store.get(&k("a"), None).await), a4);
    assert_eq!(
        ok!(store.get(&k("a"), Some(c)).await),
        a3,
        "the state at the compaction revision is kept"
    );
    assert_eq!(ok!(store.get(&k("d"), Some(c)).await), d1);
    let latest = ok!(store.list(p, &ListOptions::default()).await);
    assert_eq!(latest.items, latest_before.items);
    let at_c = ok!(store
        .list(
            p,
            &ListOptions {
                revision: Some(c),
                ..Default::default()
            }
        )
        .await);
    assert_eq!(
        at_c.items.len(),
        4,
        "a, b, c, d at revision {c}: {:?}",
        at_c.items
    );
    assert_eq!(ok!(store.count(p).await), 4);
    let pages = list_pages(store, p, 3).await;
    assert_eq!(
        pages.into_iter().flat_map(|p| p.items).collect::<Vec<_>>(),
        latest.items
    );

    // A watch from c - 1 starts at c, which is kept.
    let mut watch = ok!(store.watch(p, c - 1).await);
    let got = vec![
        next_event(&mut watch, "the event at the compaction revision").await,
        next_event(&mut watch, "the next").await,
    ];
    assert_events(
        &got,
        &[added(&d1), modified(&a4, &a3)],
        &format!("watch({p}, {}) after compact({c})", c - 1),
    );

    // Writes go on.
    let e1 = ok!(store.create(&k("e"), obj("e", "ue", 1)).await);
    assert_eq!(e1.mod_revision, a4.mod_revision + 1);
    assert_events(
        &[next_event(&mut watch, "a write after compaction").await],
        &[added(&e1)],
        "live after compaction",
    );
}

// ---------------------------------------------------------------------------------------------
// The tests: every case against both backends.

macro_rules! conformance {
    ($($case:ident => $etcd:ident, $embedded:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $etcd() {
            let (store, _etcd) = etcd_store().await;
            $case(store, PREFIX).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $embedded() {
            let (store, _dir) = embedded_store();
            $case(store, PREFIX).await;
        }
    )*};
}

conformance! {
    create_and_get => etcd_create_and_get, embedded_create_and_get;
    guaranteed_update_preconditions => etcd_guaranteed_update_preconditions, embedded_guaranteed_update_preconditions;
    delete_preconditions => etcd_delete_preconditions, embedded_delete_preconditions;
    noop_update => etcd_noop_update, embedded_noop_update;
    concurrent_increments => etcd_concurrent_increments, embedded_concurrent_increments;
    list_paging_is_a_snapshot => etcd_list_paging_is_a_snapshot, embedded_list_paging_is_a_snapshot;
    list_many_large_objects => etcd_list_many_large_objects, embedded_list_many_large_objects;
    list_revisions_and_prefixes => etcd_list_revisions_and_prefixes, embedded_list_revisions_and_prefixes;
    watch_replays_history => etcd_watch_replays_history, embedded_watch_replays_history;
    watch_from_now => etcd_watch_from_now, embedded_watch_from_now;
    compaction => etcd_compaction, embedded_compaction;
}

/// etcd killed and started again on the same port and data: a read made while it is down is
/// retried until it answers (over a new connection), and a watch is re-established from where
/// it was, missing nothing and repeating nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_restart_is_survived() {
    let (store, mut server) = etcd_store().await;
    let key = format!("{PREFIX}a");
    let a1 = ok!(store.create(&key, obj("a", "ua", 1)).await);
    let mut watch = ok!(store.watch(PREFIX, a1.mod_revision).await);
    let a2 = set(&*store, &key, obj("a", "ua", 2)).await;
    assert_events(
        &[next_event(&mut watch, "the update before the restart").await],
        &[modified(&a2, &a1)],
        "before the restart",
    );

    server.stop();
    let read = tokio::spawn({
        let (store, key) = (store.clone(), key.clone());
        async move { store.get(&key, None).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!read.is_finished(), "a read answered while etcd was down");
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    let got = ok!(read.await.expect("the read task"));
    assert_eq!(got, a2, "the read made while etcd was down");
    let b1 = ok!(store.create(&format!("{PREFIX}b"), obj("b", "ub", 1)).await);
    assert_events(
        &[next_event(&mut watch, "the first write after the restart").await],
        &[added(&b1)],
        "after the restart",
    );
    drop(server);
}
