//! A real etcd for tests and benchmarks: started on free loopback ports with a temporary data
//! directory, killed and cleaned up on drop. If `etcd` is not installed the harness panics with
//! the command that installs it: tests that need etcd fail loudly, they never skip.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd server owned by the test.
pub struct EtcdServer {
    child: Child,
    endpoint: String,
    _data_dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd and waits until it answers. Panics with a clear message if it cannot.
    pub fn start() -> EtcdServer {
        let binary = etcd_binary();
        let data_dir = tempfile::Builder::new()
            .prefix("ferry-etcd-")
            .tempdir()
            .expect("create a temp dir for etcd");
        // Two free ports. The listeners are dropped just before etcd binds them; a retry covers
        // the rare case that another process takes one in between.
        for attempt in 0..5 {
            let (client_port, peer_port) = (free_port(), free_port());
            let endpoint = format!("http://127.0.0.1:{client_port}");
            let peer = format!("http://127.0.0.1:{peer_port}");
            let log =
                std::fs::File::create(data_dir.path().join("etcd.log")).expect("create etcd log");
            let mut child = Command::new(&binary)
                .arg("--name=ferry-test")
                .arg(format!(
                    "--data-dir={}",
                    data_dir.path().join("data").display()
                ))
                .arg(format!("--listen-client-urls={endpoint}"))
                .arg(format!("--advertise-client-urls={endpoint}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster=ferry-test={peer}"))
                .arg("--initial-cluster-state=new")
                .arg("--log-level=error")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
            if wait_healthy(&mut child, client_port) {
                return EtcdServer {
                    child,
                    endpoint,
                    _data_dir: data_dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(data_dir.path().join("etcd.log")).unwrap_or_default();
            if attempt == 4 {
                panic!("etcd did not become ready on {endpoint}; its log:\n{log}");
            }
        }
        unreachable!("the loop above returns or panics")
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$ETCD_BIN`, else `etcd` on `PATH`; panics with install instructions when there is none.
fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ETCD_BIN") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "etcd is not installed, and this test needs a real etcd. Install it with \
                 `apt-get install -y etcd-server` (or run `cargo xtask test`, which does), \
                 or point ETCD_BIN at an etcd binary."
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Waits until etcd's `/health` says it is healthy, or it exits, or 20 s pass.
fn wait_healthy(child: &mut Child, port: u16) -> bool {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request = format!(
                "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            let mut body = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut body).is_ok()
                && body.contains("\"health\":\"true\"")
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
