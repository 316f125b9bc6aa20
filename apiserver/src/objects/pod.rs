//! Pods: the admission plugins kube-apiserver runs by default on pods that need only the pod
//! (DefaultTolerationSeconds, ServiceAccount's default; Priority is in [`super::priority`]),
//! `podStrategy` (status on create, QoS class, the update rules), pod spec validation (shared
//! with pod templates) and graceful deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api_types::quantity::Quantity;
use api_types::validation::{
    go_quote, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
    validate_labels,
};
use serde_json::{Value, json};

use super::decode::parse_quantity_value;
use super::util::{
    Errs, Obj, duplicate, forbidden, get, get_arr, get_i64, get_obj, get_str, invalid, invalid_int,
    invalid_raw, nonnegative, not_found, not_supported, obj_mut_or_create, required, semantic_eq,
    string_map,
};

const PORT_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// The volume sources a pod volume can have (`core.VolumeSource`'s fields).
const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

// ---------------------------------------------------------------------------------------------
// Admission.

/// The admission plugins' changes to a pod being created that need nothing but the pod:
/// DefaultTolerationSeconds and the ServiceAccount plugin's `default` account. (Priority reads
/// the PriorityClasses: it runs before, in the request's admission step, see
/// [`super::admit_pod_create`].)
pub(crate) fn admit_create(map: &mut Obj) {
    let Some(spec) = obj_mut_or_create(map, "spec") else {
        return;
    };
    default_tolerations(spec);
    if get_str(spec, "serviceAccountName").is_empty() {
        spec.insert("serviceAccountName".into(), json!("default"));
        spec.insert("serviceAccount".into(), json!("default"));
    }
}

