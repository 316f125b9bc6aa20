//! `InterPodAffinity`: places a pod near pods it wants to be with (`podAffinity`) and away from
//! pods it must not share a domain with (`podAntiAffinity`), and keeps it out of the domains of
//! existing pods whose anti-affinity it matches, as kube-scheduler 1.33's plugin does.
//!
//! A term selects pods (`labelSelector`, in the term's namespaces) and names a node label
//! (`topologyKey`); two nodes with the same value of that label are in the same domain.
//!
//! - **Filter**, on required terms. [`pre_filter`] counts, once per pod, the pods matching each
//!   term per (topology key, value) pair over every node; [`filter`] then looks up a node's
//!   pairs: (a) the pod's affinity terms need a domain holding a pod matching all of them,
//!   (b) its anti-affinity terms need a domain holding none, (c) no existing pod's anti-affinity
//!   term may match the pod in the node's domain. The first pod of a group whose affinity
//!   matches itself may go anywhere while no matching pod exists.
//! - **Score**, on preferred terms, both ways: the pod's own preferred terms against existing
//!   pods, and existing pods' preferred terms (and required affinity, weight 1) against the pod.
//!   See [`score`].
//!
//! Namespaces: a term applies to its `namespaces`, or to its pod's own namespace when it lists
//! none and has no `namespaceSelector`; `namespaceSelector: {}` means every namespace. The
//! scheduler does not read Namespace objects, so a non-empty `namespaceSelector` selects no
//! namespace beyond those listed (Kubernetes would add the namespaces whose labels match).
//! `matchLabelKeys` / `mismatchLabelKeys` are merged into the selector as `key in (value)` /
//! `key notin (value)` with the term's pod's own label values, as kube-apiserver does when it
//! creates the pod (doing it again changes nothing).

use std::collections::{BTreeMap, HashMap};

use api_types::labels::{
    LabelSelectorError, Operator, Requirement, Selector, selector_from_label_selector,
};
use k8s_openapi::api::core::v1::{Affinity, PodAffinityTerm, WeightedPodAffinityTerm};
use runtime::pod::Pod;

use crate::framework::{NodeInfo, Status};
use crate::score::MAX_SCORE;

pub const NAME: &str = "InterPodAffinity";
pub const REASON_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// kube-scheduler's default `hardPodAffinityWeight`: what an existing pod's required affinity
/// term matching the incoming pod adds to the score of the existing pod's domain.
pub const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Whether a pod has any pod affinity or anti-affinity (Kubernetes keeps such pods in
/// `NodeInfo.PodsWithAffinity`; scoring visits only them unless the incoming pod has
/// preferred terms).
pub fn has_pod_affinity(pod: &Pod) -> bool {
    affinity_of(pod).is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
}

/// Whether a pod has a required anti-affinity term (Kubernetes'
/// `NodeInfo.PodsWithRequiredAntiAffinity`, the only existing pods filtering visits when the
/// incoming pod has no required terms).
pub fn has_required_pod_anti_affinity(pod: &Pod) -> bool {
    affinity_of(pod)
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|terms| !terms.is_empty())
}

fn affinity_of(pod: &Pod) -> Option<&Affinity> {
    pod.spec.as_ref()?.affinity.as_deref()
}

fn labels_of(pod: &Pod) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

fn namespace_of(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or_default()
}

/// The pods on `node` with required anti-affinity, as its NodeInfo keeps them.
fn pods_with_required_anti_affinity(node: &NodeInfo) -> impl Iterator<Item = &Pod> {
    node.pods_with_required_anti_affinity.iter().map(|p| &**p)
}

/// A `PodAffinityTerm` with its namespaces resolved and its selector parsed (Kubernetes'
/// `framework.AffinityTerm`).
#[derive(Debug, Clone)]
struct AffinityTerm {
    namespaces: Vec<String>,
    /// `namespaceSelector: {}`.
    all_namespaces: bool,
    selector: Selector,
    topology_key: String,
}

