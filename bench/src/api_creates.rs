//! `api-create-bench`: creates/s through the HTTPS API at 64 concurrent clients, for both stores,
//! beside raw etcd create-transactions/s measured in the same run.
//!
//! ```text
//! cargo run --release -p bench --bin api-create-bench -- [--runs N] [--ops N]
//! ```
//!
//! Each client is a task with its own keep-alive HTTP/1.1 connection over TLS, posting ~1 KiB
//! ConfigMaps with fresh names; the apiserver runs in-process (the test harness) on a 2-thread
//! runtime of its own. The baseline is `If create_revision(key) == 0 Then put` through
//! `etcd-client` at 64 in flight, against the same etcd. Medians of N runs; Markdown on stdout.
//! Target (issue 3): the etcd-backed API at ≥ 70 % of raw etcd create-transactions/s.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use http_body_util::{BodyExt, Full};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tests::apiserver::{Backend, TOKEN, TestApiServer};
use tests::etcd::EtcdServer;

const CLIENTS: usize = 64;

fn arg(name: &str, default: usize) -> Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context("a value")?
            .parse()
            .context("a number"),
        None => Ok(default),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn payload(name: &str) -> Bytes {
    let data = "x".repeat(900);
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"bench"}}}},"data":{{"blob":"{data}"}}}}"#
    ))
}

/// Creates/s through the API: `ops` POSTs spread over [`CLIENTS`] keep-alive connections.
async fn api_creates(server: &TestApiServer, run: usize, ops: usize) -> Result<f64> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server.ca_pem.as_bytes()).flatten() {
        roots.add(cert)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let next = Arc::new(AtomicUsize::new(0));
    let path = "/api/v1/namespaces/default/configmaps".to_owned();
    let mut senders = Vec::new();
    for _ in 0..CLIENTS {
        let tcp = tokio::net::TcpStream::connect(server.addr).await?;
        let tls = connector
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut sender in senders {
        let (next, path) = (next.clone(), path.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return Ok::<(), anyhow::Error>(());
                }
                sender.ready().await?;
                let request = hyper::Request::post(&path)
                    .header("Host", "localhost")
                    .header("Authorization", format!("Bearer {TOKEN}"))
                    .header("Content-Type", "application/json")
                    .body(Full::new(payload(&format!("b{run}-{i}"))))?;
                let response = sender.send_request(request).await?;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await?.to_bytes();
                ensure!(
                    status == 201,
                    "create failed with {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(ops as f64 / started.elapsed().as_secs_f64())
}

/// Raw etcd create-transactions/s at [`CLIENTS`] in flight.
async fn raw_creates(endpoint: &str, run: usize, ops: usize) -> Result<f64> {
    let client = Client::connect([endpoint], None).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let value = payload("raw").to_vec();
    let started = Instant::now();
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
    Ok(ops as f64 / started.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let runs = arg("--runs", 5)?;
    let ops = arg("--ops", 10_000)?;
    let etcd = EtcdServer::start();
    let etcd_api = TestApiServer::start(Backend::Etcd(&etcd));
    let embedded_api = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut raw, mut via_etcd, mut via_embedded) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        // Alternate the order so the baseline and the API see the same etcd size on average.
        if run % 2 == 0 {
            raw.push(runtime.block_on(raw_creates(etcd.endpoint(), run, ops))?);
            via_etcd.push(runtime.block_on(api_creates(&etcd_api, run, ops))?);
        } else {
            via_etcd.push(runtime.block_on(api_creates(&etcd_api, run, ops))?);
            raw.push(runtime.block_on(raw_creates(etcd.endpoint(), run, ops))?);
        }
        via_embedded.push(runtime.block_on(api_creates(&embedded_api, run, ops))?);
        eprintln!(
            "run {}: raw {:.0}/s, API on etcd {:.0}/s, API on embedded {:.0}/s",
            run + 1,
            raw[run],
            via_etcd[run],
            via_embedded[run]
        );
    }
    let (raw, via_etcd, via_embedded) = (median(raw), median(via_etcd), median(via_embedded));
    println!("# api-create-bench\n");
    println!(
        "- {runs} runs of {ops} creates at {CLIENTS} concurrent clients (keep-alive HTTPS, ~1 KiB ConfigMaps); medians"
    );
    println!(
        "- nproc: {}\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("| workload | creates/s | ratio vs raw etcd create-txn |\n|---|--:|--:|");
    println!("| raw etcd create-txn (etcd-client) | {raw:.0} | 1.00× |");
    println!(
        "| HTTPS API, etcd store | {via_etcd:.0} | {:.2}× |",
        via_etcd / raw
    );
    println!(
        "| HTTPS API, embedded store | {via_embedded:.0} | {:.2}× |",
        via_embedded / raw
    );
    let verdict = if via_etcd >= 0.7 * raw {
        "PASS"
    } else {
        "**FAIL**"
    };
    println!(
        "\n- {verdict}: API creates over etcd ≥ 70% of raw etcd create-txn/s ({:.0}%)",
        100.0 * via_etcd / raw
    );
    Ok(())
}
