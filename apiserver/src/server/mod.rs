//! The HTTPS server: TLS, authentication, routing, and the one place responses are built.
//!
//! Request path: TLS (rustls, HTTP/2 and HTTP/1.1) → [`auth`] (bearer tokens; `/version` and the
//! health endpoints are public) → authorization (not built yet: this is its slot, in
//! [`Server::handle`]) → [`request::route`] → a handler in [`handlers`] or [`watch`], whose writes
//! go through [`admission`] once their bodies are decoded → [`ApiError`]s become `Status` bodies
//! in [`error_response`].

pub(crate) mod admission;
pub mod auth;
pub mod cache;
pub mod handlers;
pub mod ipalloc;
pub mod metrics;
pub mod request;
pub mod tls;
pub mod watch;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch as tokio_watch};
use tracing::Instrument;

use crate::discovery;
use crate::errors::ApiError;
use crate::storage::Storage;
use request::{ResourceRequest, Route, Verb};

/// A response body: whole, or streamed (watches).
pub type Body = BoxBody<Bytes, Infallible>;

/// The largest request body accepted (kube-apiserver's limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Requests served at once before new ones get 429 (kube-apiserver's
/// `--max-requests-inflight` + `--max-mutating-requests-inflight` defaults: 400 + 200).
/// Watches, once established, do not count.
pub const MAX_IN_FLIGHT: usize = 600;

/// What the server needs.
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub tls: tls::CertPair,
    pub tokens: auth::TokenAuth,
    pub store: Arc<dyn Storage>,
    /// `--etcd-prefix`.
    pub prefix: String,
    /// Ferry's own version, reported in `/version`'s build metadata.
    pub ferry_version: String,
    /// How often watches that allow bookmarks get one ([`DEFAULT_BOOKMARK_INTERVAL`]).
    pub bookmark_interval: std::time::Duration,
    /// `--service-cluster-ip-range`.
    pub service_range: ipalloc::ServiceRange,
    /// How many events a watcher may fall behind before its stream is ended
    /// ([`cache::DEFAULT_QUEUE_CAPACITY`]).
    pub watch_queue_capacity: usize,
}

/// kube-apiserver sends a bookmark to each watch that allows them about once a minute.
pub const DEFAULT_BOOKMARK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot create the default namespaces and system priority classes: {0}")]
    Bootstrap(ApiError),
}

/// A running server; dropping it does not stop it, [`RunningServer::shutdown`] does.
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: tokio_watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting connections and ends open watches.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Shared state of the request handlers.
pub struct Server {
    pub store: Arc<dyn Storage>,
    pub prefix: String,
    pub tokens: auth::TokenAuth,
    pub ferry_version: String,
    pub metrics: metrics::Metrics,
    pub bookmark_interval: std::time::Duration,
    pub service_range: ipalloc::ServiceRange,
    pub active_namespaces: handlers::NamespaceCache,
    pub in_flight: Semaphore,
    /// The watch caches, one per resource type.
    pub caches: cache::Caches,
    /// Flips to true at shutdown; watches end.
    pub stopping: tokio_watch::Receiver<bool>,
}

