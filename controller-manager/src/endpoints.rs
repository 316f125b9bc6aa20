//! The endpoints controller: one Endpoints object per Service with a selector, listing the pods
//! it selects — ready ones in `addresses`, the others in `notReadyAddresses` — with their ports
//! resolved (Kubernetes' `endpoint` controller). Pods without an IP yet, or being deleted, are
//! left out; pods whose ports resolve alike share a subset.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Service,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt as _};
use runtime::pod::Pod;

use crate::pods;
use crate::runtime::{Action, Change, Informer, WorkQueue, key_of, run_workers, split_key};

#[derive(Debug, thiserror::Error)]
#[error("writing the endpoints of {key}: {source}")]
pub struct Error {
    key: String,
    source: kube::Error,
}

/// A service's ports as they resolve on one pod: (name, number, protocol).
type ResolvedPorts = Vec<(String, i32, String)>;

/// The subsets of `service` over the pods of its namespace; `None` when it has no selector (its
/// endpoints are someone else's to write).
pub fn subsets(service: &Service, namespace_pods: &[&Pod]) -> Option<Vec<EndpointSubset>> {
    let spec = service.spec.as_ref()?;
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    // Pods grouped by how the service's ports resolve on them.
    let mut groups: BTreeMap<ResolvedPorts, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for pod in namespace_pods {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            continue;
        }
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty())
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() && !publish_not_ready {
            continue;
        }
        let ports: ResolvedPorts = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|port| {
                let target = port
                    .target_port
                    .clone()
                    .unwrap_or(IntOrString::Int(port.port));
                let number = match target {
                    IntOrString::Int(n) => Some(n),
                    IntOrString::String(name) => pod
                        .spec
                        .as_ref()?
                        .containers
                        .iter()
                        .flat_map(|c| c.ports.iter().flatten())
                        .find(|p| p.name.as_deref() == Some(name.as_str()))
                        .map(|p| p.container_port),
                }?;
                Some((
                    port.name.clone().unwrap_or_default(),
                    number,
                    port.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ))
            })
            .collect();
        let address = EndpointAddress {
            ip,
            node_name: pods::node_name(pod).map(str::to_owned),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            }),
            ..EndpointAddress::default()
        };
        let group = groups.entry(ports).or_default();
        if pods::is_ready(pod) || publish_not_ready {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
    }
    let by_ip = |a: &EndpointAddress, b: &EndpointAddress| a.ip.cmp(&b.ip);
    Some(
        groups
            .into_iter()
            .map(|(ports, (mut ready, mut not_ready))| {
                ready.sort_by(by_ip);
                not_ready.sort_by(by_ip);
                EndpointSubset {
                    addresses: (!ready.is_empty()).then_some(ready),
                    not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                    ports: (!ports.is_empty()).then(|| {
                        ports
                            .into_iter()
                            .map(|(name, port, protocol)| EndpointPort {
                                name: (!name.is_empty()).then_some(name),
                                port,
                                protocol: Some(protocol),
                                ..EndpointPort::default()
                            })
                            .collect()
                    }),
                }
            })
            .collect(),
    )
}

pub struct Controller {
    client: Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    queue: Arc<WorkQueue<String>>,
}

impl Controller {
    pub async fn run(
        client: Client,
        services: Arc<Informer<Service>>,
        pod_informer: Arc<Informer<Pod>>,
        endpoints: Arc<Informer<Endpoints>>,
        workers: usize,
    ) {
        let controller = Arc::new(Controller {
            client,
            services: services.store(),
            pods: pod_informer.store(),
            endpoints: endpoints.store(),
            queue: WorkQueue::new(),
        });
        let c = Arc::clone(&controller);
        services.subscribe().forward(move |change| match change {
            Change::Applied(s) | Change::Deleted(s) => {
                c.queue
                    .add(key_of(s.metadata.namespace.as_deref(), &s.name_any()));
            }
            Change::Resync => c.enqueue_all(None),
        });
        let c = Arc::clone(&controller);
        pod_informer
            .subscribe()
            .forward(move |change| match change {
                // A pod may have joined or left any service of its namespace.
                Change::Applied(p) | Change::Deleted(p) => {
                    c.enqueue_all(p.metadata.namespace.as_deref())
                }
                Change::Resync => c.enqueue_all(None),
            });
        services.ready().await;
        pod_informer.ready().await;
        endpoints.ready().await;
        controller.enqueue_all(None);
        let queue = Arc::clone(&controller.queue);
        run_workers("endpoints", queue, workers, move |key| {
            let controller = Arc::clone(&controller);
            async move { controller.sync(&key).await }
        })
        .await;
    }

