//! `storage-bench`: write throughput of Ferry's storage backends, against raw etcd.
//!
//! ```text
//! cargo run --release -p bench --bin storage-bench -- [--quick] [--runs N] [--ops N] [--ops-single N]
//! ```
//!
//! One run starts a fresh etcd (the test harness: free ports, a temporary data directory on the
//! same disk as everything else here) and measures, each as the median of N runs of a fixed
//! number of operations:
//!
//! - raw etcd through `etcd-client`, the baseline: puts; create transactions
//!   (`If create_revision(key) == 0 Then put`, exactly what a Kubernetes create is); update
//!   transactions (`If mod_revision(key) == rev Then put`, a Kubernetes update without its read);
//! - the `Storage` trait over etcd (`EtcdStorage`): creates, and `guaranteed_update`s of distinct
//!   existing keys that change the value;
//! - the same over the embedded backend (`EmbeddedStorage`, one redb file, every commit durable).
//!
//! Each at 64 concurrent writers (64 tasks taking operations from one shared counter, on a
//! multi-threaded tokio runtime) and at 1. Values are a realistic ~1 KiB pod; keys are
//! `/registry/pods/bench-<n>/pod-<i>`, fresh for every measurement.
//!
//! Fairness: within a round the raw baseline and the etcd backend run back to back at each
//! concurrency, alternating which goes first from round to round, so they see the same etcd state
//! size on average. After every round all benchmark keys are deleted and etcd is compacted
//! (physically), so every round starts from the same state. The embedded backend gets a fresh
//! file every round.
//!
//! The report is Markdown on stdout (progress goes to stderr). Targets are checked at the end and
//! printed as PASS/FAIL lines; the exit code is 0 either way (this is a report, not a test).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use apiserver::storage::embedded::EmbeddedStorage;
use apiserver::storage::etcd::{EtcdConfig, EtcdStorage};
use apiserver::storage::{KeyValue, Preconditions, Storage, StorageError, UpdateResult};
use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, DeleteOptions, KvClient, Txn, TxnOp,
};
use tests::etcd::EtcdServer;

/// The "many writers" concurrency.
const MANY: usize = 64;
/// Every benchmark key is under this prefix.
const BENCH_PREFIX: &str = "/registry/pods/bench-";

const USAGE: &str = "\
storage-bench: write throughput of Ferry's storage backends against raw etcd.

USAGE:
    cargo run --release -p bench --bin storage-bench -- [OPTIONS]

OPTIONS:
    --quick           a smoke run: 3 runs of 2,000 operations (200 with 1 writer)
    --runs N          runs per measurement; the report gives their median [default: 5]
    --ops N           operations per run with 64 writers [default: 20000]
    --ops-single N    operations per run with 1 writer [default: --ops / 10]
    -h, --help        print this help

Starts its own etcd (the `etcd` on PATH, or $ETCD_BIN) with its data in the temp dir; the
embedded backend's file goes there too. Set TMPDIR to benchmark another disk.";

struct Args {
    runs: usize,
    ops_many: usize,
    ops_single: usize,
}

