//! The garbage collector against a real apiserver with real kubectl: background, foreground and
//! orphan deletion, and dependents whose owner never existed.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client, start_controllers};

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec: {containers: [{name: c, image: nginx}]}
"#;

async fn count(api_pods: &Api<Pod>, sets: &Api<ReplicaSet>, app: &str) -> (usize, usize) {
    let selector = ListParams::default().labels(&format!("app={app}"));
    let pods = api_pods.list(&selector).await.unwrap().items.len();
    let rs = sets.list(&selector).await.unwrap().items.len();
    (rs, pods)
}

#[test]
fn deleting_owners_collects_orphans_follows_foreground_and_orphan_policies() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let running = start_controllers(&client);
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        for name in ["background", "foreground", "orphan"] {
            let manifest = server.write_manifest(
                &format!("{name}.yaml"),
                &DEPLOYMENT.replace("NAME", name),
                "default",
            );
            server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        }
        for name in ["background", "foreground", "orphan"] {
            eventually(30, &format!("{name}: 1 ReplicaSet, 2 pods"), || async {
                (count(&pods, &sets, name).await == (1, 2)).then_some(())
            })
            .await;
        }

        // Background (kubectl's default): the Deployment goes at once, then what it owned.
        server.kubectl_ok("1.33", &["delete", "deployment", "background"]);
        eventually(30, "background: ReplicaSet and pods collected", || async {
            (count(&pods, &sets, "background").await == (0, 0)).then_some(())
        })
        .await;

        // Foreground: the Deployment stays, with its finalizer, until its dependents are gone.
        server.kubectl_ok(
            "1.33",
            &[
                "delete",
                "deployment",
                "foreground",
                "--cascade=foreground",
                "--wait=false",
            ],
        );
        eventually(30, "foreground: everything gone, owner last", || async {
            let owner = deployments.get_opt("foreground").await.ok()?;
            let (rs, p) = count(&pods, &sets, "foreground").await;
            match &owner {
                // While dependents remain, the owner waits for them with its finalizer.
                Some(d) if rs > 0 || p > 0 => {
                    let finalizers = d.metadata.finalizers.clone().unwrap_or_default();
                    assert!(
                        finalizers.iter().any(|f| f == "foregroundDeletion"),
                        "{finalizers:?}"
                    );
                }
                Some(_) => {}
                None => assert_eq!((rs, p), (0, 0), "the owner went last"),
            }
            (owner.is_none() && rs == 0 && p == 0).then_some(())
        })
        .await;

        // Orphan: the ReplicaSet stays, freed of its owner, with its pods.
        server.kubectl_ok(
            "1.33",
            &["delete", "deployment", "orphan", "--cascade=orphan"],
        );
        let freed = eventually(30, "orphan: the ReplicaSet released", || async {
            let gone = deployments.get_opt("orphan").await.ok()?.is_none();
            let rs = sets
                .list(&ListParams::default().labels("app=orphan"))
                .await
                .ok()?
                .items;
            (gone
                && rs.len() == 1
                && rs[0]
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(|r| r.is_empty()))
            .then(|| rs[0].clone())
        })
        .await;
        assert_eq!(
            count(&pods, &sets, "orphan").await,
            (1, 2),
            "the pods stay with their set"
        );
        assert!(
            freed
                .metadata
                .finalizers
                .as_ref()
                .is_none_or(|f| f.is_empty())
        );

        // A dependent whose owner never existed (or exists under another uid) is collected.
        let dangling: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "dangling", "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": freed.metadata.name,
                "uid": "00000000-0000-0000-0000-000000000000"}]},
            "data": {"a": "b"}
        }))
        .unwrap();
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        maps.create(&PostParams::default(), &dangling)
            .await
            .unwrap();
        eventually(30, "the dangling dependent collected", || async {
            maps.get_opt("dangling").await.ok()?.is_none().then_some(())
        })
        .await;
        running.iter().for_each(|task| task.abort());
    });
}
