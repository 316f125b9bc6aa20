//! The scheduler against a real apiserver: Node objects stand in for kubelets (nothing here runs
//! pods; placement is the scheduler's whole job), the scheduler runs in this process as `ferry
//! scheduler` runs it, and every check reads what a user reads: `spec.nodeName`, the
//! `PodScheduled` condition and the `FailedScheduling` events.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client};
use tests::etcd::EtcdServer;

/// Creates a Node as a kubelet registers one: labels, taints and allocatable resources.
async fn node(client: &Client, name: &str, cpu: &str, labels: Value, taints: Value) {
    let mut all_labels = json!({"kubernetes.io/hostname": name});
    if let (Some(all), Some(extra)) = (all_labels.as_object_mut(), labels.as_object()) {
        all.extend(extra.clone());
    }
    let resources = json!({"cpu": cpu, "memory": "8Gi", "pods": "110"});
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": all_labels},
        "spec": {"taints": taints},
        "status": {"capacity": resources, "allocatable": resources,
                   "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .expect("a Node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create a node");
}

/// A pod of one container requesting `cpu`, with `extra` merged into its spec.
fn pod(name: &str, cpu: &str, labels: Value, extra: Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": spec}))
        .expect("a Pod")
}

async fn create(pods: &Api<Pod>, pod: &Pod) {
    pods.create(&PostParams::default(), pod)
        .await
        .expect("create a pod");
}

/// Runs the scheduler until the test's runtime ends.
fn start_scheduler(client: &Client) {
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(error) = scheduler::run(client, scheduler::Options::default(), None).await {
            panic!("the scheduler stopped: {error}");
        }
    });
}

/// Where pod `name` is bound, once it is.
async fn bound(pods: &Api<Pod>, name: &str) -> String {
    eventually(20, &format!("pod {name} bound"), || async {
        pods.get(name).await.ok()?.spec?.node_name
    })
    .await
}

/// The `PodScheduled=False` message of pod `name`, once the scheduler has written one.
async fn unschedulable(pods: &Api<Pod>, name: &str) -> String {
    eventually(
        20,
        &format!("pod {name} reported unschedulable"),
        || async {
            let pod = pods.get(name).await.ok()?;
            let condition = pod
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable"))
                .then_some(condition.message?)
        },
    )
    .await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a runtime")
}

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Six 500m pods created at once on three 1-CPU nodes fill them exactly: assumed pods count
/// from the moment they are placed, so none is over-committed while binds are in flight. The
/// seventh, and a 2-CPU pod, get kube-scheduler's aggregated message, as a condition and as an
/// event; a 4-CPU node appearing places both at once.
fn fit_and_overflow(backend: Backend<'_>) {
    let server = TestApiServer::start(backend);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        for name in ["n1", "n2", "n3"] {
            node(&client, name, "1", json!({}), json!([])).await;
        }
        let taint = json!([{"key": UNREACHABLE, "effect": "NoSchedule"}]);
        for name in ["n4", "n5"] {
            node(&client, name, "4", json!({}), taint.clone()).await;
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        for i in 0..6 {
            create(
                &pods,
                &pod(&format!("fill-{i}"), "500m", json!({}), json!({})),
            )
            .await;
        }
        start_scheduler(&client);
        let mut per_node: HashMap<String, usize> = HashMap::new();
        for i in 0..6 {
            *per_node
                .entry(bound(&pods, &format!("fill-{i}")).await)
                .or_default() += 1;
        }
        assert_eq!(
            per_node,
            HashMap::from([("n1".into(), 2), ("n2".into(), 2), ("n3".into(), 2)]),
            "two 500m pods on each 1-CPU node, none on the tainted ones"
        );

        create(&pods, &pod("seventh", "500m", json!({}), json!({}))).await;
        create(&pods, &pod("big", "2", json!({}), json!({}))).await;
        let expected = format!(
            "0/5 nodes are available: 2 node(s) had untolerated taint {{{UNREACHABLE}: }}, \
             3 Insufficient cpu. preemption: 0/5 nodes are available: \
             2 Preemption is not helpful for scheduling., \
             3 No preemption victims found for incoming pod.."
        );
        assert_eq!(unschedulable(&pods, "seventh").await, expected);
        assert_eq!(unschedulable(&pods, "big").await, expected);
        let events: Api<Event> = Api::namespaced(client.clone(), "default");
        eventually(10, "a FailedScheduling event for big", || async {
            let list = events.list(&ListParams::default()).await.ok()?.items;
            list.iter()
                .any(|e| {
                    e.involved_object.name.as_deref() == Some("big")
                        && e.reason.as_deref() == Some("FailedScheduling")
                        && e.type_.as_deref() == Some("Warning")
                        && e.message.as_deref() == Some(expected.as_str())
                        && e.source.as_ref().and_then(|s| s.component.as_deref())
                            == Some("default-scheduler")
                })
                .then_some(())
        })
        .await;

        // A fitting node: the parked pods come back at once (no waiting for the flush).
        node(&client, "n6", "4", json!({}), json!([])).await;
        let started = std::time::Instant::now();
        assert_eq!(bound(&pods, "big").await, "n6");
        assert_eq!(bound(&pods, "seventh").await, "n6");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "placed {:?} after the node appeared",
            started.elapsed()
        );
        let big = pods.get("big").await.expect("get big");
        let condition = big
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "PodScheduled"))
            .expect("a PodScheduled condition");
        assert_eq!(condition.status, "True");
        eventually(10, "a Scheduled event for big", || async {
            let list = events.list(&ListParams::default()).await.ok()?.items;
            list.iter()
                .any(|e| {
                    e.involved_object.name.as_deref() == Some("big")
                        && e.reason.as_deref() == Some("Scheduled")
                        && e.message.as_deref() == Some("Successfully assigned default/big to n6")
                })
                .then_some(())
        })
        .await;
    });
}