fn parse_args() -> Result<Args> {
    let mut quick = false;
    let (mut runs, mut ops_many, mut ops_single) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize> {
            let value = args
                .next()
                .with_context(|| format!("{name} needs a value"))?;
            let n: usize = value
                .replace(['_', ','], "")
                .parse()
                .with_context(|| format!("{name} {value:?}"))?;
            ensure!(n > 0, "{name} must be at least 1");
            Ok(n)
        };
        match arg.as_str() {
            "--quick" => quick = true,
            "--runs" => runs = Some(number("--runs")?),
            "--ops" => ops_many = Some(number("--ops")?),
            "--ops-single" => ops_single = Some(number("--ops-single")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let (default_runs, default_ops) = if quick { (3, 2_000) } else { (5, 20_000) };
    let runs = runs.unwrap_or(default_runs);
    let ops_many = ops_many.unwrap_or(default_ops);
    let ops_single = ops_single.unwrap_or((ops_many / 10).max(1));
    Ok(Args {
        runs,
        ops_many,
        ops_single,
    })
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let load_before = read_trimmed("/proc/loadavg");
    eprintln!("storage-bench: starting etcd");
    let etcd = EtcdServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(bench(&args, etcd.endpoint()))?;
    drop(runtime);
    drop(etcd);
    let load = [load_before, read_trimmed("/proc/loadavg")];
    report(&args, &results, started.elapsed().as_secs_f64(), &load);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    RawPut,
    RawCreateTxn,
    RawUpdateTxn,
    EtcdCreate,
    EtcdUpdate,
    EmbeddedCreate,
    EmbeddedUpdate,
}

impl Workload {
    const ALL: [Workload; 7] = [
        Workload::RawPut,
        Workload::RawCreateTxn,
        Workload::RawUpdateTxn,
        Workload::EtcdCreate,
        Workload::EtcdUpdate,
        Workload::EmbeddedCreate,
        Workload::EmbeddedUpdate,
    ];

    fn label(self) -> &'static str {
        match self {
            Workload::RawPut => "raw etcd put",
            Workload::RawCreateTxn => "raw etcd create-txn",
            Workload::RawUpdateTxn => "raw etcd update-txn",
            Workload::EtcdCreate => "etcd backend create",
            Workload::EtcdUpdate => "etcd backend guaranteed_update",
            Workload::EmbeddedCreate => "embedded create",
            Workload::EmbeddedUpdate => "embedded guaranteed_update",
        }
    }

    /// The raw etcd operation this workload is compared with.
    fn baseline(self) -> Option<Workload> {
        match self {
            Workload::EtcdCreate | Workload::EmbeddedCreate => Some(Workload::RawCreateTxn),
            Workload::EtcdUpdate | Workload::EmbeddedUpdate => Some(Workload::RawUpdateTxn),
            _ => None,
        }
    }
}

/// Operations per second of every run of every (workload, writers).
#[derive(Default)]
struct Results {
    samples: Vec<(Workload, usize, Vec<f64>)>,
    /// Warmup measurements: shown as such in the progress log, never reported.
    warmup: bool,
}

impl Results {
    fn record(&mut self, workload: Workload, writers: usize, ops_per_sec: f64) {
        let tag = if self.warmup { " (warmup)" } else { "" };
        eprintln!(
            "  {:<32} {writers:>2} writers: {:>9}/s{tag}",
            workload.label(),
            thousands(ops_per_sec)
        );
        match self
            .samples
            .iter_mut()
            .find(|(w, n, _)| *w == workload && *n == writers)
        {
            Some((_, _, samples)) => samples.push(ops_per_sec),
            None => self.samples.push((workload, writers, vec![ops_per_sec])),
        }
    }

    fn get(&self, workload: Workload, writers: usize) -> Option<Stats> {
        let (_, _, samples) = self
            .samples
            .iter()
            .find(|(w, n, _)| *w == workload && *n == writers)?;
        Stats::of(samples)
    }
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Option<Stats> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Some(Stats {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// The keys and values of one measurement: `n` pods in a namespace of their own.
struct Batch {
    keys: Vec<String>,
    /// The values the keys are created with.
    created: Vec<Bytes>,
    /// The values updates write (the same pods, scheduled and running).
    updated: Vec<Bytes>,
}

/// Hands out fresh namespaces.
struct Namespaces(usize);

impl Namespaces {
    fn batch(&mut self, n: usize) -> Arc<Batch> {
        self.0 += 1;
        let namespace = format!("bench-{}", self.0);
        let names: Vec<String> = (0..n).map(|i| format!("pod-{i}")).collect();
        Arc::new(Batch {
            keys: names
                .iter()
                .map(|name| format!("/registry/pods/{namespace}/{name}"))
                .collect(),
            created: names
                .iter()
                .enumerate()
                .map(|(i, name)| pod(&namespace, name, i, false))
                .collect(),
            updated: names
                .iter()
                .enumerate()
                .map(|(i, name)| pod(&namespace, name, i, true))
                .collect(),
        })
    }
}

/// A pod as kube-apiserver stores it (JSON; ~1 KiB): pending when created, running once updated.
fn pod(namespace: &str, name: &str, i: usize, running: bool) -> Bytes {
    let uid = format!("6f1c3e2a-8d4b-4c1e-9a7f-{i:012x}");
    let mut pod = serde_json::json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c6f8d", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c6f8d",
                "uid": "0b5e8f61-1c2d-4e3f-8a9b-0c1d2e3f4a5b", "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.k8s.io/nginx-slim:0.27",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "POD_NAME", "value": name}, {"name": "LOG_LEVEL", "value": "info"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"}
    });
    if running {
        pod["spec"]["nodeName"] = "node-1".into();
        pod["status"] = serde_json::json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:05Z"}],
            "podIP": format!("10.244.{}.{}", (i / 250) % 250, i % 250 + 2),
            "startTime": "2025-01-01T00:00:01Z",
            "qosClass": "Burstable"
        });
    }
    Bytes::from(serde_json::to_vec(&pod).expect("a pod serializes"))
}

