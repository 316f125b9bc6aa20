//! `ferry kubelet` as a process: two simulated nodes register with the flags' labels, zone and
//! taints, turn Ready, keep their Leases fresh, and run a pod bound to one of them.

use std::process::{Child, Command, Stdio};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client};

struct KubeletProcess(Child);

impl Drop for KubeletProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kubelet_process_runs_simulated_nodes() {
    let server = TestApiServer::start(Backend::Embedded);
    let _kubelet = KubeletProcess(
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "kubelet",
                "--nodes=2",
                "--node-name-prefix=sim",
                "--cpu=2",
                "--memory=8Gi",
                "--max-pods=20",
                "--node-labels=tier=sim",
                "--zone=z1",
                "--register-with-taints=dedicated=sim:NoSchedule",
                "--heartbeat-interval=1s",
                "--pod-startup-delay=100ms",
                "--kubeconfig",
            ])
            .arg(server.kubeconfig())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferry kubelet"),
    );
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let nodes: Api<Node> = Api::all(client.clone());
        for name in ["sim-0", "sim-1"] {
            let node = eventually(30, &format!("{name} Ready"), || async {
                let node = nodes.get(name).await.ok()?;
                let ready = node
                    .status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                ready.then_some(node)
            })
            .await;
            let labels = node.metadata.labels.clone().unwrap_or_default();
            assert_eq!(labels.get("tier").map(String::as_str), Some("sim"));
            assert_eq!(
                labels
                    .get("topology.kubernetes.io/zone")
                    .map(String::as_str),
                Some("z1")
            );
            let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
            assert_eq!(taints.len(), 1);
            assert_eq!(taints[0].key, "dedicated");
            assert_eq!(taints[0].effect, "NoSchedule");
            let status = node.status.expect("a status");
            let capacity = status.capacity.expect("a capacity");
            assert_eq!(capacity["cpu"].0, "2");
            assert_eq!(capacity["memory"].0, "8Gi");
            assert_eq!(capacity["pods"].0, "20");
        }
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        // The first heartbeat follows registration closely, not necessarily before Ready shows.
        let first = eventually(10, "sim-1's lease", || async {
            Some(leases.get("sim-1").await.ok()?.spec?.renew_time?.0)
        })
        .await;
        eventually(10, "sim-1's lease renewed", || async {
            let renewed = leases.get("sim-1").await.ok()?.spec?.renew_time?.0;
            (renewed > first).then_some(())
        })
        .await;

        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": "sim-1",
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
        }))
        .expect("a Pod");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create a pod");
        eventually(20, "the pod Running and Ready", || async {
            let status = pods.get("p").await.ok()?.status?;
            let ready = status
                .conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (status.phase.as_deref() == Some("Running") && ready && status.pod_ip.is_some())
                .then_some(())
        })
        .await;
    });
}
