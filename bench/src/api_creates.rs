//! `api-create-bench`: creates/s through the HTTPS API at 64 concurrent clients, for both stores,
//! beside raw etcd create-transactions/s measured in the same run.
//!
//! ```text
//! cargo build --release -p ferry && cargo build --release -p bench
//! target/release/api-create-bench [--runs N] [--ops N] [--ferry PATH]
//! ```
//!
//! The server is the real `ferry apiserver` binary beside this one (`target/release/ferry`, or
//! `--ferry PATH`), run as a child process: one on the embedded store and one on a fresh etcd
//! (started on free ports). Each client is a task with its own keep-alive HTTP/1.1 connection
//! over TLS, posting ~1 KiB ConfigMaps with fresh names. The baseline is
//! `If create_revision(key) == 0 Then put` through `etcd-client` at 64 in flight, against the
//! same etcd, alternating order with the API runs. Clients, apiserver and etcd share the machine.
//! Besides the rates, the CPU time etcd, the apiserver and this process (the clients) spent per
//! create (from `/proc/<pid>/stat`) shows where the difference goes. Medians of N runs; Markdown on stdout.
//! Target (issue 3): the etcd-backed API at ≥ 70 % of raw etcd create-transactions/s.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, ensure};
use bytes::Bytes;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use tests::etcd::EtcdServer;

mod common;
use common::{Ferry, cpu_seconds, median};

const CLIENTS: usize = 64;

fn payload(name: &str) -> Bytes {
    let data = "x".repeat(900);
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"bench"}}}},"data":{{"blob":"{data}"}}}}"#
    ))
}

/// One measured phase: creates/s and the CPU microseconds per create of each process watched.
struct Phase {
    rate: f64,
    cpu_us: Vec<f64>,
}

/// Runs `work` (which makes `ops` creates) and measures it, with the CPU time of `pids`.
async fn measure(
    ops: usize,
    pids: &[u32],
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<Phase> {
    let before: Vec<f64> = pids
        .iter()
        .map(|p| cpu_seconds(*p))
        .collect::<Result<_>>()?;
    let started = Instant::now();
    work.await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_us = pids
        .iter()
        .zip(before)
        .map(|(p, b)| Ok((cpu_seconds(*p)? - b) * 1e6 / ops as f64))
        .collect::<Result<_>>()?;
    Ok(Phase {
        rate: ops as f64 / elapsed,
        cpu_us,
    })
}

/// `ops` POSTs of fresh ConfigMaps spread over [`CLIENTS`] keep-alive connections.
async fn api_creates(ferry: &Ferry, run: usize, ops: usize) -> Result<()> {
    let path = "/api/v1/namespaces/default/configmaps";
    common::create_many(ferry, path, ops, CLIENTS, move |i| {
        payload(&format!("b{run}-{i}"))
    })
    .await?;
    Ok(())
}

/// Raw etcd create-transactions at [`CLIENTS`] in flight.
async fn raw_creates(client: &Client, run: usize, ops: usize) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let value = payload("raw").to_vec();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (mut kv, next, value) = (client.kv_client(), next.clone(), value.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return Ok::<(), anyhow::Error>(());
                }
                let key = format!("/registry/raw-bench/{run}/{i}");
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key, value.clone(), None)]);
                ensure!(
                    kv.txn(txn).await?.succeeded(),
                    "raw create lost its compare"
                );
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

fn main() -> Result<()> {
    let runs = common::arg("--runs", 5)?;
    let ops = common::arg("--ops", 10_000)?;
    ensure!(runs > 0 && ops > 0, "--runs and --ops must be at least 1");
    let binary = common::ferry_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let etcd = EtcdServer::start();
    let etcd_pid = common::child_named("etcd")?;
    let on_etcd = Ferry::start(&binary, Some(etcd.endpoint()))?;
    let embedded = Ferry::start(&binary, None)?;
    let client = runtime.block_on(Client::connect([etcd.endpoint()], None))?;
    let (mut raw, mut via_etcd, mut via_embedded) = (Vec::new(), Vec::new(), Vec::new());
    let me = std::process::id();
    let watched = [etcd_pid, on_etcd.pid(), me];
    for run in 0..runs {
        let raw_phase = || measure(ops, &watched, raw_creates(&client, run, ops));
        let api_phase = || measure(ops, &watched, api_creates(&on_etcd, run, ops));
        // Alternate the order so the baseline and the API see the same etcd size on average.
        if run % 2 == 0 {
            raw.push(runtime.block_on(raw_phase())?);
            via_etcd.push(runtime.block_on(api_phase())?);
        } else {
            via_etcd.push(runtime.block_on(api_phase())?);
            raw.push(runtime.block_on(raw_phase())?);
        }
        via_embedded.push(runtime.block_on(measure(
            ops,
            &[embedded.pid(), me],
            api_creates(&embedded, run, ops),
        ))?);
        eprintln!(
            "run {}: raw {:.0}/s (CPU per create: etcd {:.0} µs, client {:.0} µs), API on etcd {:.0}/s (etcd {:.0} µs, apiserver {:.0} µs, client {:.0} µs), API on embedded {:.0}/s (apiserver {:.0} µs, client {:.0} µs)",
            run + 1,
            raw[run].rate,
            raw[run].cpu_us[0],
            raw[run].cpu_us[2],
            via_etcd[run].rate,
            via_etcd[run].cpu_us[0],
            via_etcd[run].cpu_us[1],
            via_etcd[run].cpu_us[2],
            via_embedded[run].rate,
            via_embedded[run].cpu_us[0],
            via_embedded[run].cpu_us[1],
        );
    }
    let rate = |v: &[Phase]| median(v.iter().map(|p| p.rate).collect());
    let cpu = |v: &[Phase], i: usize| median(v.iter().map(|p| p.cpu_us[i]).collect());
    let (raw_rate, etcd_rate, embedded_rate) = (rate(&raw), rate(&via_etcd), rate(&via_embedded));
    println!("# api-create-bench\n");
    println!(
        "- {runs} runs of {ops} creates at {CLIENTS} concurrent clients (keep-alive HTTPS, ~1 KiB ConfigMaps) against `ferry apiserver` child processes; medians"
    );
    println!("- nproc: {}\n", common::nproc());
    println!(
        "| workload | creates/s | ratio vs raw etcd create-txn | etcd CPU µs/create | apiserver CPU µs/create | client CPU µs/create |\n|---|--:|--:|--:|--:|--:|"
    );
    println!(
        "| raw etcd create-txn (etcd-client) | {raw_rate:.0} | 1.00× | {:.0} | | {:.0} |",
        cpu(&raw, 0),
        cpu(&raw, 2)
    );
    println!(
        "| HTTPS API, etcd store | {etcd_rate:.0} | {:.2}× | {:.0} | {:.0} | {:.0} |",
        etcd_rate / raw_rate,
        cpu(&via_etcd, 0),
        cpu(&via_etcd, 1),
        cpu(&via_etcd, 2)
    );
    println!(
        "| HTTPS API, embedded store | {embedded_rate:.0} | {:.2}× | | {:.0} | {:.0} |",
        embedded_rate / raw_rate,
        cpu(&via_embedded, 0),
        cpu(&via_embedded, 1)
    );
    let verdict = if etcd_rate >= 0.7 * raw_rate {
        "PASS"
    } else {
        "**FAIL**"
    };
    println!(
        "\n- {verdict}: API creates over etcd ≥ 70% of raw etcd create-txn/s ({:.0}%)",
        100.0 * etcd_rate / raw_rate
    );
    Ok(())
}
