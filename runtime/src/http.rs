//! A small plain-HTTP endpoint for a component's `/healthz`, `/readyz` and `/metrics`, bound to
//! a local address (`--bind-address`/`--port` style flags). Requests are answered by a function
//! of the path; anything it does not know is a 404.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
pub use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What a path answers: a status code, a content type and a body; `None` is a 404.
pub type Answer = Option<(StatusCode, &'static str, String)>;

/// Serves `answer` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, answer: Arc<dyn Fn(&str) -> Answer + Send + Sync>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let answer = Arc::clone(&answer);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let answer = Arc::clone(&answer);
                async move {
                    let response = match answer(request.uri().path()) {
                        Some((status, content_type, body)) => Response::builder()
                            .status(status)
                            .header("content-type", content_type)
                            .body(Full::new(Bytes::from(body))),
                        None => Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"404 page not found\n"))),
                    };
                    Ok::<_, Infallible>(response.unwrap_or_default())
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Prometheus' text exposition content type.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
