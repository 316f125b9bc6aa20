//! The simulated kubelet against a real apiserver, with the scheduler and the controller-manager
//! in this process as their `ferry` subcommands run them: what a user sees through kubectl —
//! nodes Ready, rollouts completing, pods with IPs from their node's CIDR, graceful deletion
//! finished by the kubelet, and the simulated behaviour pods ask for through `sim.ferry.dev/`
//! annotations (exits, crash loops, failing readiness, start-up delays).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kubelet::node::Cidr;
use serde_json::{Value, json};
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a runtime")
}

/// Runs the kubelet with `nodes` nodes (`node-0` ..) and short timers until the test ends.
fn start_kubelet(client: &Client, nodes: usize) {
    let options = kubelet::Options {
        node_names: kubelet::Options::numbered_nodes("node", nodes),
        heartbeat_interval: Duration::from_secs(1),
        pod_startup_delay: Duration::from_millis(200),
        crash_loop_backoff: Duration::from_secs(1),
        ..kubelet::Options::default()
    };
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(error) = kubelet::run(client, options).await {
            panic!("the kubelet stopped: {error}");
        }
    });
}

fn start_scheduler_and_controllers(client: &Client) {
    let scheduler = client.clone();
    tokio::spawn(async move {
        if let Err(error) = scheduler::run(scheduler, scheduler::Options::default(), None).await {
            panic!("the scheduler stopped: {error}");
        }
    });
    let manager = client.clone();
    tokio::spawn(async move {
        if let Err(error) =
            controller_manager::run(manager, controller_manager::Options::default()).await
        {
            panic!("the controller-manager stopped: {error}");
        }
    });
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: NS
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
      - name: setup
        image: busybox:1.36
      containers:
      - name: web
        image: nginx:1.27
        resources:
          requests: {cpu: 100m, memory: 64Mi}
        readinessProbe:
          httpGet: {port: 80}
          initialDelaySeconds: 1
";

/// A Deployment on three kubelet nodes rolls out: `kubectl rollout status` succeeds, the nodes
/// are Ready with fresh Leases, and every pod runs with an IP from its node's pod CIDR.
#[test]
fn deployment_rolls_out_on_three_nodes() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        start_kubelet(&client, 3);
        start_scheduler_and_controllers(&client);
        eventually(20, "three nodes registered", || async {
            let nodes = server.kubectl_get("1.33", "nodes", "default");
            (items(&nodes).len() == 3).then_some(())
        })
        .await;
        let manifest = server.write_manifest("web.yaml", DEPLOYMENT, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        server.kubectl_ok(
            "1.33",
            &["rollout", "status", "deployment/web", "--timeout=60s"],
        );

        let nodes = items(&server.kubectl_get("1.33", "nodes", "default"));
        assert_eq!(nodes.len(), 3);
        let mut cidrs = std::collections::HashMap::new();
        for node in &nodes {
            let name = node["metadata"]["name"]
                .as_str()
                .expect("a name")
                .to_owned();
            let ready = condition(node, "Ready").expect("a Ready condition");
            assert_eq!(ready["status"], "True", "{name}: {ready}");
            assert_eq!(ready["reason"], "KubeletReady");
            assert_eq!(node["metadata"]["labels"]["kubernetes.io/hostname"], name);
            assert_eq!(node["metadata"]["labels"]["kubernetes.io/os"], "linux");
            assert_eq!(node["status"]["allocatable"]["pods"], "110");
            let cidr = Cidr::parse(node["spec"]["podCIDR"].as_str().expect("a podCIDR"))
                .expect("an IPv4 CIDR");
            cidrs.insert(name, cidr);
        }
        assert_eq!(
            cidrs.values().collect::<HashSet<_>>().len(),
            3,
            "distinct pod CIDRs: {cidrs:?}"
        );

        // Every node has a Lease renewed within the last few heartbeats.
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        for name in cidrs.keys() {
            let lease = leases.get(name).await.expect("the node's Lease");
            let spec = lease.spec.expect("a Lease spec");
            assert_eq!(spec.holder_identity.as_deref(), Some(name.as_str()));
            assert_eq!(spec.lease_duration_seconds, Some(40));
            let renewed = spec.renew_time.expect("a renewTime").0;
            let age = jiff::Timestamp::now().duration_since(renewed);
            assert!(
                age < jiff::SignedDuration::from_secs(5),
                "{name}'s lease renewed {age:?} ago"
            );
        }

        let pods = items(&server.kubectl_get("1.33", "pods", "default"));
        assert_eq!(pods.len(), 3);
        let mut ips = HashSet::new();
        for pod in &pods {
            let node = pod["spec"]["nodeName"].as_str().expect("bound");
            let status = &pod["status"];
            assert_eq!(status["phase"], "Running");
            let ip: Ipv4Addr = status["podIP"]
                .as_str()
                .and_then(|ip| ip.parse().ok())
                .expect("a pod IP");
            assert_eq!(status["podIPs"][0]["ip"], ip.to_string());
            assert!(cidrs[node].contains(ip), "{ip} outside {node}'s CIDR");
            assert!(ips.insert(ip), "{ip} given twice");
            assert!(status["hostIP"].is_string() && status["startTime"].is_string());
            for type_ in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
                assert_eq!(condition(pod, type_).expect(type_)["status"], "True");
            }
            let web = &status["containerStatuses"][0];
            assert_eq!(web["ready"], true);
            assert_eq!(web["started"], true);
            assert_eq!(web["restartCount"], 0);
            assert_eq!(web["imageID"], "ferry-sim://nginx:1.27");
            assert!(web["state"]["running"]["startedAt"].is_string());
            let init = &status["initContainerStatuses"][0];
            assert_eq!(init["state"]["terminated"]["reason"], "Completed");
        }
    });
}

