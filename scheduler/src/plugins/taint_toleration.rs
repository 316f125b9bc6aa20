//! `TaintToleration`: a node's `NoSchedule` and `NoExecute` taints keep out pods that do not
//! tolerate them (`PreferNoSchedule` only scores).

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use crate::framework::{NodeInfo, Status};

pub const NAME: &str = "TaintToleration";

/// `Toleration.ToleratesTaint`.
pub fn toleration_matches(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        // An empty key with Exists tolerates everything.
        "Exists" => true,
        "Equal" | "" => {
            t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
                && !key.is_empty()
        }
        _ => false,
    }
}

pub fn tolerates(pod: &Pod, taint: &Taint) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| toleration_matches(t, taint)))
}

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    let untolerated = node
        .node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .find(|taint| {
            matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerates(pod, taint)
        });
    match untolerated {
        Some(taint) => {
            let value = taint.value.as_deref().unwrap_or_default();
            Status::Unschedulable(vec![format!(
                "node(s) had untolerated taint {{{}: {value}}}",
                taint.key
            )])
        }
        None => Status::Fits,
    }
}
