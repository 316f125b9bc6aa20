//! `NodeName`: a pod that names a node (`spec.nodeName`) fits only that node.

use runtime::pod::Pod;

use crate::framework::{NodeInfo, Status};

pub const NAME: &str = "NodeName";
pub const REASON: &str = "node(s) didn't match the requested node name";

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(wanted) if !wanted.is_empty() && wanted != node.name() => {
            Status::Unschedulable(vec![REASON.into()])
        }
        _ => Status::Fits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{Case, check, node, pod, unschedulable};
    use serde_json::json;

    fn named(name: &str) -> NodeInfo {
        NodeInfo::new(&node(name, json!({})), &[])
    }

    #[test]
    fn filter_as_kubernetes_does() {
        let cases: Vec<Case> = vec![
            // Kubernetes' TestNodeName.
            (
                "no host specified",
                pod(json!({})),
                named("foo"),
                Status::Fits,
            ),
            (
                "host matches",
                pod(json!({"spec": {"nodeName": "foo"}})),
                named("foo"),
                Status::Fits,
            ),
            (
                "host doesn't match",
                pod(json!({"spec": {"nodeName": "bar"}})),
                named("foo"),
                unschedulable(&[REASON]),
            ),
            // An empty nodeName names no node.
            (
                "empty nodeName",
                pod(json!({"spec": {"nodeName": ""}})),
                named("foo"),
                Status::Fits,
            ),
            (
                "names are compared exactly",
                pod(json!({"spec": {"nodeName": "Foo"}})),
                named("foo"),
                unschedulable(&[REASON]),
            ),
        ];
        check(filter, cases);
    }
}
