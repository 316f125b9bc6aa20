//! Watches: a chunked stream of newline-delimited `{"type":…,"object":…}` events.
//!
//! `resourceVersion` unset or `0` first sends the current state as synthetic ADDED events; a
//! revision below the store's compacted one ends the stream with an ERROR event carrying a 410
//! `Expired` Status. With selectors, an object that stops matching is reported as DELETED and
//! one that starts matching as ADDED, as kube-apiserver's watch cache does. Bookmarks (when
//! asked for) come from the store's progress notifications.
//!
//! Every watch is served from the watch cache (`cache.rs`); a watch from a revision older than
//! the cache's window, or compacted in the store, gets the 410.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use super::cache::{Cached, CachedEvent, Item, Queue, WatchStart};
use super::handlers::{Filter, RvRequest, collection_prefix, present, rv_request, same_form};
use super::request::ResourceRequest;
use super::{Body, Query, Server};
use crate::errors::ApiError;
use crate::storage::{EventKind, Revision, StorageError};
use crate::tables::{self, TableVersion};
use api_types::json::At;
use api_types::registry::ResourceInfo;

/// Lines buffered between a watcher and its connection. Kept small: how far a watcher may fall
/// behind is bounded by the cache's queue capacity, after which its watch is ended (it resumes
/// from its last resourceVersion, as clients do).
const CLIENT_BUFFER: usize = 16;