/// Binds, bootstraps the default namespaces and the system PriorityClasses, and serves until
/// shut down.
pub async fn serve(config: ServerConfig) -> Result<RunningServer, ServeError> {
    let tls = config.tls.server_config()?;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.bind,
        source,
    })?;
    let (stop, stopping) = tokio_watch::channel(false);
    // Bootstrap writes go through the store before the caches list it.
    handlers::bootstrap_store(config.store.as_ref(), &config.prefix)
        .await
        .map_err(ServeError::Bootstrap)?;
    let caches = cache::Caches::start(
        config.store.clone(),
        &config.prefix,
        stopping.clone(),
        config.bookmark_interval,
        config.watch_queue_capacity,
    );
    let server = Arc::new(Server {
        store: config.store,
        prefix: config.prefix,
        tokens: config.tokens,
        ferry_version: config.ferry_version,
        metrics: metrics::Metrics::default(),
        bookmark_interval: config.bookmark_interval,
        service_range: config.service_range,
        active_namespaces: handlers::NamespaceCache::default(),
        in_flight: Semaphore::new(MAX_IN_FLIGHT),
        caches,
        stopping: stopping.clone(),
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let task = tokio::spawn(accept_loop(listener, acceptor, server, stopping));
    tracing::info!(%addr, "serving the Kubernetes API over HTTPS");
    Ok(RunningServer { addr, stop, task })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    server: Arc<Server>,
    mut stopping: tokio_watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = stopping.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, server) = (acceptor.clone(), server.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(req).await) }
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Reads and drops the body of a request answered without it, so that the answer reaches a client
/// still sending rather than a reset stream (HTTP/2 resets an unread request stream, and some
/// clients, curl among them, then report the reset instead of the response). Bounded in size and
/// time: a client that keeps sending past `limit`, or stalls, gets the reset.
async fn drain_body(req: Request<Incoming>, limit: usize) {
    let mut body = req.into_body();
    if hyper::body::Body::is_end_stream(&body) {
        return;
    }
    let drain = async {
        let mut total = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(chunk) = frame.data_ref() {
                total += chunk.len();
                if total > limit {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

impl Server {
    /// Serves one request; every outcome is a response.
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = Query::parse(req.uri().query());
        let span = tracing::info_span!("request", verb = tracing::field::Empty, resource = tracing::field::Empty,
            namespace = tracing::field::Empty, name = tracing::field::Empty, user = tracing::field::Empty,
            status = tracing::field::Empty, latency_ms = tracing::field::Empty, %method, %path);
        let (response, verb, resource) = async {
            let public = matches!(
                path.as_str(),
                "/version" | "/healthz" | "/livez" | "/readyz"
            ) || path.starts_with("/healthz/")
                || path.starts_with("/livez/")
                || path.starts_with("/readyz/");
            let authorization = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let user = self.tokens.authenticate(authorization).cloned();
            if let Some(user) = &user {
                tracing::Span::current().record("user", user.name.as_str());
            }
            if user.is_none() && !public {
                drain_body(req, MAX_BODY_BYTES).await;
                return (error_response(&ApiError::unauthorized()), "", String::new());
            }
            // Authorization goes here (not built yet: every user may do everything). Admission
            // needs the decoded object: the handlers run it (`admission`).
            let route = match request::route(&method, &path, query.flag("watch")) {
                Ok(route) => route,
                Err(e) => {
                    drain_body(req, handlers::DRAIN_LIMIT).await;
                    return (error_response(&e), "", String::new());
                }
            };
            match route {
                Route::Resource(request) => {
                    let span = tracing::Span::current();
                    span.record("verb", request.verb.as_str());
                    span.record("resource", request.info.resource);
                    if let Some(ns) = &request.namespace {
                        span.record("namespace", ns.as_str());
                    }
                    if let Some(name) = &request.name {
                        span.record("name", name.as_str());
                    }
                    let (verb, resource) =
                        (request.verb.as_str(), request.info.resource.to_owned());
                    let response = self.clone().resource(request, req, query).await;
                    (
                        response.unwrap_or_else(|e| error_response(&e)),
                        verb,
                        resource,
                    )
                }
                other => {
                    let response = self
                        .non_resource(other, &req)
                        .await
                        .unwrap_or_else(|e| error_response(&e));
                    drain_body(req, handlers::DRAIN_LIMIT).await;
                    (response, "get", String::new())
                }
            }
        }
        .instrument(span.clone())
        .await;
        let status = response.status().as_u16();
        let latency = started.elapsed();
        span.record("status", status);
        span.record("latency_ms", latency.as_secs_f64() * 1000.0);
        let _enter = span.enter();
        tracing::debug!("served");
        self.metrics.observe(verb, &resource, status, latency);
        response
    }

    async fn resource(
        self: Arc<Self>,
        request: ResourceRequest,
        req: Request<Incoming>,
        query: Query,
    ) -> Result<Response<Body>, ApiError> {
        if request.verb == Verb::Watch {
            return watch::serve(self, request, req, query).await;
        }
        let Ok(_permit) = self.in_flight.try_acquire() else {
            drain_body(req, MAX_BODY_BYTES).await;
            return Err(ApiError::too_many_requests(1));
        };
        handlers::dispatch(&self, request, req, query).await
    }

    async fn non_resource(
        &self,
        route: Route,
        req: &Request<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        match route {
            Route::Version => Ok(json_response(
                StatusCode::OK,
                &discovery::version_info(&self.ferry_version),
            )),
            Route::Health(which) => {
                if which == "readyz"
                    && let Err(e) = self.store.current_revision().await
                {
                    return Ok(text_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("[-]etcd failed: {e}\nreadyz check failed\n"),
                    ));
                }
                Ok(text_response(StatusCode::OK, "ok"))
            }
            Route::Metrics => {
                let objects = handlers::object_counts(self).await;
                let mut text = self.metrics.render(&objects);
                text.push_str(&metrics::render_caches(&self.caches.stats()));
                let mut response = text_response(StatusCode::OK, &text);
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                Ok(response)
            }
            Route::DiscoveryRoot { core } => match discovery::negotiate_discovery(accept) {
                discovery::DiscoveryFormat::Aggregated(version) => {
                    let mut response =
                        json_response(StatusCode::OK, &discovery::aggregated(core, version));
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(discovery::aggregated_content_type(version)),
                    );
                    Ok(response)
                }
                discovery::DiscoveryFormat::Legacy => {
                    let host = req
                        .headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("127.0.0.1");
                    Ok(json_response(
                        StatusCode::OK,
                        &if core {
                            discovery::api_versions(host)
                        } else {
                            discovery::api_group_list()
                        },
                    ))
                }
            },
            Route::DiscoveryGroup(group) => discovery::api_group(&group)
                .map(|v| json_response(StatusCode::OK, &v))
                .ok_or_else(ApiError::not_found_path),
            Route::DiscoveryVersion { group, version } => {
                discovery::api_resource_list(&group, &version)
                    .map(|v| json_response(StatusCode::OK, &v))
                    .ok_or_else(ApiError::not_found_path)
            }
            Route::OpenApiV3(path) => {
                openapi_v3(&path, Query::parse(req.uri().query()).get("hash"))
            }
            Route::OpenApiV2 => {
                let document = crate::openapi_v2::document();
                let accept = req
                    .headers()
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                Ok(
                    if accept.contains("application/com.github.proto-openapi.spec.v2") {
                        bytes_response(
                            StatusCode::OK,
                            crate::openapi_v2::PROTOBUF,
                            document.protobuf.clone(),
                        )
                    } else {
                        bytes_response(StatusCode::OK, "application/json", document.json.clone())
                    },
                )
            }
            Route::Resource(_) => Err(ApiError::not_found_path()),
        }
    }
}

/// `/openapi/v3` and its documents, as kube-apiserver serves them: a document asked for with its
/// current hash is immutable; with another hash, a 301 to the current one.
fn openapi_v3(path: &str, hash: Option<&str>) -> Result<Response<Body>, ApiError> {
    let documents = crate::openapi::documents();
    if path.is_empty() {
        let mut response =
            bytes_response(StatusCode::OK, "application/json", documents.index.clone());
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
        return Ok(response);
    }
    let document = documents
        .by_path
        .get(path)
        .ok_or_else(ApiError::not_found_path)?;
    match hash {
        Some(h) if h != document.hash => {
            let mut response =
                bytes_response(StatusCode::MOVED_PERMANENTLY, "text/plain", Vec::new());
            if let Ok(location) =
                HeaderValue::from_str(&format!("/openapi/v3/{path}?hash={}", document.hash))
            {
                response
                    .headers_mut()
                    .insert(http::header::LOCATION, location);
            }
            Ok(response)
        }
        _ => {
            let mut response =
                bytes_response(StatusCode::OK, "application/json", document.body.clone());
            let cache = if hash.is_some() {
                "public, immutable"
            } else {
                "no-cache, private"
            };
            let headers = response.headers_mut();
            headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(cache));
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", document.hash)) {
                headers.insert(http::header::ETAG, etag);
            }
            Ok(response)
        }
    }
}

/// The query string, decoded.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Adds a parameter.
    pub fn push(&mut self, key: &str, value: &str) {
        self.pairs.push((key.to_owned(), value.to_owned()));
    }

    pub fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`watch=true`, `watch=1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }
}

/// Decodes `%XX` escapes and `+` (as a space), leaving malformed escapes as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    bytes_response(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

pub fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text_response(status: StatusCode, text: &str) -> Response<Body> {
    bytes_response(
        status,
        "text/plain; charset=utf-8",
        text.as_bytes().to_vec(),
    )
}

/// The one place an [`ApiError`] becomes a response: a `Status` body with its code, and
/// `Retry-After` where the error carries one.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = bytes_response(status, "application/json", error.body());
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if error.code() == 401 {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"kubernetes-master\""),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dnginx%2Ctier+in+(a)&watch=true&limit=500&bad=%zz",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=nginx,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("limit"), Some("500"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("missing"), None);
    }
}
