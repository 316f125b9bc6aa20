//! The Deployment controller: rolls a Deployment's pods from one template to the next through
//! ReplicaSets named `<deployment>-<template hash>`.
//!
//! - [`rollout`]: the arithmetic (surge and unavailability bounds, step sizes, proportional
//!   scaling), pure.
//! - [`status`]: counts and conditions, pure.
//! - [`sync`]: one sync's plan — create the new ReplicaSet, resize sets, clean up history, the
//!   status — pure.
//! - this file: the wiring (Deployment, ReplicaSet and pod changes → keys → queue → workers) and
//!   the executor.

pub mod rollout;
pub mod status;
pub mod sync;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt as _};
use runtime::pod::Pod;
use serde_json::json;

use crate::pods;
use crate::runtime::{
    Action, Change, Informer, Recorder, WorkQueue, key_of, run_workers, split_key,
};

const FIELD_MANAGER: &str = "deployment-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating ReplicaSet {name}: {source}")]
    Create { name: String, source: kube::Error },
    #[error("the ReplicaSet name {name} is taken by another template; trying the next hash")]
    Collision { name: String },
    #[error("updating ReplicaSet {name}: {source}")]
    Update { name: String, source: kube::Error },
    #[error("deleting ReplicaSet {name}: {source}")]
    Delete { name: String, source: kube::Error },
    #[error("writing the status of {key}: {source}")]
    Status { key: String, source: kube::Error },
}

pub struct Controller {
    client: Client,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    queue: Arc<WorkQueue<String>>,
    events: Recorder,
}

impl Controller {
    pub async fn run(
        client: Client,
        deployments: Arc<Informer<Deployment>>,
        replicasets: Arc<Informer<ReplicaSet>>,
        pod_informer: Arc<Informer<Pod>>,
        workers: usize,
    ) {
        let controller = Arc::new(Controller {
            events: Recorder::new(client.clone(), FIELD_MANAGER),
            client,
            deployments: deployments.store(),
            replicasets: replicasets.store(),
            pods: pod_informer.store(),
            queue: WorkQueue::new(),
        });
        let c = Arc::clone(&controller);
        deployments
            .subscribe()
            .forward(move |change| c.on_deployment(change));
        let c = Arc::clone(&controller);
        replicasets
            .subscribe()
            .forward(move |change| c.on_replicaset(change));
        let c = Arc::clone(&controller);
        pod_informer
            .subscribe()
            .forward(move |change| c.on_pod(change));
        deployments.ready().await;
        replicasets.ready().await;
        pod_informer.ready().await;
        controller.enqueue_all();
        let queue = Arc::clone(&controller.queue);
        run_workers("deployment", queue, workers, move |key| {
            let controller = Arc::clone(&controller);
            async move { controller.sync(&key).await }
        })
        .await;
    }

    fn enqueue_all(&self) {
        for d in self.deployments.state() {
            self.queue
                .add(key_of(d.metadata.namespace.as_deref(), &d.name_any()));
        }
    }

    fn on_deployment(&self, change: Change<Deployment>) {
        match change {
            Change::Applied(d) | Change::Deleted(d) => self
                .queue
                .add(key_of(d.metadata.namespace.as_deref(), &d.name_any())),
            Change::Resync => self.enqueue_all(),
        }
    }

