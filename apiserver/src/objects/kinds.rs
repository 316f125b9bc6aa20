//! The other kinds' strategies and validation: Services, ConfigMaps, Secrets, Namespaces, Nodes,
//! Endpoints, Events (core and `events.k8s.io`) and Leases.

use std::collections::BTreeSet;
use std::net::IpAddr;

use api_types::validation::{
    FieldError, go_quote, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value, max_len_error, regex_error, validate_labels,
};
use base64::Engine as _;
use serde_json::{Value, json};

use super::Kind;
use super::pod::{validate_endpoint_ip, validate_port_num_or_name, validate_taint_effect};
use super::util::{
    Errs, Obj, duplicate, forbidden, get, get_arr, get_i64, get_obj, get_str, go_string_slice,
    immutable, invalid, invalid_int, invalid_raw, not_supported, obj_mut_or_create, required,
    semantic_eq, set_default, string_list, string_map,
};

/// `MaxSecretSize`, also the limit of a ConfigMap's data.
const MAX_DATA_SIZE: usize = 1024 * 1024;
const PORT_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

// ---------------------------------------------------------------------------------------------
// Services.

fn needs_cluster_ip(spec: &Obj) -> bool {
    get_str(spec, "type") != "ExternalName"
}

fn needs_node_port(spec: &Obj) -> bool {
    match get_str(spec, "type") {
        "NodePort" => true,
        "LoadBalancer" => {
            spec.get("allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false)
        }
        _ => false,
    }
}

/// `svcStrategy.PrepareForCreate` and the REST layer's create-time IP family defaults for a
/// single-stack IPv4 cluster (the cluster IP itself is the allocator's). `clusterIPs` mirrors a
/// given `clusterIP`.
pub(crate) fn prepare_service_create(map: &mut Obj) {
    map.insert("status".into(), json!({"loadBalancer": {}}));
    let Some(spec) = obj_mut_or_create(map, "spec") else {
        return;
    };
    let cluster_ip = get_str(spec, "clusterIP").to_string();
    if !cluster_ip.is_empty() && get_arr(spec, "clusterIPs").is_empty() {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    }
    if !needs_cluster_ip(spec) {
        return;
    }
    let first_family = get_arr(spec, "clusterIPs")
        .first()
        .and_then(Value::as_str)
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .map_or("IPv4", |ip| if ip.is_ipv6() { "IPv6" } else { "IPv4" });
    let selectorless = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty());
    if cluster_ip == "None" && selectorless {
        set_default(spec, "ipFamilyPolicy", json!("RequireDualStack"));
        if get_arr(spec, "ipFamilies").is_empty() {
            spec.insert("ipFamilies".into(), json!([first_family]));
        }
        let families = string_list(spec.get("ipFamilies"));
        if families.len() < 2 && get_str(spec, "ipFamilyPolicy") != "SingleStack" {
            let other = if families.first().map(String::as_str) == Some("IPv6") {
                "IPv4"
            } else {
                "IPv6"
            };
            if let Some(list) = spec.get_mut("ipFamilies").and_then(Value::as_array_mut) {
                list.push(json!(other));
            }
        }
    } else {
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        if get_arr(spec, "ipFamilies").is_empty() {
            spec.insert("ipFamilies".into(), json!([first_family]));
        }
    }
}

