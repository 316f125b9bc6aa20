//! Discovery: the bodies of `/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`
//! (legacy and aggregated) and `/version`.
//!
//! Everything comes from [`api_types::registry`], so a resource added there is discovered
//! without touching this module. kubectl learns short names (`deploy`) and categories (`all`)
//! only from discovery, so both forms carry them.
//!
//! - **Legacy** discovery is `APIVersions` (`/api`), `APIGroupList` (`/apis`), `APIGroup`
//!   (`/apis/<group>`) and one `APIResourceList` per group-version; kubectl then asks for every
//!   group-version.
//! - **Aggregated** discovery (`apidiscovery.k8s.io`, v2 and v2beta1) answers `/api` and `/apis`
//!   with every resource at once. kubectl ≥1.30 asks for v2, then v2beta1, then plain JSON;
//!   1.27–1.29 ask for v2beta1 only. The reply must carry the matching
//!   [`aggregated_content_type`]: kubectl picks its decoder from the Content-Type, and reads an
//!   aggregated body sent as plain `application/json` as an empty legacy list.

use api_types::registry::{self, ResourceInfo, SubresourceInfo};
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The Kubernetes release Ferry's API corresponds to (`k8s-openapi`'s `v1_33`).
pub const KUBERNETES_MAJOR: &str = "1";
/// See [`KUBERNETES_MAJOR`].
pub const KUBERNETES_MINOR: &str = "33";
/// `gitVersion` without Ferry's build metadata.
pub const KUBERNETES_GIT_VERSION: &str = "v1.33.0";

/// The group of aggregated discovery's types.
const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";
/// The kind an aggregated discovery request asks for with `as=`.
const DISCOVERY_LIST_KIND: &str = "APIGroupDiscoveryList";

/// A version of aggregated discovery (`apidiscovery.k8s.io/v2` or `/v2beta1`); both have the
/// same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregatedVersion {
    /// `apidiscovery.k8s.io/v2`, asked for first by kubectl ≥1.30.
    V2,
    /// `apidiscovery.k8s.io/v2beta1`, the only one kubectl 1.27–1.29 ask for.
    V2Beta1,
}

impl AggregatedVersion {
    /// `v2` or `v2beta1`.
    pub fn version(self) -> &'static str {
        match self {
            AggregatedVersion::V2 => "v2",
            AggregatedVersion::V2Beta1 => "v2beta1",
        }
    }

    /// `apidiscovery.k8s.io/v2` or `apidiscovery.k8s.io/v2beta1`.
    pub fn api_version(self) -> &'static str {
        match self {
            AggregatedVersion::V2 => "apidiscovery.k8s.io/v2",
            AggregatedVersion::V2Beta1 => "apidiscovery.k8s.io/v2beta1",
        }
    }

    fn from_version(version: &str) -> Option<AggregatedVersion> {
        [AggregatedVersion::V2, AggregatedVersion::V2Beta1]
            .into_iter()
            .find(|v| v.version() == version)
    }
}

/// Which body `/api` and `/apis` answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryFormat {
    /// An `APIGroupDiscoveryList`, sent with [`aggregated_content_type`].
    Aggregated(AggregatedVersion),
    /// `APIVersions` / `APIGroupList`, sent as `application/json`.
    Legacy,
}

/// The Content-Type of an aggregated reply, exactly as kubectl matches it:
/// `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` (or `v=v2beta1`).
pub fn aggregated_content_type(version: AggregatedVersion) -> &'static str {
    match version {
        AggregatedVersion::V2 => {
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        }
        AggregatedVersion::V2Beta1 => {
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        }
    }
}

