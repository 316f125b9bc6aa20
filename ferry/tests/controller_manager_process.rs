//! `ferry controller-manager` as a process against a running apiserver: it reads the
//! kubeconfig, takes the lease with `--leader-elect`, and keeps a ReplicaSet's pods.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::apiserver::{Backend, TestApiServer};

#[test]
fn ferry_controller_manager_runs_the_replicaset_controller() {
    let server = TestApiServer::start(Backend::Embedded);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["controller-manager", "--leader-elect", "--kubeconfig"])
        .arg(server.kubeconfig())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ferry controller-manager");
    let manifest = server.write_manifest(
        "rs.yaml",
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web, namespace: NS}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: nginx}]}\n",
        "default",
    );
    server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = server.kubectl_ok("1.33", &["get", "pods", "-l", "app=web", "-o", "name"]);
        if out.lines().count() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "3 pods: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let holder = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "lease",
            "ferry-controller-manager",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    );
    assert!(holder.starts_with("ferry-controller-manager-"), "{holder}");
    child.kill().expect("stop");
    let _ = child.wait();
}

#[test]
fn unknown_controllers_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["controller-manager", "--controllers", "no-such-controller"])
        .output()
        .expect("run ferry");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown controller \"no-such-controller\"")
    );
}
