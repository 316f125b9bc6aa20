//! `PodTopologySpread`: spreads a group of pods evenly over topology domains (zones, nodes,
//! racks…) as the pod's `topologySpreadConstraints` ask, as kube-scheduler 1.33's plugin does.
//!
//! A constraint names a node label (`topologyKey`; each of its values is a domain), a
//! `labelSelector` (plus `matchLabelKeys`) picking the group among the pods of the pod's own
//! namespace, and a `maxSkew`.
//!
//! - **Filter** (`whenUnsatisfiable: DoNotSchedule`). Putting the pod in a node's domain must
//!   keep `pods of the group there + 1 (when the pod is in its own group) − the global minimum
//!   ≤ maxSkew`. Example: zones spread 3/1/1 with maxSkew 1 admit zone 2 or 3 (1 + 1 − 1 = 1),
//!   not zone 1 (3 + 1 − 1 = 3). The global minimum is the fewest pods in any eligible domain,
//!   or 0 while there are fewer eligible domains than `minDomains`. [`pre_filter`] counts once
//!   per pod over every node; [`filter`] is then a hash lookup per constraint.
//! - **Score** (`ScheduleAnyway`; for a pod with no constraints at all, the system defaults —
//!   hostname maxSkew 3, zone maxSkew 5 — over the pods its Services, ReplicaSets… select).
//!   Fewer pods of the group in a node's domains score higher; see [`score`].
//!
//! Which nodes count: only nodes carrying every constraint's topology key, that pass the pod's
//! nodeSelector and required node affinity (`nodeAffinityPolicy: Honor`, the default) and, with
//! `nodeTaintsPolicy: Honor` (default `Ignore`), whose NoSchedule/NoExecute taints it tolerates.
//! Pods being deleted are not counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use api_types::labels::{LabelSelectorError, Selector, selector_from_label_selector};
use runtime::pod::Pod;

use crate::framework::{NodeInfo, Status};
use crate::plugins::{node_affinity, taint_toleration};
use crate::score::MAX_SCORE;

pub const NAME: &str = "PodTopologySpread";
pub const REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
pub const REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";

/// kube-scheduler's `systemDefaultConstraints` (topologyKey, maxSkew), both `ScheduleAnyway`.
const SYSTEM_DEFAULT_CONSTRAINTS: [(&str, i64); 2] = [(LABEL_HOSTNAME, 3), (LABEL_ZONE, 5)];

/// One `TopologySpreadConstraint` with its selector parsed and its defaults applied.
#[derive(Debug, Clone)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Selector,
    min_domains: i64,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

/// The pod's constraints with `whenUnsatisfiable == action`, in order (Kubernetes'
/// `filterTopologySpreadConstraints`).
fn constraints(pod: &Pod, action: &str) -> Result<Vec<Constraint>, LabelSelectorError> {
    let pod_labels = labels_of(pod);
    let declared = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or_default();
    let mut out = Vec::new();
    for c in declared.iter().filter(|c| c.when_unsatisfiable == action) {
        let mut selector = selector_from_label_selector(c.label_selector.as_ref())?;
        // matchLabelKeys: the pod's own values of these keys are ANDed into the selector, so
        // each revision of a Deployment spreads on its own (`pod-template-hash`). A missing
        // labelSelector has no requirements, so it then selects by these keys alone, as
        // Kubernetes' `mergeLabelSetWithSelector` does.
        let pinned: BTreeMap<String, String> = c
            .match_label_keys
            .iter()
            .flatten()
            .filter_map(|k| pod_labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        if !pinned.is_empty() {
            let requirements = Selector::from_set(&pinned)
                .requirements()
                .iter()
                .chain(selector.requirements())
                .cloned()
                .collect();
            selector = Selector::from_requirements(requirements);
        }
        out.push(Constraint {
            max_skew: i64::from(c.max_skew),
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: i64::from(c.min_domains.unwrap_or(1)),
            honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        });
    }
    Ok(out)
}

fn has_own_constraints(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .is_some_and(|c| !c.is_empty())
}

fn labels_of(pod: &Pod) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

fn namespace_of(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or_default()
}

/// `nodeLabelsMatchSpreadConstraints`: the node carries every constraint's topology key.
fn has_all_keys(node: &NodeInfo, constraints: &[Constraint]) -> bool {
    let labels = node.labels();
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// Whether a node's domains count for the pod under each constraint's inclusion policies,
/// computed at most once per node (`matchNodeInclusionPolicies`).
struct Inclusion<'a> {
    pod: &'a Pod,
    node: &'a NodeInfo,
    affinity: Option<bool>,
    taints: Option<bool>,
}

impl<'a> Inclusion<'a> {
    fn new(pod: &'a Pod, node: &'a NodeInfo) -> Inclusion<'a> {
        Inclusion {
            pod,
            node,
            affinity: None,
            taints: None,
        }
    }

    fn includes(&mut self, c: &Constraint) -> bool {
        let (pod, node) = (self.pod, self.node);
        (!c.honor_node_affinity
            || *self
                .affinity
                .get_or_insert_with(|| node_affinity::filter(pod, node) == Status::Fits))
            && (!c.honor_node_taints
                || *self
                    .taints
                    .get_or_insert_with(|| taint_toleration::filter(pod, node) == Status::Fits))
    }
}