/// Runs `ops` operations, `op(0)` to `op(ops - 1)`, with `writers` concurrent tasks taking the
/// next index from a shared counter. Returns operations per second.
async fn drive<F, Fut>(writers: usize, ops: usize, op: F) -> Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops {
                        return Ok::<_, anyhow::Error>(());
                    }
                    op(i).await.with_context(|| format!("operation {i}"))?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(ops as f64 / start.elapsed().as_secs_f64())
}

/// The raw etcd baseline: puts, then creates (create-txn), then updates of the created keys
/// (update-txn), each on fresh keys.
async fn run_raw(
    kv: &KvClient,
    ns: &mut Namespaces,
    writers: usize,
    ops: usize,
    results: &mut Results,
) -> Result<()> {
    let puts = ns.batch(ops);
    let kv2 = kv.clone();
    let rate = drive(writers, ops, move |i| {
        let (mut kv, key, value) = (kv2.clone(), puts.keys[i].clone(), puts.created[i].clone());
        async move {
            kv.put(key, value, None).await?;
            Ok(())
        }
    })
    .await?;
    results.record(Workload::RawPut, writers, rate);

    let batch = ns.batch(ops);
    let revisions: Arc<Vec<AtomicI64>> = Arc::new((0..ops).map(|_| AtomicI64::new(0)).collect());
    let (kv2, b, revs) = (kv.clone(), batch.clone(), revisions.clone());
    let rate = drive(writers, ops, move |i| {
        let (mut kv, key, value, revs) = (
            kv2.clone(),
            b.keys[i].clone(),
            b.created[i].clone(),
            revs.clone(),
        );
        async move {
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value, None)]);
            let response = kv.txn(txn).await?;
            ensure!(
                response.succeeded(),
                "create-txn found the key already there"
            );
            revs[i].store(
                response.header().context("no response header")?.revision(),
                Ordering::Relaxed,
            );
            Ok(())
        }
    })
    .await?;
    results.record(Workload::RawCreateTxn, writers, rate);

    let kv2 = kv.clone();
    let rate = drive(writers, ops, move |i| {
        let (mut kv, key, value) = (kv2.clone(), batch.keys[i].clone(), batch.updated[i].clone());
        let revision = revisions[i].load(Ordering::Relaxed);
        async move {
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    revision,
                )])
                .and_then([TxnOp::put(key, value, None)]);
            ensure!(
                kv.txn(txn).await?.succeeded(),
                "update-txn found the key modified"
            );
            Ok(())
        }
    })
    .await?;
    results.record(Workload::RawUpdateTxn, writers, rate);
    Ok(())
}

/// Creates, then updates of the created keys, through the `Storage` trait.
async fn run_storage(
    storage: &Arc<dyn Storage>,
    [create, update]: [Workload; 2],
    ns: &mut Namespaces,
    writers: usize,
    ops: usize,
    results: &mut Results,
) -> Result<()> {
    let batch = ns.batch(ops);
    let (s, b) = (storage.clone(), batch.clone());
    let rate = drive(writers, ops, move |i| {
        let (s, key, value) = (s.clone(), b.keys[i].clone(), b.created[i].clone());
        async move {
            s.create(&key, value).await?;
            Ok(())
        }
    })
    .await?;
    results.record(create, writers, rate);
    let prefix = batch.keys[0]
        .rsplit_once('/')
        .map(|(dir, _)| format!("{dir}/"))
        .unwrap_or_default();
    let count = storage.count(&prefix).await?;
    ensure!(
        count == ops as i64,
        "{} wrote {count} keys under {prefix}, not {ops}",
        create.label()
    );

    let s = storage.clone();
    let rate = drive(writers, ops, move |i| {
        let (s, key, value) = (s.clone(), batch.keys[i].clone(), batch.updated[i].clone());
        async move {
            let new = value.clone();
            let mut update = move |current: Option<&KeyValue>| -> UpdateResult {
                match current {
                    Some(_) => Ok(new.clone()),
                    None => Err(StorageError::Internal(
                        "the key to update is missing".into(),
                    )),
                }
            };
            let stored = s
                .guaranteed_update(&key, &Preconditions::none(), false, &mut update)
                .await?;
            ensure!(
                stored.value == value,
                "guaranteed_update did not store the new value"
            );
            Ok(())
        }
    })
    .await?;
    results.record(update, writers, rate);
    Ok(())
}

