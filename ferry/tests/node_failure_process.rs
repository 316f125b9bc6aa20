//! Node failure end to end, every component a `ferry` process (timers shortened by flags): a
//! Deployment on three `ferry kubelet` nodes; one kubelet is SIGKILLed → its node goes Unknown
//! and tainted, its pods are evicted once their tolerations run out and replaced on the other
//! nodes; the kubelet comes back → the node is Ready and untainted again. Four of five kubelets
//! killed at once → at most one node's pods are evicted (Kubernetes' disruption rule).

use std::process::{Child, Command, Stdio};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ferry(server: &TestApiServer, args: &[&str]) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry");
    Process(child)
}

fn kubelet(server: &TestApiServer, node: &str) -> Process {
    ferry(
        server,
        &[
            "kubelet",
            "--node-name",
            node,
            "--heartbeat-interval=1s",
            "--pod-startup-delay=100ms",
        ],
    )
}

/// Tolerating an unreachable or not-ready node for 2 s instead of the default 300 s.
const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers: [{name: c, image: "nginx:1.27"}]
"#;

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

fn ready(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

fn unreachable_taints(node: &Node) -> usize {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map_or(0, |t| t.iter().filter(|t| t.key == UNREACHABLE).count())
}

/// The Deployment's pods not being deleted, with their nodes.
async fn live_pods(pods: &Api<Pod>) -> Vec<(String, String)> {
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let node = p.spec.and_then(|s| s.node_name).unwrap_or_default();
            (p.metadata.name.unwrap_or_default(), node)
        })
        .collect()
}

#[test]
fn a_killed_kubelets_pods_move_and_its_node_recovers() {
    let server = TestApiServer::start(Backend::Embedded);
    let _manager = ferry(
        &server,
        &[
            "controller-manager",
            "--node-monitor-period=1s",
            "--node-monitor-grace-period=3s",
            "--node-eviction-rate=10",
        ],
    );
    let _scheduler = ferry(&server, &["scheduler", "--bind-address="]);
    let names = ["node-0", "node-1", "node-2"];
    let mut kubelets: Vec<Option<Process>> =
        names.iter().map(|n| Some(kubelet(&server, n))).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let nodes: Api<Node> = Api::all(client.clone());
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let available = || async {
            deployments
                .get("web")
                .await
                .ok()?
                .status?
                .available_replicas
        };
        for name in names {
            eventually(30, &format!("{name} Ready"), || async {
                (ready(&nodes.get(name).await.ok()?) == "True").then_some(())
            })
            .await;
        }
        let manifest = server.write_manifest("web.yaml", DEPLOYMENT, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        server.kubectl_ok(
            "1.33",
            &["rollout", "status", "deployment/web", "--timeout=60s"],
        );

        // SIGKILL the kubelet of a node running one of the pods.
        let (_, victim) = live_pods(&pods)
            .await
            .into_iter()
            .find(|(_, node)| !node.is_empty())
            .expect("a placed pod");
        let index = names
            .iter()
            .position(|n| *n == victim)
            .expect("one of ours");
        drop(kubelets[index].take());
        eventually(20, "the silent node Unknown and tainted", || async {
            let node = nodes.get(&victim).await.ok()?;
            (ready(&node) == "Unknown" && unreachable_taints(&node) == 2).then_some(())
        })
        .await;
        eventually(40, "the pods replaced on the other nodes", || async {
            let live = live_pods(&pods).await;
            (live.len() == 3
                && live
                    .iter()
                    .all(|(_, node)| !node.is_empty() && *node != victim)
                && available().await == Some(3))
            .then_some(())
        })
        .await;

        // The kubelet returns: Ready, untainted, and it finishes the evicted pods' deletion.
        kubelets[index] = Some(kubelet(&server, &victim));
        eventually(30, "the node Ready and untainted again", || async {
            let node = nodes.get(&victim).await.ok()?;
            (ready(&node) == "True" && unreachable_taints(&node) == 0).then_some(())
        })
        .await;
        eventually(30, "the evicted pods gone", || async {
            let all = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?;
            (all.items.len() == 3).then_some(())
        })
        .await;
    });
}

/// Most of the nodes die at once with kube's default eviction rate (0.1 nodes/s, a burst of one):
/// the first node noticed may be evicted before the zone counts as disrupted, but then the zone
/// is (more than two and at least 55 % of its nodes unhealthy, in a cluster of at most 50
/// nodes: secondary rate 0) and no other node's pods are evicted, however long it lasts.
#[test]
fn most_nodes_dying_at_once_evict_at_most_one_node() {
    let server = TestApiServer::start(Backend::Embedded);
    let _manager = ferry(
        &server,
        &[
            "controller-manager",
            "--node-monitor-period=1s",
            "--node-monitor-grace-period=3s",
        ],
    );
    let _scheduler = ferry(&server, &["scheduler", "--bind-address="]);
    let names = ["node-0", "node-1", "node-2", "node-3", "node-4"];
    let mut kubelets: Vec<Option<Process>> =
        names.iter().map(|n| Some(kubelet(&server, n))).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let nodes: Api<Node> = Api::all(client.clone());
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        for name in names {
            eventually(30, &format!("{name} Ready"), || async {
                (ready(&nodes.get(name).await.ok()?) == "True").then_some(())
            })
            .await;
        }
        let manifest = server.write_manifest("web.yaml", DEPLOYMENT, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        server.kubectl_ok("1.33", &["scale", "deployment/web", "--replicas=10"]);
        server.kubectl_ok(
            "1.33",
            &["rollout", "status", "deployment/web", "--timeout=60s"],
        );
        let before = live_pods(&pods).await;
        let doomed = &names[1..];
        for (i, process) in kubelets.iter_mut().enumerate().skip(1) {
            assert_eq!(names[i], doomed[i - 1]);
            drop(process.take());
        }
        for name in doomed {
            eventually(20, &format!("{name} Unknown"), || async {
                (ready(&nodes.get(name).await.ok()?) == "Unknown").then_some(())
            })
            .await;
        }
        // Past the grace period, the pods' 2 s tolerations and the 10 s the default rate puts
        // between two nodes' evictions: only the zone rule keeps the others.
        tokio::time::sleep(std::time::Duration::from_secs(14)).await;
        let after = live_pods(&pods).await;
        let evicted: Vec<&str> = doomed
            .iter()
            .copied()
            .filter(|node| {
                before
                    .iter()
                    .any(|(pod, n)| n == node && !after.iter().any(|(p, _)| p == pod))
            })
            .collect();
        assert!(
            evicted.len() <= 1,
            "no mass eviction: pods evicted from {evicted:?}; before {before:?}, after {after:?}"
        );
    });
}
