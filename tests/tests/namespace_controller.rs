//! The namespace controller with real kubectl: `kubectl delete namespace` empties the namespace
//! (pods finishing through the stand-in kubelet) and it disappears.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client, start_controllers};

const CONTENT: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS}
data: {a: "1"}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: NS}
spec: {selector: {app: web}, ports: [{port: 80}]}
"#;

#[test]
fn deleting_a_namespace_empties_it_and_it_goes() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let running = start_controllers(&client);
        let manifest = server.write_manifest("ns.yaml", CONTENT, "doomed");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        eventually(30, "3 pods running", || async {
            let out = server.kubectl_ok("1.33", &["get", "pods", "-n", "doomed", "-o", "name"]);
            (out.lines().count() == 3).then_some(())
        })
        .await;
        server.kubectl_ok("1.33", &["delete", "namespace", "doomed", "--wait=false"]);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        eventually(30, "the namespace gone", || async {
            namespaces
                .get_opt("doomed")
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await;
        // Its content went with it, and the name is free again.
        let out = server.kubectl_ok("1.33", &["get", "all", "-n", "doomed", "-o", "name"]);
        assert_eq!(out.trim(), "");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        running.iter().for_each(|task| task.abort());
    });
}
