//! `ferry up`, `ferry status` and `ferry down` end to end, for both stores (the embedded one, and
//! a local etcd with `--etcd`): a 3-node cluster in a temp data dir, driven by unmodified kubectl
//! (1.27, 1.33 and the `kubectl` dispatcher), the `kube` crate and the Python `kubernetes` client
//! through a Deployment's life: apply, rollout, spread, scale, rolling update, history, undo, a
//! deleted pod, `kubectl get -w`, a SIGKILLed controller-manager mid-rollout (restarted, the
//! rollout completes), the apiserver, etcd and scheduler SIGKILLed (each restarted), a SIGKILLed
//! kubelet (a machine that died: not restarted, its node goes down and its pods move), the whole
//! cluster stopped with `ferry down` and started again with every object kept, then deletion.
//! Also: `ferry up` fails cleanly on a data dir in use and on a taken port, and keeps its objects
//! in an etcd it does not run with `--etcd-servers`.
//!
//! Every `ferry` command gets `--data-dir <temp> --port <free> --no-kubeconfig-update --detach`,
//! and KUBECONFIG and HOME pointing into the temp dir: the real ~/.kube/config is never touched.
//! Whatever happens, the cluster is stopped at the end (`ferry down`, then SIGKILL for anything
//! left), and on failure the tails of its logs are printed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::Value;
use tests::apiserver::{kubectl_binary, kubectl_dispatcher};
use tests::cluster::kube_client_from;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const NODES: usize = 3;
const NS: &str = "e2e";

const K127: &str = "1.27";
const K133: &str = "1.33";
/// The `kubectl` on PATH (a dispatcher that runs the kubectl matching the server).
const DISPATCHER: &str = "dispatcher";

/// A Deployment (4 replicas, tolerating an unreachable or not-ready node for 2 s instead of
/// 300 s so that a dead node's pods move quickly), a Service and a ConfigMap.
const APP: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: e2e
  labels: {app: web}
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: e2e
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: e2e
data:
  greeting: hello
"#;

/// The Python `kubernetes` client against `ferry up`'s kubeconfig: the namespace's pods, the
/// nodes, and a ConfigMap created and read back. Args: KUBECONFIG NAMESPACE PODS NODES.
const PYTHON_CHECK: &str = r#"
import sys
from kubernetes import client, config

config.load_kube_config(config_file=sys.argv[1])
ns, want_pods, want_nodes = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
core = client.CoreV1Api()

pods = [p for p in core.list_namespaced_pod(ns, label_selector="app=web").items
        if p.metadata.deletion_timestamp is None]
assert len(pods) == want_pods, [p.metadata.name for p in pods]
for p in pods:
    assert p.status.phase == "Running", (p.metadata.name, p.status.phase)
    assert p.status.pod_ip, p.metadata.name
    assert p.spec.node_name and p.spec.node_name.startswith("ferry-node-"), p.spec.node_name

nodes = sorted(n.metadata.name for n in core.list_node().items)
assert len(nodes) == want_nodes, nodes

cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-python", labels={"from": "python"}),
                        data={"lang": "python"})
core.create_namespaced_config_map(ns, cm)
got = core.read_namespaced_config_map("from-python", ns)
assert got.data == {"lang": "python"}, got.data
print("python client ok:", len(pods), "pods on", nodes)
"#;

#[derive(Clone, Copy, Debug)]
enum Store {
    Embedded,
    /// `--etcd`: a local etcd, supervised.
    Etcd,
    /// `--etcd-servers`: an etcd someone else runs (given to [`Cluster::with_etcd_servers`]).
    External,
}

impl Store {
    /// The supervised components, as named in DIR/run and DIR/logs.
    fn components(self) -> Vec<String> {
        let mut names: Vec<String> = ["apiserver", "controller-manager", "scheduler"]
            .map(String::from)
            .into();
        if let Store::Etcd = self {
            names.push("etcd".into());
        }
        names.extend((1..=NODES).map(|i| format!("kubelet-{i}")));
        names
    }
}

#[test]
fn ferry_up_end_to_end_embedded() {
    scenario(Store::Embedded);
}

#[test]
fn ferry_up_end_to_end_etcd() {
    scenario(Store::Etcd);
}

#[test]
fn ferry_up_on_a_taken_port_fails_cleanly_embedded() {
    taken_port(Store::Embedded);
}

#[test]
fn ferry_up_on_a_taken_port_fails_cleanly_etcd() {
    taken_port(Store::Etcd);
}

// ---------------------------------------------------------------------------------------------
// The scenario.

