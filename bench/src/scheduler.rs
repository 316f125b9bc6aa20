//! `scheduler-bench`: scheduling throughput of the real `ferry scheduler`, modelled on
//! Kubernetes' scheduler_perf `SchedulingBasic` test (5,000 nodes, 1,000 init pods, 10,000
//! measured pods), on the embedded store and on etcd.
//!
//! ```text
//! cargo build --release -p ferry && cargo build --release -p bench
//! target/release/scheduler-bench [--rounds N] [--store embedded|etcd|both] [--nodes N]
//!                                [--init-pods N] [--pods N] [--ferry PATH]
//! ```
//!
//! Per round and store (a fresh etcd, apiserver and scheduler every time, all child processes
//! sharing the machine with this benchmark):
//!
//! 1. `ferry apiserver` starts; the benchmark creates `--nodes` Nodes (default 5,000: `node-<i>`,
//!    label `kubernetes.io/hostname`, capacity and allocatable cpu 4, memory 32Gi, pods 110, a
//!    `Ready=True` condition; scheduler_perf's `node-default.yaml` plus names and the label) at
//!    64 in flight over raw keep-alive HTTPS, then lists them and checks every one kept its
//!    status (Node creates keep `status`, as Kubernetes' node strategy does).
//! 2. **Baseline**, no scheduler running: `--pods` pods (the same body as below) are created in
//!    namespace `baseline` by 64 concurrent creators; creates/s. Then they are deleted
//!    (`deletecollection`; unbound pods go at once) and the list is checked empty.
//! 3. `ferry scheduler --kubeconfig … --bind-address 127.0.0.1:<free port>` starts; the benchmark
//!    waits for `/readyz` to answer 200.
//! 4. `--init-pods` pods (default 1,000; scheduler_perf's `pod-default.yaml`: `generateName:
//!    pod-`, one container `pause` (`registry.k8s.io/pause:3.10`, containerPort 80, requests and
//!    limits cpu 100m, memory 500Mi)) are created in `default` and the benchmark polls until all
//!    are bound. Not measured.
//! 5. **Measured**: a LIST of `default`'s pods gives a resourceVersion and the uids already
//!    bound; a watch from there notes the moment each pod uid is first seen with `spec.nodeName`.
//!    Then `--pods` pods (default 10,000) are created by 64 concurrent creators as fast as the
//!    apiserver takes them, and the benchmark waits until all are bound (5 min at most, else it
//!    fails with its progress). Reported: time from the first create to the last bind and
//!    `pods / that time` (the bind throughput); scheduler_perf's throughput samples (a tick every
//!    second from the first create, the first tick that sees a bound pod skipped, ticks that see
//!    no new binds merged into the next, ticks after the last bind not taken; their p50/p90/p99
//!    and mean, scheduler_perf's `Perc50`… and `Average`); the create rate achieved
//!    (`pods / (first create → last create acknowledged)`); the ratio of the bind throughput to
//!    the baseline creates/s; and the CPU each process used in that window (from
//!    `/proc/<pid>/stat`, in cores), with the machine's busy share (`/proc/stat`); the RSS of the
//!    scheduler once ready and after, and of the apiserver after.
//! 6. The scheduler's `/metrics`, scraped before and after the measured phase (the difference is
//!    the measured phase's): p50/p99 of `scheduler_scheduling_attempt_duration_seconds{result=
//!    "scheduled"}` (cycle start to binding done) and of
//!    `scheduler_scheduling_algorithm_duration_seconds` (the decision alone), interpolated within
//!    buckets as Prometheus' `histogram_quantile` does; `scheduler_schedule_attempts_total` per
//!    result. The benchmark fails unless `scheduled` counts exactly the pods bound and
//!    `unschedulable` and `error` stay 0, unless every pod in `default` is bound to an existing
//!    node, and if any node holds more cpu or memory requests than its allocatable or more pods
//!    than its `pods` allocatable.
//!
//! Medians, minima and maxima over rounds; Markdown on stdout, progress on stderr (with the
//! scheduler's own log, at `RUST_LOG`, default `warn`). Targets (issue 6): ≥ 1,000 pods/s bound
//! on the embedded store, ≥ 700 pods/s on etcd.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use common::{
    Ferry, cpu_seconds, create_many, machine_jiffies, median, percentile, request, rss_mb, send,
    summary_cells,
};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;
use tests::etcd::EtcdServer;
use tokio::sync::Notify;

