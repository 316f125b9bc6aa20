//! `NodeResourcesFit`: the pod's requests must fit in the node's allocatable beside what its pods
//! (running and assumed) already request; the node's pod count is a resource too.

use runtime::pod::Pod;

use crate::framework::{NodeInfo, Resources, Status, pod_requests};

pub const NAME: &str = "NodeResourcesFit";

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    fit(&pod_requests(pod), node)
}

/// [`filter`] with the pod's requests computed once per cycle (kube's PreFilter state).
pub fn fit(want: &Resources, node: &NodeInfo) -> Status {
    let allocatable = &node.allocatable;
    let used = &node.requested;
    let mut reasons = Vec::new();
    if used.pods + 1 > allocatable.pods {
        reasons.push("Too many pods".to_owned());
    }
    if want.milli_cpu > 0 && used.milli_cpu + want.milli_cpu > allocatable.milli_cpu {
        reasons.push("Insufficient cpu".into());
    }
    if want.memory > 0 && used.memory + want.memory > allocatable.memory {
        reasons.push("Insufficient memory".into());
    }
    if want.ephemeral_storage > 0
        && used.ephemeral_storage + want.ephemeral_storage > allocatable.ephemeral_storage
    {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    for (name, amount) in &want.scalar {
        let have = allocatable.scalar.get(name).copied().unwrap_or(0);
        let taken = used.scalar.get(name).copied().unwrap_or(0);
        if *amount > 0 && taken + amount > have {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    if reasons.is_empty() {
        Status::Fits
    } else {
        Status::Unschedulable(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{Case, check, merge, node, pod, unschedulable};
    use serde_json::{Value, json};

    const AAA: &str = "example.com/aaa";
    const BBB: &str = "example.com/bbb";

    /// One container's requests: `cpu` millicores, `memory` bytes and `extra` resources (Kubernetes'
    /// `framework.Resource`).
    fn req(cpu: i64, memory: i64, extra: Value) -> Value {
        let mut r = json!({"cpu": format!("{cpu}m"), "memory": memory.to_string()});
        merge(&mut r, extra);
        r
    }

    fn cm(cpu: i64, memory: i64) -> Value {
        req(cpu, memory, json!({}))
    }

    fn containers(requests: &[Value]) -> Value {
        requests
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"name": format!("c{i}"), "resources": {"requests": r}}))
            .collect()
    }

    /// A pod whose containers request these (`newResourcePod`).
    fn requesting(requests: &[Value]) -> Pod {
        pod(json!({"spec": {"containers": containers(requests)}}))
    }

    /// A pod with these containers and init containers (`newResourceInitPod`).
    fn with_init(requests: &[Value], init: &[Value]) -> Pod {
        pod(
            json!({"spec": {"containers": containers(requests), "initContainers": containers(init)}}),
        )
    }

    /// A node with this allocatable, holding these pods.
    fn allocatable(list: Value, pods: &[Pod]) -> NodeInfo {
        let pods: Vec<&Pod> = pods.iter().collect();
        NodeInfo::new(&node("n", json!({"status": {"allocatable": list}})), &pods)
    }

    /// Kubernetes' test node (`makeAllocatableResources(10, 20, 32, 5, 20, 5)`) holding one pod
    /// that requests `used`.
    fn using(used: Value) -> NodeInfo {
        allocatable(
            json!({"cpu": "10m", "memory": "20", "pods": "32", AAA: "5",
                "ephemeral-storage": "20", "hugepages-2Mi": "5"}),
            &[requesting(&[used])],
        )
    }

    /// The node of `TestNotEnoughRequests`: room for one pod, which it already holds.
    fn full_using(used: Value) -> NodeInfo {
        allocatable(
            json!({"cpu": "10m", "memory": "20", "pods": "1"}),
            &[requesting(&[used])],
        )
    }

    fn insufficient(resources: &[&str]) -> Status {
        let reasons: Vec<String> = resources
            .iter()
            .map(|r| format!("Insufficient {r}"))
            .collect();
        Status::Unschedulable(reasons)
    }

    #[test]
    fn filter_as_kubernetes_does() {
        let cases: Vec<Case> = vec![
            // Kubernetes' TestEnoughRequests (without the IgnoredResources arguments, which Ferry
            // does not take).
            (
                "no resources requested always fits",
                pod(json!({})),
                using(cm(10, 20)),
                Status::Fits,
            ),
            (
                "too many resources fails",
                requesting(&[cm(1, 1)]),
                using(cm(10, 20)),
                insufficient(&["cpu", "memory"]),
            ),
            (
                "too many resources fails due to init container cpu",
                with_init(&[cm(1, 1)], &[cm(3, 1)]),
                using(cm(8, 19)),
                insufficient(&["cpu"]),
            ),
            (
                "too many resources fails due to highest init container cpu",
                with_init(&[cm(1, 1)], &[cm(3, 1), cm(2, 1)]),
                using(cm(8, 19)),
                insufficient(&["cpu"]),
            ),
            (
                "too many resources fails due to init container memory",
                with_init(&[cm(1, 1)], &[cm(1, 3)]),
                using(cm(9, 19)),
                insufficient(&["memory"]),
            ),
            (
                "too many resources fails due to highest init container memory",
                with_init(&[cm(1, 1)], &[cm(1, 3), cm(1, 2)]),
                using(cm(9, 19)),
                insufficient(&["memory"]),
            ),
            (
                "init container fits because it's the max, not sum, of containers and init containers",
                with_init(&[cm(1, 1)], &[cm(1, 1)]),
                using(cm(9, 19)),
                Status::Fits,
            ),
            (
                "multiple init containers fit because it's the max, not sum",
                with_init(&[cm(1, 1)], &[cm(1, 1), cm(1, 1)]),
                using(cm(9, 19)),
                Status::Fits,
            ),
            (
                "both resources fit",
                requesting(&[cm(1, 1)]),
                using(cm(5, 5)),
                Status::Fits,
            ),
            (
                "one resource memory fits",
                requesting(&[cm(2, 1)]),
                using(cm(9, 5)),
                insufficient(&["cpu"]),
            ),
            (
                "one resource cpu fits",
                requesting(&[cm(1, 2)]),
                using(cm(5, 19)),
                insufficient(&["memory"]),
            ),
            (
                "equal edge case",
                requesting(&[cm(5, 1)]),
                using(cm(5, 19)),
                Status::Fits,
            ),
            (
                "equal edge case for init container",
                with_init(&[cm(4, 1)], &[cm(5, 1)]),
                using(cm(5, 19)),
                Status::Fits,
            ),
            (
                "extended resource fits",
                requesting(&[json!({AAA: "1"})]),
                using(json!({})),
                Status::Fits,
            ),
            (
                "extended resource fits for init container",
                with_init(&[json!({})], &[json!({AAA: "1"})]),
                using(json!({})),
                Status::Fits,
            ),
            (
                "extended resource capacity enforced",
                requesting(&[req(1, 1, json!({AAA: "10"}))]),
                using(req(0, 0, json!({AAA: "0"}))),
                insufficient(&[AAA]),
            ),
            (
                "extended resource capacity enforced for init container",
                with_init(&[json!({})], &[req(1, 1, json!({AAA: "10"}))]),
                using(req(0, 0, json!({AAA: "0"}))),
                insufficient(&[AAA]),
            ),
            (
                "extended resource allocatable enforced",
                requesting(&[req(1, 1, json!({AAA: "1"}))]),
                using(req(0, 0, json!({AAA: "5"}))),
                insufficient(&[AAA]),
            ),
            (
                "extended resource allocatable enforced for init container",
                with_init(&[json!({})], &[req(1, 1, json!({AAA: "1"}))]),
                using(req(0, 0, json!({AAA: "5"}))),
                insufficient(&[AAA]),
            ),
            (
                "extended resource allocatable enforced for multiple containers",
                requesting(&[req(1, 1, json!({AAA: "3"})), req(1, 1, json!({AAA: "3"}))]),
                using(req(0, 0, json!({AAA: "2"}))),
                insufficient(&[AAA]),
            ),
            (
                "extended resource allocatable admits multiple init containers",
                with_init(
                    &[json!({})],
                    &[req(1, 1, json!({AAA: "3"})), req(1, 1, json!({AAA: "3"}))],
                ),
                using(req(0, 0, json!({AAA: "2"}))),
                Status::Fits,
            ),
            (
                "extended resource allocatable enforced for multiple init containers",
                with_init(
                    &[json!({})],
                    &[req(1, 1, json!({AAA: "6"})), req(1, 1, json!({AAA: "3"}))],
                ),
                using(req(0, 0, json!({AAA: "2"}))),
                insufficient(&[AAA]),
            ),
            (
                "extended resource allocatable enforced for unknown resource",
                requesting(&[req(1, 1, json!({BBB: "1"}))]),
                using(cm(0, 0)),
                insufficient(&[BBB]),
            ),
            (
                "extended resource allocatable enforced for unknown resource for init container",
                with_init(&[json!({})], &[req(1, 1, json!({BBB: "1"}))]),
                using(cm(0, 0)),
                insufficient(&[BBB]),
            ),
            (
                "kubernetes.io resource capacity enforced",
                requesting(&[req(1, 1, json!({"kubernetes.io/something": "10"}))]),
                using(cm(0, 0)),
                insufficient(&["kubernetes.io/something"]),
            ),
            (
                "kubernetes.io resource capacity enforced for init container",
                with_init(
                    &[json!({})],
                    &[req(
                        1,
                        1,
                        json!({"subdomain.kubernetes.io/something": "10"}),
                    )],
                ),
                using(cm(0, 0)),
                insufficient(&["subdomain.kubernetes.io/something"]),
            ),
            (
                "hugepages resource capacity enforced",
                requesting(&[req(1, 1, json!({"hugepages-2Mi": "10"}))]),
                using(req(0, 0, json!({"hugepages-2Mi": "0"}))),
                insufficient(&["hugepages-2Mi"]),
            ),
            (
                "hugepages resource capacity enforced for init container",
                with_init(&[json!({})], &[req(1, 1, json!({"hugepages-2Mi": "10"}))]),
                using(req(0, 0, json!({"hugepages-2Mi": "0"}))),
                insufficient(&["hugepages-2Mi"]),
            ),
            (
                "hugepages resource allocatable enforced for multiple containers",
                requesting(&[
                    req(1, 1, json!({"hugepages-2Mi": "3"})),
                    req(1, 1, json!({"hugepages-2Mi": "3"})),
                ]),
                using(req(0, 0, json!({"hugepages-2Mi": "2"}))),
                insufficient(&["hugepages-2Mi"]),
            ),
            (
                "resources + pod overhead fits",
                pod(json!({"spec": {"containers": containers(&[cm(1, 1)]),
                    "overhead": {"cpu": "3m", "memory": "13"}}})),
                using(cm(5, 5)),
                Status::Fits,
            ),
            (
                "requests + overhead does not fit for memory",
                pod(json!({"spec": {"containers": containers(&[cm(1, 1)]),
                    "overhead": {"cpu": "1m", "memory": "15"}}})),
                using(cm(5, 5)),
                insufficient(&["memory"]),
            ),
            (
                "skip checking extended resource request with quantity zero",
                requesting(&[req(1, 1, json!({AAA: "0"}))]),
                using(req(0, 0, json!({AAA: "6"}))),
                Status::Fits,
            ),
            (
                "skip checking resource request with quantity zero",
                requesting(&[req(0, 0, json!({AAA: "1"}))]),
                using(req(20, 30, json!({AAA: "1"}))),
                Status::Fits,
            ),
            // Kubernetes' TestNotEnoughRequests: the pod count is checked even for a pod that
            // requests nothing.
            (
                "even without specified resources, there's no space for an additional pod",
                pod(json!({})),
                full_using(cm(10, 20)),
                unschedulable(&["Too many pods"]),
            ),
            (
                "even if both resources fit, there's no space for an additional pod",
                requesting(&[cm(1, 1)]),
                full_using(cm(5, 5)),
                unschedulable(&["Too many pods"]),
            ),
            (
                "even for equal edge case, there's no space for an additional pod",
                requesting(&[cm(5, 1)]),
                full_using(cm(5, 19)),
                unschedulable(&["Too many pods"]),
            ),
            (
                "even for equal edge case with an init container, there's no space for an additional pod",
                with_init(&[cm(5, 1)], &[cm(5, 1)]),
                full_using(cm(5, 19)),
                unschedulable(&["Too many pods"]),
            ),
            // Kubernetes' TestStorageRequests.
            (
                "empty storage requested, and pod fits",
                requesting(&[cm(1, 1)]),
                using(cm(2, 10)),
                Status::Fits,
            ),
            (
                "ephemeral local storage request exceeds allocatable",
                requesting(&[json!({"ephemeral-storage": "25"})]),
                using(cm(2, 2)),
                insufficient(&["ephemeral-storage"]),
            ),
            (
                "ephemeral local storage is sufficient",
                requesting(&[json!({"ephemeral-storage": "5"})]),
                using(req(2, 2, json!({"ephemeral-storage": "10"}))),
                Status::Fits,
            ),
            (
                "pod fits",
                requesting(&[json!({"ephemeral-storage": "10"})]),
                using(cm(2, 2)),
                Status::Fits,
            ),
            (
                "ephemeral storage already used counts",
                requesting(&[json!({"ephemeral-storage": "11"})]),
                using(req(2, 2, json!({"ephemeral-storage": "10"}))),
                insufficient(&["ephemeral-storage"]),
            ),
            // Several at once, in Kubernetes' order: pods, cpu, memory, ephemeral-storage, then
            // the scalar resources (in a Go map's order there; by name here).
            (
                "every resource short at once",
                requesting(&[req(
                    11,
                    21,
                    json!({"ephemeral-storage": "21", BBB: "1", AAA: "6"}),
                )]),
                allocatable(
                    json!({"cpu": "10m", "memory": "20", "pods": "1", "ephemeral-storage": "20", AAA: "5"}),
                    &[pod(json!({}))],
                ),
                unschedulable(&[
                    "Too many pods",
                    "Insufficient cpu",
                    "Insufficient memory",
                    "Insufficient ephemeral-storage",
                    "Insufficient example.com/aaa",
                    "Insufficient example.com/bbb",
                ]),
            ),
            (
                "a node without allocatable takes no pod",
                requesting(&[cm(1, 1)]),
                allocatable(json!({}), &[]),
                unschedulable(&["Too many pods", "Insufficient cpu", "Insufficient memory"]),
            ),
            (
                "the pods already there count with their init containers and overhead",
                requesting(&[cm(3, 1)]),
                allocatable(
                    json!({"cpu": "10m", "memory": "20", "pods": "32"}),
                    &[pod(json!({"spec": {
                        "containers": containers(&[cm(1, 1)]),
                        "initContainers": containers(&[cm(5, 1)]),
                        "overhead": {"cpu": "3m"}}}))],
                ),
                insufficient(&["cpu"]),
            ),
            (
                "quantities in their usual units",
                requesting(&[json!({"cpu": "1.5", "memory": "1Gi"})]),
                allocatable(
                    json!({"cpu": "2", "memory": "4Gi", "pods": "110"}),
                    &[requesting(&[json!({"cpu": "600m", "memory": "3Gi"})])],
                ),
                insufficient(&["cpu"]),
            ),
        ];
        check(filter, cases);
    }
}
