//! Scoring, pure (kube-scheduler's default score plugins and weights): each plugin rates every
//! feasible node 0–100, the scores are weighted and summed, and the best node wins.
//!
//! - NodeResourcesFit, LeastAllocated (weight 1): the share of cpu and memory left free with the
//!   pod placed, averaged.
//! - NodeResourcesBalancedAllocation (weight 1): 100 × (1 − the spread between the cpu and memory
//!   fractions in use), so nodes stay balanced.
//! - TaintToleration (weight 3): fewer untolerated `PreferNoSchedule` taints score higher
//!   (normalized over the nodes).
//! - NodeAffinity (weight 2): the weights of the preferred terms a node matches (normalized).
//! - PodTopologySpread (weight 2) and InterPodAffinity (weight 2): see their modules.
//!
//! Requests of 0 count as Kubernetes' non-zero defaults for scoring (100 millicores, 200 MiB).

use runtime::pod::Pod;

use api_types::labels::Selector;

use crate::framework::{NodeInfo, non_zero, pod_requests};
use crate::plugins::taint_toleration::tolerates;
use crate::plugins::{inter_pod_affinity, pod_topology_spread};

pub const MAX_SCORE: i64 = 100;

/// What the pod asks for, as scoring counts it (zero taken as the non-zero defaults).
fn asks(pod: &Pod) -> (i64, i64) {
    non_zero(&pod_requests(pod))
}

fn usage(asks: (i64, i64), node: &NodeInfo) -> ((i64, i64), (i64, i64)) {
    let requested = (
        node.non_zero_requested.0 + asks.0,
        node.non_zero_requested.1 + asks.1,
    );
    (
        requested,
        (node.allocatable.milli_cpu, node.allocatable.memory),
    )
}

/// LeastAllocated: `(allocatable − requested) × 100 / allocatable` per resource, averaged.
pub fn least_allocated(pod: &Pod, node: &NodeInfo) -> i64 {
    least_allocated_of(asks(pod), node)
}

fn least_allocated_of(asks: (i64, i64), node: &NodeInfo) -> i64 {
    let ((cpu, memory), (cpu_cap, memory_cap)) = usage(asks, node);
    let free = |used: i64, cap: i64| {
        if cap <= 0 || used > cap {
            0
        } else {
            (cap - used) * MAX_SCORE / cap
        }
    };
    (free(cpu, cpu_cap) + free(memory, memory_cap)) / 2
}

/// BalancedAllocation: `(1 − |cpu fraction − memory fraction| / 2) × 100` (the standard
/// deviation of two fractions is half their difference).
pub fn balanced_allocation(pod: &Pod, node: &NodeInfo) -> i64 {
    balanced_allocation_of(asks(pod), node)
}

fn balanced_allocation_of(asks: (i64, i64), node: &NodeInfo) -> i64 {
    let ((cpu, memory), (cpu_cap, memory_cap)) = usage(asks, node);
    let fraction = |used: i64, cap: i64| {
        if cap <= 0 {
            1.0
        } else {
            (used as f64 / cap as f64).min(1.0)
        }
    };
    let spread = (fraction(cpu, cpu_cap) - fraction(memory, memory_cap)).abs() / 2.0;
    ((1.0 - spread) * MAX_SCORE as f64) as i64
}

/// Untolerated `PreferNoSchedule` taints (TaintToleration's raw score: fewer is better).
pub fn intolerable_taints(pod: &Pod, node: &NodeInfo) -> i64 {
    let count = node
        .taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !tolerates(pod, t))
        .count();
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The summed weights of the pod's preferred node-affinity terms the node matches.
pub fn preferred_affinity(pod: &Pod, node: &NodeInfo) -> i64 {
    let terms = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .clone()
        })
        .unwrap_or_default();
    terms
        .iter()
        .filter(|term| {
            let mut probe = pod.clone();
            let affinity = as_required(&term.preference);
            if let Some(spec) = probe.spec.as_mut() {
                spec.node_selector = None;
                spec.affinity = Some(Box::new(affinity));
            }
            matches!(
                crate::plugins::node_affinity::filter(&probe, node),
                crate::framework::Status::Fits
            )
        })
        .map(|term| i64::from(term.weight))
        .sum()
}

/// A preferred term as a required one, to reuse NodeAffinity's matching.
fn as_required(
    term: &k8s_openapi::api::core::v1::NodeSelectorTerm,
) -> k8s_openapi::api::core::v1::Affinity {
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector};
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![term.clone()],
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// Scales raw scores to 0–100 by the largest (`DefaultNormalizeScore`); `reverse` for scores
/// where less is better.
pub fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for score in scores.iter_mut() {
        *score = if max == 0 {
            if reverse { MAX_SCORE } else { 0 }
        } else {
            let scaled = *score * MAX_SCORE / max;
            if reverse { MAX_SCORE - scaled } else { scaled }
        };
    }
}

