//! Shared by the benchmarks that run the real `ferry apiserver` binary as a child process
//! (`api-read-bench`, `api-watch-bench`, `scheduler-bench`, `kubelet-bench`, …): finding and
//! starting it, trusting its CA, opening TLS connections to it, reading a process's RSS and CPU
//! time, and small statistics helpers.
//!
//! The binary is `ferry` in the directory of the running benchmark's own executable (so
//! `target/release/ferry` for `target/release/api-read-bench`): run `cargo build --release -p
//! ferry && cargo build --release -p bench` first (two commands, so that `ferry` is built as
//! the README builds it: see ferry/build.rs), or pass `--ferry PATH`.

// Each binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The bearer token written to the server's `--token-auth-file` (user `admin`, `system:masters`).
pub const TOKEN: &str = "bench-token";

/// `--name N` from the command line, else `default`.
pub fn arg(name: &str, default: usize) -> Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

/// Whether the bare flag `name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// `--ferry PATH`, else `ferry` beside this benchmark's executable.
pub fn ferry_binary() -> Result<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    let path = match args.iter().position(|a| a == "--ferry") {
        Some(i) => PathBuf::from(args.get(i + 1).context("--ferry needs a path")?),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's executable has no directory")?
            .join("ferry"),
    };
    ensure!(
        path.is_file(),
        "no ferry binary at {}: run `cargo build --release -p ferry && cargo build --release -p bench` first, or pass --ferry PATH",
        path.display()
    );
    Ok(path)
}

/// The median of `v` (the upper one for an even length); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The `q`-quantile (0..=1, nearest rank) of already **sorted** `v`; NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Milliseconds in a duration, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The number of CPUs, for the report header.
pub fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0)
}

/// A running `ferry apiserver` child process with a fresh data directory; killed on drop.
pub struct Ferry {
    child: Child,
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    connector: TlsConnector,
    log_tail: Arc<Mutex<VecDeque<String>>>,
    _data_dir: tempfile::TempDir,
}

