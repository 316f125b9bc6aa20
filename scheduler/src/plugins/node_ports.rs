//! `NodePorts`: a host port (protocol, IP, port) can be taken by one pod per node; `0.0.0.0`
//! conflicts with every IP.

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{NodeInfo, Status};

pub const NAME: &str = "NodePorts";
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// The host ports a pod asks for: (protocol, host IP, port).
pub fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|h| *h > 0)?;
            Some((
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                port,
            ))
        })
        .collect()
}

pub fn filter(pod: &Pod, node: &NodeInfo) -> Status {
    let conflict = host_ports(pod).iter().any(|(protocol, ip, port)| {
        node.host_ports.iter().any(|(p2, ip2, port2)| {
            p2 == protocol && port2 == port && (ip == ip2 || ip == "0.0.0.0" || ip2 == "0.0.0.0")
        })
    });
    if conflict {
        Status::Unschedulable(vec![REASON.into()])
    } else {
        Status::Fits
    }
}
