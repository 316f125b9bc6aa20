//! A real apiserver for tests: served over HTTPS on a free port, in this process (on a runtime
//! thread of its own, so sync and async tests can both use it), with a token, a self-signed
//! certificate and a kubeconfig for real clients such as kubectl.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use apiserver::server::{self, ServerConfig, auth::TokenAuth, tls::CertPair};
use apiserver::storage::Storage;
use apiserver::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use apiserver::storage::etcd::{EtcdConfig, EtcdStorage};

use crate::etcd::EtcdServer;

/// The bearer token the test apiserver accepts (user `admin`, group `system:masters`).
pub const TOKEN: &str = "ferry-test-token";

/// Which store backs the test apiserver.
pub enum Backend<'a> {
    Embedded,
    Etcd(&'a EtcdServer),
}

/// A running apiserver; stopped when dropped.
pub struct TestApiServer {
    pub addr: SocketAddr,
    pub ca_pem: String,
    dir: tempfile::TempDir,
    store: Arc<dyn Storage>,
    runtime: Option<tokio::runtime::Runtime>,
    running: Option<server::RunningServer>,
}

impl TestApiServer {
    /// Starts an apiserver on the given backend. Panics with a clear message if it cannot.
    pub fn start(backend: Backend<'_>) -> TestApiServer {
        Self::start_with_queue(backend, server::cache::DEFAULT_QUEUE_CAPACITY)
    }

    /// As [`TestApiServer::start`], with watchers ended once they are `watch_queue_capacity`
    /// events behind.
    pub fn start_with_queue(backend: Backend<'_>, watch_queue_capacity: usize) -> TestApiServer {
        let dir = tempfile::Builder::new()
            .prefix("ferry-apiserver-")
            .tempdir()
            .expect("create a temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("test-apiserver")
            .build()
            .expect("start a runtime for the apiserver");
        let tls = CertPair::self_signed(&[]).expect("generate a certificate");
        let ca_pem = tls.ca_pem.clone().expect("a generated pair has a CA");
        let endpoint = match &backend {
            Backend::Etcd(etcd) => Some(etcd.endpoint().to_owned()),
            Backend::Embedded => None,
        };
        let store_path = dir.path().join("ferry.redb");
        let running = runtime.block_on(async move {
            let store: Arc<dyn Storage> = match endpoint {
                Some(endpoint) => {
                    let mut config = EtcdConfig::new(vec![endpoint]);
                    config.compaction_interval = None;
                    Arc::new(
                        EtcdStorage::connect(config)
                            .await
                            .expect("connect to the test etcd"),
                    )
                }
                None => Arc::new(
                    EmbeddedStorage::open_with(
                        &store_path,
                        EmbeddedOptions {
                            compaction_interval: None,
                        },
                    )
                    .expect("open the embedded store"),
                ),
            };
            let store_handle = store.clone();
            let running = server::serve(ServerConfig {
                bind: "127.0.0.1:0".parse().expect("a socket address"),
                tls,
                tokens: TokenAuth::single(TOKEN, "admin", &["system:masters"]),
                store,
                prefix: "/registry".into(),
                ferry_version: "0.0.0-test".into(),
                bookmark_interval: std::time::Duration::from_secs(1),
                service_range: server::ipalloc::ServiceRange::parse("10.96.0.0/28")
                    .expect("a service range"),
                watch_queue_capacity,
            })
            .await
            .expect("start the apiserver");
            (running, store_handle)
        });
        let (running, store) = running;
        let server = TestApiServer {
            addr: running.addr,
            ca_pem,
            dir,
            store,
            runtime: Some(runtime),
            running: Some(running),
        };
        std::fs::write(server.kubeconfig(), server.kubeconfig_yaml())
            .expect("write the kubeconfig");
        server
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A kubeconfig for this server (token auth, the server's certificate as CA).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> PathBuf {
        let path = self.dir.path().join("ca.crt");
        if !path.exists() {
            std::fs::write(&path, &self.ca_pem).expect("write the CA file");
        }
        path
    }

    fn kubeconfig_yaml(&self) -> String {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: ferry\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {TOKEN}\ncontexts:\n- name: ferry\n  context:\n    cluster: ferry\n    user: admin\n    namespace: default\ncurrent-context: ferry\n",
            url = self.url()
        )
    }

    /// Compacts the store's history up to its current revision; returns that revision.
    pub fn compact_now(&self) -> i64 {
        let runtime = self.runtime.as_ref().expect("the server is running");
        runtime.block_on(async {
            let revision = self
                .store
                .current_revision()
                .await
                .expect("current revision");
            self.store.compact(revision).await.expect("compact");
            revision
        })
    }

    /// A temp dir that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a versioned kubectl (`"1.33"`) against this server, with a fresh discovery cache.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Output {
        let binary = kubectl_binary(version);
        let cache = self.dir.path().join(format!("kube-cache-{version}"));
        Command::new(&binary)
            .arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .args(args)
            .env("HOME", self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()))
    }

    /// Writes a manifest into the server's temp dir, `NS` replaced by `ns`; returns its path.
    pub fn write_manifest(&self, name: &str, text: &str, ns: &str) -> String {
        let path = self.dir().join(name);
        std::fs::write(&path, text.replace("NS", ns)).expect("write a manifest");
        path.display().to_string()
    }

    /// Runs kubectl, panicking with its output unless it succeeds; returns its stdout.
    pub fn kubectl_ok(&self, version: &str, args: &[&str]) -> String {
        let out = self.kubectl(version, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {version} {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// `kubectl get <what> -n <ns> -o json`, parsed.
    pub fn kubectl_get(&self, version: &str, what: &str, ns: &str) -> serde_json::Value {
        let out = self.kubectl_ok(version, &["get", what, "-n", ns, "-o", "json"]);
        serde_json::from_str(&out).expect("kubectl get -o json")
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let (Some(runtime), Some(running)) = (self.runtime.take(), self.running.take()) {
            runtime.block_on(running.shutdown());
            runtime.shutdown_background();
        }
    }
}

/// The versioned kubectl beside the `kubectl` dispatcher on PATH (`kubectl.1.33`), or
/// `$KUBECTL_DIR/kubectl.<version>`. Panics with a clear message when it is missing.
pub fn kubectl_binary(version: &str) -> PathBuf {
    let name = format!("kubectl.{version}");
    if let Some(dir) = std::env::var_os("KUBECTL_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(&name);
        if candidate.is_file() {
            return candidate;
        }
        let dispatcher = dir.join("kubectl");
        if let Ok(real) = std::fs::canonicalize(&dispatcher)
            && let Some(parent) = real.parent()
        {
            let candidate = parent.join(&name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{name} is not installed: these tests run real kubectl binaries; put {name} on PATH or set KUBECTL_DIR"
    )
}

/// The `kubectl` dispatcher: `$KUBECTL_DIR/kubectl`, else the `kubectl` on PATH (it runs the
/// versioned kubectl that matches the server). Panics with a clear message when it is missing.
pub fn kubectl_dispatcher() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBECTL_DIR") {
        return PathBuf::from(dir).join("kubectl");
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubectl is not installed: these tests run real kubectl binaries; put kubectl on PATH or set KUBECTL_DIR"
            )
        })
}

