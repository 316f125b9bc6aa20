//! `NodeAffinity`: `spec.nodeSelector` and the required node affinity terms (`In`, `NotIn`,
//! `Exists`, `DoesNotExist`, `Gt`, `Lt` on labels; `metadata.name` fields) must match the node.

use std::collections::BTreeMap;

use api_types::labels::{Operator, Requirement};
use k8s_openapi::api::core::v1::NodeSelectorRequirement;
use runtime::pod::Pod;

use crate::framework::{NodeInfo, Status};

pub const NAME: &str = "NodeAffinity";
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// A `matchExpressions` requirement against the node's labels. As Kubernetes'
/// `nodeSelectorRequirementsAsSelector`, a requirement that is not a valid label requirement (an
/// unknown operator, a bad key or value, values where none belong, a non-integer `Gt`/`Lt`)
/// makes its term match nothing.
fn label_requirement_matches(
    r: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let operator = match r.operator.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        _ => return false,
    };
    Requirement::new(
        r.key.as_str(),
        operator,
        r.values.clone().unwrap_or_default(),
    )
    .is_ok_and(|requirement| requirement.matches(labels))
}

/// A `matchFields` requirement: `metadata.name` compared, by `In` or `NotIn`, with exactly one
/// value (`nodeSelectorRequirementsAsFieldSelector`); anything else matches nothing.
fn field_requirement_matches(r: &NodeSelectorRequirement, node_name: &str) -> bool {
    let [value] = r.values.as_deref().unwrap_or_default() else {
        return false;
    };
    r.key == "metadata.name"
        && match r.operator.as_str() {
            "In" => node_name == value,
            "NotIn" => node_name != value,
            _ => false,
        }
}

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    let spec = pod.spec.as_ref();
    let selector = spec.and_then(|s| s.node_selector.as_ref());
    let terms = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| &r.node_selector_terms);
    if selector.is_none() && terms.is_none() {
        // Nothing to match: the node's labels are not even read.
        return Status::Fits;
    }
    let labels = node.labels();
    let selector_ok = selector.is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    // Terms are ORed; within a term, requirements are ANDed; an empty term matches nothing.
    let affinity_ok = terms.is_none_or(|terms| {
        terms.iter().any(|term| {
            let exprs = term.match_expressions.as_deref().unwrap_or_default();
            let fields = term.match_fields.as_deref().unwrap_or_default();
            (!exprs.is_empty() || !fields.is_empty())
                && exprs.iter().all(|r| label_requirement_matches(r, labels))
                && fields
                    .iter()
                    .all(|r| field_requirement_matches(r, node.name()))
        })
    });
    if selector_ok && affinity_ok {
        Status::Fits
    } else {
        Status::Unschedulable(vec![REASON.into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{Case, check, node, pod, unschedulable};
    use serde_json::{Value, json};

    /// A node `name` with these labels.
    fn labelled(name: &str, labels: Value) -> NodeInfo {
        NodeInfo::new(&node(name, json!({"metadata": {"labels": labels}})), &[])
    }

    fn selecting(selector: Value) -> Pod {
        pod(json!({"spec": {"nodeSelector": selector}}))
    }

    /// A pod whose required node affinity has these terms.
    fn requiring(terms: Value) -> Pod {
        pod(json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}}))
    }

    /// A pod with one term of these label requirements.
    fn expressions(exprs: Value) -> Pod {
        requiring(json!([{"matchExpressions": exprs}]))
    }

    fn name_in(name: &str) -> Value {
        json!({"key": "metadata.name", "operator": "In", "values": [name]})
    }

    fn foo_in(value: &str) -> Value {
        json!({"key": "foo", "operator": "In", "values": [value]})
    }

    fn no() -> Status {
        unschedulable(&[REASON])
    }

    #[test]
    fn filter_as_kubernetes_does() {
        let foo_bar = || labelled("node1", json!({"foo": "bar"}));
        let gpu = || labelled("node1", json!({"GPU": "NVIDIA-GRID-K1"}));
        let cases: Vec<Case> = vec![
            // Kubernetes' TestNodeAffinity (its Filter expectations; AddedAffinity is not
            // configurable in Ferry).
            (
                "missing labels",
                selecting(json!({"foo": "bar"})),
                labelled("node1", json!({})),
                no(),
            ),
            (
                "same labels",
                selecting(json!({"foo": "bar"})),
                foo_bar(),
                Status::Fits,
            ),
            (
                "node labels are superset",
                selecting(json!({"foo": "bar"})),
                labelled("node1", json!({"foo": "bar", "baz": "blah"})),
                Status::Fits,
            ),
            (
                "node labels are subset",
                selecting(json!({"foo": "bar", "baz": "blah"})),
                foo_bar(),
                no(),
            ),
            (
                "In matches",
                expressions(json!([{"key": "foo", "operator": "In", "values": ["bar", "value2"]}])),
                foo_bar(),
                Status::Fits,
            ),
            (
                "Gt matches",
                expressions(
                    json!([{"key": "kernel-version", "operator": "Gt", "values": ["0204"]}]),
                ),
                labelled("node1", json!({"kernel-version": "0206"})),
                Status::Fits,
            ),
            (
                "NotIn matches",
                expressions(
                    json!([{"key": "mem-type", "operator": "NotIn", "values": ["DDR", "DDR2"]}]),
                ),
                labelled("node1", json!({"mem-type": "DDR3"})),
                Status::Fits,
            ),
            (
                "Exists matches",
                expressions(json!([{"key": "GPU", "operator": "Exists"}])),
                gpu(),
                Status::Fits,
            ),
            (
                "affinity that doesn't match the node's labels",
                expressions(
                    json!([{"key": "foo", "operator": "In", "values": ["value1", "value2"]}]),
                ),
                foo_bar(),
                no(),
            ),
            (
                "an empty matchExpressions term matches no node",
                expressions(json!([])),
                foo_bar(),
                no(),
            ),
            ("no affinity", pod(json!({})), foo_bar(), Status::Fits),
            (
                "node affinity without a required selector",
                pod(json!({"spec": {"affinity": {"nodeAffinity": {}}}})),
                foo_bar(),
                Status::Fits,
            ),
            (
                "requirements of a term are ANDed: all match",
                expressions(json!([
                    {"key": "GPU", "operator": "Exists"},
                    {"key": "GPU", "operator": "NotIn", "values": ["AMD", "INTER"]}
                ])),
                gpu(),
                Status::Fits,
            ),
            (
                "requirements of a term are ANDed: one fails",
                expressions(json!([
                    {"key": "GPU", "operator": "Exists"},
                    {"key": "GPU", "operator": "In", "values": ["AMD", "INTER"]}
                ])),
                gpu(),
                no(),
            ),
            (
                "terms are ORed",
                requiring(json!([
                    {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar", "value2"]}]},
                    {"matchExpressions": [{"key": "diffkey", "operator": "In", "values": ["wrong", "value2"]}]}
                ])),
                foo_bar(),
                Status::Fits,
            ),
            (
                "affinity and nodeSelector both satisfied",
                {
                    let mut p = expressions(json!([{"key": "foo", "operator": "Exists"}]));
                    p.spec.as_mut().unwrap().node_selector =
                        Some([("foo".to_owned(), "bar".to_owned())].into());
                    p
                },
                foo_bar(),
                Status::Fits,
            ),
            (
                "affinity satisfied but not nodeSelector",
                {
                    let mut p = expressions(json!([{"key": "foo", "operator": "Exists"}]));
                    p.spec.as_mut().unwrap().node_selector =
                        Some([("foo".to_owned(), "bar".to_owned())].into());
                    p
                },
                labelled("node1", json!({"foo": "barrrrrr"})),
                no(),
            ),
            (
                "an invalid value makes the term match nothing",
                expressions(
                    json!([{"key": "foo", "operator": "NotIn", "values": ["invalid value: ___@#$%^"]}]),
                ),
                foo_bar(),
                no(),
            ),
            (
                "matchFields In matches the node's name",
                requiring(json!([{"matchFields": [name_in("node1")]}])),
                labelled("node1", json!({})),
                Status::Fits,
            ),
            (
                "matchFields In does not match another node",
                requiring(json!([{"matchFields": [name_in("node1")]}])),
                labelled("node2", json!({})),
                no(),
            ),
            (
                "two terms: matchFields does not match, matchExpressions does",
                requiring(json!([
                    {"matchFields": [name_in("node1"), name_in("node2")]},
                    {"matchExpressions": [foo_in("bar")]}
                ])),
                labelled("node2", json!({"foo": "bar"})),
                Status::Fits,
            ),
            (
                "one term: matchFields does not match, matchExpressions does",
                requiring(
                    json!([{"matchFields": [name_in("node1")], "matchExpressions": [foo_in("bar")]}]),
                ),
                labelled("node2", json!({"foo": "bar"})),
                no(),
            ),
            (
                "one term: matchFields and matchExpressions both match",
                requiring(
                    json!([{"matchFields": [name_in("node1")], "matchExpressions": [foo_in("bar")]}]),
                ),
                labelled("node1", json!({"foo": "bar"})),
                Status::Fits,
            ),
            (
                "two terms: neither matches",
                requiring(json!([
                    {"matchFields": [name_in("node1")]},
                    {"matchExpressions": [foo_in("not-match-to-bar")]}
                ])),
                labelled("node2", json!({"foo": "bar"})),
                no(),
            ),
            (
                "two terms of node name",
                requiring(
                    json!([{"matchFields": [name_in("node1")]}, {"matchFields": [name_in("node2")]}]),
                ),
                labelled("node2", json!({})),
                Status::Fits,
            ),
            (
                "two conflicting matchFields requirements",
                requiring(json!([{"matchFields": [name_in("node1"), name_in("node2")]}])),
                labelled("node2", json!({"foo": "bar"})),
                no(),
            ),
            // Every operator, a missing key, and what labels.NewRequirement rejects.
            (
                "In on a missing key",
                expressions(json!([{"key": "zone", "operator": "In", "values": ["a"]}])),
                foo_bar(),
                no(),
            ),
            (
                "NotIn on a missing key matches",
                expressions(json!([{"key": "zone", "operator": "NotIn", "values": ["a"]}])),
                foo_bar(),
                Status::Fits,
            ),
            (
                "NotIn with the node's value",
                expressions(json!([{"key": "foo", "operator": "NotIn", "values": ["bar"]}])),
                foo_bar(),
                no(),
            ),
            (
                "Exists on a missing key",
                expressions(json!([{"key": "zone", "operator": "Exists"}])),
                foo_bar(),
                no(),
            ),
            (
                "DoesNotExist on a missing key",
                expressions(json!([{"key": "zone", "operator": "DoesNotExist"}])),
                foo_bar(),
                Status::Fits,
            ),
            (
                "DoesNotExist on a present key",
                expressions(json!([{"key": "foo", "operator": "DoesNotExist"}])),
                foo_bar(),
                no(),
            ),
            (
                "Gt is strict",
                expressions(json!([{"key": "gen", "operator": "Gt", "values": ["3"]}])),
                labelled("node1", json!({"gen": "3"})),
                no(),
            ),
            (
                "Lt matches a smaller value",
                expressions(json!([{"key": "gen", "operator": "Lt", "values": ["4"]}])),
                labelled("node1", json!({"gen": "3"})),
                Status::Fits,
            ),
            (
                "Lt is strict",
                expressions(json!([{"key": "gen", "operator": "Lt", "values": ["3"]}])),
                labelled("node1", json!({"gen": "3"})),
                no(),
            ),
            (
                "Gt on a label that is not an integer",
                expressions(json!([{"key": "gen", "operator": "Gt", "values": ["1"]}])),
                labelled("node1", json!({"gen": "three"})),
                no(),
            ),
            (
                "Gt on a missing label",
                expressions(json!([{"key": "gen", "operator": "Gt", "values": ["1"]}])),
                foo_bar(),
                no(),
            ),
            (
                "Gt with a value that is not an integer",
                expressions(json!([{"key": "gen", "operator": "Gt", "values": ["x"]}])),
                labelled("node1", json!({"gen": "3"})),
                no(),
            ),
            (
                "Gt with two values",
                expressions(json!([{"key": "gen", "operator": "Gt", "values": ["1", "2"]}])),
                labelled("node1", json!({"gen": "3"})),
                no(),
            ),
            (
                "Exists with values",
                expressions(json!([{"key": "foo", "operator": "Exists", "values": ["bar"]}])),
                foo_bar(),
                no(),
            ),
            (
                "NotIn without values",
                expressions(json!([{"key": "zone", "operator": "NotIn", "values": []}])),
                foo_bar(),
                no(),
            ),
            (
                "an invalid key",
                expressions(json!([{"key": "invalid key", "operator": "DoesNotExist"}])),
                foo_bar(),
                no(),
            ),
            (
                "an unknown operator",
                expressions(json!([{"key": "foo", "operator": "Equals", "values": ["bar"]}])),
                foo_bar(),
                no(),
            ),
            (
                "an invalid term does not spoil a valid one",
                requiring(json!([
                    {"matchExpressions": [{"key": "foo", "operator": "Exists", "values": ["bar"]}]},
                    {"matchExpressions": [foo_in("bar")]}
                ])),
                foo_bar(),
                Status::Fits,
            ),
            (
                "an empty term beside a matching one",
                requiring(json!([{}, {"matchExpressions": [foo_in("bar")]}])),
                foo_bar(),
                Status::Fits,
            ),
            (
                "no terms at all match no node",
                requiring(json!([])),
                foo_bar(),
                no(),
            ),
            (
                "matchFields NotIn another name",
                requiring(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node1"]}]}]),
                ),
                labelled("node2", json!({})),
                Status::Fits,
            ),
            (
                "matchFields In with two values",
                requiring(json!([{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["node1", "node2"]}]}])),
                labelled("node1", json!({})),
                no(),
            ),
            (
                "matchFields with Exists",
                requiring(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "Exists"}]}]),
                ),
                labelled("node1", json!({})),
                no(),
            ),
            (
                "nodeSelector with an empty value wants the label present and empty",
                selecting(json!({"foo": ""})),
                foo_bar(),
                no(),
            ),
        ];
        check(filter, cases);
    }
}
