//! One scheduling cycle, pure over the cache's nodes: pre-filter once, filter nodes (stopping
//! once enough feasible ones are found, kube-scheduler's `percentageOfNodesToScore`), score the
//! feasible ones, pick the best. When no node fits, the [`FitError`] says why in the words users
//! know, and [`preempt`] looks for lower-priority pods whose eviction would make room.

use std::collections::BTreeSet;
use std::sync::Arc;

use api_types::labels::Selector;
use runtime::pod::Pod;

use crate::framework::{NodeInfo, failure_message, uid_of};
use crate::plugins::{self, PreFilter, Rejection};
use crate::score;

/// kube-scheduler's `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// kube-scheduler's `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// How many feasible nodes to find before scoring (`numFeasibleNodesToFind`): all of them below
/// 100 nodes; else `percentage` % of the nodes (0: adaptive, 50 − nodes/125, at least 5), and
/// never fewer than 100.
pub fn feasible_nodes_to_find(nodes: usize, percentage: u32) -> usize {
    if nodes < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return nodes;
    }
    let percentage = if percentage == 0 {
        50usize
            .saturating_sub(nodes / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE)
    } else {
        percentage as usize
    };
    (nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Where a pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    /// Nodes filtered and found feasible in this cycle.
    pub evaluated: usize,
    pub feasible: usize,
}

/// Why no node fits: one rejection per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub nodes: usize,
    pub rejections: Vec<(String, Rejection)>,
    /// What preemption found (kube's `PostFilterMsg`), appended to the message.
    pub post_filter: Option<String>,
}

impl FitError {
    /// `0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.` and, after
    /// preemption was tried, `preemption: …`.
    pub fn message(&self) -> String {
        let reasons: Vec<Vec<String>> = self
            .rejections
            .iter()
            .map(|(_, r)| r.reasons.clone())
            .collect();
        let mut message = failure_message(self.nodes, &reasons);
        if let Some(post) = &self.post_filter {
            message.push(' ');
            message.push_str(post);
        }
        message
    }

    /// The plugins that rejected some node (for the queue's event-driven requeue).
    pub fn rejected_by(&self) -> BTreeSet<String> {
        self.rejections
            .iter()
            .map(|(_, r)| r.plugin.to_owned())
            .collect()
    }
}

/// The cycle's tunables.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// `percentageOfNodesToScore`; 0 is adaptive.
    pub percentage_of_nodes_to_score: u32,
}

/// Finds the best node for `pod` among `nodes`, starting the search at `*start` (rotated each
/// cycle so every node gets its turn, as kube-scheduler's `nextStartNodeIndex`).
pub fn schedule(
    pod: &Pod,
    nodes: &[NodeInfo],
    start: &mut usize,
    settings: Settings,
    default_selector: Option<&Selector>,
) -> Result<Placement, FitError> {
    let total = nodes.len();
    if total == 0 {
        return Err(FitError {
            nodes: 0,
            rejections: Vec::new(),
            post_filter: None,
        });
    }
    let pre = PreFilter::compute(pod, nodes);
    let wanted = feasible_nodes_to_find(total, settings.percentage_of_nodes_to_score);
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(wanted.min(total));
    let mut rejections = Vec::new();

    // A nominated node (preemption made room there) is tried first.
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .and_then(|name| nodes.iter().find(|n| n.name() == name));
    if let Some(node) = nominated
        && plugins::filter_node(pod, node, &pre).is_ok()
    {
        return Ok(Placement {
            node: node.name().to_owned(),
            evaluated: 1,
            feasible: 1,
        });
    }

    let begin = *start % total;
    let mut evaluated = 0;
    for offset in 0..total {
        let node = &nodes[(begin + offset) % total];
        evaluated += 1;
        match plugins::filter_node(pod, node, &pre) {
            Ok(()) => {
                feasible.push(node);
                if feasible.len() >= wanted {
                    break;
                }
            }
            Err(rejection) => rejections.push((node.name().to_owned(), rejection)),
        }
    }
    *start = (begin + evaluated) % total;
    if feasible.is_empty() {
        return Err(FitError {
            nodes: total,
            rejections,
            post_filter: None,
        });
    }
    let best = if feasible.len() == 1 {
        0
    } else {
        let scores = score::score_nodes(pod, nodes, &feasible, default_selector);
        select_host(&scores, uid_of(pod))
    };
    Ok(Placement {
        node: feasible[best].name().to_owned(),
        evaluated,
        feasible: feasible.len(),
    })
}

/// The index of the highest score; ties go to one of the tied nodes chosen by the pod's uid, so
/// equal nodes share the load and a retry of the same pod is stable.
fn select_host(scores: &[i64], uid: &str) -> usize {
    let best = scores.iter().copied().max().unwrap_or(0);
    let tied: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] == best).collect();
    let hash = uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    tied[(hash % tied.len() as u64) as usize]
}

