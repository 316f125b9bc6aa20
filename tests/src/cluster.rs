//! Helpers for tests that run controllers against a [`TestApiServer`]: a `kube` client, polling
//! with a deadline, and a stand-in kubelet.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::{Value, json};

use crate::apiserver::TestApiServer;

/// A `kube` client for `server`, as the components build theirs (from the kubeconfig). Also
/// installs a log subscriber: `RUST_LOG=controller_manager=debug` shows what controllers do.
pub async fn kube_client(server: &TestApiServer) -> Client {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(server.kubeconfig()).expect("read the kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client config");
    Client::try_from(config).expect("a client")
}

/// A `kube` client from the kubeconfig file at `path` (its current context), as a user's
/// tools would build theirs, e.g. from the kubeconfig `ferry up` writes.
pub async fn kube_client_from(path: &std::path::Path) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("read the kubeconfig {}: {e}", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("a client config from {}: {e}", path.display()));
    Client::try_from(config).expect("a client")
}

/// Polls `check` every 50 ms until it returns `Some`; panics naming `what` after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pods with this label are bound by [`fake_kubelet`] but never become ready.
pub const STUCK: &str = "test.ferry.dev/stuck";

/// Binds pod `name` to `node`.
pub async fn bind(pods: &Api<Pod>, name: &str, node: &str) {
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    let _: Result<Value, _> = pods
        .create_subresource("binding", name, &PostParams::default(), &binding)
        .await;
}

/// Binds pod `name` to `node` and reports it Running and Ready, as a kubelet would.
pub async fn bind_and_ready(pods: &Api<Pod>, name: &str, node: &str) {
    bind(pods, name, node).await;
    mark_ready(pods, name).await;
}

/// Reports pod `name` Running and Ready, with an IP made from its name.
pub async fn mark_ready(pods: &Api<Pod>, name: &str) {
    let now = jiff::Timestamp::now().to_string();
    let hash = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let ip = format!("10.244.{}.{}", (hash >> 8) % 250, hash % 250 + 2);
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    let _ = pods
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await;
}

/// Plays the kubelet for every pod in the cluster until aborted: binds unscheduled pods to
/// `node-1`, reports bound pods Running and Ready at once (once: a test may later mark one not
/// ready; never for pods labelled [`STUCK`]), and removes terminating pods.
pub fn fake_kubelet(client: Client) -> tokio::task::JoinHandle<()> {
    fake_kubelet_with(client, 1)
}

/// [`fake_kubelet`] handling up to `concurrency` pods at a time (for benchmarks).
pub fn fake_kubelet_with(client: Client, concurrency: usize) -> tokio::task::JoinHandle<()> {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    tokio::spawn(async move {
        let all: Api<Pod> = Api::all(client.clone());
        let mut events = watcher(all, watcher::Config::default())
            .applied_objects()
            .default_backoff()
            .boxed();
        let mut readied = std::collections::HashSet::new();
        while let Some(Ok(pod)) = events.next().await {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let bound = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some();
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            // One action per pod at a time, in the order its events came: bind and ready it
            // once, remove it when terminating.
            let stuck = pod
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(STUCK));
            let action = if terminating {
                2
            } else if stuck && bound {
                continue;
            } else if stuck {
                3
            } else if !ready && readied.insert(uid) {
                u8::from(bound)
            } else {
                continue;
            };
            let Ok(permit) = std::sync::Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            tokio::spawn(async move {
                match action {
                    0 => bind_and_ready(&pods, &name, "node-1").await,
                    3 => bind(&pods, &name, "node-1").await,
                    1 => mark_ready(&pods, &name).await,
                    _ => {
                        let _ = pods
                            .delete(&name, &DeleteParams::default().grace_period(0))
                            .await;
                    }
                }
                drop(permit);
            });
        }
    })
}

/// The controller-manager (every controller, no leader election) and [`fake_kubelet`], running
/// until the handles are aborted.
pub fn start_controllers(client: &Client) -> [tokio::task::JoinHandle<()>; 2] {
    let manager_client = client.clone();
    let manager = tokio::spawn(async move {
        if let Err(error) =
            controller_manager::run(manager_client, controller_manager::Options::default()).await
        {
            panic!("the controller-manager stopped: {error}");
        }
    });
    [manager, fake_kubelet(client.clone())]
}