/// `countPodsMatchSelector`: pods of `namespace` matching `selector`, skipping pods being
/// deleted (they are on their way out; counting them would block their replacements).
fn count_matching(pods: &[Arc<Pod>], selector: &Selector, namespace: &str) -> i64 {
    let n = pods
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && namespace_of(p) == namespace
                && selector.matches(labels_of(p))
        })
        .count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One `DoNotSchedule` constraint with what [`filter`] needs to judge a node.
#[derive(Debug, Clone)]
struct Spread {
    constraint: Constraint,
    /// Pods of the group per eligible domain (topology value); a domain with none is present
    /// with 0.
    counts: HashMap<String, i64>,
    /// The global minimum the skew is measured from.
    min_match: i64,
    /// 1 when the pod is in its own group (it adds one to the domain it lands in).
    self_match: i64,
}

/// What [`pre_filter`] computes once per pod for [`filter`] to use on every node.
#[derive(Debug, Clone, Default)]
pub struct PreFilterState {
    spreads: Vec<Spread>,
    /// Why the pod's constraints cannot be read (an invalid labelSelector): every node is
    /// rejected with it, as Kubernetes fails the pod's scheduling attempt with it.
    error: Option<String>,
}

impl PreFilterState {
    /// True when the pod has no `DoNotSchedule` constraint: [`filter`] admits every node
    /// (kube-scheduler's `Skip`).
    pub fn is_empty(&self) -> bool {
        self.spreads.is_empty() && self.error.is_none()
    }
}

/// Counts, for each of `pod`'s `DoNotSchedule` constraints, the pods of its group in each
/// domain over all `nodes` (Kubernetes' `calPreFilterState`). Costs O(nodes × pods on them)
/// when the pod has such constraints and nothing otherwise.
pub fn pre_filter(pod: &Pod, nodes: &[NodeInfo]) -> PreFilterState {
    if !has_own_constraints(pod) {
        // The system default constraints are all ScheduleAnyway: nothing to filter.
        return PreFilterState::default();
    }
    let constraints = match constraints(pod, DO_NOT_SCHEDULE) {
        Ok(c) => c,
        Err(e) => {
            return PreFilterState {
                spreads: Vec::new(),
                error: Some(format!("get constraints from pod: {e}")),
            };
        }
    };
    if constraints.is_empty() {
        return PreFilterState::default();
    }
    let namespace = namespace_of(pod);
    let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
    for node in nodes {
        if !has_all_keys(node, &constraints) {
            continue;
        }
        let mut inclusion = Inclusion::new(pod, node);
        for (c, domains) in constraints.iter().zip(counts.iter_mut()) {
            if !inclusion.includes(c) {
                continue;
            }
            let value = &node.labels()[&c.topology_key];
            let n = count_matching(&node.pods, &c.selector, namespace);
            match domains.get_mut(value) {
                Some(count) => *count += n,
                None => {
                    domains.insert(value.clone(), n);
                }
            }
        }
    }
    let pod_labels = labels_of(pod);
    let spreads = constraints
        .into_iter()
        .zip(counts)
        .map(|(constraint, counts)| {
            // With no eligible domain Kubernetes' critical path keeps MaxInt32; minDomains (≥ 1)
            // then makes the minimum 0 anyway.
            let fewest = counts
                .values()
                .copied()
                .min()
                .unwrap_or(i64::from(i32::MAX));
            let domains = i64::try_from(counts.len()).unwrap_or(i64::MAX);
            let min_match = if domains < constraint.min_domains {
                0
            } else {
                fewest
            };
            let self_match = i64::from(constraint.selector.matches(pod_labels));
            Spread {
                constraint,
                counts,
                min_match,
                self_match,
            }
        })
        .collect();
    PreFilterState {
        spreads,
        error: None,
    }
}

