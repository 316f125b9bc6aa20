//! `up-bench`: the local cluster as a user meets it (issue 8), every figure through the real
//! `ferry up` processes and unmodified kubectl:
//!
//! 1. `ferry up --detach` until it returns with all 3 nodes Ready, on a fresh data directory and
//!    again on an existing one (`--rounds` times each);
//! 2. idle RSS of apiserver + controller-manager + scheduler (10 s after start);
//! 3. a 3-replica Deployment from `kubectl apply` to all 3 pods Ready (seen by a watch);
//! 4. pod start-up latency: bare pods created at `--churn-rate`/s (each deleted 5 s later) for
//!    `--churn-seconds`, from the create request sent to `Running` seen by a watch;
//! 5. on `--big-nodes` nodes: a `--big-replicas` Deployment from `kubectl apply` to
//!    `kubectl rollout status` success; then scaled to `--pods` pods, and the three
//!    control-plane processes' RSS holding them.
//!
//! `--etcd` runs it all with `ferry up --etcd`. Needs kubectl 1.33 (`kubectl.1.33` beside the
//! `kubectl` on PATH, or in `$KUBECTL_DIR`).
//!
//! Usage: cargo build --release -p ferry && cargo build --release -p bench &&
//!   target/release/up-bench [--etcd] [--rounds 5] [--churn-rate 20] [--churn-seconds 30]
//!   [--big-nodes 100] [--big-replicas 1000] [--pods 10000]

#[path = "common.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use common::{arg, ferry_binary, flag, median, percentile, pss_mb, rss_mb};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};

/// A cluster started by `ferry up --detach`, stopped (`ferry down`) when dropped.
struct Cluster {
    ferry: PathBuf,
    dir: PathBuf,
}