/// The service REST layer's update preparation: allocated values a client left out (cluster IPs,
/// IP families, node ports) are kept, `clusterIPs` follows `clusterIP`, and values a new type
/// does not use are dropped.
pub(crate) fn prepare_service_update(old: &Obj, map: &mut Obj) {
    let empty = Obj::new();
    let old_spec = get_obj(old, "spec").unwrap_or(&empty);
    let Some(spec) = obj_mut_or_create(map, "spec") else {
        return;
    };
    // patchAllocatedValues
    if needs_cluster_ip(old_spec) && needs_cluster_ip(spec) {
        if get_str(spec, "clusterIP").is_empty() && !get_str(old_spec, "clusterIP").is_empty() {
            spec.insert("clusterIP".into(), json!(get_str(old_spec, "clusterIP")));
        }
        if get_arr(spec, "clusterIPs").is_empty() && !get_arr(old_spec, "clusterIPs").is_empty() {
            spec.insert("clusterIPs".into(), json!(get_arr(old_spec, "clusterIPs")));
        }
        for key in ["ipFamilyPolicy", "ipFamilies"] {
            let missing = match spec.get(key) {
                None | Some(Value::Null) => true,
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if missing && let Some(v) = get(old_spec, key) {
                spec.insert(key.to_string(), v.clone());
            }
        }
    }
    if needs_node_port(old_spec) && needs_node_port(spec) {
        let node_ports = |s: &Obj| -> BTreeSet<i64> {
            get_arr(s, "ports")
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                .filter(|n| *n != 0)
                .collect()
        };
        let used: BTreeSet<i64> = node_ports(old_spec)
            .intersection(&node_ports(spec))
            .copied()
            .collect();
        let old_ports = get_arr(old_spec, "ports").to_vec();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                    continue;
                }
                let name = get_str(p, "name").to_string();
                let previous = old_ports
                    .iter()
                    .filter_map(Value::as_object)
                    .find(|o| get_str(o, "name") == name)
                    .and_then(|o| o.get("nodePort").and_then(Value::as_i64))
                    .unwrap_or(0);
                if previous != 0 && !used.contains(&previous) {
                    p.insert("nodePort".into(), json!(previous));
                }
            }
        }
        if get_i64(spec, "healthCheckNodePort").unwrap_or(0) == 0
            && let Some(hc) = get(old_spec, "healthCheckNodePort")
        {
            spec.insert("healthCheckNodePort".into(), hc.clone());
        }
    }
    // normalizeClusterIPs
    let same_ips = |a: &Obj, b: &Obj| semantic_eq(a.get("clusterIPs"), b.get("clusterIPs"));
    let old_ip = get_str(old_spec, "clusterIP").to_string();
    let new_ip = get_str(spec, "clusterIP").to_string();
    if !get_arr(old_spec, "clusterIPs").is_empty()
        && get_arr(spec, "clusterIPs").is_empty()
        && old_ip == new_ip
    {
        spec.insert("clusterIPs".into(), json!(get_arr(old_spec, "clusterIPs")));
    }
    if old_ip != new_ip && same_ips(old_spec, spec) {
        if new_ip.is_empty() {
            spec.remove("clusterIPs");
        } else {
            spec.insert("clusterIPs".into(), json!([new_ip]));
        }
    }
    // dropTypeDependentFields
    if needs_cluster_ip(old_spec) && !needs_cluster_ip(spec) {
        if same_ips(old_spec, spec) && get_str(spec, "clusterIP") == old_ip {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        for key in ["ipFamilies", "ipFamilyPolicy"] {
            if semantic_eq(old_spec.get(key), spec.get(key)) {
                spec.remove(key);
            }
        }
    }
    if !needs_node_port(spec) {
        let ports_of = |s: &Obj| -> Vec<i64> {
            get_arr(s, "ports")
                .iter()
                .map(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0))
                .collect()
        };
        if ports_of(old_spec) == ports_of(spec)
            && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
        {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
}

/// `ValidateService`.
pub(crate) fn validate_service(map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let spec = get_obj(map, "spec").unwrap_or(&empty);
    let ty = get_str(spec, "type");
    let headless = get_str(spec, "clusterIP") == "None";
    let ports = get_arr(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" => {
            if headless {
                errs.push(invalid(
                    "spec.clusterIPs[0]",
                    "None",
                    format!("may not be set to 'None' for {ty} services"),
                ));
            }
            if ty == "LoadBalancer" {
                for (i, p) in ports.iter().enumerate() {
                    if p.get("port").and_then(Value::as_i64) == Some(10250) {
                        errs.push(invalid_int(
                            format!("spec.ports[{i}]"),
                            10250,
                            "may not expose port 10250 externally since it is used by kubelet",
                        ));
                    }
                }
            }
        }
        "ExternalName" => {
            for key in ["clusterIPs", "ipFamilies"] {
                if !get_arr(spec, key).is_empty() {
                    errs.push(forbidden(
                        format!("spec.{key}"),
                        "may not be set for ExternalName services",
                    ));
                }
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = get_str(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(required("spec.externalName", ""));
            } else {
                for msg in is_dns1123_subdomain(cname) {
                    errs.push(invalid("spec.externalName", cname, msg));
                }
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let p = p.as_object().unwrap_or(&empty);
        validate_service_port(
            p,
            ports.len() > 1,
            &mut names,
            &format!("spec.ports[{i}]"),
            errs,
        );
    }
    if get(spec, "selector").is_some() {
        errs.extend(validate_labels(
            &string_map(spec.get("selector")),
            "spec.selector",
        ));
    }
    match get_str(spec, "sessionAffinity") {
        "" => errs.push(required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let timeout = get_obj(spec, "sessionAffinityConfig")
                .and_then(|c| get_obj(c, "clientIP"))
                .and_then(|c| get_i64(c, "timeoutSeconds"));
            if let Some(t) = timeout.filter(|t| !(1..=86400).contains(t)) {
                errs.push(invalid_int(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        "None" => {}
        other => errs.push(not_supported(
            "spec.sessionAffinity",
            other,
            &["ClientIP", "None"],
        )),
    }
    match ty {
        "" => errs.push(required("spec.type", "")),
        t if !SERVICE_TYPES.contains(&t) => errs.push(not_supported("spec.type", t, SERVICE_TYPES)),
        _ => {}
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                errs.push(forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    let mut port_keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let p = p.as_object().unwrap_or(&empty);
        let protocol = get_str(p, "protocol").to_string();
        let node_port = get_i64(p, "nodePort").unwrap_or(0);
        if node_port != 0 && !node_ports.insert((protocol.clone(), node_port)) {
            errs.push(duplicate(
                format!("spec.ports[{i}].nodePort"),
                node_port.to_string(),
            ));
        }
        let port = get_i64(p, "port").unwrap_or(0);
        if !port_keys.insert((protocol.clone(), port)) {
            errs.push(duplicate(
                format!("spec.ports[{i}]"),
                format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    go_quote(&protocol)
                ),
            ));
        }
    }
    for (i, ip) in get_arr(spec, "clusterIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        if ip == "None" && i == 0 {
            continue;
        }
        if ip.parse::<IpAddr>().is_err() {
            errs.push(invalid(format!("spec.clusterIPs[{i}]"), ip, INVALID_IP));
        }
    }
    for (key, allowed) in [
        ("externalTrafficPolicy", &["Cluster", "Local"][..]),
        ("internalTrafficPolicy", &["Cluster", "Local"][..]),
        (
            "ipFamilyPolicy",
            &["SingleStack", "PreferDualStack", "RequireDualStack"][..],
        ),
    ] {
        let v = get_str(spec, key);
        if !v.is_empty() && !allowed.contains(&v) {
            errs.push(not_supported(format!("spec.{key}"), v, allowed));
        }
    }
}

fn validate_service_port(
    p: &Obj,
    require_name: bool,
    names: &mut BTreeSet<String>,
    path: &str,
    errs: &mut Errs,
) {
    let name = get_str(p, "name");
    if require_name && name.is_empty() {
        errs.push(required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        for msg in is_dns1123_label(name) {
            errs.push(invalid(format!("{path}.name"), name, msg));
        }
        if !names.insert(name.to_string()) {
            errs.push(duplicate(format!("{path}.name"), go_quote(name)));
        }
    }
    let port = get_i64(p, "port").unwrap_or(0);
    if !(1..=65535).contains(&port) {
        errs.push(invalid_int(
            format!("{path}.port"),
            port,
            "must be between 1 and 65535, inclusive",
        ));
    }
    validate_protocol(p, path, errs);
    validate_port_num_or_name(p.get("targetPort"), &format!("{path}.targetPort"), errs);
    let app = get_str(p, "appProtocol");
    if !app.is_empty() {
        for msg in is_qualified_name(app) {
            errs.push(invalid(format!("{path}.appProtocol"), app, msg));
        }
    }
}

fn validate_protocol(p: &Obj, path: &str, errs: &mut Errs) {
    match get_str(p, "protocol") {
        "" => errs.push(required(format!("{path}.protocol"), "")),
        proto if !PORT_PROTOCOLS.contains(&proto) => {
            errs.push(not_supported(
                format!("{path}.protocol"),
                proto,
                PORT_PROTOCOLS,
            ));
        }
        _ => {}
    }
}

/// `ValidateServiceUpdate`'s cluster IP rules: a set cluster IP may not change.
pub(crate) fn validate_service_update(old: &Obj, new: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let old_spec = get_obj(old, "spec").unwrap_or(&empty);
    let spec = get_obj(new, "spec").unwrap_or(&empty);
    if !needs_cluster_ip(old_spec) || !needs_cluster_ip(spec) {
        return;
    }
    if get_str(old_spec, "clusterIP") == "None" && get_str(spec, "clusterIP") == "None" {
        return;
    }
    let old_ips = string_list(old_spec.get("clusterIPs"));
    let new_ips = string_list(spec.get("clusterIPs"));
    let rendered = go_string_slice(spec.get("clusterIPs"));
    if old_ips.len() == new_ips.len() {
        for (i, (o, n)) in old_ips.iter().zip(&new_ips).enumerate() {
            if o != n {
                errs.push(invalid_raw(
                    format!("spec.clusterIPs[{i}]"),
                    rendered.clone(),
                    "may not change once set",
                ));
            }
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            errs.push(invalid_raw(
                "spec.clusterIPs[0]",
                rendered.clone(),
                "primary clusterIP can not be unset",
            ));
        } else if old_ips.first() != new_ips.first() {
            errs.push(invalid_raw(
                "spec.clusterIPs[0]",
                rendered,
                "may not change once set",
            ));
        }
    } else if !old_ips.is_empty() && old_ips.first() != new_ips.first() {
        errs.push(invalid_raw(
            "spec.clusterIPs[0]",
            rendered,
            "may not change once set",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// ConfigMaps and Secrets.

/// `IsConfigMapKey`.
fn config_map_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push(max_len_error(253));
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    match key {
        "." => errs.push("must not be '.'".to_string()),
        ".." => errs.push("must not be '..'".to_string()),
        k if k.starts_with("..") => errs.push("must not start with '..'".to_string()),
        _ => {}
    }
    errs
}

fn decoded_len(v: &Value) -> usize {
    let s = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_or(s.len(), |b| b.len())
}

/// `ValidateConfigMap`.
pub(crate) fn validate_config_map(map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let data = get_obj(map, "data").unwrap_or(&empty);
    let binary = get_obj(map, "binaryData").unwrap_or(&empty);
    let mut total = 0usize;
    for (key, value) in data {
        for msg in config_map_key_errors(key) {
            errs.push(invalid(format!("data[{key}]"), key, msg));
        }
        if binary.contains_key(key) {
            errs.push(invalid(
                format!("data[{key}]"),
                key,
                "duplicate of key present in binaryData",
            ));
        }
        total += value.as_str().map_or(0, str::len);
    }
    for (key, value) in binary {
        for msg in config_map_key_errors(key) {
            errs.push(invalid(format!("binaryData[{key}]"), key, msg));
        }
        if data.contains_key(key) {
            errs.push(invalid(
                format!("binaryData[{key}]"),
                key,
                "duplicate of key present in data",
            ));
        }
        total += decoded_len(value);
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
}

/// `ValidateSecret`.
pub(crate) fn validate_secret(map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let data = get_obj(map, "data").unwrap_or(&empty);
    let mut total = 0usize;
    for (key, value) in data {
        for msg in config_map_key_errors(key) {
            errs.push(invalid(format!("data[{key}]"), key, msg));
        }
        total += decoded_len(value);
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
    }
    let has = |k: &str| data.get(k).is_some_and(|v| !v.is_null());
    match get_str(map, "type") {
        "kubernetes.io/service-account-token" => {
            let annotations =
                string_map(get_obj(map, "metadata").and_then(|m| m.get("annotations")));
            if annotations
                .get("kubernetes.io/service-account.name")
                .is_none_or(String::is_empty)
            {
                errs.push(required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        ty @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if ty == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.get(key).and_then(Value::as_str) {
                None => errs.push(required(format!("data[{key}]"), "")),
                Some(encoded) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .unwrap_or_default();
                    if let Err(e) = serde_json::from_slice::<Obj>(&bytes) {
                        let msg = e.to_string();
                        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                        errs.push(invalid(
                            format!("data[{key}]"),
                            "<secret contents redacted>",
                            msg,
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required("data[username]", ""));
            errs.push(required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth"
            if data
                .get("ssh-privatekey")
                .is_none_or(|v| decoded_len(v) == 0) =>
        {
            errs.push(required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(required(format!("data[{key}]"), ""));
                }
            }
        }
        _ => {}
    }
}

/// `ValidateConfigMapUpdate` / `ValidateSecretUpdate`: nothing changes once `immutable` is set,
/// and a secret's type never changes.
pub(crate) fn validate_data_update(kind: Kind, old: &Obj, new: &Obj, errs: &mut Errs) {
    if kind == Kind::Secret && get_str(old, "type") != get_str(new, "type") {
        errs.push(immutable("type", go_quote(get_str(new, "type"))));
    }
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        const MSG: &str = "field is immutable when `immutable` is set";
        if new.get("immutable").and_then(Value::as_bool) != Some(true) {
            errs.push(forbidden("immutable", MSG));
        }
        let keys: &[&str] = if kind == Kind::Secret {
            &["data"]
        } else {
            &["data", "binaryData"]
        };
        for key in keys {
            if !semantic_eq(old.get(*key), new.get(*key)) {
                errs.push(forbidden(*key, MSG));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces.

/// `namespaceStrategy.PrepareForCreate`: status `Active` and the `kubernetes` finalizer.
pub(crate) fn prepare_namespace_create(map: &mut Obj) {
    map.insert("status".into(), json!({"phase": "Active"}));
    if let Some(spec) = obj_mut_or_create(map, "spec") {
        let mut finalizers = match spec.get("finalizers") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        if !finalizers.iter().any(|f| f == "kubernetes") {
            finalizers.push(json!("kubernetes"));
        }
        spec.insert("finalizers".into(), Value::Array(finalizers));
    }
}

/// `ValidateNamespace`'s finalizers.
pub(crate) fn validate_namespace(map: &Obj, errs: &mut Errs) {
    let finalizers = get_obj(map, "spec")
        .map(|s| string_list(s.get("finalizers")))
        .unwrap_or_default();
    for f in finalizers {
        for msg in is_qualified_name(&f) {
            errs.push(invalid("spec.finalizers", &f, msg));
        }
        if !f.contains('/') && !matches!(f.as_str(), "kubernetes" | "orphan" | "foregroundDeletion")
        {
            errs.push(invalid(
                "spec.finalizers",
                &f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// `ValidateNamespaceStatusUpdate`.
pub(crate) fn validate_namespace_status(map: &Obj, errs: &mut Errs) {
    let deleting = get_obj(map, "metadata")
        .and_then(|m| get(m, "deletionTimestamp"))
        .is_some();
    let phase = get_obj(map, "status")
        .map(|s| get_str(s, "phase"))
        .unwrap_or("");
    if !deleting && phase != "Active" {
        errs.push(invalid(
            "status.Phase",
            phase,
            "may only be 'Active' if `deletionTimestamp` is empty",
        ));
    }
    if deleting && phase != "Terminating" {
        errs.push(invalid(
            "status.Phase",
            phase,
            "may only be 'Terminating' if `deletionTimestamp` is not empty",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes.

/// `ValidateNode` (taints and pod CIDRs).
pub(crate) fn validate_node(map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let spec = get_obj(map, "spec").unwrap_or(&empty);
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, t) in get_arr(spec, "taints").iter().enumerate() {
        let t = t.as_object().unwrap_or(&empty);
        let path = format!("spec.taints[{i}]");
        let key = get_str(t, "key");
        for msg in is_qualified_name(key) {
            errs.push(invalid(format!("{path}.key"), key, msg));
        }
        let value = get_str(t, "value");
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(invalid(format!("{path}.value"), value, msgs.join(";")));
        }
        let effect = get_str(t, "effect");
        validate_taint_effect(effect, &format!("{path}.effect"), errs);
        if !seen.insert((effect.to_string(), key.to_string())) {
            let mut e = duplicate(
                path,
                format!(
                    "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:<nil>}}",
                    go_quote(key),
                    go_quote(value),
                    go_quote(effect)
                ),
            );
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
    let cidrs = string_list(spec.get("podCIDRs"));
    for (i, cidr) in cidrs.iter().enumerate() {
        let valid = cidr
            .split_once('/')
            .and_then(|(ip, bits)| Some((ip.parse::<IpAddr>().ok()?, bits.parse::<u8>().ok()?)))
            .is_some_and(|(ip, bits)| bits <= if ip.is_ipv4() { 32 } else { 128 });
        if !valid {
            errs.push(invalid(
                format!("spec.podCIDRs[{i}]"),
                cidr,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    if cidrs.len() > 2 {
        errs.push(invalid_raw(
            "spec.podCIDRs",
            go_string_slice(spec.get("podCIDRs")),
            "may specify no more than one CIDR for each IP family",
        ));
    }
}

/// `ValidateNodeUpdate`: pod CIDRs and the provider ID may only be set once.
pub(crate) fn validate_node_update(old: &Obj, new: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let old_spec = get_obj(old, "spec").unwrap_or(&empty);
    let spec = get_obj(new, "spec").unwrap_or(&empty);
    let old_cidrs = string_list(old_spec.get("podCIDRs"));
    if !old_cidrs.is_empty() && old_cidrs != string_list(spec.get("podCIDRs")) {
        errs.push(forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_provider = get_str(old_spec, "providerID");
    if !old_provider.is_empty() && old_provider != get_str(spec, "providerID") {
        errs.push(forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints.

/// `ValidateEndpoints`' subsets.
pub(crate) fn validate_endpoints(map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    for (i, ss) in get_arr(map, "subsets").iter().enumerate() {
        let ss = ss.as_object().unwrap_or(&empty);
        let path = format!("subsets[{i}]");
        if get_arr(ss, "addresses").is_empty() && get_arr(ss, "notReadyAddresses").is_empty() {
            errs.push(required(
                &path,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for key in ["addresses", "notReadyAddresses"] {
            for (j, a) in get_arr(ss, key).iter().enumerate() {
                let a = a.as_object().unwrap_or(&empty);
                let apath = format!("{path}.{key}[{j}]");
                validate_endpoint_ip(get_str(a, "ip"), &format!("{apath}.ip"), errs);
                let hostname = get_str(a, "hostname");
                if !hostname.is_empty() {
                    for msg in is_dns1123_label(hostname) {
                        errs.push(invalid(format!("{apath}.hostname"), hostname, msg));
                    }
                }
                let node = get_str(a, "nodeName");
                if !node.is_empty() {
                    for msg in is_dns1123_subdomain(node) {
                        errs.push(invalid(format!("{apath}.nodeName"), node, msg));
                    }
                }
            }
        }
        let ports = get_arr(ss, "ports");
        for (j, p) in ports.iter().enumerate() {
            let p = p.as_object().unwrap_or(&empty);
            let ppath = format!("{path}.ports[{j}]");
            let name = get_str(p, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(required(format!("{ppath}.name"), ""));
            } else if !name.is_empty() {
                for msg in is_dns1123_label(name) {
                    errs.push(invalid(format!("{ppath}.name"), name, msg));
                }
            }
            let port = get_i64(p, "port").unwrap_or(0);
            if !(1..=65535).contains(&port) {
                errs.push(invalid_int(
                    format!("{ppath}.port"),
                    port,
                    "must be between 1 and 65535, inclusive",
                ));
            }
            validate_protocol(p, &ppath, errs);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events and Leases.

/// `ValidateEventCreate` / `ValidateEventUpdate`: the legacy rules for both APIs, and on create
/// through `events.k8s.io` the strict ones. Field paths use the internal (core) names, as
/// Kubernetes' messages do.
pub(crate) fn validate_event(kind: Kind, map: &Obj, create: bool, errs: &mut Errs) {
    let core = kind == Kind::CoreEvent;
    let name = |core_name: &'static str, events_name: &'static str| {
        if core { core_name } else { events_name }
    };
    let empty = Obj::new();
    let meta = get_obj(map, "metadata").unwrap_or(&empty);
    let ns = get_str(meta, "namespace");
    let involved = get_obj(map, name("involvedObject", "regarding")).unwrap_or(&empty);
    let involved_ns = get_str(involved, "namespace");
    let event_time_set = get(map, "eventTime").is_some();
    let mismatch = || {
        invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    if !event_time_set {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(mismatch());
            }
        } else if ns != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        let controller_field = if core {
            "reportingComponent"
        } else {
            "reportingController"
        };
        let controller = get_str(map, controller_field);
        if controller.is_empty() {
            errs.push(required(controller_field, ""));
        }
        for msg in is_qualified_name(controller) {
            errs.push(invalid(controller_field, controller, msg));
        }
        for (field, limit, key) in [
            ("reportingInstance", 128, "reportingInstance"),
            ("action", 128, "action"),
            ("reason", 128, "reason"),
        ] {
            let v = get_str(map, key);
            if v.is_empty() {
                errs.push(required(field, ""));
            }
            if v.len() > limit {
                errs.push(invalid(
                    field,
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if get_str(map, name("message", "note")).len() > 1024 {
            errs.push(invalid("message", "", "can have at most 1024 characters"));
        }
    }
    if !ns.is_empty() {
        for msg in is_dns1123_subdomain(ns) {
            errs.push(invalid("namespace", ns, msg));
        }
    }
    if core || !create {
        return;
    }
    if let Some(series) = get_obj(map, "series") {
        if get_i64(series, "count").unwrap_or(0) < 2 {
            errs.push(invalid("series.count", "", "should be at least 2"));
        }
        if get(series, "lastObservedTime").is_none() {
            errs.push(required("series.lastObservedTime", ""));
        }
    }
    if !event_time_set {
        errs.push(required("eventTime", ""));
    }
    let ty = get_str(map, "type");
    if ty != "Normal" && ty != "Warning" {
        errs.push(invalid("type", "", format!("has invalid value: {ty}")));
    }
    for (key, field) in [
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
    ] {
        if get(map, key).is_some() {
            errs.push(invalid(field, "", "needs to be unset"));
        }
    }
    if get_i64(map, "deprecatedCount").unwrap_or(0) != 0 {
        errs.push(invalid("count", "", "needs to be unset"));
    }
    if get_obj(map, "deprecatedSource")
        .is_some_and(|s| !get_str(s, "component").is_empty() || !get_str(s, "host").is_empty())
    {
        errs.push(invalid("source", "", "needs to be unset"));
    }
}

/// `ValidateLeaseSpec`.
pub(crate) fn validate_lease(map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let spec = get_obj(map, "spec").unwrap_or(&empty);
    if let Some(d) = get_i64(spec, "leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(invalid_int(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = get_i64(spec, "leaseTransitions").filter(|t| *t < 0) {
        errs.push(invalid_int(
            "spec.leaseTransitions",
            t,
            "must be greater than or equal to 0",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_map_keys() {
        assert!(config_map_key_errors("a.b-c_D").is_empty());
        assert_eq!(
            config_map_key_errors(".."),
            vec!["must not be '..'".to_string()]
        );
        assert_eq!(
            config_map_key_errors("a b"),
            vec!["a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string()]
        );
    }
}
