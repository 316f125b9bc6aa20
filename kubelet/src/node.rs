//! What a simulated node says about itself: its Node object (labels, capacity, nodeInfo,
//! addresses, conditions), its pod CIDR and its Lease. Pure functions over values.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::Options;

/// The version the simulated kubelets report (`status.nodeInfo.kubeletVersion`).
pub const KUBELET_VERSION: &str = "v1.33.0-ferry";
/// The simulated container runtime (`containerRuntimeVersion`, and the scheme of image and
/// container ids).
pub const RUNTIME_SCHEME: &str = "ferry-sim";
/// Where node Leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The kubelet's Lease duration (`nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// An IPv4 CIDR (`10.244.3.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` (IPv4 only); the base is masked to the prefix.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = s.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Some(Cidr {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }

    /// How many addresses it holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The address at `offset` from the base.
    pub fn nth(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base).wrapping_add(offset))
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let offset = u64::from(u32::from(ip).wrapping_sub(u32::from(self.base)));
        u32::from(ip) >= u32::from(self.base) && offset < self.size()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The pod CIDR a node without one gets: the `index`th /24 from 10.244.0.0 (flannel's and
/// kubeadm's default cluster CIDR, 10.244.0.0/16, holds 256 of them; past that the range simply
/// continues, 10.245.0.0/24 and on). Unique only among the nodes of one kubelet process: node
/// IPAM in the controller-manager (`--cluster-cidr`, a CIDR per node for the whole cluster) is
/// a later step, and a Node that already has a `spec.podCIDR` keeps it.
pub fn default_pod_cidr(index: usize) -> Cidr {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    Cidr {
        base: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)).wrapping_add(index << 8)),
        prefix: 24,
    }
}

/// The node's made-up InternalIP: 172.20.0.0/16 and on, one address per node index.
pub fn internal_ip(index: usize) -> Ipv4Addr {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 20, 0, 0)).wrapping_add(index + 2))
}

/// The labels a node registers with: the well-known ones, then `--node-labels`.
pub fn labels(name: &str, options: &Options) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), name.to_owned()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
        ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("beta.kubernetes.io/arch".to_owned(), "amd64".to_owned()),
    ]);
    if let Some(zone) = &options.zone {
        labels.insert("topology.kubernetes.io/zone".to_owned(), zone.clone());
    }
    labels.extend(options.labels.clone());
    labels
}

/// A stable made-up 32-hex-digit id for `name` (machineID, systemUUID, bootID).
fn made_up_id(name: &str, salt: u64) -> String {
    let hash = |seed: u64| {
        name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!("{:016x}{:016x}", hash(salt), hash(salt.wrapping_add(1)))
}

/// The node's conditions, all with `now` as heartbeat and `since` as transition time.
fn conditions(now: &str, since: &str) -> Value {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// The full node status at `now`; conditions' transition time is `since` (registration).
pub fn status(name: &str, index: usize, options: &Options, now: &str, since: &str) -> Value {
    let resources = json!({
        "cpu": options.cpu,
        "memory": options.memory,
        "pods": options.max_pods.to_string(),
        "ephemeral-storage": "100Gi",
    });
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions(now, since),
        "addresses": [
            {"type": "InternalIP", "address": internal_ip(index).to_string()},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": made_up_id(name, 1),
            "systemUUID": made_up_id(name, 3),
            "bootID": made_up_id(name, 5),
            "kernelVersion": "6.8.0-ferry",
            "osImage": "Ferry simulated node",
            "containerRuntimeVersion": format!("{RUNTIME_SCHEME}://{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

/// A new Node as the kubelet registers it (taints only at registration, as the kubelet's
/// `--register-with-taints`).
pub fn new_node(name: &str, index: usize, options: &Options, now: &str) -> Value {
    let cidr = default_pod_cidr(index).to_string();
    let mut spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
    if !options.taints.is_empty() {
        spec["taints"] = Value::Array(
            options
                .taints
                .iter()
                .map(|t| {
                    let mut taint = json!({"key": t.key, "effect": t.effect});
                    if let Some(value) = &t.value {
                        taint["value"] = json!(value);
                    }
                    taint
                })
                .collect(),
        );
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels(name, options)},
        "spec": spec,
        "status": status(name, index, options, now, now),
    })
}

/// The Lease body a heartbeat writes (merge patch or create).
pub fn lease(name: &str, renew_time: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": renew_time,
        },
    })
}

/// Now, as `Time` (seconds) and `MicroTime` (microseconds) strings.
pub fn now_strings() -> (String, String) {
    let now = jiff::Timestamp::now();
    let seconds = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    (
        seconds.to_string(),
        format!("{}", now.strftime("%Y-%m-%dT%H:%M:%S.%6fZ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_cidrs_by_index() {
        assert_eq!(default_pod_cidr(0).to_string(), "10.244.0.0/24");
        assert_eq!(default_pod_cidr(3).to_string(), "10.244.3.0/24");
        assert_eq!(default_pod_cidr(256).to_string(), "10.245.0.0/24");
        assert_eq!(internal_ip(0).to_string(), "172.20.0.2");
    }

    #[test]
    fn cidr_parse_and_contains() {
        let cidr = Cidr::parse("10.244.1.7/24").expect("a cidr");
        assert_eq!(cidr.to_string(), "10.244.1.0/24");
        assert_eq!(cidr.size(), 256);
        assert!(cidr.contains(Ipv4Addr::new(10, 244, 1, 255)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 244, 2, 0)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 244, 0, 255)));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("fd00::/64"), None);
        assert_eq!(Cidr::parse("0.0.0.0/0").map(|c| c.size()), Some(1 << 32));
    }

    #[test]
    fn node_registration() {
        let options = Options {
            zone: Some("zone-a".to_owned()),
            labels: BTreeMap::from([("role".to_owned(), "sim".to_owned())]),
            taints: vec![crate::Taint {
                key: "k".to_owned(),
                value: Some("v".to_owned()),
                effect: "NoSchedule".to_owned(),
            }],
            ..Options::default()
        };
        let node = new_node("n-1", 1, &options, "2026-01-01T00:00:00Z");
        let labels = &node["metadata"]["labels"];
        assert_eq!(labels["kubernetes.io/hostname"], "n-1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["topology.kubernetes.io/zone"], "zone-a");
        assert_eq!(labels["role"], "sim");
        assert_eq!(node["spec"]["podCIDR"], "10.244.1.0/24");
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "k", "value": "v", "effect": "NoSchedule"}])
        );
        let status = &node["status"];
        assert_eq!(status["capacity"]["cpu"], "4");
        assert_eq!(status["allocatable"]["memory"], "32Gi");
        assert_eq!(status["capacity"]["pods"], "110");
        assert_eq!(status["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(status["addresses"][0]["address"], "172.20.0.3");
        let ready = status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .expect("a Ready condition");
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["reason"], "KubeletReady");
        assert_eq!(ready["message"], "kubelet is posting ready status");
        // It decodes as a Node.
        let _: k8s_openapi::api::core::v1::Node =
            serde_json::from_value(node).expect("a valid Node");
    }

    #[test]
    fn lease_body() {
        let (_, micro) = now_strings();
        let lease: k8s_openapi::api::coordination::v1::Lease =
            serde_json::from_value(lease("n", &micro)).expect("a valid Lease");
        let spec = lease.spec.expect("a spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("n"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert!(spec.renew_time.is_some());
    }
}
