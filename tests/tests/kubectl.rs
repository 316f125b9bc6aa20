//! Real, unmodified kubectl (1.33 and 1.29) against a real apiserver over TLS, with kubectl's
//! default `--validate=strict` (served by `/openapi/v3` and server-side field validation).

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::apiserver::{Backend, TestApiServer, kubectl_binary};
use tests::etcd::EtcdServer;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
"#;

const CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
data:
  a: "1"
"#;

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fails(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what} should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn write(server: &TestApiServer, name: &str, text: &str) -> String {
    let path = server.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn everyday_commands(server: &TestApiServer, v: &str) {
    let k = |args: &[&str]| server.kubectl(v, args);

    // version and discovery.
    let out = ok(&k(&["version", "-o", "json"]), "version");
    assert!(out.contains("\"gitVersion\": \"v1.33."), "{out}");
    let out = ok(&k(&["api-resources"]), "api-resources");
    for line in [
        "deployments",
        "deploy",
        "apps/v1",
        "replicasets",
        "leases",
        "coordination.k8s.io/v1",
    ] {
        assert!(out.contains(line), "api-resources lacks {line}:\n{out}");
    }
    let out = ok(&k(&["get", "namespaces"]), "get namespaces");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(out.contains(ns), "{out}");
    }
    assert!(out.starts_with("NAME"), "a Table with headers: {out}");

    // create -f, in a new namespace.
    // (`kubectl create namespace` sends protobuf from 1.32 on: issue 4. A manifest is JSON.)
    let ns = write(
        server,
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n",
    );
    ok(&k(&["create", "-f", &ns]), "create namespace");
    let file = write(server, "deploy.yaml", DEPLOYMENT);
    let out = ok(&k(&["-n", "demo", "create", "-f", &file]), "create -f");
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let err = fails(&k(&["-n", "demo", "create", "-f", &file]), "create twice");
    assert!(
        err.contains("Error from server (AlreadyExists): error when creating")
            && err.contains("deployments.apps \"web\" already exists"),
        "{err}"
    );
    let cm = write(server, "cm.yaml", CONFIGMAP);
    ok(&k(&["create", "-f", &cm]), "create configmap");

    // get: table, wide, yaml, selectors, all namespaces, short names.
    let out = ok(&k(&["-n", "demo", "get", "deploy"]), "get deploy");
    assert!(
        out.contains("NAME")
            && out.contains("READY")
            && out.contains("UP-TO-DATE")
            && out.contains("AVAILABLE")
            && out.contains("web"),
        "{out}"
    );
    let out = ok(
        &k(&["-n", "demo", "get", "deploy", "-o", "wide"]),
        "get -o wide",
    );
    assert!(
        out.contains("CONTAINERS") && out.contains("nginx:1.27") && out.contains("app=web"),
        "{out}"
    );
    let out = ok(
        &k(&["-n", "demo", "get", "deployment", "web", "-o", "yaml"]),
        "get -o yaml",
    );
    for want in [
        "kind: Deployment",
        "maxSurge: 25%",
        "revisionHistoryLimit: 10",
        "progressDeadlineSeconds: 600",
        "generation: 1",
        "uid:",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    let out = ok(
        &k(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "-l",
            "tier=front",
            "-o",
            "name",
        ]),
        "get -l",
    );
    assert_eq!(out.trim(), "deployment.apps/web");
    let out = ok(
        &k(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "-l",
            "tier=back",
            "-o",
            "name",
        ]),
        "get -l (none)",
    );
    assert_eq!(out.trim(), "");
    let out = ok(
        &k(&[
            "-n",
            "demo",
            "get",
            "cm",
            "--field-selector",
            "metadata.name=settings",
            "-o",
            "name",
        ]),
        "--field-selector",
    );
    assert_eq!(out.trim(), "configmap/settings");
    let out = ok(&k(&["get", "cm", "-A"]), "get -A");
    assert!(
        out.contains("NAMESPACE") && out.contains("demo") && out.contains("settings"),
        "{out}"
    );
    let err = fails(
        &k(&[
            "-n",
            "demo",
            "get",
            "pods",
            "--field-selector",
            "spec.bogus=1",
        ]),
        "bad field selector",
    );
    assert!(
        err.contains("field label not supported: spec.bogus"),
        "{err}"
    );

    // Errors as kubectl prints them.
    let err = fails(&k(&["-n", "demo", "get", "deploy", "nope"]), "get missing");
    assert!(
        err.contains("Error from server (NotFound): deployments.apps \"nope\" not found"),
        "{err}"
    );
    let err = fails(
        &k(&[
            "-n",
            "demo",
            "label",
            "deploy",
            "web",
            "x=y",
            "--resource-version=1",
        ]),
        "stale label",
    );
    assert!(
        err.contains("Error from server (Conflict)")
            && err.contains("the object has been modified"),
        "{err}"
    );
    let bad = write(
        server,
        "bad.yaml",
        &DEPLOYMENT.replace("name: web\n", "name: Bad_Name\n"),
    );
    let err = fails(&k(&["-n", "demo", "create", "-f", &bad]), "invalid name");
    assert!(
        err.contains("The Deployment \"Bad_Name\" is invalid"),
        "{err}"
    );

    // label, annotate, patch (merge and JSON), replace, scale.
    ok(
        &k(&["-n", "demo", "label", "deploy", "web", "color=blue"]),
        "label",
    );
    let out = ok(
        &k(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}",
        ]),
        "generation after label",
    );
    assert_eq!(out, "1", "labels do not bump a generation");
    ok(
        &k(&["-n", "demo", "annotate", "deploy", "web", "note=hello"]),
        "annotate",
    );
    ok(
        &k(&[
            "-n",
            "demo",
            "patch",
            "cm",
            "settings",
            "--type=merge",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ]),
        "patch merge",
    );
    ok(
        &k(&[
            "-n",
            "demo",
            "patch",
            "cm",
            "settings",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/data/a","value":"3"}]"#,
        ]),
        "patch json",
    );
    let out = ok(
        &k(&[
            "-n",
            "demo",
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.data.a}{.data.b}",
        ]),
        "get patched",
    );
    assert_eq!(out, "32");
    let err = fails(
        &k(&[
            "-n",
            "demo",
            "patch",
            "cm",
            "settings",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/data/zzz"}]"#,
        ]),
        "failing json patch",
    );
    assert!(
        err.contains(
            "The request is invalid: the server rejected our request due to an error in our request"
        ),
        "{err}"
    );
    let replaced = write(
        server,
        "cm2.yaml",
        &CONFIGMAP.replace("a: \"1\"", "a: \"9\""),
    );
    ok(&k(&["replace", "-f", &replaced]), "replace");
    let out = ok(
        &k(&[
            "-n",
            "demo",
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.data.a}",
        ]),
        "get replaced",
    );
    assert_eq!(out, "9");
    let out = ok(
        &k(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.labels.color} {.metadata.annotations.note} {.metadata.generation}",
        ]),
        "get labelled",
    );
    assert_eq!(
        out, "blue hello 2",
        "a Deployment's annotations count for its generation, as in Kubernetes"
    );
    ok(
        &k(&["-n", "demo", "scale", "deploy", "web", "--replicas=5"]),
        "scale",
    );
    let out = ok(
        &k(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.generation}",
        ]),
        "get scaled",
    );
    assert_eq!(
        out, "5 3",
        "scale changes the spec and bumps the generation"
    );

    // delete waits for the object to be gone, and returns.
    let started = Instant::now();
    let out = ok(&k(&["-n", "demo", "delete", "cm", "settings"]), "delete");
    assert!(out.contains("configmap \"settings\" deleted"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));
    fails(&k(&["-n", "demo", "get", "cm", "settings"]), "get deleted");
}

