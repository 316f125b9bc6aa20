//! The ReplicaSet controller against a real apiserver, the test playing the kubelet (binding
//! pods and marking them Running and Ready) until the kubelet lands; and leader election between
//! two controller-managers.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{bind_and_ready, eventually, kube_client};

fn replicaset(replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}
        }
    }))
    .expect("a ReplicaSet")
}

/// The active pods the ReplicaSet `uid` controls.
async fn owned(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .collect()
}

#[test]
fn replicaset_controller_keeps_replicas_and_reports_status() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let manager = tokio::spawn(controller_manager::run(
            client.clone(),
            controller_manager::Options::default(),
        ));
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let rs = sets
            .create(&PostParams::default(), &replicaset(3))
            .await
            .expect("create the ReplicaSet");
        let uid = rs.metadata.uid.clone().unwrap();

        // Three pods, named <rs>-<5 characters>, controlled by the ReplicaSet.
        let created = eventually(20, "3 pods", || async {
            let owned = owned(&pods, &uid).await;
            (owned.len() == 3).then_some(owned)
        })
        .await;
        for pod in &created {
            let name = pod.metadata.name.clone().unwrap();
            assert!(
                name.starts_with("web-") && name.len() == "web-".len() + 5,
                "{name}"
            );
            assert_eq!(pod.metadata.labels.as_ref().unwrap()["app"], "web");
        }
        let names: Vec<String> = created
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();

        // Two become ready: the status says so.
        bind_and_ready(&pods, &names[0], "node-1").await;
        bind_and_ready(&pods, &names[1], "node-1").await;
        eventually(20, "status 3 replicas, 2 ready, 2 available", || async {
            let status = sets.get("web").await.ok()?.status?;
            (status.replicas == 3
                && status.ready_replicas == Some(2)
                && status.available_replicas == Some(2)
                && status.fully_labeled_replicas == Some(3)
                && status.observed_generation == Some(1))
            .then_some(())
        })
        .await;

        // Scale to 2: the pod that is neither scheduled nor ready goes first.
        sets.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scale down");
        let left = eventually(20, "2 pods", || async {
            let owned = owned(&pods, &uid).await;
            (owned.len() == 2).then_some(owned)
        })
        .await;
        let mut left: Vec<String> = left
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        left.sort();
        let mut ready = names[..2].to_vec();
        ready.sort();
        assert_eq!(left, ready, "the unready pod was deleted");

        // A deleted pod is replaced.
        pods.delete(&names[0], &DeleteParams::default())
            .await
            .expect("delete a pod");
        eventually(20, "a replacement", || async {
            let owned = owned(&pods, &uid).await;
            (owned.len() == 2
                && owned
                    .iter()
                    .all(|p| p.metadata.name.as_deref() != Some(&names[0])))
            .then_some(())
        })
        .await;

        // An orphan that matches is adopted; one pod too many, an unready one goes (the orphan
        // or the replacement: both unscheduled, created in the same second).
        let orphan: Pod = serde_json::from_value(json!({
            "metadata": {"name": "orphan", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &orphan)
            .await
            .expect("create an orphan");
        eventually(
            20,
            "the orphan adopted, one pod too many deleted",
            || async {
                let adopted_or_gone = pods.get_opt("orphan").await.ok()?.is_none_or(|p| {
                    p.metadata.deletion_timestamp.is_some()
                        || p.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|r| r.uid == uid)
                });
                (adopted_or_gone && owned(&pods, &uid).await.len() == 2).then_some(())
            },
        )
        .await;
        let survivors = owned(&pods, &uid).await;
        assert!(
            survivors
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(names[1].as_str())),
            "the ready pod stays"
        );

        // A pod relabelled out of the selector is released, and replaced.
        let keep = names[1].clone();
        pods.patch(
            &keep,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .expect("relabel");
        eventually(20, "released and replaced", || async {
            let released = pods.get(&keep).await.ok()?;
            let free = released
                .metadata
                .owner_references
                .as_ref()
                .is_none_or(|r| r.iter().all(|r| r.uid != uid));
            (free && owned(&pods, &uid).await.len() == 2).then_some(())
        })
        .await;

        // Scale up in one step.
        sets.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .expect("scale up");
        eventually(20, "7 pods", || async {
            (owned(&pods, &uid).await.len() == 7).then_some(())
        })
        .await;
        // And nothing more appears afterwards (expectations: no double creation).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(owned(&pods, &uid).await.len(), 7);
        manager.abort();
    });
}

#[test]
fn a_second_controller_manager_takes_over_when_the_leader_dies() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let timings = controller_manager::leader::Timings {
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(300),
        };
        let options = |identity: &str| controller_manager::Options {
            leader_elect: true,
            identity: identity.to_owned(),
            timings,
            ..controller_manager::Options::default()
        };
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
        let holder = || async {
            leases
                .get_opt("ferry-controller-manager")
                .await
                .ok()
                .flatten()
                .and_then(|l| l.spec?.holder_identity)
        };
        let first = tokio::spawn(controller_manager::run(client.clone(), options("first")));
        eventually(10, "first leads", || async {
            (holder().await.as_deref() == Some("first")).then_some(())
        })
        .await;
        let second = tokio::spawn(controller_manager::run(client.clone(), options("second")));
        // While the first renews, the second waits.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(holder().await.as_deref(), Some("first"));
        assert!(!second.is_finished());

        // The leader dies; the other takes over within the lease duration (and a retry).
        first.abort();
        let died = tokio::time::Instant::now();
        eventually(10, "second leads", || async {
            (holder().await.as_deref() == Some("second")).then_some(())
        })
        .await;
        assert!(
            died.elapsed() < Duration::from_secs(5),
            "{:?}",
            died.elapsed()
        );
        let lease = leases.get("ferry-controller-manager").await.unwrap();
        assert_eq!(lease.spec.unwrap().lease_transitions, Some(1));

        // And it acts: a ReplicaSet gets its pods.
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let rs = sets
            .create(&PostParams::default(), &replicaset(2))
            .await
            .unwrap();
        let uid = rs.metadata.uid.unwrap();
        eventually(20, "2 pods", || async {
            (owned(&pods, &uid).await.len() == 2).then_some(())
        })
        .await;
        second.abort();
    });
}
