//! The storage layer: one [`Storage`] trait with the operations of Kubernetes' storage interface
//! (`k8s.io/apiserver/pkg/storage.Interface`), and two backends with the same semantics:
//!
//! - [`etcd::EtcdStorage`]: objects in etcd, keyed as Kubernetes keys them;
//! - [`embedded::EmbeddedStorage`]: a single redb file, for a cluster with no setup at all.
//!
//! The model is etcd's: one store-wide revision that increases by one with every write; every
//! object remembers the revision that created it and the one that last modified it; the
//! `resourceVersion` Kubernetes clients see is the modification revision. History is kept until
//! it is compacted, and watches replay it. Values are opaque bytes (Ferry stores JSON).
//!
//! Both backends are checked by one conformance suite (`tests/tests/storage_conformance.rs`).

// The backends' `pub mod` lines are added as each one lands.
pub mod embedded;
pub mod etcd;
mod etcd_channel;

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// A store revision. Revision 0 means "none"; the first write gets revision 1 on a new store
/// (etcd starts at 1 and its first write gets 2; nothing depends on the first number).
pub type Revision = i64;

/// One stored object and the revisions that describe it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// The revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key: the object's `resourceVersion`.
    pub mod_revision: Revision,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field("value", &String::from_utf8_lossy(&self.value))
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

/// Conditions a write checks against the object's current state, as Kubernetes'
/// `storage.Preconditions`: a mismatch fails the write with [`StorageError::Conflict`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// `metadata.uid` of the stored object must be this.
    pub uid: Option<String>,
    /// The object's modification revision (its `resourceVersion`) must be this.
    pub resource_version: Option<Revision>,
}

impl Preconditions {
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks the preconditions against the current state of `key`.
    pub fn check(&self, current: &KeyValue) -> Result<(), StorageError> {
        if let Some(want) = &self.uid {
            let got = stored_uid(&current.value);
            if got.as_deref() != Some(want.as_str()) {
                return Err(StorageError::Conflict {
                    key: current.key.clone(),
                    message: format!(
                        "Precondition failed: UID in precondition: {want}, UID in object meta: {}",
                        got.unwrap_or_default()
                    ),
                });
            }
        }
        if let Some(want) = self.resource_version
            && want != current.mod_revision
        {
            return Err(StorageError::Conflict {
                key: current.key.clone(),
                message: format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    current.mod_revision
                ),
            });
        }
        Ok(())
    }
}

/// `metadata.uid` of a stored JSON object, if it has one.
fn stored_uid(value: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(default)]
        uid: Option<String>,
    }
    serde_json::from_slice::<Object>(value).ok()?.metadata?.uid
}

/// How to list a prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// List at exactly this revision (`resourceVersionMatch=Exact`); `None` lists the latest
    /// state. Must be `None` when `continue_token` is set: the token carries its own revision.
    pub revision: Option<Revision>,
    /// Return at most this many items; `None` or `Some(0)` means no limit.
    pub limit: Option<usize>,
    /// A token from an earlier page of the same list.
    pub continue_token: Option<String>,
}

/// One page of a list, all read at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    /// In key order.
    pub items: Vec<KeyValue>,
    /// The revision the page was read at; every page of one list has the same revision.
    pub revision: Revision,
    /// Set when more items follow; pass it back to read the next page.
    pub continue_token: Option<String>,
    /// How many items follow this page, when there are any (`remainingItemCount`).
    pub remaining: Option<i64>,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// One change to a key, as a watch reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub key: String,
    /// The object after the change; for [`EventKind::Deleted`], the last state before deletion.
    pub value: Bytes,
    /// The object before the change (`None` for [`EventKind::Added`]).
    pub prev_value: Option<Bytes>,
    /// The revision of the change.
    pub revision: Revision,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("revision", &self.revision)
            .field("value", &String::from_utf8_lossy(&self.value))
            .field("has_prev", &self.prev_value.is_some())
            .finish()
    }
}

/// What a watch stream carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchItem {
    Event(Event),
    /// Every event up to and including this revision has been delivered (a progress
    /// notification, which becomes a Kubernetes BOOKMARK).
    Progress(Revision),
}

