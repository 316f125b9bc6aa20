//! The endpoints controller: a Service's Endpoints follow its pods' readiness and count.

use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client, start_controllers};

const APP: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: NS, labels: {tier: front}}
spec:
  selector: {app: web}
  ports: [{name: web, port: 80, targetPort: http}]
"#;

fn addresses(e: &Endpoints) -> (usize, usize) {
    let count = |f: fn(&k8s_openapi::api::core::v1::EndpointSubset) -> usize| {
        e.subsets.iter().flatten().map(f).sum::<usize>()
    };
    (
        count(|s| s.addresses.as_ref().map_or(0, Vec::len)),
        count(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len)),
    )
}

#[test]
fn endpoints_follow_pod_readiness() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let running = start_controllers(&client);
        let manifest = server.write_manifest("app.yaml", APP, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let e = eventually(30, "3 ready addresses", || async {
            let e = endpoints.get_opt("web").await.ok()??;
            (addresses(&e) == (3, 0)).then_some(e)
        })
        .await;
        let subset = &e.subsets.as_ref().unwrap()[0];
        let port = &subset.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port),
            (Some("web"), 8080),
            "named port resolved"
        );
        assert_eq!(e.metadata.labels.as_ref().unwrap()["tier"], "front");
        let address = &subset.addresses.as_ref().unwrap()[0];
        assert_eq!(address.node_name.as_deref(), Some("node-1"));
        assert_eq!(
            address.target_ref.as_ref().unwrap().kind.as_deref(),
            Some("Pod")
        );

        // A pod that stops being ready moves to notReadyAddresses.
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        let name = list[0].metadata.name.clone().unwrap();
        let status = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap();
        eventually(30, "2 ready, 1 not ready", || async {
            let e = endpoints.get_opt("web").await.ok()??;
            (addresses(&e) == (2, 1)).then_some(())
        })
        .await;

        // Scaled down, fewer addresses; the Service deleted, its endpoints go.
        server.kubectl_ok("1.33", &["scale", "deployment/web", "--replicas=1"]);
        eventually(30, "1 address", || async {
            let e = endpoints.get_opt("web").await.ok()??;
            let (ready, not_ready) = addresses(&e);
            (ready + not_ready == 1).then_some(())
        })
        .await;
        server.kubectl_ok("1.33", &["delete", "service", "web"]);
        eventually(30, "endpoints gone", || async {
            endpoints.get_opt("web").await.ok()?.is_none().then_some(())
        })
        .await;
        running.iter().for_each(|task| task.abort());
    });
}
