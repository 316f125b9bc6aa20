//! The official Python `kubernetes` client (list, create, patch, watch from a resourceVersion,
//! delete) against a real apiserver over TLS. Needs `python3` with the `kubernetes` package
//! (`cargo xtask test` installs it); fails loudly when it is missing.

use std::process::Command;

use tests::apiserver::{Backend, TestApiServer};

#[test]
fn python_kubernetes_client_works() {
    let server = TestApiServer::start(Backend::Embedded);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/client_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.kubeconfig())
        .output()
        .expect("python3 is needed for this test");
    assert!(
        out.status.success(),
        "the Python client check failed (is the `kubernetes` package installed? `pip install kubernetes`)\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
