//! Kubernetes' v1 defaulting (`pkg/apis/core/v1/defaults.go`, `pkg/apis/apps/v1/defaults.go` and
//! the declarative `+default` markers), applied to every object a client writes, as decoding does
//! in kube-apiserver. Also the fields Go always prints because they are non-pointer structs
//! (`resources: {}`, a template's `creationTimestamp: null`), so that objects read back look the
//! way they do from Kubernetes.

use base64::Engine as _;
use serde_json::{Value, json};

use super::Kind;
use super::decode::{canonicalize_quantity, for_each_quantity};
use super::util::{
    Obj, each_obj_mut, get_arr, get_obj, get_str, obj_mut, obj_mut_or_create, set_default,
    set_default_int, set_default_str,
};

/// Applies the defaults of `kind` to an object (a JSON object's map).
pub(crate) fn apply_defaults(kind: Kind, map: &mut Obj) {
    match kind {
        Kind::Pod => {
            if let Some(spec) = obj_mut_or_create(map, "spec") {
                pod_spec_defaults(spec, true);
            }
        }
        Kind::Deployment => deployment_defaults(map),
        Kind::ReplicaSet => {
            if let Some(spec) = obj_mut_or_create(map, "spec") {
                set_default(spec, "replicas", json!(1));
                template_defaults(spec);
            }
        }
        Kind::Service => service_defaults(map),
        Kind::Namespace => namespace_defaults(map),
        Kind::Secret => secret_defaults(map),
        Kind::Endpoints => each_obj_mut(map, "subsets", |subset| {
            each_obj_mut(subset, "ports", |p| set_default_str(p, "protocol", "TCP"));
        }),
        Kind::Node => node_defaults(map),
        Kind::CoreEvent => {
            for key in ["eventTime", "firstTimestamp", "lastTimestamp"] {
                map.entry(key).or_insert(Value::Null);
            }
            for key in ["reportingComponent", "reportingInstance"] {
                map.entry(key).or_insert(json!(""));
            }
            for key in ["involvedObject", "source"] {
                set_default(map, key, json!({}));
            }
        }
        Kind::PriorityClass => super::priority::defaults(map),
        Kind::ConfigMap | Kind::ServiceAccount | Kind::Lease | Kind::EventsEvent | Kind::Other => {}
    }
    let mut value = Value::Object(std::mem::take(map));
    for_each_quantity(kind, &mut value, &mut |q, list| {
        canonicalize_quantity(q, list)
    });
    if let Value::Object(m) = value {
        *map = m;
    }
}