/// Concurrent creators (and in-flight node creates), each on its own keep-alive connection.
const CREATORS: usize = 64;
/// How long the measured pods may take to be bound.
const BIND_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the init pods may take to be bound.
const INIT_TIMEOUT: Duration = Duration::from_secs(120);
const TARGET_EMBEDDED: f64 = 1_000.0;
const TARGET_ETCD: f64 = 700.0;
const NODE_CPU: &str = "4";
const NODE_MEMORY: &str = "32Gi";
const NODE_PODS: &str = "110";
/// scheduler_perf's `pod-default.yaml`.
const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"pod-"},"spec":{"containers":[{"name":"pause","image":"registry.k8s.io/pause:3.10","ports":[{"containerPort":80}],"resources":{"requests":{"cpu":"100m","memory":"500Mi"},"limits":{"cpu":"100m","memory":"500Mi"}}}]}}"#;
const FLAGS: [&str; 6] = [
    "--rounds",
    "--store",
    "--nodes",
    "--init-pods",
    "--pods",
    "--ferry",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Embedded,
    Etcd,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Embedded => "embedded",
            Store::Etcd => "etcd",
        }
    }

    fn target(self) -> f64 {
        match self {
            Store::Embedded => TARGET_EMBEDDED,
            Store::Etcd => TARGET_ETCD,
        }
    }
}

struct Config {
    rounds: usize,
    stores: Vec<Store>,
    nodes: usize,
    init_pods: usize,
    pods: usize,
}

impl Config {
    fn from_args() -> Result<Config> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            ensure!(
                FLAGS.contains(&args[i].as_str()),
                "unknown argument {:?}; the flags are {}",
                args[i],
                FLAGS.join(", ")
            );
            i += 2;
        }
        let stores = match args.iter().position(|a| a == "--store") {
            None => vec![Store::Embedded, Store::Etcd],
            Some(i) => match args.get(i + 1).map(String::as_str) {
                Some("embedded") => vec![Store::Embedded],
                Some("etcd") => vec![Store::Etcd],
                Some("both") => vec![Store::Embedded, Store::Etcd],
                other => bail!("--store must be embedded, etcd or both, not {other:?}"),
            },
        };
        let config = Config {
            rounds: common::arg("--rounds", 3)?,
            stores,
            nodes: common::arg("--nodes", 5_000)?,
            init_pods: common::arg("--init-pods", 1_000)?,
            pods: common::arg("--pods", 10_000)?,
        };
        ensure!(config.rounds > 0, "--rounds must be at least 1");
        ensure!(
            config.nodes > 0 && config.pods > 0,
            "--nodes and --pods must be at least 1"
        );
        Ok(config)
    }
}

fn node(i: usize) -> Bytes {
    let resources =
        format!(r#"{{"cpu":"{NODE_CPU}","memory":"{NODE_MEMORY}","pods":"{NODE_PODS}"}}"#);
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"node-{i}","labels":{{"kubernetes.io/hostname":"node-{i}"}}}},"spec":{{}},"status":{{"capacity":{resources},"allocatable":{resources},"conditions":[{{"type":"Ready","status":"True"}}],"phase":"Running"}}}}"#
    ))
}

fn pod(_: usize) -> Bytes {
    Bytes::from_static(POD.as_bytes())
}

/// A quantity (`100m`, `4`, `500Mi`, `32Gi`, `1e3`) in its base unit.
fn quantity(text: &str) -> Result<f64> {
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix) {
            return Ok(number
                .parse::<f64>()
                .with_context(|| format!("a quantity {text:?}"))?
                * factor);
        }
    }
    text.parse().with_context(|| format!("a quantity {text:?}"))
}