/// One HTTP exchange made with `curl` (a real client, over TLS, verifying the server's CA).
pub struct RawResponse {
    pub code: u16,
    pub body: String,
    pub headers: String,
}

impl RawResponse {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl TestApiServer {
    /// Sends a request with `curl`; `token` `None` sends no Authorization header.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
        token: Option<&str>,
    ) -> RawResponse {
        let body_file = self.dir.path().join(format!("body-{}", std::process::id()));
        let header_file = self
            .dir
            .path()
            .join(format!("headers-{}", std::process::id()));
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-X", method, "--cacert"])
            .arg(self.ca_file())
            .arg("-D")
            .arg(&header_file)
            .args(["-w", "\n%{http_code}"])
            .arg(format!("{}{}", self.url(), path));
        if let Some(token) = token {
            cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
        }
        match content_type {
            Some(ct) => {
                cmd.arg("-H").arg(format!("Content-Type: {ct}"));
            }
            None => {
                cmd.arg("-H").arg("Content-Type:");
            }
        }
        if let Some(body) = body {
            std::fs::write(&body_file, body).expect("write the request body");
            cmd.arg("--data-binary")
                .arg(format!("@{}", body_file.display()));
        }
        let out = cmd.output().expect("curl is needed for these tests");
        assert!(
            out.status.success(),
            "curl {method} {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let headers = std::fs::read_to_string(&header_file).unwrap_or_default();
        RawResponse {
            code: code.trim().parse().unwrap_or(0),
            body: body.to_owned(),
            headers,
        }
    }
}
