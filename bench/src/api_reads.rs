//! `api-read-bench`: read latency, LIST cost and memory of the real `ferry apiserver` binary, on
//! the embedded store and on etcd, beside raw etcd reads measured in the same run.
//!
//! ```text
//! cargo build --release -p ferry && cargo build --release -p bench
//! target/release/api-read-bench [--runs N] [--quick] [--ferry PATH]
//! ```
//!
//! The server is the `ferry` binary beside this one (`target/release/ferry`, or `--ferry PATH`),
//! run as a child process (`ferry apiserver --secure-port 0 ...` with a fresh data directory, and
//! for the etcd case a fresh etcd on free ports), so its RSS can be read from
//! `/proc/<pid>/status`. Each store gets its own fresh server, killed at the end. For each store:
//!
//! 1. **GET**: 100 ConfigMaps are created, then single-object GETs
//!    (`/api/v1/namespaces/default/configmaps/cm-<i % 100>`) are sent **open loop** at a fixed
//!    1,000 req/s for 10 s over 16 keep-alive HTTP/1.1 connections: request `i` is due at
//!    `t0 + i ms`, taken by whichever connection is free. Latency runs from the due time (or from
//!    the actual send, when a connection was idle and only the 1 ms timer woke it late) until the
//!    whole body is in, so a server that falls behind is charged for the queueing. p50/p99 in ms.
//!    Baseline (etcd case): raw `etcd-client` `get` of the same keys at the same rate and
//!    concurrency.
//! 2. **LIST**: 10,000 pods (`default`, one container `c`/`nginx`, label `app=bench`) are created
//!    through the API at 64 concurrent clients, then 20 sequential
//!    `GET /api/v1/namespaces/default/pods?resourceVersion=0` (served from the watch cache), and
//!    20 full paged traversals `?limit=500` + `continue` (a consistent read from the store), each
//!    after one untimed warm-up that also checks the item count. Baseline (etcd case): a raw
//!    range of the pods' key prefix in pages of 500 at one revision (etcd-client 0.21 cannot raise
//!    its 4 MiB response limit, which 10,000 pods exceed). p50/p99 in ms and bytes per response.
//! 3. **RSS** (`VmRSS`) of the server 2 s after it started, and after the pods exist and all the
//!    LISTs have run.
//!
//! With `--runs N` (default 3) steps 1 and 2 are repeated and the medians of each run's p50 and
//! p99 are reported. `--quick` shrinks everything for a smoke test: 1,000 pods, GETs for 3 s,
//! 1 run. Markdown on stdout, progress on stderr.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use common::{Ferry, due, median, ms, percentile, request, send, wait_until};
use etcd_client::{Client, GetOptions};
use tests::etcd::EtcdServer;

const GET_RATE: usize = 1_000;
const GET_CONNECTIONS: usize = 16;
const CONFIGMAPS: usize = 100;
const CREATE_CLIENTS: usize = 64;
const LISTS: usize = 20;
const PAGE: usize = 500;

struct Config {
    runs: usize,
    get_secs: usize,
    pods: usize,
}

/// p50 and p99 of one run's latencies, in ms.
fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

/// Medians over runs of (p50, p99) pairs.
fn medians(runs: &[(f64, f64)]) -> (f64, f64) {
    (
        median(runs.iter().map(|r| r.0).collect()),
        median(runs.iter().map(|r| r.1).collect()),
    )
}

fn configmap(name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"bench"}}}},"data":{{"key":"value"}}}}"#
    ))
}

fn pod(name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default","labels":{{"app":"bench"}}}},"spec":{{"containers":[{{"name":"c","image":"nginx"}}]}}}}"#
    ))
}

/// Runs `op(i)` for `i` in `0..total` on `senders`, open loop at `rate`/s; returns latencies (ms).
async fn open_loop<S, F, Fut>(senders: Vec<S>, total: usize, rate: usize, op: F) -> Result<Vec<f64>>
where
    S: Send + 'static,
    F: Fn(S, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<S>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now() + Duration::from_millis(50);
    let mut tasks = tokio::task::JoinSet::new();
    for sender in senders {
        let (next, op) = (next.clone(), op.clone());
        tasks.spawn(async move {
            let mut sender = sender;
            let mut latencies = Vec::with_capacity(total / GET_CONNECTIONS + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let start = wait_until(due(t0, i, rate)).await;
                sender = op(sender, i).await?;
                latencies.push(ms(start.elapsed()));
            }
        });
    }
    let mut all = Vec::with_capacity(total);
    while let Some(result) = tasks.join_next().await {
        all.extend(result??);
    }
    Ok(all)
}

