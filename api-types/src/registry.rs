//! The resources Ferry serves, described as Kubernetes 1.33's discovery describes them.
//!
//! Everything discovery needs (`kubectl api-resources -o wide`: plural, singular, short names,
//! kind, scope, verbs, categories, subresources) and where the objects are stored comes from this
//! one static table. The table is in preference order: the core group first, then `apps`,
//! `events.k8s.io`, `scheduling.k8s.io` and `coordination.k8s.io`, as kube-apiserver orders its
//! groups, so that a name that two groups share (`events`) resolves to the core group first, as
//! kubectl resolves it.

use std::fmt;

/// One served resource (a group, version and plural).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// Plural resource name, as in URLs (`pods`).
    pub resource: &'static str,
    pub kind: &'static str,
    /// Singular name (`pod`), as discovery reports it.
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    /// The verbs on the collection and its objects, sorted as discovery sorts them.
    pub verbs: &'static [&'static str],
    /// The subresources Ferry serves; see [`ResourceInfo::subresource`] for their details.
    pub subresources: &'static [&'static str],
    /// The path under the etcd prefix where the objects live (see [`crate::keys`]); usually the
    /// plural, but Kubernetes keeps nodes under `minions` and services under `services/specs`.
    pub storage_path: &'static str,
}

/// A subresource as discovery describes it: the kind it takes and returns, and its verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// The subresource name (`status`, `scale`, …).
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

impl SubresourceInfo {
    /// `apiVersion` of the subresource's kind (`autoscaling/v1` for `scale`).
    pub fn api_version(&self) -> String {
        join_api_version(self.group, self.version)
    }
}

/// A served group and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersion {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
}

impl GroupVersion {
    /// `v1`, `apps/v1`, …
    pub fn api_version(&self) -> String {
        join_api_version(self.group, self.version)
    }
}

impl fmt::Display for GroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.api_version())
    }
}

