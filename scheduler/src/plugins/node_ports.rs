//! `NodePorts`: a host port (protocol, IP, port) can be taken by one pod per node; `0.0.0.0`
//! conflicts with every IP. Containers and sidecars (restartable init containers) hold ports.

use runtime::pod::Pod;

use crate::framework::{NodeInfo, Status};

pub const NAME: &str = "NodePorts";
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// The host ports a pod asks for: (protocol, host IP, port), of its sidecars (init containers
/// with `restartPolicy: Always`, which run as long as the pod) and its containers, as
/// Kubernetes' `GetHostPorts`.
pub fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let sidecars = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    sidecars
        .chain(containers)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{Case, check, node, pod, unschedulable};
    use serde_json::{Value, json};

    /// A pod with one container holding these `protocol/hostIP/hostPort` ports, as Kubernetes'
    /// test's `newPod`.
    fn ports(specs: &[&str]) -> Pod {
        pod(json!({"spec": {"containers": [{"name": "c", "ports": port_list(specs)}]}}))
    }

    fn port_list(specs: &[&str]) -> Value {
        specs
            .iter()
            .map(|spec| {
                let [protocol, ip, port] = spec.split('/').collect::<Vec<_>>()[..] else {
                    panic!("{spec} is not protocol/ip/port");
                };
                let port: i32 = port.parse().unwrap();
                json!({"containerPort": port, "protocol": protocol, "hostIP": ip, "hostPort": port})
            })
            .collect()
    }

    /// Node `m1` holding these pods.
    fn holding(pods: &[Pod]) -> NodeInfo {
        let pods: Vec<&Pod> = pods.iter().collect();
        NodeInfo::new(&node("m1", json!({})), &pods)
    }

    fn no() -> Status {
        unschedulable(&[REASON])
    }

    #[test]
    fn filter_as_kubernetes_does() {
        let cases: Vec<Case> = vec![
            // Kubernetes' TestNodePorts.
            (
                "a pod without ports",
                pod(json!({})),
                holding(&[ports(&["TCP/0.0.0.0/8080"])]),
                Status::Fits,
            ),
            (
                "other port",
                ports(&["UDP/127.0.0.1/8080"]),
                holding(&[ports(&["UDP/127.0.0.1/9090"])]),
                Status::Fits,
            ),
            (
                "same udp port",
                ports(&["UDP/127.0.0.1/8080"]),
                holding(&[ports(&["UDP/127.0.0.1/8080"])]),
                no(),
            ),
            (
                "same tcp port",
                ports(&["TCP/127.0.0.1/8080"]),
                holding(&[ports(&["TCP/127.0.0.1/8080"])]),
                no(),
            ),
            (
                "different host ip",
                ports(&["TCP/127.0.0.1/8080"]),
                holding(&[ports(&["TCP/127.0.0.2/8080"])]),
                Status::Fits,
            ),
            (
                "different protocol",
                ports(&["UDP/127.0.0.1/8080"]),
                holding(&[ports(&["TCP/127.0.0.1/8080"])]),
                Status::Fits,
            ),
            (
                "second udp port conflict",
                ports(&["UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"]),
                holding(&[ports(&["UDP/127.0.0.1/8080"])]),
                no(),
            ),
            (
                "first tcp port conflict",
                ports(&["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"]),
                holding(&[ports(&["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081"])]),
                no(),
            ),
            (
                "first tcp port conflict due to 0.0.0.0 hostIP",
                ports(&["TCP/0.0.0.0/8001"]),
                holding(&[ports(&["TCP/127.0.0.1/8001"])]),
                no(),
            ),
            (
                "TCP hostPort conflict due to 0.0.0.0 hostIP",
                ports(&["TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"]),
                holding(&[ports(&["TCP/127.0.0.1/8001"])]),
                no(),
            ),
            (
                "second tcp port conflict to 0.0.0.0 hostIP",
                ports(&["TCP/127.0.0.1/8001"]),
                holding(&[ports(&["TCP/0.0.0.0/8001"])]),
                no(),
            ),
            (
                "second different protocol",
                ports(&["UDP/127.0.0.1/8001"]),
                holding(&[ports(&["TCP/0.0.0.0/8001"])]),
                Status::Fits,
            ),
            (
                "UDP hostPort conflict due to 0.0.0.0 hostIP",
                ports(&["UDP/127.0.0.1/8001"]),
                holding(&[ports(&["TCP/0.0.0.0/8001", "UDP/0.0.0.0/8001"])]),
                no(),
            ),
            // Defaults and what holds no host port.
            (
                "an empty protocol is TCP and an empty hostIP is 0.0.0.0",
                pod(
                    json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}),
                ),
                holding(&[ports(&["TCP/10.0.0.1/8080"])]),
                no(),
            ),
            (
                "a container port without hostPort holds nothing",
                pod(
                    json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}}),
                ),
                holding(&[pod(
                    json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}}),
                )]),
                Status::Fits,
            ),
            (
                "the ports of every container count",
                pod(json!({"spec": {"containers": [
                    {"name": "a", "ports": port_list(&["TCP/0.0.0.0/8000"])},
                    {"name": "b", "ports": port_list(&["TCP/0.0.0.0/8080"])}]}})),
                holding(&[ports(&["TCP/127.0.0.1/8080"])]),
                no(),
            ),
            (
                "an empty node",
                ports(&["TCP/0.0.0.0/8080"]),
                holding(&[]),
                Status::Fits,
            ),
            // GetHostPorts: sidecars (restartPolicy Always) hold their ports, other init
            // containers, which have exited by then, do not.
            (
                "a sidecar's port conflicts with a running pod's",
                pod(json!({"spec": {"initContainers": [
                    {"name": "s", "restartPolicy": "Always", "ports": port_list(&["TCP/0.0.0.0/8081"])}]}})),
                holding(&[ports(&["TCP/0.0.0.0/8081"])]),
                no(),
            ),
            (
                "a running pod's sidecar holds its port",
                ports(&["TCP/0.0.0.0/8081"]),
                holding(&[pod(json!({"spec": {"initContainers": [
                    {"name": "s", "restartPolicy": "Always", "ports": port_list(&["TCP/0.0.0.0/8081"])}]}}))]),
                no(),
            ),
            (
                "a plain init container's port is not held",
                pod(json!({"spec": {"initContainers": [
                    {"name": "i", "ports": port_list(&["TCP/0.0.0.0/8081"])}]}})),
                holding(&[pod(json!({"spec": {"initContainers": [
                    {"name": "i", "ports": port_list(&["TCP/0.0.0.0/8081"])}]}}))]),
                Status::Fits,
            ),
        ];
        check(filter, cases);
    }

    #[test]
    fn a_removed_pods_ports_are_free_again() {
        let mut holder = pod(json!({"spec": {"initContainers": [
            {"name": "s", "restartPolicy": "Always", "ports": port_list(&["TCP/0.0.0.0/8081"])}],
            "containers": [{"name": "c", "ports": port_list(&["UDP/0.0.0.0/53"])}]}}));
        holder.metadata.uid = Some("u1".into());
        let mut node = holding(&[holder]);
        assert_eq!(node.host_ports.len(), 2);
        assert!(node.remove_pod("u1"));
        assert!(node.host_ports.is_empty());
        assert_eq!(filter(&ports(&["TCP/0.0.0.0/8081"]), &node), Status::Fits);
    }
}