    fn on_replicaset(&self, change: Change<ReplicaSet>) {
        let rs = match change {
            Change::Applied(rs) | Change::Deleted(rs) => rs,
            Change::Resync => return self.enqueue_all(),
        };
        let owner = rs
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true) && r.kind == "Deployment");
        if let Some(owner) = owner {
            self.queue
                .add(key_of(rs.metadata.namespace.as_deref(), &owner.name));
            return;
        }
        // An orphan: every Deployment of its namespace that selects it looks (one adopts it).
        let orphan = !rs
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.controller == Some(true));
        if !orphan || rs.metadata.deletion_timestamp.is_some() {
            return;
        }
        let labels = rs.metadata.labels.clone().unwrap_or_default();
        for d in self.deployments.state() {
            if d.metadata.namespace != rs.metadata.namespace {
                continue;
            }
            let selects = api_types::labels::selector_from_label_selector(
                d.spec.as_ref().map(|s| &s.selector),
            )
            .is_ok_and(|s| !s.matches_nothing() && s.matches(&labels));
            if selects {
                self.queue
                    .add(key_of(d.metadata.namespace.as_deref(), &d.name_any()));
            }
        }
    }

    /// A pod going away can unblock a Recreate rollout: its Deployment looks again.
    fn on_pod(&self, change: Change<Pod>) {
        let Change::Deleted(pod) = change else { return };
        let Some(rs_owner) = pods::controller_of(&pod).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let Some(rs) = self
            .replicasets
            .get(&ObjectRef::new(&rs_owner.name).within(&namespace))
        else {
            return;
        };
        if let Some(owner) = rs
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true) && r.kind == "Deployment")
        {
            self.queue.add(key_of(Some(&namespace), &owner.name));
        }
    }

    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (namespace, name) = split_key(key);
        let namespace = namespace.unwrap_or_default();
        let Some(d) = self
            .deployments
            .get(&ObjectRef::new(name).within(namespace))
        else {
            return Ok(Action::AwaitChange);
        };
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let all_sets = self.replicasets.state();
        let owned: Vec<&ReplicaSet> = all_sets
            .iter()
            .map(Arc::as_ref)
            .filter(|rs| rs.metadata.namespace.as_deref() == Some(namespace))
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.controller == Some(true) && r.uid == uid)
            })
            .collect();
        // Orphan ReplicaSets the Deployment selects are adopted (a controller ownerReference,
        // by strategic merge patch carrying their uid); the next sync counts them.
        if d.metadata.deletion_timestamp.is_none() {
            let selector = api_types::labels::selector_from_label_selector(
                d.spec.as_ref().map(|s| &s.selector),
            )
            .unwrap_or_else(|_| api_types::labels::Selector::nothing());
            let orphans = all_sets.iter().filter(|rs| {
                rs.metadata.namespace.as_deref() == Some(namespace)
                    && rs.metadata.deletion_timestamp.is_none()
                    && !rs
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|r| r.controller == Some(true))
                    && !selector.matches_nothing()
                    && selector.matches(&rs.metadata.labels.clone().unwrap_or_default())
            });
            let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
            let mut adopted = false;
            for rs in orphans {
                let patch = json!({"metadata": {"uid": rs.metadata.uid, "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": d.name_any(),
                    "uid": uid, "controller": true, "blockOwnerDeletion": true}]}});
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                };
                match sets
                    .patch(&rs.name_any(), &params, &Patch::Strategic(patch))
                    .await
                {
                    Ok(_) => adopted = true,
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => {}
                    Err(source) => {
                        return Err(Error::Update {
                            name: rs.name_any(),
                            source,
                        });
                    }
                }
            }
            if adopted {
                return Ok(Action::AwaitChange);
            }
        }
        let now = jiff::Timestamp::now();
        // Recreate waits until no pod of an old ReplicaSet is left unfinished.
        let pods = self.pods.state();
        let old_pods_running = owned.iter().any(|rs| {
            let rs_uid = rs.metadata.uid.as_deref().unwrap_or_default();
            rs.status.as_ref().is_some_and(|s| s.replicas > 0)
                || pods.iter().any(|p| {
                    pods::controller_of(p).is_some_and(|r| r.uid == rs_uid)
                        && !matches!(pods::phase(p), "Succeeded" | "Failed")
                })
        });
        let plan = sync::plan(&d, &owned, old_pods_running, now);
        tracing::debug!(
            create = ?plan.create.as_ref().and_then(|rs| rs.metadata.name.clone()),
            update = ?plan.update,
            delete = ?plan.delete,
            "planned"
        );
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let mut status = plan.status.clone();
        if let Some(rs) = &plan.create {
            let rs_name = rs.name_any();
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            match sets.create(&params, rs).await {
                Ok(created) => {
                    let replicas = created.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                    if replicas > 0 {
                        self.events.normal(
                            &*d,
                            "ScalingReplicaSet",
                            format!("Scaled up replica set {rs_name} from 0 to {replicas}"),
                        );
                    }
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    // Ours with this template (a slow cache): fine. Anyone else's: a hash
                    // collision — count it, and the next sync hashes differently.
                    let existing = sets.get(&rs_name).await.ok();
                    let ours = existing.as_ref().is_some_and(|x| {
                        x.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|r| r.uid == uid)
                    });
                    if !ours {
                        status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                        self.write_status(key, &d, status, plan.revision.as_deref())
                            .await?;
                        return Err(Error::Collision { name: rs_name });
                    }
                }
                Err(source) => {
                    return Err(Error::Create {
                        name: rs_name,
                        source,
                    });
                }
            }
        }
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        for update in &plan.update {
            let mut patch = json!({"metadata": {"annotations": update.annotations}});
            if let Some(replicas) = update.replicas {
                patch["spec"]["replicas"] = json!(replicas);
            }
            if let Some(min_ready) = update.min_ready_seconds {
                patch["spec"]["minReadySeconds"] = json!(min_ready);
            }
            sets.patch(&update.name, &params, &Patch::Merge(patch))
                .await
                .map_err(|source| Error::Update {
                    name: update.name.clone(),
                    source,
                })?;
            let before = owned
                .iter()
                .find(|rs| rs.metadata.name.as_deref() == Some(update.name.as_str()))
                .and_then(|rs| rs.spec.as_ref())
                .and_then(|s| s.replicas)
                .unwrap_or(0);
            if let Some(after) = update.replicas.filter(|after| *after != before) {
                let direction = if after > before { "up" } else { "down" };
                self.events.normal(
                    &*d,
                    "ScalingReplicaSet",
                    format!(
                        "Scaled {direction} replica set {} from {before} to {after}",
                        update.name
                    ),
                );
            }
        }
        for name in &plan.delete {
            match sets.delete(name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => {
                    return Err(Error::Delete {
                        name: name.clone(),
                        source,
                    });
                }
            }
        }
        self.write_status(key, &d, status, plan.revision.as_deref())
            .await?;
        Ok(match plan.requeue_after {
            Some(seconds) => Action::RequeueAfter(Duration::from_secs(seconds.unsigned_abs())),
            None => Action::AwaitChange,
        })
    }

    /// Writes the status (and the revision annotation, which Kubernetes also writes through the
    /// status subresource) when either changed.
    async fn write_status(
        &self,
        key: &str,
        d: &Deployment,
        status: k8s_openapi::api::apps::v1::DeploymentStatus,
        revision: Option<&str>,
    ) -> Result<(), Error> {
        let mut next = d.clone();
        if let Some(revision) = revision {
            next.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(sync::REVISION.into(), revision.to_owned());
        }
        next.status = Some(status);
        if next.status == d.status && next.metadata.annotations == d.metadata.annotations {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(
            self.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        api.replace_status(&d.name_any(), &params, &next)
            .await
            .map_err(|source| Error::Status {
                key: key.to_owned(),
                source,
            })?;
        Ok(())
    }
}
