//! `NodeResourcesFit`: the pod's requests must fit in the node's allocatable beside what its pods
//! (running and assumed) already request; the node's pod count is a resource too.

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{NodeInfo, Status, pod_requests};

pub const NAME: &str = "NodeResourcesFit";

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    let allocatable = &node.allocatable;
    let want = pod_requests(pod);
    let used = &node.requested;
    let mut reasons = Vec::new();
    if used.pods + 1 > allocatable.pods {
        reasons.push("Too many pods".to_owned());
    }
    if want.milli_cpu > 0 && used.milli_cpu + want.milli_cpu > allocatable.milli_cpu {
        reasons.push("Insufficient cpu".into());
    }
    if want.memory > 0 && used.memory + want.memory > allocatable.memory {
        reasons.push("Insufficient memory".into());
    }
    if want.ephemeral_storage > 0
        && used.ephemeral_storage + want.ephemeral_storage > allocatable.ephemeral_storage
    {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    for (name, amount) in &want.scalar {
        let have = allocatable.scalar.get(name).copied().unwrap_or(0);
        let taken = used.scalar.get(name).copied().unwrap_or(0);
        if *amount > 0 && taken + amount > have {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    if reasons.is_empty() {
        Status::Fits
    } else {
        Status::Unschedulable(reasons)
    }
}
