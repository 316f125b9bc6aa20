//! The node-lifecycle controller and node IPAM against a real apiserver, the test playing the
//! nodes: it registers Nodes with Ready=True, renews their Leases in `kube-node-lease`, and stops
//! renewing to make a node fall silent. Timings are shortened through the controller's options.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client};

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

fn options(eviction_rate: f64) -> controller_manager::Options {
    let mut options = controller_manager::Options {
        controllers: vec!["nodelifecycle".into()],
        ..controller_manager::Options::default()
    };
    options.node_lifecycle.monitor_period = Duration::from_millis(200);
    options.node_lifecycle.grace_period = Duration::from_secs(2);
    options.node_lifecycle.rates.eviction = eviction_rate;
    options
}

/// Registers `name` Ready with a fresh Lease, as a kubelet does.
async fn register(client: &Client, name: &str, taints: serde_json::Value) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "z1"}},
        "spec": {"taints": taints}
    }))
    .unwrap();
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create the node");
    post_ready(client, name).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "kube-node-lease"}})).unwrap(),
        )
        .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                 "renewTime": MicroTime(jiff::Timestamp::now())}
    }))
    .unwrap();
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create the lease");
}

/// Posts node status with Ready=True (and the pressure conditions False), heartbeat now.
async fn post_ready(client: &Client, name: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = Time(jiff::Timestamp::now());
    let condition = |kind: &str, status: &str| {
        json!({"type": kind, "status": status, "reason": "KubeletReady",
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let status = json!({"status": {"conditions": [
        condition("Ready", "True"),
        condition("MemoryPressure", "False"),
        condition("DiskPressure", "False"),
        condition("PIDPressure", "False"),
    ]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("post node status");
}

/// Renews the Leases of the nodes in `alive` every 300 ms.
fn renew(client: Client, alive: Arc<Mutex<HashSet<String>>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
        loop {
            let names: Vec<String> = alive.lock().unwrap().iter().cloned().collect();
            // One time for all: nodes that stop together go stale in the same pass.
            let patch = json!({"spec": {"renewTime": MicroTime(jiff::Timestamp::now())}});
            for name in names {
                let _ = leases
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// A pod bound to `node` with the given tolerations (the apiserver adds the 300 s defaults for
/// `not-ready`/`unreachable` unless they are tolerated here).
async fn pod_on(pods: &Api<Pod>, name: &str, node: &str, tolerations: serde_json::Value) {
    let pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "tolerations": tolerations,
                 "containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
}

/// Whether the pod is gone or being deleted.
async fn evicted(pods: &Api<Pod>, name: &str) -> bool {
    match pods.get_opt(name).await.expect("get the pod") {
        None => true,
        Some(pod) => pod.metadata.deletion_timestamp.is_some(),
    }
}

fn taints(node: &Node) -> Vec<(String, String)> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect))
        .collect()
}

fn ready(node: &Node) -> (String, Option<String>) {
    let c = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready").cloned())
        .expect("a Ready condition");
    (c.status, c.reason)
}

fn toleration(seconds: Option<i64>) -> serde_json::Value {
    let mut t = json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"});
    if let Some(seconds) = seconds {
        t["tolerationSeconds"] = json!(seconds);
    }
    json!([t])
}

#[test]
fn silent_node_is_marked_unknown_tainted_and_its_pods_evicted_by_their_tolerations() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let alive = Arc::new(Mutex::new(HashSet::new()));
        for name in ["a", "b"] {
            register(&client, name, json!([])).await;
            alive.lock().unwrap().insert(name.to_owned());
        }
        // c is healthy but carries a NoExecute taint of its own.
        register(
            &client,
            "c",
            json!([{"key": "example.com/drained", "effect": "NoExecute"}]),
        )
        .await;
        alive.lock().unwrap().insert("c".to_owned());
        let _renewer = renew(client.clone(), Arc::clone(&alive));
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        pod_on(&pods, "at-once", "a", toleration(Some(0))).await;
        pod_on(&pods, "two-seconds", "a", toleration(Some(2))).await;
        pod_on(&pods, "forever", "a", toleration(None)).await;
        pod_on(&pods, "defaulted", "a", json!([])).await;
        pod_on(&pods, "on-healthy", "b", json!([])).await;
        pod_on(&pods, "intolerant", "c", json!([])).await;
        let _manager = tokio::spawn(controller_manager::run(client.clone(), options(100.0)));
        let nodes: Api<Node> = Api::all(client.clone());

        // An untolerated NoExecute taint evicts at once, on a healthy node too.
        eventually(10, "the intolerant pod evicted from c", || async {
            evicted(&pods, "intolerant").await.then_some(())
        })
        .await;

        // Renewing keeps a Ready and untainted past the grace period.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let a = nodes.get("a").await.unwrap();
        assert_eq!(ready(&a).0, "True");
        assert!(taints(&a).is_empty(), "{:?}", taints(&a));

        // a falls silent.
        alive.lock().unwrap().remove("a");
        let silent = Instant::now();
        let a = eventually(10, "a Unknown and unreachable:NoExecute", || async {
            let a = nodes.get("a").await.unwrap();
            let t = taints(&a);
            (t.contains(&(UNREACHABLE.into(), "NoExecute".into()))
                && t.contains(&(UNREACHABLE.into(), "NoSchedule".into())))
            .then_some(a)
        })
        .await;
        let tainted = Instant::now();
        assert!(
            silent.elapsed() >= Duration::from_millis(1500),
            "not before the grace period: {:?}",
            silent.elapsed()
        );
        assert_eq!(
            ready(&a),
            ("Unknown".to_owned(), Some("NodeStatusUnknown".to_owned()))
        );
        for c in a.status.as_ref().unwrap().conditions.as_ref().unwrap() {
            assert_eq!(c.status, "Unknown", "{}", c.type_);
            assert_eq!(
                c.message.as_deref(),
                Some("Kubelet stopped posting node status.")
            );
        }
        let no_execute = a
            .spec
            .as_ref()
            .unwrap()
            .taints
            .as_ref()
            .unwrap()
            .iter()
            .find(|t| t.effect == "NoExecute")
            .unwrap()
            .clone();
        assert!(no_execute.time_added.is_some(), "{no_execute:?}");

        eventually(5, "the at-once pod evicted", || async {
            evicted(&pods, "at-once").await.then_some(())
        })
        .await;
        assert!(
            !evicted(&pods, "two-seconds").await,
            "tolerationSeconds 2 not yet out"
        );
        eventually(10, "the two-seconds pod evicted", || async {
            evicted(&pods, "two-seconds").await.then_some(())
        })
        .await;
        assert!(
            // timeAdded has whole seconds: the 2 s run from the second the taint went on.
            tainted.elapsed() >= Duration::from_millis(500),
            "evicted too early: {:?}",
            tainted.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        for name in ["forever", "defaulted", "on-healthy"] {
            assert!(!evicted(&pods, name).await, "{name} stays");
        }
        let events =
            Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), "default");
        eventually(5, "a TaintManagerEviction event", || async {
            let list = events.list(&Default::default()).await.unwrap();
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("TaintManagerEviction")
                        && e.message.as_deref() == Some("Marking for deletion Pod default/at-once")
                })
                .then_some(())
        })
        .await;

        // The kubelet comes back: the taints go.
        alive.lock().unwrap().insert("a".to_owned());
        post_ready(&client, "a").await;
        eventually(10, "a untainted", || async {
            let a = nodes.get("a").await.unwrap();
            (ready(&a).0 == "True" && taints(&a).is_empty()).then_some(())
        })
        .await;
        assert!(!evicted(&pods, "forever").await);
    });
}