/// A running watch. Events arrive in revision order, each once. Dropping the watch stops it.
///
/// If the watch cannot continue (its start revision was compacted, the store went away), the
/// stream yields one `Err` and ends. A start revision below the compacted one is reported this
/// way, as [`StorageError::TooOld`], never by `watch()` itself, so that callers handle it in one
/// place (Kubernetes sends it as an `ERROR` event with 410 Gone).
pub struct Watch {
    events: mpsc::Receiver<Result<WatchItem, StorageError>>,
    progress: mpsc::Sender<()>,
}

impl Watch {
    /// Builds a watch from its two channels; for backends.
    pub(crate) fn new(
        events: mpsc::Receiver<Result<WatchItem, StorageError>>,
        progress: mpsc::Sender<()>,
    ) -> Self {
        Self { events, progress }
    }

    /// The next item; `None` when the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchItem, StorageError>> {
        self.events.recv().await
    }

    /// Asks for a [`WatchItem::Progress`] once every event committed so far has been delivered.
    pub fn request_progress(&self) {
        // A full queue already holds a request, which will answer this one too.
        let _ = self.progress.try_send(());
    }
}

/// Channel capacity between a backend's watch task and its consumer.
pub(crate) const WATCH_CHANNEL_CAPACITY: usize = 1024;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    /// A precondition did not hold (the object changed or was replaced), or `create`'s
    /// revision check lost a race. Becomes 409 Conflict.
    #[error("conflict on key {key}: {message}")]
    Conflict { key: String, message: String },
    /// The revision asked for has been compacted away. Becomes 410 Gone.
    #[error("revision {requested} is too old: the store is compacted up to revision {compacted}")]
    TooOld {
        requested: Revision,
        compacted: Revision,
    },
    /// The revision asked for is newer than the store's current revision.
    #[error("revision {requested} is in the future: the store is at revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// A continue token that cannot be decoded or does not belong to this list.
    #[error("continue key is not valid: {0}")]
    InvalidContinue(String),
    /// The update function refused the change; carries its error unchanged.
    #[error("{0}")]
    Rejected(Box<dyn std::error::Error + Send + Sync>),
    /// The store cannot be reached right now (after retries). Becomes 503/504.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupted store. Becomes 500.
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// What an update function returns.
pub type UpdateResult = Result<Bytes, StorageError>;

/// The update function of [`Storage::guaranteed_update`]: given the current state (`None` when
/// the key does not exist and `ignore_not_found` was set), return the new value. It may be called
/// several times, once per attempt, and must have no side effects beyond its return value.
pub type UpdateFn<'a> = dyn FnMut(Option<&KeyValue>) -> UpdateResult + Send + 'a;

/// Kubernetes' storage interface, over opaque values.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Creates `key`. Fails with [`StorageError::AlreadyExists`] if it exists.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError>;

    /// Reads `key` at the latest revision, or at `revision` (which must not be compacted).
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<KeyValue, StorageError>;

    /// Lists the keys under `prefix` at one revision, in key order, a page at a time.
    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError>;

    /// How many keys exist under `prefix` now.
    async fn count(&self, prefix: &str) -> Result<i64, StorageError>;

    /// Read–modify–write: reads `key`, checks `preconditions`, calls `update` and writes its
    /// result if nothing changed the key meanwhile, else retries with the new state. Returns the
    /// stored state. If `update` returns the bytes already stored, nothing is written and the
    /// revision is kept. A missing key is [`StorageError::NotFound`] unless `ignore_not_found`,
    /// in which case `update` sees `None` and its result is created.
    async fn guaranteed_update(
        &self,
        key: &str,
        preconditions: &Preconditions,
        ignore_not_found: bool,
        update: &mut UpdateFn<'_>,
    ) -> Result<KeyValue, StorageError>;

    /// Deletes `key` if `preconditions` hold and returns its last state.
    async fn delete(
        &self,
        key: &str,
        preconditions: &Preconditions,
    ) -> Result<KeyValue, StorageError>;

    /// Watches every key under `prefix` for changes after revision `after` (0: from now).
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StorageError>;

    /// The latest revision of the store.
    async fn current_revision(&self) -> Result<Revision, StorageError>;

    /// Forgets history before `revision`: reads at older revisions and watches from them fail
    /// with [`StorageError::TooOld`] afterwards. The latest state of every key is kept.
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;
}

/// The continue token, in kube-apiserver's own format (`storage.EncodeContinue`): unpadded
/// base64url of `{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<next key, relative>"}`.
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: Revision,
    start: String,
}

const CONTINUE_VERSION: &str = "meta.k8s.io/v1";

