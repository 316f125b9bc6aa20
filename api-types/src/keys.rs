//! Storage keys in Kubernetes' layout.
//!
//! kube-apiserver keeps a namespaced object at `<prefix>/<resource>/<namespace>/<name>` and a
//! cluster-scoped one at `<prefix>/<resource>/<name>`, where `<prefix>` is `--etcd-prefix`
//! (default `/registry`) and `<resource>` is the resource's storage path, which is usually its
//! plural but not always (nodes live under `minions`, services under `services/specs`: see
//! [`crate::registry::ResourceInfo::storage_path`]). Ferry uses the same keys so that an etcd
//! written by Ferry looks like one written by Kubernetes.

/// The default `--etcd-prefix`.
pub const DEFAULT_PREFIX: &str = "/registry";

/// The key of one object. `namespace` is `None` for cluster-scoped resources.
///
/// `object_key("/registry", "pods", Some("default"), "web-1")` is `/registry/pods/default/web-1`.
pub fn object_key(prefix: &str, storage_path: &str, namespace: Option<&str>, name: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    match namespace {
        Some(ns) => format!("{prefix}/{storage_path}/{ns}/{name}"),
        None => format!("{prefix}/{storage_path}/{name}"),
    }
}

/// The prefix under which a collection lives, ending in `/` so that listing `pods/default/` never
/// picks up `pods/default-2/…`. `namespace` is `None` for all namespaces (or a cluster-scoped
/// resource).
pub fn collection_prefix(prefix: &str, storage_path: &str, namespace: Option<&str>) -> String {
    let prefix = prefix.trim_end_matches('/');
    match namespace {
        Some(ns) => format!("{prefix}/{storage_path}/{ns}/"),
        None => format!("{prefix}/{storage_path}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_kubernetes_layout() {
        let cases = [
            (
                "/registry",
                "pods",
                Some("default"),
                "web-1",
                "/registry/pods/default/web-1",
            ),
            (
                "/registry/",
                "minions",
                None,
                "node-a",
                "/registry/minions/node-a",
            ),
            (
                "/ferry",
                "services/specs",
                Some("kube-system"),
                "dns",
                "/ferry/services/specs/kube-system/dns",
            ),
        ];
        for (prefix, path, ns, name, want) in cases {
            assert_eq!(object_key(prefix, path, ns, name), want);
        }
        assert_eq!(
            collection_prefix("/registry", "pods", Some("a")),
            "/registry/pods/a/"
        );
        assert_eq!(
            collection_prefix("/registry", "pods", None),
            "/registry/pods/"
        );
    }
}
