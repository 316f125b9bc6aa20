//! The gRPC channel under the etcd client: one HTTP/2 connection (the `h2` crate), with each
//! request handed to it from the task that makes it.
//!
//! `etcd_client::Client::connect` builds tonic's channel: a buffer task, a load balancer and a
//! reconnecting service in front of hyper's HTTP/2 client, which in turn hands every request
//! to its connection task and spawns a task to send each request's body. On a create that was
//! five task hand-offs and ~8 % of the apiserver's CPU beside the connection's own work
//! (BENCHMARKS.md, issue 3). Here a request whose body is complete when it is made (every unary
//! call) is sent from the caller's task: headers and message go straight into the connection's
//! send queue, and the connection task writes them out with whatever else is queued. Streaming
//! bodies (the watch's requests) get a task that copies them, as in hyper.
//!
//! What tonic's channel did that this does too: the endpoints are tried in turn when connecting
//! (connect timeout 5 s); a broken connection is replaced on the next request; HTTP/2 keep-alive
//! pings every 30 s and a connection that does not answer one within 10 s is dropped (the values
//! kube-apiserver's etcd client uses), so that a watch over a dead connection ends and is
//! re-established. What it does not do: TLS to etcd (`https://` endpoints are refused, as they
//! were before: the client was built without a TLS backend) and load balancing across endpoints
//! (one connection at a time, as kube-apiserver's client since etcd 3.4 does in practice).

use std::error::Error as StdError;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use etcd_client::Channel;
use h2::client::SendRequest;
use h2::{PingPong, RecvStream, SendStream};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::net::TcpStream;
use tonic::body::Body;
use tracing::debug;

/// How long connecting to one endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an open connection is pinged.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is dropped.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// The HTTP/2 flow-control windows advertised to etcd (hyper's client defaults, which tonic's
/// channel used): large range responses stream without waiting for window updates.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// A failure of the connection under a request. Its text names the transport, so that
/// `etcd::classify` treats it as transient (the request is retried, a watch re-established).
#[derive(Debug)]
pub struct TransportError(String);

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "etcd transport: {}", self.0)
    }
}

impl StdError for TransportError {}

impl TransportError {
    fn new(what: &str, err: impl fmt::Display) -> TransportError {
        TransportError(format!("{what}: {err}"))
    }
}

/// The `etcd_client::Channel` over the given endpoints (`http://host:port` or `host:port`).
/// Nothing connects until the first request.
pub fn channel(endpoints: &[String]) -> Result<Channel, TransportError> {
    let endpoints = endpoints
        .iter()
        .map(|e| parse_endpoint(e))
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() {
        return Err(TransportError("no etcd endpoints configured".to_owned()));
    }
    let shared = Arc::new(Shared {
        endpoints,
        next_endpoint: AtomicUsize::new(0),
        live: Mutex::new(None),
        connecting: tokio::sync::Mutex::new(()),
    });
    let service = tower::service_fn(move |request| {
        let shared = shared.clone();
        async move { shared.call(request).await.map_err(Into::into) }
    });
    Ok(Channel::Custom(tower::util::BoxCloneSyncService::new(
        service,
    )))
}

/// The authority of an endpoint, which must be plain HTTP.
fn parse_endpoint(endpoint: &str) -> Result<Authority, TransportError> {
    let bad = |why: &str| TransportError(format!("etcd endpoint {endpoint:?}: {why}"));
    let rest = match endpoint.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => {
            return Err(bad("TLS to etcd is not supported; use an http:// endpoint"));
        }
        Some((scheme, _)) => return Err(bad(&format!("unsupported scheme {scheme:?}"))),
        None => endpoint,
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        return Err(bad("an endpoint is a host and port, without a path"));
    }
    let authority: Authority = authority
        .parse()
        .map_err(|e| bad(&format!("not a host and port ({e})")))?;
    if authority.port_u16().is_none() {
        return Err(bad("the port is missing"));
    }
    Ok(authority)
}

