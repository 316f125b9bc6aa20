//! `NodeName`: a pod that names a node (`spec.nodeName`) fits only that node.

use k8s_openapi::api::core::v1::Pod;

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
