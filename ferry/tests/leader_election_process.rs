//! Two `ferry controller-manager --leader-elect` processes: the leader is SIGKILLed in the middle
//! of a rolling update; the other takes over within 20 s and the rollout completes, never past
//! its surge bound and with no duplicate pods.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, fake_kubelet, kube_client};

struct Manager {
    child: Child,
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a controller-manager; its "became leader" lines go to `leaders` as (index, time).
fn start(server: &TestApiServer, index: usize, leaders: mpsc::Sender<(usize, Instant)>) -> Manager {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "controller-manager",
            "--leader-elect",
            "--leader-elect-lease-duration=4s",
            "--leader-elect-renew-deadline=3s",
            "--leader-elect-retry-period=1s",
            "--kubeconfig",
        ])
        .arg(server.kubeconfig())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry controller-manager");
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("became leader") {
                let _ = leaders.send((index, Instant::now()));
            }
        }
    });
    Manager { child }
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 10
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 2, maxUnavailable: 1}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "nginx:1.25"}]}
"#;

#[test]
fn the_standby_takes_over_a_rollout_when_the_leader_is_killed() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (tx, leaders) = mpsc::channel();
    let mut managers = vec![
        Some(start(&server, 0, tx.clone())),
        Some(start(&server, 1, tx)),
    ];
    let (first, _) = leaders
        .recv_timeout(Duration::from_secs(20))
        .expect("a leader");
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let kubelet = fake_kubelet(client.clone());
        let manifest = server.write_manifest("d.yaml", DEPLOYMENT, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        eventually(30, "10 available", || async {
            (deployments
                .get("web")
                .await
                .ok()?
                .status?
                .available_replicas
                == Some(10))
            .then_some(())
        })
        .await;

        // Watch the pod count for the whole rollout.
        let watch = pods.clone();
        let most = tokio::spawn(async move {
            let mut most = 0;
            loop {
                let list = watch.list(&ListParams::default()).await.unwrap().items;
                most = most.max(
                    list.iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .count(),
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
                if most > 0
                    && list.len() == 10
                    && list.iter().all(|p| {
                        p.spec.as_ref().unwrap().containers[0].image.as_deref()
                            == Some("nginx:1.27")
                    })
                {
                    return most;
                }
            }
        });
        server.kubectl_ok("1.33", &["set", "image", "deployment/web", "c=nginx:1.27"]);
        // Mid-rollout: the new ReplicaSet has started.
        eventually(30, "the rollout under way", || async {
            let all = sets.list(&ListParams::default()).await.ok()?.items;
            (all.len() == 2).then_some(())
        })
        .await;
        let killed = Instant::now();
        drop(managers[first].take());
        let (second, at) = leaders
            .recv_timeout(Duration::from_secs(25))
            .expect("a new leader");
        assert_ne!(second, first);
        let takeover = at.duration_since(killed);
        assert!(
            takeover < Duration::from_secs(20),
            "took over in {takeover:?}"
        );

        let most = tokio::time::timeout(Duration::from_secs(60), most)
            .await
            .expect("the rollout completes")
            .unwrap();
        assert!(
            most <= 12,
            "at most replicas + maxSurge pods at once: {most}"
        );
        eventually(30, "revision 2 complete", || async {
            let s = deployments.get("web").await.ok()?.status?;
            (s.updated_replicas == Some(10)
                && s.available_replicas == Some(10)
                && s.replicas == Some(10))
            .then_some(())
        })
        .await;
        let all = pods.list(&ListParams::default()).await.unwrap().items;
        let mut names: Vec<_> = all.iter().filter_map(|p| p.metadata.name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), 10, "no duplicate pods");
        kubelet.abort();
    });
    drop(managers);
}