/// Whether placing `pod` on `node` keeps every `DoNotSchedule` constraint within its maxSkew.
/// O(constraints); `state` comes from [`pre_filter`] for this pod.
pub fn filter(_pod: &Pod, node: &NodeInfo, state: &PreFilterState) -> Status {
    if let Some(error) = &state.error {
        return Status::Unschedulable(vec![error.clone()]);
    }
    let labels = node.labels();
    for spread in &state.spreads {
        let c = &spread.constraint;
        let Some(value) = labels.get(&c.topology_key) else {
            return Status::Unschedulable(vec![REASON_NODE_LABEL_NOT_MATCH.into()]);
        };
        let matching = spread.counts.get(value).copied().unwrap_or(0);
        if matching + spread.self_match - spread.min_match > c.max_skew {
            return Status::Unschedulable(vec![REASON_CONSTRAINTS_NOT_MATCH.into()]);
        }
    }
    Status::Fits
}

/// The soft constraints to score with: the pod's `ScheduleAnyway` ones or, when it declares no
/// constraint at all, the system defaults over `default_selector` (none when that is missing
/// or selects everything, as `buildDefaultConstraints` skips an empty selector).
fn score_constraints(
    pod: &Pod,
    default_selector: Option<&Selector>,
) -> Result<Vec<Constraint>, LabelSelectorError> {
    if has_own_constraints(pod) {
        return constraints(pod, SCHEDULE_ANYWAY);
    }
    let Some(selector) = default_selector.filter(|s| !s.is_everything()) else {
        return Ok(Vec::new());
    };
    Ok(SYSTEM_DEFAULT_CONSTRAINTS
        .iter()
        .map(|&(key, max_skew)| Constraint {
            max_skew,
            topology_key: key.to_owned(),
            selector: selector.clone(),
            min_domains: 1,
            honor_node_affinity: true,
            honor_node_taints: false,
        })
        .collect())
}