fn deployment_defaults(map: &mut Obj) {
    let Some(spec) = obj_mut_or_create(map, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    if let Some(strategy) = obj_mut_or_create(spec, "strategy") {
        set_default_str(strategy, "type", "RollingUpdate");
        if get_str(strategy, "type") == "RollingUpdate"
            && let Some(rolling) = obj_mut_or_create(strategy, "rollingUpdate")
        {
            set_default(rolling, "maxUnavailable", json!("25%"));
            set_default(rolling, "maxSurge", json!("25%"));
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    template_defaults(spec);
}

/// A workload's `spec.template`: pod spec defaults (not the pod-only ones).
fn template_defaults(spec: &mut Obj) {
    let Some(template) = obj_mut_or_create(spec, "template") else {
        return;
    };
    if let Some(meta) = obj_mut_or_create(template, "metadata") {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
    if let Some(pod_spec) = obj_mut_or_create(template, "spec") {
        pod_spec_defaults(pod_spec, false);
    }
}

/// `SetDefaults_PodSpec` and what is nested in a pod spec; with `is_pod`, also `SetDefaults_Pod`
/// (pods only, not templates).
pub(crate) fn pod_spec_defaults(spec: &mut Obj, is_pod: bool) {
    set_default_str(spec, "dnsPolicy", "ClusterFirst");
    set_default_str(spec, "restartPolicy", "Always");
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default_str(spec, "schedulerName", "default-scheduler");
    // v1 conversion: the deprecated `serviceAccount` mirrors `serviceAccountName`.
    let name = get_str(spec, "serviceAccountName").to_string();
    let deprecated = get_str(spec, "serviceAccount").to_string();
    let effective = if name.is_empty() { deprecated } else { name };
    if effective.is_empty() {
        spec.remove("serviceAccount");
    } else {
        spec.insert("serviceAccountName".into(), json!(effective));
        spec.insert("serviceAccount".into(), json!(effective));
    }
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        each_obj_mut(spec, key, container_defaults);
    }
    each_obj_mut(spec, "volumes", volume_defaults);
    if is_pod {
        set_default(spec, "enableServiceLinks", json!(true));
        for key in ["containers", "initContainers"] {
            each_obj_mut(spec, key, requests_from_limits);
        }
        if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            for key in ["containers", "initContainers"] {
                each_obj_mut(spec, key, |c| {
                    each_obj_mut(c, "ports", |p| {
                        let container_port = p.get("containerPort").cloned().unwrap_or(json!(0));
                        set_default_int(p, "hostPort", container_port.as_i64().unwrap_or(0));
                    });
                });
            }
        }
    }
}

/// Pods only: a limit without a request makes the request equal to the limit.
fn requests_from_limits(container: &mut Obj) {
    let Some(resources) = obj_mut(container, "resources") else {
        return;
    };
    let Some(limits) = get_obj(resources, "limits")
        .filter(|l| !l.is_empty())
        .cloned()
    else {
        return;
    };
    if let Some(requests) = obj_mut_or_create(resources, "requests") {
        for (name, value) in limits {
            if requests.get(&name).is_none_or(Value::is_null) {
                requests.insert(name, value);
            }
        }
    }
}

fn container_defaults(c: &mut Obj) {
    let policy = if image_tag_is_latest(get_str(c, "image")) {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default_str(c, "imagePullPolicy", policy);
    set_default_str(c, "terminationMessagePath", "/dev/termination-log");
    set_default_str(c, "terminationMessagePolicy", "File");
    set_default(c, "resources", json!({}));
    each_obj_mut(c, "ports", |p| set_default_str(p, "protocol", "TCP"));
    each_obj_mut(c, "env", |e| {
        if let Some(field_ref) = obj_mut(e, "valueFrom").and_then(|v| obj_mut(v, "fieldRef")) {
            set_default_str(field_ref, "apiVersion", "v1");
        }
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = obj_mut(c, probe) {
            set_default_int(p, "timeoutSeconds", 1);
            set_default_int(p, "periodSeconds", 10);
            set_default_int(p, "successThreshold", 1);
            set_default_int(p, "failureThreshold", 3);
            handler_defaults(p);
        }
    }
    if let Some(lifecycle) = obj_mut(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = obj_mut(lifecycle, hook) {
                handler_defaults(h);
            }
        }
    }
}

fn handler_defaults(h: &mut Obj) {
    if let Some(get) = obj_mut(h, "httpGet") {
        set_default_str(get, "path", "/");
        set_default_str(get, "scheme", "HTTP");
    }
    if let Some(grpc) = obj_mut(h, "grpc") {
        set_default(grpc, "service", json!(""));
    }
}

fn field_ref_defaults(item: &mut Obj) {
    if let Some(field_ref) = obj_mut(item, "fieldRef") {
        set_default_str(field_ref, "apiVersion", "v1");
    }
}

fn volume_defaults(v: &mut Obj) {
    if !v.iter().any(|(k, val)| k != "name" && !val.is_null()) {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = obj_mut(v, source) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(d) = obj_mut(v, "downwardAPI") {
        each_obj_mut(d, "items", field_ref_defaults);
    }
    if let Some(p) = obj_mut(v, "projected") {
        each_obj_mut(p, "sources", |s| {
            if let Some(token) = obj_mut(s, "serviceAccountToken") {
                set_default(token, "expirationSeconds", json!(3600));
            }
            if let Some(d) = obj_mut(s, "downwardAPI") {
                each_obj_mut(d, "items", field_ref_defaults);
            }
        });
    }
    if let Some(h) = obj_mut(v, "hostPath") {
        set_default(h, "type", json!(""));
    }
    if let Some(spec) = obj_mut(v, "ephemeral")
        .and_then(|e| obj_mut(e, "volumeClaimTemplate"))
        .and_then(|t| obj_mut(t, "spec"))
    {
        set_default(spec, "volumeMode", json!("Filesystem"));
    }
}

/// `parsers.ParseImageName` as the pull-policy default uses it: the tag is `latest` when given
/// so, or when neither a tag nor a digest is given. A reference that does not parse has no tag.
pub(crate) fn image_tag_is_latest(image: &str) -> bool {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return false;
    }
    let mut parts = name.split('/').collect::<Vec<_>>();
    let last = parts.pop().unwrap_or("");
    let (repo, tag) = match last.split_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (last, None),
    };
    // The path (all but a leading registry host) must be lowercase.
    let host = parts
        .first()
        .is_some_and(|p| p.contains('.') || p.contains(':') || *p == "localhost");
    let path_parts = parts
        .iter()
        .skip(usize::from(host))
        .copied()
        .chain(std::iter::once(repo));
    if path_parts.clone().any(str::is_empty)
        || path_parts
            .flat_map(str::chars)
            .any(|c| c.is_ascii_uppercase())
    {
        return false;
    }
    match tag {
        Some(t) => t == "latest",
        None => digest.is_none(),
    }
}

fn service_defaults(map: &mut Obj) {
    let Some(spec) = obj_mut_or_create(map, "spec") else {
        return;
    };
    set_default_str(spec, "sessionAffinity", "None");
    match get_str(spec, "sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let has_timeout = get_obj(spec, "sessionAffinityConfig")
                .and_then(|c| get_obj(c, "clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    set_default_str(spec, "type", "ClusterIP");
    each_obj_mut(spec, "ports", |p| {
        set_default_str(p, "protocol", "TCP");
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(v) => v.as_i64() == Some(0),
        };
        if unset {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            p.insert("targetPort".into(), json!(port));
        }
    });
    let ty = get_str(spec, "type").to_string();
    let external_ips = !get_arr(spec, "externalIPs").is_empty();
    if ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && external_ips) {
        set_default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn namespace_defaults(map: &mut Obj) {
    let name = map
        .get("metadata")
        .and_then(Value::as_object)
        .map(|m| get_str(m, "name").to_string())
        .unwrap_or_default();
    if !name.is_empty()
        && let Some(labels) = obj_mut(map, "metadata").and_then(|m| obj_mut_or_create(m, "labels"))
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(status) = obj_mut_or_create(map, "status") {
        set_default_str(status, "phase", "Active");
    }
}

fn secret_defaults(map: &mut Obj) {
    set_default_str(map, "type", "Opaque");
    // v1 conversion: stringData is merged into data (winning) and never stored.
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        if string_data.is_empty() {
            return;
        }
        if let Some(data) = obj_mut_or_create(map, "data") {
            for (key, value) in string_data {
                if let Some(s) = value.as_str() {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
                    data.insert(key, Value::String(encoded));
                }
            }
        }
    }
}

fn node_defaults(map: &mut Obj) {
    if let Some(spec) = obj_mut(map, "spec") {
        let cidrs = get_arr(spec, "podCIDRs").to_vec();
        let cidr = get_str(spec, "podCIDR").to_string();
        if cidrs.is_empty() && !cidr.is_empty() {
            spec.insert("podCIDRs".into(), json!([cidr]));
        } else if let Some(first) = cidrs.first().filter(|c| c.is_string()) {
            spec.insert("podCIDR".into(), first.clone());
        }
    }
    if let Some(status) = obj_mut(map, "status")
        && status.get("allocatable").is_none_or(Value::is_null)
        && let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        status.insert("allocatable".into(), capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_from_the_tag() {
        let cases = [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.27", false),
            ("localhost:5000/nginx", true),
            ("localhost:5000/nginx:1", false),
            ("registry.k8s.io/pause:3.10", false),
            ("nginx@sha256:abc", false),
            ("nginx:latest@sha256:abc", true),
            ("Nginx", false),
            ("", false),
        ];
        for (image, latest) in cases {
            assert_eq!(image_tag_is_latest(image), latest, "{image}");
        }
    }

    #[test]
    fn secrets_merge_string_data() {
        let mut m = json!({"data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "y"}})
            .as_object()
            .cloned()
            .unwrap();
        apply_defaults(Kind::Secret, &mut m);
        assert_eq!(
            Value::Object(m),
            json!({"type": "Opaque", "data": {"a": "eQ==", "b": "aGVsbG8="}})
        );
    }

    #[test]
    fn services() {
        let mut m =
            json!({"spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}})
                .as_object()
                .cloned()
                .unwrap();
        apply_defaults(Kind::Service, &mut m);
        assert_eq!(
            Value::Object(m),
            json!({"spec": {
                "ports": [
                    {"port": 80, "protocol": "TCP", "targetPort": 80},
                    {"port": 443, "protocol": "TCP", "targetPort": "https"}
                ],
                "sessionAffinity": "None",
                "type": "ClusterIP",
                "internalTrafficPolicy": "Cluster"
            }})
        );
    }

    #[test]
    fn malformed_shapes_do_not_panic() {
        for kind in [
            Kind::Pod,
            Kind::Deployment,
            Kind::ReplicaSet,
            Kind::Service,
            Kind::Namespace,
            Kind::Secret,
            Kind::Node,
            Kind::Endpoints,
            Kind::CoreEvent,
        ] {
            for junk in [
                json!({"spec": "x", "metadata": 1, "status": [], "subsets": "s", "stringData": 3}),
                json!({"spec": {"template": 5, "containers": {"a": 1}, "ports": [1, "x", null]}}),
                json!({"spec": {"template": {"spec": {"containers": [1, {"ports": "x", "resources": {"limits": 7}}]}}}}),
            ] {
                let mut m = junk.as_object().cloned().unwrap();
                apply_defaults(kind, &mut m);
            }
        }
    }
}
