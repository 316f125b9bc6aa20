//! Watches: a chunked stream of newline-delimited `{"type":…,"object":…}` events.
//!
//! `resourceVersion` unset or `0` first sends the current state as synthetic ADDED events; a
//! revision below the store's compacted one ends the stream with an ERROR event carrying a 410
//! `Expired` Status. With selectors, an object that stops matching is reported as DELETED and
//! one that starts matching as ADDED, as kube-apiserver's watch cache does. Bookmarks (when
//! asked for) come from the store's progress notifications.
//!
//! Not built yet: the watch cache. Each watch is one storage watch; see ARCHITECTURE.md.

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

use super::handlers::{
    Filter, RvRequest, collection_prefix, decode_stored, list_filtered, rv_request,
};
use super::request::ResourceRequest;
use super::{Body, Query, Server};
use crate::errors::ApiError;
use crate::storage::{EventKind, StorageError, WatchItem};
use crate::tables::{self, TableVersion};

/// Events buffered for a slow client before its watch is ended (it resumes from its last
/// resourceVersion, as clients do).
const CLIENT_BUFFER: usize = 1000;

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

    // The initial state, for "any" or "latest".
    let (initial, after) = match rv {
        RvRequest::Latest | RvRequest::Any => {
            let page = list_filtered(
                &server,
                info,
                request.namespace.as_deref(),
                &filter,
                None,
                None,
                None,
            )
            .await?;
            (page.items, page.revision)
        }
        RvRequest::NotOlderThan(r) | RvRequest::Exact(r) => (Vec::new(), r),
    };
    let prefix = collection_prefix(&server, info, request.namespace.as_deref());
    let watch = server
        .store
        .watch(&prefix, after)
        .await
        .map_err(|e| ApiError::from_storage(e, &info.qualified_resource(), ""))?;

    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_BUFFER);
    let stream = Stream {
        info,
        filter,
        table,
        first_table: true,
        tx,
    };
    server.metrics.watches.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(stream.run(server.clone(), initial, watch, timeout, bookmarks));

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

struct Stream {
    info: &'static api_types::registry::ResourceInfo,
    filter: Filter,
    table: Option<TableVersion>,
    first_table: bool,
    tx: mpsc::Sender<Bytes>,
}

impl Stream {
    async fn run(
        mut self,
        server: Arc<Server>,
        initial: Vec<Value>,
        mut watch: crate::storage::Watch,
        timeout: Option<Duration>,
        bookmarks: bool,
    ) {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut stopping = server.stopping.clone();
        let mut bookmark_timer = tokio::time::interval(server.bookmark_interval);
        bookmark_timer.tick().await;
        let mut ok = true;
        for obj in initial {
            ok = self.send("ADDED", obj).await;
            if !ok {
                break;
            }
        }
        while ok {
            let sleep_until = deadline.unwrap_or_else(|| {
                tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)
            });
            tokio::select! {
                item = watch.next() => match item {
                    Some(Ok(WatchItem::Event(event))) => ok = self.event(event).await,
                    Some(Ok(WatchItem::Progress(revision))) => {
                        if bookmarks {
                            let bookmark = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": {"resourceVersion": revision.to_string()}});
                            ok = self.line("BOOKMARK", bookmark).await;
                        }
                    }
                    Some(Err(StorageError::TooOld { requested, compacted })) => {
                        let error = ApiError::expired(&format!("too old resource version: {requested} ({compacted})"));
                        let _ = self.line("ERROR", error.status()).await;
                        break;
                    }
                    Some(Err(e)) => {
                        let error = ApiError::from_storage(e, &self.info.qualified_resource(), "");
                        let _ = self.line("ERROR", error.status()).await;
                        break;
                    }
                    None => break,
                },
                _ = bookmark_timer.tick(), if bookmarks => watch.request_progress(),
                () = tokio::time::sleep_until(sleep_until) => break,
                _ = stopping.changed() => break,
                () = self.tx.closed() => break,
            }
        }
        server.metrics.watches.fetch_sub(1, Ordering::Relaxed);
    }

    /// Turns a storage event into what this watch's selection sees.
    async fn event(&mut self, event: crate::storage::Event) -> bool {
        let decode = |bytes: &[u8]| decode_stored(self.info, bytes, event.revision).ok();
        let Some(obj) = decode(&event.value) else {
            return true;
        };
        let old = event.prev_value.as_deref().and_then(decode);
        let now_matches = self.filter.matches(&obj);
        let was_matching = old.as_ref().is_some_and(|o| self.filter.matches(o));
        let kind = match event.kind {
            EventKind::Added if now_matches => "ADDED",
            EventKind::Modified if now_matches && was_matching => "MODIFIED",
            EventKind::Modified if now_matches => "ADDED",
            EventKind::Modified if was_matching => "DELETED",
            EventKind::Deleted if now_matches => "DELETED",
            _ => return true,
        };
        self.send(kind, obj).await
    }

    async fn send(&mut self, kind: &str, obj: Value) -> bool {
        let object = match self.table {
            Some(version) => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let include_columns = std::mem::replace(&mut self.first_table, false);
                tables::table(
                    self.info.resource,
                    self.info.group,
                    std::slice::from_ref(&obj),
                    &rv,
                    None,
                    None,
                    include_columns,
                    jiff::Timestamp::now(),
                    version,
                )
            }
            None => obj,
        };
        self.line(kind, object).await
    }

    /// Sends one line; false when the client is gone or too slow.
    async fn line(&self, kind: &str, object: Value) -> bool {
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        // A client that does not read for this long is dropped: it resumes from its last rv.
        matches!(
            tokio::time::timeout(Duration::from_secs(30), self.tx.send(Bytes::from(line))).await,
            Ok(Ok(()))
        )
    }
}