/// GETs `path` and parses the JSON body; fails unless 200.
async fn get_json(ferry: &Ferry, path: &str) -> Result<Value> {
    let mut sender = ferry.http1().await?;
    let (status, body) = send(&mut sender, request("GET", path, Bytes::new())?).await?;
    ensure!(
        status == 200,
        "GET {path}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

fn items(list: &Value) -> Result<&Vec<Value>> {
    list["items"].as_array().context("a list without items")
}

fn node_name(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

/// A plain-HTTP GET (the scheduler's metrics endpoint): (status, body).
async fn plain_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .uri(path)
        .header("Host", addr.to_string())
        .body(Full::new(Bytes::new()))?;
    let (status, body) = send(&mut sender, request).await?;
    Ok((status, String::from_utf8(body.to_vec())?))
}

/// `ferry scheduler` as a child process; killed on drop. Its stderr is this benchmark's.
struct Scheduler {
    child: Child,
    addr: SocketAddr,
}

impl Scheduler {
    fn start(binary: &Path, kubeconfig: &Path) -> Result<Scheduler> {
        // A free port: bound and released just before the scheduler binds it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = Command::new(binary)
            .arg("scheduler")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--bind-address")
            .arg(addr.to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start ferry scheduler")?;
        Ok(Scheduler { child, addr })
    }

    /// Waits until `/readyz` answers 200 (the informers have listed); fails if the process exits.
    async fn wait_ready(&mut self) -> Result<Duration> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("ferry scheduler exited with {status} before it was ready");
            }
            if let Ok((200, _)) = plain_get(self.addr, "/readyz").await {
                return Ok(started.elapsed());
            }
            ensure!(
                started.elapsed() < Duration::from_secs(60),
                "ferry scheduler's /readyz on {} did not answer 200 within 60 s",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn metrics(&self) -> Result<Metrics> {
        let (status, body) = plain_get(self.addr, "/metrics").await?;
        ensure!(status == 200, "scheduler /metrics: {status}: {body}");
        Ok(Metrics::parse(&body))
    }

    /// Scrapes until `scheduled + error` attempts reach `attempts` (a bind is counted just after
    /// the apiserver answers it, so a watcher may see it a moment earlier).
    async fn metrics_after(&self, attempts: f64) -> Result<Metrics> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = self.metrics().await?;
            let seen = metrics.attempts("scheduled") + metrics.attempts("error");
            if seen >= attempts || Instant::now() > deadline {
                return Ok(metrics);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scrape of the Prometheus text format: every sample by its name and labels.
struct Metrics {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter_map(|pair| {
                    let (key, value) = pair.split_once("=\"")?;
                    Some((key.to_owned(), value.trim_end_matches('"').to_owned()))
                })
                .collect();
            samples.push((name.to_owned(), labels, value));
        }
        Metrics { samples }
    }

    /// The samples of `name` whose labels include every pair of `labels`.
    fn select<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|(_, l, v)| (l, *v))
    }

    fn attempts(&self, result: &str) -> f64 {
        self.select("scheduler_schedule_attempts_total", &[("result", result)])
            .map(|(_, v)| v)
            .sum()
    }

    /// The cumulative buckets of histogram `name` with `labels`: (upper bound, count), sorted,
    /// `+Inf` last.
    fn buckets(&self, name: &str, labels: &[(&str, &str)]) -> Result<Vec<(f64, f64)>> {
        let bucket = format!("{name}_bucket");
        let mut buckets = self
            .select(&bucket, labels)
            .map(|(l, v)| {
                let le = l.get("le").context("a bucket without le")?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse()?
                };
                Ok((bound, v))
            })
            .collect::<Result<Vec<_>>>()?;
        ensure!(
            !buckets.is_empty(),
            "the scheduler's /metrics has no {bucket} with {labels:?}"
        );
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        ensure!(
            buckets.last().is_some_and(|b| b.0.is_infinite()),
            "{bucket} has no +Inf bucket"
        );
        Ok(buckets)
    }
}

/// `after − before` of cumulative histogram buckets (the same bounds).
fn bucket_delta(before: &[(f64, f64)], after: &[(f64, f64)]) -> Result<Vec<(f64, f64)>> {
    ensure!(
        before.len() == after.len() && before.iter().zip(after).all(|(a, b)| a.0 == b.0),
        "the histogram's buckets changed between scrapes"
    );
    Ok(before
        .iter()
        .zip(after)
        .map(|(b, a)| (a.0, a.1 - b.1))
        .collect())
}

/// Prometheus' `histogram_quantile`: the bucket holding rank `q · count`, interpolated linearly
/// within it (from 0 for the first bucket); the highest finite bound when the rank falls into
/// `+Inf`. NaN without observations.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let b = buckets
        .iter()
        .position(|(_, count)| *count >= rank)
        .unwrap_or(buckets.len() - 1);
    if buckets[b].0.is_infinite() {
        return if b == 0 { f64::NAN } else { buckets[b - 1].0 };
    }
    let (start, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (buckets[b - 1].0, buckets[b - 1].1)
    };
    let in_bucket = buckets[b].1 - below;
    if in_bucket <= 0.0 {
        return buckets[b].0;
    }
    start + (buckets[b].0 - start) * (rank - below) / in_bucket
}

/// What the measured phase's watch saw: the moment each new pod was first seen bound.
#[derive(Default)]
struct Binds {
    times: Mutex<Vec<Instant>>,
    count: AtomicUsize,
    /// The count at which `changed` is notified.
    target: usize,
    /// Why the watch stopped before the end, if it did.
    ended: Mutex<Option<String>>,
    changed: Notify,
}