/// Starts a watch and returns the streaming response.
pub async fn serve(
    server: Arc<Server>,
    request: ResourceRequest,
    req: Request<Incoming>,
    query: Query,
) -> Result<Response<Body>, ApiError> {
    let info = request.info;
    let mut filter_query = query.clone();
    if let Some(name) = &request.name {
        // A watch on one object is a watch of its collection selected by name.
        filter_query = Query::parse(Some(&format!("fieldSelector=metadata.name%3D{}", name)));
        if let Some(labels) = query.get("labelSelector") {
            filter_query = Query::parse(Some(&format!(
                "fieldSelector=metadata.name%3D{name}&labelSelector={labels}"
            )));
        }
    }
    let filter = Filter::from_query(info, &filter_query)?;
    let rv = rv_request(&query)?;
    let timeout = match query.get("timeoutSeconds") {
        Some(t) if !t.is_empty() => {
            Some(Duration::from_secs(t.parse().map_err(|_| {
                ApiError::bad_request(&format!("invalid timeoutSeconds {t:?}"))
            })?))
        }
        _ => None,
    };
    let bookmarks = query.flag("allowWatchBookmarks");
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let table = tables::wants_table(accept);

    let prefix = collection_prefix(&server, info, request.namespace.as_deref());
    let cacher = server
        .caches
        .get(info)
        .ok_or_else(|| {
            ApiError::internal(&format!("no watch cache for {}", info.qualified_resource()))
        })?
        .clone();
    let qr = info.qualified_resource();
    let (after, fresh_at) = match rv {
        RvRequest::Any => (None, 0),
        // A consistent start: the cache must have caught up with the store's current revision.
        RvRequest::Latest => (
            None,
            server
                .store
                .current_revision()
                .await
                .map_err(|e| ApiError::from_storage(e, &qr, ""))?,
        ),
        RvRequest::NotOlderThan(r) | RvRequest::Exact(r) => (Some(r), r),
    };
    if !cacher.wait_fresh(fresh_at).await {
        return Err(not_fresh(&server, fresh_at, &qr).await);
    }
    let start = match after {
        // Events between a compacted revision and the window would still be served from the
        // cache; the store's answer decides, so that a compacted revision always gets 410.
        Some(r) if r > 0 => match server.store.get(&prefix, Some(r)).await {
            Err(StorageError::TooOld {
                requested,
                compacted,
            }) => Start::TooOld(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            _ => match cacher.start_watch(&prefix, Some(r)) {
                WatchStart::TooOld { oldest } => {
                    Start::TooOld(format!("too old resource version: {r} ({oldest})"))
                }
                WatchStart::Replay { events, queue } => Start::Replay(events, queue),
                WatchStart::Snapshot { objects, queue, .. } => Start::Snapshot(objects, queue),
            },
        },
        _ => match cacher.start_watch(&prefix, None) {
            WatchStart::Snapshot { objects, queue, .. } => Start::Snapshot(objects, queue),
            WatchStart::Replay { events, queue } => Start::Replay(events, queue),
            WatchStart::TooOld { oldest } => {
                Start::TooOld(format!("too old resource version: 0 ({oldest})"))
            }
        },
    };

    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_BUFFER);
    let stream = Stream {
        info,
        primary: cacher.primary,
        prefix,
        filter,
        table,
        first_table: true,
        tx,
        backlog: None,
    };
    server.metrics.watches.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(stream.run(server.clone(), start, timeout, bookmarks));

    let body = StreamBody::new(ReceiverStream::new(rx).map(|chunk| Ok(Frame::data(chunk))));
    let mut response = Response::new(BodyExt::boxed(body));
    *response.status_mut() = StatusCode::OK;
    let content_type = match table {
        Some(version) => tables::content_type(version),
        None => "application/json",
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Why a read cannot be served from the cache now: the revision asked for is in the future
/// (504, as kube-apiserver's "Too large resource version"), or the cache is (re)initializing
/// (429 with Retry-After, as kube-apiserver answers).
pub async fn not_fresh(server: &Server, revision: Revision, qualified: &str) -> ApiError {
    match server.store.current_revision().await {
        Ok(current) if revision > current => ApiError::from_storage(
            StorageError::FutureRevision {
                requested: revision,
                current,
            },
            qualified,
            "",
        ),
        Err(e) => ApiError::from_storage(e, qualified, ""),
        Ok(_) => initializing(),
    }
}

/// kube-apiserver's answer while a resource's watch cache is (re)initializing.
pub fn initializing() -> ApiError {
    ApiError {
        message: "storage is (re)initializing".into(),
        ..ApiError::too_many_requests(1)
    }
}

/// Where a watch starts.
enum Initial {
    Objects(Vec<Arc<Cached>>),
    Events(Vec<Arc<CachedEvent>>),
}

enum Start {
    Snapshot(Vec<Arc<Cached>>, Queue),
    Replay(Vec<Arc<CachedEvent>>, Queue),
    TooOld(String),
}

struct Stream {
    info: &'static ResourceInfo,
    /// The form the cache holds objects in; `info` may differ (events.k8s.io events).
    primary: &'static ResourceInfo,
    /// The watched collection's storage prefix (one namespace, or all).
    prefix: String,
    filter: Filter,
    table: Option<TableVersion>,
    first_table: bool,
    tx: mpsc::Sender<Bytes>,
    /// Events published but not yet taken by this watcher (its queue; the cache closes it when
    /// it is full).
    backlog: Option<Queue>,
}

impl Stream {
    async fn run(
        mut self,
        server: Arc<Server>,
        start: Start,
        timeout: Option<Duration>,
        bookmarks: bool,
    ) {
        self.follow(&server, start, timeout, bookmarks).await;
        server.metrics.watches.fetch_sub(1, Ordering::Relaxed);
    }

    async fn follow(
        &mut self,
        server: &Server,
        start: Start,
        timeout: Option<Duration>,
        bookmarks: bool,
    ) {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut stopping = server.stopping.clone();
        let (initial, queue) = match start {
            Start::TooOld(message) => {
                let _ = self
                    .line("ERROR", ApiError::expired(&message).status())
                    .await;
                return;
            }
            Start::Snapshot(objects, queue) => (Initial::Objects(objects), queue),
            Start::Replay(events, queue) => (Initial::Events(events), queue),
        };
        self.backlog = Some(queue);
        let ok = match initial {
            Initial::Objects(objects) => {
                let mut ok = true;
                for obj in objects {
                    if self.filter.matches_cached(&obj) && !self.send("ADDED", &obj).await {
                        ok = false;
                        break;
                    }
                }
                ok
            }
            Initial::Events(events) => {
                let mut ok = true;
                for event in events {
                    if !self.event(&event).await {
                        ok = false;
                        break;
                    }
                }
                ok
            }
        };
        if !ok {
            return;
        }
        let bookmark_every = server.bookmark_interval / 2;
        let mut last_bookmark = tokio::time::Instant::now();
        let sleep_until = deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600));
        loop {
            let next = tokio::select! {
                item = next_item(&mut self.backlog) => Some(item),
                () = tokio::time::sleep_until(sleep_until) => None,
                _ = stopping.changed() => None,
                () = self.tx.closed() => None,
            };
            let ok = match next {
                Some(Some(Item::Event(event))) => self.event(&event).await,
                Some(Some(Item::Progress(revision))) => {
                    if bookmarks && last_bookmark.elapsed() >= bookmark_every {
                        last_bookmark = tokio::time::Instant::now();
                        let bookmark = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": {"resourceVersion": revision.to_string()}});
                        self.line("BOOKMARK", bookmark).await
                    } else {
                        true
                    }
                }
                // The cache restarted, or this watcher fell too far behind: the stream ends and
                // the client resumes from its last resourceVersion.
                Some(Some(Item::Reset) | None) | None => false,
            };
            if !ok {
                return;
            }
        }
    }

    /// Turns a cache event into what this watch's selection sees.
    async fn event(&mut self, event: &CachedEvent) -> bool {
        if !event.key.starts_with(&self.prefix) {
            return true;
        }
        let now_matches = self.filter.matches_cached(&event.obj);
        let was_matching = event
            .prev
            .as_ref()
            .is_some_and(|o| self.filter.matches_cached(o));
        let kind = match event.kind {
            EventKind::Added if now_matches => "ADDED",
            EventKind::Modified if now_matches && was_matching => "MODIFIED",
            EventKind::Modified if now_matches => "ADDED",
            EventKind::Modified if was_matching => "DELETED",
            EventKind::Deleted if now_matches => "DELETED",
            _ => return true,
        };
        self.send(kind, &event.obj).await
    }

    async fn send(&mut self, kind: &str, obj: &Cached) -> bool {
        let converted =
            (!same_form(self.info, self.primary)).then(|| present(self.info, &obj.value()));
        if let Some(version) = self.table {
            let parsed;
            let obj = match &converted {
                Some(value) => value,
                None => {
                    parsed = obj.value();
                    &parsed
                }
            };
            let rv = obj
                .at("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let include_columns = std::mem::replace(&mut self.first_table, false);
            let table = tables::table(
                self.info.resource,
                self.info.group,
                std::slice::from_ref(obj),
                &rv,
                None,
                None,
                include_columns,
                jiff::Timestamp::now(),
                version,
            );
            return self.line(kind, table).await;
        }
        let json = match &converted {
            Some(value) => Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            None => obj.json().clone(),
        };
        let mut line = Vec::with_capacity(json.len() + 32);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(kind.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(&json);
        line.extend_from_slice(b"}\n");
        self.push(Bytes::from(line)).await
    }

    /// Sends one line; false when the client is gone or too slow.
    async fn line(&self, kind: &str, object: Value) -> bool {
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        self.push(Bytes::from(line)).await
    }

    /// Queues a chunk for the client. A client that stops reading is dropped once the cache has
    /// given up on this watcher (its queue filled up), or after 30 s: it resumes from its last
    /// resourceVersion.
    async fn push(&self, line: Bytes) -> bool {
        let send = self.tx.send(line);
        tokio::pin!(send);
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            tokio::select! {
                sent = &mut send => return sent.is_ok(),
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    let dropped = self.backlog.as_ref().is_some_and(Queue::is_closed);
                    if dropped || tokio::time::Instant::now() >= give_up {
                        return false;
                    }
                }
            }
        }
    }
}

/// The next item of a watcher's queue.
async fn next_item(queue: &mut Option<Queue>) -> Option<Item> {
    match queue {
        Some(queue) => queue.recv().await,
        None => None,
    }
}
