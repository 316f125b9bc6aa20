//! `dryRun=All`: every write validates and defaults as usual and persists nothing —
//! `kubectl apply --dry-run=server`, `kubectl diff`, `kubectl create|delete --dry-run=server`.

use tests::apiserver::{Backend, TestApiServer};

const V1: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1.25"}]
"#;

fn changed(v1: &str) -> String {
    v1.replace("replicas: 2", "replicas: 3")
        .replace("nginx:1.25", "nginx:1.27")
}

fn dry_runs(version: &str) {
    let server = TestApiServer::start(Backend::Embedded);
    let ns = "dry";
    let v1 = server.write_manifest("v1.yaml", V1, ns);
    let v2 = server.write_manifest("v2.yaml", &changed(V1), ns);
    let invalid = server.write_manifest("bad.yaml", &V1.replace("replicas: 2", "replicas: -1"), ns);

    // A server dry run of a create creates nothing (in a namespace that exists: a dry run in a
    // missing one is NotFound, as on Kubernetes).
    let namespace = server.write_manifest(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}\n",
        ns,
    );
    server.kubectl_ok(version, &["apply", "-f", &namespace]);
    let out = server.kubectl_ok(version, &["apply", "-f", &v1, "--dry-run=server"]);
    assert!(
        out.contains("deployment.apps/web created (server dry run)"),
        "{out}"
    );
    let missing = server.kubectl(version, &["get", "deployment/web", "-n", ns]);
    assert!(!missing.status.success(), "nothing was created");
    server.kubectl_ok(
        version,
        &[
            "create",
            "configmap",
            "c",
            "-n",
            ns,
            "--from-literal=a=b",
            "--dry-run=server",
        ],
    );
    let missing = server.kubectl(version, &["get", "configmap/c", "-n", ns]);
    assert!(!missing.status.success(), "nothing was created");

    server.kubectl_ok(version, &["apply", "-f", &v1]);
    let rv =
        server.kubectl_get(version, "deployment/web", ns)["metadata"]["resourceVersion"].clone();

    for args in [
        vec!["apply", "-f", &v2, "--dry-run=server"],
        vec!["apply", "--server-side", "-f", &v2, "--dry-run=server"],
        vec![
            "scale",
            "deployment/web",
            "-n",
            ns,
            "--replicas=7",
            "--dry-run=server",
        ],
        vec!["delete", "deployment/web", "-n", ns, "--dry-run=server"],
        vec![
            "label",
            "deployment/web",
            "-n",
            ns,
            "x=y",
            "--dry-run=server",
        ],
    ] {
        let out = server.kubectl_ok(version, &args);
        assert!(out.contains("(server dry run)"), "{args:?}: {out}");
        let d = server.kubectl_get(version, "deployment/web", ns);
        assert_eq!(
            d["metadata"]["resourceVersion"], rv,
            "{args:?} wrote nothing"
        );
        assert_eq!(d["spec"]["replicas"], 2, "{args:?}");
    }

    // Validation still runs in a dry run.
    let out = server.kubectl(version, &["apply", "-f", &invalid, "--dry-run=server"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec.replicas: Invalid value: -1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // kubectl diff: a dry-run patch, compared with the live object (exit 1: differences).
    let out = server.kubectl(version, &["diff", "-f", &v2]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("-  replicas: 2") && stdout.contains("+  replicas: 3"),
        "{stdout}"
    );
    assert!(stdout.contains("+      - image: nginx:1.27"), "{stdout}");
    let out = server.kubectl(version, &["diff", "-f", &v1]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no differences: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let d = server.kubectl_get(version, "deployment/web", ns);
    assert_eq!(d["metadata"]["resourceVersion"], rv, "diff wrote nothing");
}

#[test]
fn kubectl_1_33_server_dry_runs_persist_nothing() {
    dry_runs("1.33");
}

#[test]
fn kubectl_1_30_server_dry_runs_persist_nothing() {
    dry_runs("1.30");
}

#[test]
fn kubectl_1_27_server_dry_runs_persist_nothing() {
    dry_runs("1.27");
}

#[test]
fn dry_run_values_other_than_all_are_refused() {
    let server = TestApiServer::start(Backend::Embedded);
    let token = Some(tests::apiserver::TOKEN);
    let r = server.raw(
        "POST",
        "/api/v1/namespaces/default/configmaps?dryRun=Some",
        Some("application/json"),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#),
        token,
    );
    assert_eq!(r.code, 422, "{}", r.body);
    assert!(
        r.body
            .contains(r#"dryRun: Unsupported value: \"Some\": supported values: \"All\""#),
        "{}",
        r.body
    );
    let r = server.raw(
        "PUT",
        "/api/v1/namespaces/default/configmaps/c?dryRun=All",
        Some("application/json"),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#),
        token,
    );
    assert_eq!(r.code, 404, "a dry-run update of nothing: {}", r.body);
}
