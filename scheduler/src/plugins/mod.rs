//! Filter plugins, one module each with its `NAME` and a pure `filter(pod, node) -> Status`, as
//! kube-scheduler's. [`filter_node`] runs them in kube-scheduler's order and, as it does, stops at
//! the first plugin that rejects the node.

pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{NodeInfo, Status};

type Filter = fn(&Pod, &NodeInfo) -> Status;

/// The per-node filters, by name, in kube-scheduler's default order; PodTopologySpread and
/// InterPodAffinity follow them, with the state [`PreFilter`] computed once per pod.
pub const FILTERS: &[(&str, Filter)] = &[
    (node_unschedulable::NAME, node_unschedulable::filter),
    (node_name::NAME, node_name::filter),
    (taint_toleration::NAME, taint_toleration::filter),
    (node_affinity::NAME, node_affinity::filter),
    (node_ports::NAME, node_ports::filter),
    (node_resources_fit::NAME, node_resources_fit::filter),
];

/// What the cluster-wide filters compute once per pod over every node.
pub struct PreFilter {
    spread: pod_topology_spread::PreFilterState,
    affinity: inter_pod_affinity::PreFilterState,
}

impl PreFilter {
    pub fn compute(pod: &Pod, nodes: &[NodeInfo]) -> PreFilter {
        PreFilter {
            spread: pod_topology_spread::pre_filter(pod, nodes),
            affinity: inter_pod_affinity::pre_filter(pod, nodes),
        }
    }
}

/// Why a node was rejected: the first plugin that said no (kube-scheduler stops at it) and its
/// reasons; `resolvable` is false when evicting pods could not help (kube's
/// `UnschedulableAndUnresolvable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub plugin: &'static str,
    pub reasons: Vec<String>,
    pub resolvable: bool,
}

fn rejection(plugin: &'static str, status: Status) -> Result<(), Rejection> {
    match status {
        Status::Fits => Ok(()),
        Status::Unschedulable(reasons) => {
            let resolvable = match plugin {
                node_unschedulable::NAME
                | node_name::NAME
                | taint_toleration::NAME
                | node_affinity::NAME => false,
                pod_topology_spread::NAME => !reasons
                    .iter()
                    .any(|r| r == pod_topology_spread::REASON_NODE_LABEL_NOT_MATCH),
                inter_pod_affinity::NAME => !reasons
                    .iter()
                    .any(|r| r == inter_pod_affinity::REASON_AFFINITY_RULES_NOT_MATCH),
                _ => true,
            };
            Err(Rejection {
                plugin,
                reasons,
                resolvable,
            })
        }
    }
}

/// Runs the filters on one node, stopping at the first that rejects it.
pub fn filter_node(pod: &Pod, node: &NodeInfo, pre: &PreFilter) -> Result<(), Rejection> {
    for (name, filter) in FILTERS {
        rejection(name, filter(pod, node))?;
    }
    if !pre.spread.is_empty() {
        rejection(
            pod_topology_spread::NAME,
            pod_topology_spread::filter(pod, node, &pre.spread),
        )?;
    }
    if !pre.affinity.is_empty() {
        rejection(
            inter_pod_affinity::NAME,
            inter_pod_affinity::filter(pod, node, &pre.affinity),
        )?;
    }
    Ok(())
}