/// The final PodTopologySpread scores (0–100) of the `feasible` nodes, in their order
/// (kube-scheduler's PreScore, Score and NormalizeScore together).
///
/// Per node, each constraint whose key the node carries adds
/// `pods of the group in the node's domain × ln(domains + 2) + (maxSkew − 1)`: the logarithm
/// keeps a constraint with many small domains (hostname) from being drowned by one with a few
/// large ones (zone), and `maxSkew − 1` blunts differences the user said they tolerate. The sum
/// is rounded, then reversed and scaled: `100 × (max + min − s) / max`. Example: hostname
/// spread 2/1/0/3 over 4 nodes, maxSkew 1: raw `round(n × ln 6)` = 4/2/0/5, scores 20/60/100/0.
///
/// Domains are those of the feasible nodes; pods are counted over `all_nodes` (as in
/// [`pre_filter`]). With the pod's own constraints, nodes lacking a topology key score 0; with
/// the system defaults they are still scored on the keys they have. `default_selector` is the
/// union of the selectors of the Services, ReplicationControllers, ReplicaSets and StatefulSets
/// selecting the pod (Kubernetes' `helper.DefaultSelector`), built by the caller.
/// All zeros (no preference) when there is nothing to spread.
pub fn score(
    pod: &Pod,
    all_nodes: &[NodeInfo],
    feasible: &[&NodeInfo],
    default_selector: Option<&Selector>,
) -> Vec<i64> {
    let none = || vec![0; feasible.len()];
    if feasible.is_empty() || all_nodes.is_empty() {
        return none();
    }
    let Ok(constraints) = score_constraints(pod, default_selector) else {
        // An invalid selector already failed the pod in pre_filter.
        return none();
    };
    if constraints.is_empty() {
        return none();
    }
    // Only the pod's own constraints require every key, so that nodes without a zone label
    // still get hostname spreading from the defaults.
    let require_all_keys = has_own_constraints(pod);
    let ignored: Vec<bool> = feasible
        .iter()
        .map(|n| require_all_keys && !has_all_keys(n, &constraints))
        .collect();

    // The domains of the feasible nodes, each with its count to come. Hostname domains are one
    // node each and are counted per node below instead.
    let mut counts: Vec<HashMap<&str, i64>> = vec![HashMap::new(); constraints.len()];
    for (node, _) in feasible.iter().zip(&ignored).filter(|(_, i)| !**i) {
        for (c, domains) in constraints.iter().zip(counts.iter_mut()) {
            if c.topology_key != LABEL_HOSTNAME {
                let value = node
                    .labels()
                    .get(&c.topology_key)
                    .map_or("", String::as_str);
                domains.entry(value).or_insert(0);
            }
        }
    }
    let scored_nodes = ignored.iter().filter(|i| !**i).count();
    let weights: Vec<f64> = constraints
        .iter()
        .zip(&counts)
        .map(|(c, domains)| {
            let size = if c.topology_key == LABEL_HOSTNAME {
                scored_nodes
            } else {
                domains.len()
            };
            // size ≤ 5,000 nodes: exact in f64.
            ((size + 2) as f64).ln()
        })
        .collect();

    let namespace = namespace_of(pod);
    for node in all_nodes {
        if require_all_keys && !has_all_keys(node, &constraints) {
            continue;
        }
        let mut inclusion = Inclusion::new(pod, node);
        for (c, domains) in constraints.iter().zip(counts.iter_mut()) {
            if c.topology_key == LABEL_HOSTNAME || !inclusion.includes(c) {
                continue;
            }
            let value = node
                .labels()
                .get(&c.topology_key)
                .map_or("", String::as_str);
            if let Some(count) = domains.get_mut(value) {
                *count += count_matching(&node.pods, &c.selector, namespace);
            }
        }
    }

    let raw: Vec<Option<i64>> = feasible
        .iter()
        .zip(&ignored)
        .map(|(node, &ignored)| {
            if ignored {
                return None;
            }
            let mut sum = 0.0;
            for ((c, domains), weight) in constraints.iter().zip(&counts).zip(&weights) {
                let Some(value) = node.labels().get(&c.topology_key) else {
                    continue;
                };
                let matching = if c.topology_key == LABEL_HOSTNAME {
                    count_matching(&node.pods, &c.selector, namespace)
                } else {
                    domains.get(value.as_str()).copied().unwrap_or(0)
                };
                // Counts and skews are small integers: exact in f64.
                sum += matching as f64 * weight + (c.max_skew - 1) as f64;
            }
            Some(sum.round() as i64)
        })
        .collect();

    // NormalizeScore: max starts at 0 and min at i64::MAX, over the scored nodes only.
    let max = raw.iter().flatten().copied().fold(0, i64::max);
    let min = raw.iter().flatten().copied().min().unwrap_or(i64::MAX);
    raw.into_iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => MAX_SCORE,
            Some(s) => MAX_SCORE * (max + min - s) / max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    fn node(name: &str, labels: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    /// A pod in `default` with these labels and spec fields.
    fn pod(labels: Value, spec: Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([]);
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "labels": labels},
            "spec": spec
        }))
        .unwrap()
    }

    fn foo() -> Pod {
        pod(json!({"foo": ""}), json!({}))
    }

    /// A `foo` pod with one constraint on `key` selecting `foo` pods.
    fn spreading(max_skew: i32, key: &str, when: &str, extra: Value) -> Pod {
        let mut c = json!({"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}});
        if let (Value::Object(c), Value::Object(extra)) = (&mut c, extra) {
            c.extend(extra);
        }
        pod(
            json!({"foo": ""}),
            json!({"topologySpreadConstraints": [c]}),
        )
    }

    /// NodeInfos for `nodes`, each holding the pods placed on it by name.
    fn cluster(nodes: &[Node], pods: &[(&str, Pod)]) -> Vec<NodeInfo> {
        nodes
            .iter()
            .map(|n| {
                let here: Vec<&Pod> = pods
                    .iter()
                    .filter(|(name, _)| Some(*name) == n.metadata.name.as_deref())
                    .map(|(_, p)| p)
                    .collect();
                NodeInfo::new(n, &here)
            })
            .collect()
    }

    fn fits(pod: &Pod, nodes: &[NodeInfo]) -> Vec<bool> {
        let state = pre_filter(pod, nodes);
        nodes
            .iter()
            .map(|n| filter(pod, n, &state) == Status::Fits)
            .collect()
    }

    fn zones() -> Vec<Node> {
        vec![
            node("a", json!({"zone": "z1", "kubernetes.io/hostname": "a"})),
            node("b", json!({"zone": "z1", "kubernetes.io/hostname": "b"})),
            node("x", json!({"zone": "z2", "kubernetes.io/hostname": "x"})),
            node("y", json!({"zone": "z2", "kubernetes.io/hostname": "y"})),
        ]
    }

    #[test]
    fn skew_is_permitted_or_violated_across_zones() {
        // z1 holds 3 foo pods (a: 2, b: 1), z2 holds 1 (y).
        let placed = [("a", foo()), ("a", foo()), ("b", foo()), ("y", foo())];
        let nodes = cluster(&zones(), &placed);
        let bar = |max_skew: i32| {
            let mut p = spreading(max_skew, "zone", DO_NOT_SCHEDULE, json!({}));
            p.metadata.labels = Some([("bar".to_owned(), String::new())].into());
            p
        };
        for (name, pod, want) in [
            // z1: 3 + 1 − 1 = 3 > 1; z2: 1 + 1 − 1 = 1.
            (
                "maxSkew 1",
                spreading(1, "zone", DO_NOT_SCHEDULE, json!({})),
                [false, false, true, true],
            ),
            (
                "maxSkew 3 tolerates 3",
                spreading(3, "zone", DO_NOT_SCHEDULE, json!({})),
                [true; 4],
            ),
            // Not in its own group: z1 is 3 − 1 = 2 > 1 still, z2 0.
            ("pod outside its group", bar(1), [false, false, true, true]),
            (
                "ScheduleAnyway never filters",
                spreading(1, "zone", SCHEDULE_ANYWAY, json!({})),
                [true; 4],
            ),
            // hostname: a 2, b 1, x 0, y 1; minimum 0.
            (
                "per node",
                spreading(1, LABEL_HOSTNAME, DO_NOT_SCHEDULE, json!({})),
                [false, false, true, false],
            ),
        ] {
            assert_eq!(fits(&pod, &nodes), want, "{name}");
        }
    }

    #[test]
    fn a_node_without_the_topology_key_is_rejected_as_missing_label() {
        let nodes = cluster(
            &[node("a", json!({"zone": "z1"})), node("b", json!({}))],
            &[],
        );
        let p = spreading(1, "zone", DO_NOT_SCHEDULE, json!({}));
        let state = pre_filter(&p, &nodes);
        assert_eq!(filter(&p, &nodes[0], &state), Status::Fits);
        assert_eq!(
            filter(&p, &nodes[1], &state),
            Status::Unschedulable(vec![REASON_NODE_LABEL_NOT_MATCH.into()])
        );
    }

    #[test]
    fn min_domains_counts_missing_domains_as_empty() {
        // One foo pod in each of the two zones.
        let nodes = cluster(&zones(), &[("a", foo()), ("x", foo())]);
        for (min_domains, want) in [
            // 2 domains ≥ 2: minimum 1, 1 + 1 − 1 = 1 fits.
            (2, [true; 4]),
            // 2 domains < 3: minimum 0, 1 + 1 − 0 = 2 > 1 everywhere.
            (3, [false; 4]),
        ] {
            let p = spreading(
                1,
                "zone",
                DO_NOT_SCHEDULE,
                json!({"minDomains": min_domains}),
            );
            assert_eq!(fits(&p, &nodes), want, "minDomains {min_domains}");
        }
    }

    #[test]
    fn only_nodes_the_pod_may_use_are_counted() {
        // z1: a (ssd, empty) and b (hdd, 3 foo pods); z2: x (ssd, 1 foo pod, tainted).
        let nodes = vec![
            node("a", json!({"zone": "z1", "disk": "ssd"})),
            node("b", json!({"zone": "z1", "disk": "hdd"})),
            serde_json::from_value(json!({
                "metadata": {"name": "x", "labels": {"zone": "z2", "disk": "ssd"}},
                "spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}
            }))
            .unwrap(),
        ];
        let placed = [("b", foo()), ("b", foo()), ("b", foo()), ("x", foo())];
        let nodes = cluster(&nodes, &placed);
        let on_ssd = |extra: Value| {
            let mut p = spreading(1, "zone", DO_NOT_SCHEDULE, extra);
            p.spec.as_mut().unwrap().node_selector = Some([("disk".into(), "ssd".into())].into());
            p
        };
        // Honor (default): b is not counted, so z1 = 0, z2 = 1: a fits, x (1 + 1 − 0) does not.
        let honor = on_ssd(json!({}));
        assert_eq!(fits(&honor, &nodes), [true, true, false]);
        // Ignore: z1 = 3, z2 = 1: only x fits.
        let ignore = on_ssd(json!({"nodeAffinityPolicy": "Ignore"}));
        assert_eq!(fits(&ignore, &nodes), [false, false, true]);
        // nodeTaintsPolicy Honor drops the tainted x: z2 is no longer a domain, so the
        // minimum is z1's 0 and a fits.
        let taints = on_ssd(json!({"nodeTaintsPolicy": "Honor"}));
        let state = pre_filter(&taints, &nodes);
        assert_eq!(filter(&taints, &nodes[0], &state), Status::Fits);
        assert_eq!(state.spreads[0].counts.len(), 1);
    }

    #[test]
    fn pods_being_deleted_or_in_other_namespaces_do_not_count() {
        let mut leaving = foo();
        leaving.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap());
        let mut elsewhere = foo();
        elsewhere.metadata.namespace = Some("other".into());
        let nodes = cluster(&zones(), &[("a", leaving), ("a", elsewhere)]);
        let p = spreading(1, "zone", DO_NOT_SCHEDULE, json!({}));
        assert_eq!(fits(&p, &nodes), [true; 4]);
    }

    #[test]
    fn match_label_keys_narrow_the_group_to_the_pods_own_values() {
        let revision = |hash: &str| pod(json!({"foo": "", "pod-template-hash": hash}), json!({}));
        // Two pods of revision 1 in z1; none of revision 2 anywhere.
        let nodes = cluster(&zones(), &[("a", revision("1")), ("b", revision("1"))]);
        let mut p = spreading(
            1,
            "zone",
            DO_NOT_SCHEDULE,
            json!({"matchLabelKeys": ["pod-template-hash"]}),
        );
        p.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("pod-template-hash".into(), "2".into());
        assert_eq!(fits(&p, &nodes), [true; 4]);
        let plain = spreading(1, "zone", DO_NOT_SCHEDULE, json!({}));
        assert_eq!(fits(&plain, &nodes), [false, false, true, true]);
    }

    #[test]
    fn a_pod_without_constraints_costs_nothing_and_fits_everywhere() {
        let nodes = cluster(&zones(), &[("a", foo())]);
        let state = pre_filter(&foo(), &nodes);
        assert!(state.is_empty());
        assert_eq!(fits(&foo(), &nodes), [true; 4]);
    }

    #[test]
    fn an_invalid_selector_rejects_every_node_with_the_error() {
        let p = pod(
            json!({}),
            json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Near"}]}}]}),
        );
        let nodes = cluster(&zones(), &[]);
        let Status::Unschedulable(reasons) = filter(&p, &nodes[0], &pre_filter(&p, &nodes)) else {
            panic!("an invalid selector must not fit");
        };
        assert!(
            reasons[0].starts_with("get constraints from pod: "),
            "{reasons:?}"
        );
    }

    /// Scores of the nodes named `feasible` among `nodes`.
    fn scores(
        pod: &Pod,
        nodes: &[Node],
        pods: &[(&str, Pod)],
        feasible: &[&str],
        default_selector: Option<&Selector>,
    ) -> Vec<i64> {
        let all = cluster(nodes, pods);
        let feasible: Vec<&NodeInfo> = all
            .iter()
            .filter(|n| feasible.contains(&n.name()))
            .collect();
        score(pod, &all, &feasible, default_selector)
    }

    fn hosts(names: &[&str]) -> Vec<Node> {
        names
            .iter()
            .map(|n| node(n, json!({"kubernetes.io/hostname": n})))
            .collect()
    }

    /// `n` foo pods on `node`.
    fn foos<'a>(placement: &[(&'a str, usize)]) -> Vec<(&'a str, Pod)> {
        placement
            .iter()
            .flat_map(|&(node, n)| std::iter::repeat_n((node, foo()), n))
            .collect()
    }

    /// (name, incoming pod, nodes, pods placed by node name, feasible node names, default
    /// selector, score per feasible node).
    type ScoreCase<'a> = (
        &'a str,
        Pod,
        Vec<Node>,
        Vec<(&'a str, Pod)>,
        Vec<&'a str>,
        Option<&'a Selector>,
        Vec<i64>,
    );

    #[test]
    fn scores_match_kubernetes() {
        let foo_selector = Selector::parse("foo").unwrap();
        let abcd = ["a", "b", "c", "d"];
        let hostname = |max_skew| spreading(max_skew, LABEL_HOSTNAME, SCHEDULE_ANYWAY, json!({}));
        let zone = |max_skew| spreading(max_skew, "zone", SCHEDULE_ANYWAY, json!({}));
        let both = |zone_selector: &str, host_selector: &str| {
            let c = |key: &str, sel: &str| {
                json!({"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": SCHEDULE_ANYWAY,
                    "labelSelector": {"matchExpressions": [{"key": sel, "operator": "Exists"}]}})
            };
            pod(
                json!({"foo": "", "bar": ""}),
                json!({"topologySpreadConstraints":
                    [c("zone", zone_selector), c(LABEL_HOSTNAME, host_selector)]}),
            )
        };
        let bar = || pod(json!({"bar": ""}), json!({}));
        let foobar = || pod(json!({"foo": "", "bar": ""}), json!({}));
        let mut missing_key = hosts(&["a", "x", "y"]);
        missing_key.insert(1, node("b", json!({"n": "b"})));
        let some = foos(&[("a", 4), ("b", 2), ("x", 1), ("y", 3)]);
        let feasible_abx = vec!["a", "b", "x"];
        // Kubernetes' TestPodTopologySpreadScore cases; `~n~` is a node that is not feasible,
        // `?n?` one lacking the topology key.
        #[rustfmt::skip]
        let cases: Vec<ScoreCase> = vec![
            ("no existing pods", hostname(1), hosts(&["a", "b"]), vec![],
                vec!["a", "b"], None, vec![100, 100]),
            ("2/1/0/3", hostname(1), hosts(&abcd), foos(&[("a", 2), ("b", 1), ("d", 3)]),
                abcd.to_vec(), None, vec![20, 60, 100, 0]),
            ("2/1/0/3, maxSkew 2", hostname(2), hosts(&abcd), foos(&[("a", 2), ("b", 1), ("d", 3)]),
                abcd.to_vec(), None, vec![33, 66, 100, 16]),
            ("4/3/2/1, maxSkew 3", hostname(3), hosts(&abcd), foos(&[("a", 4), ("b", 3), ("c", 2), ("d", 1)]),
                abcd.to_vec(), None, vec![44, 66, 77, 100]),
            ("4/2/1/~3~", hostname(1), hosts(&["a", "b", "x", "y"]), some.clone(),
                feasible_abx.clone(), None, vec![33, 83, 100]),
            ("4/?2?/1/~3~", hostname(1), missing_key, some.clone(),
                feasible_abx.clone(), None, vec![16, 0, 100]),
            ("zone, 4/2/1/~3~", zone(1), zones(), some,
                feasible_abx, None, vec![75, 75, 100]),
            ("zone and node, 2/~1~/2/~4~", both("foo", "foo"), zones(), foos(&[("a", 2), ("b", 1), ("x", 2), ("y", 4)]),
                vec!["a", "x"], None, vec![100, 63]),
            ("zone by foo, node by bar", both("foo", "bar"), zones(), vec![("a", foo()), ("b", foobar()), ("y", foo()), ("y", bar())],
                vec!["a", "b", "x", "y"], None, vec![60, 20, 100, 60]),
            ("system defaults, no zones, a Service selects foo", foo(), hosts(&abcd), foos(&[("a", 4), ("b", 3), ("c", 2), ("d", 1)]),
                abcd.to_vec(), Some(&foo_selector), vec![44, 66, 77, 100]),
        ];
        for (name, pod, nodes, placed, feasible, default_selector, want) in cases {
            let got = scores(&pod, &nodes, &placed, &feasible, default_selector);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn scores_skip_other_namespaces_and_pods_being_deleted() {
        let p = spreading(1, LABEL_HOSTNAME, SCHEDULE_ANYWAY, json!({}));
        let mut elsewhere = foo();
        elsewhere.metadata.namespace = Some("ns1".into());
        let mut placed = foos(&[("a", 1), ("b", 2)]);
        placed.push(("a", elsewhere));
        assert_eq!(
            scores(&p, &hosts(&["a", "b"]), &placed, &["a", "b"], None),
            [100, 33]
        );

        let mut leaving = foo();
        leaving.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap());
        let placed = vec![("a", leaving), ("b", foo())];
        assert_eq!(
            scores(&p, &hosts(&["a", "b"]), &placed, &["a", "b"], None),
            [100, 0]
        );
    }

    #[test]
    fn replicas_of_one_replica_set_land_on_different_nodes() {
        // Three equal nodes in one zone; the ReplicaSet's selector is the default selector.
        let nodes: Vec<Node> = ["a", "b", "c"]
            .iter()
            .map(|n| node(n, json!({"kubernetes.io/hostname": n, LABEL_ZONE: "z1"})))
            .collect();
        let replica = || pod(json!({"app": "web"}), json!({}));
        let rs = Selector::parse("app=web").unwrap();
        let all = ["a", "b", "c"];
        assert_eq!(
            scores(&replica(), &nodes, &[], &all, Some(&rs)),
            [100, 100, 100]
        );
        // After one replica lands on a: hostname raw round(1 × ln 5 + 2) + zone round(1 × ln 3
        // + 4) → a = round(8.71) = 9, b = c = round(7.10) = 7; 100 × (9 + 7 − s) / 9.
        let one = [("a", replica())];
        assert_eq!(
            scores(&replica(), &nodes, &one, &all, Some(&rs)),
            [77, 100, 100]
        );
        // After the second lands on b, c is the only best.
        let two = [("a", replica()), ("b", replica())];
        let s = scores(&replica(), &nodes, &two, &all, Some(&rs));
        assert!(s[2] > s[0] && s[2] > s[1], "{s:?}");
        // Without a Service or ReplicaSet selecting the pod there is nothing to spread.
        assert_eq!(scores(&replica(), &nodes, &one, &all, None), [0, 0, 0]);
        assert_eq!(
            scores(
                &replica(),
                &nodes,
                &one,
                &all,
                Some(&Selector::everything())
            ),
            [0, 0, 0]
        );
    }

    #[test]
    fn own_constraints_replace_the_system_defaults() {
        // A pod with only DoNotSchedule constraints gets no soft spreading, defaults or not.
        let nodes = hosts(&["a", "b"]);
        let p = spreading(1, LABEL_HOSTNAME, DO_NOT_SCHEDULE, json!({}));
        let foo_selector = Selector::parse("foo").unwrap();
        let placed = foos(&[("a", 2)]);
        assert_eq!(
            scores(&p, &nodes, &placed, &["a", "b"], Some(&foo_selector)),
            [0, 0]
        );
    }
}