/// Encodes the token that resumes a list of `prefix` after `last_key`, at `revision`.
pub(crate) fn encode_continue(prefix: &str, last_key: &str, revision: Revision) -> String {
    let start = format!("{}\0", last_key.strip_prefix(prefix).unwrap_or(last_key));
    let token = ContinueToken {
        v: CONTINUE_VERSION.to_owned(),
        rv: revision,
        start,
    };
    let json = serde_json::to_vec(&token).expect("a continue token always serializes");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a continue token for a list of `prefix`: the key to start from and the revision.
pub(crate) fn decode_continue(
    prefix: &str,
    token: &str,
) -> Result<(String, Revision), StorageError> {
    let invalid = |why: &str| StorageError::InvalidContinue(why.to_owned());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid("not a base64url string"))?;
    let token: ContinueToken =
        serde_json::from_slice(&raw).map_err(|_| invalid("not a continue token"))?;
    if token.v != CONTINUE_VERSION {
        return Err(invalid(&format!(
            "server does not recognize this encoded key version {:?}",
            token.v
        )));
    }
    if token.rv <= 0 {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    if token.start.is_empty()
        || token.start.starts_with('/')
        || token.start.split('/').any(|s| s == "..")
    {
        return Err(invalid(
            "the start key may not be empty, absolute or contain '..'",
        ));
    }
    Ok((format!("{prefix}{}", token.start), token.rv))
}

/// The resolved start of a list: the first key to read and the revision to read at (`None`:
/// the latest).
pub(crate) fn list_start(
    prefix: &str,
    opts: &ListOptions,
) -> Result<(String, Option<Revision>), StorageError> {
    match &opts.continue_token {
        Some(token) => {
            if opts.revision.is_some() {
                return Err(StorageError::InvalidContinue(
                    "specifying resource version is not allowed when using continue".to_owned(),
                ));
            }
            let (start, rev) = decode_continue(prefix, token)?;
            Ok((start, Some(rev)))
        }
        None => Ok((prefix.to_owned(), opts.revision.filter(|r| *r > 0))),
    }
}

/// The smallest key greater than every key starting with `prefix` (etcd's range end for a prefix);
/// `None` when there is none (the prefix is all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trips_in_kubernetes_format() {
        let token = encode_continue("/registry/pods/", "/registry/pods/default/web-1", 42);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&raw).unwrap(),
            r#"{"v":"meta.k8s.io/v1","rv":42,"start":"default/web-1\u0000"}"#
        );
        let (start, rev) = decode_continue("/registry/pods/", &token).unwrap();
        assert_eq!(start, "/registry/pods/default/web-1\0");
        assert_eq!(rev, 42);
    }

    #[test]
    fn malformed_continue_tokens_are_rejected() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let cases = [
            "!!!".to_owned(),
            b64("not json"),
            b64(r#"{"v":"meta.k8s.io/v2","rv":1,"start":"a"}"#),
            b64(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#),
            b64(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../secrets/x"}"#),
            b64(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"/abs"}"#),
        ];
        for token in cases {
            let err = decode_continue("/registry/pods/", &token).unwrap_err();
            assert!(
                matches!(err, StorageError::InvalidContinue(_)),
                "{token}: {err}"
            );
        }
        let opts = ListOptions {
            revision: Some(3),
            continue_token: Some(encode_continue("/p/", "/p/a", 3)),
            ..Default::default()
        };
        assert!(matches!(
            list_start("/p/", &opts),
            Err(StorageError::InvalidContinue(_))
        ));
    }

    #[test]
    fn preconditions_compare_uid_and_revision() {
        let kv = KeyValue {
            key: "/registry/pods/a/b".into(),
            value: Bytes::from_static(br#"{"metadata":{"name":"b","uid":"u-1"}}"#),
            create_revision: 3,
            mod_revision: 7,
        };
        assert!(Preconditions::none().check(&kv).is_ok());
        assert!(
            Preconditions {
                uid: Some("u-1".into()),
                resource_version: Some(7)
            }
            .check(&kv)
            .is_ok()
        );
        for p in [
            Preconditions {
                uid: Some("u-2".into()),
                resource_version: None,
            },
            Preconditions {
                uid: None,
                resource_version: Some(6),
            },
        ] {
            assert!(
                matches!(p.check(&kv), Err(StorageError::Conflict { .. })),
                "{p:?}"
            );
        }
    }

    #[test]
    fn prefix_end_is_etcds() {
        assert_eq!(prefix_end(b"/a/"), Some(b"/a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