async fn bench(args: &Args, endpoint: &str) -> Result<Results> {
    let mut client = Client::connect([endpoint], None)
        .await
        .context("connect to etcd")?;
    let kv = client.kv_client();
    let mut config = EtcdConfig::new(vec![endpoint.to_owned()]);
    config.compaction_interval = None; // the bench compacts between rounds itself
    let etcd_backend: Arc<dyn Storage> = Arc::new(
        EtcdStorage::connect(config)
            .await
            .context("EtcdStorage::connect")?,
    );
    let mut ns = Namespaces(0);
    let mut results = Results::default();

    // Warm up connections and etcd (not recorded).
    let warmup = args.ops_many.min(1_000);
    let mut scratch = Results {
        warmup: true,
        ..Results::default()
    };
    eprintln!("warmup ({warmup} operations each, not recorded)");
    run_raw(&kv, &mut ns, MANY, warmup, &mut scratch).await?;
    run_storage(
        &etcd_backend,
        [Workload::EtcdCreate, Workload::EtcdUpdate],
        &mut ns,
        MANY,
        warmup,
        &mut scratch,
    )
    .await?;
    reset_etcd(&mut client).await?;

    for round in 0..args.runs {
        eprintln!("round {}/{}", round + 1, args.runs);
        let dir = tempfile::Builder::new()
            .prefix("ferry-bench-embedded-")
            .tempdir()?;
        let embedded: Arc<dyn Storage> = Arc::new(open_embedded(&dir.path().join("ferry.redb"))?);
        let embedded_workloads = [Workload::EmbeddedCreate, Workload::EmbeddedUpdate];
        let etcd_workloads = [Workload::EtcdCreate, Workload::EtcdUpdate];
        // Warm the fresh file up a little, as the etcd side was.
        run_storage(
            &embedded,
            embedded_workloads,
            &mut ns,
            MANY,
            warmup.min(200),
            &mut scratch,
        )
        .await?;
        for (writers, ops) in [(MANY, args.ops_many), (1, args.ops_single)] {
            if round % 2 == 0 {
                run_raw(&kv, &mut ns, writers, ops, &mut results).await?;
                run_storage(
                    &etcd_backend,
                    etcd_workloads,
                    &mut ns,
                    writers,
                    ops,
                    &mut results,
                )
                .await?;
            } else {
                run_storage(
                    &etcd_backend,
                    etcd_workloads,
                    &mut ns,
                    writers,
                    ops,
                    &mut results,
                )
                .await?;
                run_raw(&kv, &mut ns, writers, ops, &mut results).await?;
            }
            run_storage(
                &embedded,
                embedded_workloads,
                &mut ns,
                writers,
                ops,
                &mut results,
            )
            .await?;
        }
        drop(embedded);
        reset_etcd(&mut client).await?;
    }
    Ok(results)
}

fn open_embedded(path: &Path) -> Result<EmbeddedStorage> {
    EmbeddedStorage::open(path)
        .with_context(|| format!("EmbeddedStorage::open({})", path.display()))
}

/// Deletes every benchmark key and compacts etcd's history away, so the next round starts from
/// the same state.
async fn reset_etcd(client: &mut Client) -> Result<()> {
    let deleted = client
        .delete(BENCH_PREFIX, Some(DeleteOptions::new().with_prefix()))
        .await?;
    let revision = deleted.header().context("no response header")?.revision();
    client
        .compact(revision, Some(CompactionOptions::new().with_physical()))
        .await?;
    Ok(())
}

