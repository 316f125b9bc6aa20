//! The Deployment controller (with the ReplicaSet controller) against a real apiserver, with
//! real kubectl for rollouts; the test plays the kubelet: it binds every pod, reports it Running
//! and Ready at once, and removes terminating pods.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tests::apiserver::{Backend, TestApiServer};
use tests::cluster::{eventually, kube_client, start_controllers};

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: "nginx:1.25"}]}
"#;

/// Waits until Deployment `name` reports `replicas` available.
async fn available(deployments: &Api<Deployment>, name: &str, replicas: i32) {
    eventually(30, &format!("{name}: {replicas} available"), || async {
        let status = deployments.get(name).await.ok()?.status?;
        (status.available_replicas == Some(replicas)).then_some(())
    })
    .await;
}

fn replicasets_by_image(sets: &[ReplicaSet]) -> BTreeMap<String, (i32, i32)> {
    sets.iter()
        .map(|rs| {
            let image = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| s.containers[0].image.clone().unwrap_or_default())
                .unwrap_or_default();
            let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let available = rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            (image, (spec, available))
        })
        .collect()
}

#[test]
fn deployments_roll_out_scale_roll_back_and_pause() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let running = start_controllers(&client);
        let manifest = server.write_manifest("d.yaml", DEPLOYMENT, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        let out = tokio::task::spawn_blocking({
            let kubeconfig = server.kubeconfig();
            move || {
                std::process::Command::new(tests::apiserver::kubectl_binary("1.33"))
                    .arg(format!("--kubeconfig={}", kubeconfig.display()))
                    .args(["rollout", "status", "deployment/web", "--timeout=60s"])
                    .output()
                    .expect("kubectl rollout status")
            }
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("successfully rolled out"));

        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let d = deployments.get("web").await.unwrap();
        let status = d.status.clone().unwrap();
        assert_eq!(status.available_replicas, Some(4));
        assert_eq!(status.updated_replicas, Some(4));
        assert_eq!(
            d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
            "1"
        );
        let conditions = status.conditions.unwrap();
        let reason = |t: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == t)
                .and_then(|c| c.reason.clone())
        };
        assert_eq!(
            reason("Available").as_deref(),
            Some("MinimumReplicasAvailable")
        );
        assert_eq!(
            reason("Progressing").as_deref(),
            Some("NewReplicaSetAvailable")
        );
        let rs = sets.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(rs.len(), 1);
        // kubectl describe tells the story from the controllers' events.
        let rs_name = rs[0].metadata.name.clone().unwrap();
        let story = eventually(10, "events", || async {
            let out = server.kubectl_ok("1.33", &["describe", "deployment", "web"]);
            out.contains(&format!("Scaled up replica set {rs_name} from 0 to 4"))
                .then_some(out)
        })
        .await;
        assert!(story.contains("ScalingReplicaSet"), "{story}");
        let rs_story = server.kubectl_ok("1.33", &["describe", "replicaset", &rs_name]);
        assert!(
            rs_story.contains("SuccessfulCreate") && rs_story.contains("Created pod: "),
            "{rs_story}"
        );
        let hash = rs[0].metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
        assert_eq!(
            rs[0].metadata.name.as_deref(),
            Some(format!("web-{hash}").as_str())
        );

        // An image change rolls: never more than 4 + 1 pods, never fewer than 4 − 1 available.
        let watcher_pods = pods.clone();
        let watch_sets = sets.clone();
        let bounds = tokio::spawn(async move {
            let mut worst = (0usize, usize::MAX);
            loop {
                let list = watcher_pods
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items;
                let total = list
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .count();
                let all_sets = watch_sets.list(&ListParams::default()).await.unwrap().items;
                let available: i32 = all_sets
                    .iter()
                    .map(|rs| {
                        rs.status
                            .as_ref()
                            .and_then(|s| s.available_replicas)
                            .unwrap_or(0)
                    })
                    .sum();
                worst.0 = worst.0.max(total);
                if usize::try_from(available).unwrap_or(0) < worst.1 {
                    eprintln!(
                        "available {available}: {:?}",
                        all_sets
                            .iter()
                            .map(|rs| (
                                rs.metadata.name.clone(),
                                rs.spec.as_ref().and_then(|s| s.replicas),
                                rs.status
                                    .as_ref()
                                    .map(|s| (s.replicas, s.available_replicas))
                            ))
                            .collect::<Vec<_>>()
                    );
                }
                worst.1 = worst.1.min(usize::try_from(available).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(20)).await;
                if all_sets.len() == 2
                    && replicasets_by_image(&all_sets).get("nginx:1.27") == Some(&(4, 4))
                    && replicasets_by_image(&all_sets)
                        .get("nginx:1.25")
                        .is_some_and(|o| o.0 == 0)
                {
                    return worst;
                }
            }
        });
        server.kubectl_ok(
            "1.33",
            &["set", "image", "deployment/web", "nginx=nginx:1.27"],
        );
        let worst = tokio::time::timeout(Duration::from_secs(60), bounds)
            .await
            .expect("rolled")
            .unwrap();
        assert!(worst.0 <= 5, "at most replicas + maxSurge pods: {worst:?}");
        assert!(
            worst.1 >= 3,
            "at least replicas − maxUnavailable available: {worst:?}"
        );
        eventually(30, "revision 2 complete", || async {
            let d = deployments.get("web").await.ok()?;
            let s = d.status?;
            (d.metadata
                .annotations?
                .get("deployment.kubernetes.io/revision")?
                == "2"
                && s.updated_replicas == Some(4)
                && s.available_replicas == Some(4)
                && s.replicas == Some(4))
            .then_some(())
        })
        .await;

        // Rollback with kubectl rollout undo: the old ReplicaSet comes back as revision 3.
        server.kubectl_ok("1.33", &["rollout", "undo", "deployment/web"]);
        eventually(60, "rolled back", || async {
            let all = sets.list(&ListParams::default()).await.ok()?.items;
            let by_image = replicasets_by_image(&all);
            (by_image.get("nginx:1.25") == Some(&(4, 4))
                && by_image.get("nginx:1.27").is_some_and(|n| n.0 == 0))
            .then_some(())
        })
        .await;
        let history = server.kubectl_ok("1.33", &["rollout", "history", "deployment/web"]);
        assert!(history.contains('2') && history.contains('3'), "{history}");

        // Scale: the one active set takes the new size.
        server.kubectl_ok("1.33", &["scale", "deployment/web", "--replicas=6"]);
        eventually(30, "6 available", || async {
            let s = deployments.get("web").await.ok()?.status?;
            (s.available_replicas == Some(6) && s.replicas == Some(6)).then_some(())
        })
        .await;

        // Paused: a template change does not roll; resumed, it does.
        server.kubectl_ok("1.33", &["rollout", "pause", "deployment/web"]);
        server.kubectl_ok(
            "1.33",
            &["set", "image", "deployment/web", "nginx=nginx:1.28"],
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let all = sets.list(&ListParams::default()).await.unwrap().items;
        assert!(
            !replicasets_by_image(&all).contains_key("nginx:1.28"),
            "paused: no new set"
        );
        let d = deployments.get("web").await.unwrap();
        let paused = d
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap();
        assert_eq!(paused.reason.as_deref(), Some("DeploymentPaused"));
        server.kubectl_ok("1.33", &["rollout", "resume", "deployment/web"]);
        eventually(60, "resumed and rolled", || async {
            let all = sets.list(&ListParams::default()).await.ok()?.items;
            (replicasets_by_image(&all).get("nginx:1.28") == Some(&(6, 6))).then_some(())
        })
        .await;

        running.iter().for_each(|task| task.abort());
    });
}