/// Watches `default`'s pods from `rv`; counts each uid not in `seen` once, the first time it
/// has `spec.nodeName`, and notifies when `target` are counted or the watch ends.
async fn watch_binds(
    ferry: &Ferry,
    rv: &str,
    mut seen: HashSet<String>,
    target: usize,
) -> Result<Arc<Binds>> {
    let path = format!("/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}");
    let mut sender = ferry.http1().await?;
    sender.ready().await?;
    let response = sender
        .send_request(request("GET", &path, Bytes::new())?)
        .await?;
    let status = response.status().as_u16();
    if status != 200 {
        let body = response.into_body().collect().await?.to_bytes();
        bail!("watch: {status}: {}", String::from_utf8_lossy(&body));
    }
    let binds = Arc::new(Binds {
        target,
        ..Binds::default()
    });
    let mut body = response.into_body();
    let shared = binds.clone();
    tokio::spawn(async move {
        let _sender = sender; // keeps the connection open
        let mut buffer: Vec<u8> = Vec::new();
        let end = |why: String| {
            *shared.ended.lock().unwrap() = Some(why);
            shared.changed.notify_one();
        };
        loop {
            let frame = match body.frame().await {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => return end(format!("the watch failed: {error}")),
                None => return end("the server ended the watch".into()),
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
                // Only events with a node name (or errors) are worth parsing.
                let text = String::from_utf8_lossy(line);
                if text.contains("\"type\":\"ERROR\"") {
                    return end(format!("the watch sent an error: {text}"));
                }
                if !text.contains("\"nodeName\":\"") {
                    continue;
                }
                let Ok(event) = serde_json::from_str::<Value>(&text) else {
                    return end(format!("an unparsable watch event: {text}"));
                };
                let object = &event["object"];
                if let (Some(uid), Some(_)) =
                    (object["metadata"]["uid"].as_str(), node_name(object))
                    && seen.insert(uid.to_owned())
                {
                    shared.times.lock().unwrap().push(now);
                    if shared.count.fetch_add(1, Ordering::Relaxed) + 1 == shared.target {
                        shared.changed.notify_one();
                    }
                }
            }
            buffer.drain(..consumed);
        }
    });
    Ok(binds)
}

/// scheduler_perf's throughput collector over the bind moments: a tick every second from `t0`;
/// the first tick that sees a bound pod is skipped, a tick that sees none new is merged into the
/// next (whose rate is then recorded once per tick it covers); ticks after the last bind are not
/// taken.
fn throughput_samples(t0: Instant, binds: &[Instant]) -> Vec<f64> {
    let Some(&last) = binds.last() else {
        return Vec::new();
    };
    let mut samples = Vec::new();
    let (mut started, mut skipped, mut last_count, mut last_tick) = (false, 0, 0, t0);
    for k in 1.. {
        let tick = t0 + Duration::from_secs(k);
        if tick > last {
            break;
        }
        let scheduled = binds.partition_point(|b| *b <= tick);
        if scheduled == 0 {
            continue;
        }
        if !started {
            (started, last_count, last_tick) = (true, scheduled, tick);
            continue;
        }
        if scheduled == last_count {
            skipped += 1;
            continue;
        }
        let rate = (scheduled - last_count) as f64 / (tick - last_tick).as_secs_f64();
        samples.extend(std::iter::repeat_n(rate, skipped + 1));
        (skipped, last_count, last_tick) = (0, scheduled, tick);
    }
    samples
}

/// CPU used by each process over a window, in cores (CPU seconds / wall seconds).
#[derive(Clone, Copy, Default)]
struct CpuUse {
    apiserver: f64,
    scheduler: f64,
    etcd: f64,
    bench: f64,
    /// Share of the whole machine busy (all processes).
    machine: f64,
    /// Busy cores not used by the four above: kernel threads and any other process.
    rest: f64,
}

struct CpuMeter {
    pids: [Option<u32>; 4],
    start: [f64; 4],
    machine: (f64, f64),
    at: Instant,
}

impl CpuMeter {
    /// Starts measuring apiserver, scheduler, etcd and this process (`None`: not running).
    fn start(pids: [Option<u32>; 4]) -> Result<CpuMeter> {
        let mut start = [0.0; 4];
        for (i, pid) in pids.iter().enumerate() {
            if let Some(pid) = pid {
                start[i] = cpu_seconds(*pid)?;
            }
        }
        Ok(CpuMeter {
            pids,
            start,
            machine: machine_jiffies()?,
            at: Instant::now(),
        })
    }

    fn stop(&self) -> Result<CpuUse> {
        let wall = self.at.elapsed().as_secs_f64();
        let mut used = [0.0; 4];
        for (i, pid) in self.pids.iter().enumerate() {
            if let Some(pid) = pid {
                used[i] = (cpu_seconds(*pid)? - self.start[i]) / wall;
            }
        }
        let (busy, total) = machine_jiffies()?;
        let machine = (busy - self.machine.0) / (total - self.machine.1).max(1.0);
        Ok(CpuUse {
            apiserver: used[0],
            scheduler: used[1],
            etcd: used[2],
            bench: used[3],
            machine,
            rest: machine * common::nproc() as f64 - used.iter().sum::<f64>(),
        })
    }
}

