//! The garbage collector: deletes objects whose owners are gone, and carries out foreground and
//! orphan deletions (Kubernetes' `garbagecollector`).
//!
//! - [`graph`]: the ownership graph and the decision about one object, pure.
//! - this file: one watch per resource kind that can own or be owned (as dynamic objects),
//!   feeding the graph and the queue (keyed by uid), and the executor. Pods, the most numerous
//!   and busiest kind, come from the controller-manager's shared pod informer instead of a
//!   watch of their own: one pod stream per process, as kube-controller-manager shares its
//!   informers, rather than every pod event sent, decoded and held a second time.
//!
//! Deletions carry the object's uid as a precondition, so an object re-created under the same
//! name is never collected by mistake; an owner the graph does not know is looked up on the
//! server before its dependents are judged orphans, and one with another uid counts as gone.

pub mod graph;

use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;

use crate::runtime::informer::{Change, Informer};
use crate::runtime::pod::Pod;
use crate::runtime::{Action, WorkQueue, run_workers};
use graph::{Decision, Graph, Node, Owner};

const FIELD_MANAGER: &str = "garbage-collector";

/// The kinds whose objects the collector follows: (group, version, kind, plural, namespaced).
pub const RESOURCES: &[(&str, &str, &str, &str, bool)] = &[
    ("", "v1", "Pod", "pods", true),
    ("", "v1", "Service", "services", true),
    ("", "v1", "Endpoints", "endpoints", true),
    ("", "v1", "ConfigMap", "configmaps", true),
    ("", "v1", "Secret", "secrets", true),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
    ("", "v1", "Node", "nodes", false),
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "ReplicaSet", "replicasets", true),
    ("coordination.k8s.io", "v1", "Lease", "leases", true),
];

fn api_resource(index: usize) -> ApiResource {
    let (group, version, kind, plural, _) = RESOURCES[index];
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn resource_of(api_version: &str, kind: &str) -> Option<usize> {
    RESOURCES.iter().position(|(group, version, k, _, _)| {
        let av = if group.is_empty() {
            (*version).to_owned()
        } else {
            format!("{group}/{version}")
        };
        av == api_version && *k == kind
    })
}

#[derive(Debug, thiserror::Error)]
#[error("{action} {kind} {name}: {source}")]
pub struct Error {
    action: &'static str,
    kind: &'static str,
    name: String,
    source: kube::Error,
}

pub struct Collector {
    client: Client,
    graph: Mutex<Graph>,
    queue: Arc<WorkQueue<String>>,
}

/// Where [`RESOURCES`] lists pods.
const PODS: usize = 0;

fn node_of(resource: usize, meta: &ObjectMeta) -> Option<Node> {
    Some(Node {
        uid: meta.uid.clone()?,
        resource,
        namespace: meta.namespace.clone(),
        name: meta.name.clone().unwrap_or_default(),
        owners: meta
            .owner_references
            .iter()
            .flatten()
            .map(|r| Owner {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
                uid: r.uid.clone(),
                block_owner_deletion: r.block_owner_deletion == Some(true),
            })
            .collect(),
        deleting: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
    })
}

/// Feeds the graph the pods `pods` announces. After each (re)list of the informer, every pod in
/// its cache is observed again and the graph's pods it no longer holds are forgotten.
async fn follow_pods(collector: Arc<Collector>, pods: Arc<Informer<Pod>>) {
    let mut changes = pods.subscribe();
    pods.ready().await;
    let store = pods.store();
    let mut resync = true;
    loop {
        if resync {
            let current = store.state();
            let held: std::collections::HashSet<&str> = current
                .iter()
                .filter_map(|pod| pod.metadata.uid.as_deref())
                .collect();
            let gone = collector.lock().uids_of(PODS, |uid| !held.contains(uid));
            for uid in gone {
                collector.forget(&uid);
            }
            for pod in &current {
                collector.observe(PODS, &pod.metadata);
            }
        }
        resync = false;
        match changes.next().await {
            Some(Change::Applied(pod)) => collector.observe(PODS, &pod.metadata),
            Some(Change::Deleted(pod)) => {
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    collector.forget(uid);
                }
            }
            Some(Change::Resync) => resync = true,
            None => return,
        }
    }
}

