//! `NodeUnschedulable`: a cordoned node (`spec.unschedulable`) takes only pods that tolerate
//! `node.kubernetes.io/unschedulable:NoSchedule`.

use k8s_openapi::api::core::v1::Taint;
use runtime::pod::Pod;

use super::taint_toleration::tolerates;
use crate::framework::{NodeInfo, Status};

pub const NAME: &str = "NodeUnschedulable";
pub const REASON: &str = "node(s) were unschedulable";

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    if !node.unschedulable {
        return Status::Fits;
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    };
    if tolerates(pod, &taint) {
        Status::Fits
    } else {
        Status::Unschedulable(vec![REASON.into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{Case, check, node, pod, unschedulable};
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    fn on(node: Node) -> NodeInfo {
        NodeInfo::new(&node, &[])
    }

    fn cordoned() -> NodeInfo {
        on(node("n", json!({"spec": {"unschedulable": true}})))
    }

    fn tolerating(toleration: Value) -> Pod {
        pod(json!({"spec": {"tolerations": [toleration]}}))
    }

    #[test]
    fn filter_as_kubernetes_does() {
        let cases: Vec<Case> = vec![
            // Kubernetes' TestNodeUnschedulable.
            (
                "does not schedule pod to unschedulable node",
                pod(json!({})),
                cordoned(),
                unschedulable(&[REASON]),
            ),
            (
                "schedules pod to normal node",
                pod(json!({})),
                on(node("n", json!({"spec": {"unschedulable": false}}))),
                Status::Fits,
            ),
            (
                "schedules pod with toleration to unschedulable node",
                tolerating(
                    json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}),
                ),
                cordoned(),
                Status::Fits,
            ),
            // The toleration as Toleration.ToleratesTaint reads it.
            (
                "unschedulable unset",
                pod(json!({})),
                on(node("n", json!({}))),
                Status::Fits,
            ),
            (
                "Exists on the key",
                tolerating(
                    json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}),
                ),
                cordoned(),
                Status::Fits,
            ),
            (
                "Exists with an empty key tolerates everything",
                tolerating(json!({"operator": "Exists"})),
                cordoned(),
                Status::Fits,
            ),
            (
                "a NoExecute toleration does not tolerate NoSchedule",
                tolerating(
                    json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}),
                ),
                cordoned(),
                unschedulable(&[REASON]),
            ),
            (
                "Equal with a value does not match the taint's empty value",
                tolerating(
                    json!({"key": "node.kubernetes.io/unschedulable", "operator": "Equal", "value": "true"}),
                ),
                cordoned(),
                unschedulable(&[REASON]),
            ),
            (
                "a toleration of another key does not help",
                tolerating(json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists"})),
                cordoned(),
                unschedulable(&[REASON]),
            ),
            (
                "the unschedulable taint itself is TaintToleration's business",
                pod(json!({})),
                on(node(
                    "n",
                    json!({"spec": {"taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}}),
                )),
                Status::Fits,
            ),
        ];
        check(filter, cases);
    }
}
