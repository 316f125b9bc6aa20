//! The namespace controller: empties a Terminating namespace of every namespaced object, then
//! removes its `kubernetes` finalizer through `/finalize` so it disappears (Kubernetes'
//! `namespace` controller and its `NamespacedResourcesDeleter`). While objects remain, the
//! namespace's conditions say which and how many.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt as _};

use crate::runtime::{Action, Change, Informer, WorkQueue, run_workers};

/// The namespaced kinds a namespace holds: (group, version, kind, plural).
pub const NAMESPACED: &[(&str, &str, &str, &str)] = &[
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("", "v1", "Pod", "pods"),
    ("", "v1", "Service", "services"),
    ("", "v1", "Endpoints", "endpoints"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("", "v1", "Event", "events"),
    ("coordination.k8s.io", "v1", "Lease", "leases"),
];

const FINALIZER: &str = "kubernetes";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("emptying namespace {namespace} of {resource}: {source}")]
    Delete {
        namespace: String,
        resource: &'static str,
        source: kube::Error,
    },
    #[error("finalizing namespace {namespace}: {source}")]
    Finalize {
        namespace: String,
        source: kube::Error,
    },
}

pub struct Controller {
    client: Client,
    namespaces: Store<Namespace>,
    queue: Arc<WorkQueue<String>>,
}

fn api_resource((group, version, kind, plural): (&str, &str, &str, &str)) -> ApiResource {
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

/// The conditions of a namespace with `remaining` objects left, as (plural, count).
pub fn conditions(remaining: &[(&str, usize)], now: jiff::Timestamp) -> Vec<NamespaceCondition> {
    let condition =
        |type_: &str, left: bool, reason_left: &str, reason_done: &str, message: String| {
            NamespaceCondition {
                type_: type_.into(),
                status: if left { "True" } else { "False" }.into(),
                reason: Some(if left { reason_left } else { reason_done }.into()),
                message: Some(message),
                last_transition_time: Some(Time(now)),
            }
        };
    let left: Vec<String> = remaining
        .iter()
        .map(|(plural, n)| format!("{plural} has {n} resource instances"))
        .collect();
    vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "",
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
        condition(
            "NamespaceDeletionContentFailure",
            false,
            "",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        ),
        condition(
            "NamespaceContentRemaining",
            !left.is_empty(),
            "SomeResourcesRemain",
            "ContentRemoved",
            if left.is_empty() {
                "All content successfully removed".into()
            } else {
                format!("Some resources are remaining: {}", left.join(", "))
            },
        ),
    ]
}

impl Controller {
    pub async fn run(client: Client, namespaces: Arc<Informer<Namespace>>, workers: usize) {
        let controller = Arc::new(Controller {
            client,
            namespaces: namespaces.store(),
            queue: WorkQueue::new(),
        });
        let c = Arc::clone(&controller);
        namespaces.subscribe().forward(move |change| match change {
            Change::Applied(ns) => {
                if ns.metadata.deletion_timestamp.is_some() {
                    c.queue.add(ns.name_any());
                }
            }
            Change::Deleted(_) => {}
            Change::Resync => c.enqueue_terminating(),
        });
        namespaces.ready().await;
        controller.enqueue_terminating();
        let queue = Arc::clone(&controller.queue);
        run_workers("namespace", queue, workers, move |name| {
            let controller = Arc::clone(&controller);
            async move { controller.sync(&name).await }
        })
        .await;
    }

    fn enqueue_terminating(&self) {
        for ns in self.namespaces.state() {
            if ns.metadata.deletion_timestamp.is_some() {
                self.queue.add(ns.name_any());
            }
        }
    }

    async fn sync(&self, name: &str) -> Result<Action, Error> {
        let Some(ns) = self.namespaces.get(&ObjectRef::new(name)) else {
            return Ok(Action::AwaitChange);
        };
        let finalizers = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.clone())
            .unwrap_or_default();
        if ns.metadata.deletion_timestamp.is_none() || !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(Action::AwaitChange);
        }
        // Delete everything, then count what is still there (pods finishing gracefully,
        // objects waiting on finalizers).
        let mut remaining: Vec<(&str, usize)> = Vec::new();
        for kind in NAMESPACED {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), name, &api_resource(*kind));
            let deleted = api
                .delete_collection(&DeleteParams::background(), &ListParams::default())
                .await;
            let error = |source| Error::Delete {
                namespace: name.to_owned(),
                resource: kind.3,
                source,
            };
            deleted.map_err(error)?;
            let left = api
                .list(&ListParams::default())
                .await
                .map_err(error)?
                .items
                .len();
            if left > 0 {
                remaining.push((kind.3, left));
            }
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let now = jiff::Timestamp::now();
        let mut next = (*ns).clone();
        if remaining.is_empty() {
            // Empty: the `kubernetes` finalizer goes, and with it the namespace.
            if let Some(spec) = next.spec.as_mut() {
                spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
            }
            return match api
                .replace_subresource("finalize", name, &PostParams::default(), &next)
                .await
            {
                Ok(_) => Ok(Action::AwaitChange),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::AwaitChange),
                Err(source) => Err(Error::Finalize {
                    namespace: name.to_owned(),
                    source,
                }),
            };
        }
        let status = next.status.get_or_insert_with(Default::default);
        let wanted = conditions(&remaining, now);
        let same = |a: &[NamespaceCondition], b: &[NamespaceCondition]| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x.type_ == y.type_ && x.status == y.status && x.message == y.message
                })
        };
        if !same(status.conditions.as_deref().unwrap_or_default(), &wanted) {
            status.conditions = Some(wanted);
            // Best effort: the conditions explain; the next look retries anyway.
            let _ = api
                .replace_status(name, &PostParams::default(), &next)
                .await;
        }
        Ok(Action::RequeueAfter(Duration::from_secs(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_say_what_remains() {
        let now = jiff::Timestamp::from_second(0).unwrap();
        let left = conditions(&[("pods", 2), ("configmaps", 1)], now);
        let remaining = left
            .iter()
            .find(|c| c.type_ == "NamespaceContentRemaining")
            .unwrap();
        assert_eq!(remaining.status, "True");
        assert_eq!(remaining.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            remaining.message.as_deref(),
            Some(
                "Some resources are remaining: pods has 2 resource instances, configmaps has 1 resource instances"
            )
        );
        let done = conditions(&[], now);
        assert!(done.iter().all(|c| c.status == "False"));
    }
}