/// Choose the discovery format from an `Accept` header.
///
/// Entries are taken by quality (`q`, default 1; `q=0` means "not this one"), and in header
/// order among equal qualities. The first entry Ferry can serve decides:
/// `application/json` with `g=apidiscovery.k8s.io`, `as=APIGroupDiscoveryList` and `v=v2` or
/// `v=v2beta1` (parameters in any order, names and media type case-insensitive, spaces allowed)
/// selects aggregated discovery; plain `application/json`, `application/*` or `*/*` selects
/// legacy. Entries Ferry cannot serve (protobuf, another `as=`, an unknown discovery version)
/// are skipped. With no header, or nothing servable, the answer is legacy: kube-apiserver would
/// reply 406 there, but legacy JSON is what any client can read.
pub fn negotiate_discovery(accept: Option<&str>) -> DiscoveryFormat {
    let Some(accept) = accept else {
        return DiscoveryFormat::Legacy;
    };
    let mut choices: Vec<(f32, DiscoveryFormat)> = accept
        .split(',')
        .filter_map(|entry| {
            let (format, quality) = classify_accept_entry(entry)?;
            (quality > 0.0).then_some((quality, format))
        })
        .collect();
    // A stable sort keeps header order among equal qualities.
    choices.sort_by(|a, b| b.0.total_cmp(&a.0));
    choices
        .first()
        .map(|(_, format)| *format)
        .unwrap_or(DiscoveryFormat::Legacy)
}

/// One `Accept` entry: the format it selects, if Ferry serves it, and its quality.
fn classify_accept_entry(entry: &str) -> Option<(DiscoveryFormat, f32)> {
    let mut parts = entry.split(';');
    let media_type = parts.next()?.trim().to_ascii_lowercase();
    let mut quality = 1.0_f32;
    let (mut group, mut version, mut as_kind) = (None, None, None);
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            // An unparsable quality makes the entry unusable, as in Go's negotiation.
            "q" => quality = value.parse().ok().filter(|q: &f32| q.is_finite())?,
            "g" => group = Some(value),
            "v" => version = Some(value),
            "as" => as_kind = Some(value),
            _ => {}
        }
    }
    let format = match media_type.as_str() {
        "application/json" => match (group, version, as_kind) {
            (None, None, None) => DiscoveryFormat::Legacy,
            (Some(g), Some(v), Some(a))
                if g.eq_ignore_ascii_case(DISCOVERY_GROUP)
                    && a.eq_ignore_ascii_case(DISCOVERY_LIST_KIND) =>
            {
                DiscoveryFormat::Aggregated(AggregatedVersion::from_version(v)?)
            }
            _ => return None,
        },
        "*/*" | "application/*" => DiscoveryFormat::Legacy,
        _ => return None,
    };
    Some((format, quality))
}

