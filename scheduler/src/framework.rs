//! What filter plugins share: a node with what its pods already request, a pod's own requests,
//! the verdict type, and the message users read when no node fits
//! (`0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable.`).

use std::collections::BTreeMap;
use std::sync::Arc;

use api_types::quantity::Quantity;
use k8s_openapi::api::core::v1::{Node, ResourceRequirements, Taint};
use runtime::pod::Pod;

use crate::plugins::inter_pod_affinity;

/// A filter's verdict about one (pod, node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Fits,
    /// The pod cannot go there, for these reasons (each as users read it).
    Unschedulable(Vec<String>),
}

/// Amounts of resources: cpu in millicores, memory and ephemeral storage in bytes, extended
/// resources in their units, and a pod count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// From a resource list (`requests`, `allocatable`).
    pub fn from_list(
        list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    ) -> Resources {
        let mut out = Resources::default();
        for (name, value) in list.into_iter().flatten() {
            let Ok(q) = Quantity::parse(&value.0) else {
                continue;
            };
            match name.as_str() {
                "cpu" => out.milli_cpu = q.to_milli_ceil(),
                "memory" => out.memory = q.to_value_ceil(),
                "ephemeral-storage" => out.ephemeral_storage = q.to_value_ceil(),
                "pods" => out.pods = q.to_value_ceil(),
                other => {
                    out.scalar.insert(other.to_owned(), q.to_value_ceil());
                }
            }
        }
        out
    }

    fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    fn max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let entry = self.scalar.entry(k.clone()).or_default();
            *entry = (*entry).max(*v);
        }
    }
}

fn requests(resources: Option<&ResourceRequirements>) -> Resources {
    Resources::from_list(resources.and_then(|r| r.requests.as_ref()))
}

/// What a pod asks for (Kubernetes' `PodRequests`): the sum of its containers' requests, or the
/// largest init container's when larger, plus its overhead; and one pod. Sidecars (init
/// containers with `restartPolicy: Always`) keep running: they add to the sum, and every init
/// container after one runs beside it.
pub fn pod_requests(pod: &Pod) -> Resources {
    let mut total = Resources::default();
    let Some(spec) = pod.spec.as_ref() else {
        return total;
    };
    for container in &spec.containers {
        total.add(&requests(container.resources.as_ref()));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for init in spec.init_containers.iter().flatten() {
        let mut peak = requests(init.resources.as_ref());
        if init.restart_policy.as_deref() == Some("Always") {
            total.add(&peak);
            sidecars.add(&peak);
            peak = sidecars.clone();
        } else {
            peak.add(&sidecars);
        }
        init_peak.max(&peak);
    }
    total.max(&init_peak);
    total.add(&Resources::from_list(spec.overhead.as_ref()));
    total.pods = 1;
    total
}

fn node_unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

fn node_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

/// A node as the plugins see it: the Node, its allocatable parsed once, and the pods counted on
/// it (bound there, or assumed there by the scheduler) with what they request in total. The
/// scheduler's cache keeps one per node and updates it as pods come and go.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    /// `spec.unschedulable` and `spec.taints`, copied here so that the filters' pass over
    /// hundreds of nodes per cycle reads this contiguous struct, not each cold Node.
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    pub requested: Resources,
    /// Requests as scoring counts them (zero cpu/memory taken as 100m/200Mi), summed.
    pub non_zero_requested: (i64, i64),
    /// Host ports in use: (protocol, host IP, port).
    pub host_ports: Vec<(String, String, i32)>,
    pub pods: Vec<Arc<Pod>>,
    /// The pods with pod affinity or anti-affinity (Kubernetes' `PodsWithAffinity`): all that
    /// InterPodAffinity visits when the incoming pod has no terms of its own.
    pub pods_with_affinity: Vec<Arc<Pod>>,
    /// The pods with required anti-affinity (`PodsWithRequiredAntiAffinity`).
    pub pods_with_required_anti_affinity: Vec<Arc<Pod>>,
    /// What each of `pods` requests, in the same order: parsed once when the pod is counted.
    pod_requests: Vec<Resources>,
}

impl NodeInfo {
    /// `node` with nothing on it yet.
    pub fn empty(node: Arc<Node>) -> NodeInfo {
        let allocatable =
            Resources::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        NodeInfo {
            unschedulable: node_unschedulable(&node),
            taints: node_taints(&node),
            node,
            allocatable,
            requested: Resources::default(),
            non_zero_requested: (0, 0),
            host_ports: Vec::new(),
            pods: Vec::new(),
            pods_with_affinity: Vec::new(),
            pods_with_required_anti_affinity: Vec::new(),
            pod_requests: Vec::new(),
        }
    }

