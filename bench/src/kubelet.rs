//! `kubelet-bench`: one `ferry kubelet` process playing many nodes (issue 7): does it keep every
//! node's Lease fresh, at what CPU and memory, and how fast do new pods start while the cluster is
//! full and pods are being scheduled?
//!
//! ```text
//! cargo build --release -p ferry && cargo build --release -p bench
//! target/release/kubelet-bench [--nodes 5000] [--pods-per-node 20] [--rate 100] [--seconds 30]
//!                              [--steady-seconds 60] [--pod-startup-delay 0] [--rounds 1]
//!                              [--controllers LIST] [--etcd] [--ferry PATH]
//! ```
//!
//! Per round (fresh processes, and a fresh etcd with `--etcd`, every round; all of them share the
//! machine with this benchmark):
//!
//! 1. `ferry apiserver` starts (embedded store, or etcd with `--etcd`); the benchmark creates the
//!    namespaces `fill` and `latency` and starts three watches that run for the whole round
//!    (resumed from their last resourceVersion whenever the server ends them): Nodes, the Leases
//!    in `kube-node-lease`, and all Pods.
//! 2. `ferry controller-manager` (every controller, or `--controllers`; the node-lifecycle
//!    controller at kube's defaults: `--node-monitor-period 5s`, `--node-monitor-grace-period
//!    40s`, so a node is marked Unknown after 40 s without a heartbeat), `ferry scheduler` and
//!    ONE `ferry kubelet --nodes N --node-name-prefix node --pod-startup-delay D` start. The
//!    kubelet keeps its defaults otherwise: Lease renewed every 10 s, full node status every
//!    5 min, cpu 4, memory 32Gi, max-pods 110.
//! 3. **Registration**: until the Node watch has seen all N nodes `Ready=True`, and every node's
//!    Lease exists.
//! 4. **Fill**: N × `--pods-per-node` pods (`fill-<i>` on `node-<i mod N>`: spread evenly) are
//!    created by 64 concurrent creators **with `spec.nodeName` set** — they bypass the scheduler,
//!    as a full cluster's old pods would have been scheduled long ago — and the benchmark waits
//!    until the Pod watch has seen every one `Ready=True`.
//! 5. **Steady**: `--steady-seconds` with nothing created. The kubelet's CPU time (utime + stime
//!    from `/proc/<pid>/stat`, in `getconf CLK_TCK` ticks) over the window, as a share of one
//!    core, and the largest share over any 10 s of it (1 s samples); its RSS at the end and its
//!    peak (`VmHWM`).
//! 6. **Latency**: pods without a node (`lat-<i>`, namespace `latency`) are created open-loop at
//!    `--rate` per second for `--seconds` (request i is due at `t0 + i/rate` whatever happened to
//!    the earlier ones; a late send is timed from when it was due), so the scheduler places them
//!    and the kubelet starts them. For each: **start-to-Ready** = the Pod watch first seeing
//!    `Ready=True` − the create request's send; also send → bound (`spec.nodeName` first seen)
//!    and bound → Ready. The benchmark waits until every one is Ready.
//! 7. Throughout (from before the kubelet starts to the end): every node whose `Ready` condition
//!    ever turns `Unknown` or `False`, or that ever gets the `node.kubernetes.io/unreachable` or
//!    `…/not-ready` taint, is counted; every Lease renewal's gap since the same Lease's previous
//!    `renewTime` is recorded; once a second the age of the oldest `renewTime` the watch holds is
//!    sampled. At the end a list of the Leases gives each one's age, and a list of the Nodes must
//!    show every node Ready and untainted.
//!
//! All pods request cpu 100m and memory 500Mi (scheduler_perf's `pod-default.yaml`): 20 per node
//! use half a node's cpu. Every phase fails loudly (non-zero exit, with the child's last log
//! lines) if it does not converge in time or a child process exits. Markdown on stdout, progress
//! and the children's first log lines (at `RUST_LOG`, default `warn`) on stderr.
//!
//! Targets (issue 7): 0 nodes Unknown; kubelet CPU ≤ 25 % of one core (the steady window) and
//! RSS ≤ 500 MB (holding the nodes and pods: at the end of the steady window; the peak over the
//! round, which includes the fill burst, is reported beside it); pod start-to-Ready p99 ≤ 1 s
//! while 100 pods/s are scheduled (Kubernetes' SLO is 5 s).

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use common::{
    Dialer, Ferry, create_many, get_json, median, percentile, request, send, spawn_logged,
    summary_cells, tail_text,
};
use http_body_util::BodyExt as _;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use tests::etcd::EtcdServer;

/// Concurrent creators of the fill pods, each on its own keep-alive connection.
const CREATORS: usize = 64;
/// Connections kept open for the paced creates (more are opened if all are busy).
const PACED_CONNECTIONS: usize = 16;
const NODE_PREFIX: &str = "node";
const FILL: &str = "fill";
const LATENCY: &str = "latency";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The node-lifecycle controller's `--node-monitor-grace-period` (kube's default, not changed).
const GRACE_SECONDS: f64 = 40.0;
const TARGET_CPU: f64 = 0.25;
const TARGET_RSS_MB: f64 = 500.0;
const TARGET_P99_S: f64 = 1.0;
/// How many log lines of each child are passed on to stderr (the rest are only counted).
const ECHO_LINES: usize = 40;
/// How long the latency pods may take to be Ready after the last one is created.
const LATENCY_TIMEOUT: Duration = Duration::from_secs(120);
const VALUED: [&str; 10] = [
    "--nodes",
    "--pods-per-node",
    "--rate",
    "--seconds",
    "--steady-seconds",
    "--pod-startup-delay",
    "--rounds",
    "--controllers",
    "--ferry",
    "--node-monitor-grace-period",
];

struct Config {
    nodes: usize,
    pods_per_node: usize,
    rate: usize,
    seconds: usize,
    steady_seconds: usize,
    rounds: usize,
    /// `--pod-startup-delay` for the kubelet, as given (`0`, `500ms`).
    startup_delay: String,
    controllers: Option<String>,
    etcd: bool,
}