impl Ferry {
    /// Starts `binary apiserver` on a free loopback port, on the embedded store or on etcd at
    /// `etcd` (prefix `/registry`), and waits until it prints its address.
    pub fn start(binary: &Path, etcd: Option<&str>) -> Result<Ferry> {
        let data_dir = tempfile::Builder::new().prefix("ferry-bench-").tempdir()?;
        let tokens = data_dir.path().join("tokens.csv");
        std::fs::write(&tokens, format!("{TOKEN},admin,1,\"system:masters\"\n"))?;
        let mut command = Command::new(binary);
        command
            .arg("apiserver")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--bind-address", "127.0.0.1", "--secure-port", "0"])
            .arg("--token-auth-file")
            .arg(&tokens);
        if let Some(endpoint) = etcd {
            command.args(["--etcd-servers", endpoint, "--etcd-prefix", "/registry"]);
        }
        // Passes on the address the apiserver prints.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut tx = Some(tx);
        let (child, log_tail) = spawn_logged(&mut command, 20, move |line| {
            if let Some(addr) = line.strip_prefix("ferry apiserver: serving on https://")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.trim().to_owned());
            }
        })
        .with_context(|| format!("could not start {}", binary.display()))?;
        let mut ferry = Ferry {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            connector: TlsConnector::from(Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            )),
            log_tail,
            _data_dir: data_dir,
        };
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => bail!(
                "ferry apiserver did not print its address within 30 s; its stderr:\n{}",
                ferry.log_tail()
            ),
        };
        ferry.addr = addr
            .parse()
            .with_context(|| format!("ferry printed an odd address {addr:?}"))?;
        let ca = std::fs::read(ferry._data_dir.path().join("pki").join("ca.crt"))
            .context("read <data-dir>/pki/ca.crt")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        ferry.connector = TlsConnector::from(Arc::new(config));
        Ok(ferry)
    }

    /// Writes a kubeconfig for this server (its CA, the bench token) into its data directory;
    /// returns its path.
    pub fn kubeconfig(&self) -> Result<PathBuf> {
        use base64::Engine as _;
        let ca = std::fs::read(self._data_dir.path().join("pki").join("ca.crt"))?;
        let ca = base64::engine::general_purpose::STANDARD.encode(ca);
        let path = self._data_dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: ferry\n  cluster:\n    server: https://localhost:{port}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {TOKEN}\ncontexts:\n- name: ferry\n  context: {{cluster: ferry, user: admin}}\ncurrent-context: ferry\n",
                port = self.addr.port()
            ),
        )?;
        Ok(path)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the server wrote on stderr.
    pub fn log_tail(&self) -> String {
        tail_text(&self.log_tail)
    }

    /// The server's resident set size (`VmRSS` in `/proc/<pid>/status`), in MB (10^6 bytes).
    pub fn rss_mb(&self) -> Result<f64> {
        rss_mb(self.pid())
    }

    /// A TLS connection to the server (server name `localhost`).
    pub async fn tls(&self) -> Result<TlsStream<TcpStream>> {
        self.dialer().tls().await
    }

    /// A keep-alive HTTP/1.1 connection to the server; its driver runs on a spawned task.
    pub async fn http1(&self) -> Result<SendRequest<Full<Bytes>>> {
        self.dialer().http1().await
    }

    /// What opens connections to the server, owned (for tasks that outlive a borrow).
    pub fn dialer(&self) -> Dialer {
        Dialer {
            addr: self.addr,
            connector: self.connector.clone(),
        }
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens TLS connections to a [`Ferry`] (its address and CA).
#[derive(Clone)]
pub struct Dialer {
    addr: SocketAddr,
    connector: TlsConnector,
}

impl Dialer {
    /// A TLS connection to the server (server name `localhost`).
    pub async fn tls(&self) -> Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await.with_context(|| {
            format!(
                "connect to {} (if this says too many open files, raise `ulimit -n`)",
                self.addr
            )
        })?;
        tcp.set_nodelay(true)?;
        self.connector
            .connect(ServerName::try_from("localhost")?, tcp)
            .await
            .context("TLS handshake (if this says too many open files, raise `ulimit -n`)")
    }

    /// A keep-alive HTTP/1.1 connection to the server; its driver runs on a spawned task.
    pub async fn http1(&self) -> Result<SendRequest<Full<Bytes>>> {
        let tls = self.tls().await?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

/// A request to the server with the bench token; `body` empty for GETs.
pub fn request(method: &str, path: &str, body: Bytes) -> Result<hyper::Request<Full<Bytes>>> {
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "localhost")
        .header("Authorization", format!("Bearer {TOKEN}"));
    if !body.is_empty() {
        builder = builder.header("Content-Type", "application/json");
    }
    Ok(builder.body(Full::new(body))?)
}

/// Sends `request` on `sender` and reads the whole response: (status, body).
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Bytes)> {
    use http_body_util::BodyExt as _;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// Open-loop schedule helper: request `i` of a run at `rate`/s starting at `t0` is due at
/// `t0 + i / rate`.
pub fn due(t0: Instant, i: usize, rate: usize) -> Instant {
    t0 + Duration::from_nanos((i as u64) * 1_000_000_000 / rate as u64)
}

/// Waits until `at` and returns the instant a request's latency is measured from: `at` if the
/// caller was already late (the system under test held it up, so the delay counts), else the
/// moment it actually woke (a timer that wakes late through its 1 ms granularity is not the
/// server's fault).
pub async fn wait_until(at: Instant) -> Instant {
    if Instant::now() >= at {
        return at;
    }
    tokio::time::sleep_until(at.into()).await;
    Instant::now()
}

/// Starts `command` quietly (stdin and stdout closed; `RUST_LOG` warn unless set) and reads its
/// stderr on a thread for the child's whole life, so that its pipe never fills: each line goes to
/// `on_line`, and the last `keep` lines are kept for error messages.
pub fn spawn_logged(
    command: &mut Command,
    keep: usize,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> Result<(Child, Arc<Mutex<VecDeque<String>>>)> {
    let mut child = command
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or("warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("the child's stderr")?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let kept = tail.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            on_line(&line);
            let mut tail = kept.lock().unwrap();
            tail.push_back(line);
            if tail.len() > keep {
                tail.pop_front();
            }
        }
    });
    Ok((child, tail))
}