fn report(args: &Args, results: &Results, elapsed_secs: f64, load: &[Option<String>; 2]) {
    println!("# Ferry storage benchmark\n");
    println!("## Machine\n");
    println!(
        "- nproc: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("- CPU: {}", cpu_model().unwrap_or_else(|| "unknown".into()));
    println!(
        "- kernel: {}",
        read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
    );
    println!("- etcd: {}", etcd_version());
    let tmp = std::env::temp_dir();
    println!(
        "- data (etcd and embedded): {} ({})",
        tmp.display(),
        filesystem_of(&tmp).unwrap_or_else(|| "unknown filesystem".into())
    );
    println!(
        "- runs: {} per measurement; {} operations per run with {MANY} writers, {} with 1; values ~{} bytes",
        args.runs,
        thousands(args.ops_many as f64),
        thousands(args.ops_single as f64),
        pod("bench-1", "pod-1", 1, false).len(),
    );
    // Anything else using the CPU or the disk skews the numbers: the load average shows it.
    let loadavg = |l: &Option<String>| {
        l.as_deref().map_or("unknown".to_owned(), |l| {
            l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        })
    };
    println!(
        "- load average (1/5/15 min): {} before, {} after (should be well below nproc: the bench \
         wants a quiet machine)",
        loadavg(&load[0]),
        loadavg(&load[1])
    );
    println!("- total time: {elapsed_secs:.0} s\n");

    println!("## Results\n");
    println!("| workload | writers | median ops/s | min | max | ratio vs raw etcd txn |");
    println!("|---|--:|--:|--:|--:|--:|");
    for writers in [MANY, 1] {
        for workload in Workload::ALL {
            let Some(stats) = results.get(workload, writers) else {
                continue;
            };
            let ratio = workload
                .baseline()
                .and_then(|base| results.get(base, writers))
                .map_or_else(
                    || "—".to_owned(),
                    |base| format!("{:.2}×", stats.median / base.median),
                );
            println!(
                "| {} | {writers} | {} | {} | {} | {ratio} |",
                workload.label(),
                thousands(stats.median),
                thousands(stats.min),
                thousands(stats.max)
            );
        }
    }
    println!(
        "\nRatios compare medians at the same number of writers: creates with raw create-txn \
         (`If create_revision(key) == 0 Then put`), updates with raw update-txn \
         (`If mod_revision(key) == rev Then put`, no read).\n"
    );

    println!("## Targets\n");
    let median = |w, n| results.get(w, n).map_or(0.0, |s| s.median);
    let etcd_creates = median(Workload::EtcdCreate, MANY);
    let raw_creates = median(Workload::RawCreateTxn, MANY);
    let embedded_creates = median(Workload::EmbeddedCreate, MANY);
    let checks = [
        (
            format!("etcd backend creates at {MANY} writers ≥ 80% of raw etcd create-txn/s"),
            raw_creates > 0.0 && etcd_creates >= 0.8 * raw_creates,
            format!(
                "{}/s vs {}/s = {:.0}%",
                thousands(etcd_creates),
                thousands(raw_creates),
                if raw_creates > 0.0 {
                    100.0 * etcd_creates / raw_creates
                } else {
                    0.0
                }
            ),
        ),
        (
            format!("embedded creates at {MANY} writers ≥ 20,000/s"),
            embedded_creates >= 20_000.0,
            format!("{}/s", thousands(embedded_creates)),
        ),
    ];
    let failed = checks.iter().filter(|(_, ok, _)| !ok).count();
    for (target, ok, detail) in &checks {
        if *ok {
            println!("- PASS: {target} ({detail})");
        } else {
            println!("- **FAIL**: {target} ({detail})  <<<<<<<<<<");
        }
    }
    if failed > 0 {
        println!("\n**{failed} of {} targets FAILED.**", checks.len());
        eprintln!(
            "storage-bench: {failed} of {} targets FAILED (see the report)",
            checks.len()
        );
    } else {
        println!("\nAll {} targets met.", checks.len());
    }
}

/// `12,345` for 12345.4.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// The first line of `etcd --version` (the binary the harness runs).
fn etcd_version() -> String {
    let binary = std::env::var_os("ETCD_BIN").unwrap_or_else(|| "etcd".into());
    match Command::new(&binary).arg("--version").output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or("unknown")
            .trim()
            .to_owned(),
        Err(e) => format!("unknown ({e})"),
    }
}

/// The filesystem type and device holding `path`, from /proc/mounts (longest matching mount).
fn filesystem_of(path: &Path) -> Option<String> {
    let path: PathBuf = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount).then(|| {
                (
                    mount.len(),
                    format!("{fstype} on {device}, mounted at {mount}"),
                )
            })
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, description)| description)
}