/// One round on one store.
struct Round {
    /// Measured pods / (first create → last bind), pods/s.
    bind_rate: f64,
    bind_secs: f64,
    /// scheduler_perf's throughput samples, pods/s.
    samples: Vec<f64>,
    /// Measured pods / (first create → last create acknowledged), pods/s.
    create_rate: f64,
    /// The same creates with no scheduler running, creates/s.
    baseline_rate: f64,
    /// Seconds.
    attempt_p50: f64,
    attempt_p99: f64,
    algorithm_p50: f64,
    algorithm_p99: f64,
    /// scheduled, unschedulable, error during the measured phase.
    attempts: [f64; 3],
    cpu: CpuUse,
    baseline_cpu: CpuUse,
    /// The scheduler's RSS once ready (nodes listed, no pods yet), and after the measured phase.
    scheduler_rss_ready_mb: f64,
    scheduler_rss_mb: f64,
    /// The apiserver's RSS after the measured phase.
    apiserver_rss_mb: f64,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.bind_rate / self.baseline_rate
    }

    fn sample(&self, q: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        percentile(&sorted, q)
    }

    fn sample_mean(&self) -> f64 {
        self.samples.iter().sum::<f64>() / self.samples.len() as f64
    }
}

/// Lists the pods of `namespace` until `expected` of them are bound: the last list.
async fn wait_all_bound(ferry: &Ferry, namespace: &str, expected: usize) -> Result<Value> {
    let deadline = Instant::now() + INIT_TIMEOUT;
    loop {
        let list = get_json(ferry, &format!("/api/v1/namespaces/{namespace}/pods")).await?;
        let bound = items(&list)?
            .iter()
            .filter(|p| node_name(p).is_some())
            .count();
        if bound >= expected {
            return Ok(list);
        }
        ensure!(
            Instant::now() < deadline,
            "after {} s only {bound} of {expected} init pods are bound",
            INIT_TIMEOUT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks that every node kept the status it was created with.
async fn check_nodes(ferry: &Ferry, expected: usize) -> Result<()> {
    let list = get_json(ferry, "/api/v1/nodes").await?;
    let nodes = items(&list)?;
    ensure!(
        nodes.len() == expected,
        "{} nodes listed, {expected} created",
        nodes.len()
    );
    for node in nodes {
        let allocatable = &node["status"]["allocatable"];
        ensure!(
            allocatable["cpu"] == NODE_CPU
                && allocatable["memory"] == NODE_MEMORY
                && allocatable["pods"] == NODE_PODS,
            "node {} lost the status it was created with: {}",
            node["metadata"]["name"],
            node["status"]
        );
    }
    Ok(())
}

/// Every pod of `default` bound to an existing node, `expected` of them, and no node holding
/// more requests or pods than it has allocatable.
async fn check_placement(ferry: &Ferry, expected: usize) -> Result<()> {
    let nodes = get_json(ferry, "/api/v1/nodes").await?;
    let mut allocatable: HashMap<String, [f64; 3]> = HashMap::new();
    for node in items(&nodes)? {
        let a = &node["status"]["allocatable"];
        let get = |key: &str| quantity(a[key].as_str().unwrap_or_default());
        allocatable.insert(
            node["metadata"]["name"]
                .as_str()
                .context("a node without a name")?
                .to_owned(),
            [get("cpu")?, get("memory")?, get("pods")?],
        );
    }
    let pods = get_json(ferry, "/api/v1/namespaces/default/pods").await?;
    let pods = items(&pods)?;
    ensure!(
        pods.len() == expected,
        "{} pods in default, {expected} created",
        pods.len()
    );
    let mut used: HashMap<&str, [f64; 3]> = HashMap::new();
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let node = node_name(pod).with_context(|| format!("pod {name} is not bound"))?;
        ensure!(
            allocatable.contains_key(node),
            "pod {name} is bound to {node}, which is not a node"
        );
        let entry = used.entry(node).or_default();
        for container in pod["spec"]["containers"]
            .as_array()
            .context("a pod without containers")?
        {
            let requests = &container["resources"]["requests"];
            if let Some(cpu) = requests["cpu"].as_str() {
                entry[0] += quantity(cpu)?;
            }
            if let Some(memory) = requests["memory"].as_str() {
                entry[1] += quantity(memory)?;
            }
        }
        entry[2] += 1.0;
    }
    for (node, used) in &used {
        let limit = allocatable[*node];
        ensure!(
            (0..3).all(|i| used[i] <= limit[i] * (1.0 + 1e-9)),
            "node {node} is over-committed: requests cpu {} memory {} pods {} against allocatable {limit:?}",
            used[0],
            used[1],
            used[2]
        );
    }
    Ok(())
}

async fn round(
    binary: &Path,
    store: Store,
    etcd: Option<&EtcdServer>,
    config: &Config,
) -> Result<Round> {
    let name = store.name();
    let ferry = Ferry::start(binary, etcd.map(|e| e.endpoint()))?;
    let etcd_pid = match etcd {
        Some(_) => Some(common::child_named("etcd")?),
        None => None,
    };
    let with_log = |what: &str| format!("{what}; the apiserver's stderr:\n{}", ferry.log_tail());

    let (t0, t1) = create_many(&ferry, "/api/v1/nodes", config.nodes, CREATORS, node)
        .await
        .with_context(|| with_log("node creates"))?;
    check_nodes(&ferry, config.nodes).await?;
    eprintln!(
        "{name}: {} nodes created in {:.1} s",
        config.nodes,
        (t1 - t0).as_secs_f64()
    );

    // The baseline: the same creates with no scheduler running.
    let mut sender = ferry.http1().await?;
    let (status, body) = send(
        &mut sender,
        request(
            "POST",
            "/api/v1/namespaces",
            Bytes::from_static(
                br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"baseline"}}"#,
            ),
        )?,
    )
    .await?;
    ensure!(
        status == 201,
        "create namespace baseline: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let meter = CpuMeter::start([Some(ferry.pid()), None, etcd_pid, Some(std::process::id())])?;
    let (t0, t1) = create_many(
        &ferry,
        "/api/v1/namespaces/baseline/pods",
        config.pods,
        CREATORS,
        pod,
    )
    .await
    .with_context(|| with_log("baseline pod creates"))?;
    let baseline_cpu = meter.stop()?;
    let baseline_rate = config.pods as f64 / (t1 - t0).as_secs_f64();
    let deleting = Instant::now();
    let (status, body) = send(
        &mut sender,
        request("DELETE", "/api/v1/namespaces/baseline/pods", Bytes::new())?,
    )
    .await?;
    ensure!(
        status == 200,
        "deletecollection of the baseline pods: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let left = items(&get_json(&ferry, "/api/v1/namespaces/baseline/pods").await?)?.len();
    ensure!(
        left == 0,
        "{left} baseline pods left after deletecollection"
    );
    eprintln!(
        "{name}: baseline {} pod creates at {baseline_rate:.0}/s (deleted in {:.1} s)",
        config.pods,
        deleting.elapsed().as_secs_f64()
    );

    let mut scheduler = Scheduler::start(binary, &ferry.kubeconfig()?)?;
    let ready = scheduler.wait_ready().await?;
    let scheduler_rss_ready_mb = rss_mb(scheduler.pid())?;
    eprintln!(
        "{name}: scheduler pid {} ready in {:.1} s",
        scheduler.pid(),
        ready.as_secs_f64()
    );

    if config.init_pods > 0 {
        create_many(
            &ferry,
            "/api/v1/namespaces/default/pods",
            config.init_pods,
            CREATORS,
            pod,
        )
        .await
        .with_context(|| with_log("init pod creates"))?;
    }
    let list = wait_all_bound(&ferry, "default", config.init_pods).await?;
    let seen: HashSet<String> = items(&list)?
        .iter()
        .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        seen.len() == config.init_pods,
        "{} pods in default before the measured phase, {} expected",
        seen.len(),
        config.init_pods
    );
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("a list without resourceVersion")?
        .to_owned();
    let before = scheduler.metrics_after(config.init_pods as f64).await?;
    eprintln!("{name}: {} init pods bound", config.init_pods);

    // The measured phase.
    let binds = watch_binds(&ferry, &rv, seen, config.pods).await?;
    let meter = CpuMeter::start([
        Some(ferry.pid()),
        Some(scheduler.pid()),
        etcd_pid,
        Some(std::process::id()),
    ])?;
    let creating = create_many(
        &ferry,
        "/api/v1/namespaces/default/pods",
        config.pods,
        CREATORS,
        pod,
    );
    let (first, created) = {
        let deadline = Instant::now() + BIND_TIMEOUT;
        let mut creating = std::pin::pin!(creating);
        let mut created = None;
        let mut last_report = Instant::now();
        loop {
            if binds.count.load(Ordering::Relaxed) >= config.pods
                && let Some(created) = created
            {
                break created;
            }
            if let Some(why) = binds.ended.lock().unwrap().clone() {
                bail!(
                    "{why} with {} of {} pods bound",
                    binds.count.load(Ordering::Relaxed),
                    config.pods
                );
            }
            if Instant::now() > deadline {
                let pending = scheduler.metrics().await.map(|m| {
                    m.select("scheduler_pending_pods", &[])
                        .map(|(l, v)| {
                            format!("{}={v}", l.get("queue").cloned().unwrap_or_default())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                bail!(
                    "after {} s only {} of {} pods are bound (created: {}); scheduler pending: {pending:?}; {}",
                    BIND_TIMEOUT.as_secs(),
                    binds.count.load(Ordering::Relaxed),
                    config.pods,
                    created.is_some(),
                    with_log("")
                );
            }
            if last_report.elapsed() >= Duration::from_secs(5) {
                eprintln!(
                    "{name}: {} of {} bound",
                    binds.count.load(Ordering::Relaxed),
                    config.pods
                );
                last_report = Instant::now();
            }
            if created.is_none() {
                tokio::select! {
                    result = &mut creating => {
                        created = Some(result.with_context(|| with_log("measured pod creates"))?);
                    }
                    _ = binds.changed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            } else {
                tokio::select! {
                    _ = binds.changed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let cpu = meter.stop()?;
    let times = binds.times.lock().unwrap().clone();
    let last = *times.last().context("no binds")?;
    let bind_secs = (last - first).as_secs_f64();
    let samples = throughput_samples(first, &times);
    let create_rate = config.pods as f64 / (created - first).as_secs_f64();
    let scheduler_rss_mb = rss_mb(scheduler.pid())?;
    let apiserver_rss_mb = ferry.rss_mb()?;

    let total = (config.init_pods + config.pods) as f64;
    let after = scheduler.metrics_after(total).await?;
    let attempts = ["scheduled", "unschedulable", "error"]
        .map(|result| after.attempts(result) - before.attempts(result));
    ensure!(
        after.attempts("scheduled") == total && attempts[1] == 0.0 && attempts[2] == 0.0,
        "scheduler_schedule_attempts_total: scheduled {} (of {total} pods bound), unschedulable {}, error {} in the measured phase",
        after.attempts("scheduled"),
        attempts[1],
        attempts[2]
    );
    let scheduled = [("result", "scheduled")];
    let attempt = bucket_delta(
        &before.buckets("scheduler_scheduling_attempt_duration_seconds", &scheduled)?,
        &after.buckets("scheduler_scheduling_attempt_duration_seconds", &scheduled)?,
    )?;
    let algorithm = bucket_delta(
        &before.buckets("scheduler_scheduling_algorithm_duration_seconds", &[])?,
        &after.buckets("scheduler_scheduling_algorithm_duration_seconds", &[])?,
    )?;
    check_placement(&ferry, config.init_pods + config.pods).await?;
    drop(scheduler);
    drop(ferry);
    Ok(Round {
        bind_rate: config.pods as f64 / bind_secs,
        bind_secs,
        samples,
        create_rate,
        baseline_rate,
        attempt_p50: histogram_quantile(0.5, &attempt),
        attempt_p99: histogram_quantile(0.99, &attempt),
        algorithm_p50: histogram_quantile(0.5, &algorithm),
        algorithm_p99: histogram_quantile(0.99, &algorithm),
        attempts,
        cpu,
        baseline_cpu,
        scheduler_rss_ready_mb,
        scheduler_rss_mb,
        apiserver_rss_mb,
    })
}

fn print_round(store: Store, i: usize, r: &Round) {
    println!(
        "- {} round {}: {:.0} pods/s bound ({:.2} s; samples p50 {:.0}, p90 {:.0}, p99 {:.0}, mean {:.0}, n={}), created at {:.0}/s, baseline {:.0}/s ({:.2}×); attempt p50 {:.2} ms p99 {:.2} ms, algorithm p50 {:.3} ms p99 {:.3} ms; attempts scheduled {} unschedulable {} error {}; CPU cores apiserver {:.2}, scheduler {:.2}, etcd {:.2}, bench {:.2}, rest {:.2}, machine {:.0} % busy (baseline: apiserver {:.2}, etcd {:.2}, bench {:.2}, rest {:.2}, machine {:.0} %); RSS scheduler {:.0} MB ready, {:.0} MB after, apiserver {:.0} MB after",
        store.name(),
        i + 1,
        r.bind_rate,
        r.bind_secs,
        r.sample(0.5),
        r.sample(0.9),
        r.sample(0.99),
        r.sample_mean(),
        r.samples.len(),
        r.create_rate,
        r.baseline_rate,
        r.ratio(),
        r.attempt_p50 * 1e3,
        r.attempt_p99 * 1e3,
        r.algorithm_p50 * 1e3,
        r.algorithm_p99 * 1e3,
        r.attempts[0],
        r.attempts[1],
        r.attempts[2],
        r.cpu.apiserver,
        r.cpu.scheduler,
        r.cpu.etcd,
        r.cpu.bench,
        r.cpu.rest,
        100.0 * r.cpu.machine,
        r.baseline_cpu.apiserver,
        r.baseline_cpu.etcd,
        r.baseline_cpu.bench,
        r.baseline_cpu.rest,
        100.0 * r.baseline_cpu.machine,
        r.scheduler_rss_ready_mb,
        r.scheduler_rss_mb,
        r.apiserver_rss_mb,
    );
}

fn main() -> Result<()> {
    let config = Config::from_args()?;
    let binary = common::ferry_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("# scheduler-bench\n");
    println!(
        "- `ferry apiserver` and `ferry scheduler` as child processes ({}), fresh ones (and a fresh etcd) per round and store; nproc: {}",
        binary.display(),
        common::nproc()
    );
    println!(
        "- {} nodes, {} init pods, {} measured pods created by {CREATORS} concurrent creators; {} round(s)\n",
        config.nodes, config.init_pods, config.pods, config.rounds
    );
    let mut results: Vec<(Store, Vec<Round>)> =
        config.stores.iter().map(|s| (*s, Vec::new())).collect();
    for i in 0..config.rounds {
        for (store, rounds) in &mut results {
            let etcd = (*store == Store::Etcd).then(EtcdServer::start);
            let r = runtime
                .block_on(round(&binary, *store, etcd.as_ref(), &config))
                .with_context(|| format!("{} round {}", store.name(), i + 1))?;
            print_round(*store, i, &r);
            rounds.push(r);
        }
    }

    type Metric = (&'static str, fn(&Round) -> f64, usize);
    let metrics: [Metric; 26] = [
        (
            "bind throughput, pods/s (first create → last bind)",
            |r| r.bind_rate,
            0,
        ),
        ("time to bind all, s", |r| r.bind_secs, 2),
        ("1 s samples p50, pods/s", |r| r.sample(0.5), 0),
        ("1 s samples p90, pods/s", |r| r.sample(0.9), 0),
        ("1 s samples p99, pods/s", |r| r.sample(0.99), 0),
        (
            "1 s samples mean (scheduler_perf's Average), pods/s",
            |r| r.sample_mean(),
            0,
        ),
        ("create rate while scheduling, pods/s", |r| r.create_rate, 0),
        (
            "baseline creates, no scheduler, pods/s",
            |r| r.baseline_rate,
            0,
        ),
        ("bind throughput / baseline creates", |r| r.ratio(), 2),
        (
            "attempt duration p50 (scheduled), ms",
            |r| r.attempt_p50 * 1e3,
            2,
        ),
        (
            "attempt duration p99 (scheduled), ms",
            |r| r.attempt_p99 * 1e3,
            2,
        ),
        ("algorithm duration p50, ms", |r| r.algorithm_p50 * 1e3, 3),
        ("algorithm duration p99, ms", |r| r.algorithm_p99 * 1e3, 3),
        ("CPU apiserver, cores", |r| r.cpu.apiserver, 2),
        ("CPU scheduler, cores", |r| r.cpu.scheduler, 2),
        ("CPU etcd, cores", |r| r.cpu.etcd, 2),
        ("CPU bench (creators + watch), cores", |r| r.cpu.bench, 2),
        (
            "CPU rest of the machine (kernel, other processes), cores",
            |r| r.cpu.rest,
            2,
        ),
        ("machine busy, %", |r| 100.0 * r.cpu.machine, 0),
        (
            "baseline: CPU apiserver, cores",
            |r| r.baseline_cpu.apiserver,
            2,
        ),
        ("baseline: CPU etcd, cores", |r| r.baseline_cpu.etcd, 2),
        ("baseline: CPU bench, cores", |r| r.baseline_cpu.bench, 2),
        (
            "baseline: CPU rest of the machine, cores",
            |r| r.baseline_cpu.rest,
            2,
        ),
        (
            "scheduler RSS when ready (nodes, no pods), MB",
            |r| r.scheduler_rss_ready_mb,
            0,
        ),
        ("scheduler RSS after, MB", |r| r.scheduler_rss_mb, 0),
        ("apiserver RSS after, MB", |r| r.apiserver_rss_mb, 0),
    ];
    println!("\n| store | metric | median | min | max |\n|---|---|--:|--:|--:|");
    for (store, rounds) in &results {
        for (label, get, digits) in &metrics {
            if store == &Store::Embedded && label.contains("etcd") {
                continue;
            }
            // NaN: no figure (a run too short for one throughput sample).
            let cells = summary_cells(rounds.iter().map(get), *digits);
            println!("| {} | {label} | {cells} |", store.name());
        }
    }
    println!(
        "\n| store | attempts scheduled | unschedulable | error | (all rounds, measured phases) |\n|---|--:|--:|--:|---|"
    );
    for (store, rounds) in &results {
        let sum = |i: usize| rounds.iter().map(|r| r.attempts[i]).sum::<f64>();
        println!(
            "| {} | {} | {} | {} | |",
            store.name(),
            sum(0),
            sum(1),
            sum(2)
        );
    }
    println!("\n| target | result |\n|---|---|");
    for (store, rounds) in &results {
        let rates: Vec<f64> = rounds.iter().map(|r| r.bind_rate).collect();
        let m = median(rates.clone());
        let verdict = if m >= store.target() {
            "met"
        } else {
            "**not met**"
        };
        println!(
            "| ≥ {:.0} pods/s bound, {} store, {} nodes / {} pods | median **{m:.0}** pods/s (min {:.0}, max {:.0}) — {verdict} |",
            store.target(),
            store.name(),
            config.nodes,
            config.pods,
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
    }
    Ok(())
}