#[test]
fn recreate_stops_every_old_pod_before_starting_new_ones() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let running = start_controllers(&client);
        let manifest = DEPLOYMENT.replace(
            "strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}",
            "strategy: {type: Recreate}",
        );
        let manifest = server.write_manifest("d.yaml", &manifest, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        available(&deployments, "web", 4).await;
        let watch = pods.clone();
        let mixed = tokio::spawn(async move {
            loop {
                let list = watch.list(&ListParams::default()).await.unwrap().items;
                let images: std::collections::BTreeSet<String> = list
                    .iter()
                    .map(|p| {
                        p.spec.as_ref().unwrap().containers[0]
                            .image
                            .clone()
                            .unwrap_or_default()
                    })
                    .collect();
                if images.len() > 1 {
                    return true;
                }
                if images.len() == 1 && images.contains("nginx:1.27") && list.len() == 4 {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        server.kubectl_ok(
            "1.33",
            &["set", "image", "deployment/web", "nginx=nginx:1.27"],
        );
        let mixed = tokio::time::timeout(Duration::from_secs(60), mixed)
            .await
            .expect("recreated")
            .unwrap();
        assert!(!mixed, "old and new pods never run together");
        running.iter().for_each(|task| task.abort());
    });
}

#[test]
fn restart_adoption_and_a_rollout_that_exceeds_its_progress_deadline() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube_client(&server).await;
        let running = start_controllers(&client);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

        // kubectl rollout restart: a new template (restartedAt), a new ReplicaSet, all rolled.
        let manifest = server.write_manifest("d.yaml", DEPLOYMENT, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &manifest]);
        available(&deployments, "web", 4).await;
        server.kubectl_ok("1.33", &["rollout", "restart", "deployment/web"]);
        eventually(60, "restarted", || async {
            let all = sets
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?
                .items;
            let full: Vec<_> = all
                .iter()
                .filter(|rs| rs.spec.as_ref().and_then(|s| s.replicas) == Some(4))
                .collect();
            let restarted = full.len() == 1
                && full[0]
                    .spec
                    .as_ref()?
                    .template
                    .as_ref()?
                    .metadata
                    .as_ref()?
                    .annotations
                    .as_ref()?
                    .contains_key("kubectl.kubernetes.io/restartedAt");
            (all.len() == 2 && restarted && full[0].status.as_ref()?.available_replicas == Some(4))
                .then_some(())
        })
        .await;

        // An orphan ReplicaSet the Deployment selects is adopted.
        let orphan = r#"apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: stray, namespace: NS, labels: {app: web}}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: "nginx:1.20"}]}
"#;
        let orphan = server.write_manifest("rs.yaml", orphan, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &orphan]);
        let uid = deployments.get("web").await.unwrap().metadata.uid.unwrap();
        eventually(30, "the stray ReplicaSet adopted", || async {
            let rs = sets.get("stray").await.ok()?;
            rs.metadata
                .owner_references?
                .iter()
                .any(|r| r.uid == uid && r.controller == Some(true))
                .then_some(())
        })
        .await;

        // Pods that never become ready: the rollout exceeds its deadline.
        let stuck = DEPLOYMENT
            .replace("name: web", "name: stuck")
            .replace("app: web", "app: stuck")
            .replace("replicas: 4", "replicas: 2\n  progressDeadlineSeconds: 2")
            .replace(
                "metadata: {labels: {app: stuck}}",
                "metadata: {labels: {app: stuck, test.ferry.dev/stuck: \"yes\"}}",
            );
        let stuck = server.write_manifest("stuck.yaml", &stuck, "default");
        server.kubectl_ok("1.33", &["apply", "-f", &stuck]);
        eventually(30, "ProgressDeadlineExceeded", || async {
            let conditions = deployments.get("stuck").await.ok()?.status?.conditions?;
            let progressing = conditions.iter().find(|c| c.type_ == "Progressing")?;
            (progressing.reason.as_deref() == Some("ProgressDeadlineExceeded")
                && progressing.status == "False")
                .then_some(())
        })
        .await;
        let out = server.kubectl(
            "1.33",
            &["rollout", "status", "deployment/stuck", "--timeout=10s"],
        );
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("exceeded its progress deadline"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        running.iter().for_each(|task| task.abort());
    });
}