const GRACEFUL: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: graceful
  namespace: NS
spec:
  nodeName: node-0
  terminationGracePeriodSeconds: 20
  containers:
  - name: app
    image: busybox:1.36
";

/// `kubectl delete pod --wait` on a running pod: the apiserver only marks it (deletionTimestamp,
/// the grace period); the kubelet stops its containers, reports them terminated, and removes it
/// with grace 0 — well within the 20 s grace period.
#[test]
fn graceful_deletion_is_finished_by_the_kubelet() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        start_kubelet(&client, 1);
        let manifest = server.write_manifest("graceful.yaml", GRACEFUL, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        eventually(20, "the pod Running and Ready", || async {
            let pod = pods.get("graceful").await.ok()?;
            let status = pod.status?;
            (status.phase.as_deref() == Some("Running")
                && status
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"))
            .then_some(())
        })
        .await;

        // Every state the pod goes through from here, as (deleted, deletionTimestamp set,
        // phase).
        let config = watcher::Config::default().fields("metadata.name=graceful");
        let mut events = watcher(pods.clone(), config).boxed();
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                let (deleted, pod) = match event {
                    watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => (false, pod),
                    watcher::Event::Delete(pod) => (true, pod),
                    _ => continue,
                };
                let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
                let marked = pod.metadata.deletion_timestamp.is_some();
                if seen_tx.send((deleted, marked, phase)).is_err() {
                    break;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;

        let started = std::time::Instant::now();
        server.kubectl_ok(
            "1.33",
            &["delete", "pod", "graceful", "--wait", "--timeout=15s"],
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the kubelet, not the grace period, ended the pod"
        );
        let gone = pods.get_opt("graceful").await.expect("a get");
        assert!(gone.is_none(), "the pod is gone");

        let mut seen = Vec::new();
        eventually(10, "the deletion watched", || {
            while let Ok(state) = seen_rx.try_recv() {
                seen.push(state);
            }
            let done = seen.iter().any(|(deleted, _, _)| *deleted);
            async move { done.then_some(()) }
        })
        .await;
        let deleted_at = seen
            .iter()
            .position(|(deleted, _, _)| *deleted)
            .expect("a deletion");
        // Marked for deletion first, then stopped (terminal phase), only then removed.
        let marked_at = seen
            .iter()
            .position(|(_, marked, _)| *marked)
            .expect("a deletionTimestamp");
        assert!(marked_at < deleted_at, "{seen:?}");
        assert!(
            seen[marked_at..deleted_at]
                .iter()
                .any(|(_, marked, phase)| *marked && phase == "Succeeded"),
            "the containers stopped before the removal: {seen:?}"
        );
        assert!(
            seen[..marked_at].iter().all(|(deleted, _, _)| !deleted),
            "{seen:?}"
        );
    });
}

