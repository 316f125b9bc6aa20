//! `api-watch-bench`: watch fan-out latency of the real `ferry apiserver` binary, 1,000 watchers,
//! on the embedded store and on etcd.
//!
//! ```text
//! cargo build --release -p ferry && cargo build --release -p bench
//! ulimit -n 4096   # 1,000 TLS connections need more than the usual 1,024 descriptors
//! target/release/api-watch-bench [--runs N] [--watchers N] [--quick] [--ferry PATH]
//! ```
//!
//! The server is the `ferry` binary beside this one (`target/release/ferry`, or `--ferry PATH`),
//! run as a child process with a fresh data directory (and for the etcd case a fresh etcd), one
//! per store, killed at the end. For each store: a LIST of ConfigMaps gives a resourceVersion;
//! 1,000 watchers each open their own TLS connection and
//! `GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion=<rv>` over HTTP/1.1,
//! reading the chunked newline-delimited JSON stream (each line is scanned only for its type and
//! `"name":"`). Then one writer creates ConfigMaps with unique names at 100 writes/s for 10 s on a
//! keep-alive connection, noting the instant each POST's response arrives. Every watcher notes
//! when each name reached it. Per write, latency = (the last watcher's receive time) − (the
//! write's acknowledgement); p50/p99/max over the writes, and the fraction of (write, watcher)
//! events that arrived (must be 100 %; after the last write the bench waits up to 15 s). The
//! server's RSS with all watchers open is reported too.
//!
//! Each process needs one descriptor per connection: the bench checks its own soft limit
//! (`/proc/self/limits`) and stops with a clear message when it is too low; the server inherits
//! the same limit. `--runs N` (default 3) repeats the writes on the same watchers and reports
//! medians of each run's figures; `--quick` is a smoke test: 100 watchers, 3 s, 1 run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use common::{Ferry, due, median, percentile, request, send};
use futures::{StreamExt as _, TryStreamExt as _};
use http_body_util::BodyExt as _;
use tests::etcd::EtcdServer;

const WRITE_RATE: usize = 100;
const NAME_PREFIX: &str = "wb-";

struct Config {
    runs: usize,
    watchers: usize,
    secs: usize,
}

/// What the watchers saw, per write index: the latest receive time (ns since `base`, 0 = none)
/// and how many watchers received it.
struct Seen {
    base: Instant,
    last: Vec<AtomicU64>,
    count: Vec<AtomicU32>,
}

impl Seen {
    fn nanos(&self, at: Instant) -> u64 {
        at.duration_since(self.base).as_nanos() as u64
    }
}