fn scenario(store: Store) {
    let started = Instant::now();
    let mut steps = Steps::new(store);
    let cluster = Cluster::new(store, free_port());
    let k = Kubectl {
        kubeconfig: cluster.kubeconfig(),
        home: cluster.home.clone(),
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");

    // `ferry up --detach` returns once the cluster is ready.
    cluster.up_ok();
    steps.done("ferry up --detach");
    cluster.check_files();
    let client = runtime.block_on(kube_client_from(&cluster.kubeconfig()));
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = runtime
        .block_on(nodes.list(&ListParams::default()))
        .expect("list nodes with the kube crate");
    let ready_nodes: BTreeMap<String, String> = listed
        .items
        .iter()
        .map(|n| (n.metadata.name.clone().unwrap_or_default(), node_ready(n)))
        .collect();
    let want: BTreeMap<String, String> = (1..=NODES)
        .map(|i| (format!("ferry-node-{i}"), "True".to_owned()))
        .collect();
    assert_eq!(
        ready_nodes, want,
        "when `ferry up --detach` returns, all {NODES} nodes are registered and Ready"
    );
    for v in [K127, K133, DISPATCHER] {
        let out = k.ok(v, &["version", "-o", "json"]);
        assert!(out.contains("serverVersion"), "kubectl {v} version: {out}");
    }
    let out = k.ok(K127, &["get", "nodes", "--no-headers"]);
    assert_eq!(
        out.lines().filter(|l| l.contains(" Ready ")).count(),
        NODES,
        "kubectl get nodes:\n{out}"
    );
    cluster.check_status(&BTreeMap::new(), &[]);
    steps.done("files, nodes, ferry status");

    // A second `ferry up` on the same data dir fails, and leaves nothing behind.
    cluster.second_up_fails();
    steps.done("second ferry up on the same dir refused");

    // Namespace, then the app applied; the rollout completes; pods spread over the nodes.
    k.ok(K127, &["create", "namespace", NS]);
    let manifest = cluster.root().join("app.yaml");
    std::fs::write(&manifest, APP).expect("write the manifest");
    let out = k.ok(K133, &["apply", "-f", &manifest.display().to_string()]);
    for created in [
        "deployment.apps/web created",
        "service/web created",
        "configmap/settings created",
    ] {
        assert!(out.contains(created), "kubectl apply: {out}");
    }
    k.rollout_status(K133, 90);
    let pods = wait_web_pods(&k, 4, "nginx:1.27", 30);
    let spread: BTreeSet<&str> = pods.iter().map(|p| p.node.as_str()).collect();
    assert!(
        spread.len() >= 2,
        "4 replicas on {NODES} nodes land on at least 2 of them: {pods:#?}"
    );
    let svc = k.json(K133, &["get", "service", "web", "-n", NS, "-o", "json"]);
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap_or_default();
    assert!(
        !cluster_ip.is_empty() && cluster_ip != "None",
        "the Service has a cluster IP: {svc}"
    );
    wait_until(30, "the Service's endpoints list the 4 pods", || {
        let ep = k.json(K133, &["get", "endpoints", "web", "-n", NS, "-o", "json"]);
        let ips: BTreeSet<&str> = ep["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().into_iter().flatten())
            .filter_map(|a| a["ip"].as_str())
            .collect();
        (ips.len() == 4).then_some(()).ok_or_else(|| ep.to_string())
    });
    let greeting = k.ok(
        DISPATCHER,
        &[
            "get",
            "configmap",
            "settings",
            "-n",
            NS,
            "-o",
            "jsonpath={.data.greeting}",
        ],
    );
    assert_eq!(greeting, "hello");
    steps.done("namespace, apply, rollout status, spread, service, configmap");

    // `kubectl get -w` from now on; its lines are checked after the changes below.
    let watch = KubectlWatch::spawn(
        &k,
        DISPATCHER,
        &[
            "get",
            "pods",
            "-n",
            NS,
            "-l",
            "app=web",
            "-w",
            "--output-watch-events",
        ],
    );
    for pod in &pods {
        watch.wait_for(&pod.name, 30);
    }

    // Scale.
    k.ok(K127, &["scale", "deployment/web", "-n", NS, "--replicas=5"]);
    k.rollout_status(K127, 60);
    let pods = wait_web_pods(&k, 5, "nginx:1.27", 30);
    steps.done("kubectl scale");

    // The Python client.
    let out = run(
        {
            let mut cmd = Command::new("python3");
            cmd.arg("-c")
                .arg(PYTHON_CHECK)
                .arg(cluster.kubeconfig())
                .arg(NS)
                .arg("5")
                .arg(NODES.to_string());
            cmd
        },
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "the Python client check failed (is the `kubernetes` package installed? `pip install kubernetes`)\n{}",
        out.text()
    );
    print!("{}", out.stdout);
    let from_python = k.ok(
        K133,
        &[
            "get",
            "configmap",
            "from-python",
            "-n",
            NS,
            "-o",
            "jsonpath={.data.lang}",
        ],
    );
    assert_eq!(from_python, "python");
    steps.done("python client");

    // A rolling update, watched with the kube crate too.
    let seen = PodWatch::start(&runtime, &client);
    k.ok(
        K133,
        &[
            "set",
            "image",
            "deployment/web",
            "nginx=nginx:1.28",
            "-n",
            NS,
        ],
    );
    k.rollout_status(K127, 90);
    let updated = wait_web_pods(&k, 5, "nginx:1.28", 30);
    let rs = k.json(
        K133,
        &[
            "get",
            "replicasets",
            "-n",
            NS,
            "-l",
            "app=web",
            "-o",
            "json",
        ],
    );
    let sets = replica_sets(&rs);
    assert_eq!(
        sets.len(),
        2,
        "a rolling update leaves two ReplicaSets: {sets:?}"
    );
    assert!(
        sets.iter()
            .any(|s| s.image == "nginx:1.28" && s.replicas == 5 && s.ready == 5),
        "the new ReplicaSet runs all 5 pods: {sets:?}"
    );
    assert!(
        sets.iter()
            .any(|s| s.image == "nginx:1.27" && s.replicas == 0),
        "the old ReplicaSet is scaled to 0: {sets:?}"
    );
    for pod in &updated {
        assert!(
            !pods.iter().any(|old| old.name == pod.name),
            "every pod was replaced: {pod:?}"
        );
    }
    wait_until(
        20,
        "the kube crate's watch saw the 5 new pods Ready",
        || {
            let ready = seen.ready_with_image("nginx:1.28");
            updated
                .iter()
                .all(|p| ready.contains(&p.name))
                .then_some(())
                .ok_or_else(|| format!("ready with nginx:1.28: {ready:?}"))
        },
    );
    drop(seen);
    steps.done("kubectl set image, rolling update");

    // History, then undo.
    let history = k.ok(K127, &["rollout", "history", "deployment/web", "-n", NS]);
    assert_eq!(
        revisions(&history),
        BTreeSet::from([1, 2]),
        "rollout history:\n{history}"
    );
    k.ok(DISPATCHER, &["rollout", "undo", "deployment/web", "-n", NS]);
    k.rollout_status(K133, 90);
    let pods = wait_web_pods(&k, 5, "nginx:1.27", 30);
    let history = k.ok(K133, &["rollout", "history", "deployment/web", "-n", NS]);
    assert_eq!(
        revisions(&history),
        BTreeSet::from([2, 3]),
        "after an undo, revision 1 is revision 3:\n{history}"
    );
    steps.done("rollout history, rollout undo");

    // A deleted pod is replaced.
    let doomed = pods[0].name.clone();
    k.ok(K133, &["delete", "pod", &doomed, "-n", NS, "--timeout=60s"]);
    let pods = wait_web_pods(&k, 5, "nginx:1.27", 30);
    assert!(
        !pods.iter().any(|p| p.name == doomed),
        "{doomed} was replaced: {pods:#?}"
    );
    steps.done("pod deleted and replaced");

    // What `kubectl get -w` printed meanwhile: every pod of every step, and the deletion.
    watch.wait_for_event("DELETED", &doomed, 20);
    for pod in updated.iter().chain(&pods) {
        watch.wait_for_event("ADDED", &pod.name, 20);
    }
    watch.wait_for_event("MODIFIED", &pods[0].name, 20);
    drop(watch);
    steps.done("kubectl get -w saw the changes");

    // The controller-manager SIGKILLed mid-rollout: restarted, and the rollout completes.
    k.ok(
        K133,
        &[
            "set",
            "image",
            "deployment/web",
            "nginx=nginx:1.29",
            "-n",
            NS,
        ],
    );
    let state = k.json(K133, &["get", "deployment", "web", "-n", NS, "-o", "json"]);
    println!(
        "[{store:?}] killing the controller-manager; the Deployment's status: {}",
        state["status"]
    );
    let killed_at = Instant::now();
    cluster.kill_and_wait_restart("controller-manager");
    k.rollout_status(K133, 60);
    wait_web_pods(&k, 5, "nginx:1.29", 30);
    let took = killed_at.elapsed();
    assert!(
        took < Duration::from_secs(75),
        "the rollout completes within bounds after the controller-manager's restart: {took:?}"
    );
    println!("[{store:?}] rollout done {took:?} after the controller-manager was killed");
    steps.done("controller-manager killed mid-rollout");

    // The rest of the control plane SIGKILLed, one at a time: each is restarted and works.
    cluster.kill_and_wait_restart("apiserver");
    wait_until(30, "the API served again", || {
        let out = k.run(K133, &["get", "deployment", "web", "-n", NS]);
        out.status.success().then_some(()).ok_or_else(|| out.text())
    });
    if let Store::Etcd = store {
        cluster.kill_and_wait_restart("etcd");
        wait_until(30, "writes stored again", || {
            let out = k.run(K133, &["create", "configmap", "after-etcd", "-n", NS]);
            out.status.success().then_some(()).ok_or_else(|| out.text())
        });
    }
    cluster.kill_and_wait_restart("scheduler");
    k.ok(K133, &["scale", "deployment/web", "-n", NS, "--replicas=6"]);
    k.rollout_status(K133, 60);
    wait_web_pods(&k, 6, "nginx:1.29", 30);
    k.ok(K133, &["scale", "deployment/web", "-n", NS, "--replicas=5"]);
    wait_web_pods(&k, 5, "nginx:1.29", 30);
    let mut restarted = BTreeMap::from([
        ("controller-manager", 1),
        ("apiserver", 1),
        ("scheduler", 1),
    ]);
    if let Store::Etcd = store {
        restarted.insert("etcd", 1);
    }
    cluster.check_status(&restarted, &[]);
    steps.done("apiserver, etcd, scheduler killed and restarted");

    // A kubelet SIGKILLed: a machine that died. Not restarted; its node goes NotReady/Unknown
    // after the 40 s grace period and its pods are replaced on the other nodes.
    let pods = web_pods(&k, K133);
    let victim_index = [2, 1, 3]
        .into_iter()
        .find(|i| {
            live(&pods)
                .iter()
                .any(|p| p.node == format!("ferry-node-{i}"))
        })
        .expect("a node with pods");
    let victim = format!("ferry-node-{victim_index}");
    let kubelet = format!("kubelet-{victim_index}");
    let kubelet_pid = cluster.pid(&kubelet).expect("the kubelet's pid file");
    let killed_at = Instant::now();
    assert!(kill9(kubelet_pid), "kill -KILL {kubelet} ({kubelet_pid})");
    wait_until(100, &format!("{victim} NotReady or Unknown"), || {
        let node = runtime
            .block_on(nodes.get(&victim))
            .map_err(|e| e.to_string())?;
        let ready = node_ready(&node);
        (ready != "True").then_some(()).ok_or(ready)
    });
    println!(
        "[{store:?}] {victim} not Ready {:?} after its kubelet was killed",
        killed_at.elapsed()
    );
    let moved = wait_until(
        90,
        &format!("{victim}'s pods replaced on other nodes"),
        || {
            let pods = web_pods(&k, K133);
            let live = live(&pods);
            (live.len() == 5 && live.iter().all(|p| p.ready && p.node != victim))
                .then_some(live)
                .ok_or_else(|| format!("{pods:#?}"))
        },
    );
    println!(
        "[{store:?}] pods moved off {victim} {:?} after the kill: {:?}",
        killed_at.elapsed(),
        moved.iter().map(|p| &p.node).collect::<Vec<_>>()
    );
    match cluster.pid(&kubelet) {
        Some(pid) if pid != kubelet_pid => assert!(
            !alive(pid),
            "a kubelet killed by a signal is a dead machine and is not restarted; {kubelet} is now pid {pid}"
        ),
        _ => assert!(!alive(kubelet_pid), "{kubelet} was killed"),
    }
    let node = runtime.block_on(nodes.get(&victim)).expect("the node");
    assert_ne!(node_ready(&node), "True", "{victim} stays down");
    for i in (1..=NODES).filter(|i| *i != victim_index) {
        let other = runtime
            .block_on(nodes.get(&format!("ferry-node-{i}")))
            .expect("a node");
        assert_eq!(node_ready(&other), "True", "ferry-node-{i} is still Ready");
    }
    cluster.check_status(&restarted, &[&kubelet]);
    steps.done("kubelet killed, node down, pods moved");

    // `ferry down`, `ferry up`: every object is still there.
    cluster.down_ok();
    steps.done("ferry down");
    cluster.up_ok();
    steps.done("ferry up again");
    cluster.check_files();
    let client = runtime.block_on(kube_client_from(&cluster.kubeconfig()));
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = runtime
        .block_on(nodes.list(&ListParams::default()))
        .expect("list nodes");
    assert!(
        listed.items.len() == NODES && listed.items.iter().all(|n| node_ready(n) == "True"),
        "all nodes Ready again after `ferry up`: {:?}",
        listed
            .items
            .iter()
            .map(|n| (n.metadata.name.clone(), node_ready(n)))
            .collect::<Vec<_>>()
    );
    k.ok(K127, &["get", "namespace", NS]);
    let deployment = k.json(K133, &["get", "deployment", "web", "-n", NS, "-o", "json"]);
    assert_eq!(deployment["spec"]["replicas"], 5, "{deployment}");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.29",
        "{deployment}"
    );
    let svc2 = k.json(K133, &["get", "service", "web", "-n", NS, "-o", "json"]);
    assert_eq!(
        svc2["spec"]["clusterIP"], svc["spec"]["clusterIP"],
        "the Service kept its cluster IP"
    );
    assert_eq!(
        k.ok(
            K127,
            &[
                "get",
                "configmap",
                "settings",
                "-n",
                NS,
                "-o",
                "jsonpath={.data.greeting}"
            ]
        ),
        "hello"
    );
    k.ok(DISPATCHER, &["get", "configmap", "from-python", "-n", NS]);
    k.rollout_status(K133, 60);
    wait_web_pods(&k, 5, "nginx:1.29", 60);
    cluster.check_status(&BTreeMap::new(), &[]);
    steps.done("objects kept across down/up");

    // Deleting the Deployment removes its ReplicaSets and pods; deleting the namespace, the rest.
    k.ok(K127, &["delete", "deployment", "web", "-n", NS]);
    wait_until(60, "the Deployment's ReplicaSets and pods gone", || {
        let rs = k.json(
            K133,
            &[
                "get",
                "replicasets",
                "-n",
                NS,
                "-l",
                "app=web",
                "-o",
                "json",
            ],
        );
        let pods = web_pods(&k, K133);
        let rs_left = rs["items"].as_array().map_or(0, Vec::len);
        (rs_left == 0 && pods.is_empty())
            .then_some(())
            .ok_or_else(|| format!("{rs_left} ReplicaSets, pods {pods:#?}"))
    });
    k.ok(K133, &["get", "service", "web", "-n", NS]);
    k.ok(K133, &["delete", "namespace", NS, "--timeout=90s"]);
    wait_until(60, "the namespace gone", || {
        let out = k.run(K133, &["get", "namespace", NS]);
        (!out.status.success() && out.stderr.contains("NotFound"))
            .then_some(())
            .ok_or_else(|| out.text())
    });
    steps.done("deployment and namespace deleted");

    cluster.down_ok();
    cluster.check_kubeconfig_untouched();
    steps.done("ferry down");
    println!("[{store:?}] scenario passed in {:?}", started.elapsed());
}

/// `ferry up --etcd-servers`: the objects go to an etcd that `ferry up` does not run, and stay
/// there across `ferry down` and `ferry up`.
#[test]
fn ferry_up_with_etcd_servers() {
    let etcd = tests::etcd::EtcdServer::start();
    let cluster = Cluster::with_etcd_servers(etcd.endpoint());
    let k = Kubectl {
        kubeconfig: cluster.kubeconfig(),
        home: cluster.home.clone(),
    };
    cluster.up_ok();
    cluster.check_files();
    cluster.check_status(&BTreeMap::new(), &[]);
    k.ok(
        K133,
        &["create", "configmap", "kept", "--from-literal=in=etcd"],
    );
    cluster.down_ok();
    cluster.up_ok();
    let value = k.ok(
        K127,
        &["get", "configmap", "kept", "-o", "jsonpath={.data.in}"],
    );
    assert_eq!(value, "etcd");
    let out = k.ok(K133, &["get", "nodes", "--no-headers"]);
    assert_eq!(
        out.lines().filter(|l| l.contains(" Ready ")).count(),
        NODES,
        "kubectl get nodes:\n{out}"
    );
    cluster.down_ok();
    cluster.check_kubeconfig_untouched();
}

/// `ferry up --port <taken>` fails with a message naming the port, and leaves no process.
fn taken_port(store: Store) {
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind a port");
    let port = listener.local_addr().expect("its address").port();
    let cluster = Cluster::new(store, port);
    let ran = cluster.up();
    println!(
        "[{store:?}] ferry up on taken port {port}: {:?}\n{}",
        ran.took,
        ran.text()
    );
    assert!(
        !ran.status.success(),
        "`ferry up --port {port}` with the port taken must fail:\n{}",
        ran.text()
    );
    let message = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        message.contains(&port.to_string()) || message.to_lowercase().contains("in use"),
        "the failure names the port or says it is in use:\n{}",
        ran.text()
    );
    assert!(
        ran.pipes_closed,
        "the failed `ferry up` left its output open"
    );
    cluster.wait_nothing_left(15, "after a failed `ferry up`");
    cluster.check_kubeconfig_untouched();
    drop(listener);
}