/// A Node that exists before the kubelet starts is re-used: its labels and `podCIDR` stay, the
/// kubelet's labels and status are added, pods get IPs from that CIDR, and the status is
/// rewritten every status update period (a later `lastHeartbeatTime`).
#[test]
fn existing_node_is_reused() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
        let existing = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-0", "labels": {"pre": "existing"}},
            "spec": {"podCIDR": "10.99.7.0/24", "podCIDRs": ["10.99.7.0/24"]},
        }))
        .expect("a Node");
        nodes
            .create(&kube::api::PostParams::default(), &existing)
            .await
            .expect("create the node");
        let options = kubelet::Options {
            node_names: vec!["node-0".to_owned()],
            zone: Some("zone-a".to_owned()),
            node_status_update_frequency: Duration::from_secs(1),
            pod_startup_delay: Duration::ZERO,
            ..kubelet::Options::default()
        };
        let kubelet_client = client.clone();
        tokio::spawn(async move {
            if let Err(error) = kubelet::run(kubelet_client, options).await {
                panic!("the kubelet stopped: {error}");
            }
        });
        let heartbeat = |node: &k8s_openapi::api::core::v1::Node| {
            let ready = node
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "Ready" && c.status == "True")?
                .clone();
            ready.last_heartbeat_time.map(|t| t.0)
        };
        let first = eventually(20, "node-0 Ready", || async {
            heartbeat(&nodes.get("node-0").await.ok()?)
        })
        .await;
        let node = nodes.get("node-0").await.expect("node-0");
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("pre").map(String::as_str), Some("existing"));
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some("node-0")
        );
        assert_eq!(
            labels
                .get("topology.kubernetes.io/zone")
                .map(String::as_str),
            Some("zone-a")
        );
        let spec = node.spec.expect("a spec");
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.99.7.0/24"));
        eventually(10, "a later node heartbeat", || async {
            let later = heartbeat(&nodes.get("node-0").await.ok()?)?;
            (later > first).then_some(())
        })
        .await;

        let manifest = server.write_manifest("graceful.yaml", GRACEFUL, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let ip: Ipv4Addr = eventually(20, "the pod's IP", || async {
            pods.get("graceful")
                .await
                .ok()?
                .status?
                .pod_ip?
                .parse()
                .ok()
        })
        .await;
        let cidr = Cidr::parse("10.99.7.0/24").expect("a CIDR");
        assert!(cidr.contains(ip), "{ip} outside {cidr}");
    });
}

/// `kubectl get pods NAME` (1.33, the server's Table): its STATUS and RESTARTS columns.
fn status_and_restarts(server: &TestApiServer, name: &str) -> (String, String) {
    let out = server.kubectl_ok("1.33", &["get", "pods", name, "--no-headers"]);
    let columns: Vec<&str> = out.split_whitespace().collect();
    // NAME READY STATUS RESTARTS [(AGO ago)] AGE
    let restarts = columns.get(3).copied().unwrap_or_default();
    (
        columns.get(2).copied().unwrap_or_default().to_owned(),
        restarts.to_owned(),
    )
}

const CRASH: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: crash
  namespace: NS
  annotations:
    sim.ferry.dev/exit-after: 1s
    sim.ferry.dev/exit-code: \"1\"
