//! PriorityClasses (`scheduling.k8s.io/v1`) and pod priority, as kube-apiserver serves them,
//! against a real apiserver on both stores with real kubectl: the system classes exist from the
//! start and cannot be deleted; classes are validated (reserved `system-` names, the highest
//! user value, immutable value); pods get `spec.priority` from their class through the Priority
//! admission plugin, or from the global default class; an unknown class and a second global
//! default are refused with Kubernetes' messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::server::handlers::bootstrap_store;
use apiserver::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use apiserver::storage::etcd::{EtcdConfig, EtcdStorage};
use apiserver::storage::{Preconditions, Storage};
use bytes::Bytes;
use serde_json::{Value, json};
use tests::apiserver::{Backend, TOKEN, TestApiServer};
use tests::etcd::EtcdServer;

const NS: &str = "prio";
const PCS: &str = "/apis/scheduling.k8s.io/v1/priorityclasses";

fn pod_manifest(name: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  containers:\n  - name: c\n    image: nginx\n{spec_extra}"
    )
}

fn class_manifest(name: &str, rest: &str) -> String {
    format!(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\n{rest}"
    )
}

/// Runs kubectl, expecting it to fail; returns its stderr.
fn kubectl_fails(server: &TestApiServer, v: &str, args: &[&str]) -> String {
    let out = server.kubectl(v, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kubectl {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The whitespace-separated cells of the row of `name` in a kubectl table.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name}:\n{table}"))
}

fn suite(server: &TestApiServer, v: &str) {
    let apply = |file: &str, text: &str| {
        let path = server.write_manifest(file, text, NS);
        (server.kubectl(v, &["apply", "-f", &path]), path)
    };
    let apply_ok = |file: &str, text: &str| {
        let path = server.write_manifest(file, text, NS);
        server.kubectl_ok(v, &["apply", "-f", &path])
    };
    let apply_fails = |file: &str, text: &str| {
        let (out, path) = apply(file, text);
        assert!(
            !out.status.success(),
            "applying {file} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (String::from_utf8_lossy(&out.stderr).into_owned(), path)
    };

    // Discovery: cluster-scoped, short name `pc`.
    let out = server.kubectl_ok(v, &["api-resources", "--api-group=scheduling.k8s.io"]);
    assert_eq!(
        row(&out, "priorityclasses"),
        [
            "priorityclasses",
            "pc",
            "scheduling.k8s.io/v1",
            "false",
            "PriorityClass"
        ],
        "{out}"
    );

    // The system classes exist from the start, printed as kube-apiserver prints them.
    let out = server.kubectl_ok(v, &["get", "pc"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
        "{out}"
    );
    for (name, value) in [
        ("system-cluster-critical", "2000000000"),
        ("system-node-critical", "2000001000"),
    ] {
        let cells = row(&out, name);
        assert_eq!(
            (cells[1], cells[2], cells[4]),
            (value, "false", "PreemptLowerPriority"),
            "{out}"
        );
    }
    let pc = server.kubectl_get(v, "priorityclass/system-node-critical", NS);
    assert_eq!(pc["value"], 2_000_001_000);
    assert_eq!(
        pc["description"],
        "Used for system critical pods that must not be moved from their current node."
    );
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(pc["metadata"]["generation"], 1);
    assert!(
        pc.get("globalDefault").is_none(),
        "omitted when false: {pc}"
    );
    let err = kubectl_fails(server, v, &["delete", "pc", "system-node-critical"]);
    assert!(
        err.contains("Error from server (Forbidden): priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"),
        "{err}"
    );

    // Validation: reserved names, the highest user value.
    let (err, _) = apply_fails(
        "system-mine.yaml",
        &class_manifest("system-mine", "value: 10\n"),
    );
    assert!(
        err.contains("metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"),
        "{err}"
    );
    let (err, _) = apply_fails("huge.yaml", &class_manifest("huge", "value: 1000000001\n"));
    assert!(
        err.contains(
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
        ),
        "{err}"
    );

    // A class by `kubectl apply`, another by `kubectl create priorityclass` (protobuf from
    // kubectl 1.32 on).
    let high = class_manifest(
        "high",
        "value: 1000\ndescription: Customer-facing services.\n",
    );
    let out = apply_ok("high.yaml", &high);
    assert!(
        out.contains("priorityclass.scheduling.k8s.io/high created"),
        "{out}"
    );
    let out = server.kubectl_ok(
        v,
        &[
            "create",
            "priorityclass",
            "batch",
            "--value=-5",
            "--preemption-policy=Never",
        ],
    );
    assert!(
        out.contains("priorityclass.scheduling.k8s.io/batch created"),
        "{out}"
    );
    let batch = server.kubectl_get(v, "pc/batch", NS);
    assert_eq!(
        (&batch["value"], &batch["preemptionPolicy"]),
        (&json!(-5), &json!("Never")),
        "{batch}"
    );
    // value is immutable.
    let (err, _) = apply_fails(
        "high.yaml",
        &class_manifest(
            "high",
            "value: 2000\ndescription: Customer-facing services.\n",
        ),
    );
    assert!(
        err.contains("value: Forbidden: may not be changed in an update."),
        "{err}"
    );

    // Pods get their class' priority.
    let ns = server.write_manifest(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: NS\n",
        NS,
    );
    server.kubectl_ok(v, &["apply", "-f", &ns]);
    apply_ok(
        "web.yaml",
        &pod_manifest("web", "  priorityClassName: high\n"),
    );
    let web = server.kubectl_get(v, "pod/web", NS);
    assert_eq!(web["spec"]["priority"], 1000, "{web}");
    assert_eq!(web["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    apply_ok(
        "job.yaml",
        &pod_manifest("job", "  priorityClassName: batch\n"),
    );
    let job = server.kubectl_get(v, "pod/job", NS);
    assert_eq!(
        (&job["spec"]["priority"], &job["spec"]["preemptionPolicy"]),
        (&json!(-5), &json!("Never"))
    );
    apply_ok(
        "critical.yaml",
        &pod_manifest("critical", "  priorityClassName: system-node-critical\n"),
    );
    assert_eq!(
        server.kubectl_get(v, "pod/critical", NS)["spec"]["priority"],
        2_000_001_000
    );
    // No class and no default class: priority 0.
    apply_ok("plain.yaml", &pod_manifest("plain", ""));
    let plain = server.kubectl_get(v, "pod/plain", NS);
    assert_eq!(plain["spec"]["priority"], 0);
    assert!(plain["spec"].get("priorityClassName").is_none(), "{plain}");

    // An unknown class, and a priority that is not the class'.
    let (err, path) = apply_fails(
        "ghost.yaml",
        &pod_manifest("ghost", "  priorityClassName: gold\n"),
    );
    assert!(
        err.contains(&format!("Error from server (Forbidden): error when creating \"{path}\": pods \"ghost\" is forbidden: no PriorityClass with name gold was found")),
        "{err}"
    );
    let (err, _) = apply_fails(
        "liar.yaml",
        &pod_manifest("liar", "  priorityClassName: high\n  priority: 5\n"),
    );
    assert!(
        err.contains("pods \"liar\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"),
        "{err}"
    );

    // One global default; a second is refused, created or patched.
    let out = server.kubectl_ok(
        v,
        &[
            "create",
            "priorityclass",
            "low",
            "--value=-10",
            "--global-default=true",
        ],
    );
    assert!(
        out.contains("priorityclass.scheduling.k8s.io/low created"),
        "{out}"
    );
    let (err, path) = apply_fails(
        "other.yaml",
        &class_manifest("other", "value: 7\nglobalDefault: true\n"),
    );
    assert!(
        err.contains(&format!("Error from server (Forbidden): error when creating \"{path}\": priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass low is already marked as default. Only one default can exist")),
        "{err}"
    );
    let err = kubectl_fails(
        server,
        v,
        &["patch", "pc", "high", "-p", r#"{"globalDefault":true}"#],
    );
    assert!(
        err.contains("priorityclasses.scheduling.k8s.io \"high\" is forbidden: PriorityClass low is already marked as default. Only one default can exist"),
        "{err}"
    );
    let out = server.kubectl_ok(v, &["get", "pc"]);
    assert_eq!(row(&out, "low")[1..3], ["-10", "true"], "{out}");
    assert_eq!(row(&out, "high")[2], "false", "{out}");

    // A pod without a class now gets the default, named in its spec. Admission reads classes
    // from the watch cache, which may trail a write by a moment (as kube-apiserver's informer
    // does): wait with server-side dry runs until it shows.
    let defaulted = server.write_manifest("defaulted.yaml", &pod_manifest("defaulted", ""), NS);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = server.kubectl_ok(
            v,
            &["create", "--dry-run=server", "-o", "json", "-f", &defaulted],
        );
        let pod: Value = serde_json::from_str(&out).expect("kubectl -o json");
        if pod["spec"]["priorityClassName"] == "low" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the default class never applied: {pod}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kubectl_ok(v, &["create", "-f", &defaulted]);
    let pod = server.kubectl_get(v, "pod/defaulted", NS);
    assert_eq!(
        (
            &pod["spec"]["priorityClassName"],
            &pod["spec"]["priority"],
            &pod["spec"]["preemptionPolicy"]
        ),
        (&json!("low"), &json!(-10), &json!("PreemptLowerPriority")),
        "{pod}"
    );
    // Pods admitted before keep their priority.
    assert_eq!(
        server.kubectl_get(v, "pod/plain", NS)["spec"]["priority"],
        0
    );
}

#[test]
fn priority_classes_with_kubectl_1_33_on_the_embedded_store() {
    let server = TestApiServer::start(Backend::Embedded);
    suite(&server, "1.33");
}

#[test]
fn priority_classes_with_kubectl_1_29_on_etcd() {
    let etcd = EtcdServer::start();
    let server = TestApiServer::start(Backend::Etcd(&etcd));
    suite(&server, "1.29");
}

/// kube-apiserver's post-start hook creates a missing system class at every start and leaves an
/// existing one as it is. `deletecollection` goes around the REST storage's refusal to delete
/// a system class (in Kubernetes too), so one can go missing.
#[test]
fn a_restarted_apiserver_recreates_a_missing_system_class_on_etcd() {
    let etcd = EtcdServer::start();
    {
        let server = TestApiServer::start(Backend::Etcd(&etcd));
        let gone = server.raw(
            "DELETE",
            &format!("{PCS}?fieldSelector=metadata.name%3Dsystem-node-critical"),
            None,
            None,
            Some(TOKEN),
        );
        assert_eq!(gone.code, 200, "{}", gone.body);
        let items = gone.json()["items"].clone();
        assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
        let r = server.raw(
            "GET",
            &format!("{PCS}/system-node-critical"),
            None,
            None,
            Some(TOKEN),
        );
        assert_eq!(r.code, 404, "{}", r.body);
        server.kubectl_ok(
            "1.33",
            &["label", "pc", "system-cluster-critical", "kept=yes"],
        );
    }
    let server = TestApiServer::start(Backend::Etcd(&etcd));
    let node = server.kubectl_get("1.33", "pc/system-node-critical", NS);
    assert_eq!(node["value"], 2_000_001_000);
    let cluster = server.kubectl_get("1.33", "pc/system-cluster-critical", NS);
    assert_eq!(cluster["metadata"]["labels"]["kept"], "yes", "{cluster}");
}

/// The start-up bootstrap itself, on each store: it creates what is missing, leaves what
/// exists, and can run any number of times.
async fn bootstrap_creates_only_what_is_missing(store: Arc<dyn Storage>) {
    let key = |name: &str| format!("/registry/priorityclasses/{name}");
    let read = |kv: &apiserver::storage::KeyValue| -> Value {
        serde_json::from_slice(&kv.value).expect("a stored class is JSON")
    };
    bootstrap_store(store.as_ref(), "/registry").await.unwrap();
    let node = read(&store.get(&key("system-node-critical"), None).await.unwrap());
    assert_eq!(node["value"], 2_000_001_000);
    assert_eq!(node["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(
        node["metadata"]["managedFields"][0]["manager"], "kube-apiserver",
        "{node}"
    );
    let cluster = store
        .get(&key("system-cluster-critical"), None)
        .await
        .unwrap();
    assert_eq!(read(&cluster)["value"], 2_000_000_000);

    // One goes missing, the other is changed: only the missing one is written again.
    store
        .delete(&key("system-node-critical"), &Preconditions::none())
        .await
        .unwrap();
    let mut changed = read(&cluster);
    changed["description"] = json!("changed by an administrator");
    let changed_kv = store
        .guaranteed_update(
            &key("system-cluster-critical"),
            &Preconditions::none(),
            false,
            &mut |_| Ok(Bytes::from(serde_json::to_vec(&changed).unwrap())),
        )
        .await
        .unwrap();
    bootstrap_store(store.as_ref(), "/registry").await.unwrap();
    bootstrap_store(store.as_ref(), "/registry").await.unwrap();
    let node = read(&store.get(&key("system-node-critical"), None).await.unwrap());
    assert_eq!(node["value"], 2_000_001_000);
    let cluster = store
        .get(&key("system-cluster-critical"), None)
        .await
        .unwrap();
    assert_eq!(cluster.mod_revision, changed_kv.mod_revision);
    assert_eq!(read(&cluster)["description"], "changed by an administrator");
}

#[tokio::test]
async fn bootstrap_creates_missing_system_classes_on_the_embedded_store() {
    let dir = tempfile::Builder::new()
        .prefix("ferry-priority-")
        .tempdir()
        .expect("create a temp dir");
    let store = EmbeddedStorage::open_with(
        &dir.path().join("store.redb"),
        EmbeddedOptions {
            compaction_interval: None,
        },
    )
    .expect("open the embedded store");
    bootstrap_creates_only_what_is_missing(Arc::new(store)).await;
}

#[tokio::test]
async fn bootstrap_creates_missing_system_classes_on_etcd() {
    let etcd = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let mut config = EtcdConfig::new(vec![etcd.endpoint().to_string()]);
    config.compaction_interval = None;
    let store = EtcdStorage::connect(config)
        .await
        .expect("connect to the test etcd");
    bootstrap_creates_only_what_is_missing(Arc::new(store)).await;
}
