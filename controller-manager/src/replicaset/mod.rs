//! The ReplicaSet controller: keeps `spec.replicas` pods of each ReplicaSet's template running.
//!
//! - [`plan`]: the decisions (adopt, release, create, delete, status), pure.
//! - [`rank`]: which pods go first when there are too many.
//! - [`expectations`]: what the last sync asked for and the cache does not show yet.
//! - this file: the wiring (ReplicaSet and pod changes → keys → queue → workers) and the thin
//!   executor that carries a plan out through the API.

pub mod expectations;
pub mod plan;
pub mod rank;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1 as core;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt as _};
use runtime::pod::Pod;
use serde_json::json;

use crate::pods;
use crate::runtime::{
    Action, Change, Informer, Recorder, WorkQueue, key_of, run_workers, split_key,
};
use expectations::{Expectations, Seen};

/// The manager name of this controller's writes.
const FIELD_MANAGER: &str = "replicaset-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating pods for {key}: {source}")]
    Create { key: String, source: kube::Error },
    #[error("deleting pod {pod}: {source}")]
    Delete { pod: String, source: kube::Error },
    #[error("changing the owner of pod {pod}: {source}")]
    Claim { pod: String, source: kube::Error },
    #[error("writing the status of {key}: {source}")]
    Status { key: String, source: kube::Error },
}

/// One ReplicaSet controller.
pub struct Controller {
    client: Client,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    queue: Arc<WorkQueue<String>>,
    expectations: Expectations,
    events: Recorder,
}

impl Controller {
    /// Runs the controller with `workers` workers until the process ends.
    pub async fn run(
        client: Client,
        replicasets: Arc<Informer<ReplicaSet>>,
        pod_informer: Arc<Informer<Pod>>,
        workers: usize,
    ) {
        let controller = Arc::new(Controller {
            events: Recorder::new(client.clone(), FIELD_MANAGER),
            client,
            replicasets: replicasets.store(),
            pods: pod_informer.store(),
            queue: WorkQueue::new(),
            expectations: Expectations::default(),
        });
        let c = Arc::clone(&controller);
        replicasets
            .subscribe()
            .forward(move |change| c.on_replicaset(change));
        let c = Arc::clone(&controller);
        pod_informer
            .subscribe()
            .forward(move |change| c.on_pod(change));
        replicasets.ready().await;
        pod_informer.ready().await;
        controller.enqueue_all();
        let queue = Arc::clone(&controller.queue);
        run_workers("replicaset", queue, workers, move |key| {
            let controller = Arc::clone(&controller);
            async move { controller.sync(&key).await }
        })
        .await;
    }

    fn enqueue_all(&self) {
        for rs in self.replicasets.state() {
            self.queue
                .add(key_of(rs.metadata.namespace.as_deref(), &rs.name_any()));
        }
    }

    fn on_replicaset(&self, change: Change<ReplicaSet>) {
        match change {
            Change::Applied(rs) | Change::Deleted(rs) => {
                self.queue
                    .add(key_of(rs.metadata.namespace.as_deref(), &rs.name_any()));
            }
            Change::Resync => self.enqueue_all(),
        }
    }

    /// A pod changed: its owner looks again; an orphan makes every ReplicaSet of its namespace
    /// that selects it look (one of them adopts it).
    fn on_pod(&self, change: Change<Pod>) {
        let pod = match change {
            Change::Applied(pod) | Change::Deleted(pod) => pod,
            Change::Resync => return self.enqueue_all(),
        };
        let namespace = pod.metadata.namespace.as_deref();
        if let Some(owner) = pods::controller_of(&pod) {
            if owner.kind == "ReplicaSet" {
                self.queue.add(key_of(namespace, &owner.name));
            }
            return;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        for rs in self.replicasets.state() {
            if rs.metadata.namespace.as_deref() != namespace {
                continue;
            }
            let selects = api_types::labels::selector_from_label_selector(
                rs.spec.as_ref().map(|s| &s.selector),
            )
            .is_ok_and(|s| !s.matches_nothing() && s.matches(&labels));
            if selects {
                self.queue.add(key_of(namespace, &rs.name_any()));
            }
        }
    }

    /// One sync: observe, plan, act.
    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (namespace, name) = split_key(key);
        let namespace = namespace.unwrap_or_default();
        let Some(rs) = self
            .replicasets
            .get(&ObjectRef::new(name).within(namespace))
        else {
            self.expectations.forget(key);
            return Ok(Action::AwaitChange);
        };
        let all = self.pods.state();
        let in_namespace: Vec<&Pod> = all
            .iter()
            .map(Arc::as_ref)
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .collect();
        let by_uid: HashMap<&str, &Pod> = in_namespace
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref().map(|u| (u, *p)))
            .collect();
        let met = self
            .expectations
            .satisfied(key, |uid| match by_uid.get(uid) {
                None => Seen::Absent,
                Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Terminating,
                Some(_) => Seen::Present,
            });
        let now = jiff::Timestamp::now();
        let plan = plan::plan(&rs, &in_namespace, met, None, now);
        tracing::debug!(
            expectations_met = met,
            adopt = ?plan.adopt,
            release = ?plan.release,
            create = plan.create,
            delete = ?plan.delete,
            "planned"
        );