/// The soft `Max open files` limit of this process.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The write index in one line of the watch stream, if it is an ADDED event of a bench write.
fn added_index(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    if !text.contains("\"type\":\"ADDED\"") {
        return None;
    }
    let key = format!("\"name\":\"{NAME_PREFIX}");
    let rest = &text[text.find(&key)? + key.len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// Opens one watch and spawns the task that reads it.
async fn open_watch(ferry: &Ferry, path: &str, seen: Arc<Seen>) -> Result<()> {
    let mut sender = ferry.http1().await?;
    sender.ready().await?;
    let response = sender
        .send_request(request("GET", path, Bytes::new())?)
        .await?;
    let status = response.status().as_u16();
    if status != 200 {
        let body = response.into_body().collect().await?.to_bytes();
        bail!("watch: {status}: {}", String::from_utf8_lossy(&body));
    }
    let mut body = response.into_body();
    tokio::spawn(async move {
        let _sender = sender; // keeps the connection open
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let now = seen.nanos(Instant::now());
            buffer.extend_from_slice(&data);
            let mut consumed = 0;
            while let Some(newline) = buffer[consumed..].iter().position(|&b| b == b'\n') {
                let line = &buffer[consumed..consumed + newline];
                if let Some(i) = added_index(line)
                    && i < seen.last.len()
                {
                    seen.last[i].fetch_max(now, Ordering::Relaxed);
                    seen.count[i].fetch_add(1, Ordering::Relaxed);
                }
                consumed += newline + 1;
            }
            buffer.drain(..consumed);
        }
    });
    Ok(())
}

struct RunResult {
    p50: f64,
    p99: f64,
    max: f64,
    received: f64,
}

/// One run: `writes` creates at [`WRITE_RATE`]/s with indexes from `first`; waits for the
/// watchers and computes the figures.
async fn run_writes(
    ferry: &Ferry,
    seen: &Seen,
    watchers: usize,
    first: usize,
    writes: usize,
) -> Result<RunResult> {
    let mut sender = ferry.http1().await?;
    let mut acked = vec![0u64; writes];
    let t0 = Instant::now() + Duration::from_millis(50);
    for (j, ack) in acked.iter_mut().enumerate() {
        tokio::time::sleep_until(due(t0, j, WRITE_RATE).into()).await;
        let body = Bytes::from(format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{NAME_PREFIX}{}"}},"data":{{"key":"value"}}}}"#,
            first + j
        ));
        let (status, response) = send(
            &mut sender,
            request("POST", "/api/v1/namespaces/default/configmaps", body)?,
        )
        .await?;
        *ack = seen.nanos(Instant::now());
        ensure!(
            status == 201,
            "create failed with {status}: {}",
            String::from_utf8_lossy(&response)
        );
    }
    let complete = |seen: &Seen| {
        (first..first + writes).all(|i| seen.count[i].load(Ordering::Relaxed) as usize >= watchers)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !complete(seen) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies = Vec::new();
    let mut received = 0usize;
    for (j, ack) in acked.iter().enumerate() {
        let count = (seen.count[first + j].load(Ordering::Relaxed) as usize).min(watchers);
        received += count;
        if count == watchers {
            let last = seen.last[first + j].load(Ordering::Relaxed);
            latencies.push((last as f64 - *ack as f64) / 1e6);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(RunResult {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(f64::NAN),
        received: received as f64 / (writes * watchers) as f64,
    })
}

struct Report {
    store: &'static str,
    setup_secs: f64,
    p50: f64,
    p99: f64,
    max: f64,
    received: f64,
    rss_idle: f64,
    rss_watching: f64,
}

async fn bench_store(
    binary: &std::path::Path,
    etcd: Option<&EtcdServer>,
    config: &Config,
) -> Result<Report> {
    let store = if etcd.is_some() { "etcd" } else { "embedded" };
    let ferry = Ferry::start(binary, etcd.map(|e| e.endpoint()))?;
    eprintln!("{store}: ferry pid {} on {}", ferry.pid(), ferry.addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = ferry.rss_mb()?;

    let mut sender = ferry.http1().await?;
    let (status, list) = send(
        &mut sender,
        request("GET", "/api/v1/namespaces/default/configmaps", Bytes::new())?,
    )
    .await?;
    ensure!(
        status == 200,
        "LIST: {status}: {}",
        String::from_utf8_lossy(&list)
    );
    let list: serde_json::Value = serde_json::from_slice(&list)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("a list without resourceVersion")?
        .to_owned();

    let writes = WRITE_RATE * config.secs;
    let seen = Arc::new(Seen {
        base: Instant::now(),
        last: (0..writes * config.runs)
            .map(|_| AtomicU64::new(0))
            .collect(),
        count: (0..writes * config.runs)
            .map(|_| AtomicU32::new(0))
            .collect(),
    });
    let path = format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}");
    let started = Instant::now();
    futures::stream::iter(0..config.watchers)
        .map(|_| open_watch(&ferry, &path, seen.clone()))
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .with_context(|| {
            format!(
                "opening {} watches (raise `ulimit -n` if descriptors ran out); the server's stderr:\n{}",
                config.watchers,
                ferry.log_tail()
            )
        })?;
    let setup_secs = started.elapsed().as_secs_f64();
    let rss_watching = ferry.rss_mb()?;
    eprintln!(
        "{store}: {} watches open in {setup_secs:.1} s, server RSS {rss_watching:.1} MB",
        config.watchers
    );

    let mut runs = Vec::new();
    for run in 0..config.runs {
        let r = run_writes(&ferry, &seen, config.watchers, run * writes, writes)
            .await
            .with_context(|| format!("writes; the server's stderr:\n{}", ferry.log_tail()))?;
        eprintln!(
            "{store} run {}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, received {:.2} %",
            run + 1,
            r.p50,
            r.p99,
            r.max,
            100.0 * r.received
        );
        runs.push(r);
    }
    Ok(Report {
        store,
        setup_secs,
        p50: median(runs.iter().map(|r| r.p50).collect()),
        p99: median(runs.iter().map(|r| r.p99).collect()),
        max: median(runs.iter().map(|r| r.max).collect()),
        // The worst run: every event must arrive in every run.
        received: runs.iter().map(|r| r.received).fold(1.0, f64::min),
        rss_idle,
        rss_watching,
    })
}

fn main() -> Result<()> {
    let quick = common::flag("--quick");
    let config = Config {
        runs: common::arg("--runs", if quick { 1 } else { 3 })?,
        watchers: common::arg("--watchers", if quick { 100 } else { 1_000 })?,
        secs: if quick { 3 } else { 10 },
    };
    ensure!(config.runs > 0, "--runs must be at least 1");
    let needed = config.watchers as u64 + 64;
    if let Some(limit) = open_files_limit()
        && limit < needed
    {
        bail!(
            "{} watchers need about {needed} open files but this process may open {limit}: \
             run `ulimit -n {}` first (the server inherits it)",
            config.watchers,
            needed.next_power_of_two()
        );
    }
    let binary = common::ferry_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let embedded = runtime.block_on(bench_store(&binary, None, &config))?;
    let etcd = EtcdServer::start();
    let on_etcd = runtime.block_on(bench_store(&binary, Some(&etcd), &config))?;
    drop(etcd);

    println!("# api-watch-bench\n");
    println!(
        "- `ferry apiserver` as a child process ({}), a fresh server per store{}",
        binary.display(),
        if quick { "; **--quick**" } else { "" }
    );
    println!(
        "- {} watchers, each its own HTTPS connection; one writer creating ConfigMaps at {WRITE_RATE}/s for {} s",
        config.watchers, config.secs
    );
    println!(
        "- latency per write = last watcher's receive − POST acknowledged; {} run(s), medians; nproc: {}\n",
        config.runs,
        common::nproc()
    );
    println!(
        "| store | p50 ms | p99 ms | max ms | events received | watch setup s | RSS idle MB | RSS watching MB |\n|---|--:|--:|--:|--:|--:|--:|--:|"
    );
    for r in [&embedded, &on_etcd] {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} % | {:.1} | {:.1} | {:.1} |",
            r.store,
            r.p50,
            r.p99,
            r.max,
            100.0 * r.received,
            r.setup_secs,
            r.rss_idle,
            r.rss_watching
        );
    }
    let verdict = if embedded.received >= 1.0 && on_etcd.received >= 1.0 {
        "PASS"
    } else {
        "**FAIL**"
    };
    println!("\n- {verdict}: every watcher received every event");
    Ok(())
}