/// Why `pod` does not fit `node` considered alone (empty: it fits).
pub fn filter(pod: &Pod, node: &NodeInfo) -> Vec<String> {
    let pre = PreFilter::compute(pod, std::slice::from_ref(node));
    filter_node(pod, node, &pre)
        .err()
        .map(|r| r.reasons)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::failure_message;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    fn node(name: &str, extra: Value) -> Node {
        let mut n = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": "a", "gen": "3"}},
            "spec": {},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3"}}
        });
        merge(&mut n, extra);
        serde_json::from_value(n).unwrap()
    }

    fn pod(extra: Value) -> Pod {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}});
        merge(&mut p, extra);
        serde_json::from_value(p).unwrap()
    }

    fn merge(base: &mut Value, extra: Value) {
        match (base, extra) {
            (Value::Object(b), Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    fn reasons(pod: &Pod, node: &Node, others: &[&Pod]) -> Vec<String> {
        filter(pod, &NodeInfo::new(node, others))
    }

    #[test]
    fn each_filter_says_why_in_kubernetes_words() {
        let plain = node("n1", json!({}));
        let p = pod(json!({}));
        assert!(reasons(&p, &plain, &[]).is_empty(), "fits an empty node");

        // NodeUnschedulable, unless tolerated.
        let cordoned = node("n1", json!({"spec": {"unschedulable": true}}));
        assert_eq!(reasons(&p, &cordoned, &[]), ["node(s) were unschedulable"]);
        let tolerant = pod(
            json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        assert!(reasons(&tolerant, &cordoned, &[]).is_empty());

        // NodeName.
        let named = pod(json!({"spec": {"nodeName": "n2"}}));
        assert_eq!(
            reasons(&named, &plain, &[]),
            ["node(s) didn't match the requested node name"]
        );

        // TaintToleration: NoSchedule and NoExecute keep out, PreferNoSchedule does not.
        let tainted = node(
            "n1",
            json!({"spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(
            reasons(&p, &tainted, &[]),
            ["node(s) had untolerated taint {gpu: yes}"]
        );
        let equal = pod(
            json!({"spec": {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes"}]}}),
        );
        assert!(reasons(&equal, &tainted, &[]).is_empty());
        let wrong = pod(json!({"spec": {"tolerations": [{"key": "gpu", "value": "no"}]}}));
        assert_eq!(reasons(&wrong, &tainted, &[]).len(), 1);
        let everything = pod(json!({"spec": {"tolerations": [{"operator": "Exists"}]}}));
        assert!(reasons(&everything, &tainted, &[]).is_empty());
        let soft = node(
            "n1",
            json!({"spec": {"taints": [{"key": "x", "effect": "PreferNoSchedule"}]}}),
        );
        assert!(reasons(&p, &soft, &[]).is_empty());

        // NodeAffinity: nodeSelector and required terms with every operator.
        let selector = pod(json!({"spec": {"nodeSelector": {"zone": "b"}}}));
        assert_eq!(
            reasons(&selector, &plain, &[]),
            ["node(s) didn't match Pod's node affinity/selector"]
        );
        let term = |expr: Value| {
            pod(
                json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [expr]}]}}}}}),
            )
        };
        for (expr, fits) in [
            (
                json!({"key": "zone", "operator": "In", "values": ["a", "b"]}),
                true,
            ),
            (
                json!({"key": "zone", "operator": "NotIn", "values": ["a"]}),
                false,
            ),
            (json!({"key": "zone", "operator": "Exists"}), true),
            (json!({"key": "rack", "operator": "DoesNotExist"}), true),
            (
                json!({"key": "gen", "operator": "Gt", "values": ["2"]}),
                true,
            ),
            (
                json!({"key": "gen", "operator": "Lt", "values": ["3"]}),
                false,
            ),
        ] {
            assert_eq!(
                reasons(&term(expr.clone()), &plain, &[]).is_empty(),
                fits,
                "{expr}"
            );
        }

        // NodePorts.
        let port = pod(
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}),
        );
        assert_eq!(
            reasons(&port, &plain, &[&port]),
            ["node(s) didn't have free ports for the requested pod ports"]
        );

        // NodeResourcesFit: cpu, memory and the pod count, counting the pods already there.
        let big = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1600m", "memory": "3584Mi"}}}]}}),
        );
        assert_eq!(
            reasons(&big, &plain, &[&p]),
            ["Insufficient cpu", "Insufficient memory"]
        );
        let tiny = pod(json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(
            reasons(&tiny, &plain, &[&tiny, &tiny, &tiny]),
            ["Too many pods"]
        );
        let gpu = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}}),
        );
        assert_eq!(reasons(&gpu, &plain, &[]), ["Insufficient nvidia.com/gpu"]);
    }

    #[test]
    fn the_users_message_over_several_nodes() {
        let p = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "3"}}}]}}),
        );
        let nodes = [
            node("a", json!({})),
            node("b", json!({"spec": {"unschedulable": true}})),
            node("c", json!({})),
        ];
        let all: Vec<Vec<String>> = nodes.iter().map(|n| reasons(&p, n, &[])).collect();
        assert_eq!(
            failure_message(nodes.len(), &all),
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
        );
    }
}