        let pod_api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        for pod in &plan.adopt {
            self.set_owner(&pod_api, pod, &by_uid, &rs, true).await?;
        }
        for pod in &plan.release {
            self.set_owner(&pod_api, pod, &by_uid, &rs, false).await?;
        }
        let failed = if plan.create > 0 {
            self.create_pods(key, namespace, &rs, plan.create).await
        } else {
            None
        };
        self.delete_pods(key, &rs, &pod_api, &plan.delete, &in_namespace)
            .await?;

        // ReplicaFailure says whether this sync's creations were refused (Kubernetes sets it
        // from manageReplicas' error and clears it when a sync has none).
        let message = failed.as_ref().map(ToString::to_string);
        let status = plan::plan(&rs, &in_namespace, false, message.as_deref(), now).status;
        if rs.status.as_ref() != Some(&status) {
            let mut next = (*rs).clone();
            next.status = Some(status);
            let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            rs_api
                .replace_status(name, &params, &next)
                .await
                .map_err(|source| Error::Status {
                    key: key.to_owned(),
                    source,
                })?;
        }
        if let Some(source) = failed {
            return Err(Error::Create {
                key: key.to_owned(),
                source,
            });
        }
        Ok(match plan.recheck_after_seconds {
            Some(seconds) => Action::RequeueAfter(Duration::from_secs(seconds.unsigned_abs())),
            None => Action::AwaitChange,
        })
    }

    /// Creates `count` pods in slow-start batches (1, 2, 4, …): a batch with a failure ends the
    /// sync, so a refused template costs one request, not hundreds. Returns the first error.
    async fn create_pods(
        &self,
        key: &str,
        namespace: &str,
        rs: &ReplicaSet,
        count: usize,
    ) -> Option<kube::Error> {
        let api: Api<core::Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod = pod_from_template(rs);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let mut remaining = count;
        let mut batch = 1;
        while remaining > 0 {
            let size = batch.min(remaining);
            self.expectations.creating(key, size);
            let results = join_all((0..size).map(|_| api.create(&params, &pod))).await;
            let mut error = None;
            for result in results {
                match result {
                    Ok(created) => {
                        self.events.normal(
                            rs,
                            "SuccessfulCreate",
                            format!("Created pod: {}", created.name_any()),
                        );
                        self.expectations.created(key, created.metadata.uid);
                    }
                    Err(e) => {
                        self.events
                            .warning(rs, "FailedCreate", format!("Error creating: {e}"));
                        self.expectations.created(key, None);
                        error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = error {
                tracing::warn!(key, error = %e, "creating pods failed");
                return Some(e);
            }
            remaining -= size;
            batch *= 2;
        }
        None
    }

    async fn delete_pods(
        &self,
        key: &str,
        rs: &ReplicaSet,
        api: &Api<Pod>,
        names: &[String],
        pods: &[&Pod],
    ) -> Result<(), Error> {
        let deletions = names.iter().map(|name| async move {
            let uid = pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
                .and_then(|p| p.metadata.uid.clone())
                .unwrap_or_default();
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {
                    self.events
                        .normal(rs, "SuccessfulDelete", format!("Deleted pod: {name}"));
                    self.expectations.deleted(key, uid);
                    Ok(())
                }
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(source) => Err(Error::Delete {
                    pod: name.clone(),
                    source,
                }),
            }
        });
        join_all(deletions).await.into_iter().collect()
    }

    /// Adopts (`own`) or releases a pod with a strategic merge patch of its ownerReferences,
    /// carrying the pod's uid so a pod replaced under the same name is left alone.
    async fn set_owner(
        &self,
        api: &Api<Pod>,
        pod: &str,
        by_uid: &HashMap<&str, &Pod>,
        rs: &ReplicaSet,
        own: bool,
    ) -> Result<(), Error> {
        let Some(uid) = by_uid
            .iter()
            .find(|(_, p)| p.metadata.name.as_deref() == Some(pod))
            .map(|(uid, _)| *uid)
        else {
            return Ok(());
        };
        let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
        let reference = if own {
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs.name_any(),
                   "uid": rs_uid, "controller": true, "blockOwnerDeletion": true})
        } else {
            json!({"$patch": "delete", "uid": rs_uid})
        };
        let patch = json!({"metadata": {"ownerReferences": [reference], "uid": uid}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match api.patch(pod, &params, &Patch::Strategic(patch)).await {
            Ok(_) => Ok(()),
            // Gone, or no longer the same pod: the next sync sees what is there.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => Ok(()),
            Err(source) => Err(Error::Claim {
                pod: pod.to_owned(),
                source,
            }),
        }
    }
}

/// A pod as the ReplicaSet's template describes it, named `<rs>-<random>` by the server, with a
/// controller ownerReference (Kubernetes' `GetPodFromTemplate`).
pub fn pod_from_template(rs: &ReplicaSet) -> core::Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut pod = core::Pod {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(format!("{}-", rs.name_any())),
            namespace: rs.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    };
    pod.metadata.owner_references = Some(vec![
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs.name_any(),
            "uid": rs.metadata.uid.clone().unwrap_or_default(),
            "controller": true, "blockOwnerDeletion": true
        }))
        .unwrap_or_default(),
    ]);
    pod
}