#[test]
fn pods_fit_overflow_with_kubes_message_and_wait_for_a_node_on_the_embedded_store() {
    fit_and_overflow(Backend::Embedded);
}

#[test]
fn pods_fit_overflow_with_kubes_message_and_wait_for_a_node_on_etcd() {
    let etcd = EtcdServer::start();
    fit_and_overflow(Backend::Etcd(&etcd));
}

#[test]
fn node_selectors_affinity_taints_and_tolerations() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        node(&client, "ssd", "2", json!({"disk": "ssd", "zone": "a"}), json!([])).await;
        let gpu = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
        node(&client, "gpu", "2", json!({"zone": "b", "gen": "5"}), gpu).await;
        node(&client, "plain", "2", json!({"zone": "c", "gen": "3"}), json!([])).await;
        start_scheduler(&client);
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let zone_in = |zones: Value| {
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": zones}]}]}}})
        };
        let tolerate_gpu =
            json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);

        create(&pods, &pod("wants-ssd", "100m", json!({}), json!({"nodeSelector": {"disk": "ssd"}}))).await;
        // Zones b and c, but b is tainted: c.
        create(&pods, &pod("b-or-c", "100m", json!({}), json!({"affinity": zone_in(json!(["b", "c"]))}))).await;
        // Tolerating the taint and wanting zone b: b.
        create(&pods, &pod("gpu-job", "100m", json!({}),
            json!({"affinity": zone_in(json!(["b"])), "tolerations": tolerate_gpu}))).await;
        // Gt on a numeric label.
        let newer = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]}}});
        create(&pods, &pod("newer", "100m", json!({}), json!({"affinity": newer, "tolerations": tolerate_gpu}))).await;
        // Zone b without the toleration: nowhere.
        create(&pods, &pod("b-untolerated", "100m", json!({}), json!({"nodeSelector": {"zone": "b"}}))).await;
        // A preferred term decides between two fitting nodes.
        let prefer_c = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["c"]}]}}]}});
        create(&pods, &pod("prefers-c", "100m", json!({}), json!({"affinity": prefer_c}))).await;

        assert_eq!(bound(&pods, "wants-ssd").await, "ssd");
        assert_eq!(bound(&pods, "b-or-c").await, "plain");
        assert_eq!(bound(&pods, "gpu-job").await, "gpu");
        assert_eq!(bound(&pods, "newer").await, "gpu");
        assert_eq!(bound(&pods, "prefers-c").await, "plain");
        assert_eq!(
            unschedulable(&pods, "b-untolerated").await,
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
             2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are \
             available: 3 Preemption is not helpful for scheduling.."
        );
        // Pods that name another scheduler are left alone.
        create(&pods, &pod("other", "100m", json!({}), json!({"schedulerName": "someone-else"}))).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let other = pods.get("other").await.expect("get other");
        assert_eq!(other.spec.and_then(|s| s.node_name), None);
        assert!(
            other.status.and_then(|s| s.conditions).unwrap_or_default().is_empty(),
            "not touched"
        );
    });
}