    fn enqueue_all(&self, namespace: Option<&str>) {
        for s in self.services.state() {
            if namespace.is_none() || s.metadata.namespace.as_deref() == namespace {
                self.queue
                    .add(key_of(s.metadata.namespace.as_deref(), &s.name_any()));
            }
        }
    }

    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (namespace, name) = split_key(key);
        let namespace = namespace.unwrap_or_default();
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), namespace);
        let error = |source| Error {
            key: key.to_owned(),
            source,
        };
        let current = self.endpoints.get(&ObjectRef::new(name).within(namespace));
        let Some(service) = self.services.get(&ObjectRef::new(name).within(namespace)) else {
            // The Service is gone: so are its endpoints (those this controller wrote).
            if current.is_some() {
                match api.delete(name, &Default::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(source) => return Err(error(source)),
                }
            }
            return Ok(Action::AwaitChange);
        };
        let all = self.pods.state();
        let in_namespace: Vec<&Pod> = all
            .iter()
            .map(Arc::as_ref)
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .collect();
        let Some(subsets) = subsets(&service, &in_namespace) else {
            return Ok(Action::AwaitChange);
        };
        let subsets = (!subsets.is_empty()).then_some(subsets);
        let labels = service.metadata.labels.clone();
        match current {
            Some(existing) if existing.subsets == subsets && existing.metadata.labels == labels => {
            }
            Some(existing) => {
                let mut next = (*existing).clone();
                next.subsets = subsets;
                next.metadata.labels = labels;
                api.replace(name, &PostParams::default(), &next)
                    .await
                    .map_err(error)?;
            }
            None => {
                let endpoints = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(namespace.to_owned()),
                        labels,
                        ..ObjectMeta::default()
                    },
                    subsets,
                };
                match api.create(&PostParams::default(), &endpoints).await {
                    Ok(_) => {}
                    // Written meanwhile (or the cache is behind): look again.
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        return Ok(Action::RequeueAfter(std::time::Duration::from_millis(100)));
                    }
                    Err(source) => return Err(error(source)),
                }
            }
        }
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: Option<&str>, ready: bool, app: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": app}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i",
                     "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    #[test]
    fn ready_and_not_ready_pods_with_named_ports_resolved() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "web", "port": 80, "targetPort": "http"},
                {"name": "admin", "port": 9000}]}
        }))
        .unwrap();
        let a = pod("a", Some("10.0.0.2"), true, "web");
        let b = pod("b", Some("10.0.0.1"), false, "web");
        let no_ip = pod("c", None, true, "web");
        let other = pod("d", Some("10.0.0.9"), true, "db");
        let subsets = subsets(&service, &[&a, &b, &no_ip, &other]).unwrap();
        assert_eq!(subsets.len(), 1);
        let s = &subsets[0];
        let ips = |list: &Option<Vec<EndpointAddress>>| {
            list.iter()
                .flatten()
                .map(|a| a.ip.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ips(&s.addresses), ["10.0.0.2"]);
        assert_eq!(ips(&s.not_ready_addresses), ["10.0.0.1"]);
        let ports: Vec<(Option<String>, i32)> = s
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone(), p.port))
            .collect();
        assert_eq!(
            ports,
            [(Some("web".into()), 8080), (Some("admin".into()), 9000)]
        );
        let target = s.addresses.as_ref().unwrap()[0]
            .target_ref
            .as_ref()
            .unwrap();
        assert_eq!(target.name.as_deref(), Some("a"));
        // No selector: not this controller's.
        let manual: Service = serde_json::from_value(
            json!({"metadata": {"name": "m"}, "spec": {"ports": [{"port": 1}]}}),
        )
        .unwrap();
        assert!(subsets_of_manual(&manual));
    }

    fn subsets_of_manual(service: &Service) -> bool {
        subsets(service, &[]).is_none()
    }
}