fn join_api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Split an `apiVersion` into group and version: `v1` → (`""`, `v1`), `apps/v1` → (`apps`,
/// `v1`). `None` when it has more than one `/` or an empty part.
pub fn split_api_version(api_version: &str) -> Option<(&str, &str)> {
    match api_version.split_once('/') {
        None if !api_version.is_empty() => Some(("", api_version)),
        Some((group, version))
            if !group.is_empty() && !version.is_empty() && !version.contains('/') =>
        {
            Some((group, version))
        }
        _ => None,
    }
}

impl ResourceInfo {
    /// `apiVersion` of the resource's objects: `v1` for the core group, else `group/version`.
    pub fn api_version(&self) -> String {
        join_api_version(self.group, self.version)
    }

    pub fn group_version(&self) -> GroupVersion {
        GroupVersion {
            group: self.group,
            version: self.version,
        }
    }

    /// The kind of the resource's lists (`PodList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The resource as Kubernetes names it in messages and as kubectl accepts it: the plural for
    /// the core group (`pods`), else plural and group (`deployments.apps`).
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// A served subresource's details, `None` if this resource does not serve it.
    pub fn subresource(&self, name: &str) -> Option<SubresourceInfo> {
        let name = *self.subresources.iter().find(|s| **s == name)?;
        let (group, version, kind, verbs): (&str, &str, &str, &[&str]) = match name {
            "status" => (self.group, self.version, self.kind, GET_PATCH_UPDATE),
            "scale" => ("autoscaling", "v1", "Scale", GET_PATCH_UPDATE),
            "binding" => ("", "v1", "Binding", CREATE),
            "eviction" => ("policy", "v1", "Eviction", CREATE),
            "finalize" => (self.group, self.version, self.kind, UPDATE),
            _ => return None,
        };
        Some(SubresourceInfo {
            name,
            group,
            version,
            kind,
            verbs,
        })
    }

    /// All served subresources with their details, in discovery order.
    pub fn subresource_infos(&self) -> Vec<SubresourceInfo> {
        self.subresources
            .iter()
            .filter_map(|s| self.subresource(s))
            .collect()
    }

    /// Whether `name` (already lower-cased) names this resource as kubectl would accept it:
    /// plural, singular, a short name, or the kind.
    fn answers_to(&self, name: &str) -> bool {
        self.resource == name
            || self.singular == name
            || self.short_names.contains(&name)
            || self.kind.eq_ignore_ascii_case(name)
    }
}

/// The standard verbs of a resource with collection delete.
const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces have no `deletecollection`.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const CREATE: &[&str] = &["create"];
const UPDATE: &[&str] = &["update"];
const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

static RESOURCES: &[ResourceInfo] = &[
    // core/v1, in discovery's (alphabetical) order.
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "configmaps",
        kind: "ConfigMap",
        singular: "configmap",
        short_names: &["cm"],
        categories: NONE,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: NONE,
        storage_path: "configmaps",
    },
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "endpoints",
        kind: "Endpoints",
        singular: "endpoints",
        short_names: &["ep"],
        categories: NONE,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: NONE,
        storage_path: "services/endpoints",
    },
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "events",
        kind: "Event",
        singular: "event",
        short_names: &["ev"],
        categories: NONE,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: NONE,
        storage_path: "events",
    },
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "namespaces",
        kind: "Namespace",
        singular: "namespace",
        short_names: &["ns"],
        categories: NONE,
        namespaced: false,
        verbs: NAMESPACE_VERBS,
        subresources: &["finalize", "status"],
        storage_path: "namespaces",
    },
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "nodes",
        kind: "Node",
        singular: "node",
        short_names: &["no"],
        categories: NONE,
        namespaced: false,
        verbs: STANDARD_VERBS,
        subresources: &["status"],
        storage_path: "minions",
    },
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "pods",
        kind: "Pod",
        singular: "pod",
        short_names: &["po"],
        categories: ALL,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: &["binding", "eviction", "status"],
        storage_path: "pods",
    },
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "secrets",
        kind: "Secret",
        singular: "secret",
        short_names: NONE,
        categories: NONE,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: NONE,
        storage_path: "secrets",
    },
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "serviceaccounts",
        kind: "ServiceAccount",
        singular: "serviceaccount",
        short_names: &["sa"],
        categories: NONE,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: NONE,
        storage_path: "serviceaccounts",
    },
    ResourceInfo {
        group: "",
        version: "v1",
        resource: "services",
        kind: "Service",
        singular: "service",
        short_names: &["svc"],
        categories: ALL,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: &["status"],
        storage_path: "services/specs",
    },
    // apps/v1
    ResourceInfo {
        group: "apps",
        version: "v1",
        resource: "deployments",
        kind: "Deployment",
        singular: "deployment",
        short_names: &["deploy"],
        categories: ALL,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: &["scale", "status"],
        storage_path: "deployments",
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        resource: "replicasets",
        kind: "ReplicaSet",
        singular: "replicaset",
        short_names: &["rs"],
        categories: ALL,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: &["scale", "status"],
        storage_path: "replicasets",
    },
    // events.k8s.io/v1: the same objects as core events, under the same storage path.
    ResourceInfo {
        group: "events.k8s.io",
        version: "v1",
        resource: "events",
        kind: "Event",
        singular: "event",
        short_names: &["ev"],
        categories: NONE,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: NONE,
        storage_path: "events",
    },
    // scheduling.k8s.io/v1
    ResourceInfo {
        group: "scheduling.k8s.io",
        version: "v1",
        resource: "priorityclasses",
        kind: "PriorityClass",
        singular: "priorityclass",
        short_names: &["pc"],
        categories: NONE,
        namespaced: false,
        verbs: STANDARD_VERBS,
        subresources: NONE,
        storage_path: "priorityclasses",
    },
    // coordination.k8s.io/v1
    ResourceInfo {
        group: "coordination.k8s.io",
        version: "v1",
        resource: "leases",
        kind: "Lease",
        singular: "lease",
        short_names: NONE,
        categories: NONE,
        namespaced: true,
        verbs: STANDARD_VERBS,
        subresources: NONE,
        storage_path: "leases",
    },
];

static GROUP_VERSIONS: &[GroupVersion] = &[
    GroupVersion {
        group: "",
        version: "v1",
    },
    GroupVersion {
        group: "apps",
        version: "v1",
    },
    GroupVersion {
        group: "events.k8s.io",
        version: "v1",
    },
    GroupVersion {
        group: "scheduling.k8s.io",
        version: "v1",
    },
    GroupVersion {
        group: "coordination.k8s.io",
        version: "v1",
    },
];

/// Every served resource, core group first, then by group in preference order.
pub fn all() -> &'static [ResourceInfo] {
    RESOURCES
}