/// The pod's priority (`spec.priority`, resolved by the apiserver from its PriorityClass).
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// What preemption decided: evict `victims` from `node` so the pod fits there.
#[derive(Debug, Clone)]
pub struct Preemption {
    pub node: String,
    pub victims: Vec<Arc<Pod>>,
}

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling.";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod.";

/// DefaultPreemption's PostFilter: on each node the pod was rejected from for a reason eviction
/// can fix, remove every lower-priority pod; if the pod then fits, give back as many of them as
/// still leave room, highest priority first (the rest are the victims). Of the nodes where this
/// works, pick the one whose most important victim matters least, then the smallest sum of
/// victim priorities, then the fewest victims. Otherwise say why, in kube's words.
///
/// Differences from kube-scheduler, deliberate: PodDisruptionBudgets are not consulted (Ferry
/// serves none), and the pod's pre-filter state (topology spread, inter-pod affinity) is
/// recomputed on the node without the victims rather than updated incrementally.
pub fn preempt(pod: &Pod, nodes: &[NodeInfo], error: &FitError) -> Result<Preemption, String> {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        .unwrap_or("PreemptLowerPriority");
    if policy == "Never" {
        return Err("preemption: not eligible due to preemptionPolicy=Never.".to_owned());
    }
    let mine = priority(pod);
    let mut reasons: Vec<Vec<String>> = Vec::new();
    let mut best: Option<((i32, i64, usize), Preemption)> = None;
    for (name, rejection) in &error.rejections {
        if !rejection.resolvable {
            reasons.push(vec![NOT_HELPFUL.to_owned()]);
            continue;
        }
        let Some(node) = nodes.iter().find(|n| n.name() == name) else {
            continue;
        };
        match victims_on(pod, mine, node, nodes) {
            Some(victims) => {
                let highest = victims
                    .iter()
                    .map(|v| priority(v))
                    .max()
                    .unwrap_or(i32::MIN);
                let sum: i64 = victims.iter().map(|v| i64::from(priority(v))).sum();
                let rank = (highest, sum, victims.len());
                if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                    best = Some((
                        rank,
                        Preemption {
                            node: name.clone(),
                            victims,
                        },
                    ));
                }
            }
            None => reasons.push(vec![NO_VICTIMS.to_owned()]),
        }
    }
    match best {
        Some((_, preemption)) => Ok(preemption),
        None => Err(format!(
            "preemption: {}",
            failure_message(error.nodes, &reasons)
        )),
    }
}