/// `/api` in legacy form: `APIVersions` listing `v1`, with the address clients should use.
pub fn api_versions(server_address: &str) -> Value {
    let versions: Vec<&str> = registry::group_versions()
        .iter()
        .filter(|gv| gv.group.is_empty())
        .map(|gv| gv.version)
        .collect();
    json!({
        "kind": "APIVersions",
        "versions": versions,
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

/// The served groups (the core group alone when `core`, else the named groups) with their
/// versions in preference order, groups in `/apis` order.
fn groups(core: bool) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for gv in registry::group_versions() {
        if gv.group.is_empty() != core {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == gv.group) {
            Some((_, versions)) => versions.push(gv.version),
            None => groups.push((gv.group, vec![gv.version])),
        }
    }
    groups
}

/// An `APIGroup` body (without `kind`/`apiVersion`, as it appears inside `APIGroupList`).
fn group_json(group: &str, versions: &[&str]) -> Value {
    let version_json = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    let mut m = Map::new();
    m.insert("name".into(), json!(group));
    m.insert(
        "versions".into(),
        Value::Array(versions.iter().map(|v| version_json(v)).collect()),
    );
    if let Some(preferred) = versions.first() {
        m.insert("preferredVersion".into(), version_json(preferred));
    }
    Value::Object(m)
}

/// `/apis` in legacy form: an `APIGroupList` with every named group (not the core group), its
/// versions and its preferred (first) version.
pub fn api_group_list() -> Value {
    let list: Vec<Value> = groups(false)
        .iter()
        .map(|(group, versions)| group_json(group, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list})
}

/// `/apis/<group>`: the `APIGroup`, or `None` for a group Ferry does not serve (and for the core
/// group, which is not under `/apis`).
pub fn api_group(group: &str) -> Option<Value> {
    let (name, versions) = groups(false).into_iter().find(|(g, _)| *g == group)?;
    let mut body = group_json(name, &versions);
    if let Value::Object(m) = &mut body {
        m.insert("kind".into(), json!("APIGroup"));
        m.insert("apiVersion".into(), json!("v1"));
    }
    Some(body)
}

/// `/api/v1` or `/apis/<group>/<version>`: the `APIResourceList`, or `None` for a
/// group-version Ferry does not serve.
///
/// Like kube-apiserver, it lists each resource and each of its subresources as `pods/status`,
/// sorted by name. A subresource entry has an empty `singularName`, the kind it takes and
/// returns, and that kind's `group`/`version` when they differ from the list's
/// (`deployments/scale` → `autoscaling/v1 Scale`).
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<&ResourceInfo> = registry::resources_in(group, version).collect();
    let first = resources.first()?;
    let mut entries: Vec<(String, Value)> = Vec::new();
    for r in &resources {
        entries.push((r.resource.to_string(), legacy_resource(r)));
        for s in r.subresource_infos() {
            let name = format!("{}/{}", r.resource, s.name);
            entries.push((name.clone(), legacy_subresource(r, &s, name)));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let resources: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": first.api_version(),
        "resources": resources,
    }))
}

fn legacy_resource(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(r.resource));
    m.insert("singularName".into(), json!(r.singular));
    m.insert("namespaced".into(), json!(r.namespaced));
    m.insert("kind".into(), json!(r.kind));
    m.insert("verbs".into(), json!(r.verbs));
    put_list(&mut m, "shortNames", r.short_names);
    put_list(&mut m, "categories", r.categories);
    m.insert("storageVersionHash".into(), json!(resource_storage_hash(r)));
    Value::Object(m)
}

fn legacy_subresource(r: &ResourceInfo, s: &SubresourceInfo, name: String) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("singularName".into(), json!(""));
    m.insert("namespaced".into(), json!(r.namespaced));
    if (s.group, s.version) != (r.group, r.version) {
        m.insert("group".into(), json!(s.group));
        m.insert("version".into(), json!(s.version));
    }
    m.insert("kind".into(), json!(s.kind));
    m.insert("verbs".into(), json!(s.verbs));
    Value::Object(m)
}

/// Insert a list unless it is empty (Go's `omitempty`).
fn put_list(m: &mut Map<String, Value>, key: &str, items: &[&str]) {
    if !items.is_empty() {
        m.insert(key.into(), json!(items));
    }
}

/// Aggregated discovery: the `APIGroupDiscoveryList` for `/api` (`core`: one item, the core
/// group, whose metadata has no name) or for `/apis` (every named group, in preference order).
/// Versions are in preference order, resources and subresources sorted by name, as
/// kube-apiserver sends them.
pub fn aggregated(core: bool, version: AggregatedVersion) -> Value {
    let items: Vec<Value> = groups(core)
        .iter()
        .map(|(group, versions)| {
            let mut metadata = Map::new();
            if !group.is_empty() {
                metadata.insert("name".into(), json!(group));
            }
            metadata.insert("creationTimestamp".into(), Value::Null);
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| aggregated_version(group, v))
                .collect();
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": version.api_version(),
        "metadata": {},
        "items": items,
    })
}

