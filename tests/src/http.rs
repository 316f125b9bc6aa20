//! A small HTTPS client for tests that need more than curl gives: many concurrent requests and
//! streaming watch responses. HTTP/1.1 over rustls, verifying the test server's CA.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::apiserver::{TOKEN, TestApiServer};

/// A client for one test apiserver.
#[derive(Clone)]
pub struct Client {
    addr: std::net::SocketAddr,
    tls: tokio_rustls::TlsConnector,
    token: String,
}

/// A response read in full.
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Client {
    pub fn new(server: &TestApiServer) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(server.ca_pem.as_bytes()).flatten() {
            roots.add(cert).expect("add the test CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Client {
            addr: server.addr,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            token: TOKEN.to_owned(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> hyper::Response<Incoming> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .expect("connect to the apiserver");
        let name = ServerName::try_from("localhost").expect("a server name");
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the apiserver");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .expect("HTTP handshake");
        tokio::spawn(conn);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "localhost")
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .body(Full::new(body))
            .expect("a request");
        sender
            .send_request(request)
            .await
            .expect("send the request")
    }

    /// One request, read in full as JSON.
    pub async fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let body = body
            .map(|b| Bytes::from(serde_json::to_vec(b).unwrap()))
            .unwrap_or_default();
        let response = self.send(method, path, "application/json", body).await;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("read the body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply { status, body }
    }

    /// Starts a watch (`path` includes `watch=true`); returns its event stream.
    pub async fn watch(&self, path: &str) -> WatchStream {
        let response = self
            .send("GET", path, "application/json", Bytes::new())
            .await;
        assert_eq!(response.status().as_u16(), 200, "watch {path}");
        WatchStream {
            body: response.into_body(),
            buffer: Vec::new(),
        }
    }
}

/// Newline-delimited watch events.
pub struct WatchStream {
    body: Incoming,
    buffer: Vec<u8>,
}

impl WatchStream {
    /// The next event, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a watch event is JSON"));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.buffer.extend_from_slice(data);
                    }
                }
                _ => return None,
            }
        }
    }
}