struct Shared {
    endpoints: Vec<Authority>,
    /// The endpoint the next connection attempt starts with.
    next_endpoint: AtomicUsize,
    /// The open connection, if any.
    live: Mutex<Option<Live>>,
    /// Held while connecting, so that concurrent requests wait for one attempt.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Live {
    /// Which connection this is (connections are numbered as they open).
    id: usize,
    authority: Authority,
    send: SendRequest<Bytes>,
}

impl Shared {
    async fn call(
        self: Arc<Self>,
        request: Request<Body>,
    ) -> Result<Response<Body>, TransportError> {
        let (mut parts, mut body) = request.into_parts();
        let (data, ended) = ready_data(&mut body).await?;
        let mut live = self.connection().await?;
        let mut send = match live.send.clone().ready().await {
            Ok(send) => send,
            // The connection closed since it was last used (etcd went away, or sent GOAWAY):
            // nothing was sent yet, so one new connection is tried.
            Err(err) => {
                debug!(error = %err, "etcd connection closed; reconnecting");
                self.forget(live.id);
                live = self.connection().await?;
                live.send
                    .clone()
                    .ready()
                    .await
                    .map_err(|e| TransportError::new("connection", e))?
            }
        };
        // tonic sends the path alone; HTTP/2 needs the scheme and authority too.
        let mut uri = parts.uri.into_parts();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(live.authority.clone());
        parts.uri = Uri::from_parts(uri).map_err(|e| TransportError::new("request URI", e))?;

        let head_ends = ended && data.is_empty();
        let (response, mut stream) = send
            .send_request(Request::from_parts(parts, ()), head_ends)
            .map_err(|e| {
                self.forget(live.id);
                TransportError::new("sending a request on the connection", e)
            })?;
        if !data.is_empty() {
            stream
                .send_data(data, ended)
                .map_err(|e| TransportError::new("sending a request on the connection", e))?;
        }
        if !ended {
            tokio::spawn(pipe(body, stream));
        }
        let response = response
            .await
            .map_err(|e| TransportError::new("connection", e))?;
        Ok(response.map(|recv| {
            Body::new(ResponseBody {
                recv,
                data_done: false,
            })
        }))
    }

    /// The open connection, or a new one.
    async fn connection(self: &Arc<Self>) -> Result<Live, TransportError> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let _connecting = self.connecting.lock().await;
        // Another request may have connected while this one waited.
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let live = self.connect().await?;
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = Some(live.clone());
        Ok(live)
    }

    fn current(&self) -> Option<Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets connection `id` if it is still the current one.
    fn forget(&self, id: usize) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.as_ref().is_some_and(|l| l.id == id) {
            *live = None;
        }
    }

    /// Connects to the first endpoint that answers, starting after the last one that failed,
    /// and starts the task that drives the connection.
    async fn connect(self: &Arc<Self>) -> Result<Live, TransportError> {
        static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
        let count = self.endpoints.len();
        let start = self.next_endpoint.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..count {
            let authority = &self.endpoints[(start + i) % count];
            match connect_one(authority).await {
                Ok((send, connection, pings)) => {
                    let id = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
                    let shared = Arc::downgrade(self);
                    tokio::spawn(async move {
                        tokio::select! {
                            result = connection => {
                                if let Err(err) = result {
                                    debug!(error = %err, "etcd connection ended");
                                }
                            }
                            () = keep_alive(pings) => {
                                debug!("etcd did not answer a keep-alive ping; dropping the connection");
                            }
                        }
                        if let Some(shared) = shared.upgrade() {
                            shared.forget(id);
                        }
                    });
                    return Ok(Live {
                        id,
                        authority: authority.clone(),
                        send,
                    });
                }
                Err(err) => {
                    self.next_endpoint
                        .store((start + i + 1) % count, Ordering::Relaxed);
                    failures.push(format!("{authority}: {err}"));
                }
            }
        }
        Err(TransportError(format!(
            "connecting to etcd failed ({})",
            failures.join("; ")
        )))
    }
}