// ---------------------------------------------------------------------------------------------
// The cluster: a data dir, the `ferry` commands, its files and processes.

struct Cluster {
    store: Store,
    port: u16,
    /// `None` once kept for inspection after a failure.
    root: Option<tempfile::TempDir>,
    data: PathBuf,
    home: PathBuf,
    /// What KUBECONFIG points at for every command (never written: --no-kubeconfig-update).
    env_kubeconfig: PathBuf,
    /// `--etcd-servers`, for [`Store::External`].
    etcd_servers: Option<String>,
}

impl Cluster {
    fn new(store: Store, port: u16) -> Cluster {
        let root = tempfile::Builder::new()
            .prefix("ferry-e2e-up-")
            .tempdir()
            .expect("a temp dir");
        let data = root.path().join("data");
        let home = root.path().join("home");
        std::fs::create_dir_all(&home).expect("create the home dir");
        let env_kubeconfig = root.path().join("env-kubeconfig");
        Cluster {
            store,
            port,
            data,
            home,
            env_kubeconfig,
            etcd_servers: None,
            root: Some(root),
        }
    }

    fn with_etcd_servers(urls: &str) -> Cluster {
        let mut cluster = Cluster::new(Store::External, free_port());
        cluster.etcd_servers = Some(urls.to_owned());
        cluster
    }