impl Collector {
    /// Runs the collector with `workers` workers until the process ends, following pods
    /// through `pods`.
    pub async fn run(client: Client, pods: Arc<Informer<Pod>>, workers: usize) {
        let collector = Arc::new(Collector {
            client: client.clone(),
            graph: Mutex::new(Graph::default()),
            queue: WorkQueue::new(),
        });
        tokio::spawn(follow_pods(Arc::clone(&collector), pods));
        for index in (0..RESOURCES.len()).filter(|&index| index != PODS) {
            let collector = Arc::clone(&collector);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(index));
            tokio::spawn(async move {
                let mut events = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .boxed();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                            collector.observe(index, &obj.metadata);
                        }
                        Ok(watcher::Event::Delete(obj)) => {
                            if let Some(uid) = obj.metadata.uid.as_deref() {
                                collector.forget(uid);
                            }
                        }
                        Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                        Err(error) => tracing::warn!(%error, "garbage collector watch failed"),
                    }
                }
            });
        }
        let queue = Arc::clone(&collector.queue);
        run_workers("garbagecollector", queue, workers, move |uid| {
            let collector = Arc::clone(&collector);
            async move { collector.sync(&uid).await }
        })
        .await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn observe(&self, index: usize, meta: &ObjectMeta) {
        let Some(node) = node_of(index, meta) else {
            return;
        };
        let look = self.lock().upsert(node);
        self.enqueue(look);
    }

    /// Forgets the object with `uid`, and looks again at what it touched.
    fn forget(&self, uid: &str) {
        let look = self.lock().remove(uid);
        self.enqueue(look);
    }

    fn enqueue(&self, uids: Vec<String>) {
        for uid in uids {
            self.queue.add(uid);
        }
    }

    fn api(&self, node: &Node) -> Api<DynamicObject> {
        let resource = api_resource(node.resource);
        match (&node.namespace, RESOURCES[node.resource].4) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Whether `owner` (not in the graph) exists on the server with its uid.
    async fn owner_exists(&self, node: &Node, owner: &Owner) -> bool {
        let Some(index) = resource_of(&owner.api_version, &owner.kind) else {
            // A kind the collector does not follow: never judged gone.
            return true;
        };
        let resource = api_resource(index);
        let api: Api<DynamicObject> = match (&node.namespace, RESOURCES[index].4) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        };
        match api.get_opt(&owner.name).await {
            Ok(Some(found)) => found.metadata.uid.as_deref() == Some(owner.uid.as_str()),
            Ok(None) => false,
            // Unsure: keep the dependent.
            Err(_) => true,
        }
    }

    async fn sync(&self, uid: &str) -> Result<Action, Error> {
        // Ask the server about owners the graph does not hold, before deciding.
        let Some(node) = self.lock().get(uid).cloned() else {
            return Ok(Action::AwaitChange);
        };
        let mut missing = Vec::new();
        for owner in &node.owners {
            if self.lock().get(&owner.uid).is_none() && !self.owner_exists(&node, owner).await {
                missing.push(owner.uid.clone());
            }
        }
        let decision = graph::decide(&self.lock(), uid, &|_, owner| !missing.contains(&owner.uid));
        tracing::debug!(uid, name = %node.name, ?decision, "decided");
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match decision {
            Decision::Nothing => {}
            Decision::Delete { foreground } => self.delete(&node, foreground).await?,
            Decision::DropOwners(gone) => {
                let refs: Vec<_> = gone
                    .iter()
                    .map(|owner| json!({"$patch": "delete", "uid": owner}))
                    .collect();
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": node.uid}});
                self.patch(&node, &params, patch).await?;
            }
            Decision::Foreground { delete, done } => {
                for dependent in delete {
                    let found = self.lock().get(&dependent).cloned();
                    if let Some(dependent) = found {
                        self.delete(&dependent, true).await?;
                    }
                }
                if done {
                    self.remove_finalizer(&node, graph::FOREGROUND, &params)
                        .await?;
                }
            }
            Decision::Orphan { release } => {
                for dependent in release {
                    let found = self.lock().get(&dependent).cloned();
                    if let Some(dependent) = found {
                        let patch = json!({"metadata": {
                            "ownerReferences": [{"$patch": "delete", "uid": node.uid}],
                            "uid": dependent.uid}});
                        self.patch(&dependent, &params, patch).await?;
                    }
                }
                self.remove_finalizer(&node, graph::ORPHAN, &params).await?;
            }
        }
        Ok(Action::AwaitChange)
    }

    async fn delete(&self, node: &Node, foreground: bool) -> Result<(), Error> {
        let params = DeleteParams {
            propagation_policy: Some(if foreground {
                kube::api::PropagationPolicy::Foreground
            } else {
                kube::api::PropagationPolicy::Background
            }),
            preconditions: Some(Preconditions {
                uid: Some(node.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api(node).delete(&node.name, &params).await {
            Ok(_) => Ok(()),
            // Gone already, or another object under the name now: nothing to collect.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(source) => Err(Error {
                action: "deleting",
                kind: RESOURCES[node.resource].2,
                name: node.name.clone(),
                source,
            }),
        }
    }

    async fn patch(
        &self,
        node: &Node,
        params: &PatchParams,
        patch: serde_json::Value,
    ) -> Result<(), Error> {
        match self
            .api(node)
            .patch(&node.name, params, &Patch::Strategic(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => Ok(()),
            Err(source) => Err(Error {
                action: "updating the owners of",
                kind: RESOURCES[node.resource].2,
                name: node.name.clone(),
                source,
            }),
        }
    }

    async fn remove_finalizer(
        &self,
        node: &Node,
        finalizer: &str,
        params: &PatchParams,
    ) -> Result<(), Error> {
        let patch = json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": [finalizer],
            "uid": node.uid}});
        self.patch(node, params, patch).await
    }
}