/// One connection: TCP without Nagle's delay, then the HTTP/2 preface.
async fn connect_one(
    authority: &Authority,
) -> Result<
    (
        SendRequest<Bytes>,
        h2::client::Connection<TcpStream, Bytes>,
        PingPong,
    ),
    String,
> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority.as_str()))
        .await
        .map_err(|_| format!("connect timed out after {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("connect: {e}"))?;
    let (send, mut connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake(tcp)
        .await
        .map_err(|e| format!("connect: HTTP/2 handshake: {e}"))?;
    let pings = connection
        .ping_pong()
        .ok_or_else(|| "connect: HTTP/2 pings unavailable".to_owned())?;
    Ok((send, connection, pings))
}

/// Pings every [`KEEP_ALIVE_INTERVAL`]; returns when a ping is not answered in time.
async fn keep_alive(mut pings: PingPong) {
    loop {
        tokio::time::sleep(KEEP_ALIVE_INTERVAL).await;
        match tokio::time::timeout(KEEP_ALIVE_TIMEOUT, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            // The connection is gone (its task ends on its own) or did not answer.
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// The body's data that is ready now, and whether that is all of it (a unary request's body
/// is one encoded message, ready at once).
async fn ready_data(body: &mut Body) -> Result<(Bytes, bool), TransportError> {
    poll_fn(|cx| {
        let mut chunks: Vec<Bytes> = Vec::new();
        let ended = loop {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        chunks.push(data);
                    }
                }
                Poll::Ready(Some(Err(status))) => {
                    return Poll::Ready(Err(TransportError::new("encoding a request", status)));
                }
                Poll::Ready(None) => break true,
                Poll::Pending => break false,
            }
        };
        let data = match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::new();
                chunks.iter().for_each(|c| all.extend_from_slice(c));
                all.freeze()
            }
        };
        Poll::Ready(Ok((data, ended)))
    })
    .await
}

/// Copies the rest of a streaming request body to its stream, until the body ends or the
/// stream is reset.
async fn pipe(mut body: Body, mut stream: SendStream<Bytes>) {
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = poll_fn(|cx| stream.poll_reset(cx)) => return,
        };
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && stream.send_data(data, false).is_err()
                {
                    return;
                }
            }
            Some(Err(_)) => {
                stream.send_reset(h2::Reason::CANCEL);
                return;
            }
            None => {
                // The stream may already be gone; then there is nothing to end.
                let _ = stream.send_data(Bytes::new(), true);
                return;
            }
        }
    }
}

/// A response's body: its data, then its trailers (where gRPC puts the status). Data is
/// released to the flow-control window as it is read.
struct ResponseBody {
    recv: RecvStream,
    data_done: bool,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = TransportError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, TransportError>>> {
        let this = self.get_mut();
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Fails only when the stream is already closed.
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(err)) => {
                    return Poll::Ready(Some(Err(TransportError::new("response", err))));
                }
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(TransportError::new("response", err)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_endpoint;

    #[test]
    fn endpoints_are_http_hosts_and_ports() {
        for (endpoint, want) in [
            ("http://127.0.0.1:2379", Ok("127.0.0.1:2379")),
            ("http://etcd.example:2379/", Ok("etcd.example:2379")),
            ("127.0.0.1:2379", Ok("127.0.0.1:2379")),
            ("http://[::1]:2379", Ok("[::1]:2379")),
            ("https://127.0.0.1:2379", Err("TLS to etcd is not supported")),
            ("unix://etcd.sock", Err("unsupported scheme")),
            ("http://127.0.0.1:2379/v3", Err("without a path")),
            ("http://127.0.0.1", Err("the port is missing")),
            ("http://", Err("not a host and port")),
        ] {
            match (parse_endpoint(endpoint), want) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_str(), want, "{endpoint}"),
                (Err(got), Err(want)) => {
                    let got = got.to_string();
                    assert!(got.contains(want), "{endpoint}: {got}");
                    assert!(got.contains(endpoint), "{endpoint}: {got}");
                }
                (got, want) => panic!("{endpoint}: got {got:?}, want {want:?}"),
            }
        }
    }
}
