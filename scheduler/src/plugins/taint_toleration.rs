//! `TaintToleration`: a node's `NoSchedule` and `NoExecute` taints keep out pods that do not
//! tolerate them (`PreferNoSchedule` only scores).

use k8s_openapi::api::core::v1::Taint;
use runtime::pod::Pod;

use crate::framework::{NodeInfo, Status};

pub const NAME: &str = "TaintToleration";

pub use api_types::taints::tolerates as toleration_matches;

pub fn tolerates(pod: &Pod, taint: &Taint) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| toleration_matches(t, taint)))
}

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    let untolerated = node.taints.iter().find(|taint| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{Case, check, node, pod, unschedulable};
    use serde_json::{Value, json};

    fn tainted(taints: Value) -> NodeInfo {
        NodeInfo::new(&node("nodeA", json!({"spec": {"taints": taints}})), &[])
    }

    fn tolerating(tolerations: Value) -> Pod {
        pod(json!({"spec": {"tolerations": tolerations}}))
    }

    #[test]
    fn filter_as_kubernetes_does() {
        let dedicated_user1 =
            || tainted(json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}]));
        let foo_bar = || tainted(json!([{"key": "foo", "value": "bar", "effect": "NoSchedule"}]));
        let cases: Vec<Case> = vec![
            // Kubernetes' TestTaintTolerationFilter (1.33: the reason names the taint).
            (
                "a pod without tolerations can't be scheduled onto a node with taints",
                tolerating(json!([])),
                dedicated_user1(),
                unschedulable(&["node(s) had untolerated taint {dedicated: user1}"]),
            ),
            (
                "a pod tolerating the dedicated taint of user1",
                tolerating(json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}])),
                dedicated_user1(),
                Status::Fits,
            ),
            (
                "a pod tolerating user2 can't go to the node dedicated to user1",
                tolerating(
                    json!([{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}]),
                ),
                dedicated_user1(),
                unschedulable(&["node(s) had untolerated taint {dedicated: user1}"]),
            ),
            (
                "operator Exists tolerates whatever the value",
                tolerating(json!([{"key": "foo", "operator": "Exists", "effect": "NoSchedule"}])),
                foo_bar(),
                Status::Fits,
            ),
            (
                "several tolerations tolerate all of several taints",
                tolerating(json!([
                    {"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"},
                    {"key": "foo", "operator": "Exists", "effect": "NoSchedule"}
                ])),
                tainted(json!([
                    {"key": "dedicated", "value": "user2", "effect": "NoSchedule"},
                    {"key": "foo", "value": "bar", "effect": "NoSchedule"}
                ])),
                Status::Fits,
            ),
            (
                "key and value match but a non-empty effect does not",
                tolerating(
                    json!([{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}]),
                ),
                foo_bar(),
                unschedulable(&["node(s) had untolerated taint {foo: bar}"]),
            ),
            (
                "a toleration without effect matches any effect",
                tolerating(json!([{"key": "foo", "operator": "Equal", "value": "bar"}])),
                foo_bar(),
                Status::Fits,
            ),
            (
                "an untolerated PreferNoSchedule taint does not filter",
                tolerating(
                    json!([{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}]),
                ),
                tainted(
                    json!([{"key": "dedicated", "value": "user1", "effect": "PreferNoSchedule"}]),
                ),
                Status::Fits,
            ),
            (
                "no toleration, only a PreferNoSchedule taint",
                tolerating(json!([])),
                tainted(
                    json!([{"key": "dedicated", "value": "user1", "effect": "PreferNoSchedule"}]),
                ),
                Status::Fits,
            ),
            // NoExecute keeps pods out like NoSchedule.
            (
                "an untolerated NoExecute taint",
                tolerating(json!([])),
                tainted(json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}])),
                unschedulable(&[
                    "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
                ]),
            ),
            (
                "a NoExecute toleration with tolerationSeconds",
                tolerating(
                    json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 300}]),
                ),
                tainted(json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}])),
                Status::Fits,
            ),
            (
                "a NoSchedule toleration does not tolerate NoExecute",
                tolerating(json!([{"key": "foo", "operator": "Exists", "effect": "NoSchedule"}])),
                tainted(json!([{"key": "foo", "value": "bar", "effect": "NoExecute"}])),
                unschedulable(&["node(s) had untolerated taint {foo: bar}"]),
            ),
            // An empty key with Exists matches every key.
            (
                "empty key with Exists tolerates every taint",
                tolerating(json!([{"operator": "Exists"}])),
                tainted(json!([
                    {"key": "foo", "value": "bar", "effect": "NoSchedule"},
                    {"key": "dedicated", "value": "user1", "effect": "NoExecute"}
                ])),
                Status::Fits,
            ),
            (
                "empty key with Exists and an effect tolerates that effect only",
                tolerating(json!([{"operator": "Exists", "effect": "NoSchedule"}])),
                tainted(json!([
                    {"key": "foo", "value": "bar", "effect": "NoSchedule"},
                    {"key": "dedicated", "value": "user1", "effect": "NoExecute"}
                ])),
                unschedulable(&["node(s) had untolerated taint {dedicated: user1}"]),
            ),
            // Operator and value details.
            (
                "no operator means Equal: an empty value matches an empty value",
                tolerating(
                    json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                ),
                tainted(
                    json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                ),
                Status::Fits,
            ),
            (
                "Equal compares values exactly",
                tolerating(json!([{"key": "foo", "operator": "Equal", "value": "Bar"}])),
                foo_bar(),
                unschedulable(&["node(s) had untolerated taint {foo: bar}"]),
            ),
            (
                "Equal on another key does not match",
                tolerating(json!([{"key": "fo", "operator": "Equal", "value": "bar"}])),
                foo_bar(),
                unschedulable(&["node(s) had untolerated taint {foo: bar}"]),
            ),
            (
                "Gt is not an operator in 1.33 and tolerates nothing",
                tolerating(
                    json!([{"key": "sla", "operator": "Gt", "value": "750", "effect": "NoSchedule"}]),
                ),
                tainted(json!([{"key": "sla", "value": "950", "effect": "NoSchedule"}])),
                unschedulable(&["node(s) had untolerated taint {sla: 950}"]),
            ),
            // The first untolerated NoSchedule/NoExecute taint, in the node's order, is named.
            (
                "the first untolerated taint is the one reported",
                tolerating(json!([{"key": "a", "operator": "Exists"}])),
                tainted(json!([
                    {"key": "soft", "value": "1", "effect": "PreferNoSchedule"},
                    {"key": "a", "value": "1", "effect": "NoSchedule"},
                    {"key": "b", "value": "2", "effect": "NoExecute"},
                    {"key": "c", "value": "3", "effect": "NoSchedule"}
                ])),
                unschedulable(&["node(s) had untolerated taint {b: 2}"]),
            ),
            (
                "a node without taints",
                tolerating(json!([])),
                NodeInfo::new(&node("nodeA", json!({})), &[]),
                Status::Fits,
            ),
        ];
        check(filter, cases);
    }
}