#[test]
fn no_evictions_when_every_node_is_silent() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let alive = Arc::new(Mutex::new(HashSet::new()));
        for name in ["x", "y"] {
            register(&client, name, json!([])).await;
            alive.lock().unwrap().insert(name.to_owned());
        }
        let _renewer = renew(client.clone(), Arc::clone(&alive));
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        pod_on(&pods, "px", "x", toleration(Some(0))).await;
        pod_on(&pods, "py", "y", toleration(Some(0))).await;
        let _manager = tokio::spawn(controller_manager::run(client.clone(), options(100.0)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        alive.lock().unwrap().clear();
        let nodes: Api<Node> = Api::all(client.clone());
        for name in ["x", "y"] {
            eventually(10, "Unknown and NoSchedule", || async {
                let n = nodes.get(name).await.unwrap();
                (ready(&n).0 == "Unknown"
                    && taints(&n).contains(&(UNREACHABLE.into(), "NoSchedule".into())))
                .then_some(())
            })
            .await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        for (node, pod) in [("x", "px"), ("y", "py")] {
            let n = nodes.get(node).await.unwrap();
            assert!(
                !taints(&n).iter().any(|(_, effect)| effect == "NoExecute"),
                "full disruption: no NoExecute taint on {node}: {:?}",
                taints(&n)
            );
            assert!(!evicted(&pods, pod).await, "{pod} not evicted");
        }
    });
}

