//! `ferry apiserver` as a real process: flags, the embedded store under `--data-dir`, a
//! generated certificate, tokens from `--token-auth-file`, and kubectl against it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

#[test]
fn ferry_apiserver_serves_kubectl_and_keeps_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "s3cret,admin,1,\"system:masters\"\n").unwrap();
    let data = dir.path().join("data");

    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["apiserver", "--bind-address=127.0.0.1", "--secure-port=0"])
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--token-auth-file={}", tokens.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ferry apiserver");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("ferry apiserver: serving on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("ferry apiserver did not report its address");
        (child, url)
    };

    let kubectl = |url: &str, args: &[&str]| {
        let ca = std::fs::read(data.join("pki/ca.crt")).expect("the generated certificate");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\nusers:\n- name: a\n  user:\n    token: s3cret\ncontexts:\n- name: f\n  context: {{cluster: f, user: a}}\ncurrent-context: f\n",
                base64::engine::general_purpose::STANDARD.encode(ca)
            ),
        )
        .unwrap();
        Command::new(tests::apiserver::kubectl_binary("1.33"))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                dir.path().join("cache").display()
            ))
            .args(args)
            .output()
            .expect("run kubectl")
    };

    let (mut child, url) = start();
    let cm = dir.path().join("cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\ndata:\n  a: b\n",
    )
    .unwrap();
    let out = kubectl(
        &url,
        &["create", "--validate=false", "-f", cm.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();

    // Restarted on the same data dir: the object is still there.
    let (mut child, url) = start();
    let out = kubectl(
        &url,
        &["get", "configmap", "kept", "-o", "jsonpath={.data.a}"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "b");

    // A wrong token is refused.
    let bad = dir.path().join("bad-kubeconfig");
    let good = std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap();
    std::fs::write(&bad, good.replace("token: s3cret", "token: wrong")).unwrap();
    let out = Command::new(tests::apiserver::kubectl_binary("1.33"))
        .arg(format!("--kubeconfig={}", bad.display()))
        .arg(format!(
            "--cache-dir={}",
            dir.path().join("cache2").display()
        ))
        .args(["get", "configmaps"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: You must be logged in to the server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bad_flags_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["apiserver", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag \"--no-such-flag\""));
}
