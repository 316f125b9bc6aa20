//! `controller-bench`: how fast the controller-manager brings Deployments up.
//!
//! A real `ferry apiserver` (embedded store) and a real `ferry controller-manager` run as child
//! processes; the benchmark plays the kubelet (binding each pod and reporting it Running and
//! Ready as soon as it appears, 64 pods at a time) and measures, from the moment the Deployments
//! are created:
//!
//! - 100 Deployments × 10 replicas, created at once: until every Deployment reports all 10
//!   replicas available;
//! - 1 Deployment × 5,000 replicas: until it reports 5,000 available.
//!
//! Targets (issue 5, on this machine): ≤ 10 s and ≤ 15 s.
//!
//! `cargo build --release -p ferry && cargo build --release -p bench &&
//! target/release/controller-bench` (`--runs N`, 3 by default)

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

struct Manager(Child);

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }))
    .expect("a Deployment")
}

/// Creates the Deployments at once and waits until all report every replica available.
async fn scenario(
    client: &Client,
    namespace: &str,
    count: usize,
    replicas: i32,
) -> Result<Duration> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let start = Instant::now();
    let created = join_all((0..count).map(|i| {
        let api = api.clone();
        async move {
            api.create(
                &PostParams::default(),
                &deployment(&format!("d{i}"), replicas),
            )
            .await
        }
    }))
    .await;
    for result in created {
        result.context("create a Deployment")?;
    }
    let deadline = start + Duration::from_secs(300);
    loop {
        let list = api.list(&ListParams::default()).await?.items;
        let done = list
            .iter()
            .filter(|d| d.status.as_ref().and_then(|s| s.available_replicas) == Some(replicas))
            .count();
        if done == count {
            return Ok(start.elapsed());
        }
        if Instant::now() > deadline {
            bail!("after 300 s only {done} of {count} Deployments are available");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs = common::arg("--runs", 3)?;
    let binary = common::ferry_binary()?;
    println!(
        "# controller-bench\n\n- {runs} run(s) of each scenario; nproc: {}\n",
        common::nproc()
    );
    let mut small = Vec::new();
    let mut large = Vec::new();
    for _ in 0..runs {
        for (count, replicas) in [(100usize, 10i32), (1, 5000)] {
            let server = common::Ferry::start(&binary, None)?;
            let kubeconfig = server.kubeconfig()?;
            let manager = Manager(
                Command::new(&binary)
                    .args(["controller-manager", "--kubeconfig"])
                    .arg(&kubeconfig)
                    .env("RUST_LOG", "error")
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .context("start ferry controller-manager")?,
            );
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&kubeconfig)?,
                &Default::default(),
            )
            .await?;
            let client = Client::try_from(config)?;
            let kubelet = tests::cluster::fake_kubelet_with(client.clone(), 64);
            // Let the controller-manager's informers list before the clock starts.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let took = scenario(&client, "default", count, replicas).await?;
            println!("- {count} × {replicas}: {:.2} s", took.as_secs_f64());
            if count == 1 {
                large.push(took.as_secs_f64());
            } else {
                small.push(took.as_secs_f64());
            }
            kubelet.abort();
            drop(manager);
            drop(server);
        }
    }
    let small = common::median(small);
    let large = common::median(large);
    println!("\n| scenario | median | target |\n|---|--:|--:|");
    println!("| 100 Deployments × 10 replicas, all available | {small:.2} s | ≤ 10 s |");
    println!("| 1 Deployment × 5,000 replicas, all available | {large:.2} s | ≤ 15 s |");
    Ok(())
}