spec:
  nodeName: node-0
  containers:
  - name: app
    image: busybox:1.36
";

/// A pod whose container exits 1 after 1 s with `restartPolicy: Always` (the default) crash
/// loops: restarts grow, `kubectl get pods` shows `CrashLoopBackOff` and the restarts, the
/// container waits with the kubelet's back-off message, its last exit in `lastState`, and the
/// pod is not Ready meanwhile.
#[test]
fn crash_loop_shows_in_kubectl_get_pods() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        start_kubelet(&client, 1);
        let manifest = server.write_manifest("crash.yaml", CRASH, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

        // The container's status while it backs off.
        let pod = eventually(30, "the container in CrashLoopBackOff", || async {
            let pod = pods.get("crash").await.ok()?;
            let waiting = pod
                .status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .first()?
                .state
                .as_ref()?
                .waiting
                .as_ref()?;
            (waiting.reason.as_deref() == Some("CrashLoopBackOff")).then_some(pod)
        })
        .await;
        let uid = pod.metadata.uid.clone().expect("a uid");
        let status = pod.status.expect("a status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let app = &status.container_statuses.expect("container statuses")[0];
        assert!(app.restart_count >= 1, "{app:?}");
        assert!(!app.ready);
        let waiting = app
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .expect("waiting");
        let message = waiting.message.as_deref().unwrap_or_default();
        assert!(
            message.starts_with("back-off 1s restarting failed container=app ")
                || message.starts_with("back-off 2s restarting failed container=app "),
            "{message}"
        );
        assert!(
            message.ends_with(&format!(" pod=crash_default({uid})")),
            "{message}"
        );
        let last = app
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("lastState.terminated");
        assert_eq!(last.exit_code, 1);
        assert_eq!(last.reason.as_deref(), Some("Error"));
        for type_ in ["Ready", "ContainersReady"] {
            let condition = status
                .conditions
                .as_ref()
                .and_then(|c| c.iter().find(|c| c.type_ == type_))
                .expect(type_);
            assert_eq!(condition.status, "False", "{condition:?}");
            assert_eq!(condition.reason.as_deref(), Some("ContainersNotReady"));
        }

        // What the user sees: CrashLoopBackOff with the restarts (and when the last was).
        let (status, restarts) = eventually(30, "CrashLoopBackOff in kubectl get pods", || {
            let (status, restarts) = status_and_restarts(&server, "crash");
            let count: u32 = restarts.parse().unwrap_or(0);
            async move { (status == "CrashLoopBackOff" && count >= 2).then_some((status, restarts)) }
        })
        .await;
        assert_eq!(status, "CrashLoopBackOff");
        let out = server.kubectl_ok("1.33", &["get", "pods", "crash"]);
        assert!(out.contains(" ago)"), "the last restart's age: {out}");
        assert!(restarts.parse::<u32>().expect("a count") >= 2);
    });
}

const NEVER: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: NAME
  namespace: default
  annotations:
    sim.ferry.dev/exit-after: 1s
    sim.ferry.dev/exit-code: \"CODE\"
spec:
  nodeName: node-0
  restartPolicy: Never
  containers:
  - name: app
    image: busybox:1.36
";

