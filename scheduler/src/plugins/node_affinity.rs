//! `NodeAffinity`: `spec.nodeSelector` and the required node affinity terms (`In`, `NotIn`,
//! `Exists`, `DoesNotExist`, `Gt`, `Lt` on labels; `metadata.name` fields) must match the node.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, Pod};

use crate::framework::{NodeInfo, Status};

pub const NAME: &str = "NodeAffinity";
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|w| w == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|w| w == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(number), values.first().and_then(|w| number(w))), (Some(v), Some(w)) if v > w)
        }
        "Lt" => {
            matches!((value.and_then(number), values.first().and_then(|w| number(w))), (Some(v), Some(w)) if v < w)
        }
        _ => false,
    }
}

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    let empty = BTreeMap::new();
    let labels = node.node.metadata.labels.as_ref().unwrap_or(&empty);
    let spec = pod.spec.as_ref();
    let selector_ok = spec
        .and_then(|s| s.node_selector.as_ref())
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let terms = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.clone());
    // Terms are ORed; within a term, requirements are ANDed; an empty term matches nothing.
    let affinity_ok = terms.is_none_or(|terms| {
        terms.iter().any(|term| {
            let exprs = term.match_expressions.as_deref().unwrap_or_default();
            let fields = term.match_fields.as_deref().unwrap_or_default();
            (!exprs.is_empty() || !fields.is_empty())
                && exprs
                    .iter()
                    .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
                && fields
                    .iter()
                    .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node.name())))
        })
    });
    if selector_ok && affinity_ok {
        Status::Fits
    } else {
        Status::Unschedulable(vec![REASON.into()])
    }
}