#[test]
fn topology_spread_across_zones_and_anti_affinity_by_hostname() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        // Zone a has three nodes, b and c one each: without the constraint, least-allocated
        // scoring alone would put more pods in zone a.
        for (name, zone) in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c")] {
            node(&client, name, "8", json!({"topology.kubernetes.io/zone": zone}), json!([])).await;
        }
        start_scheduler(&client);
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "spread"}}}]});
        for i in 0..6 {
            create(&pods, &pod(&format!("spread-{i}"), "100m", json!({"app": "spread"}), spread.clone())).await;
        }
        let mut zones: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..6 {
            let node = bound(&pods, &format!("spread-{i}")).await;
            *zones.entry(node[..1].to_owned()).or_default() += 1;
        }
        assert_eq!(
            zones,
            BTreeMap::from([("a".into(), 2), ("b".into(), 2), ("c".into(), 2)]),
            "two per zone"
        );

        let apart = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "solo"}}}]}}});
        for i in 0..6 {
            create(&pods, &pod(&format!("solo-{i}"), "100m", json!({"app": "solo"}), apart.clone())).await;
        }
        let mut hosts = Vec::new();
        for i in 0..5 {
            hosts.push(bound(&pods, &format!("solo-{i}")).await);
        }
        hosts.sort();
        hosts.dedup();
        assert_eq!(hosts.len(), 5, "one per node: {hosts:?}");
        let sixth = unschedulable(&pods, "solo-5").await;
        assert_eq!(
            sixth,
            "0/5 nodes are available: 5 node(s) didn't match pod anti-affinity rules. \
             preemption: 0/5 nodes are available: 5 No preemption victims found for incoming pod.."
        );
        // One solo pod goes away: the sixth takes its place.
        let freed = pods.get("solo-0").await.expect("get").spec.and_then(|s| s.node_name);
        pods.delete("solo-0", &DeleteParams::default().grace_period(0))
            .await
            .expect("delete solo-0");
        assert_eq!(Some(bound(&pods, "solo-5").await), freed);
    });
}

#[test]
fn a_replicasets_pods_spread_over_nodes_by_default() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        for name in ["w1", "w2", "w3"] {
            node(&client, name, "4", json!({}), json!([])).await;
        }
        // One node already runs an unrelated pod: default spreading still puts one replica on
        // each node.
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        create(
            &pods,
            &pod("unrelated", "0", json!({}), json!({"nodeName": "w1"})),
        )
        .await;
        start_scheduler(&client);
        let manager_client = client.clone();
        tokio::spawn(async move {
            let _ = controller_manager::run(manager_client, controller_manager::Options::default())
                .await;
        });
        let set: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .expect("a ReplicaSet");
        Api::<ReplicaSet>::namespaced(client.clone(), "default")
            .create(&PostParams::default(), &set)
            .await
            .expect("create the ReplicaSet");
        let nodes = eventually(20, "3 replicas bound", || async {
            let list = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?
                .items;
            let mut nodes: Vec<String> =
                list.into_iter().filter_map(|p| p.spec?.node_name).collect();
            (nodes.len() == 3).then(|| {
                nodes.sort();
                nodes
            })
        })
        .await;
        assert_eq!(nodes, ["w1", "w2", "w3"]);
    });
}

#[test]
fn a_higher_priority_pod_preempts_a_lower_one() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        node(&client, "only", "1", json!({}), json!([])).await;
        let classes = server.write_manifest(
            "classes.yaml",
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n---\n\
             apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n",
            "default",
        );
        server.kubectl_ok("1.33", &["apply", "-f", &classes]);
        start_scheduler(&client);
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        create(&pods, &pod("batch", "800m", json!({}), json!({"priorityClassName": "low"}))).await;
        assert_eq!(bound(&pods, "batch").await, "only");
        assert_eq!(
            pods.get("batch").await.expect("get").spec.and_then(|s| s.priority),
            Some(10)
        );

        // Play the kubelet for the victim: once it is being deleted, finish the deletion.
        let kubelet_pods = pods.clone();
        let kubelet = tokio::spawn(async move {
            loop {
                if let Ok(p) = kubelet_pods.get("batch").await
                    && p.metadata.deletion_timestamp.is_some()
                {
                    let _ = kubelet_pods
                        .delete("batch", &DeleteParams::default().grace_period(0))
                        .await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        create(&pods, &pod("urgent", "800m", json!({}), json!({"priorityClassName": "high"}))).await;
        assert_eq!(bound(&pods, "urgent").await, "only");
        kubelet.await.expect("the victim was deleted");
        assert!(pods.get_opt("batch").await.expect("get").is_none(), "the victim is gone");
        let urgent = pods.get("urgent").await.expect("get urgent");
        assert_eq!(
            urgent.status.and_then(|s| s.nominated_node_name).as_deref(),
            Some("only")
        );
        let events: Api<Event> = Api::namespaced(client.clone(), "default");
        let preempted = events
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .find(|e| {
                e.involved_object.name.as_deref() == Some("batch")
                    && e.reason.as_deref() == Some("Preempted")
            })
            .expect("a Preempted event for the victim");
        assert!(
            preempted.message.as_deref().unwrap_or_default().contains("on node only"),
            "{preempted:?}"
        );

        // A pod of equal priority does not preempt: it waits, told why.
        create(&pods, &pod("peer", "800m", json!({}), json!({"priorityClassName": "high"}))).await;
        assert_eq!(
            unschedulable(&pods, "peer").await,
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
             1 No preemption victims found for incoming pod.."
        );
        assert!(pods.get_opt("urgent").await.expect("get").is_some());
    });
}