#[test]
fn no_evictions_in_a_small_partially_disrupted_zone() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let alive = Arc::new(Mutex::new(HashSet::new()));
        for name in ["h", "u1", "u2", "u3"] {
            register(&client, name, json!([])).await;
            alive.lock().unwrap().insert(name.to_owned());
        }
        let _renewer = renew(client.clone(), Arc::clone(&alive));
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        for node in ["u1", "u2", "u3"] {
            pod_on(&pods, &format!("p-{node}"), node, toleration(Some(0))).await;
        }
        let _manager = tokio::spawn(controller_manager::run(client.clone(), options(100.0)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Three of four (≥ 0.55, more than two) unhealthy in a zone of four (≤ 50 nodes): rate 0.
        for node in ["u1", "u2", "u3"] {
            alive.lock().unwrap().remove(node);
        }
        let nodes: Api<Node> = Api::all(client.clone());
        for name in ["u1", "u2", "u3"] {
            eventually(10, "Unknown and NoSchedule", || async {
                let n = nodes.get(name).await.unwrap();
                (ready(&n).0 == "Unknown"
                    && taints(&n).contains(&(UNREACHABLE.into(), "NoSchedule".into())))
                .then_some(())
            })
            .await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for node in ["u1", "u2", "u3"] {
            let n = nodes.get(node).await.unwrap();
            assert!(
                !taints(&n).iter().any(|(_, effect)| effect == "NoExecute"),
                "partial disruption: no NoExecute taint on {node}: {:?}",
                taints(&n)
            );
            assert!(!evicted(&pods, &format!("p-{node}")).await);
        }
    });
}

#[test]
fn evictions_are_spaced_by_the_node_eviction_rate() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let alive = Arc::new(Mutex::new(HashSet::new()));
        for name in ["p", "q", "r", "s"] {
            register(&client, name, json!([])).await;
            alive.lock().unwrap().insert(name.to_owned());
        }
        let _renewer = renew(client.clone(), Arc::clone(&alive));
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        for node in ["p", "q"] {
            for i in 0..2 {
                pod_on(&pods, &format!("{node}{i}"), node, toleration(Some(0))).await;
            }
        }
        // One node every 4 s; two of four unhealthy stays under the 0.55 threshold.
        let _manager = tokio::spawn(controller_manager::run(client.clone(), options(0.25)));
        tokio::time::sleep(Duration::from_secs(5)).await;
        alive.lock().unwrap().remove("p");
        alive.lock().unwrap().remove("q");
        let first = eventually(15, "the first node's pods evicted", || async {
            for node in ["p", "q"] {
                if evicted(&pods, &format!("{node}0")).await {
                    return Some(node);
                }
            }
            None
        })
        .await;
        let at = Instant::now();
        let second = if first == "p" { "q" } else { "p" };
        assert!(!evicted(&pods, &format!("{second}0")).await, "not yet");
        // A node's pods go together (one pass deletes them one after the other).
        eventually(1, "the first node's other pod evicted", || async {
            evicted(&pods, &format!("{first}1")).await.then_some(())
        })
        .await;
        assert!(!evicted(&pods, &format!("{second}0")).await, "still not");
        eventually(15, "the second node's pods evicted", || async {
            (evicted(&pods, &format!("{second}0")).await
                && evicted(&pods, &format!("{second}1")).await)
                .then_some(())
        })
        .await;
        assert!(
            at.elapsed() >= Duration::from_secs(3),
            "spaced by the rate: {:?}",
            at.elapsed()
        );
    });
}

#[test]
fn node_ipam_gives_distinct_blocks_recovers_and_reuses_them() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let nodes: Api<Node> = Api::all(client.clone());
        let node = |name: &str, cidr: Option<&str>| -> Node {
            let mut spec = json!({});
            if let Some(cidr) = cidr {
                spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
            }
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
        };
        // Taken before the controller starts: recovered, never given again.
        nodes
            .create(&PostParams::default(), &node("old", Some("10.244.0.0/24")))
            .await
            .unwrap();
        let options = controller_manager::Options {
            controllers: vec!["nodeipam".into()],
            allocate_node_cidrs: Some(("10.244.0.0/16".into(), 24)),
            ..controller_manager::Options::default()
        };
        let _manager = tokio::spawn(controller_manager::run(client.clone(), options));
        for name in ["n1", "n2", "n3"] {
            nodes
                .create(&PostParams::default(), &node(name, None))
                .await
                .unwrap();
        }
        let cidr = |name: &'static str| {
            let nodes = nodes.clone();
            async move {
                let n = nodes.get(name).await.unwrap();
                let spec = n.spec.unwrap_or_default();
                let cidr = spec.pod_cidr?;
                assert_eq!(spec.pod_cidrs, Some(vec![cidr.clone()]));
                Some(cidr)
            }
        };
        let mut given = Vec::new();
        for name in ["n1", "n2", "n3"] {
            given.push(eventually(10, "a podCIDR", || cidr(name)).await);
        }
        let mut sorted = given.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"],
            "distinct, the taken one skipped"
        );
        // Released on deletion, and the lowest free block is given next.
        let freed = cidr("n2").await.unwrap();
        nodes.delete("n2", &DeleteParams::default()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        nodes
            .create(&PostParams::default(), &node("n4", None))
            .await
            .unwrap();
        assert_eq!(eventually(10, "n4's podCIDR", || cidr("n4")).await, freed);
    });
}