impl Cluster {
    /// Runs `ferry up --detach` on `dir`; returns the cluster and how long `ferry up` took.
    fn up(ferry: &Path, dir: &Path, nodes: usize, etcd: bool) -> Result<(Cluster, Duration)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(ferry);
        command
            .args(["up", "--detach", "--no-kubeconfig-update"])
            .arg(format!("--data-dir={}", dir.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--nodes={nodes}"))
            .stdin(Stdio::null());
        if etcd {
            command.arg("--etcd");
        }
        let started = Instant::now();
        let output = command.output().context("cannot run ferry up")?;
        let took = started.elapsed();
        let cluster = Cluster {
            ferry: ferry.to_owned(),
            dir: dir.to_owned(),
        };
        ensure!(
            output.status.success(),
            "ferry up failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((cluster, took))
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn pid(&self, component: &str) -> Result<u32> {
        let path = self.dir.join("run").join(format!("{component}.pid"));
        std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .parse()
            .context("a bad pid file")
    }

    /// RSS of apiserver, controller-manager and scheduler, in MB.
    fn control_plane_rss(&self) -> Result<[f64; 3]> {
        Ok([
            rss_mb(self.pid("apiserver")?)?,
            rss_mb(self.pid("controller-manager")?)?,
            rss_mb(self.pid("scheduler")?)?,
        ])
    }

    /// The three processes' proportional set size together, in MB: each shares the `ferry`
    /// binary's pages with the others (and the kubelets), which RSS counts once per process and
    /// PSS divides among them.
    fn control_plane_pss(&self) -> Result<f64> {
        let mut total = 0.0;
        for component in ["apiserver", "controller-manager", "scheduler"] {
            total += pss_mb(self.pid(component)?)?;
        }
        Ok(total)
    }

    async fn client(&self) -> Result<kube::Client> {
        let config = kube::config::Kubeconfig::read_from(self.kubeconfig())?;
        let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Runs kubectl 1.33 against the cluster; fails with its output unless it succeeds.
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut child = Command::new(tests::apiserver::kubectl_binary("1.33"))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run kubectl.1.33")?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write as _;
            pipe.write_all(text.as_bytes())?;
        }
        let output = child.wait_with_output()?;
        ensure!(
            output.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.ferry)
            .arg("down")
            .arg(format!("--data-dir={}", self.dir.display()))
            .stdout(Stdio::null())
            .status();
    }
}

fn deployment(name: &str, replicas: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  \
         selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    \
         spec:\n      containers: [{{name: c, image: nginx:1.27}}]\n"
    )
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits (up to `timeout`) for `count` pods matching `selector` in `default` to be Ready, with a
/// watch opened before `start()` runs; returns the time from `start()` to the last Ready seen.
async fn until_ready(
    client: &kube::Client,
    selector: &str,
    count: usize,
    timeout: Duration,
    start: impl FnOnce() -> Result<()>,
) -> Result<Duration> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods
        .list(&kube::api::ListParams::default().labels(selector))
        .await?;
    let version = list.metadata.resource_version.unwrap_or_default();
    let mut stream = pods
        .watch(
            &WatchParams::default().labels(selector).timeout(290),
            &version,
        )
        .await?
        .boxed();
    let began = Instant::now();
    start()?;
    let mut ready = HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while ready.len() < count {
        let event = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .with_context(|| format!("only {} of {count} pods Ready in time", ready.len()))??;
        match event {
            Some(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) if is_ready(&pod) => {
                ready.insert(pod.metadata.name.unwrap_or_default());
            }
            Some(WatchEvent::Error(e)) => bail!("watch error: {e:?}"),
            Some(_) => {}
            None => bail!("the watch ended"),
        }
    }
    Ok(began.elapsed())
}

/// Bare pods created at `rate`/s for `seconds`, each deleted 5 s after its creation: the time
/// from each create request sent to `Running` seen by a watch, in ms (sorted).
async fn churn(client: &kube::Client, rate: usize, seconds: usize) -> Result<Vec<f64>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let version = pods
        .list(&kube::api::ListParams::default().labels("bench=churn"))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut stream = pods
        .watch(
            &WatchParams::default().labels("bench=churn").timeout(290),
            &version,
        )
        .await?
        .boxed();
    let total = rate * seconds;
    let sent: std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let creator = {
        let (pods, sent) = (pods.clone(), sent.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            let mut deletions = tokio::task::JoinSet::new();
            for i in 0..total {
                common::wait_until(common::due(t0, i, rate)).await;
                let name = format!("churn-{i}");
                let pod: Pod = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name, "labels": {"bench": "churn"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
                }))?;
                sent.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .insert(name.clone(), Instant::now());
                let pods = pods.clone();
                deletions.spawn(async move {
                    pods.create(&PostParams::default(), &pod).await?;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    pods.delete(&name, &DeleteParams::default().grace_period(0))
                        .await?;
                    Ok::<(), anyhow::Error>(())
                });
            }
            while let Some(result) = deletions.join_next().await {
                result??;
            }
            Ok::<(), anyhow::Error>(())
        })
    };
    let mut latencies = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds as u64 + 60);
    while latencies.len() < total {
        let event = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .with_context(|| {
                format!("only {} of {total} pods Running in time", latencies.len())
            })??;
        let pod = match event {
            Some(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => pod,
            Some(WatchEvent::Error(e)) => bail!("watch error: {e:?}"),
            Some(_) => continue,
            None => bail!("the watch ended"),
        };
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let name = pod.metadata.name.unwrap_or_default();
        if running && !latencies.contains_key(&name) {
            let at = sent
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .get(&name)
                .copied();
            if let Some(at) = at {
                latencies.insert(name, at.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    creator.await??;
    let mut v: Vec<f64> = latencies.into_values().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v)
}

#[tokio::main]
async fn main() -> Result<()> {
    let ferry = ferry_binary()?;
    let etcd = flag("--etcd");
    let rounds = arg("--rounds", 5)?;
    let churn_rate = arg("--churn-rate", 20)?;
    let churn_seconds = arg("--churn-seconds", 30)?;
    let big_nodes = arg("--big-nodes", 100)?;
    let big_replicas = arg("--big-replicas", 1000)?;
    let pods = arg("--pods", 10_000)?;
    let store = if etcd {
        "local etcd (--etcd)"
    } else {
        "embedded store"
    };
    println!("up-bench: {store}, {} cores", common::nproc());
    let work = tempfile::Builder::new()
        .prefix("ferry-up-bench-")
        .tempdir()?;

    // 1. ferry up --detach to 3 nodes Ready: fresh, then again on the same directory.
    let (mut fresh, mut again) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let dir = work.path().join(format!("start-{round}"));
        let (cluster, took) = Cluster::up(&ferry, &dir, 3, etcd)?;
        fresh.push(took.as_secs_f64());
        drop(cluster);
        let (cluster, took) = Cluster::up(&ferry, &dir, 3, etcd)?;
        again.push(took.as_secs_f64());
        drop(cluster);
    }
    println!(
        "ferry up --detach, 3 nodes Ready: fresh dir median {:.2} s (min {:.2}, max {:.2}); existing dir median {:.2} s",
        median(fresh.clone()),
        fresh.iter().copied().fold(f64::INFINITY, f64::min),
        fresh.iter().copied().fold(0.0, f64::max),
        median(again)
    );

    // 2-4 on a 3-node cluster.
    let (cluster, _) = Cluster::up(&ferry, &work.path().join("small"), 3, etcd)?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let [a, c, s] = cluster.control_plane_rss()?;
    println!(
        "idle RSS: apiserver {a:.1} MB + controller-manager {c:.1} MB + scheduler {s:.1} MB = {:.1} MB (PSS together {:.1} MB)",
        a + c + s,
        cluster.control_plane_pss()?
    );
    let client = cluster.client().await?;
    let mut apply = Vec::new();
    for round in 0..rounds.max(5) {
        let name = format!("small-{round}");
        let took = until_ready(
            &client,
            &format!("app={name}"),
            3,
            Duration::from_secs(30),
            || {
                cluster
                    .kubectl(&["apply", "-f", "-"], Some(&deployment(&name, 3)))
                    .map(drop)
            },
        )
        .await?;
        apply.push(took.as_secs_f64());
    }
    apply.sort_by(|a, b| a.total_cmp(b));
    println!(
        "3-replica Deployment, kubectl apply to 3 pods Ready: median {:.3} s (min {:.3}, max {:.3}, {} rounds)",
        median(apply.clone()),
        apply[0],
        apply[apply.len() - 1],
        apply.len()
    );
    let latencies = churn(&client, churn_rate, churn_seconds).await?;
    println!(
        "pod start-up at {churn_rate} pods/s churn ({} pods): created → Running seen by a watch p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    drop(cluster);

    // 5. The big cluster.
    let (cluster, took) = Cluster::up(&ferry, &work.path().join("big"), big_nodes, etcd)?;
    println!(
        "ferry up --detach, {big_nodes} nodes Ready: {:.2} s",
        took.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let [a, c, s] = cluster.control_plane_rss()?;
    println!(
        "idle RSS with {big_nodes} nodes: apiserver {a:.1} + controller-manager {c:.1} + scheduler {s:.1} = {:.1} MB (PSS together {:.1} MB)",
        a + c + s,
        cluster.control_plane_pss()?
    );
    let started = Instant::now();
    cluster.kubectl(
        &["apply", "-f", "-"],
        Some(&deployment("big", big_replicas)),
    )?;
    cluster.kubectl(
        &["rollout", "status", "deployment/big", "--timeout=300s"],
        None,
    )?;
    println!(
        "{big_replicas}-replica Deployment on {big_nodes} nodes, kubectl apply to rollout status success: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    cluster.kubectl(
        &["scale", "deployment/big", &format!("--replicas={pods}")],
        None,
    )?;
    cluster.kubectl(
        &["rollout", "status", "deployment/big", "--timeout=600s"],
        None,
    )?;
    println!(
        "scaled to {pods} replicas, to rollout status success: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let [a, c, s] = cluster.control_plane_rss()?;
    println!(
        "RSS holding {pods} pods: apiserver {a:.1} + controller-manager {c:.1} + scheduler {s:.1} = {:.1} MB (PSS together {:.1} MB)",
        a + c + s,
        cluster.control_plane_pss()?
    );
    Ok(())
}