impl Config {
    fn from_args() -> Result<Config> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        let mut text = HashMap::new();
        while i < args.len() {
            let a = args[i].as_str();
            if a == "--etcd" {
                i += 1;
                continue;
            }
            ensure!(
                VALUED.contains(&a),
                "unknown argument {a:?}; the flags are --etcd, {}",
                VALUED.join(", ")
            );
            let value = args
                .get(i + 1)
                .with_context(|| format!("{a} needs a value"))?;
            text.insert(a, value.clone());
            i += 2;
        }
        ensure!(
            !text.contains_key("--node-monitor-grace-period"),
            "the node-lifecycle controller keeps kube's 40 s grace period in this benchmark"
        );
        let config = Config {
            nodes: common::arg("--nodes", 5_000)?,
            pods_per_node: common::arg("--pods-per-node", 20)?,
            rate: common::arg("--rate", 100)?,
            seconds: common::arg("--seconds", 30)?,
            steady_seconds: common::arg("--steady-seconds", 60)?,
            rounds: common::arg("--rounds", 1)?,
            startup_delay: text
                .get("--pod-startup-delay")
                .cloned()
                .unwrap_or("0".into()),
            controllers: text.get("--controllers").cloned(),
            etcd: common::flag("--etcd"),
        };
        ensure!(
            config.nodes > 0 && config.rate > 0 && config.seconds > 0 && config.rounds > 0,
            "--nodes, --rate, --seconds and --rounds must be at least 1"
        );
        ensure!(
            config.pods_per_node + 10 <= 110,
            "--pods-per-node must leave room under the kubelet's max-pods 110"
        );
        Ok(config)
    }

    fn store(&self) -> &'static str {
        if self.etcd { "etcd" } else { "embedded" }
    }
}

fn pod_body(name: &str, node: Option<&str>) -> Bytes {
    let node = node.map_or(String::new(), |n| format!(r#""nodeName":"{n}","#));
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{{node}"containers":[{{"name":"pause","image":"registry.k8s.io/pause:3.10","ports":[{{"containerPort":80}}],"resources":{{"requests":{{"cpu":"100m","memory":"500Mi"}},"limits":{{"cpu":"100m","memory":"500Mi"}}}}}}]}}}}"#
    ))
}

/// A `ferry <command>` child process; killed on drop. Its stderr is read on a thread: the first
/// [`ECHO_LINES`] lines are passed on (prefixed), all are counted, the last ones kept.
struct Component {
    name: &'static str,
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
    lines: Arc<AtomicUsize>,
}

