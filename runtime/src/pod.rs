//! The pod as the controller-manager's and the scheduler's informers hold it: only the fields
//! some controller or scheduler plugin reads, decoded straight from the API's JSON.
//!
//! A pod decoded as k8s-openapi's `Pod` takes 6–7 KB in memory even when most of it is empty:
//! its `PodSpec` is 1.4 KB and each `Container` 2.1 KB inline, whatever they hold. These two
//! processes hold every pod of the cluster, so at 10,000 pods that was ~60 MB of each one's heap
//! (measured with heaptrack under `ferry up`); this type takes about a third of that, and
//! decoding it skips the rest of the JSON.
//!
//! The field names and types are k8s-openapi's, so code reads it as it reads a `Pod`. It cannot
//! be serialized: an informer's pod is never written back whole (that would drop every field it
//! lacks); writes are patches, or k8s-openapi's `Pod` built anew (the ReplicaSet controller's).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// `core/v1` Pod, the part of it Ferry's controllers and scheduler read.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: Option<PodSpec>,
    pub status: Option<PodStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// Boxed: 144 bytes inline that almost every pod leaves empty.
    pub affinity: Option<Box<core::Affinity>>,
    #[serde(default)]
    pub containers: Vec<Container>,
    pub init_containers: Option<Vec<Container>>,
    pub node_name: Option<String>,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub overhead: Option<BTreeMap<String, Quantity>>,
    pub preemption_policy: Option<String>,
    pub priority: Option<i32>,
    pub scheduler_name: Option<String>,
    pub scheduling_gates: Option<Vec<core::PodSchedulingGate>>,
    pub tolerations: Option<Vec<core::Toleration>>,
    pub topology_spread_constraints: Option<Vec<core::TopologySpreadConstraint>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    pub ports: Option<Vec<core::ContainerPort>>,
    pub resources: Option<core::ResourceRequirements>,
    /// `Always` makes an init container a sidecar.
    pub restart_policy: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub conditions: Option<Vec<core::PodCondition>>,
    pub container_statuses: Option<Vec<ContainerStatus>>,
    pub nominated_node_name: Option<String>,
    pub phase: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<core::PodIP>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i32,
}

impl kube::Resource for Pod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod as the kubelet reports it, in full.
    fn running_pod() -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u1",
                         "labels": {"app": "web"}, "resourceVersion": "7",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "web", "uid": "r1", "controller": true}]},
            "spec": {
                "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "IfNotPresent",
                                "ports": [{"containerPort": 80, "name": "http", "hostPort": 8080}],
                                "resources": {"requests": {"cpu": "100m"}},
                                "terminationMessagePath": "/dev/termination-log"}],
                "initContainers": [{"name": "side", "image": "envoy", "restartPolicy": "Always"}],
                "nodeName": "n1", "nodeSelector": {"disk": "ssd"}, "priority": 5,
                "schedulerName": "default-scheduler", "hostNetwork": true,
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute"}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}},
                     "topologyKey": "kubernetes.io/hostname"}]}},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                               "whenUnsatisfiable": "DoNotSchedule"}],
                "overhead": {"cpu": "10m"}, "securityContext": {}, "dnsPolicy": "ClusterFirst",
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
                "hostIP": "172.20.0.1", "qosClass": "Burstable",
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "c", "image": "nginx", "imageID": "x", "ready": true,
                                       "restartCount": 2, "started": true,
                                       "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}],
            }
        })
    }

    #[test]
    fn a_pod_decodes_to_the_fields_kept_with_the_values_k8s_openapi_gives_them() {
        let full: core::Pod = serde_json::from_value(running_pod()).unwrap();
        let pod: Pod = serde_json::from_value(running_pod()).unwrap();
        assert_eq!(pod.metadata, full.metadata);
        let (spec, full_spec) = (pod.spec.unwrap(), full.spec.unwrap());
        assert_eq!(spec.affinity.as_deref(), full_spec.affinity.as_ref());
        assert_eq!(spec.tolerations, full_spec.tolerations);
        assert_eq!(
            spec.topology_spread_constraints,
            full_spec.topology_spread_constraints
        );
        assert_eq!(spec.overhead, full_spec.overhead);
        assert_eq!(spec.node_selector, full_spec.node_selector);
        assert_eq!(
            (spec.node_name.as_deref(), spec.priority),
            (Some("n1"), Some(5))
        );
        assert_eq!(spec.containers[0].ports, full_spec.containers[0].ports);
        assert_eq!(
            spec.containers[0].resources,
            full_spec.containers[0].resources
        );
        let init = &spec.init_containers.unwrap()[0];
        assert_eq!(
            (init.name.as_str(), init.restart_policy.as_deref()),
            ("side", Some("Always"))
        );
        let status = pod.status.unwrap();
        assert_eq!(status.conditions, full.status.unwrap().conditions);
        assert_eq!(
            status.container_statuses.unwrap(),
            [ContainerStatus {
                name: "c".into(),
                ready: true,
                restart_count: 2,
            }]
        );
        assert_eq!(
            (status.phase.as_deref(), status.pod_ip.as_deref()),
            (Some("Running"), Some("10.0.0.5"))
        );
        assert_eq!(status.pod_ips.unwrap()[0].ip, "10.0.0.5");
    }

    #[test]
    fn a_pod_with_nulls_and_no_spec_decodes() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "ports": null}],
            "nodeName": null}, "status": null
        }))
        .unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(
            (spec.node_name, spec.containers[0].ports.clone()),
            (None, None)
        );
        assert!(pod.status.is_none());
        let bare: Pod = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(bare, Pod::default());
    }
}