/// The weighted total of every scoring plugin for each of the `feasible` nodes, in their order
/// (`all` is every node: spreading and inter-pod affinity count pods cluster-wide).
pub fn score_nodes(
    pod: &Pod,
    all: &[NodeInfo],
    feasible: &[&NodeInfo],
    default_selector: Option<&Selector>,
) -> Vec<i64> {
    let mut taints: Vec<i64> = feasible
        .iter()
        .map(|n| intolerable_taints(pod, n))
        .collect();
    normalize(&mut taints, true);
    let mut affinity: Vec<i64> = feasible
        .iter()
        .map(|n| preferred_affinity(pod, n))
        .collect();
    normalize(&mut affinity, false);
    let spread = pod_topology_spread::score(pod, all, feasible, default_selector);
    let pod_affinity = inter_pod_affinity::score(pod, all, feasible);
    let asks = asks(pod);
    feasible
        .iter()
        .enumerate()
        .map(|(i, n)| {
            least_allocated_of(asks, n)
                + balanced_allocation_of(asks, n)
                + 3 * taints[i]
                + 2 * affinity[i]
                + 2 * spread[i]
                + 2 * pod_affinity[i]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    fn node(name: &str, cpu: &str, memory: &str, extra_spec: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"zone": name}},
            "spec": extra_spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}
        }))
        .unwrap()
    }

    fn pod(cpu: &str, memory: &str) -> Pod {
        serde_json::from_value(json!({"spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}))
        .unwrap()
    }

    #[test]
    fn least_allocated_and_balanced_allocation_as_kubernetes_computes_them() {
        // 4 cpu, 8 Gi; the pod asks 1 cpu and 2 Gi: 75 % of each left, perfectly balanced.
        let n = node("a", "4", "8Gi", json!({}));
        let info = NodeInfo::new(&n, &[]);
        let p = pod("1", "2Gi");
        assert_eq!(least_allocated(&p, &info), 75);
        assert_eq!(balanced_allocation(&p, &info), 100);
        // Unbalanced: 50 % cpu, 12.5 % memory → spread 0.1875 → 81.
        let q = pod("2", "1Gi");
        assert_eq!(balanced_allocation(&q, &info), 81);
        // Zero requests count as 100m and 200Mi.
        let empty: Pod =
            serde_json::from_value(json!({"spec": {"containers": [{"name": "c"}]}})).unwrap();
        assert_eq!(
            least_allocated(&empty, &info),
            (3900 * 100 / 4000 + (8192 - 200) * 100 / 8192) / 2
        );
    }

    #[test]
    fn the_emptier_node_and_the_untainted_preferred_one_win() {
        let busy = node("busy", "4", "8Gi", json!({}));
        let idle = node("idle", "4", "8Gi", json!({}));
        let tainted = node(
            "tainted",
            "4",
            "8Gi",
            json!({"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}),
        );
        let running = pod("3", "6Gi");
        let p = pod("500m", "1Gi");
        let infos = [
            NodeInfo::new(&busy, &[&running]),
            NodeInfo::new(&idle, &[]),
            NodeInfo::new(&tainted, &[]),
        ];
        let all = infos.to_vec();
        let feasible: Vec<&NodeInfo> = infos.iter().collect();
        let scores = score_nodes(&p, &all, &feasible, None);
        assert!(scores[1] > scores[0], "{scores:?}");
        assert!(scores[1] > scores[2], "{scores:?}");
        // A preferred term for zone=tainted adds its weight, normalized (100) × 2.
        let mut prefer = p.clone();
        prefer.spec.as_mut().unwrap().affinity = Some(
            serde_json::from_value(json!({"nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 30, "preference": {
                    "matchExpressions": [{"key": "zone", "operator": "In", "values": ["tainted"]}]}}]}}))
            .unwrap(),
        );
        let preferred = score_nodes(&prefer, &all, &feasible, None);
        assert_eq!(preferred[2] - scores[2], 200, "{preferred:?}");
        assert_eq!(preferred[1], scores[1]);
    }

    #[test]
    fn normalize_scales_by_the_largest() {
        let mut raw = [0, 5, 10];
        normalize(&mut raw, false);
        assert_eq!(raw, [0, 50, 100]);
        let mut raw = [0, 1, 2];
        normalize(&mut raw, true);
        assert_eq!(raw, [100, 50, 0]);
        let mut zeros = [0, 0];
        normalize(&mut zeros, true);
        assert_eq!(zeros, [100, 100]);
    }
}