impl Component {
    fn start(binary: &Path, name: &'static str, args: &[String]) -> Result<Component> {
        let lines = Arc::new(AtomicUsize::new(0));
        let counted = lines.clone();
        let (child, tail) =
            spawn_logged(Command::new(binary).arg(name).args(args), 30, move |line| {
                let n = counted.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= ECHO_LINES {
                    eprintln!("[{name}] {line}");
                } else if n == ECHO_LINES + 1 {
                    eprintln!("[{name}] (further lines are counted, not shown)");
                }
            })
            .with_context(|| format!("start ferry {name}"))?;
        Ok(Component {
            name,
            child,
            tail,
            lines,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        tail_text(&self.tail)
    }

    /// Fails, with its last log lines, if the process has exited.
    fn check(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "ferry {} exited with {status}; its last log lines:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the Node watch saw.
#[derive(Default)]
struct NodeState {
    /// Nodes whose latest state is `Ready=True`.
    ready: HashSet<String>,
    /// Nodes ever seen `Ready=Unknown` / `Ready=False` / with the unreachable / not-ready taint.
    unknown: HashSet<String>,
    not_ready: HashSet<String>,
    unreachable: HashSet<String>,
    not_ready_taint: HashSet<String>,
    deleted: usize,
    /// Node events (status writes, mostly).
    events: usize,
}

impl NodeState {
    fn apply(&mut self, event: &Value) {
        let node = &event["object"];
        let Some(name) = node["metadata"]["name"].as_str() else {
            return;
        };
        self.events += 1;
        if event["type"] == "DELETED" {
            self.ready.remove(name);
            self.deleted += 1;
            return;
        }
        let ready = node["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .and_then(|c| c["status"].as_str());
        match ready {
            Some("True") => {
                self.ready.insert(name.to_owned());
            }
            Some("Unknown") => {
                self.ready.remove(name);
                self.unknown.insert(name.to_owned());
            }
            Some(_) => {
                self.ready.remove(name);
                self.not_ready.insert(name.to_owned());
            }
            None => {
                self.ready.remove(name);
            }
        }
        for taint in node["spec"]["taints"].as_array().into_iter().flatten() {
            match taint["key"].as_str() {
                Some(UNREACHABLE) => {
                    self.unreachable.insert(name.to_owned());
                }
                Some(NOT_READY) => {
                    self.not_ready_taint.insert(name.to_owned());
                }
                _ => {}
            }
        }
    }
}

/// What the Lease watch saw: each Lease's latest `renewTime` (µs since the epoch) and the gaps
/// between one Lease's consecutive renewals.
#[derive(Default)]
struct LeaseState {
    last: HashMap<String, i64>,
    gaps: Vec<f32>,
    max_gap: (f64, String),
}

impl LeaseState {
    fn apply(&mut self, event: &Value) {
        if event["type"] == "DELETED" {
            return;
        }
        let lease = &event["object"];
        let (Some(name), Some(renewed)) = (
            lease["metadata"]["name"].as_str(),
            lease["spec"]["renewTime"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok()),
        ) else {
            return;
        };
        let renewed = renewed.as_microsecond();
        if let Some(previous) = self.last.insert(name.to_owned(), renewed)
            && renewed > previous
        {
            let gap = (renewed - previous) as f64 / 1e6;
            self.gaps.push(gap as f32);
            if gap > self.max_gap.0 {
                self.max_gap = (gap, name.to_owned());
            }
        }
    }

    /// The age of the oldest `renewTime` held, in seconds.
    fn oldest_age(&self) -> Option<f64> {
        let now = Timestamp::now().as_microsecond();
        self.last
            .values()
            .min()
            .map(|oldest| (now - oldest) as f64 / 1e6)
    }
}

/// When the Pod watch first saw a latency pod bound and Ready.
#[derive(Default, Clone, Copy)]
struct Seen {
    bound: Option<Instant>,
    ready: Option<Instant>,
}

#[derive(Default)]
struct PodState {
    /// Fill pods seen `Ready=True`, by name.
    fill_ready: HashSet<String>,
    latency: HashMap<String, Seen>,
    latency_ready: usize,
    /// DELETED events (nothing in this benchmark deletes pods: an eviction would).
    deleted: usize,
}

impl PodState {
    fn apply(&mut self, event: &Value, at: Instant) {
        if event["type"] == "DELETED" {
            self.deleted += 1;
            return;
        }
        let pod = &event["object"];
        let (Some(namespace), Some(name)) = (
            pod["metadata"]["namespace"].as_str(),
            pod["metadata"]["name"].as_str(),
        ) else {
            return;
        };
        let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        match namespace {
            FILL if ready => {
                self.fill_ready.insert(name.to_owned());
            }
            LATENCY => {
                let seen = self.latency.entry(name.to_owned()).or_default();
                if seen.bound.is_none()
                    && pod["spec"]["nodeName"]
                        .as_str()
                        .is_some_and(|n| !n.is_empty())
                {
                    seen.bound = Some(at);
                }
                if seen.ready.is_none() && ready {
                    seen.ready = Some(at);
                    self.latency_ready += 1;
                }
            }
            _ => {}
        }
    }
}

/// The watches' health: why one stopped for good, and how often one was resumed.
#[derive(Default)]
struct WatchHealth {
    failed: Mutex<Option<String>>,
    resumed: AtomicUsize,
}

enum WatchEnd {
    /// The server ended the stream: resume from the last resourceVersion.
    Ended,
    /// 410: events were lost; the benchmark's counts would be wrong.
    Expired(String),
    Failed(anyhow::Error),
}

/// Follows `path` (a collection) from `rv` until aborted, resuming from the last resourceVersion
/// seen when the server ends the stream; `handle` gets each event and the instant its chunk
/// arrived. Stops (recording why in `health`) on a 410 or after repeated failures.
fn follow(
    dialer: Dialer,
    path: &str,
    rv: String,
    health: Arc<WatchHealth>,
    mut handle: impl FnMut(&Value, Instant) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let path = path.to_owned();
    tokio::spawn(async move {
        let mut rv = rv;
        let mut failures = 0;
        loop {
            match watch_once(&dialer, &path, &mut rv, &mut handle).await {
                WatchEnd::Ended => {
                    health.resumed.fetch_add(1, Ordering::Relaxed);
                    failures = 0;
                }
                WatchEnd::Expired(why) => {
                    *health.failed.lock().unwrap() = Some(format!(
                        "the watch of {path} expired (410), events were lost: {why}"
                    ));
                    return;
                }
                WatchEnd::Failed(error) => {
                    failures += 1;
                    if failures >= 20 {
                        *health.failed.lock().unwrap() =
                            Some(format!("the watch of {path} keeps failing: {error:#}"));
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    })
}

async fn watch_once(
    dialer: &Dialer,
    path: &str,
    rv: &mut String,
    handle: &mut (impl FnMut(&Value, Instant) + Send),
) -> WatchEnd {
    let url = format!("{path}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}");
    let response = async {
        let mut sender = dialer.http1().await?;
        sender.ready().await?;
        let response = sender
            .send_request(request("GET", &url, Bytes::new())?)
            .await?;
        anyhow::Ok((sender, response))
    }
    .await;
    let (_sender, response) = match response {
        Ok(r) => r,
        Err(error) => return WatchEnd::Failed(error),
    };
    let status = response.status().as_u16();
    if status != 200 {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).into_owned();
        return if status == 410 {
            WatchEnd::Expired(text)
        } else {
            WatchEnd::Failed(anyhow::anyhow!("GET {url}: {status}: {text}"))
        };
    }
    let mut body = response.into_body();
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let frame = match body.frame().await {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return WatchEnd::Failed(error.into()),
            None => return WatchEnd::Ended,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        buffer.extend_from_slice(&data);
        let mut consumed = 0;
        while let Some(newline) = buffer[consumed..].iter().position(|&b| b == b'\n') {
            let line = &buffer[consumed..consumed + newline];
            consumed += newline + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event: Value = match serde_json::from_slice(line) {
                Ok(event) => event,
                Err(error) => {
                    return WatchEnd::Failed(anyhow::anyhow!(
                        "an unparsable watch event ({error}): {}",
                        String::from_utf8_lossy(line)
                    ));
                }
            };
            if let Some(next) = event["object"]["metadata"]["resourceVersion"].as_str() {
                next.clone_into(rv);
            }
            match event["type"].as_str() {
                Some("ERROR") => {
                    let text = event.to_string();
                    return if event["object"]["code"] == 410 {
                        WatchEnd::Expired(text)
                    } else {
                        WatchEnd::Failed(anyhow::anyhow!("the watch sent an error: {text}"))
                    };
                }
                Some("BOOKMARK") => {}
                _ => handle(&event, now),
            }
        }
        buffer.drain(..consumed);
    }
}

/// The resourceVersion of a list of `path`.
async fn list_rv(ferry: &Ferry, path: &str) -> Result<String> {
    let list = get_json(ferry, path).await?;
    Ok(list["metadata"]["resourceVersion"]
        .as_str()
        .context("a list without resourceVersion")?
        .to_owned())
}

/// CPU seconds so far of the round's processes, and of the machine.
#[derive(Clone, Copy)]
struct Snapshot {
    at: Instant,
    /// kubelet, apiserver, scheduler, controller-manager, etcd, this benchmark.
    cpu: [f64; 6],
    machine: (f64, f64),
}

const PROCESSES: [&str; 6] = [
    "kubelet",
    "apiserver",
    "scheduler",
    "controller-manager",
    "etcd",
    "bench",
];

/// CPU used between two snapshots, in cores (CPU seconds / wall seconds), and the machine's busy
/// share.
#[derive(Clone, Copy, Default)]
struct PhaseCpu {
    cores: [f64; 6],
    machine: f64,
    secs: f64,
}

fn phase_cpu(a: &Snapshot, b: &Snapshot) -> PhaseCpu {
    let secs = (b.at - a.at).as_secs_f64().max(1e-9);
    let mut cores = [0.0; 6];
    for (i, c) in cores.iter_mut().enumerate() {
        *c = (b.cpu[i] - a.cpu[i]) / secs;
    }
    PhaseCpu {
        cores,
        machine: (b.machine.0 - a.machine.0) / (b.machine.1 - a.machine.1).max(1.0),
        secs,
    }
}

/// One sample a second: the kubelet's CPU seconds, the oldest Lease's age.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    kubelet_cpu: f64,
    oldest_lease_s: Option<f64>,
}

/// The processes of a round beside the apiserver, and the watches and sampler. Dropping it kills
/// them (the apiserver, a separate value declared before it, goes after).
struct Cluster {
    kubelet: Component,
    scheduler: Component,
    controller_manager: Component,
    pids: [Option<u32>; 6],
    health: Arc<WatchHealth>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Cluster {
    /// Fails if a child exited or a watch stopped for good.
    fn check(&mut self) -> Result<()> {
        self.kubelet.check()?;
        self.scheduler.check()?;
        self.controller_manager.check()?;
        if let Some(why) = self.health.failed.lock().unwrap().clone() {
            bail!("{why}");
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let mut cpu = [0.0; 6];
        for (i, pid) in self.pids.iter().enumerate() {
            if let Some(pid) = pid {
                cpu[i] = common::cpu_seconds(*pid)
                    .with_context(|| format!("the CPU time of {}", PROCESSES[i]))?;
            }
        }
        Ok(Snapshot {
            at: Instant::now(),
            cpu,
            machine: common::machine_jiffies()?,
        })
    }

    /// Runs `work` to its end, then waits until `done()` says so, checking the processes every
    /// 100 ms and printing `done()`'s progress every 10 s; fails after `timeout` (from now).
    async fn drive<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        work: impl Future<Output = Result<T>>,
        mut done: impl FnMut() -> (bool, String),
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut work = std::pin::pin!(work);
        let mut output = None;
        let mut last_report = Instant::now();
        loop {
            if output.is_none() {
                tokio::select! {
                    result = &mut work => output = Some(result.with_context(|| what.to_owned())?),
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.check().with_context(|| what.to_owned())?;
            let (finished, progress) = done();
            if let (true, Some(_)) = (finished, &output) {
                return Ok(output.take().expect("checked"));
            }
            if Instant::now() > deadline {
                bail!(
                    "{what}: not done after {} s ({progress}; work finished: {}); the kubelet's last log lines:\n{}",
                    timeout.as_secs(),
                    output.is_some(),
                    self.kubelet.log_tail()
                );
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                eprintln!("  {what}: {progress}");
                last_report = Instant::now();
            }
        }
    }
}

/// Creates `rate × seconds` latency pods open-loop: request `i` is due at `t0 + i/rate`, sent on
/// a spare keep-alive connection (a new one when all are busy); returns when each was sent
/// (when it was due if the benchmark was late) and the last acknowledgement.
async fn paced_creates(
    ferry: &Ferry,
    rate: usize,
    total: usize,
) -> Result<(Vec<Instant>, Instant)> {
    let dialer = ferry.dialer();
    let mut spare = Vec::new();
    for _ in 0..PACED_CONNECTIONS {
        spare.push(dialer.http1().await?);
    }
    let spare = Arc::new(Mutex::new(spare));
    let path = format!("/api/v1/namespaces/{LATENCY}/pods");
    let t0 = Instant::now() + Duration::from_millis(50);
    let mut sent = Vec::with_capacity(total);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        sent.push(common::wait_until(common::due(t0, i, rate)).await);
        let (spare, dialer, path) = (spare.clone(), dialer.clone(), path.clone());
        tasks.spawn(async move {
            let taken = spare.lock().unwrap().pop();
            let mut sender = match taken {
                Some(sender) => sender,
                None => dialer.http1().await?,
            };
            let body = pod_body(&format!("lat-{i}"), None);
            let (status, response) = send(&mut sender, request("POST", &path, body)?).await?;
            ensure!(
                status == 201,
                "POST {path}: {status}: {}",
                String::from_utf8_lossy(&response)
            );
            spare.lock().unwrap().push(sender);
            Ok(())
        });
        while let Some(result) = tasks.try_join_next() {
            result??;
        }
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok((sent, Instant::now()))
}

/// p50, p99 and max of `values` (seconds), and how many.
#[derive(Clone, Copy, Default)]
struct Spread {
    p50: f64,
    p99: f64,
    max: f64,
    n: usize,
}

fn spread(mut values: Vec<f64>) -> Spread {
    values.sort_by(|a, b| a.total_cmp(b));
    Spread {
        p50: percentile(&values, 0.5),
        p99: percentile(&values, 0.99),
        max: values.last().copied().unwrap_or(f64::NAN),
        n: values.len(),
    }
}

/// One round's results.
struct Round {
    register_secs: f64,
    fill_create_rate: f64,
    /// First fill create → every fill pod Ready.
    fill_ready_secs: f64,
    /// Per phase: registration, fill, steady, latency.
    cpu: [PhaseCpu; 4],
    /// The kubelet's CPU over the steady window, and the most over any 10 s of it, in cores.
    steady_cpu: f64,
    steady_cpu_max_10s: f64,
    /// Node status writes seen during the steady window (the 5-minute full status, if it fell
    /// in it).
    steady_node_events: usize,
    kubelet_rss_steady_mb: f64,
    kubelet_rss_end_mb: f64,
    kubelet_peak_rss_mb: f64,
    apiserver_rss_end_mb: f64,
    latency_create_rate: f64,
    start_to_ready: Spread,
    to_bound: Spread,
    bound_to_ready: Spread,
    nodes_unknown: usize,
    nodes_not_ready: usize,
    nodes_unreachable: usize,
    nodes_not_ready_taint: usize,
    pods_deleted: usize,
    lease_gap: Spread,
    lease_gap_node: String,
    /// The oldest renewTime's age, most seen in the 1 s samples (after registration).
    lease_oldest_max: f64,
    /// The oldest renewTime's age in the final list.
    lease_final_max: f64,
    watch_resumes: usize,
    /// Log lines (at RUST_LOG, default warn) of the kubelet, scheduler, controller-manager.
    log_lines: [usize; 3],
    /// The machine's 1-minute load average before and after the round.
    load: [f64; 2],
}

async fn round(binary: &Path, config: &Config, etcd: Option<&EtcdServer>) -> Result<Round> {
    let n = config.nodes;
    let ferry = Ferry::start(binary, etcd.map(|e| e.endpoint()))?;
    let etcd_pid = match etcd {
        Some(_) => Some(common::child_named("etcd")?),
        None => None,
    };
    let kubeconfig = ferry.kubeconfig()?.display().to_string();
    for namespace in [FILL, LATENCY] {
        let mut sender = ferry.http1().await?;
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{namespace}"}}}}"#
        );
        let (status, response) = send(
            &mut sender,
            request("POST", "/api/v1/namespaces", Bytes::from(body))?,
        )
        .await?;
        ensure!(
            status == 201,
            "create namespace {namespace}: {status}: {}",
            String::from_utf8_lossy(&response)
        );
    }

    // The watches, from before any node exists.
    let health = Arc::new(WatchHealth::default());
    let nodes = Arc::new(Mutex::new(NodeState::default()));
    let leases = Arc::new(Mutex::new(LeaseState::default()));
    let pods = Arc::new(Mutex::new(PodState::default()));
    let mut tasks = Vec::new();
    {
        let nodes = nodes.clone();
        let rv = list_rv(&ferry, "/api/v1/nodes").await?;
        tasks.push(follow(
            ferry.dialer(),
            "/api/v1/nodes",
            rv,
            health.clone(),
            move |event, _| nodes.lock().unwrap().apply(event),
        ));
        let leases = leases.clone();
        let rv = list_rv(&ferry, LEASES).await?;
        tasks.push(follow(
            ferry.dialer(),
            LEASES,
            rv,
            health.clone(),
            move |event, _| leases.lock().unwrap().apply(event),
        ));
        let pods = pods.clone();
        let rv = list_rv(&ferry, "/api/v1/pods").await?;
        tasks.push(follow(
            ferry.dialer(),
            "/api/v1/pods",
            rv,
            health.clone(),
            move |event, at| pods.lock().unwrap().apply(event, at),
        ));
    }

    let mut cm_args = vec!["--kubeconfig".to_owned(), kubeconfig.clone()];
    if let Some(list) = &config.controllers {
        cm_args.extend(["--controllers".to_owned(), list.clone()]);
    }
    let controller_manager = Component::start(binary, "controller-manager", &cm_args)?;
    let scheduler_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let scheduler = Component::start(
        binary,
        "scheduler",
        &[
            "--kubeconfig".to_owned(),
            kubeconfig.clone(),
            "--bind-address".to_owned(),
            scheduler_addr.to_string(),
        ],
    )?;
    let kubelet = Component::start(
        binary,
        "kubelet",
        &[
            "--kubeconfig".to_owned(),
            kubeconfig.clone(),
            "--nodes".to_owned(),
            n.to_string(),
            "--node-name-prefix".to_owned(),
            NODE_PREFIX.to_owned(),
            "--pod-startup-delay".to_owned(),
            config.startup_delay.clone(),
        ],
    )?;
    eprintln!(
        "  apiserver pid {}, controller-manager pid {}, scheduler pid {}, kubelet pid {}{}",
        ferry.pid(),
        controller_manager.pid(),
        scheduler.pid(),
        kubelet.pid(),
        etcd_pid.map_or(String::new(), |p| format!(", etcd pid {p}"))
    );
    let pids = [
        Some(kubelet.pid()),
        Some(ferry.pid()),
        Some(scheduler.pid()),
        Some(controller_manager.pid()),
        etcd_pid,
        Some(std::process::id()),
    ];
    let kubelet_pid = kubelet.pid();
    let mut cluster = Cluster {
        kubelet,
        scheduler,
        controller_manager,
        pids,
        health: health.clone(),
        tasks,
    };

    // One sample a second for the whole round.
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    {
        let (samples, leases) = (samples.clone(), leases.clone());
        cluster.tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticks.tick().await;
                let Ok(kubelet_cpu) = common::cpu_seconds(kubelet_pid) else {
                    continue;
                };
                let oldest_lease_s = leases.lock().unwrap().oldest_age();
                samples.lock().unwrap().push(Sample {
                    at: Instant::now(),
                    kubelet_cpu,
                    oldest_lease_s,
                });
            }
        }));
    }

    // Registration.
    let s0 = cluster.snapshot()?;
    let started = Instant::now();
    let register_timeout = Duration::from_secs(120 + n as u64 / 25);
    cluster
        .drive("registration", register_timeout, async { Ok(()) }, || {
            let ready = nodes.lock().unwrap().ready.len();
            let with_lease = leases.lock().unwrap().last.len();
            (
                ready >= n && with_lease >= n,
                format!("{ready} of {n} nodes Ready, {with_lease} Leases"),
            )
        })
        .await?;
    let register_secs = started.elapsed().as_secs_f64();
    let registered_at = Instant::now();
    eprintln!("  {n} nodes Ready with their Leases in {register_secs:.1} s");

    // Fill.
    let s1 = cluster.snapshot()?;
    let fill_total = n * config.pods_per_node;
    let fill_timeout = Duration::from_secs(300 + fill_total as u64 / 100);
    let fill_path = format!("/api/v1/namespaces/{FILL}/pods");
    let creating = create_many(&ferry, &fill_path, fill_total, CREATORS, move |i| {
        pod_body(
            &format!("fill-{i}"),
            Some(&format!("{NODE_PREFIX}-{}", i % n)),
        )
    });
    let (first, created) = cluster
        .drive("fill", fill_timeout, creating, || {
            let ready = pods.lock().unwrap().fill_ready.len();
            (
                ready >= fill_total,
                format!("{ready} of {fill_total} fill pods Ready"),
            )
        })
        .await
        .with_context(|| format!("the apiserver's last log lines:\n{}", ferry.log_tail()))?;
    let fill_ready_secs = first.elapsed().as_secs_f64();
    let fill_create_rate = fill_total as f64 / (created - first).as_secs_f64();
    eprintln!(
        "  {fill_total} fill pods created at {fill_create_rate:.0}/s, all Ready {fill_ready_secs:.1} s after the first create"
    );

    // Steady.
    let s2 = cluster.snapshot()?;
    let node_events_before = nodes.lock().unwrap().events;
    let steady_end = s2.at + Duration::from_secs(config.steady_seconds as u64);
    while Instant::now() < steady_end {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cluster.check().context("steady phase")?;
    }
    let s3 = cluster.snapshot()?;
    let steady_node_events = nodes.lock().unwrap().events - node_events_before;
    let kubelet_rss_steady_mb = common::rss_mb(kubelet_pid)?;
    let steady_cpu = (s3.cpu[0] - s2.cpu[0]) / (s3.at - s2.at).as_secs_f64();
    let steady_cpu_max_10s = {
        let samples = samples.lock().unwrap();
        let window: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= s2.at && s.at <= s3.at)
            .collect();
        let mut most: f64 = 0.0;
        for (i, a) in window.iter().enumerate() {
            if let Some(b) = window[i..]
                .iter()
                .find(|b| b.at - a.at >= Duration::from_secs(10))
            {
                most = most.max((b.kubelet_cpu - a.kubelet_cpu) / (b.at - a.at).as_secs_f64());
            }
        }
        most
    };
    eprintln!(
        "  steady {} s: kubelet {:.1} % of a core (most over 10 s: {:.1} %), RSS {kubelet_rss_steady_mb:.0} MB",
        config.steady_seconds,
        100.0 * steady_cpu,
        100.0 * steady_cpu_max_10s
    );

    // Latency.
    let total = config.rate * config.seconds;
    let creating = paced_creates(&ferry, config.rate, total);
    let (sent, last_ack) = cluster
        .drive(
            "latency",
            Duration::from_secs(config.seconds as u64) + LATENCY_TIMEOUT,
            creating,
            || {
                let ready = pods.lock().unwrap().latency_ready;
                (
                    ready >= total,
                    format!("{ready} of {total} latency pods Ready"),
                )
            },
        )
        .await
        .with_context(|| format!("the apiserver's last log lines:\n{}", ferry.log_tail()))?;
    let s4 = cluster.snapshot()?;
    let latency_create_rate = total as f64 / (last_ack - sent[0]).as_secs_f64();
    let (start_to_ready, to_bound, bound_to_ready) = {
        let pods = pods.lock().unwrap();
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for (i, at) in sent.iter().enumerate() {
            let seen = pods
                .latency
                .get(&format!("lat-{i}"))
                .copied()
                .unwrap_or_default();
            let ready = seen.ready.with_context(|| format!("lat-{i} never Ready"))?;
            a.push(ready.saturating_duration_since(*at).as_secs_f64());
            if let Some(bound) = seen.bound {
                b.push(bound.saturating_duration_since(*at).as_secs_f64());
                c.push(ready.saturating_duration_since(bound).as_secs_f64());
            }
        }
        (spread(a), spread(b), spread(c))
    };
    eprintln!(
        "  latency: {total} pods at {latency_create_rate:.0}/s; start-to-Ready p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        start_to_ready.p50 * 1e3,
        start_to_ready.p99 * 1e3,
        start_to_ready.max * 1e3
    );

    // Final checks.
    let lease_list = get_json(&ferry, LEASES).await?;
    let now = Timestamp::now().as_microsecond();
    let mut lease_final_max: f64 = 0.0;
    let mut lease_count = 0;
    for lease in lease_list["items"]
        .as_array()
        .context("a list without items")?
    {
        let renewed = lease["spec"]["renewTime"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .with_context(|| format!("a Lease without renewTime: {lease}"))?;
        lease_final_max = lease_final_max.max((now - renewed.as_microsecond()) as f64 / 1e6);
        lease_count += 1;
    }
    ensure!(
        lease_count == n,
        "{lease_count} Leases in kube-node-lease, {n} nodes"
    );
    let node_list = get_json(&ferry, "/api/v1/nodes").await?;
    let node_items = node_list["items"]
        .as_array()
        .context("a list without items")?;
    ensure!(
        node_items.len() == n,
        "{} Nodes listed, {n} expected",
        node_items.len()
    );
    let mut final_check = NodeState::default();
    for node in node_items {
        final_check.apply(&serde_json::json!({"type": "ADDED", "object": node}));
    }
    let kubelet_rss_end_mb = common::rss_mb(kubelet_pid)?;
    let kubelet_peak_rss_mb = common::peak_rss_mb(kubelet_pid)?;
    let apiserver_rss_end_mb = ferry.rss_mb()?;
    cluster.check()?;
    let lease_oldest_max = samples
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.at >= registered_at)
        .filter_map(|s| s.oldest_lease_s)
        .fold(0.0, f64::max);
    let (lease_gap, lease_gap_node) = {
        let leases = leases.lock().unwrap();
        (
            spread(leases.gaps.iter().map(|g| f64::from(*g)).collect()),
            leases.max_gap.1.clone(),
        )
    };
    let nodes = nodes.lock().unwrap();
    let not_ready_now = n - final_check.ready.len();
    let tainted_now = final_check.unreachable.len() + final_check.not_ready_taint.len();
    if not_ready_now > 0 || tainted_now > 0 {
        eprintln!(
            "  WARNING: at the end {not_ready_now} nodes are not Ready and {tainted_now} carry an unreachable/not-ready taint"
        );
    }
    let round = Round {
        register_secs,
        fill_create_rate,
        fill_ready_secs,
        cpu: [
            phase_cpu(&s0, &s1),
            phase_cpu(&s1, &s2),
            phase_cpu(&s2, &s3),
            phase_cpu(&s3, &s4),
        ],
        steady_cpu,
        steady_cpu_max_10s,
        steady_node_events,
        kubelet_rss_steady_mb,
        kubelet_rss_end_mb,
        kubelet_peak_rss_mb,
        apiserver_rss_end_mb,
        latency_create_rate,
        start_to_ready,
        to_bound,
        bound_to_ready,
        nodes_unknown: nodes.unknown.len().max(final_check.unknown.len()),
        nodes_not_ready: nodes.not_ready.len().max(final_check.not_ready.len()),
        nodes_unreachable: nodes.unreachable.len().max(final_check.unreachable.len()),
        nodes_not_ready_taint: nodes
            .not_ready_taint
            .len()
            .max(final_check.not_ready_taint.len()),
        pods_deleted: pods.lock().unwrap().deleted,
        lease_gap,
        lease_gap_node,
        lease_oldest_max,
        lease_final_max,
        watch_resumes: health.resumed.load(Ordering::Relaxed),
        log_lines: [
            cluster.kubelet.lines.load(Ordering::Relaxed),
            cluster.scheduler.lines.load(Ordering::Relaxed),
            cluster.controller_manager.lines.load(Ordering::Relaxed),
        ],
        load: [f64::NAN; 2],
    };
    drop(nodes);
    drop(cluster);
    drop(ferry);
    Ok(round)
}

fn print_round(i: usize, r: &Round) {
    let cpu = |phase: usize| {
        let p = &r.cpu[phase];
        format!(
            "{:.0} s: kubelet {:.2}, apiserver {:.2}, scheduler {:.2}, controller-manager {:.2}, etcd {:.2}, bench {:.2}, everything else (kernel, other processes) {:.2} cores, machine {:.0} % busy",
            p.secs,
            p.cores[0],
            p.cores[1],
            p.cores[2],
            p.cores[3],
            p.cores[4],
            p.cores[5],
            p.machine * common::nproc() as f64 - p.cores.iter().sum::<f64>(),
            100.0 * p.machine
        )
    };
    println!(
        "- round {}: registration {:.1} s; fill created at {:.0}/s, all Ready after {:.1} s; steady kubelet CPU {:.1} % of a core (most over 10 s {:.1} %, {} node events in the window), kubelet RSS {:.0} MB steady, {:.0} MB end, {:.0} MB peak; apiserver RSS {:.0} MB end; latency: {} pods created at {:.1}/s, start-to-Ready p50 {:.0} ms p99 {:.0} ms max {:.0} ms, send→bound p50 {:.0} ms p99 {:.0} ms, bound→Ready p50 {:.0} ms p99 {:.0} ms; nodes ever Unknown {}, False {}, unreachable-tainted {}, not-ready-tainted {}; pods deleted {}; lease renewal gaps n={} p50 {:.1} s p99 {:.1} s max {:.1} s ({}), oldest renewTime seen {:.1} s, in the final list {:.1} s; watch resumes {}; log lines kubelet {} scheduler {} controller-manager {}; load average {:.2} before, {:.2} after",
        i + 1,
        r.register_secs,
        r.fill_create_rate,
        r.fill_ready_secs,
        100.0 * r.steady_cpu,
        100.0 * r.steady_cpu_max_10s,
        r.steady_node_events,
        r.kubelet_rss_steady_mb,
        r.kubelet_rss_end_mb,
        r.kubelet_peak_rss_mb,
        r.apiserver_rss_end_mb,
        r.start_to_ready.n,
        r.latency_create_rate,
        r.start_to_ready.p50 * 1e3,
        r.start_to_ready.p99 * 1e3,
        r.start_to_ready.max * 1e3,
        r.to_bound.p50 * 1e3,
        r.to_bound.p99 * 1e3,
        r.bound_to_ready.p50 * 1e3,
        r.bound_to_ready.p99 * 1e3,
        r.nodes_unknown,
        r.nodes_not_ready,
        r.nodes_unreachable,
        r.nodes_not_ready_taint,
        r.pods_deleted,
        r.lease_gap.n,
        r.lease_gap.p50,
        r.lease_gap.p99,
        r.lease_gap.max,
        r.lease_gap_node,
        r.lease_oldest_max,
        r.lease_final_max,
        r.watch_resumes,
        r.log_lines[0],
        r.log_lines[1],
        r.log_lines[2],
        r.load[0],
        r.load[1],
    );
    for (phase, name) in ["registration", "fill", "steady", "latency"]
        .iter()
        .enumerate()
    {
        println!("  - CPU, {name} phase, {}", cpu(phase));
    }
}

async fn run_round(binary: &Path, config: &Config, i: usize) -> Result<Round> {
    let etcd = config.etcd.then(EtcdServer::start);
    eprintln!("round {} ({} store):", i + 1, config.store());
    let load_before = load_average();
    let mut round = round(binary, config, etcd.as_ref())
        .await
        .with_context(|| format!("round {}", i + 1))?;
    round.load = [load_before, load_average()];
    Ok(round)
}

/// The machine's 1-minute load average (`/proc/loadavg`), NaN when unreadable.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() -> Result<()> {
    let config = Config::from_args()?;
    let binary: PathBuf = common::ferry_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("# kubelet-bench\n");
    println!(
        "- `ferry apiserver` ({} store), `ferry controller-manager` ({}), `ferry scheduler` and one `ferry kubelet --nodes {} --pod-startup-delay {}` as child processes ({}), fresh ones per round; nproc: {}; clock ticks {}",
        config.store(),
        config
            .controllers
            .as_deref()
            .map_or("every controller".to_owned(), |c| format!(
                "--controllers {c}"
            )),
        config.nodes,
        config.startup_delay,
        binary.display(),
        common::nproc(),
        common::clock_ticks()
    );
    println!(
        "- fill: {} × {} pods created with spec.nodeName set (bypassing the scheduler) by {CREATORS} creators; steady {} s; latency: {} pods/s for {} s through the scheduler, open loop; {} round(s)\n",
        config.nodes,
        config.pods_per_node,
        config.steady_seconds,
        config.rate,
        config.seconds,
        config.rounds
    );
    let mut rounds = Vec::new();
    for i in 0..config.rounds {
        // Ctrl-C drops the round, which kills its child processes.
        let r = runtime.block_on(async {
            tokio::select! {
                r = run_round(&binary, &config, i) => r,
                _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            }
        })?;
        print_round(i, &r);
        rounds.push(r);
    }

    type Metric = (&'static str, fn(&Round) -> f64, usize);
    let metrics: [Metric; 28] = [
        (
            "registration: all nodes Ready with Leases, s",
            |r| r.register_secs,
            1,
        ),
        ("fill: pod creates/s", |r| r.fill_create_rate, 0),
        (
            "fill: first create → all Ready, s",
            |r| r.fill_ready_secs,
            1,
        ),
        (
            "**steady: kubelet CPU, % of one core**",
            |r| 100.0 * r.steady_cpu,
            1,
        ),
        (
            "steady: kubelet CPU, most over 10 s, % of one core",
            |r| 100.0 * r.steady_cpu_max_10s,
            1,
        ),
        (
            "steady: node status writes seen in the window",
            |r| r.steady_node_events as f64,
            0,
        ),
        (
            "**kubelet RSS, end of steady, MB**",
            |r| r.kubelet_rss_steady_mb,
            0,
        ),
        (
            "kubelet RSS, peak (VmHWM) over the round, MB",
            |r| r.kubelet_peak_rss_mb,
            0,
        ),
        ("kubelet RSS, end, MB", |r| r.kubelet_rss_end_mb, 0),
        ("apiserver RSS, end, MB", |r| r.apiserver_rss_end_mb, 0),
        ("latency: creates/s achieved", |r| r.latency_create_rate, 1),
        (
            "**latency: start-to-Ready p50, ms**",
            |r| r.start_to_ready.p50 * 1e3,
            0,
        ),
        (
            "**latency: start-to-Ready p99, ms**",
            |r| r.start_to_ready.p99 * 1e3,
            0,
        ),
        (
            "latency: start-to-Ready max, ms",
            |r| r.start_to_ready.max * 1e3,
            0,
        ),
        ("latency: send → bound p50, ms", |r| r.to_bound.p50 * 1e3, 0),
        ("latency: send → bound p99, ms", |r| r.to_bound.p99 * 1e3, 0),
        (
            "latency: bound → Ready p50, ms",
            |r| r.bound_to_ready.p50 * 1e3,
            0,
        ),
        (
            "latency: bound → Ready p99, ms",
            |r| r.bound_to_ready.p99 * 1e3,
            0,
        ),
        (
            "**nodes ever Ready=Unknown**",
            |r| r.nodes_unknown as f64,
            0,
        ),
        ("nodes ever Ready=False", |r| r.nodes_not_ready as f64, 0),
        (
            "nodes ever tainted unreachable / not-ready",
            |r| (r.nodes_unreachable + r.nodes_not_ready_taint) as f64,
            0,
        ),
        ("lease renewal gap p50, s", |r| r.lease_gap.p50, 1),
        ("lease renewal gap p99, s", |r| r.lease_gap.p99, 1),
        ("lease renewal gap max, s", |r| r.lease_gap.max, 1),
        (
            "oldest renewTime seen (1 s samples), s",
            |r| r.lease_oldest_max,
            1,
        ),
        (
            "oldest renewTime in the final list, s",
            |r| r.lease_final_max,
            1,
        ),
        (
            "kubelet CPU in the fill phase, cores",
            |r| r.cpu[1].cores[0],
            2,
        ),
        (
            "kubelet CPU in the latency phase, cores",
            |r| r.cpu[3].cores[0],
            2,
        ),
    ];
    println!("\n| metric | median | min | max |\n|---|--:|--:|--:|");
    for (label, get, digits) in &metrics {
        println!(
            "| {label} | {} |",
            summary_cells(rounds.iter().map(get), *digits)
        );
    }
    let worst = |get: fn(&Round) -> f64| rounds.iter().map(get).fold(f64::NEG_INFINITY, f64::max);
    let med = |get: fn(&Round) -> f64| median(rounds.iter().map(get).collect());
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    let unknown = worst(|r| r.nodes_unknown as f64);
    let cpu = med(|r| r.steady_cpu);
    let rss = med(|r| r.kubelet_rss_steady_mb);
    let peak = med(|r| r.kubelet_peak_rss_mb);
    let p99 = med(|r| r.start_to_ready.p99);
    println!("\n| target | result |\n|---|---|");
    println!(
        "| 0 of {} nodes ever Unknown (grace period {GRACE_SECONDS:.0} s) | {unknown:.0} in the worst round (oldest renewTime seen {:.1} s) — {} |",
        config.nodes,
        worst(|r| r.lease_oldest_max),
        verdict(unknown == 0.0)
    );
    println!(
        "| kubelet CPU ≤ {:.0} % of one core (steady) | {:.1} % median — {} |",
        100.0 * TARGET_CPU,
        100.0 * cpu,
        verdict(cpu <= TARGET_CPU)
    );
    println!(
        "| kubelet RSS ≤ {TARGET_RSS_MB:.0} MB holding {} nodes × {} pods (end of the steady phase) | {rss:.0} MB median — {} |",
        config.nodes,
        config.pods_per_node,
        verdict(rss <= TARGET_RSS_MB)
    );
    println!(
        "| (the same bound on the peak, VmHWM, over the round, fill burst included) | {peak:.0} MB median — {} |",
        if peak <= TARGET_RSS_MB {
            "within"
        } else {
            "**above**"
        }
    );
    println!(
        "| start-to-Ready p99 ≤ {:.0} ms at {} pods/s (pod start-up delay {}) | {:.0} ms median — {} |",
        TARGET_P99_S * 1e3,
        config.rate,
        config.startup_delay,
        p99 * 1e3,
        verdict(p99 <= TARGET_P99_S)
    );
    Ok(())
}