/// The served group-versions in preference order: `v1` (served under `/api`), then the named
/// groups in the order `/apis` lists them.
pub fn group_versions() -> &'static [GroupVersion] {
    GROUP_VERSIONS
}

/// The resources of one group-version, in discovery order.
pub fn resources_in(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceInfo> {
    let (group, version) = (group.to_string(), version.to_string());
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Exact lookup, as a URL names a resource: `("", "v1", "pods")`, `("apps", "v1",
/// "deployments")`.
pub fn by_group_version_resource(
    group: &str,
    version: &str,
    resource: &str,
) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// The resource of a kind in a group (`("apps", "Deployment")`); kinds are case-sensitive.
pub fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// The resource of an object's `apiVersion` and `kind` (`("apps/v1", "Deployment")`).
pub fn by_api_version_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = split_api_version(api_version)?;
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// A resource named as [`ResourceInfo::qualified_resource`] writes it: `pods`,
/// `deployments.apps`, `events.events.k8s.io`.
pub fn by_qualified_resource(qualified: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| {
        if r.group.is_empty() {
            qualified == r.resource
        } else {
            qualified
                .strip_prefix(r.resource)
                .and_then(|rest| rest.strip_prefix('.'))
                == Some(r.group)
        }
    })
}

/// Resolve a name the way kubectl does on its command line: case-insensitively, by plural,
/// singular, short name or kind, optionally qualified by group (`deploy.apps`) or by version and
/// group (`deployments.v1.apps`). Returns every match in preference order, so `events` gives the
/// core resource first and the `events.k8s.io` one second. Empty when nothing matches.
pub fn resolve(name: &str) -> Vec<&'static ResourceInfo> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Vec::new();
    }
    let mut found: Vec<&'static ResourceInfo> =
        RESOURCES.iter().filter(|r| r.answers_to(&name)).collect();
    if found.is_empty()
        && let Some((head, qualifier)) = name.split_once('.')
    {
        // `<name>.<group>` first, then `<name>.<version>.<group>`, as kubectl tries them.
        found = RESOURCES
            .iter()
            .filter(|r| r.group == qualifier && r.answers_to(head))
            .collect();
        if found.is_empty()
            && let Some((version, group)) = qualifier.split_once('.')
        {
            found = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version && r.answers_to(head))
                .collect();
        }
    }
    found
}

