//! ClusterIP allocation from `--service-cluster-ip-range`.
//!
//! Each allocated address is a key of its own in the store, `<prefix>/ranges/serviceips/<ip>`,
//! created with the store's create-if-absent — the shape of Kubernetes 1.33's IPAddress objects.
//! Two apiservers can therefore never hand out one address twice, and a restart needs no
//! rebuild. The address is released when its Service is deleted.

use std::net::Ipv4Addr;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::storage::{Preconditions, Storage, StorageError};

/// An IPv4 service range, e.g. `10.96.0.0/12`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceRange {
    base: u32,
    bits: u8,
}

impl ServiceRange {
    pub fn parse(cidr: &str) -> Result<ServiceRange, String> {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr:?} is not a CIDR (e.g. 10.96.0.0/12)"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{cidr:?}: {ip:?} is not an IPv4 address"))?;
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| (8..=30).contains(b))
            .ok_or_else(|| format!("{cidr:?}: the prefix length must be between 8 and 30"))?;
        let mask = u32::MAX << (32 - bits);
        Ok(ServiceRange {
            base: u32::from(ip) & mask,
            bits,
        })
    }

    /// How many addresses can be handed out: all but the network address, the first address
    /// (kept for the `kubernetes` Service, as in Kubernetes) and the broadcast address.
    pub fn capacity(&self) -> u32 {
        (1u32 << (32 - self.bits)) - 3
    }

    fn address(&self, index: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 2 + index)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & (u32::MAX << (32 - self.bits)) == self.base
    }

    /// The first address, which Kubernetes gives the `kubernetes` Service.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }
}

impl std::fmt::Display for ServiceRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.bits)
    }
}

fn key(prefix: &str, ip: Ipv4Addr) -> String {
    format!("{}/ranges/serviceips/{ip}", prefix.trim_end_matches('/'))
}

/// Whether a Service of this spec gets a cluster IP (not headless, not ExternalName).
pub fn wants_ip(spec: &Value) -> bool {
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    kind != "ExternalName" && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
}

/// Reserves an address for `service` (`namespace/name`): the one asked for, or a free one.
pub async fn allocate(
    store: &dyn Storage,
    prefix: &str,
    range: &ServiceRange,
    requested: Option<&str>,
    service: &str,
) -> Result<Ipv4Addr, ApiError> {
    let owner = Bytes::from(serde_json::to_vec(&json!({"service": service})).unwrap_or_default());
    let invalid = |ip: &str, why: &str| {
        ApiError::invalid(
            "Service",
            "",
            service.rsplit('/').next().unwrap_or(service),
            &[api_types::validation::FieldError::invalid(
                "spec.clusterIPs[0]",
                ip,
                why,
            )],
        )
    };
    if let Some(ip) = requested.filter(|ip| !ip.is_empty()) {
        let addr: Ipv4Addr = ip.parse().map_err(|_| {
            invalid(
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            )
        })?;
        if !range.contains(addr) {
            return Err(invalid(
                ip,
                &format!(
                    "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}"
                ),
            ));
        }
        return match store.create(&key(prefix, addr), owner).await {
            Ok(_) => Ok(addr),
            Err(StorageError::AlreadyExists { .. }) => Err(invalid(
                ip,
                &format!("failed to allocate IP {ip}: provided IP is already allocated"),
            )),
            Err(e) => Err(ApiError::from_storage(e, "services", service)),
        };
    }
    // Random probes first (cheap while the range is sparse), then a scan.
    let capacity = range.capacity();
    let start: u32 = rand::random_range(0..capacity);
    let probes = (0..16).map(|_| rand::random_range(0..capacity));
    let scan = (0..capacity).map(|i| (start + i) % capacity);
    for index in probes.chain(scan) {
        let addr = range.address(index);
        match store.create(&key(prefix, addr), owner.clone()).await {
            Ok(_) => return Ok(addr),
            Err(StorageError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(ApiError::from_storage(e, "services", service)),
        }
    }
    Err(ApiError::internal(&format!(
        "failed to allocate a serviceIP: range is full (all addresses of {range} are allocated)"
    )))
}

/// Releases a Service's address (nothing to do when it has none).
pub async fn release(store: &dyn Storage, prefix: &str, ip: &str) {
    let Ok(addr) = ip.parse::<Ipv4Addr>() else {
        return;
    };
    match store
        .delete(&key(prefix, addr), &Preconditions::none())
        .await
    {
        Ok(_) | Err(StorageError::NotFound { .. }) => {}
        Err(e) => tracing::warn!(%ip, error = %e, "could not release a service IP"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        let r = ServiceRange::parse("10.96.0.0/12").unwrap();
        assert_eq!(r.to_string(), "10.96.0.0/12");
        assert_eq!(r.first(), Ipv4Addr::new(10, 96, 0, 1));
        assert!(r.contains(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!r.contains(Ipv4Addr::new(10, 112, 0, 1)));
        assert_eq!(ServiceRange::parse("10.0.0.0/29").unwrap().capacity(), 5);
        for bad in ["10.96.0.0", "10.96.0.0/33", "x/12", "10.0.0.0/31"] {
            assert!(ServiceRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headless_and_external_name_services_get_no_ip() {
        assert!(wants_ip(&json!({})));
        assert!(wants_ip(&json!({"type": "NodePort"})));
        assert!(!wants_ip(&json!({"clusterIP": "None"})));
        assert!(!wants_ip(&json!({"type": "ExternalName"})));
    }
}