fn aggregated_version(group: &str, version: &str) -> Value {
    let mut resources: Vec<&ResourceInfo> = registry::resources_in(group, version).collect();
    resources.sort_by_key(|r| r.resource);
    let resources: Vec<Value> = resources.into_iter().map(aggregated_resource).collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), json!(r.resource));
    m.insert(
        "responseKind".into(),
        response_kind(r.group, r.version, r.kind),
    );
    m.insert(
        "scope".into(),
        json!(if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }),
    );
    m.insert("singularResource".into(), json!(r.singular));
    m.insert("verbs".into(), json!(r.verbs));
    put_list(&mut m, "shortNames", r.short_names);
    put_list(&mut m, "categories", r.categories);
    let mut subresources = r.subresource_infos();
    subresources.sort_by_key(|s| s.name);
    if !subresources.is_empty() {
        let subresources: Vec<Value> = subresources
            .iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": response_kind(s.group, s.version, s.kind),
                    "verbs": s.verbs,
                })
            })
            .collect();
        m.insert("subresources".into(), Value::Array(subresources));
    }
    Value::Object(m)
}

/// Kubernetes' `storageVersionHash` of a kind (`discovery.StorageVersionHash`): the first 8
/// bytes of SHA-256 of `group/version/kind`, base64-encoded (`apps/v1/Deployment` →
/// `8aSe+NMegvE=`, `/v1/Pod` → `xPOwRZ+Yhw8=`), so that the values equal kube-apiserver's.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = sha256(format!("{group}/{version}/{kind}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// The hash of the kind a resource is *stored* as: a resource that shares its storage path with
/// one listed earlier (`events.k8s.io` events, stored as core events) has that one's hash.
fn resource_storage_hash(r: &ResourceInfo) -> String {
    let stored = registry::all()
        .iter()
        .find(|o| o.storage_path == r.storage_path)
        .unwrap_or(r);
    storage_version_hash(stored.group, stored.version, stored.kind)
}

/// `/version`. kubectl reads `major`/`minor` for its skew warning and parses `gitVersion` as
/// semver; the gcloud kubectl dispatcher picks `kubectl.<major>.<minor>` from `major`/`minor`.
/// Ferry's own version goes into `gitVersion`'s build metadata (`v1.33.0+ferry.0.1.0`, as k3s
/// reports `v1.33.3+k3s1`), which semver comparisons ignore, so every client still sees 1.33.
/// Characters semver does not allow in build metadata become `-`.
pub fn version_info(ferry_version: &str) -> Value {
    let metadata: Vec<String> = std::iter::once("ferry".to_string())
        .chain(
            ferry_version
                .split(['.', '+'])
                .map(|part| {
                    part.chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '-' {
                                c
                            } else {
                                '-'
                            }
                        })
                        .collect::<String>()
                })
                .filter(|part| !part.is_empty()),
        )
        .collect();
    let minor: u32 = KUBERNETES_MINOR.parse().unwrap_or(0);
    json!({
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "emulationMajor": KUBERNETES_MAJOR,
        "emulationMinor": KUBERNETES_MINOR,
        "minCompatibilityMajor": KUBERNETES_MAJOR,
        "minCompatibilityMinor": minor.saturating_sub(1).to_string(),
        "gitVersion": format!("{KUBERNETES_GIT_VERSION}+{}", metadata.join(".")),
        "gitCommit": "",
        "gitTreeState": "clean",
        // Kubernetes' own value when the build does not stamp a date.
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "ferry (rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", go_os(std::env::consts::OS), go_arch(std::env::consts::ARCH)),
    })
}

/// Rust's OS name as Go's `GOOS` spells it.
fn go_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