/// The lines [`spawn_logged`] kept, as one text.
pub fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    tail.lock()
        .unwrap()
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

/// A report's "median | min | max" cells over the rounds' figures that exist (NaN: a round had
/// none), with `digits` decimals; "n/a | n/a | n/a" when no round has one.
pub fn summary_cells(values: impl IntoIterator<Item = f64>, digits: usize) -> String {
    let values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    if values.is_empty() {
        return "n/a | n/a | n/a".to_owned();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{:.digits$} | {min:.digits$} | {max:.digits$}",
        median(values.clone())
    )
}

/// The VmRSS of a process, in MB (10^6 bytes).
pub fn rss_mb(pid: u32) -> Result<f64> {
    status_mb(pid, "VmRSS:")
}

/// The peak resident set size of a process so far (`VmHWM`), in MB (10^6 bytes).
pub fn peak_rss_mb(pid: u32) -> Result<f64> {
    status_mb(pid, "VmHWM:")
}

/// A `kB` line of `/proc/<pid>/status`, in MB (10^6 bytes).
fn status_mb(pid: u32, key: &str) -> Result<f64> {
    proc_mb(pid, "status", key)
}

/// The proportional set size of a process (`Pss` of `/proc/<pid>/smaps_rollup`), in MB: the
/// pages it shares with other processes (a binary's) divided among them.
pub fn pss_mb(pid: u32) -> Result<f64> {
    proc_mb(pid, "smaps_rollup", "Pss:")
}

/// The `kB` line `key` of `/proc/<pid>/<file>`, in MB (10^6 bytes).
fn proc_mb(pid: u32, file: &str, key: &str) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}"))?;
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .with_context(|| format!("no {key} line in /proc/{pid}/{file}"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024.0 / 1e6)
}

/// The pid of this process's child called `name` (such as the `etcd` an `EtcdServer` started).
pub fn child_named(name: &str) -> Result<u32> {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc")? {
        let file = entry?.file_name();
        let Some(pid) = file.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let parent = stat[close + 1..].split_whitespace().nth(1);
        if &stat[open + 1..close] == name && parent == Some(me.as_str()) {
            return Ok(pid);
        }
    }
    bail!("no {name} child process found")
}

/// POSTs `n` bodies `body(i)` to `path` from `clients` keep-alive connections, opened before the
/// clock starts; returns (the first send, the last acknowledgement).
pub async fn create_many(
    ferry: &Ferry,
    path: &str,
    n: usize,
    clients: usize,
    body: impl Fn(usize) -> Bytes + Send + Sync + 'static,
) -> Result<(Instant, Instant)> {
    let body = Arc::new(body);
    let mut senders = Vec::new();
    for _ in 0..clients.min(n) {
        senders.push(ferry.http1().await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut sender in senders {
        let (next, path, body) = (next.clone(), path.to_owned(), body.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let (status, response) =
                    send(&mut sender, request("POST", &path, body(i))?).await?;
                ensure!(
                    status == 201,
                    "POST {path}: {status}: {}",
                    String::from_utf8_lossy(&response)
                );
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok((started, Instant::now()))
}

/// GETs `path` and parses the JSON body; fails unless 200.
pub async fn get_json(ferry: &Ferry, path: &str) -> Result<serde_json::Value> {
    let mut sender = ferry.http1().await?;
    let (status, body) = send(&mut sender, request("GET", path, Bytes::new())?).await?;
    ensure!(
        status == 200,
        "GET {path}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`, the unit of the CPU times in
/// `/proc/<pid>/stat`); 100 when `getconf` cannot say.
pub fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system, every thread) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses: state is the first, utime the
    // 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').context("an odd /proc/<pid>/stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    ensure!(fields.len() > 12, "an odd /proc/{pid}/stat");
    Ok((fields[11].parse::<f64>()? + fields[12].parse::<f64>()?) / clock_ticks())
}

/// The machine's busy and total jiffies so far (`/proc/stat`; idle and iowait are not busy).
pub fn machine_jiffies() -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let values: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .context("no cpu line in /proc/stat")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    ensure!(values.len() >= 5, "an odd /proc/stat");
    let total: f64 = values.iter().sum();
    Ok((total - values[3] - values[4], total))
}