#[test]
fn kubectl_1_33_everyday_commands_on_the_embedded_store() {
    let server = TestApiServer::start(Backend::Embedded);
    everyday_commands(&server, "1.33");
}

#[test]
fn kubectl_1_29_everyday_commands_on_etcd() {
    let etcd = EtcdServer::start();
    let server = TestApiServer::start(Backend::Etcd(&etcd));
    everyday_commands(&server, "1.29");
}

/// `kubectl get -w --output-watch-events` prints each change as it happens.
#[test]
fn kubectl_watch_prints_events() {
    let server = TestApiServer::start(Backend::Embedded);
    let k = |args: &[&str]| server.kubectl("1.33", args);
    let cm = |name: &str| {
        let path = server.dir().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n"),
        )
        .unwrap();
        path.display().to_string()
    };
    ok(&k(&["create", "-f", &cm("w1")]), "create w1");
    let mut watch = Command::new(kubectl_binary("1.33"))
        .arg(format!("--kubeconfig={}", server.kubeconfig().display()))
        .arg(format!(
            "--cache-dir={}",
            server.dir().join("watch-cache").display()
        ))
        .args(["get", "configmaps", "-w", "--output-watch-events"])
        .env("HOME", server.dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl get -w");
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let wait_for = |needle: &str, lines: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !lines.iter().any(|l: &String| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => panic!("no line with {needle:?}; got {lines:#?}"),
            }
        }
    };
    wait_for("w1", &mut lines);
    ok(&k(&["create", "-f", &cm("w2")]), "create w2");
    wait_for("w2", &mut lines);
    ok(&k(&["label", "configmap", "w2", "x=y"]), "label w2");
    ok(&k(&["delete", "configmap", "w2"]), "delete w2");
    wait_for("DELETED", &mut lines);
    let _ = watch.kill();
    let _ = watch.wait();
    let text = lines.join("\n");
    assert!(
        lines[0].contains("EVENT") && lines[0].contains("NAME"),
        "{text}"
    );
    for want in [
        "ADDED      w1",
        "ADDED      w2",
        "MODIFIED   w2",
        "DELETED    w2",
    ] {
        let want: Vec<&str> = want.split_whitespace().collect();
        assert!(
            lines
                .iter()
                .any(|l| l.split_whitespace().take(2).eq(want.iter().copied())),
            "{want:?} missing:\n{text}"
        );
    }
}