/// The fewest pods below `mine` to evict from `node` so `pod` fits, or None.
fn victims_on(pod: &Pod, mine: i32, node: &NodeInfo, nodes: &[NodeInfo]) -> Option<Vec<Arc<Pod>>> {
    let mut lower: Vec<Arc<Pod>> = node
        .pods
        .iter()
        .filter(|p| priority(p) < mine)
        .cloned()
        .collect();
    if lower.is_empty() {
        return None;
    }
    let mut trial = node.clone();
    for victim in &lower {
        trial.remove_pod(uid_of(victim));
    }
    let fits = |trial: &NodeInfo| {
        let cluster: Vec<NodeInfo> = nodes
            .iter()
            .map(|n| {
                if n.name() == trial.name() {
                    trial.clone()
                } else {
                    n.clone()
                }
            })
            .collect();
        let pre = PreFilter::compute(pod, &cluster);
        plugins::filter_node(pod, trial, &pre).is_ok()
    };
    if !fits(&trial) {
        return None;
    }
    // Reprieve: most important first, keep every pod that still leaves room.
    lower.sort_by_key(|p| std::cmp::Reverse(priority(p)));
    let mut victims = Vec::new();
    for candidate in lower {
        trial.add_pod(Arc::clone(&candidate));
        if !fits(&trial) {
            trial.remove_pod(uid_of(&candidate));
            victims.push(candidate);
        }
    }
    Some(victims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    fn node(name: &str, cpu: &str, extra: Value) -> Node {
        let mut n = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": "32Gi", "pods": "110"}}
        });
        if let (Value::Object(n), Value::Object(e)) = (&mut n, extra) {
            n.extend(e);
        }
        serde_json::from_value(n).unwrap()
    }

    fn pod(uid: &str, cpu: &str, priority: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": uid, "namespace": "default", "uid": uid},
            "spec": {"priority": priority, "containers": [
                {"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn adaptive_percentage_of_nodes_as_kube_scheduler() {
        assert_eq!(feasible_nodes_to_find(50, 0), 50);
        assert_eq!(feasible_nodes_to_find(99, 0), 99);
        // 50 − 1000/125 = 42 %.
        assert_eq!(feasible_nodes_to_find(1000, 0), 420);
        // 5000 nodes: 50 − 40 = 10 %.
        assert_eq!(feasible_nodes_to_find(5000, 0), 500);
        // Very large: never below 5 %.
        assert_eq!(feasible_nodes_to_find(100_000, 0), 5000);
        // Configured, and never fewer than 100.
        assert_eq!(feasible_nodes_to_find(5000, 1), 100);
        assert_eq!(feasible_nodes_to_find(5000, 30), 1500);
        assert_eq!(feasible_nodes_to_find(5000, 100), 5000);
    }

    #[test]
    fn the_search_stops_early_and_rotates_over_the_nodes() {
        let nodes: Vec<NodeInfo> = (0..1000)
            .map(|i| NodeInfo::new(&node(&format!("n{i:04}"), "4", json!({})), &[]))
            .collect();
        let mut start = 0;
        let first = schedule(
            &pod("p", "1", 0),
            &nodes,
            &mut start,
            Settings::default(),
            None,
        )
        .unwrap();
        assert_eq!((first.evaluated, first.feasible), (420, 420));
        assert_eq!(start, 420);
        let second = schedule(
            &pod("q", "1", 0),
            &nodes,
            &mut start,
            Settings::default(),
            None,
        )
        .unwrap();
        assert_eq!(start, 840);
        let n: usize = second.node[1..].parse().unwrap();
        assert!((420..840).contains(&n), "{}", second.node);
    }

    #[test]
    fn a_pod_that_fits_nowhere_gets_the_users_message_and_preemption_says_why() {
        let tainted = node(
            "c",
            "4",
            json!({"spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}}),
        );
        let full = pod("low", "3", 0);
        let nodes = vec![
            NodeInfo::new(&node("a", "4", json!({})), &[&full]),
            NodeInfo::new(&node("b", "4", json!({})), &[&full]),
            NodeInfo::new(&tainted, &[]),
        ];
        let mut start = 0;
        let error = schedule(
            &pod("p", "2", 0),
            &nodes,
            &mut start,
            Settings::default(),
            None,
        )
        .unwrap_err();
        assert_eq!(
            error.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient cpu."
        );
        assert_eq!(
            error.rejected_by(),
            BTreeSet::from(["NodeResourcesFit".to_owned(), "TaintToleration".to_owned()])
        );
        // Same priority: nothing to evict.
        let post = preempt(&pod("p", "2", 0), &nodes, &error).unwrap_err();
        assert_eq!(
            post,
            "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling., 2 No preemption victims found for incoming pod.."
        );
        let mut never = pod("p", "2", 100);
        never.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        assert_eq!(
            preempt(&never, &nodes, &error).unwrap_err(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }

    #[test]
    fn preemption_evicts_the_fewest_and_least_important_pods() {
        // a: two 1-cpu pods of priority 5 and one 2-cpu pod of priority 1; b: one 3-cpu pod of
        // priority 50. A 2-cpu pod of priority 100 needs 2 cpu: on a, evicting the priority-1 pod
        // suffices (the others are given back); on b the victim would matter more.
        let a1 = pod("a1", "1", 5);
        let a2 = pod("a2", "1", 5);
        let a3 = pod("a3", "2", 1);
        let b1 = pod("b1", "3", 50);
        let nodes = vec![
            NodeInfo::new(&node("a", "4", json!({})), &[&a1, &a2, &a3]),
            NodeInfo::new(&node("b", "4", json!({})), &[&b1]),
        ];
        let urgent = pod("urgent", "2", 100);
        let mut start = 0;
        let error = schedule(&urgent, &nodes, &mut start, Settings::default(), None).unwrap_err();
        let preemption = preempt(&urgent, &nodes, &error).unwrap();
        assert_eq!(preemption.node, "a");
        let victims: Vec<&str> = preemption.victims.iter().map(|v| uid_of(v)).collect();
        assert_eq!(victims, ["a3"]);
        // Pods of higher or equal priority are never victims.
        let modest = pod("modest", "2", 5);
        let error = schedule(&modest, &nodes, &mut start, Settings::default(), None).unwrap_err();
        let preemption = preempt(&modest, &nodes, &error).unwrap();
        assert_eq!(preemption.node, "a");
        assert_eq!(preemption.victims.len(), 1);
        assert_eq!(uid_of(&preemption.victims[0]), "a3");
    }

    #[test]
    fn a_nominated_node_is_tried_first() {
        let nodes: Vec<NodeInfo> = ["a", "b", "c"]
            .iter()
            .map(|n| NodeInfo::new(&node(n, "4", json!({})), &[]))
            .collect();
        let mut p = pod("p", "1", 0);
        p.status = Some(serde_json::from_value(json!({"nominatedNodeName": "c"})).unwrap());
        let mut start = 0;
        let placed = schedule(&p, &nodes, &mut start, Settings::default(), None).unwrap();
        assert_eq!(placed.node, "c");
    }
}
