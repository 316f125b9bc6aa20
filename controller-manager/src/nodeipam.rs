//! Node IPAM (Kubernetes' `nodeipam` controller with the range allocator): with
//! `--allocate-node-cidrs`, every Node without `spec.podCIDR` gets the next free
//! `--node-cidr-mask-size` block (24 by default) of `--cluster-cidr`; a deleted node's block is
//! free again. What is taken is recovered from the nodes at start-up. IPv4 only.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt as _};
use serde_json::json;

use crate::runtime::{Change, Informer, Recorder};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IPv4 CIDR (like 10.244.0.0/16)")]
    Invalid(String),
    #[error(
        "node CIDR mask size {mask} must be at least the cluster CIDR's /{prefix} and at most 30"
    )]
    MaskSize { mask: u8, prefix: u8 },
}

/// Parses `a.b.c.d/n`, its host bits cleared.
pub fn parse_cidr(text: &str) -> Result<(u32, u8), CidrError> {
    let invalid = || CidrError::Invalid(text.to_owned());
    let (ip, prefix) = text.trim().split_once('/').ok_or_else(invalid)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| invalid())?;
    let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
    if prefix > 32 {
        return Err(invalid());
    }
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Ok((u32::from(ip) & mask, prefix))
}

/// The blocks of a cluster CIDR and which are taken.
#[derive(Debug, Clone)]
pub struct Allocator {
    base: u32,
    prefix: u8,
    mask: u8,
    taken: Vec<bool>,
}

impl Allocator {
    pub fn new(cluster_cidr: &str, mask: u8) -> Result<Allocator, CidrError> {
        let (base, prefix) = parse_cidr(cluster_cidr)?;
        if mask < prefix || mask > 30 || mask - prefix > 24 {
            return Err(CidrError::MaskSize { mask, prefix });
        }
        Ok(Allocator {
            base,
            prefix,
            mask,
            taken: vec![false; 1 << (mask - prefix)],
        })
    }

    fn index(&self, cidr: &str) -> Option<usize> {
        let (ip, prefix) = parse_cidr(cidr).ok()?;
        if prefix != self.mask {
            return None;
        }
        let span = 32 - u32::from(self.prefix);
        let inside = span == 32 || (ip ^ self.base) >> span == 0;
        inside.then(|| ((ip - self.base) >> (32 - u32::from(self.mask))) as usize)
    }

    fn cidr(&self, index: usize) -> String {
        let ip = self.base + ((index as u32) << (32 - u32::from(self.mask)));
        format!("{}/{}", Ipv4Addr::from(ip), self.mask)
    }

    /// Marks a block taken (one a node already has); false when it is not one of this range's.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        match self.index(cidr) {
            Some(i) => {
                self.taken[i] = true;
                true
            }
            None => false,
        }
    }

    pub fn release(&mut self, cidr: &str) {
        if let Some(i) = self.index(cidr) {
            self.taken[i] = false;
        }
    }

    /// The lowest free block, now taken; `None` when the range is exhausted.
    pub fn allocate(&mut self) -> Option<String> {
        let i = self.taken.iter().position(|t| !t)?;
        self.taken[i] = true;
        Some(self.cidr(i))
    }
}

/// The node's podCIDR, if it has one.
pub fn pod_cidr(node: &Node) -> Option<&str> {
    node.spec
        .as_ref()?
        .pod_cidr
        .as_deref()
        .filter(|c| !c.is_empty())
}

/// Runs the allocator over the nodes until the process ends.
pub async fn run(client: Client, nodes: Arc<Informer<Node>>, allocator: Allocator) {
    let mut changes = nodes.subscribe();
    nodes.ready().await;
    let store = nodes.store();
    let mut ipam = Ipam {
        recorder: Recorder::new(client.clone(), "cidrAllocator"),
        api: Api::all(client),
        allocator,
        assigned: HashMap::new(),
    };
    ipam.recover(&store.state());
    for node in store.state() {
        ipam.assign(&node).await;
    }
    while let Some(change) = changes.next().await {
        match change {
            Change::Applied(node) => ipam.assign(&node).await,
            Change::Deleted(node) => ipam.release(&node),
            Change::Resync => {
                let all = store.state();
                ipam.recover(&all);
                for node in all {
                    ipam.assign(&node).await;
                }
            }
        }
    }
}

struct Ipam {
    recorder: Recorder,
    api: Api<Node>,
    allocator: Allocator,
    /// What this controller gave each node, written or on its way.
    assigned: HashMap<String, String>,
}

impl Ipam {
    fn recover(&mut self, nodes: &[Arc<Node>]) {
        for node in nodes {
            if let Some(cidr) = pod_cidr(node) {
                if !self.allocator.occupy(cidr) {
                    tracing::warn!(node = %node.name_any(), cidr, "node podCIDR outside --cluster-cidr");
                }
                self.assigned.insert(node.name_any(), cidr.to_owned());
            }
        }
    }

    fn release(&mut self, node: &Node) {
        if let Some(cidr) = self.assigned.remove(&node.name_any()) {
            self.allocator.release(&cidr);
        }
        if let Some(cidr) = pod_cidr(node) {
            self.allocator.release(cidr);
        }
    }

    async fn assign(&mut self, node: &Node) {
        let name = node.name_any();
        if let Some(cidr) = pod_cidr(node) {
            self.assigned.insert(name, cidr.to_owned());
            return;
        }
        if self.assigned.contains_key(&name) || node.metadata.deletion_timestamp.is_some() {
            return;
        }
        let Some(cidr) = self.allocator.allocate() else {
            tracing::error!(node = %name, "cannot allocate a pod CIDR: --cluster-cidr is exhausted");
            self.recorder.warning(
                node,
                "CIDRNotAvailable",
                format!("Node {name} status is now: CIDRNotAvailable"),
            );
            return;
        };
        let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        match self
            .api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = %name, cidr, "allocated the node's pod CIDR");
                self.assigned.insert(name, cidr);
            }
            Err(error) => {
                tracing::warn!(node = %name, %error, "setting the node's pod CIDR");
                self.allocator.release(&cidr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_releases_and_recovers() {
        let mut a = Allocator::new("10.244.0.0/16", 24).unwrap();
        assert!(a.occupy("10.244.0.0/24"), "recovered at start-up");
        assert!(a.occupy("10.244.2.0/24"));
        assert!(!a.occupy("10.245.0.0/24"), "outside the range");
        assert!(!a.occupy("10.244.3.0/25"), "wrong size");
        assert_eq!(a.allocate().as_deref(), Some("10.244.1.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.244.3.0/24"));
        a.release("10.244.1.0/24");
        assert_eq!(a.allocate().as_deref(), Some("10.244.1.0/24"));
    }

    #[test]
    fn exhausts() {
        let mut a = Allocator::new("10.0.0.0/23", 24).unwrap();
        assert_eq!(a.allocate().as_deref(), Some("10.0.0.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.0.1.0/24"));
        assert_eq!(a.allocate(), None);
    }

    #[test]
    fn parses() {
        assert_eq!(
            parse_cidr("10.244.1.7/16"),
            Ok((u32::from(Ipv4Addr::new(10, 244, 0, 0)), 16))
        );
        assert!(parse_cidr("10.244.0.0").is_err());
        assert!(parse_cidr("fd00::/8").is_err());
        assert!(Allocator::new("10.244.0.0/16", 8).is_err());
        assert!(Allocator::new("0.0.0.0/0", 24).is_ok());
    }
}