    fn root(&self) -> &Path {
        self.data.parent().expect("data is in root")
    }

    fn ferry(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(FERRY);
        cmd.args(args)
            .env("KUBECONFIG", &self.env_kubeconfig)
            .env("HOME", &self.home);
        cmd
    }

    fn up_args(&self, port: u16) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "up".into(),
            "--nodes".into(),
            NODES.to_string(),
            "--data-dir".into(),
            self.data.display().to_string(),
            "--port".into(),
            port.to_string(),
            "--no-kubeconfig-update".into(),
            "--detach".into(),
        ];
        match (self.store, &self.etcd_servers) {
            (Store::Etcd, _) => args.push("--etcd".into()),
            (Store::External, Some(urls)) => args.push(format!("--etcd-servers={urls}")),
            _ => {}
        }
        args
    }

    fn up(&self) -> Ran {
        let args = self.up_args(self.port);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(self.ferry(&args), Duration::from_secs(180))
    }

    /// `ferry up --detach`: exits 0, printing progress, its output closed when it returns.
    fn up_ok(&self) {
        let ran = self.up();
        println!(
            "[{:?}] ferry up took {:?}; stdout:\n{}",
            self.store, ran.took, ran.stdout
        );
        assert!(ran.status.success(), "ferry up failed:\n{}", ran.text());
        assert!(
            ran.pipes_closed,
            "`ferry up --detach` returned but its stdout/stderr stayed open (held by the detached \
             supervisor?): `$(ferry up --detach)` in a shell would hang\n{}",
            ran.text()
        );
        assert!(
            !ran.stdout.trim().is_empty(),
            "`ferry up` prints its progress on stdout:\n{}",
            ran.text()
        );
    }

    /// `ferry down` exits 0, and every process of the cluster exits.
    fn down_ok(&self) {
        let pids = self.pid_files();
        let ran = run(
            self.ferry(&["down", "--data-dir", &self.data.display().to_string()]),
            Duration::from_secs(90),
        );
        println!(
            "[{:?}] ferry down took {:?}:\n{}",
            self.store,
            ran.took,
            ran.text()
        );
        assert!(ran.status.success(), "ferry down failed:\n{}", ran.text());
        let still: Vec<_> = pids.iter().filter(|(_, pid)| alive(**pid)).collect();
        if !still.is_empty() {
            println!(
                "[{:?}] NOTE: still running right after `ferry down` returned: {still:?}",
                self.store
            );
        }
        self.wait_nothing_left(10, "after `ferry down`");
    }

    /// No process of this cluster is left: no pid from DIR/run alive, no process naming DIR.
    fn wait_nothing_left(&self, secs: u64, when: &str) {
        wait_until(secs, &format!("no process left {when}"), || {
            let pids: Vec<_> = self
                .pid_files()
                .into_iter()
                .filter(|(_, pid)| alive(*pid))
                .collect();
            let named = procs_mentioning(&self.data);
            (pids.is_empty() && named.is_empty())
                .then_some(())
                .ok_or_else(|| {
                    format!("alive from DIR/run: {pids:?}; processes naming DIR: {named:?}")
                })
        });
    }

    fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig")
    }

    /// DIR/run/<name>.pid.
    fn pid(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.data.join("run").join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Every DIR/run/*.pid, `up` included.
    fn pid_files(&self) -> BTreeMap<String, u32> {
        let Ok(entries) = std::fs::read_dir(self.data.join("run")) else {
            return BTreeMap::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(".pid")?.to_owned();
                let pid = self.pid(&name)?;
                Some((name, pid))
            })
            .collect()
    }

    fn up_log(&self) -> String {
        std::fs::read_to_string(self.data.join("logs/up.log")).unwrap_or_default()
    }

    /// The kubeconfig, the logs and the pid files of every component, as promised.
    fn check_files(&self) {
        let path = self.kubeconfig();
        let config = kube::config::Kubeconfig::read_from(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(
            config.current_context.as_deref(),
            Some("ferry"),
            "the kubeconfig's current context"
        );
        let context = config
            .contexts
            .iter()
            .find(|c| c.name == "ferry")
            .and_then(|c| c.context.clone())
            .expect("a context named ferry");
        let cluster = config
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .and_then(|c| c.cluster.clone())
            .expect("the context's cluster");
        assert_eq!(
            cluster.server.as_deref(),
            Some(format!("https://127.0.0.1:{}", self.port).as_str())
        );
        assert!(
            cluster.certificate_authority_data.is_some(),
            "the kubeconfig carries the CA"
        );
        let user = config
            .auth_infos
            .iter()
            .find(|a| Some(&a.name) == context.user.as_ref())
            .and_then(|a| a.auth_info.clone())
            .expect("the context's user");
        assert!(
            user.token.is_some() || user.client_certificate_data.is_some(),
            "the kubeconfig carries admin credentials"
        );
        for name in self.store.components() {
            let log = self.data.join("logs").join(format!("{name}.log"));
            assert!(log.is_file(), "{} exists", log.display());
            let pid = self
                .pid(&name)
                .unwrap_or_else(|| panic!("DIR/run/{name}.pid holds a pid"));
            assert!(alive(pid), "{name} (pid {pid}) is running");
            // mimalloc returns freed memory at once in the components `ferry up` starts.
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
                assert!(
                    environ
                        .split(|b| *b == 0)
                        .any(|v| v == b"MIMALLOC_PURGE_DELAY=0"),
                    "{name} runs with MIMALLOC_PURGE_DELAY=0"
                );
            }
        }
        if let Store::Etcd = self.store {
            let pid = self.pid("etcd").expect("etcd.pid");
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("etcd's executable");
            let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join("etcd"))
                .find(|p| p.is_file())
                .and_then(|p| std::fs::canonicalize(p).ok());
            assert_eq!(Some(exe), on_path, "--etcd runs the etcd on PATH");
        }
        let up = self
            .pid("up")
            .expect("DIR/run/up.pid holds the supervisor's pid");
        assert!(alive(up), "the supervisor (pid {up}) is running");
        assert!(
            self.data.join("logs/up.log").is_file(),
            "the detached supervisor logs to DIR/logs/up.log"
        );
    }

    /// `ferry status`: one line per component — name, PID, health, restarts. `restarts` gives
    /// the expected restart counts (0 for the others); `dead` components' PIDs are not checked,
    /// and with one the command may exit non-zero.
    fn check_status(&self, restarts: &BTreeMap<&str, u32>, dead: &[&str]) {
        let ran = run(
            self.ferry(&["status", "--data-dir", &self.data.display().to_string()]),
            Duration::from_secs(30),
        );
        // With a component down, `ferry status` may say so with its exit code too.
        assert!(
            ran.status.success() || !dead.is_empty(),
            "ferry status failed:\n{}",
            ran.text()
        );
        println!(
            "[{:?}] ferry status ({}):\n{}",
            self.store, ran.status, ran.stdout
        );
        if !matches!(self.store, Store::Etcd) {
            assert!(
                !ran.stdout.lines().any(|l| l.starts_with("etcd")),
                "no etcd with the embedded store:\n{}",
                ran.stdout
            );
        }
        for name in self.store.components() {
            let tokens: Vec<&str> = ran
                .stdout
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|t| t.first() == Some(&name.as_str()))
                .unwrap_or_else(|| panic!("`ferry status` lists {name}:\n{}", ran.stdout));
            if !dead.contains(&name.as_str()) {
                let pid = self.pid(&name).expect("a pid file").to_string();
                assert_eq!(
                    tokens.get(1),
                    Some(&pid.as_str()),
                    "`ferry status` shows {name}'s PID second:\n{}",
                    ran.stdout
                );
            }
            let want = restarts.get(name.as_str()).copied().unwrap_or(0);
            assert_eq!(
                tokens.last().and_then(|t| t.parse::<u32>().ok()),
                Some(want),
                "`ferry status` shows {name}'s restarts last:\n{}",
                ran.stdout
            );
        }
    }

    /// SIGKILLs component `name`; waits until the supervisor has started a new one (a new pid
    /// in DIR/run) and logged the restart in up.log.
    fn kill_and_wait_restart(&self, name: &str) {
        let old = self
            .pid(name)
            .unwrap_or_else(|| panic!("DIR/run/{name}.pid"));
        let log_before = self.up_log().len();
        let killed_at = Instant::now();
        assert!(kill9(old), "kill -KILL {name} ({old})");
        let new = wait_until(30, &format!("a new {name} started"), || {
            match self.pid(name) {
                Some(pid) if pid != old && alive(pid) => Ok(pid),
                other => Err(format!("{name}.pid: {other:?}")),
            }
        });
        wait_until(30, &format!("up.log reports {name}'s restart"), || {
            let log = self.up_log();
            let since = log.get(log_before..).unwrap_or(&log).to_lowercase();
            (since.contains(name) && since.contains("restart"))
                .then_some(())
                .ok_or_else(|| format!("up.log since the kill:\n{since}"))
        });
        let log = self.up_log();
        println!(
            "[{:?}] {name} {old} killed -> {new}, {:?}; up.log: {}",
            self.store,
            killed_at.elapsed(),
            log.get(log_before..).unwrap_or_default().trim()
        );
    }

    /// A second `ferry up` on the data dir in use (another port) fails clearly, changes nothing
    /// and leaves no process.
    fn second_up_fails(&self) {
        let pids = self.pid_files();
        let procs = procs_mentioning(&self.data);
        let kubeconfig = std::fs::read(self.kubeconfig()).expect("read the kubeconfig");
        let args = self.up_args(free_port());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = run(self.ferry(&args), Duration::from_secs(60));
        println!(
            "[{:?}] second ferry up on the same dir: {:?}\n{}",
            self.store,
            ran.took,
            ran.text()
        );
        assert!(
            !ran.status.success(),
            "a second `ferry up` on a data dir in use must fail:\n{}",
            ran.text()
        );
        let message = format!("{}{}", ran.stdout, ran.stderr).to_lowercase();
        assert!(
            ["already", "in use", "running", "locked"]
                .iter()
                .any(|w| message.contains(w)),
            "the failure says the data dir is in use:\n{}",
            ran.text()
        );
        wait_until(10, "no process left by the second `ferry up`", || {
            let now = procs_mentioning(&self.data);
            (now == procs)
                .then_some(())
                .ok_or_else(|| format!("before {procs:?}, now {now:?}"))
        });
        assert_eq!(self.pid_files(), pids, "the pid files are unchanged");
        for (name, pid) in &pids {
            assert!(alive(*pid), "{name} (pid {pid}) still runs");
        }
        assert!(
            std::fs::read(self.kubeconfig()).expect("read the kubeconfig") == kubeconfig,
            "the kubeconfig is unchanged"
        );
    }

    /// --no-kubeconfig-update: neither $KUBECONFIG nor ~/.kube/config was written.
    fn check_kubeconfig_untouched(&self) {
        assert!(
            !self.env_kubeconfig.exists(),
            "--no-kubeconfig-update, yet {} was written",
            self.env_kubeconfig.display()
        );
        assert!(
            !self.home.join(".kube/config").exists(),
            "--no-kubeconfig-update, yet ~/.kube/config was written"
        );
    }

    /// The last lines of every log, for a failure's report.
    fn dump_logs(&self) {
        let Ok(entries) = std::fs::read_dir(self.data.join("logs")) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "----- {} (last {} lines)\n{}",
                path.display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            self.dump_logs();
        }
        let down = try_run(
            self.ferry(&["down", "--data-dir", &self.data.display().to_string()]),
            Duration::from_secs(60),
        );
        if failed && let Ok(down) = &down {
            eprintln!("ferry down (cleanup):\n{}", down.text());
        }
        // Whatever is left: killed by pid, never by name.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut left: BTreeSet<u32> = self
                .pid_files()
                .into_values()
                .filter(|pid| alive(*pid))
                .collect();
            left.extend(procs_mentioning(&self.data));
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("killing what `ferry down` left: {left:?}");
                for pid in left {
                    let _ = kill9(pid);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if failed && let Some(root) = self.root.take() {
            eprintln!("the cluster's files are kept in {}", root.keep().display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kubectl.

struct Kubectl {
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Kubectl {
    fn command(&self, version: &str, args: &[&str]) -> Command {
        let binary = if version == DISPATCHER {
            kubectl_dispatcher()
        } else {
            kubectl_binary(version)
        };
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.home.join(format!("kube-cache-{version}")).display()
            ))
            .args(args)
            .env("HOME", &self.home)
            .env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    fn run(&self, version: &str, args: &[&str]) -> Ran {
        run(self.command(version, args), Duration::from_secs(150))
    }

    /// Runs kubectl, panicking with its output unless it succeeds; returns its stdout.
    fn ok(&self, version: &str, args: &[&str]) -> String {
        let ran = self.run(version, args);
        assert!(
            ran.status.success(),
            "kubectl {version} {args:?}:\n{}",
            ran.text()
        );
        ran.stdout
    }

    fn json(&self, version: &str, args: &[&str]) -> Value {
        let out = self.ok(version, args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("kubectl {args:?}: not JSON ({e}): {out}"))
    }

    fn rollout_status(&self, version: &str, secs: u64) {
        self.ok(
            version,
            &[
                "rollout",
                "status",
                "deployment/web",
                "-n",
                NS,
                &format!("--timeout={secs}s"),
            ],
        );
    }
}

/// A `kubectl get -w` running in the background, its lines collected.
struct KubectlWatch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl KubectlWatch {
    fn spawn(k: &Kubectl, version: &str, args: &[&str]) -> KubectlWatch {
        let mut child = k
            .command(version, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl get -w");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        KubectlWatch { child, lines }
    }

    fn wait_for(&self, needle: &str, secs: u64) {
        wait_until(secs, &format!("kubectl get -w prints {needle}"), || {
            let lines = self.lines.lock().expect("lines");
            lines
                .iter()
                .any(|l| l.contains(needle))
                .then_some(())
                .ok_or_else(|| lines.join("\n"))
        });
    }

    /// A line `EVENT NAME ...` (with --output-watch-events).
    fn wait_for_event(&self, event: &str, name: &str, secs: u64) {
        wait_until(
            secs,
            &format!("kubectl get -w prints {event} {name}"),
            || {
                let lines = self.lines.lock().expect("lines");
                lines
                    .iter()
                    .any(|l| {
                        let mut t = l.split_whitespace();
                        t.next() == Some(event) && t.next() == Some(name)
                    })
                    .then_some(())
                    .ok_or_else(|| lines.join("\n"))
            },
        );
    }
}

impl Drop for KubectlWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pod of the Deployment, as kubectl shows it.
#[derive(Debug, Clone)]
struct PodInfo {
    name: String,
    node: String,
    image: String,
    phase: String,
    ready: bool,
    ip: String,
    terminating: bool,
}

fn web_pods(k: &Kubectl, version: &str) -> Vec<PodInfo> {
    let list = k.json(
        version,
        &["get", "pods", "-n", NS, "-l", "app=web", "-o", "json"],
    );
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| PodInfo {
            name: p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            node: p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            image: p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            phase: p["status"]["phase"].as_str().unwrap_or_default().to_owned(),
            ready: p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True"),
            ip: p["status"]["podIP"].as_str().unwrap_or_default().to_owned(),
            terminating: !p["metadata"]["deletionTimestamp"].is_null(),
        })
        .collect()
}

fn live(pods: &[PodInfo]) -> Vec<PodInfo> {
    pods.iter().filter(|p| !p.terminating).cloned().collect()
}

/// Waits until exactly `count` pods live, all with `image`, Running, Ready, with an IP, on one of
/// the cluster's nodes.
fn wait_web_pods(k: &Kubectl, count: usize, image: &str, secs: u64) -> Vec<PodInfo> {
    wait_until(
        secs,
        &format!("{count} web pods Running and Ready with {image}"),
        || {
            let pods = web_pods(k, K133);
            let live = live(&pods);
            let good = live.len() == count
                && live.iter().all(|p| {
                    p.image == image
                        && p.phase == "Running"
                        && p.ready
                        && !p.ip.is_empty()
                        && p.node.starts_with("ferry-node-")
                });
            good.then_some(live).ok_or_else(|| format!("{pods:#?}"))
        },
    )
}

#[derive(Debug)]
struct ReplicaSetInfo {
    image: String,
    replicas: i64,
    ready: i64,
}

fn replica_sets(list: &Value) -> Vec<ReplicaSetInfo> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rs| ReplicaSetInfo {
            image: rs["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            replicas: rs["spec"]["replicas"].as_i64().unwrap_or(-1),
            ready: rs["status"]["readyReplicas"].as_i64().unwrap_or(0),
        })
        .collect()
}

/// The revision numbers in `kubectl rollout history`.
fn revisions(history: &str) -> BTreeSet<u32> {
    history
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The kube crate.

fn node_ready(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

/// A `kube` watch of the namespace's pods, recording which it saw Ready with which image.
struct PodWatch {
    seen: Arc<Mutex<BTreeSet<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatch {
    fn start(runtime: &tokio::runtime::Runtime, client: &kube::Client) -> PodWatch {
        let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let sink = Arc::clone(&seen);
        let task = runtime.spawn(async move {
            // With back-off: errors (the cluster stopped) must not make this a busy loop that
            // never yields, which neither `abort` nor the runtime's shutdown could stop.
            let mut events = watcher(pods, watcher::Config::default().labels("app=web"))
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(event) = events.next().await {
                let Ok(pod) = event else { continue };
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                let image = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                if ready {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    sink.lock().expect("seen").insert((name, image));
                }
            }
        });
        PodWatch { seen, task }
    }

    fn ready_with_image(&self, image: &str) -> BTreeSet<String> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|(_, i)| i == image)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Processes, commands, waiting.

/// A finished command.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// Whether stdout and stderr reached EOF soon after the command exited (a detached daemon
    /// holding them would keep a caller reading them waiting).
    pipes_closed: bool,
    took: Duration,
}

impl Ran {
    fn text(&self) -> String {
        format!(
            "{}\n--- stdout:\n{}--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Output read in the background, as it comes.
struct Collected {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: Arc<AtomicBool>,
}

impl Collected {
    fn start(mut from: impl std::io::Read + Send + 'static) -> Collected {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (sink, flag) = (Arc::clone(&bytes), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().expect("output").extend_from_slice(&buf[..n]),
                }
            }
            flag.store(true, Ordering::SeqCst);
        });
        Collected { bytes, done }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().expect("output")).into_owned()
    }

    fn done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

/// Runs `cmd` (no stdin), killing it after `timeout`.
fn try_run(mut cmd: Command, timeout: Duration) -> Result<Ran, String> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let out = Collected::start(child.stdout.take().expect("piped stdout"));
    let err = Collected::start(child.stderr.take().expect("piped stderr"));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{what} did not finish within {timeout:?}\n--- stdout so far:\n{}--- stderr so far:\n{}",
                out.text(),
                err.text()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let closed_by = Instant::now() + Duration::from_secs(3);
    while !(out.done() && err.done()) && Instant::now() < closed_by {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Ran {
        status,
        stdout: out.text(),
        stderr: err.text(),
        pipes_closed: out.done() && err.done(),
        took,
    })
}

fn run(cmd: Command, timeout: Duration) -> Ran {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `check` every 250 ms until it returns `Ok`; after `secs`, panics with `what` and the
/// last `Err` (what was seen instead).
fn wait_until<T>(secs: u64, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {secs} s: {what}; last seen:\n{last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("");
    !matches!(state, "Z" | "X" | "x" | "")
}

/// `kill -KILL pid` (the workspace forbids unsafe code, so no libc::kill); whether it worked.
fn kill9(pid: u32) -> bool {
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Live processes whose command line names `dir` (this test's own temp dir: its cluster's).
fn procs_mentioning(dir: &Path) -> BTreeSet<u32> {
    let needle = dir.display().to_string();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(&needle)
                })
                .unwrap_or(false)
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Prints how long each step took.
struct Steps {
    store: Store,
    last: Instant,
}

impl Steps {
    fn new(store: Store) -> Steps {
        Steps {
            store,
            last: Instant::now(),
        }
    }

    fn done(&mut self, what: &str) {
        println!("[{:?}] step {what}: {:?}", self.store, self.last.elapsed());
        self.last = Instant::now();
    }
}
