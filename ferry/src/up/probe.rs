//! How `ferry up` and `ferry status` tell that a component is healthy.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The check that says a component is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Probe {
    /// etcd's `/health` on its client port.
    Etcd { client_port: u16 },
    /// The apiserver's `/readyz`.
    ApiServer,
    /// A plain-HTTP `/readyz` (the scheduler's).
    Http { address: String },
    /// No health endpoint (the controller-manager): alive is all there is.
    Process,
    /// The kubelet's node is Ready.
    Node { name: String },
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy(String),
    Unhealthy(String),
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy(_))
    }

    pub fn text(&self) -> &str {
        match self {
            Health::Healthy(t) | Health::Unhealthy(t) => t,
        }
    }
}

/// The status code of `GET path` on a plain-HTTP endpoint.
pub async fn http_status(address: &str, path: &str) -> Option<u16> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// Whether the apiserver answers `/readyz` with 200.
pub async fn apiserver_ready(client: &kube::Client) -> bool {
    let Ok(request) = http::Request::get("/readyz").body(Vec::new()) else {
        return false;
    };
    tokio::time::timeout(Duration::from_secs(2), client.request_text(request))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// The Ready condition of every node, by name ("True", "False", "Unknown"); tried twice, each
/// within 10 s (right after a restart the apiserver may be slow to list).
pub async fn node_readiness(
    client: &kube::Client,
) -> Result<std::collections::HashMap<String, String>, String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut attempt = 0;
    let list = loop {
        attempt += 1;
        let error =
            match tokio::time::timeout(Duration::from_secs(10), nodes.list(&ListParams::default()))
                .await
            {
                Ok(Ok(list)) => break list,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer within 10 s".to_owned(),
            };
        if attempt == 2 {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    Ok(list
        .items
        .into_iter()
        .filter_map(|node| {
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .map_or_else(|| "Unknown".to_owned(), |c| c.status.clone());
            Some((node.metadata.name?, ready))
        })
        .collect())
}

/// Runs probes for one look at the cluster: the nodes are listed once, for every kubelet.
pub struct Prober<'a> {
    /// The admin client, when the apiserver is up.
    client: Option<&'a kube::Client>,
    nodes: Option<Result<std::collections::HashMap<String, String>, String>>,
}

impl<'a> Prober<'a> {
    pub fn new(client: Option<&'a kube::Client>) -> Self {
        Prober {
            client,
            nodes: None,
        }
    }

    /// Runs `probe`.
    pub async fn check(&mut self, probe: &Probe) -> Health {
        match probe {
            Probe::Etcd { client_port } => {
                match http_status(&format!("127.0.0.1:{client_port}"), "/health").await {
                    Some(200) => Health::Healthy("healthy".into()),
                    Some(code) => Health::Unhealthy(format!("/health: {code}")),
                    None => Health::Unhealthy("not answering".into()),
                }
            }
            Probe::ApiServer => match self.client {
                Some(client) if apiserver_ready(client).await => Health::Healthy("ready".into()),
                _ => Health::Unhealthy("not ready".into()),
            },
            Probe::Http { address } => match http_status(address, "/readyz").await {
                Some(200) => Health::Healthy("ready".into()),
                Some(code) => Health::Unhealthy(format!("/readyz: {code}")),
                None => Health::Unhealthy("not answering".into()),
            },
            Probe::Process => Health::Healthy("running".into()),
            Probe::Node { name } => {
                let Some(client) = self.client else {
                    return Health::Unhealthy("no apiserver to ask".into());
                };
                if self.nodes.is_none() {
                    self.nodes = Some(node_readiness(client).await);
                }
                match self.nodes.as_ref() {
                    Some(Ok(nodes)) => match nodes.get(name).map(String::as_str) {
                        Some("True") => Health::Healthy(format!("node {name} Ready")),
                        Some("False") => Health::Unhealthy(format!("node {name} NotReady")),
                        Some(_) => Health::Unhealthy(format!("node {name} Unknown")),
                        None => Health::Unhealthy(format!("node {name} not registered")),
                    },
                    Some(Err(e)) => Health::Unhealthy(format!("cannot list nodes: {e}")),
                    None => Health::Unhealthy("cannot list nodes".into()),
                }
            }
        }
    }
}
