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
#[cfg(test)]
mod testing;

use runtime::pod::Pod;

use crate::framework::{NodeInfo, Resources, Status, pod_requests};

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
    /// The pod's requests (NodeResourcesFit's PreFilter).
    requests: Resources,
    spread: pod_topology_spread::PreFilterState,
    affinity: inter_pod_affinity::PreFilterState,
}

impl PreFilter {
    pub fn compute(pod: &Pod, nodes: &[NodeInfo]) -> PreFilter {
        PreFilter {
            requests: pod_requests(pod),
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
        let status = if *name == node_resources_fit::NAME {
            node_resources_fit::fit(&pre.requests, node)
        } else {
            filter(pod, node)
        };
        rejection(name, status)?;
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
    use crate::plugins::testing::merge;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    fn node(name: &str, extra: Value) -> Node {
        let mut n = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": "a"}},
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

    fn reasons(pod: &Pod, node: &Node, others: &[&Pod]) -> Vec<String> {
        filter(pod, &NodeInfo::new(node, others))
    }

    /// Each plugin's own tests cover its cases; this checks that the chain reaches each one and
    /// reports its reasons as users read them.
    #[test]
    fn each_filter_says_why_in_kubernetes_words() {
        let plain = node("n1", json!({}));
        let p = pod(json!({}));
        assert!(reasons(&p, &plain, &[]).is_empty(), "fits an empty node");

        let cordoned = node("n1", json!({"spec": {"unschedulable": true}}));
        assert_eq!(reasons(&p, &cordoned, &[]), ["node(s) were unschedulable"]);

        let named = pod(json!({"spec": {"nodeName": "n2"}}));
        assert_eq!(
            reasons(&named, &plain, &[]),
            ["node(s) didn't match the requested node name"]
        );

        let tainted = node(
            "n1",
            json!({"spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(
            reasons(&p, &tainted, &[]),
            ["node(s) had untolerated taint {gpu: yes}"]
        );

        let selector = pod(json!({"spec": {"nodeSelector": {"zone": "b"}}}));
        assert_eq!(
            reasons(&selector, &plain, &[]),
            ["node(s) didn't match Pod's node affinity/selector"]
        );

        let port = pod(
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}),
        );
        assert_eq!(
            reasons(&port, &plain, &[&port]),
            ["node(s) didn't have free ports for the requested pod ports"]
        );

        let big = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1600m", "memory": "3584Mi"}}}]}}),
        );
        assert_eq!(
            reasons(&big, &plain, &[&p]),
            ["Insufficient cpu", "Insufficient memory"]
        );
    }

    #[test]
    fn the_first_plugin_that_rejects_is_the_one_reported() {
        // Cordoned, tainted, of the wrong zone and too small: NodeUnschedulable comes first.
        let everything_wrong = node(
            "n1",
            json!({"spec": {"unschedulable": true,
                "taints": [{"key": "gpu", "effect": "NoSchedule"}]},
                "status": {"allocatable": {"cpu": "100m"}}}),
        );
        let p = pod(json!({"spec": {"nodeSelector": {"zone": "b"}}}));
        let pre = PreFilter::compute(&p, &[]);
        let rejected = filter_node(&p, &NodeInfo::new(&everything_wrong, &[]), &pre).unwrap_err();
        assert_eq!(rejected.plugin, node_unschedulable::NAME);
        assert!(!rejected.resolvable);
        // Resources are the last per-node filter, and preemption may help there.
        let small = node("n1", json!({"status": {"allocatable": {"cpu": "100m"}}}));
        let p = pod(json!({}));
        let pre = PreFilter::compute(&p, &[]);
        let rejected = filter_node(&p, &NodeInfo::new(&small, &[]), &pre).unwrap_err();
        assert_eq!(rejected.plugin, node_resources_fit::NAME);
        assert!(rejected.resolvable);
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