/// `restartPolicy: Never` pods whose containers exit: exit 0 ends `Completed` (phase
/// Succeeded), exit 3 ends `Error` (phase Failed); neither restarts.
#[test]
fn never_restarting_pods_end_completed_or_error() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        start_kubelet(&client, 1);
        for (name, code) in [("done", "0"), ("fails", "3")] {
            let text = NEVER.replace("NAME", name).replace("CODE", code);
            let manifest = server.write_manifest(&format!("{name}.yaml"), &text, "default");
            server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        for (name, code, phase, reason) in [
            ("done", 0, "Succeeded", "Completed"),
            ("fails", 3, "Failed", "Error"),
        ] {
            let (status, restarts) = eventually(20, &format!("{name} {reason}"), || {
                let (status, restarts) = status_and_restarts(&server, name);
                async move { (status == reason).then_some((status, restarts)) }
            })
            .await;
            assert_eq!((status.as_str(), restarts.as_str()), (reason, "0"));
            let pod = pods.get(name).await.expect("the pod");
            let status = pod.status.expect("a status");
            assert_eq!(status.phase.as_deref(), Some(phase));
            let app = &status.container_statuses.expect("container statuses")[0];
            let terminated = app
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .expect("terminated");
            assert_eq!(terminated.exit_code, code);
            assert_eq!(terminated.reason.as_deref(), Some(reason));
            assert_eq!(app.restart_count, 0);
            assert!(!app.ready);
        }
        // Finished for good: no restart later.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (name, reason) in [("done", "Completed"), ("fails", "Error")] {
            assert_eq!(
                status_and_restarts(&server, name),
                (reason.to_owned(), "0".to_owned())
            );
        }
    });
}

const UNREADY: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: unready
  namespace: NS
  annotations:
    sim.ferry.dev/readiness: \"false\"
    sim.ferry.dev/startup-delay: 2s
spec:
  nodeName: node-0
  containers:
  - name: app
    image: busybox:1.36
";

/// `readiness: "false"`: the pod runs but never turns Ready (READY 0/1, STATUS Running); its
/// own start-up delay (2 s) replaces the kubelet's (200 ms here).
#[test]
fn failing_readiness_stays_running_and_not_ready() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        start_kubelet(&client, 1);
        let manifest = server.write_manifest("unready.yaml", UNREADY, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let running = || async {
            let pod = pods.get("unready").await.ok()?;
            (pod.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(pod)
        };
        let pod = eventually(20, "the pod Running", running).await;
        let status = pod.status.expect("a status");
        let start = status.start_time.expect("a startTime").0;
        let app = &status.container_statuses.expect("container statuses")[0];
        let started = app
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .expect("running")
            .0;
        assert!(
            started.duration_since(start) >= jiff::SignedDuration::from_secs(2),
            "started {started}, pod started {start}: the annotation's start-up delay"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pod = pods.get("unready").await.expect("the pod");
        let status = pod.status.expect("a status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        for type_ in ["Ready", "ContainersReady"] {
            let condition = status
                .conditions
                .as_ref()
                .and_then(|c| c.iter().find(|c| c.type_ == type_))
                .expect(type_);
            assert_eq!(condition.status, "False", "{condition:?}");
        }
        let app = &status.container_statuses.expect("container statuses")[0];
        assert!(!app.ready && app.started == Some(true), "{app:?}");
        let out = server.kubectl_ok("1.33", &["get", "pods", "unready", "--no-headers"]);
        let columns: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(&columns[1..4], ["0/1", "Running", "0"], "{out}");
    });
}

#[test]
fn a_node_marked_unknown_is_reported_ready_again_at_once() {
    let server = TestApiServer::start(Backend::Embedded);
    runtime().block_on(async {
        let client = kube_client(&server).await;
        // The status update period is 5 minutes: only the correction can be this quick.
        start_kubelet(&client, 1);
        let nodes: Api<Node> = Api::all(client.clone());
        let ready_status = |node: &Node| {
            node.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.status.clone())
        };
        eventually(20, "node-0 Ready", || async {
            (ready_status(&nodes.get("node-0").await.ok()?)? == "True").then_some(())
        })
        .await;
        // What the node-lifecycle controller writes after a silence.
        let unknown = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown",
            "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status."}]}});
        nodes
            .patch_status("node-0", &PatchParams::default(), &Patch::Merge(&unknown))
            .await
            .expect("mark node-0 Unknown");
        let started = std::time::Instant::now();
        eventually(10, "node-0 Ready again", || async {
            (ready_status(&nodes.get("node-0").await.ok()?)? == "True").then_some(())
        })
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "corrected after {:?}",
            started.elapsed()
        );
    });
}
