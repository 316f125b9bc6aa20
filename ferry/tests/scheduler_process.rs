//! Two `ferry scheduler --leader-elect` processes: the leader is SIGKILLed while pods are being
//! created, the standby takes the Lease and carries on, the killed one comes back as the standby
//! and takes over in turn. No pod is lost, none is bound twice, and no node is over-committed:
//! the pods fill the nodes exactly.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client};

/// Ten nodes of one CPU hold exactly this many 100m pods.
const NODES: usize = 10;
const CAPACITY: usize = NODES * 10;

struct SchedulerProcess {
    child: Child,
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a scheduler; its "became leader" lines go to `leaders` as (index, time), and the
/// address it serves `/metrics` on to `addresses`.
fn start(
    server: &TestApiServer,
    index: usize,
    leaders: mpsc::Sender<(usize, Instant)>,
    addresses: mpsc::Sender<(usize, String)>,
) -> SchedulerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "scheduler",
            "--leader-elect",
            "--leader-elect-lease-duration=4s",
            "--leader-elect-renew-deadline=3s",
            "--leader-elect-retry-period=1s",
            "--bind-address=127.0.0.1:0",
            "--kubeconfig",
        ])
        .arg(server.kubeconfig())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry scheduler");
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("became leader") {
                let _ = leaders.send((index, Instant::now()));
            }
            if line.contains("serving /healthz")
                && let Some(at) = line.find("address=")
            {
                let address = line[at + "address=".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = addresses.send((index, address));
            }
        }
    });
    SchedulerProcess { child }
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "fill"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                 "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}}}]}
    }))
    .expect("a Pod")
}

#[test]
fn a_killed_scheduler_loses_and_double_binds_nothing() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (tx, leaders) = mpsc::channel();
    let (address_tx, addresses) = mpsc::channel();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let nodes: Api<Node> = Api::all(client.clone());
        for i in 0..NODES {
            let resources = json!({"cpu": "1", "memory": "8Gi", "pods": "110"});
            let node: Node = serde_json::from_value(json!({
                "metadata": {"name": format!("node-{i}")},
                "status": {"capacity": resources, "allocatable": resources}
            }))
            .unwrap();
            nodes.create(&PostParams::default(), &node).await.unwrap();
        }
    });
    let mut schedulers = [
        Some(start(&server, 0, tx.clone(), address_tx.clone())),
        Some(start(&server, 1, tx.clone(), address_tx.clone())),
    ];
    let (first, _) = leaders
        .recv_timeout(Duration::from_secs(20))
        .expect("a leader");
    // Both log their address before competing for the Lease. The standby is alive, not ready.
    let mut seen_addresses: Vec<(usize, String)> = Vec::new();
    while seen_addresses.len() < 2 {
        seen_addresses.push(
            addresses
                .recv_timeout(Duration::from_secs(10))
                .expect("both schedulers serve /healthz"),
        );
    }
    for (index, address) in &seen_addresses {
        let healthz = http_get(address, "/healthz");
        assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");
        if *index == first {
            // Ready once its caches have synced after winning the Lease.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !http_get(address, "/readyz").starts_with("HTTP/1.1 200") {
                assert!(Instant::now() < deadline, "the leader never became ready");
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            let readyz = http_get(address, "/readyz");
            assert!(readyz.starts_with("HTTP/1.1 503"), "the standby: {readyz}");
        }
    }
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

        // Every binding the watch sees: a pod's node must never change once set.
        let watched = pods.clone();
        let bindings = tokio::spawn(async move {
            let mut seen: HashMap<String, String> = HashMap::new();
            let mut events = watcher(watched, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(Ok(pod)) = events.next().await {
                let name = pod.metadata.name.clone().unwrap_or_default();
                if let Some(node) = pod.spec.and_then(|s| s.node_name) {
                    let before = seen.insert(name.clone(), node.clone());
                    assert!(
                        before.as_ref().is_none_or(|b| *b == node),
                        "pod {name} moved from {before:?} to {node}"
                    );
                    if seen.len() == CAPACITY {
                        return seen;
                    }
                }
            }
            seen
        });
        let bound = |n: usize| {
            let pods = pods.clone();
            async move {
                eventually(60, &format!("{n} pods bound"), || async {
                    let list = pods.list(&ListParams::default()).await.ok()?.items;
                    let count = list
                        .iter()
                        .filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
                        .count();
                    (count >= n).then_some(())
                })
                .await;
            }
        };

        for i in 0..40 {
            pods.create(&PostParams::default(), &pod(&format!("p-{i}")))
                .await
                .unwrap();
        }
        bound(40).await;

        // Kill the leader while pods keep coming.
        let creator = {
            let pods = pods.clone();
            tokio::spawn(async move {
                for i in 40..80 {
                    pods.create(&PostParams::default(), &pod(&format!("p-{i}")))
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(schedulers[first].take());
        let (second, _) = leaders
            .recv_timeout(Duration::from_secs(20))
            .expect("the standby takes over");
        assert_ne!(second, first);
        creator.await.unwrap();
        bound(80).await;

        // The killed one returns as the standby, and takes over when the leader dies in turn.
        schedulers[first] = Some(start(&server, first, tx.clone(), address_tx.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        for i in 80..90 {
            pods.create(&PostParams::default(), &pod(&format!("p-{i}")))
                .await
                .unwrap();
        }
        drop(schedulers[second].take());
        let (third, _) = leaders
            .recv_timeout(Duration::from_secs(20))
            .expect("the restarted scheduler takes over");
        assert_eq!(third, first);
        for i in 90..CAPACITY {
            pods.create(&PostParams::default(), &pod(&format!("p-{i}")))
                .await
                .unwrap();
        }
        bound(CAPACITY).await;

        let seen = tokio::time::timeout(Duration::from_secs(10), bindings)
            .await
            .expect("the watch saw every binding")
            .unwrap();
        assert_eq!(seen.len(), CAPACITY);
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for node in seen.values() {
            *per_node.entry(node.clone()).or_default() += 1;
        }
        assert!(
            per_node.values().all(|n| *n == 10) && per_node.len() == NODES,
            "each 1-CPU node holds exactly ten 100m pods: {per_node:?}"
        );

        // Nobody tried to bind a bound pod: no binding was rejected.
        let events: Api<Event> = Api::namespaced(client.clone(), "default");
        let rejected: Vec<String> = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
            .filter_map(|e| e.message)
            .collect();
        assert!(rejected.is_empty(), "{rejected:?}");
    });

    // The leader's metrics, under kube-scheduler's names: its last address is the restarted
    // process's. It bound at least the pods created after it took over, so it is running.
    let mut leader_address = None;
    while let Ok((index, address)) = addresses.try_recv() {
        if index == first {
            leader_address = Some(address);
        }
    }
    let leader_address = leader_address.expect("the leader's metrics address");
    assert!(http_get(&leader_address, "/readyz").starts_with("HTTP/1.1 200"));
    let metrics = http_get(&leader_address, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let scheduled = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .expect("scheduler_schedule_attempts_total for scheduled pods");
    assert!(
        scheduled >= 10,
        "the restarted leader bound the last 10 pods: {scheduled}"
    );
    for name in [
        "scheduler_scheduling_attempt_duration_seconds_bucket",
        "scheduler_scheduling_algorithm_duration_seconds_count",
        "scheduler_pending_pods{queue=\"active\"} 0",
        "scheduler_pod_scheduling_duration_seconds_count",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
}

/// A plain HTTP/1.1 GET, the whole answer as text.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the scheduler");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}