async fn api_gets(ferry: &Ferry, total: usize) -> Result<Vec<f64>> {
    let mut senders = Vec::new();
    for _ in 0..GET_CONNECTIONS {
        senders.push(ferry.http1().await?);
    }
    open_loop(senders, total, GET_RATE, |mut sender, i| async move {
        let path = format!(
            "/api/v1/namespaces/default/configmaps/cm-{}",
            i % CONFIGMAPS
        );
        let (status, body) = send(&mut sender, request("GET", &path, Bytes::new())?).await?;
        ensure!(
            status == 200,
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(sender)
    })
    .await
}

async fn raw_gets(client: &Client, total: usize) -> Result<Vec<f64>> {
    let senders = (0..GET_CONNECTIONS).map(|_| client.kv_client()).collect();
    open_loop(senders, total, GET_RATE, |mut kv, i| async move {
        let key = format!("/registry/configmaps/default/cm-{}", i % CONFIGMAPS);
        let response = kv.get(key.clone(), None).await?;
        ensure!(response.kvs().len() == 1, "raw get of {key} found nothing");
        Ok(kv)
    })
    .await
}

/// Creates `n` objects with `body(i)` by POSTs at `clients` concurrent connections; creates/s.
async fn create_all(
    ferry: &Ferry,
    path: &str,
    n: usize,
    clients: usize,
    body: fn(usize) -> Bytes,
) -> Result<f64> {
    let (first, last) = common::create_many(ferry, path, n, clients, body).await?;
    Ok(n as f64 / last.duration_since(first).as_secs_f64())
}

/// The `continue` token in a list response, if any (a substring search: pods never contain it).
fn continue_token(body: &[u8]) -> Result<Option<String>> {
    let text = std::str::from_utf8(body)?;
    let Some(at) = text.find("\"continue\":\"") else {
        return Ok(None);
    };
    let rest = &text[at + "\"continue\":\"".len()..];
    let token = &rest[..rest.find('"').context("an unterminated continue token")?];
    Ok((!token.is_empty()).then(|| token.to_owned()))
}

fn item_count(body: &[u8]) -> Result<usize> {
    let list: serde_json::Value = serde_json::from_slice(body)?;
    Ok(list["items"]
        .as_array()
        .context("a list without items")?
        .len())
}

/// One LIST with `resourceVersion=0`: (ms, bytes); `check` parses it and counts the items.
async fn list_rv0(ferry: &Ferry, pods: usize, check: bool) -> Result<(f64, usize)> {
    let mut sender = ferry.http1().await?;
    let path = "/api/v1/namespaces/default/pods?resourceVersion=0";
    let started = Instant::now();
    let (status, body) = send(&mut sender, request("GET", path, Bytes::new())?).await?;
    let elapsed = ms(started.elapsed());
    ensure!(
        status == 200,
        "GET {path}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    if check {
        let n = item_count(&body)?;
        ensure!(
            n == pods,
            "LIST resourceVersion=0 returned {n} pods, not {pods}"
        );
    }
    Ok((elapsed, body.len()))
}

/// One full paged traversal with `limit=500`: (ms, bytes, pages).
async fn list_paged(ferry: &Ferry, pods: usize, check: bool) -> Result<(f64, usize, usize)> {
    let mut sender = ferry.http1().await?;
    let (mut bytes, mut pages, mut items) = (0, 0, 0);
    let mut token: Option<String> = None;
    let started = Instant::now();
    loop {
        let path = match &token {
            None => format!("/api/v1/namespaces/default/pods?limit={PAGE}"),
            Some(t) => format!("/api/v1/namespaces/default/pods?limit={PAGE}&continue={t}"),
        };
        let (status, body) = send(&mut sender, request("GET", &path, Bytes::new())?).await?;
        ensure!(
            status == 200,
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if check {
            items += item_count(&body)?;
        }
        bytes += body.len();
        pages += 1;
        token = continue_token(&body)?;
        if token.is_none() {
            break;
        }
    }
    let elapsed = ms(started.elapsed());
    if check {
        ensure!(
            items == pods,
            "paged LIST returned {items} pods, not {pods}"
        );
    }
    Ok((elapsed, bytes, pages))
}

/// A raw etcd range over the pods' prefix in pages of [`PAGE`] at one revision: (ms, bytes).
async fn raw_range(client: &Client, pods: usize) -> Result<(f64, usize)> {
    let mut kv = client.kv_client();
    let prefix = b"/registry/pods/default/".to_vec();
    let mut end = prefix.clone();
    *end.last_mut().unwrap() += 1;
    let (mut bytes, mut count, mut revision) = (0, 0, 0);
    let mut start = prefix;
    let started = Instant::now();
    loop {
        let mut options = GetOptions::new()
            .with_range(end.clone())
            .with_limit(PAGE as i64);
        if revision != 0 {
            options = options.with_revision(revision);
        }
        let response = kv.get(start.clone(), Some(options)).await?;
        if revision == 0 {
            revision = response
                .header()
                .context("a range without header")?
                .revision();
        }
        for item in response.kvs() {
            bytes += item.key().len() + item.value().len();
        }
        count += response.kvs().len();
        let Some(last) = response.kvs().last() else {
            break;
        };
        if !response.more() {
            break;
        }
        start = last.key().to_vec();
        start.push(0);
    }
    let elapsed = ms(started.elapsed());
    ensure!(count == pods, "raw range found {count} pods, not {pods}");
    Ok((elapsed, bytes))
}

#[derive(Default)]
struct Report {
    store: &'static str,
    create_rate: f64,
    get: (f64, f64),
    raw_get: Option<(f64, f64)>,
    rv0: (f64, f64),
    rv0_bytes: usize,
    paged: (f64, f64),
    paged_bytes: usize,
    pages: usize,
    raw_range: Option<(f64, f64)>,
    raw_range_bytes: usize,
    rss_idle: f64,
    rss_pods: f64,
}

async fn bench_store(
    binary: &std::path::Path,
    etcd: Option<&EtcdServer>,
    config: &Config,
) -> Result<Report> {
    let store = if etcd.is_some() { "etcd" } else { "embedded" };
    let ferry = Ferry::start(binary, etcd.map(|e| e.endpoint()))?;
    let raw = match etcd {
        Some(etcd) => Some(Client::connect([etcd.endpoint()], None).await?),
        None => None,
    };
    eprintln!("{store}: ferry pid {} on {}", ferry.pid(), ferry.addr);
    let mut report = Report {
        store,
        ..Report::default()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.rss_idle = ferry.rss_mb()?;

    create_all(
        &ferry,
        "/api/v1/namespaces/default/configmaps",
        CONFIGMAPS,
        8,
        |i| configmap(&format!("cm-{i}")),
    )
    .await?;
    let total = GET_RATE * config.get_secs;
    let (mut gets, mut raw_gets_runs) = (Vec::new(), Vec::new());
    for run in 0..config.runs {
        gets.push(p50_p99(api_gets(&ferry, total).await.with_context(
            || format!("GETs; the server's stderr:\n{}", ferry.log_tail()),
        )?));
        if let Some(client) = &raw {
            raw_gets_runs.push(p50_p99(raw_gets(client, total).await?));
        }
        eprintln!(
            "{store} run {}: GET p50 {:.2} ms p99 {:.2} ms{}",
            run + 1,
            gets[run].0,
            gets[run].1,
            raw_gets_runs
                .get(run)
                .map(|r| format!(", raw etcd get p50 {:.2} ms p99 {:.2} ms", r.0, r.1))
                .unwrap_or_default()
        );
    }
    report.get = medians(&gets);
    report.raw_get = raw.as_ref().map(|_| medians(&raw_gets_runs));

    report.create_rate = create_all(
        &ferry,
        "/api/v1/namespaces/default/pods",
        config.pods,
        CREATE_CLIENTS,
        |i| pod(&format!("p-{i}")),
    )
    .await
    .with_context(|| format!("pod creates; the server's stderr:\n{}", ferry.log_tail()))?;
    eprintln!(
        "{store}: created {} pods at {:.0}/s",
        config.pods, report.create_rate
    );
    list_rv0(&ferry, config.pods, true).await?;
    list_paged(&ferry, config.pods, true).await?;
    if let Some(client) = &raw {
        raw_range(client, config.pods).await?;
    }
    let (mut rv0, mut paged, mut ranges) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..config.runs {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..LISTS {
            let (t, bytes) = list_rv0(&ferry, config.pods, false).await?;
            a.push(t);
            report.rv0_bytes = bytes;
        }
        for _ in 0..LISTS {
            let (t, bytes, pages) = list_paged(&ferry, config.pods, false).await?;
            b.push(t);
            (report.paged_bytes, report.pages) = (bytes, pages);
        }
        if let Some(client) = &raw {
            for _ in 0..LISTS {
                let (t, bytes) = raw_range(client, config.pods).await?;
                c.push(t);
                report.raw_range_bytes = bytes;
            }
            ranges.push(p50_p99(c));
        }
        rv0.push(p50_p99(a));
        paged.push(p50_p99(b));
        eprintln!(
            "{store} run {}: LIST rv=0 p50 {:.1} ms, paged p50 {:.1} ms{}",
            run + 1,
            rv0[run].0,
            paged[run].0,
            ranges
                .get(run)
                .map(|r| format!(", raw range p50 {:.1} ms", r.0))
                .unwrap_or_default()
        );
    }
    report.rv0 = medians(&rv0);
    report.paged = medians(&paged);
    report.raw_range = raw.as_ref().map(|_| medians(&ranges));
    report.rss_pods = ferry.rss_mb()?;
    eprintln!(
        "{store}: RSS idle {:.1} MB, with pods {:.1} MB",
        report.rss_idle, report.rss_pods
    );
    Ok(report)
}

fn main() -> Result<()> {
    let quick = common::flag("--quick");
    let config = Config {
        runs: common::arg("--runs", if quick { 1 } else { 3 })?,
        get_secs: if quick { 3 } else { 10 },
        pods: if quick { 1_000 } else { 10_000 },
    };
    ensure!(config.runs > 0, "--runs must be at least 1");
    let binary = common::ferry_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let embedded = runtime.block_on(bench_store(&binary, None, &config))?;
    let etcd = EtcdServer::start();
    let on_etcd = runtime.block_on(bench_store(&binary, Some(&etcd), &config))?;
    drop(etcd);

    let kib = |b: usize| b as f64 / 1024.0;
    println!("# api-read-bench\n");
    println!(
        "- `ferry apiserver` as a child process ({}), a fresh server per store{}",
        binary.display(),
        if quick { "; **--quick**" } else { "" }
    );
    println!(
        "- GET: open loop at {GET_RATE} req/s for {} s over {GET_CONNECTIONS} keep-alive HTTPS connections, {CONFIGMAPS} ConfigMaps; latency from due time to full body",
        config.get_secs
    );
    println!(
        "- LIST: {} pods (created at {CREATE_CLIENTS} concurrent clients), {LISTS} sequential LISTs per run",
        config.pods
    );
    println!(
        "- {} run(s), medians of per-run p50/p99; nproc: {}\n",
        config.runs,
        common::nproc()
    );
    println!("| workload | store | p50 ms | p99 ms | response |\n|---|---|--:|--:|--:|");
    for r in [&embedded, &on_etcd] {
        println!(
            "| GET configmap, 1,000 req/s | {} | {:.2} | {:.2} | |",
            r.store, r.get.0, r.get.1
        );
    }
    if let Some((p50, p99)) = on_etcd.raw_get {
        println!("| raw etcd get, 1,000 req/s | etcd | {p50:.2} | {p99:.2} | |");
    }
    for r in [&embedded, &on_etcd] {
        println!(
            "| LIST {} pods, resourceVersion=0 | {} | {:.1} | {:.1} | {:.0} KiB |",
            config.pods,
            r.store,
            r.rv0.0,
            r.rv0.1,
            kib(r.rv0_bytes)
        );
        println!(
            "| LIST {} pods, limit={PAGE} paged ({} pages) | {} | {:.1} | {:.1} | {:.0} KiB |",
            config.pods,
            r.pages,
            r.store,
            r.paged.0,
            r.paged.1,
            kib(r.paged_bytes)
        );
    }
    if let Some((p50, p99)) = on_etcd.raw_range {
        println!(
            "| raw etcd range of the pod prefix, pages of {PAGE} | etcd | {p50:.1} | {p99:.1} | {:.0} KiB |",
            kib(on_etcd.raw_range_bytes)
        );
    }
    println!(
        "\n| store | pod creates/s | RSS idle MB | RSS with {} pods MB |\n|---|--:|--:|--:|",
        config.pods
    );
    for r in [&embedded, &on_etcd] {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} |",
            r.store, r.create_rate, r.rss_idle, r.rss_pods
        );
    }
    Ok(())
}