impl AffinityTerm {
    /// `owner`'s term, relative to `owner` (its namespace and labels).
    fn new(owner: &Pod, term: &PodAffinityTerm) -> Result<AffinityTerm, LabelSelectorError> {
        let listed = term.namespaces.as_deref().unwrap_or_default();
        let namespaces = if listed.is_empty() && term.namespace_selector.is_none() {
            vec![namespace_of(owner).to_owned()]
        } else {
            listed.to_vec()
        };
        // `{}` selects every namespace; a missing one none; any other would need Namespace
        // labels, which the scheduler does not have (see the module docs).
        let all_namespaces =
            selector_from_label_selector(term.namespace_selector.as_ref())?.is_everything();
        Ok(AffinityTerm {
            namespaces,
            all_namespaces,
            selector: selector_with_label_keys(owner, term)?,
            topology_key: term.topology_key.clone(),
        })
    }

    /// Whether `pod` is one of the pods this term selects.
    fn matches(&self, pod: &Pod) -> bool {
        let namespace = namespace_of(pod);
        (self.all_namespaces || self.namespaces.iter().any(|n| n == namespace))
            && self.selector.matches(labels_of(pod))
    }
}

/// The term's labelSelector with `matchLabelKeys` (`key in (owner's value)`) and
/// `mismatchLabelKeys` (`key notin (owner's value)`) added for the keys `owner` has; a missing
/// labelSelector stays one that selects nothing.
fn selector_with_label_keys(
    owner: &Pod,
    term: &PodAffinityTerm,
) -> Result<Selector, LabelSelectorError> {
    let selector = selector_from_label_selector(term.label_selector.as_ref())?;
    if term.label_selector.is_none() {
        return Ok(selector);
    }
    let labels = labels_of(owner);
    let keyed = |keys: Option<&Vec<String>>, operator: Operator| {
        keys.into_iter()
            .flatten()
            .filter_map(move |k| {
                let value = labels.get(k)?;
                Some(Requirement::new(k.clone(), operator, vec![value.clone()]))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let matching = keyed(term.match_label_keys.as_ref(), Operator::In)?;
    let mismatching = keyed(term.mismatch_label_keys.as_ref(), Operator::NotIn)?;
    if matching.is_empty() && mismatching.is_empty() {
        return Ok(selector);
    }
    let mut requirements = selector.requirements().to_vec();
    requirements.extend(matching);
    requirements.extend(mismatching);
    Ok(Selector::from_requirements(requirements))
}

fn terms(
    owner: &Pod,
    terms: Option<&Vec<PodAffinityTerm>>,
) -> Result<Vec<AffinityTerm>, LabelSelectorError> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::new(owner, t))
        .collect()
}

fn weighted_terms(
    owner: &Pod,
    terms: Option<&Vec<WeightedPodAffinityTerm>>,
) -> Result<Vec<(AffinityTerm, i64)>, LabelSelectorError> {
    terms
        .into_iter()
        .flatten()
        .map(|t| {
            Ok((
                AffinityTerm::new(owner, &t.pod_affinity_term)?,
                i64::from(t.weight),
            ))
        })
        .collect()
}

/// A pod's four kinds of terms, parsed (Kubernetes' `PodInfo`).
#[derive(Debug, Default)]
struct PodTerms {
    required_affinity: Vec<AffinityTerm>,
    required_anti_affinity: Vec<AffinityTerm>,
    preferred_affinity: Vec<(AffinityTerm, i64)>,
    preferred_anti_affinity: Vec<(AffinityTerm, i64)>,
}

impl PodTerms {
    fn of(pod: &Pod) -> Result<PodTerms, LabelSelectorError> {
        let Some(affinity) = affinity_of(pod) else {
            return Ok(PodTerms::default());
        };
        let positive = affinity.pod_affinity.as_ref();
        let negative = affinity.pod_anti_affinity.as_ref();
        Ok(PodTerms {
            required_affinity: terms(
                pod,
                positive.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            )?,
            required_anti_affinity: terms(
                pod,
                negative.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            )?,
            preferred_affinity: weighted_terms(
                pod,
                positive.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            )?,
            preferred_anti_affinity: weighted_terms(
                pod,
                negative.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            )?,
        })
    }

    /// An existing pod's terms. Kubernetes drops a kind of term whose selector does not parse
    /// (the apiserver validates them, so this is only defence); so does this.
    fn of_existing(pod: &Pod) -> PodTerms {
        let Some(affinity) = affinity_of(pod) else {
            return PodTerms::default();
        };
        let positive = affinity.pod_affinity.as_ref();
        let negative = affinity.pod_anti_affinity.as_ref();
        PodTerms {
            required_affinity: terms(
                pod,
                positive.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            )
            .unwrap_or_default(),
            required_anti_affinity: existing_required_anti_affinity(pod),
            preferred_affinity: weighted_terms(
                pod,
                positive.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            )
            .unwrap_or_default(),
            preferred_anti_affinity: weighted_terms(
                pod,
                negative.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            )
            .unwrap_or_default(),
        }
    }
}

fn existing_required_anti_affinity(pod: &Pod) -> Vec<AffinityTerm> {
    terms(
        pod,
        affinity_of(pod)
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
    )
    .unwrap_or_default()
}

/// Sums per topology pair: topology key → value → sum. Nested so a lookup by a node's
/// `(&str, &str)` label allocates nothing.
#[derive(Debug, Clone, Default)]
struct TopologyCounts(HashMap<String, HashMap<String, i64>>);

impl TopologyCounts {
    /// Adds `n` to the pair (`key`, `node`'s value of it), if `node` has the label.
    fn add(&mut self, node: &NodeInfo, key: &str, n: i64) {
        let Some(value) = node.labels().get(key) else {
            return;
        };
        let values = match self.0.get_mut(key) {
            Some(values) => values,
            None => self.0.entry(key.to_owned()).or_default(),
        };
        match values.get_mut(value) {
            Some(sum) => *sum += n,
            None => {
                values.insert(value.clone(), n);
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|values| values.get(value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sum over the pairs among `labels`.
    fn sum_on(&self, labels: &BTreeMap<String, String>) -> i64 {
        self.0
            .iter()
            .filter_map(|(key, values)| values.get(labels.get(key)?))
            .sum()
    }
}

/// What [`pre_filter`] computes once per pod for [`filter`] to use on every node.
#[derive(Debug, Clone, Default)]
pub struct PreFilterState {
    required_affinity: Vec<AffinityTerm>,
    required_anti_affinity: Vec<AffinityTerm>,
    /// Pods matching all of the pod's required affinity terms, per pair of each term's key.
    affinity_counts: TopologyCounts,
    /// Pods matching each of the pod's required anti-affinity terms, per pair.
    anti_affinity_counts: TopologyCounts,
    /// Existing pods' required anti-affinity terms matching the pod, per pair.
    existing_anti_affinity_counts: TopologyCounts,
    /// The pod matches all its own required affinity terms.
    matches_own_affinity: bool,
    /// Why the pod's terms cannot be read (an invalid selector): every node is rejected with it.
    error: Option<String>,
}

impl PreFilterState {
    /// True when [`filter`] admits every node: the pod has no required terms and no existing
    /// pod's anti-affinity matches it (kube-scheduler's `Skip`).
    pub fn is_empty(&self) -> bool {
        self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.existing_anti_affinity_counts.is_empty()
            && self.error.is_none()
    }
}

/// Counts the topology pairs [`filter`] checks, once per pod over all `nodes` (Kubernetes'
/// PreFilter). Visits only pods with required anti-affinity when the pod has no required
/// terms; O(nodes × pods) when it has some.
pub fn pre_filter(pod: &Pod, nodes: &[NodeInfo]) -> PreFilterState {
    let own = match PodTerms::of(pod) {
        Ok(terms) => terms,
        Err(e) => {
            return PreFilterState {
                error: Some(format!("parsing pod: {e}")),
                ..PreFilterState::default()
            };
        }
    };
    let mut state = PreFilterState {
        required_affinity: own.required_affinity,
        required_anti_affinity: own.required_anti_affinity,
        ..PreFilterState::default()
    };

    for node in nodes {
        for existing in pods_with_required_anti_affinity(node) {
            for term in existing_required_anti_affinity(existing) {
                if term.matches(pod) {
                    state
                        .existing_anti_affinity_counts
                        .add(node, &term.topology_key, 1);
                }
            }
        }
    }

    if state.required_affinity.is_empty() && state.required_anti_affinity.is_empty() {
        return state;
    }
    for node in nodes {
        for existing in &node.pods {
            // Affinity terms are ANDed: a pod counts for them only when it matches all.
            if !state.required_affinity.is_empty()
                && state.required_affinity.iter().all(|t| t.matches(existing))
            {
                for term in &state.required_affinity {
                    state.affinity_counts.add(node, &term.topology_key, 1);
                }
            }
            for term in &state.required_anti_affinity {
                if term.matches(existing) {
                    state.anti_affinity_counts.add(node, &term.topology_key, 1);
                }
            }
        }
    }
    state.matches_own_affinity = !state.required_affinity.is_empty()
        && state.required_affinity.iter().all(|t| t.matches(pod));
    state
}

/// Whether `node` satisfies the pod's required affinity: it carries every term's key and, in
/// each term's domain, a pod matching all terms exists. Or the pod is the first of its group:
/// no pod anywhere matches its terms but it matches them itself, so it may start the group on
/// any node carrying the keys (otherwise a self-affine group could never start).
fn satisfies_pod_affinity(state: &PreFilterState, labels: &BTreeMap<String, String>) -> bool {
    let mut pods_exist = true;
    for term in &state.required_affinity {
        let Some(value) = labels.get(&term.topology_key) else {
            return false;
        };
        if state.affinity_counts.get(&term.topology_key, value) <= 0 {
            pods_exist = false;
        }
    }
    pods_exist || (state.affinity_counts.is_empty() && state.matches_own_affinity)
}

/// Whether no pod matching one of the pod's required anti-affinity terms is in the node's
/// domain of that term.
fn satisfies_pod_anti_affinity(state: &PreFilterState, labels: &BTreeMap<String, String>) -> bool {
    state.anti_affinity_counts.is_empty()
        || state.required_anti_affinity.iter().all(|term| {
            labels
                .get(&term.topology_key)
                .is_none_or(|value| state.anti_affinity_counts.get(&term.topology_key, value) <= 0)
        })
}

/// Whether `pod` may go to `node` as far as pod (anti-)affinity goes: its own required
/// affinity, its own required anti-affinity, then the existing pods' anti-affinity, reporting
/// the first unmet, as Kubernetes does. O(terms + topology keys); `state` comes from
/// [`pre_filter`] for this pod.
pub fn filter(_pod: &Pod, node: &NodeInfo, state: &PreFilterState) -> Status {
    if let Some(error) = &state.error {
        return Status::Unschedulable(vec![error.clone()]);
    }
    let labels = node.labels();
    let reason = if !satisfies_pod_affinity(state, labels) {
        REASON_AFFINITY_RULES_NOT_MATCH
    } else if !satisfies_pod_anti_affinity(state, labels) {
        REASON_ANTI_AFFINITY_RULES_NOT_MATCH
    } else if state.existing_anti_affinity_counts.sum_on(labels) > 0 {
        REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH
    } else {
        return Status::Fits;
    };
    Status::Unschedulable(vec![reason.into()])
}

/// The final InterPodAffinity scores (0–100) of the `feasible` nodes, in their order
/// (kube-scheduler's PreScore, Score and NormalizeScore together).
///
/// Every existing pod on a labelled node adds to the domain (topology pair) of its node:
///
/// - the weight of each of the incoming pod's preferred affinity terms it matches, and minus
///   the weight of each preferred anti-affinity term it matches;
/// - symmetrically, for each of its own terms the incoming pod matches: the term's weight
///   (preferred affinity), minus it (preferred anti-affinity), or [`HARD_POD_AFFINITY_WEIGHT`]
///   (required affinity). A pod that wants company attracts it.
///
/// A node's raw score sums its domains'; the scores are then scaled from the lowest (0) to the
/// highest (100): `100 × (s − min) / (max − min)`, truncated; all 0 when they are equal. Example:
/// raw 2, 10, 0 → 20, 100, 0. Visits every pod when the incoming pod has preferred terms, only
/// pods with pod (anti-)affinity otherwise.
pub fn score(pod: &Pod, all_nodes: &[NodeInfo], feasible: &[&NodeInfo]) -> Vec<i64> {
    let Ok(own) = PodTerms::of(pod) else {
        // An invalid selector already failed the pod in pre_filter.
        return vec![0; feasible.len()];
    };
    let has_preferred =
        !own.preferred_affinity.is_empty() || !own.preferred_anti_affinity.is_empty();
    let mut domains = TopologyCounts::default();
    for node in all_nodes {
        // Without preferred terms of its own, only pods with (anti-)affinity can move the
        // score (Kubernetes visits `NodeInfo.PodsWithAffinity` then).
        let visited = if has_preferred {
            &node.pods
        } else {
            &node.pods_with_affinity
        };
        // Checked first: most nodes have nothing to visit, and their Node stays untouched.
        if visited.is_empty() || node.labels().is_empty() {
            continue;
        }
        for existing in visited {
            let existing_has_affinity = has_pod_affinity(existing);
            if !has_preferred && !existing_has_affinity {
                continue;
            }
            for (term, weight) in &own.preferred_affinity {
                if term.matches(existing) {
                    domains.add(node, &term.topology_key, *weight);
                }
            }
            for (term, weight) in &own.preferred_anti_affinity {
                if term.matches(existing) {
                    domains.add(node, &term.topology_key, -weight);
                }
            }
            if !existing_has_affinity {
                continue;
            }
            let theirs = PodTerms::of_existing(existing);
            for term in &theirs.required_affinity {
                if term.matches(pod) {
                    domains.add(node, &term.topology_key, HARD_POD_AFFINITY_WEIGHT);
                }
            }
            for (term, weight) in &theirs.preferred_affinity {
                if term.matches(pod) {
                    domains.add(node, &term.topology_key, *weight);
                }
            }
            for (term, weight) in &theirs.preferred_anti_affinity {
                if term.matches(pod) {
                    domains.add(node, &term.topology_key, -weight);
                }
            }
        }
    }
    let raw: Vec<i64> = feasible
        .iter()
        .map(|n| domains.sum_on(n.labels()))
        .collect();
    let (Some(&min), Some(&max)) = (raw.iter().min(), raw.iter().max()) else {
        return raw;
    };
    raw.iter()
        .map(|&s| {
            if max > min {
                // Sums of int32 weights over ≤ 150,000 pods: exact in f64.
                (MAX_SCORE as f64 * ((s - min) as f64 / (max - min) as f64)) as i64
            } else {
                0
            }
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

    /// A pod in `namespace` with these labels and this `spec.affinity`.
    fn pod_in(namespace: &str, labels: Value, affinity: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": namespace, "labels": labels},
            "spec": {"containers": [], "affinity": affinity}
        }))
        .unwrap()
    }

    fn pod(labels: Value, affinity: Value) -> Pod {
        pod_in("default", labels, affinity)
    }

    /// A required term selecting `key=value` pods over `topology`.
    fn term(key: &str, value: &str, topology: &str) -> Value {
        json!({"labelSelector": {"matchLabels": {key: value}}, "topologyKey": topology})
    }

    fn weighted(weight: i32, term: Value) -> Value {
        json!({"weight": weight, "podAffinityTerm": term})
    }

    fn required(kind: &str, terms: Vec<Value>) -> Value {
        json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": terms}})
    }

    fn preferred(kind: &str, terms: Vec<Value>) -> Value {
        json!({kind: {"preferredDuringSchedulingIgnoredDuringExecution": terms}})
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

    /// The filter's verdict on each node: None when it fits, else the reason.
    fn verdicts(pod: &Pod, nodes: &[NodeInfo]) -> Vec<Option<&'static str>> {
        let state = pre_filter(pod, nodes);
        nodes
            .iter()
            .map(|n| match filter(pod, n, &state) {
                Status::Fits => None,
                Status::Unschedulable(reasons) => Some(
                    [
                        REASON_AFFINITY_RULES_NOT_MATCH,
                        REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
                        REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
                    ]
                    .into_iter()
                    .find(|r| reasons == [*r])
                    .unwrap_or_else(|| panic!("unexpected {reasons:?}")),
                ),
            })
            .collect()
    }

    fn zones() -> Vec<Node> {
        vec![
            node("a", json!({"zone": "z1", "kubernetes.io/hostname": "a"})),
            node("b", json!({"zone": "z1", "kubernetes.io/hostname": "b"})),
            node("c", json!({"zone": "z2", "kubernetes.io/hostname": "c"})),
            node("d", json!({"kubernetes.io/hostname": "d"})),
        ]
    }

    /// (name, incoming pod, pods placed by node name, verdict per node of [`zones`]).
    type FilterCase<'a> = (&'a str, Pod, Vec<(&'a str, Pod)>, Vec<Option<&'a str>>);

    const AFFINITY: Option<&str> = Some(REASON_AFFINITY_RULES_NOT_MATCH);
    const ANTI: Option<&str> = Some(REASON_ANTI_AFFINITY_RULES_NOT_MATCH);
    const EXISTING: Option<&str> = Some(REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH);

    #[test]
    fn required_terms_as_kubernetes_filters_them() {
        let db = || pod(json!({"app": "db"}), json!({}));
        let web = |affinity| pod(json!({"app": "web"}), affinity);
        let near_db = required("podAffinity", vec![term("app", "db", "zone")]);
        let cases: Vec<FilterCase> = vec![
            (
                "affinity to an existing pod's zone",
                web(near_db.clone()),
                vec![("b", db())],
                vec![None, None, AFFINITY, AFFINITY],
            ),
            (
                "affinity to pods of another namespace does not count",
                web(near_db.clone()),
                vec![("b", pod_in("other", json!({"app": "db"}), json!({})))],
                vec![AFFINITY; 4],
            ),
            (
                "a term listing namespaces looks there",
                web(required(
                    "podAffinity",
                    vec![json!({"labelSelector": {"matchLabels": {"app": "db"}},
                        "topologyKey": "zone", "namespaces": ["other"]})],
                )),
                vec![("c", pod_in("other", json!({"app": "db"}), json!({})))],
                vec![AFFINITY, AFFINITY, None, AFFINITY],
            ),
            (
                "namespaceSelector {} looks everywhere",
                web(required(
                    "podAffinity",
                    vec![json!({"labelSelector": {"matchLabels": {"app": "db"}},
                        "topologyKey": "zone", "namespaceSelector": {}})],
                )),
                vec![("c", pod_in("other", json!({"app": "db"}), json!({})))],
                vec![AFFINITY, AFFINITY, None, AFFINITY],
            ),
            (
                "anti-affinity by hostname keeps two pods of an app apart",
                web(required(
                    "podAntiAffinity",
                    vec![term("app", "web", "kubernetes.io/hostname")],
                )),
                vec![("a", web(json!({})))],
                vec![ANTI, None, None, None],
            ),
            (
                "anti-affinity by zone spares nodes without the zone label",
                web(required("podAntiAffinity", vec![term("app", "db", "zone")])),
                vec![("a", db())],
                vec![ANTI, ANTI, None, None],
            ),
            (
                "an existing pod's anti-affinity repels the pod from its zone",
                web(json!({})),
                vec![(
                    "c",
                    pod(
                        json!({"app": "db"}),
                        required("podAntiAffinity", vec![term("app", "web", "zone")]),
                    ),
                )],
                vec![None, None, EXISTING, None],
            ),
            (
                "an existing pod's anti-affinity only covers its own namespace",
                pod_in("other", json!({"app": "web"}), json!({})),
                vec![(
                    "c",
                    pod(
                        json!({"app": "db"}),
                        required("podAntiAffinity", vec![term("app", "web", "zone")]),
                    ),
                )],
                vec![None; 4],
            ),
            (
                "the first pod of a self-affine group may go wherever the key exists",
                web(required("podAffinity", vec![term("app", "web", "zone")])),
                vec![("a", db())],
                vec![None, None, None, AFFINITY],
            ),
            (
                "once one exists, the group follows it",
                web(required("podAffinity", vec![term("app", "web", "zone")])),
                vec![("c", web(json!({})))],
                vec![AFFINITY, AFFINITY, None, AFFINITY],
            ),
            (
                "a pod not matching its own affinity cannot start a group",
                web(near_db.clone()),
                vec![],
                vec![AFFINITY; 4],
            ),
            (
                "affinity terms are ANDed over one pod",
                web(required(
                    "podAffinity",
                    vec![term("app", "db", "zone"), term("tier", "gold", "zone")],
                )),
                vec![
                    ("a", db()),
                    ("c", pod(json!({"app": "db", "tier": "gold"}), json!({}))),
                ],
                vec![AFFINITY, AFFINITY, None, AFFINITY],
            ),
            (
                "affinity is checked before anti-affinity",
                web(json!({
                    "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                        [term("app", "db", "zone")]},
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                        [term("app", "db", "kubernetes.io/hostname")]}
                })),
                vec![("a", db())],
                vec![ANTI, None, AFFINITY, AFFINITY],
            ),
        ];
        for (name, incoming, placed, want) in cases {
            assert_eq!(
                verdicts(&incoming, &cluster(&zones(), &placed)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn two_replicas_with_hostname_anti_affinity_never_share_a_node() {
        let replica = || {
            pod(
                json!({"app": "web"}),
                required(
                    "podAntiAffinity",
                    vec![term("app", "web", "kubernetes.io/hostname")],
                ),
            )
        };
        // Both directions: the incoming pod's own term and the existing pod's term.
        let nodes = cluster(&zones(), &[("a", replica()), ("c", replica())]);
        assert_eq!(verdicts(&replica(), &nodes), [ANTI, None, ANTI, None]);
        let plain = pod(json!({"app": "web"}), json!({}));
        assert_eq!(verdicts(&plain, &nodes), [EXISTING, None, EXISTING, None]);
    }

    #[test]
    fn match_label_keys_narrow_the_term_to_the_pods_own_values() {
        let revision =
            |hash: &str, affinity| pod(json!({"app": "web", "pod-template-hash": hash}), affinity);
        let apart = required(
            "podAntiAffinity",
            vec![json!({"labelSelector": {"matchLabels": {"app": "web"}},
                "topologyKey": "kubernetes.io/hostname", "matchLabelKeys": ["pod-template-hash"]})],
        );
        let nodes = cluster(
            &zones(),
            &[
                ("a", revision("1", json!({}))),
                ("b", revision("2", json!({}))),
            ],
        );
        assert_eq!(
            verdicts(&revision("2", apart), &nodes),
            [None, ANTI, None, None]
        );
    }

    #[test]
    fn a_pod_without_terms_costs_nothing_when_no_pod_repels_it() {
        let nodes = cluster(&zones(), &[("a", pod(json!({"app": "db"}), json!({})))]);
        let state = pre_filter(&pod(json!({"app": "web"}), json!({})), &nodes);
        assert!(state.is_empty());
    }

    #[test]
    fn an_invalid_selector_rejects_every_node_with_the_error() {
        let p = pod(
            json!({}),
            required(
                "podAffinity",
                vec![
                    json!({"labelSelector": {"matchExpressions": [{"key": "app", "operator": "Near"}]},
                    "topologyKey": "zone"}),
                ],
            ),
        );
        let nodes = cluster(&zones(), &[]);
        let Status::Unschedulable(reasons) = filter(&p, &nodes[0], &pre_filter(&p, &nodes)) else {
            panic!("an invalid selector must not fit");
        };
        assert!(reasons[0].starts_with("parsing pod: "), "{reasons:?}");
    }

    /// (name, incoming pod, nodes, pods placed by node name, score per node).
    type ScoreCase<'a> = (&'a str, Pod, Vec<Node>, Vec<(&'a str, Pod)>, Vec<i64>);

    fn scores(pod: &Pod, nodes: &[Node], placed: &[(&str, Pod)]) -> Vec<i64> {
        let all = cluster(nodes, placed);
        let feasible: Vec<&NodeInfo> = all.iter().collect();
        score(pod, &all, &feasible)
    }

    #[test]
    fn preferred_terms_order_nodes_as_kubernetes_scores_them() {
        // Kubernetes' TestPreferredAffinity fixtures.
        let china = node("n1", json!({"region": "China"}));
        let india = node("n2", json!({"region": "India"}));
        let az1 = node("n3", json!({"az": "az1"}));
        let s1 = |affinity| pod(json!({"security": "S1"}), affinity);
        let s2 = |affinity| pod(json!({"security": "S2"}), affinity);
        let stay_with_s1 = preferred(
            "podAffinity",
            vec![weighted(5, term("security", "S1", "region"))],
        );
        let stay_with_s2 = preferred(
            "podAffinity",
            vec![weighted(6, term("security", "S2", "region"))],
        );
        let away_from_s1 = preferred(
            "podAntiAffinity",
            vec![weighted(5, term("security", "S1", "az"))],
        );
        let away_from_s2 = preferred(
            "podAntiAffinity",
            vec![weighted(5, term("security", "S2", "az"))],
        );
        // Weight 8 for S2 (NotIn S1 and In S2), weight 2 for any security label.
        let mixed = preferred(
            "podAffinity",
            vec![
                weighted(
                    8,
                    json!({"labelSelector": {"matchExpressions": [
                    {"key": "security", "operator": "NotIn", "values": ["S1"]},
                    {"key": "security", "operator": "In", "values": ["S2"]}]}, "topologyKey": "region"}),
                ),
                weighted(
                    2,
                    json!({"labelSelector": {"matchExpressions": [
                    {"key": "security", "operator": "Exists"},
                    {"key": "wrongkey", "operator": "DoesNotExist"}]}, "topologyKey": "region"}),
                ),
            ],
        );
        let hard = required("podAffinity", vec![term("security", "S1", "region")]);
        let three = [china.clone(), india.clone(), az1.clone()];
        let cases: Vec<ScoreCase> = vec![
            (
                "no affinity anywhere",
                s1(json!({})),
                three.to_vec(),
                vec![("n1", s1(json!({})))],
                vec![0, 0, 0],
            ),
            (
                "affinity to the region of an S1 pod",
                s1(stay_with_s1.clone()),
                three.to_vec(),
                vec![
                    ("n1", s1(json!({}))),
                    ("n2", s2(json!({}))),
                    ("n3", s1(json!({}))),
                ],
                vec![100, 0, 0],
            ),
            (
                "operators and weights",
                s1(mixed),
                three.to_vec(),
                vec![
                    ("n1", s1(json!({}))),
                    ("n2", s2(json!({}))),
                    ("n3", s1(json!({}))),
                ],
                vec![20, 100, 0],
            ),
            (
                "symmetry: existing pods' preferred affinity",
                s2(json!({})),
                three.to_vec(),
                vec![("n1", s1(stay_with_s1)), ("n2", s2(stay_with_s2))],
                vec![0, 100, 0],
            ),
            (
                "symmetry: existing pods' required affinity weighs 1",
                s1(json!({})),
                three.to_vec(),
                vec![("n1", s1(hard.clone())), ("n2", s2(hard))],
                vec![100, 100, 0],
            ),
            (
                "anti-affinity: away from S1",
                s1(away_from_s1.clone()),
                vec![
                    node("n1", json!({"az": "az1"})),
                    node("n2", json!({"region": "China"})),
                ],
                vec![("n1", s1(json!({}))), ("n2", s2(json!({})))],
                vec![0, 100],
            ),
            (
                "symmetry: existing pods' preferred anti-affinity",
                s2(json!({})),
                vec![
                    node("n1", json!({"az": "az1"})),
                    node("n2", json!({"az": "az2"})),
                ],
                vec![("n1", s1(away_from_s2)), ("n2", s2(away_from_s1))],
                vec![0, 100],
            ),
        ];
        for (name, incoming, nodes, placed, want) in cases {
            assert_eq!(scores(&incoming, &nodes, &placed), want, "{name}");
        }
    }

    #[test]
    fn preferred_anti_affinity_spreads_replicas() {
        let replica = || {
            pod(
                json!({"app": "web"}),
                preferred(
                    "podAntiAffinity",
                    vec![weighted(100, term("app", "web", "kubernetes.io/hostname"))],
                ),
            )
        };
        let nodes = zones();
        // Two on a, one on b: a scores lowest, the empty c and d highest.
        let placed = [("a", replica()), ("a", replica()), ("b", replica())];
        assert_eq!(scores(&replica(), &nodes, &placed), [0, 50, 100, 100]);
    }
}