/// Rust's architecture name as Go's `GOARCH` spells it.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// SHA-256 (FIPS 180-4), for [`storage_version_hash`]; the inputs are a few bytes long, so the
/// plain textbook form is enough.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    // Padding: a 1 bit, zeros up to 56 mod 64 bytes, then the length in bits, big-endian.
    let mut message = data.to_vec();
    let bit_length = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_length.to_be_bytes());

    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(add);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Accept headers as kubectl sends them for `/api` and `/apis` (wire doc §3, §9).
    const ACCEPT_1_30_TO_1_33: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const ACCEPT_1_27_TO_1_29: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const ACCEPT_LEGACY: &str = "application/json, */*";

    fn strs(v: &Value) -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every legacy entry of every served group-version, by name (`pods`, `pods/status`).
    fn legacy_entries() -> BTreeMap<(String, String), Value> {
        let mut out = BTreeMap::new();
        for gv in registry::group_versions() {
            let list = api_resource_list(gv.group, gv.version).unwrap();
            assert_eq!(list["kind"], "APIResourceList");
            assert_eq!(list["apiVersion"], "v1");
            assert_eq!(list["groupVersion"], gv.api_version());
            let names: Vec<String> = list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{gv}: sorted by name");
            for r in list["resources"].as_array().unwrap() {
                let name = r["name"].as_str().unwrap().to_string();
                out.insert((gv.api_version(), name), r.clone());
            }
        }
        out
    }

    /// Every aggregated resource, by (apiVersion, resource), from `/api` and `/apis`.
    fn aggregated_entries(version: AggregatedVersion) -> BTreeMap<(String, String), Value> {
        let mut out = BTreeMap::new();
        for core in [true, false] {
            let list = aggregated(core, version);
            assert_eq!(list["kind"], "APIGroupDiscoveryList");
            assert_eq!(list["apiVersion"], version.api_version());
            assert_eq!(list["metadata"], json!({}));
            for item in list["items"].as_array().unwrap() {
                let group = item["metadata"]["name"].as_str().unwrap_or("");
                assert_eq!(group.is_empty(), core);
                assert_eq!(item["metadata"]["creationTimestamp"], Value::Null);
                for v in item["versions"].as_array().unwrap() {
                    assert_eq!(v["freshness"], "Current");
                    let version = v["version"].as_str().unwrap();
                    let api_version = if group.is_empty() {
                        version.to_string()
                    } else {
                        format!("{group}/{version}")
                    };
                    for r in v["resources"].as_array().unwrap() {
                        let name = r["resource"].as_str().unwrap().to_string();
                        out.insert((api_version.clone(), name), r.clone());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_resource_in_both_forms() {
        let legacy = legacy_entries();
        for version in [AggregatedVersion::V2, AggregatedVersion::V2Beta1] {
            let agg = aggregated_entries(version);
            assert_eq!(agg.len(), registry::all().len());
            for r in registry::all() {
                let key = (r.api_version(), r.resource.to_string());
                let l = &legacy[&key];
                let a = &agg[&key];
                assert_eq!(l["kind"], r.kind);
                assert_eq!(l["singularName"], r.singular);
                assert_eq!(l["namespaced"], r.namespaced);
                assert_eq!(strs(&l["verbs"]), r.verbs);
                assert_eq!(strs(&l["shortNames"]), r.short_names);
                assert_eq!(strs(&l["categories"]), r.categories);
                assert_eq!(l["storageVersionHash"].as_str().unwrap().len(), 12);

                assert_eq!(
                    a["responseKind"],
                    json!({"group": r.group, "version": r.version, "kind": r.kind})
                );
                let scope = if r.namespaced {
                    "Namespaced"
                } else {
                    "Cluster"
                };
                assert_eq!(a["scope"], scope);
                assert_eq!(a["singularResource"], r.singular);
                assert_eq!(strs(&a["verbs"]), r.verbs);
                assert_eq!(strs(&a["shortNames"]), r.short_names);
                assert_eq!(strs(&a["categories"]), r.categories);

                let subs = r.subresource_infos();
                let agg_subs = a["subresources"].as_array().cloned().unwrap_or_default();
                assert_eq!(agg_subs.len(), subs.len(), "{}", r.resource);
                for s in &subs {
                    let name = format!("{}/{}", r.resource, s.name);
                    let l = &legacy[&(r.api_version(), name.clone())];
                    assert_eq!(l["kind"], s.kind, "{name}");
                    assert_eq!(l["singularName"], "", "{name}");
                    assert_eq!(strs(&l["verbs"]), s.verbs, "{name}");
                    let a = agg_subs
                        .iter()
                        .find(|x| x["subresource"] == s.name)
                        .unwrap_or_else(|| panic!("{name}"));
                    assert_eq!(
                        a["responseKind"],
                        json!({"group": s.group, "version": s.version, "kind": s.kind})
                    );
                    assert_eq!(strs(&a["verbs"]), s.verbs);
                }
            }
            // Nothing else is listed.
            let subresource_count: usize =
                registry::all().iter().map(|r| r.subresources.len()).sum();
            assert_eq!(legacy.len(), registry::all().len() + subresource_count);
        }
    }

    #[test]
    fn short_names_and_categories() {
        let legacy = legacy_entries();
        let agg = aggregated_entries(AggregatedVersion::V2);
        let short = [
            ("apps/v1", "deployments", "deploy"),
            ("apps/v1", "replicasets", "rs"),
            ("v1", "pods", "po"),
            ("v1", "namespaces", "ns"),
            ("v1", "nodes", "no"),
            ("v1", "services", "svc"),
            ("v1", "configmaps", "cm"),
            ("v1", "events", "ev"),
            ("v1", "endpoints", "ep"),
            ("v1", "serviceaccounts", "sa"),
            ("scheduling.k8s.io/v1", "priorityclasses", "pc"),
        ];
        for (api_version, resource, short_name) in short {
            let key = (api_version.to_string(), resource.to_string());
            assert_eq!(strs(&legacy[&key]["shortNames"]), [short_name]);
            assert_eq!(strs(&agg[&key]["shortNames"]), [short_name]);
        }
        let in_all = [
            ("v1", "pods"),
            ("v1", "services"),
            ("apps/v1", "deployments"),
            ("apps/v1", "replicasets"),
        ];
        for (api_version, resource) in in_all {
            let key = (api_version.to_string(), resource.to_string());
            assert_eq!(strs(&legacy[&key]["categories"]), ["all"]);
            assert_eq!(strs(&agg[&key]["categories"]), ["all"]);
        }
        // Empty lists are left out, as Go's omitempty does.
        let secrets = &legacy[&("v1".to_string(), "secrets".to_string())];
        assert!(secrets.get("shortNames").is_none());
        assert!(secrets.get("categories").is_none());
        let ns = &agg[&("v1".to_string(), "namespaces".to_string())];
        assert!(ns.get("categories").is_none());
        assert_eq!(ns["scope"], "Cluster");
    }

    #[test]
    fn legacy_subresource_entries() {
        let legacy = legacy_entries();
        let get = |gv: &str, name: &str| legacy[&(gv.to_string(), name.to_string())].clone();
        assert_eq!(
            get("apps/v1", "deployments/scale"),
            json!({"name":"deployments/scale","singularName":"","namespaced":true,"group":"autoscaling",
                   "version":"v1","kind":"Scale","verbs":["get","patch","update"]})
        );
        assert_eq!(
            get("apps/v1", "deployments/status"),
            json!({"name":"deployments/status","singularName":"","namespaced":true,"kind":"Deployment",
                   "verbs":["get","patch","update"]})
        );
        assert_eq!(
            get("v1", "pods/eviction"),
            json!({"name":"pods/eviction","singularName":"","namespaced":true,"group":"policy",
                   "version":"v1","kind":"Eviction","verbs":["create"]})
        );
        assert_eq!(
            get("v1", "pods/binding"),
            json!({"name":"pods/binding","singularName":"","namespaced":true,"kind":"Binding",
                   "verbs":["create"]})
        );
        assert_eq!(
            get("v1", "namespaces/finalize"),
            json!({"name":"namespaces/finalize","singularName":"","namespaced":false,"kind":"Namespace",
                   "verbs":["update"]})
        );
        assert_eq!(
            get("apps/v1", "deployments"),
            json!({"name":"deployments","singularName":"deployment","namespaced":true,"kind":"Deployment",
                   "verbs":["create","delete","deletecollection","get","list","patch","update","watch"],
                   "shortNames":["deploy"],"categories":["all"],"storageVersionHash":"8aSe+NMegvE="})
        );
    }

    #[test]
    fn aggregated_deployment_matches_the_wire_doc() {
        let agg = aggregated_entries(AggregatedVersion::V2);
        assert_eq!(
            agg[&("apps/v1".to_string(), "deployments".to_string())],
            json!({
              "resource": "deployments",
              "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
              "scope": "Namespaced",
              "singularResource": "deployment",
              "verbs": ["create","delete","deletecollection","get","list","patch","update","watch"],
              "shortNames": ["deploy"],
              "categories": ["all"],
              "subresources": [
                {"subresource": "scale",
                 "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                 "verbs": ["get","patch","update"]},
                {"subresource": "status",
                 "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                 "verbs": ["get","patch","update"]}
              ]
            })
        );
        let core = aggregated(true, AggregatedVersion::V2Beta1);
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        let items = core["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"], json!({"creationTimestamp": null}));
        assert_eq!(items[0]["versions"][0]["version"], "v1");
        let pods = items[0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        // Groups in preference order, like /apis.
        let groups: Vec<String> = aggregated(false, AggregatedVersion::V2)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            groups,
            [
                "apps",
                "events.k8s.io",
                "scheduling.k8s.io",
                "coordination.k8s.io"
            ]
        );
    }

    #[test]
    fn legacy_group_documents() {
        assert_eq!(
            api_versions("127.0.0.1:6443"),
            json!({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[
                {"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1:6443"}]})
        );
        let list = api_group_list();
        assert_eq!(list["kind"], "APIGroupList");
        assert_eq!(list["apiVersion"], "v1");
        let groups = list["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 4);
        assert_eq!(
            groups[0],
            json!({"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],
                   "preferredVersion":{"groupVersion":"apps/v1","version":"v1"}})
        );
        assert_eq!(
            api_group("coordination.k8s.io"),
            Some(
                json!({"kind":"APIGroup","apiVersion":"v1","name":"coordination.k8s.io",
                "versions":[{"groupVersion":"coordination.k8s.io/v1","version":"v1"}],
                "preferredVersion":{"groupVersion":"coordination.k8s.io/v1","version":"v1"}})
            )
        );
        assert_eq!(api_group(""), None);
        assert_eq!(api_group("batch"), None);
        assert_eq!(api_resource_list("apps", "v2"), None);
        assert_eq!(api_resource_list("", "v2"), None);
        assert_eq!(api_resource_list("batch", "v1"), None);
        assert_eq!(api_resource_list("", "v1").unwrap()["groupVersion"], "v1");
    }

    #[test]
    fn negotiation() {
        use AggregatedVersion::{V2, V2Beta1};
        use DiscoveryFormat::{Aggregated, Legacy};
        let cases: &[(Option<&str>, DiscoveryFormat)] = &[
            (Some(ACCEPT_1_30_TO_1_33), Aggregated(V2)),
            (Some(ACCEPT_1_27_TO_1_29), Aggregated(V2Beta1)),
            (Some(ACCEPT_LEGACY), Legacy),
            (Some("application/json"), Legacy),
            (Some("*/*"), Legacy),
            (None, Legacy),
            (Some(""), Legacy),
            // Parameters in any order, with spaces and any case.
            (
                Some("application/json; as=APIGroupDiscoveryList ; v=v2 ;g=apidiscovery.k8s.io"),
                Aggregated(V2),
            ),
            (
                Some("Application/JSON;G=apidiscovery.k8s.io;V=v2beta1;AS=APIGroupDiscoveryList"),
                Aggregated(V2Beta1),
            ),
            // Legacy listed first wins.
            (
                Some(
                    "application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                ),
                Legacy,
            ),
            // Quality beats order; q=0 refuses.
            (
                Some(
                    "application/json;q=0.5, application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                ),
                Aggregated(V2Beta1),
            ),
            (
                Some(
                    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                ),
                Aggregated(V2Beta1),
            ),
            // Versions, kinds and types Ferry does not serve are skipped.
            (
                Some(
                    "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json",
                ),
                Legacy,
            ),
            (
                Some(
                    "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                ),
                Aggregated(V2Beta1),
            ),
            (
                Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
                Legacy,
            ),
            (Some("application/json;g=apidiscovery.k8s.io;v=v2"), Legacy),
            (Some("text/html"), Legacy),
            (Some("application/json;q=abc"), Legacy),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate_discovery(*accept), *want, "{accept:?}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            aggregated_content_type(AggregatedVersion::V2),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        assert_eq!(
            aggregated_content_type(AggregatedVersion::V2Beta1),
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        );
        // The content type we send is one the negotiation accepts as the same version.
        for v in [AggregatedVersion::V2, AggregatedVersion::V2Beta1] {
            assert_eq!(
                negotiate_discovery(Some(aggregated_content_type(v))),
                DiscoveryFormat::Aggregated(v)
            );
        }
    }

    #[test]
    fn storage_version_hashes_match_kubernetes() {
        // Values from kube-apiserver's discovery (and `sha256sum`).
        let cases = [
            ("apps", "v1", "Deployment", "8aSe+NMegvE="),
            ("", "v1", "Pod", "xPOwRZ+Yhw8="),
            ("", "v1", "ConfigMap", "qFsyl6wFWjQ="),
            ("", "v1", "Event", "r2yiGXH7wu8="),
            ("apps", "v1", "ReplicaSet", "P1RzHs8/mWQ="),
            ("coordination.k8s.io", "v1", "Lease", "gqkMMb/YqFM="),
            ("scheduling.k8s.io", "v1", "PriorityClass", "1QwjyaZjj3Y="),
        ];
        for (group, version, kind, want) in cases {
            assert_eq!(storage_version_hash(group, version, kind), want, "{kind}");
        }
        // events.k8s.io events are stored as core events.
        let legacy = legacy_entries();
        assert_eq!(
            legacy[&("events.k8s.io/v1".to_string(), "events".to_string())]["storageVersionHash"],
            "r2yiGXH7wu8="
        );
    }

    #[test]
    fn sha256_test_vectors() {
        let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Two blocks (56 bytes of input needs a second padding block).
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn version() {
        let v = version_info("0.1.0");
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "33");
        assert_eq!(v["emulationMinor"], "33");
        assert_eq!(v["minCompatibilityMinor"], "32");
        assert_eq!(v["gitVersion"], "v1.33.0+ferry.0.1.0");
        assert_eq!(v["gitTreeState"], "clean");
        assert_eq!(v["compiler"], "rustc");
        let platform = v["platform"].as_str().unwrap();
        assert!(!platform.contains("x86_64") && !platform.contains("aarch64"));
        assert!(platform.contains('/'));
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_os("linux"), "linux");
        assert_eq!(go_os("macos"), "darwin");

        // Build metadata is kept valid semver whatever Ferry's version string holds.
        let cases = [
            ("0.1.0-dev+abc", "v1.33.0+ferry.0.1.0-dev.abc"),
            ("", "v1.33.0+ferry"),
            ("1..2 x", "v1.33.0+ferry.1.2-x"),
        ];
        for (ferry, want) in cases {
            let git_version = version_info(ferry)["gitVersion"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(git_version, want, "{ferry:?}");
            let (_, metadata) = git_version.split_once('+').unwrap();
            assert!(
                metadata.split('.').all(|id| !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            );
        }
    }
}