/// The resources in a category (`all` gives pods, services, deployments and replicasets), in
/// preference order.
pub fn by_category(category: &str) -> Vec<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .filter(|r| r.categories.contains(&category))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (api version, plural, singular, short names, namespaced, kind, verbs, categories), the
    /// columns of `kubectl api-resources -o wide` against Kubernetes 1.33.
    #[test]
    fn matches_kubernetes_discovery() {
        let standard = "create,delete,deletecollection,get,list,patch,update,watch";
        let cases = [
            (
                "v1",
                "configmaps",
                "configmap",
                "cm",
                true,
                "ConfigMap",
                standard,
                "",
            ),
            (
                "v1",
                "endpoints",
                "endpoints",
                "ep",
                true,
                "Endpoints",
                standard,
                "",
            ),
            ("v1", "events", "event", "ev", true, "Event", standard, ""),
            (
                "v1",
                "namespaces",
                "namespace",
                "ns",
                false,
                "Namespace",
                "create,delete,get,list,patch,update,watch",
                "",
            ),
            ("v1", "nodes", "node", "no", false, "Node", standard, ""),
            ("v1", "pods", "pod", "po", true, "Pod", standard, "all"),
            ("v1", "secrets", "secret", "", true, "Secret", standard, ""),
            (
                "v1",
                "serviceaccounts",
                "serviceaccount",
                "sa",
                true,
                "ServiceAccount",
                standard,
                "",
            ),
            (
                "v1", "services", "service", "svc", true, "Service", standard, "all",
            ),
            (
                "apps/v1",
                "deployments",
                "deployment",
                "deploy",
                true,
                "Deployment",
                standard,
                "all",
            ),
            (
                "apps/v1",
                "replicasets",
                "replicaset",
                "rs",
                true,
                "ReplicaSet",
                standard,
                "all",
            ),
            (
                "events.k8s.io/v1",
                "events",
                "event",
                "ev",
                true,
                "Event",
                standard,
                "",
            ),
            (
                "scheduling.k8s.io/v1",
                "priorityclasses",
                "priorityclass",
                "pc",
                false,
                "PriorityClass",
                standard,
                "",
            ),
            (
                "coordination.k8s.io/v1",
                "leases",
                "lease",
                "",
                true,
                "Lease",
                standard,
                "",
            ),
        ];
        assert_eq!(all().len(), cases.len());
        for (api_version, plural, singular, short, namespaced, kind, verbs, categories) in cases {
            let (group, version) = split_api_version(api_version).unwrap();
            let r = by_group_version_resource(group, version, plural)
                .unwrap_or_else(|| panic!("{api_version} {plural}"));
            assert_eq!(r.api_version(), api_version);
            assert_eq!(r.singular, singular, "{plural}");
            assert_eq!(r.short_names.join(","), short, "{plural}");
            assert_eq!(r.namespaced, namespaced, "{plural}");
            assert_eq!(r.kind, kind, "{plural}");
            assert_eq!(r.verbs.join(","), verbs, "{plural}");
            assert_eq!(r.categories.join(","), categories, "{plural}");
        }
    }

    #[test]
    fn storage_paths_follow_kubernetes() {
        let cases = [
            ("", "nodes", "minions"),
            ("", "services", "services/specs"),
            ("", "endpoints", "services/endpoints"),
            ("", "pods", "pods"),
            ("events.k8s.io", "events", "events"),
            ("", "events", "events"),
            ("apps", "deployments", "deployments"),
            ("coordination.k8s.io", "leases", "leases"),
            ("scheduling.k8s.io", "priorityclasses", "priorityclasses"),
        ];
        for (group, plural, path) in cases {
            assert_eq!(
                by_group_version_resource(group, "v1", plural)
                    .unwrap()
                    .storage_path,
                path
            );
        }
    }

    #[test]
    fn subresources() {
        let cases = [
            (
                "",
                "pods",
                "status",
                Some(("v1", "Pod", "get,patch,update")),
            ),
            ("", "pods", "binding", Some(("v1", "Binding", "create"))),
            (
                "",
                "pods",
                "eviction",
                Some(("policy/v1", "Eviction", "create")),
            ),
            ("", "pods", "log", None),
            ("", "pods", "scale", None),
            (
                "",
                "namespaces",
                "finalize",
                Some(("v1", "Namespace", "update")),
            ),
            (
                "",
                "namespaces",
                "status",
                Some(("v1", "Namespace", "get,patch,update")),
            ),
            (
                "",
                "nodes",
                "status",
                Some(("v1", "Node", "get,patch,update")),
            ),
            (
                "",
                "services",
                "status",
                Some(("v1", "Service", "get,patch,update")),
            ),
            ("", "configmaps", "status", None),
            (
                "apps",
                "deployments",
                "scale",
                Some(("autoscaling/v1", "Scale", "get,patch,update")),
            ),
            (
                "apps",
                "deployments",
                "status",
                Some(("apps/v1", "Deployment", "get,patch,update")),
            ),
            (
                "apps",
                "replicasets",
                "scale",
                Some(("autoscaling/v1", "Scale", "get,patch,update")),
            ),
            (
                "apps",
                "replicasets",
                "status",
                Some(("apps/v1", "ReplicaSet", "get,patch,update")),
            ),
        ];
        for (group, plural, sub, want) in cases {
            let r = by_group_version_resource(group, "v1", plural).unwrap();
            let got = r
                .subresource(sub)
                .map(|s| (s.api_version(), s.kind, s.verbs.join(",")));
            let want = want.map(|(a, k, v)| (a.to_string(), k, v.to_string()));
            assert_eq!(got, want, "{plural}/{sub}");
        }
        for r in all() {
            assert_eq!(
                r.subresource_infos().len(),
                r.subresources.len(),
                "{}",
                r.resource
            );
        }
    }

    #[test]
    fn lookups_by_kind() {
        let cases = [
            ("", "Pod", Some("pods")),
            ("apps", "Deployment", Some("deployments")),
            ("", "Deployment", None),
            ("", "pod", None),
            ("events.k8s.io", "Event", Some("events")),
        ];
        for (group, kind, want) in cases {
            assert_eq!(
                by_kind(group, kind).map(|r| r.resource),
                want,
                "{group} {kind}"
            );
        }
        let cases = [
            ("v1", "Pod", Some(("", "pods"))),
            ("apps/v1", "ReplicaSet", Some(("apps", "replicasets"))),
            (
                "events.k8s.io/v1",
                "Event",
                Some(("events.k8s.io", "events")),
            ),
            ("v1", "Event", Some(("", "events"))),
            ("apps/v1beta1", "Deployment", None),
            ("apps/", "Deployment", None),
            ("/v1", "Pod", None),
            ("", "Pod", None),
            ("a/b/c", "Pod", None),
        ];
        for (api_version, kind, want) in cases {
            assert_eq!(
                by_api_version_kind(api_version, kind).map(|r| (r.group, r.resource)),
                want,
                "{api_version} {kind}"
            );
        }
    }

    #[test]
    fn resolve_like_kubectl() {
        let cases: &[(&str, &[&str])] = &[
            ("pods", &["pods"]),
            ("pod", &["pods"]),
            ("po", &["pods"]),
            ("Pod", &["pods"]),
            ("PODS", &["pods"]),
            ("deploy", &["deployments.apps"]),
            ("Deployment", &["deployments.apps"]),
            ("rs", &["replicasets.apps"]),
            ("svc", &["services"]),
            ("ns", &["namespaces"]),
            ("no", &["nodes"]),
            ("ev", &["events", "events.events.k8s.io"]),
            ("events", &["events", "events.events.k8s.io"]),
            ("events.events.k8s.io", &["events.events.k8s.io"]),
            ("event.v1.events.k8s.io", &["events.events.k8s.io"]),
            ("deployments.apps", &["deployments.apps"]),
            ("deploy.apps", &["deployments.apps"]),
            ("deployments.v1.apps", &["deployments.apps"]),
            ("deployments.v2.apps", &[]),
            ("lease", &["leases.coordination.k8s.io"]),
            ("pc", &["priorityclasses.scheduling.k8s.io"]),
            ("PriorityClass", &["priorityclasses.scheduling.k8s.io"]),
            (
                "priorityclass.scheduling.k8s.io",
                &["priorityclasses.scheduling.k8s.io"],
            ),
            (
                "leases.coordination.k8s.io",
                &["leases.coordination.k8s.io"],
            ),
            ("endpoints", &["endpoints"]),
            ("ep", &["endpoints"]),
            ("cm", &["configmaps"]),
            ("sa", &["serviceaccounts"]),
            ("secret", &["secrets"]),
            ("  pods ", &["pods"]),
            ("statefulsets", &[]),
            ("", &[]),
            ("all", &[]),
            (".", &[]),
            // kubectl reads a trailing dot as an empty (core) group.
            ("pods.", &["pods"]),
        ];
        for (name, want) in cases {
            let got: Vec<String> = resolve(name)
                .iter()
                .map(|r| r.qualified_resource())
                .collect();
            assert_eq!(got, *want, "{name:?}");
        }
    }

    #[test]
    fn categories_and_group_versions() {
        let all_names: Vec<String> = by_category("all")
            .iter()
            .map(|r| r.qualified_resource())
            .collect();
        assert_eq!(
            all_names,
            ["pods", "services", "deployments.apps", "replicasets.apps"]
        );
        assert!(by_category("nope").is_empty());
        let gvs: Vec<String> = group_versions().iter().map(|gv| gv.to_string()).collect();
        assert_eq!(
            gvs,
            [
                "v1",
                "apps/v1",
                "events.k8s.io/v1",
                "scheduling.k8s.io/v1",
                "coordination.k8s.io/v1"
            ]
        );
        // Every resource's group-version is listed, and every listed one has resources.
        for r in all() {
            assert!(
                group_versions().contains(&r.group_version()),
                "{}",
                r.resource
            );
        }
        for gv in group_versions() {
            assert!(resources_in(gv.group, gv.version).next().is_some(), "{gv}");
        }
        let core: Vec<&str> = resources_in("", "v1").map(|r| r.resource).collect();
        assert_eq!(core.len(), 9);
    }

    #[test]
    fn qualified_resources_round_trip() {
        for r in all() {
            assert_eq!(by_qualified_resource(&r.qualified_resource()), Some(r));
            assert_eq!(r.list_kind(), format!("{}List", r.kind));
        }
        assert_eq!(by_qualified_resource("deployments"), None);
        assert_eq!(by_qualified_resource("deployments.app"), None);
        assert_eq!(by_qualified_resource("events").map(|r| r.group), Some(""));
    }
}