    /// `node` with `pods` counted (a convenience for tests and one-off checks).
    pub fn new(node: &Node, pods: &[&Pod]) -> NodeInfo {
        let mut info = NodeInfo::empty(Arc::new(node.clone()));
        for pod in pods {
            info.add_pod(Arc::new((*pod).clone()));
        }
        info
    }

    /// Replaces the Node (labels, taints, allocatable may have changed), keeping its pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable =
            Resources::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        self.unschedulable = node_unschedulable(&node);
        self.taints = node_taints(&node);
        self.node = node;
    }

    /// Counts `pod` on this node.
    pub fn add_pod(&mut self, pod: Arc<Pod>) {
        let requests = pod_requests(&pod);
        let (cpu, memory) = non_zero(&requests);
        self.requested.add(&requests);
        self.non_zero_requested.0 += cpu;
        self.non_zero_requested.1 += memory;
        self.host_ports
            .extend(crate::plugins::node_ports::host_ports(&pod));
        if inter_pod_affinity::has_pod_affinity(&pod) {
            self.pods_with_affinity.push(Arc::clone(&pod));
        }
        if inter_pod_affinity::has_required_pod_anti_affinity(&pod) {
            self.pods_with_required_anti_affinity.push(Arc::clone(&pod));
        }
        self.pods.push(pod);
        self.pod_requests.push(requests);
    }

    /// Stops counting the pod with this uid; false when it was not counted here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(at) = self.pods.iter().position(|p| uid_of(p) == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(at);
        let requests = self.pod_requests.swap_remove(at);
        for list in [
            &mut self.pods_with_affinity,
            &mut self.pods_with_required_anti_affinity,
        ] {
            if let Some(i) = list.iter().position(|p| uid_of(p) == uid) {
                list.swap_remove(i);
            }
        }
        let (cpu, memory) = non_zero(&requests);
        self.requested.sub(&requests);
        self.non_zero_requested.0 -= cpu;
        self.non_zero_requested.1 -= memory;
        for port in crate::plugins::node_ports::host_ports(&pod) {
            if let Some(i) = self.host_ports.iter().position(|p| *p == port) {
                self.host_ports.swap_remove(i);
            }
        }
        true
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }
}

/// A pod's uid ("" when it has none).
pub fn uid_of(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// Default requests for scoring when a pod asks for no cpu or memory (kube-scheduler's
/// `DefaultMilliCPURequest` and `DefaultMemoryRequest`).
pub const DEFAULT_MILLI_CPU: i64 = 100;
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// Requests as scoring counts them: zero cpu or memory taken as the defaults.
pub fn non_zero(r: &Resources) -> (i64, i64) {
    (
        if r.milli_cpu == 0 {
            DEFAULT_MILLI_CPU
        } else {
            r.milli_cpu
        },
        if r.memory == 0 {
            DEFAULT_MEMORY
        } else {
            r.memory
        },
    )
}

/// The message of a pod that fits no node (`FitError`): reasons counted over the nodes, sorted.
pub fn failure_message(nodes: usize, reasons: &[Vec<String>]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for node_reasons in reasons {
        for reason in node_reasons {
            *counts.entry(reason.as_str()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = counts
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    parts.sort();
    format!("0/{nodes} nodes are available: {}.", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_requests_take_the_larger_of_containers_and_init_containers_plus_overhead() {
        let pod: Pod = serde_json::from_value(json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}],
            "overhead": {"cpu": "10m"}
        }}))
        .unwrap();
        let r = pod_requests(&pod);
        assert_eq!(r.milli_cpu, 1010);
        assert_eq!(r.memory, 64 * 1024 * 1024);
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn sidecars_add_to_the_sum_and_run_beside_later_init_containers() {
        // Kubernetes' TestPodResourceRequests "restartable init container with
        // init container": the sidecar (1) runs beside the containers (1) and beside the later
        // init container (2): max(1 + 1, 1 + 2) = 3 cpu.
        let pod: Pod = serde_json::from_value(json!({"spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [
                {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "init", "resources": {"requests": {"cpu": "2"}}}]
        }}))
        .unwrap();
        assert_eq!(pod_requests(&pod).milli_cpu, 3000);
        // An init container before the sidecar does not run beside it: max(1 + 1, 3) = 3.
        let pod: Pod = serde_json::from_value(json!({"spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [
                {"name": "init", "resources": {"requests": {"cpu": "3"}}},
                {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}}]
        }}))
        .unwrap();
        assert_eq!(pod_requests(&pod).milli_cpu, 3000);
    }

    #[test]
    fn failure_message_counts_reasons_as_kubernetes_prints_them() {
        let message = failure_message(
            3,
            &[
                vec!["Insufficient cpu".into()],
                vec!["node(s) were unschedulable".into()],
                vec!["Insufficient cpu".into()],
            ],
        );
        assert_eq!(
            message,
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
        );
    }
}
