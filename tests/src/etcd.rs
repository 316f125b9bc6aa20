//! A real etcd for tests and benchmarks: started on free loopback ports with a temporary data
//! directory, killed and cleaned up on drop. If `etcd` is not installed the harness panics with
//! the command that installs it: tests that need etcd fail loudly, they never skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd server owned by the test.
pub struct EtcdServer {
    /// `None` while [`EtcdServer::stop`]ped.
    child: Option<Child>,
    endpoint: String,
    client_port: u16,
    peer_port: u16,
    data_dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd and waits until it answers. Panics with a clear message if it cannot.
    pub fn start() -> EtcdServer {
        let data_dir = tempfile::Builder::new()
            .prefix("ferry-etcd-")
            .tempdir()
            .expect("create a temp dir for etcd");
        // Two free ports. The listeners are dropped just before etcd binds them; a retry covers
        // the rare case that another process takes one in between.
        for attempt in 0..5 {
            let (client_port, peer_port) = (free_port(), free_port());
            match launch(data_dir.path(), client_port, peer_port) {
                Ok(child) => {
                    return EtcdServer {
                        child: Some(child),
                        endpoint: client_url(client_port),
                        client_port,
                        peer_port,
                        data_dir,
                    };
                }
                Err(log) if attempt == 4 => panic!(
                    "etcd did not become ready on {}; its log:\n{log}",
                    client_url(client_port)
                ),
                Err(_) => {}
            }
        }
        unreachable!("the loop above returns or panics")
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Kills etcd (as a crash would); its data stays for [`EtcdServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data after [`EtcdServer::stop`], and waits until
    /// it answers. Panics if it does not.
    pub fn restart(&mut self) {
        self.stop();
        match launch(self.data_dir.path(), self.client_port, self.peer_port) {
            Ok(child) => self.child = Some(child),
            Err(log) => panic!(
                "etcd did not come back on {}; its log:\n{log}",
                self.endpoint
            ),
        }
    }
}

fn client_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Runs etcd with its data under `dir` on the given ports until it is healthy; its log when it
/// does not get there.
fn launch(dir: &Path, client_port: u16, peer_port: u16) -> Result<Child, String> {
    let binary = etcd_binary();
    let (client, peer) = (client_url(client_port), client_url(peer_port));
    let log_path = dir.join("etcd.log");
    let log = std::fs::File::create(&log_path).expect("create etcd log");
    let mut child = Command::new(&binary)
        .arg("--name=ferry-test")
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls={client}"))
        .arg(format!("--advertise-client-urls={client}"))
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
        return Ok(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(std::fs::read_to_string(&log_path).unwrap_or_default())
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
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