/// DefaultTolerationSeconds (on create and update of pods): tolerate `not-ready` and
/// `unreachable` for 300 seconds unless the pod already tolerates them.
pub(crate) fn default_tolerations(spec: &mut Obj) {
    let mut not_ready = false;
    let mut unreachable = false;
    for t in get_arr(spec, "tolerations")
        .iter()
        .filter_map(Value::as_object)
    {
        let key = get_str(t, "key");
        let effect = get_str(t, "effect");
        let no_execute = effect == "NoExecute" || effect.is_empty();
        not_ready |= (key == "node.kubernetes.io/not-ready" || key.is_empty()) && no_execute;
        unreachable |= (key == "node.kubernetes.io/unreachable" || key.is_empty()) && no_execute;
    }
    if not_ready && unreachable {
        return;
    }
    let mut list = match spec.get("tolerations") {
        Some(Value::Array(a)) => a.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return,
    };
    for (missing, key) in [
        (!not_ready, "node.kubernetes.io/not-ready"),
        (!unreachable, "node.kubernetes.io/unreachable"),
    ] {
        if missing {
            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec.insert("tolerations".into(), Value::Array(list));
}

// ---------------------------------------------------------------------------------------------
// Strategy.

/// `podStrategy.PrepareForCreate`'s status: `Pending`, the QoS class, and the `SchedulingGated`
/// condition for gated pods.
pub(crate) fn prepare_create(map: &mut Obj, now: &str) {
    let empty = Obj::new();
    let spec = get_obj(map, "spec").unwrap_or(&empty);
    let mut status = json!({"phase": "Pending", "qosClass": qos_class(spec)});
    if !get_arr(spec, "schedulingGates").is_empty() {
        status["conditions"] = json!([{
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": null,
            "lastTransitionTime": now,
            "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates",
        }]);
    }
    map.insert("status".into(), status);
}

/// `podStatusStrategy.PrepareForUpdate`: a status write keeps the stored spec and owner
/// references, and the QoS class when the writer dropped it.
pub(crate) fn prepare_status_update(old: &Obj, map: &mut Obj) {
    let old_refs = get_obj(old, "metadata")
        .and_then(|m| m.get("ownerReferences"))
        .cloned();
    if let Some(meta) = obj_mut_or_create(map, "metadata") {
        match old_refs {
            Some(r) => {
                meta.insert("ownerReferences".into(), r);
            }
            None => {
                meta.remove("ownerReferences");
            }
        }
    }
    let old_qos = get_obj(old, "status")
        .map(|s| get_str(s, "qosClass").to_string())
        .unwrap_or_default();
    if !old_qos.is_empty()
        && let Some(status) = obj_mut_or_create(map, "status")
        && get_str(status, "qosClass").is_empty()
    {
        status.insert("qosClass".into(), json!(old_qos));
    }
}

/// `qos.GetPodQOS`: BestEffort without CPU/memory requests or limits, Guaranteed when every
/// container limits both and requests equal limits, Burstable otherwise.
pub(crate) fn qos_class(spec: &Obj) -> &'static str {
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = get_arr(spec, "containers")
        .iter()
        .chain(get_arr(spec, "initContainers"));
    for c in containers.filter_map(Value::as_object) {
        let resources = get_obj(c, "resources");
        let list = |key: &str| -> Vec<(String, Quantity)> {
            resources
                .and_then(|r| get_obj(r, key))
                .map(|m| {
                    m.iter()
                        .filter(|(name, _)| *name == "cpu" || *name == "memory")
                        .filter_map(|(name, v)| Some((name.clone(), parse_quantity_value(v).ok()?)))
                        .filter(|(_, q)| q.signum() > 0)
                        .collect()
                })
                .unwrap_or_default()
        };
        for (name, q) in list("requests") {
            add_to(&mut requests, name, q);
        }
        let found = list("limits");
        let names: BTreeSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        if !(names.contains("cpu") && names.contains("memory")) {
            guaranteed = false;
        }
        for (name, q) in found {
            add_to(&mut limits, name, q);
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests
            .iter()
            .all(|(name, req)| limits.get(name) == Some(req))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

fn add_to(sums: &mut BTreeMap<String, Quantity>, name: String, q: Quantity) {
    let total = match sums.get(&name) {
        Some(prev) => prev.checked_add(&q).unwrap_or(*prev),
        None => q,
    };
    sums.insert(name, total);
}

/// `podStrategy.CheckGracefulDelete`: the grace period a pod's deletion gets: the requested
/// one, else the pod's `terminationGracePeriodSeconds` (30 when unset); 0 (immediate) for pods
/// never scheduled to a node or already finished; a negative request becomes 1. `None` for
/// something that is not an object.
pub fn graceful_pod_deletion(obj: &Value, requested_grace: Option<i64>) -> Option<i64> {
    let map = obj.as_object()?;
    let empty = Obj::new();
    let spec = get_obj(map, "spec").unwrap_or(&empty);
    let mut period = requested_grace
        .or_else(|| get_i64(spec, "terminationGracePeriodSeconds"))
        .unwrap_or(30);
    if get_str(spec, "nodeName").is_empty() {
        period = 0;
    }
    let phase = get_obj(map, "status")
        .map(|s| get_str(s, "phase"))
        .unwrap_or("");
    if phase == "Failed" || phase == "Succeeded" {
        period = 0;
    }
    if period < 0 {
        period = 1;
    }
    Some(period)
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// `ValidatePodCreate`'s checks beyond the spec.
pub(crate) fn validate_pod_create(spec: &Obj, errs: &mut Errs) {
    if !get_arr(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !get_str(spec, "nodeName").is_empty() && !get_arr(spec, "schedulingGates").is_empty() {
        errs.push(forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
}

/// `ValidatePodSpec` (the common subset): volumes, containers, init containers, enums,
/// tolerations and the names a spec refers to. `path` is `spec` or `spec.template.spec`.
pub(crate) fn validate_pod_spec(spec: &Obj, path: &str, errs: &mut Errs) {
    let volumes = validate_volumes(spec, &format!("{path}.volumes"), errs);
    let mut names = BTreeSet::new();
    let containers = get_arr(spec, "containers");
    if containers.is_empty() {
        errs.push(required(format!("{path}.containers"), ""));
    }
    let empty = Obj::new();
    for (i, c) in containers.iter().enumerate() {
        let c = c.as_object().unwrap_or(&empty);
        validate_container(
            c,
            &format!("{path}.containers[{i}]"),
            &volumes,
            &mut names,
            errs,
        );
    }
    for (i, c) in get_arr(spec, "initContainers").iter().enumerate() {
        let c = c.as_object().unwrap_or(&empty);
        validate_container(
            c,
            &format!("{path}.initContainers[{i}]"),
            &volumes,
            &mut names,
            errs,
        );
    }
    match get_str(spec, "restartPolicy") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(format!("{path}.restartPolicy"), "")),
        other => errs.push(not_supported(
            format!("{path}.restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    match get_str(spec, "dnsPolicy") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(required(format!("{path}.dnsPolicy"), "")),
        other => errs.push(not_supported(
            format!("{path}.dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    if let Some(ads) = get_i64(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(invalid_int(
            format!("{path}.activeDeadlineSeconds"),
            ads,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    errs.extend(validate_labels(
        &string_map(spec.get("nodeSelector")),
        &format!("{path}.nodeSelector"),
    ));
    for (key, what) in [
        ("serviceAccountName", "serviceAccountName"),
        ("nodeName", "nodeName"),
    ] {
        let v = get_str(spec, key);
        if !v.is_empty() {
            for msg in is_dns1123_subdomain(v) {
                errs.push(invalid(format!("{path}.{what}"), v, msg));
            }
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = get_str(spec, key);
        if !v.is_empty() {
            for msg in is_dns1123_label(v) {
                errs.push(invalid(format!("{path}.{key}"), v, msg));
            }
        }
    }
    validate_tolerations(
        get_arr(spec, "tolerations"),
        &format!("{path}.tolerations"),
        errs,
    );
}

/// `ValidateVolumes`; returns the names of the valid volumes.
fn validate_volumes(spec: &Obj, path: &str, errs: &mut Errs) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let empty = Obj::new();
    for (i, v) in get_arr(spec, "volumes").iter().enumerate() {
        let v = v.as_object().unwrap_or(&empty);
        let vpath = format!("{path}[{i}]");
        let mut el = Errs::new();
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|s| v.get(*s).is_some_and(|x| !x.is_null()))
            .collect();
        match sources.as_slice() {
            [] => el.push(required(vpath.clone(), "must specify a volume type")),
            [first, rest @ ..] => {
                for extra in rest {
                    el.push(forbidden(
                        format!("{vpath}.{extra}"),
                        "may not specify more than 1 volume type",
                    ));
                }
                let source = get_obj(v, first).unwrap_or(&empty);
                let must = match *first {
                    "configMap" => Some("name"),
                    "secret" => Some("secretName"),
                    "persistentVolumeClaim" => Some("claimName"),
                    "hostPath" => Some("path"),
                    _ => None,
                };
                if let Some(key) = must.filter(|k| get_str(source, k).is_empty()) {
                    el.push(required(format!("{vpath}.{first}.{key}"), ""));
                }
            }
        }
        let name = get_str(v, "name");
        if name.is_empty() {
            el.push(required(format!("{vpath}.name"), ""));
        } else {
            for msg in is_dns1123_label(name) {
                el.push(invalid(format!("{vpath}.name"), name, msg));
            }
        }
        if names.contains(name) {
            el.push(duplicate(format!("{vpath}.name"), go_quote(name)));
        }
        if el.is_empty() {
            names.insert(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    names
}

fn validate_container(
    c: &Obj,
    path: &str,
    volumes: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
    errs: &mut Errs,
) {
    let name = get_str(c, "name");
    if name.is_empty() {
        errs.push(required(format!("{path}.name"), ""));
    } else {
        for msg in is_dns1123_label(name) {
            errs.push(invalid(format!("{path}.name"), name, msg));
        }
        if !names.insert(name.to_string()) {
            errs.push(duplicate(format!("{path}.name"), go_quote(name)));
        }
    }
    if get_str(c, "image").is_empty() {
        errs.push(required(format!("{path}.image"), ""));
    }
    validate_container_ports(get_arr(c, "ports"), &format!("{path}.ports"), errs);
    let empty = Obj::new();
    for (i, e) in get_arr(c, "env").iter().enumerate() {
        let e = e.as_object().unwrap_or(&empty);
        let env_name = get_str(e, "name");
        if env_name.is_empty() {
            errs.push(required(format!("{path}.env[{i}].name"), ""));
        } else if env_name
            .bytes()
            .any(|b| !(32..=126).contains(&b) || b == b'=')
        {
            errs.push(invalid(
                format!("{path}.env[{i}].name"),
                env_name,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
    let mut mount_paths = BTreeSet::new();
    for (i, m) in get_arr(c, "volumeMounts").iter().enumerate() {
        let m = m.as_object().unwrap_or(&empty);
        let mpath = format!("{path}.volumeMounts[{i}]");
        let mname = get_str(m, "name");
        if mname.is_empty() {
            errs.push(required(format!("{mpath}.name"), ""));
        } else if !volumes.contains(mname) {
            errs.push(not_found(format!("{mpath}.name"), mname));
        }
        let mount_path = get_str(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(required(format!("{mpath}.mountPath"), ""));
        } else if !mount_paths.insert(mount_path.to_string()) {
            errs.push(invalid(
                format!("{mpath}.mountPath"),
                mount_path,
                "must be unique",
            ));
        }
    }
    if let Some(resources) = get_obj(c, "resources") {
        validate_resources(resources, &format!("{path}.resources"), errs);
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = get_obj(c, probe) {
            validate_probe(
                p,
                &format!("{path}.{probe}"),
                probe != "readinessProbe",
                errs,
            );
        }
    }
    match get_str(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(required(format!("{path}.imagePullPolicy"), "")),
        other => errs.push(not_supported(
            format!("{path}.imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    match get_str(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(required(
            format!("{path}.terminationMessagePolicy"),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        other => errs.push(invalid(
            format!("{path}.terminationMessagePolicy"),
            other,
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
    }
}

/// `validateContainerPorts`.
fn validate_container_ports(ports: &[Value], path: &str, errs: &mut Errs) {
    let empty = Obj::new();
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let p = p.as_object().unwrap_or(&empty);
        let ppath = format!("{path}[{i}]");
        let name = get_str(p, "name");
        if !name.is_empty() {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(invalid(format!("{ppath}.name"), name, msg));
                }
            } else if !names.insert(name.to_string()) {
                errs.push(duplicate(format!("{ppath}.name"), go_quote(name)));
            }
        }
        match get_i64(p, "containerPort").unwrap_or(0) {
            0 => errs.push(required(format!("{ppath}.containerPort"), "")),
            n if !(1..=65535).contains(&n) => errs.push(invalid_int(
                format!("{ppath}.containerPort"),
                n,
                "must be between 1 and 65535, inclusive",
            )),
            _ => {}
        }
        if let Some(host) = get_i64(p, "hostPort").filter(|h| *h != 0)
            && !(1..=65535).contains(&host)
        {
            errs.push(invalid_int(
                format!("{ppath}.hostPort"),
                host,
                "must be between 1 and 65535, inclusive",
            ));
        }
        match get_str(p, "protocol") {
            "" => errs.push(required(format!("{ppath}.protocol"), "")),
            proto if !PORT_PROTOCOLS.contains(&proto) => {
                errs.push(not_supported(
                    format!("{ppath}.protocol"),
                    proto,
                    PORT_PROTOCOLS,
                ));
            }
            _ => {}
        }
    }
}

/// `IsValidPortName`.
pub(crate) fn port_name_errors(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    } else if !port.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `ValidatePortNumOrName` for a target port (an IntOrString).
pub(crate) fn validate_port_num_or_name(v: Option<&Value>, path: &str, errs: &mut Errs) {
    match v {
        Some(Value::String(s)) => {
            for msg in port_name_errors(s) {
                errs.push(invalid(path, s, msg));
            }
        }
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&n) {
                errs.push(invalid_int(
                    path,
                    n,
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
        _ => {}
    }
}

fn validate_probe(p: &Obj, path: &str, success_must_be_one: bool, errs: &mut Errs) {
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| get(p, h).is_some())
        .collect();
    match handlers.as_slice() {
        [] => errs.push(required(path, "must specify a handler type")),
        [_] => {}
        [_, rest @ ..] => {
            for h in rest {
                errs.push(forbidden(
                    format!("{path}.{h}"),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonnegative(errs, &format!("{path}.{key}"), get_i64(p, key));
    }
    if success_must_be_one && let Some(n) = get_i64(p, "successThreshold").filter(|n| *n != 1) {
        errs.push(invalid_int(
            format!("{path}.successThreshold"),
            n,
            "must be 1",
        ));
    }
    for handler in ["httpGet", "tcpSocket"] {
        if let Some(h) = get_obj(p, handler) {
            validate_port_num_or_name(h.get("port"), &format!("{path}.{handler}.port"), errs);
        }
    }
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

fn validate_resource_name(name: &str, path: &str, errs: &mut Errs) -> bool {
    let before = errs.len();
    for msg in is_qualified_name(name) {
        errs.push(invalid(path, name, msg));
    }
    if errs.len() > before {
        return false;
    }
    if !name.contains('/') {
        const STANDARD: &[&str] = &[
            "cpu",
            "memory",
            "ephemeral-storage",
            "pods",
            "services",
            "replicationcontrollers",
            "resourcequotas",
            "secrets",
            "configmaps",
            "persistentvolumeclaims",
            "storage",
        ];
        let standard = STANDARD.contains(&name)
            || name.starts_with("hugepages-")
            || name.starts_with("requests.")
            || name.starts_with("limits.");
        if !standard {
            errs.push(invalid(
                path,
                name,
                "must be a standard resource type or fully qualified",
            ));
            return false;
        }
        if !is_standard_container_resource(name) {
            errs.push(invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
            return false;
        }
    } else if !is_native_resource(name) && name.starts_with("requests.") {
        errs.push(invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
        return false;
    }
    true
}

/// `ValidateResourceRequirements`: names, non-negative values, integer extended resources, and
/// requests within limits (equal for resources that cannot be overcommitted).
pub(crate) fn validate_resources(res: &Obj, path: &str, errs: &mut Errs) {
    let parse = |key: &str| -> Vec<(String, Option<Quantity>, String)> {
        get_obj(res, key)
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(n, v)| {
                        let raw = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (n.clone(), parse_quantity_value(v).ok(), raw)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let limits = parse("limits");
    let requests = parse("requests");
    let check_value = |kind: &str, name: &str, q: &Option<Quantity>, raw: &str, errs: &mut Errs| {
        let fpath = format!("{path}.{kind}[{name}]");
        if !validate_resource_name(name, &fpath, errs) {
            return;
        }
        match q {
            None => errs.push(invalid(
                &fpath,
                raw,
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            )),
            Some(q) if q.signum() < 0 => {
                errs.push(invalid(&fpath, &q.to_string(), "must be greater than or equal to 0"));
            }
            Some(q) if !is_native_resource(name) && q.to_milli_ceil() % 1000 != 0 => {
                errs.push(invalid(&fpath, &q.to_string(), "must be an integer"));
            }
            _ => {}
        }
    };
    for (name, q, raw) in &limits {
        check_value("limits", name, q, raw, errs);
    }
    for (name, q, raw) in &requests {
        check_value("requests", name, q, raw, errs);
        let Some(req) = q else { continue };
        match limits.iter().find(|(n, _, _)| n == name) {
            Some((_, Some(lim), _)) => {
                if !overcommit_allowed(name) && req != lim {
                    errs.push(invalid(
                        format!("{path}.requests"),
                        &req.to_string(),
                        format!("must be equal to {name} limit of {lim}"),
                    ));
                } else if req > lim {
                    errs.push(invalid(
                        format!("{path}.requests"),
                        &req.to_string(),
                        format!("must be less than or equal to {name} limit of {lim}"),
                    ));
                }
            }
            Some(_) => {}
            None if !overcommit_allowed(name) => errs.push(required(
                format!("{path}.limits"),
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(list: &[Value], path: &str, errs: &mut Errs) {
    let empty = Obj::new();
    for (i, t) in list.iter().enumerate() {
        let t = t.as_object().unwrap_or(&empty);
        let tpath = format!("{path}[{i}]");
        let key = get_str(t, "key");
        let operator = get_str(t, "operator");
        let effect = get_str(t, "effect");
        let value = get_str(t, "value");
        if !key.is_empty() {
            for msg in is_qualified_name(key) {
                errs.push(invalid(format!("{tpath}.key"), key, msg));
            }
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(invalid(
                format!("{tpath}.operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(invalid(
                format!("{tpath}.effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid(format!("{tpath}.operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid_raw(
                        format!("{tpath}.operator"),
                        serde_json::to_string(t).unwrap_or_default(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                format!("{tpath}.operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(not_supported(
                format!("{tpath}.effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
    }
}

/// `validateTaintEffect` for a node's taint (the effect is required there).
pub(crate) fn validate_taint_effect(effect: &str, path: &str, errs: &mut Errs) {
    if effect.is_empty() {
        errs.push(required(path, ""));
    } else if !TAINT_EFFECTS.contains(&effect) {
        errs.push(not_supported(path, effect, TAINT_EFFECTS));
    }
}

/// `ValidatePodUpdate`'s spec rules: only images, `activeDeadlineSeconds`, added tolerations,
/// a negative grace period turned to 1 and removed scheduling gates may change.
pub(crate) fn validate_pod_spec_update(old: &Obj, new: &Obj, errs: &mut Errs) {
    for (key, what) in [
        ("containers", "containers"),
        ("initContainers", "init containers"),
    ] {
        let (o, n) = (get_arr(old, key), get_arr(new, key));
        if o.len() != n.len() {
            let detail = if key == "containers" {
                "pod updates may not add or remove containers".to_string()
            } else {
                format!("pod updates may not add or remove {what}")
            };
            errs.push(forbidden(format!("spec.{key}"), detail));
            return;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            if image.trim() != image {
                errs.push(invalid(
                    format!("spec.{key}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    match (
        get_i64(new, "activeDeadlineSeconds"),
        get_i64(old, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(invalid_int(
                "spec.activeDeadlineSeconds",
                n,
                "must be between 0 and 2147483647, inclusive",
            ));
            return;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(invalid_int(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return;
        }
        (None, Some(_)) => errs.push(invalid_raw(
            "spec.activeDeadlineSeconds",
            "null",
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Tolerations: every old one must still be there (its tolerationSeconds may change).
    let new_tolerations = get_arr(new, "tolerations");
    for old_t in get_arr(old, "tolerations") {
        let found = new_tolerations.iter().any(|n| {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("tolerationSeconds");
                }
                v
            };
            semantic_eq(Some(&strip(old_t)), Some(&strip(n)))
        });
        if !found {
            errs.push(forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    // What remains after the allowed changes must equal the stored spec.
    let mut munged = new.clone();
    for key in ["containers", "initContainers"] {
        if let (Some(Value::Array(items)), Some(old_items)) =
            (munged.get_mut(key), old.get(key).and_then(Value::as_array))
        {
            for (item, old_item) in items.iter_mut().zip(old_items) {
                if let (Some(m), Some(old_image)) = (item.as_object_mut(), old_item.get("image")) {
                    m.insert("image".into(), old_image.clone());
                }
            }
        }
    }
    for key in ["activeDeadlineSeconds", "tolerations"] {
        copy_field(old, &mut munged, key);
    }
    if get_i64(old, "terminationGracePeriodSeconds").is_some_and(|g| g < 0)
        && get_i64(new, "terminationGracePeriodSeconds") == Some(1)
    {
        copy_field(old, &mut munged, "terminationGracePeriodSeconds");
    }
    let old_gates = get_arr(old, "schedulingGates");
    if get_arr(new, "schedulingGates")
        .iter()
        .all(|g| old_gates.contains(g))
    {
        copy_field(old, &mut munged, "schedulingGates");
    }
    let mut changed: Vec<String> = Vec::new();
    for key in old.keys().chain(munged.keys()).collect::<BTreeSet<_>>() {
        if !semantic_eq(old.get(key), munged.get(key)) {
            let show = |v: Option<&Value>| {
                v.map_or("null".to_string(), |v| {
                    serde_json::to_string(v).unwrap_or_default()
                })
            };
            changed.push(format!(
                "- \t{key}: {},\n+ \t{key}: {},",
                show(old.get(key)),
                show(munged.get(key))
            ));
        }
    }
    if !changed.is_empty() {
        errs.push(forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n  core.PodSpec{{\n{}\n  }}\n",
                changed.join("\n")
            ),
        ));
    }
}

fn copy_field(from: &Obj, to: &mut Obj, key: &str) {
    match from.get(key) {
        Some(v) => {
            to.insert(key.to_string(), v.clone());
        }
        None => {
            to.remove(key);
        }
    }
}

/// `ValidateNonSpecialIP` and `IsValidIPForLegacyField` for an endpoint address.
pub(crate) fn validate_endpoint_ip(ip: &str, path: &str, errs: &mut Errs) {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        errs.push(invalid(
            path,
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
        return;
    };
    let msg = match addr {
        a if a.is_unspecified() => Some("may not be unspecified (0.0.0.0, ::)"),
        a if a.is_loopback() => Some("may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        IpAddr::V4(v4) if v4.is_link_local() => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        IpAddr::V4(v4) if v4.octets()[..3] == [224, 0, 0] => {
            Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        }
        IpAddr::V6(v6) if v6.segments()[0] == 0xff02 => {
            Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        }
        _ => None,
    };
    if let Some(msg) = msg {
        errs.push(invalid(path, ip, msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Obj {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn qos_classes() {
        let cases = [
            (json!({"containers": [{"name": "a"}]}), "BestEffort"),
            (
                json!({"containers": [{"resources": {"requests": {"cpu": "100m"}}}]}),
                "Burstable",
            ),
            (
                json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]}),
                "Guaranteed",
            ),
            (
                json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}}]}),
                "Burstable",
            ),
            (
                json!({"containers": [
                    {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}},
                    {"resources": {"limits": {"cpu": "1000m"}, "requests": {"cpu": "1"}}}
                ]}),
                "Burstable",
            ),
            (
                json!({"containers": [{"resources": {"requests": {"nvidia.com/gpu": "1"}}}]}),
                "BestEffort",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(qos_class(&spec(s.clone())), want, "{s}");
        }
    }

    #[test]
    fn grace_periods() {
        let scheduled = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 45}});
        assert_eq!(graceful_pod_deletion(&scheduled, None), Some(45));
        assert_eq!(graceful_pod_deletion(&scheduled, Some(0)), Some(0));
        assert_eq!(graceful_pod_deletion(&scheduled, Some(-5)), Some(1));
        assert_eq!(
            graceful_pod_deletion(&json!({"spec": {"nodeName": "n1"}}), None),
            Some(30)
        );
        assert_eq!(
            graceful_pod_deletion(
                &json!({"spec": {"terminationGracePeriodSeconds": 45}}),
                Some(10)
            ),
            Some(0)
        );
        let done = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
        assert_eq!(graceful_pod_deletion(&done, None), Some(0));
        assert_eq!(graceful_pod_deletion(&json!("junk"), None), None);
    }

    #[test]
    fn toleration_defaults_respect_existing_ones() {
        let mut s = spec(json!({"tolerations": [{"operator": "Exists"}]}));
        default_tolerations(&mut s);
        assert_eq!(get_arr(&s, "tolerations").len(), 1);
        let mut s = spec(
            json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]}),
        );
        default_tolerations(&mut s);
        assert_eq!(
            Value::Array(get_arr(&s, "tolerations").to_vec()),
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
    }

    #[test]
    fn port_names() {
        assert!(port_name_errors("http").is_empty());
        assert_eq!(
            port_name_errors("80"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            port_name_errors("a--b"),
            vec!["must contain consecutive hyphens".replace("must", "must not")]
        );
        assert_eq!(port_name_errors("HTTP").len(), 1);
    }
}
