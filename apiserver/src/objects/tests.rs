//! Table tests of the public API: what kube-apiserver 1.33 returns for the same requests.

use api_types::registry::{self, ResourceInfo};
use serde_json::{Value, json};

use super::*;

const NOW: &str = "2026-11-22T08:00:00Z";
const UID: &str = "6f1c2a8e-0000-4000-8000-000000000001";

fn info(group: &str, resource: &str) -> &'static ResourceInfo {
    registry::by_group_version_resource(group, "v1", resource).unwrap()
}

/// The system PriorityClasses, as the Priority admission plugin sees them in a new cluster.
fn system_classes() -> Vec<PriorityClassInfo> {
    SYSTEM_PRIORITY_CLASSES
        .iter()
        .map(|c| {
            let stored = created("scheduling.k8s.io", "priorityclasses", None, c.manifest());
            PriorityClassInfo::from_object(&stored).unwrap()
        })
        .collect()
}

/// A create as the handlers run it: admission (pods' priority), then the strategy.
fn create(group: &str, resource: &str, ns: Option<&str>, obj: Value) -> Result<Value, ApiError> {
    let mut obj = obj;
    if group.is_empty() && resource == "pods" {
        admit_pod_create(&mut obj, &system_classes())?;
    }
    prepare_create(info(group, resource), ns, &mut obj, NOW, UID).map(|()| obj)
}

fn created(group: &str, resource: &str, ns: Option<&str>, obj: Value) -> Value {
    create(group, resource, ns, obj).unwrap_or_else(|e| panic!("{}", e.message))
}

fn update(
    group: &str,
    resource: &str,
    sub: Option<&str>,
    old: &Value,
    new: Value,
) -> Result<Value, ApiError> {
    let mut new = new;
    prepare_update(info(group, resource), sub, old, &mut new).map(|()| new)
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}
            }
        }
    })
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

#[test]
fn a_minimal_deployment_gets_kubernetes_defaults() {
    let got = created("apps", "deployments", Some("demo"), deployment());
    let want = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "demo", "labels": {"app": "web"},
            "uid": UID, "creationTimestamp": NOW, "generation": 1
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                        "resources": {}, "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                    "schedulerName": "default-scheduler", "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            }
        },
        "status": {}
    });
    assert_eq!(got, want);
}

#[test]
fn a_minimal_pod_gets_kubernetes_defaults() {
    let got = created("", "pods", Some("default"), pod());
    let want = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": UID, "creationTimestamp": NOW, "generation": 1},
        "spec": {
            "containers": [{
                "name": "c", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ]
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    });
    assert_eq!(got, want);
}

#[test]
fn pods_get_requests_from_limits_and_their_qos_class() {
    let mut p = pod();
    p["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": 0.5, "memory": "131072Ki"}, "requests": {"memory": 134217728}});
    let got = created("", "pods", Some("default"), p);
    // Quantities come back canonical (a bare number is decimal, as in Go).
    assert_eq!(
        got["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "134217728"}})
    );
    assert_eq!(got["status"]["qosClass"], "Guaranteed");
}

#[test]
fn other_kinds_get_their_defaults() {
    let ns = created(
        "",
        "namespaces",
        None,
        json!({"metadata": {"name": "team", "namespace": "x"}}),
    );
    assert_eq!(
        ns,
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team", "uid": UID, "creationTimestamp": NOW, "labels": {"kubernetes.io/metadata.name": "team"}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        })
    );
    let svc = created(
        "",
        "services",
        Some("default"),
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    );
    assert_eq!(
        svc["spec"],
        json!({
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]
        })
    );
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    assert!(
        svc["metadata"].get("generation").is_none(),
        "services have no generation"
    );
    let secret = created(
        "",
        "secrets",
        Some("default"),
        json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
    );
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"], json!({"k": "dg=="}));
    assert!(secret.get("stringData").is_none());
    let rs = created(
        "apps",
        "replicasets",
        Some("default"),
        json!({"metadata": {"name": "r"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    );
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["status"], json!({"replicas": 0}));
    assert_eq!(rs["metadata"]["generation"], 1);
    let node = created(
        "",
        "nodes",
        None,
        json!({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "4", "pods": "110"}}}),
    );
    assert_eq!(
        node["status"]["allocatable"],
        json!({"cpu": "4", "pods": "110"})
    );
}

#[test]
fn create_checks_type_meta_and_namespace() {
    let err = create(
        "",
        "configmaps",
        Some("default"),
        json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "v"}}),
    )
    .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "the API version in the data (v2) does not match the expected API version (v1)"
        )
    );
    let err = create(
        "",
        "configmaps",
        Some("default"),
        json!({"metadata": {"name": "v", "namespace": "other"}}),
    )
    .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    );
    let cm = created(
        "",
        "configmaps",
        Some("default"),
        json!({"metadata": {"name": "v", "resourceVersion": "12", "deletionTimestamp": NOW}}),
    );
    assert_eq!(cm["apiVersion"], "v1");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(
        cm["metadata"],
        json!({"name": "v", "namespace": "default", "uid": UID, "creationTimestamp": NOW})
    );
}

/// Every validation message, as kube-apiserver words it.
#[test]
fn validation_messages() {
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    let pod_with = |f: &dyn Fn(&mut Value)| {
        let mut p = pod();
        f(&mut p);
        p
    };
    let deploy_with = |f: &dyn Fn(&mut Value)| {
        let mut d = deployment();
        f(&mut d);
        d
    };
    let cases: Vec<(&str, &str, Value, String)> = vec![
        ("", "pods", pod_with(&|p| p["spec"]["containers"] = json!([])), "Pod \"p\" is invalid: spec.containers: Required value".into()),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["containers"] = json!([{"name": "c"}])),
            "Pod \"p\" is invalid: spec.containers[0].image: Required value".into(),
        ),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["containers"] = json!([{"name": "c", "image": "a"}, {"name": "c", "image": "b"}])),
            "Pod \"p\" is invalid: spec.containers[1].name: Duplicate value: \"c\"".into(),
        ),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["containers"][0]["name"] = json!("C")),
            format!("Pod \"p\" is invalid: spec.containers[0].name: Invalid value: \"C\": {LABEL_MSG}"),
        ),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 70000}])),
            "Pod \"p\" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive".into(),
        ),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})),
            "Pod \"p\" is invalid: spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1".into(),
        ),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["containers"][0]["resources"] = json!({"requests": {"memory": "-1Mi"}})),
            "Pod \"p\" is invalid: spec.containers[0].resources.requests[memory]: Invalid value: \"-1Mi\": must be greater than or equal to 0".into(),
        ),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["containers"][0]["resources"] = json!({"requests": {"foo": "1"}})),
            "Pod \"p\" is invalid: spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified".into(),
        ),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["restartPolicy"] = json!("Sometimes")),
            "Pod \"p\" is invalid: spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".into(),
        ),
        (
            "",
            "pods",
            pod_with(&|p| p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}])),
            "Pod \"p\" is invalid: spec.containers[0].volumeMounts[0].name: Not found: \"data\"".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| {
                d["spec"].as_object_mut().unwrap().remove("selector");
            }),
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`]".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| d["spec"]["selector"] = json!({"matchLabels": {}})),
            "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"})),
            "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| d["spec"]["replicas"] = json!(-1)),
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| d["spec"]["revisionHistoryLimit"] = json!(-2)),
            "Deployment.apps \"web\" is invalid: spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})),
            "Deployment.apps \"web\" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is 0".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}})),
            "Deployment.apps \"web\" is invalid: spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never")),
            "Deployment.apps \"web\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".into(),
        ),
        (
            "apps",
            "deployments",
            deploy_with(&|d| d["metadata"]["name"] = json!("Bad_Name")),
            "Deployment.apps \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into(),
        ),
        (
            "",
            "services",
            json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"}}}),
            "Service \"s\" is invalid: spec.ports: Required value".into(),
        ),
        (
            "",
            "services",
            json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 0, "targetPort": 80}]}}),
            "Service \"s\" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive".into(),
        ),
        (
            "",
            "services",
            json!({"metadata": {"name": "s"}, "spec": {"type": "Foo", "ports": [{"port": 80}]}}),
            "Service \"s\" is invalid: spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".into(),
        ),
        (
            "",
            "services",
            json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}, {"port": 81}]}}),
            "Service \"s\" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]".into(),
        ),
        (
            "",
            "configmaps",
            json!({"metadata": {"name": "c"}, "data": {"a b": "x"}}),
            "ConfigMap \"c\" is invalid: data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".into(),
        ),
        (
            "",
            "configmaps",
            json!({"metadata": {"name": "c"}, "data": {"a": "x".repeat(1024 * 1024 + 1)}}),
            "ConfigMap \"c\" is invalid: : Too long: must have at most 1048576 bytes".into(),
        ),
        (
            "",
            "configmaps",
            json!({"metadata": {}}),
            "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required".into(),
        ),
        (
            "",
            "secrets",
            json!({"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
            "Secret \"t\" is invalid: data[tls.key]: Required value".into(),
        ),
        (
            "coordination.k8s.io",
            "leases",
            json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}}),
            "Lease.coordination.k8s.io \"l\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0".into(),
        ),
        (
            "",
            "events",
            json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}}),
            "Event \"e\" is invalid: involvedObject.namespace: Invalid value: \"other\": does not match event.namespace".into(),
        ),
        (
            "events.k8s.io",
            "events",
            json!({"metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}, "type": "Normal"}),
            "Event.events.k8s.io \"e\" is invalid: eventTime: Required value".into(),
        ),
        (
            "",
            "nodes",
            json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}),
            "Node \"n\" is invalid: spec.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".into(),
        ),
        (
            "",
            "endpoints",
            json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}]}]}),
            "Endpoints \"e\" is invalid: subsets[0].addresses[0].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
        ),
        (
            "",
            "namespaces",
            json!({"metadata": {"name": "Team"}}),
            format!("Namespace \"Team\" is invalid: metadata.name: Invalid value: \"Team\": {LABEL_MSG}"),
        ),
    ];
    for (group, resource, obj, want) in cases {
        let err = create(group, resource, Some("default"), obj.clone()).expect_err(&want);
        assert_eq!(err.code, 422, "{want}");
        assert_eq!(err.message, want, "{obj}");
    }
}

#[test]
fn invalid_objects_list_every_cause() {
    let err = create("", "pods", Some("default"), json!({"metadata": {"name": "p", "labels": {"bad key!": "v"}}, "spec": {"containers": [{"name": "c"}], "restartPolicy": "x"}}))
        .unwrap_err();
    let details = err.details.unwrap();
    let fields: Vec<&str> = details.causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "metadata.labels",
            "spec.containers[0].image",
            "spec.restartPolicy"
        ]
    );
    assert_eq!(details.kind, "Pod");
}

#[test]
fn generation_is_bumped_only_by_spec_changes() {
    let old = created(
        "apps",
        "replicasets",
        Some("default"),
        json!({"metadata": {"name": "r"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    );
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"x": "y"});
    relabelled["metadata"]["annotations"] = json!({"note": "n"});
    let got = update("apps", "replicasets", None, &old, relabelled).unwrap();
    assert_eq!(got["metadata"]["generation"], 1);
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(3);
    let got = update("apps", "replicasets", None, &old, scaled).unwrap();
    assert_eq!(got["metadata"]["generation"], 2);
    // A body without the defaults is the same spec once defaulted.
    let bare = json!({"metadata": {"name": "r"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let got = update("apps", "replicasets", None, &old, bare).unwrap();
    assert_eq!(got["metadata"]["generation"], 1);
    assert_eq!(got["metadata"]["uid"], UID);
    assert_eq!(got["metadata"]["creationTimestamp"], NOW);

    // Deployments: labels do not bump it, annotations do (they are copied to replica sets).
    let old = created("apps", "deployments", Some("default"), deployment());
    let mut labelled = old.clone();
    labelled["metadata"]["labels"]["color"] = json!("blue");
    let got = update("apps", "deployments", None, &old, labelled).unwrap();
    assert_eq!(got["metadata"]["generation"], 1);
    let mut annotated = got.clone();
    annotated["metadata"]["annotations"] = json!({"note": "hello"});
    let got = update("apps", "deployments", None, &got, annotated).unwrap();
    assert_eq!(got["metadata"]["generation"], 2);

    // Pods: only the spec counts; status writes never bump it.
    let old = created("", "pods", Some("default"), pod());
    let mut imaged = old.clone();
    imaged["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let got = update("", "pods", None, &old, imaged).unwrap();
    assert_eq!(got["metadata"]["generation"], 2);
    let mut status = got.clone();
    status["status"]["phase"] = json!("Running");
    let after = update("", "pods", Some("status"), &got, status).unwrap();
    assert_eq!(after["metadata"]["generation"], 2);
}

#[test]
fn status_is_ignored_on_the_main_resource_and_only_status_is_taken_on_status() {
    let old = created("apps", "deployments", Some("default"), deployment());
    let mut new = old.clone();
    new["status"] = json!({"replicas": 5});
    new["spec"]["replicas"] = json!(2);
    let got = update("apps", "deployments", None, &old, new.clone()).unwrap();
    assert_eq!(got["status"], json!({}));
    assert_eq!(got["spec"]["replicas"], 2);

    let mut status_write = new.clone();
    status_write["status"] =
        json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 1});
    status_write["metadata"]["labels"] = json!({"changed": "yes"});
    let got = update("apps", "deployments", Some("status"), &old, status_write).unwrap();
    assert_eq!(got["spec"], old["spec"]);
    assert_eq!(got["metadata"]["labels"], old["metadata"]["labels"]);
    assert_eq!(got["status"]["replicas"], 1);
    assert_eq!(got["metadata"]["generation"], 1);

    let mut bad = old.clone();
    bad["status"] = json!({"replicas": 1, "readyReplicas": 2});
    let err = update("apps", "deployments", Some("status"), &old, bad).unwrap_err();
    assert_eq!(
        err.message,
        "Deployment.apps \"web\" is invalid: status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"
    );

    // Namespaces: status writes keep the spec, and the phase must agree with deletion.
    let ns = created(
        "",
        "namespaces",
        None,
        json!({"metadata": {"name": "team"}}),
    );
    let mut w = ns.clone();
    w["spec"]["finalizers"] = json!([]);
    w["status"]["phase"] = json!("Terminating");
    let err = update("", "namespaces", Some("status"), &ns, w).unwrap_err();
    assert_eq!(
        err.message,
        "Namespace \"team\" is invalid: status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
    );
    let mut f = ns.clone();
    f["spec"]["finalizers"] = json!([]);
    let got = update("", "namespaces", Some("finalize"), &ns, f).unwrap();
    assert_eq!(got["spec"]["finalizers"], json!([]));
    let mut main = ns.clone();
    main["spec"]["finalizers"] = json!([]);
    let got = update("", "namespaces", None, &ns, main).unwrap();
    assert_eq!(got["spec"]["finalizers"], json!(["kubernetes"]));
}

#[test]
fn update_keeps_identity_and_refuses_moves() {
    let old = created(
        "",
        "configmaps",
        Some("default"),
        json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
    );
    let got = update("", "configmaps", None, &old, json!({"metadata": {"name": "c", "uid": "", "creationTimestamp": "2000-01-01T00:00:00Z", "generation": 9}, "data": {"a": "2"}})).unwrap();
    assert_eq!(
        got["metadata"],
        json!({"name": "c", "namespace": "default", "uid": UID, "creationTimestamp": NOW})
    );
    let err = update(
        "",
        "configmaps",
        None,
        &old,
        json!({"metadata": {"name": "d"}}),
    )
    .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "the name of the object (d) does not match the name on the URL (c)"
        )
    );
    let err = update(
        "",
        "configmaps",
        None,
        &old,
        json!({"metadata": {"name": "c", "namespace": "x"}}),
    )
    .unwrap_err();
    assert_eq!(err.code, 400);
    let err = update(
        "",
        "configmaps",
        None,
        &old,
        json!({"metadata": {"name": "c", "uid": "other"}}),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "ConfigMap \"c\" is invalid: metadata.uid: Invalid value: \"other\": field is immutable"
    );
    let mut deleting = old.clone();
    deleting["metadata"]["deletionTimestamp"] = json!(NOW);
    let err = update(
        "",
        "configmaps",
        None,
        &deleting,
        json!({"metadata": {"name": "c", "finalizers": ["example.com/x"]}}),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "ConfigMap \"c\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [\"example.com/x\"]"
    );
    let immutable = created(
        "",
        "configmaps",
        Some("default"),
        json!({"metadata": {"name": "i"}, "data": {"a": "1"}, "immutable": true}),
    );
    let err = update(
        "",
        "configmaps",
        None,
        &immutable,
        json!({"metadata": {"name": "i"}, "data": {"a": "2"}, "immutable": true}),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "ConfigMap \"i\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
    );
}

#[test]
fn selectors_are_immutable() {
    let old = created("apps", "deployments", Some("default"), deployment());
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "front"}});
    new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("front");
    let err = update("apps", "deployments", None, &old, new).unwrap_err();
    assert_eq!(
        err.message,
        "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"front\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );
}

#[test]
fn pod_updates_are_limited() {
    let old = created("", "pods", Some("default"), pod());
    let mut new = old.clone();
    new["spec"]["restartPolicy"] = json!("Never");
    let err = update("", "pods", None, &old, new).unwrap_err();
    assert!(
        err.message.starts_with("Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"),
        "{}",
        err.message
    );
    assert!(err.message.contains("restartPolicy"), "{}", err.message);
    let mut more = old.clone();
    more["spec"]["containers"] =
        json!([{"name": "c", "image": "nginx"}, {"name": "d", "image": "nginx"}]);
    let err = update("", "pods", None, &old, more).unwrap_err();
    assert_eq!(
        err.message,
        "Pod \"p\" is invalid: spec.containers: Forbidden: pod updates may not add or remove containers"
    );
    // Labels, an added toleration and a re-sent original manifest are fine.
    let mut ok = old.clone();
    ok["metadata"]["labels"] = json!({"a": "b"});
    ok["spec"]["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "k", "operator": "Exists"}));
    update("", "pods", None, &old, ok).unwrap();
    let mut resent = pod();
    resent["spec"]["serviceAccountName"] = json!("default");
    resent["spec"]["priority"] = json!(0);
    resent["spec"]["preemptionPolicy"] = json!("PreemptLowerPriority");
    let got = update("", "pods", None, &old, resent).unwrap();
    assert_eq!(got["metadata"]["generation"], 1);
    assert_eq!(got["status"], old["status"]);
}

#[test]
fn pods_status_writes_keep_spec_and_owner_references() {
    let mut p = pod();
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u", "controller": true}]);
    let old = created("", "pods", Some("default"), p);
    let mut w = old.clone();
    w["spec"]["nodeName"] = json!("sneaky");
    w["metadata"]["ownerReferences"] = json!([]);
    w["status"] = json!({"phase": "Running"});
    let got = update("", "pods", Some("status"), &old, w).unwrap();
    assert_eq!(got["spec"], old["spec"]);
    assert_eq!(
        got["metadata"]["ownerReferences"],
        old["metadata"]["ownerReferences"]
    );
    assert_eq!(
        got["status"],
        json!({"phase": "Running", "qosClass": "BestEffort"})
    );
}

#[test]
fn services_keep_their_cluster_ip() {
    let mut old = created(
        "",
        "services",
        Some("default"),
        json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
    );
    old["spec"]["clusterIP"] = json!("10.96.0.10");
    old["spec"]["clusterIPs"] = json!(["10.96.0.10"]);
    // A client that leaves the IP out keeps it.
    let got = update(
        "",
        "services",
        None,
        &old,
        json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 8080}]}}),
    )
    .unwrap();
    assert_eq!(got["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(got["spec"]["clusterIPs"], json!(["10.96.0.10"]));
    assert_eq!(got["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(got["status"], json!({"loadBalancer": {}}));
    let err = update("", "services", None, &old, json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 80}]}})).unwrap_err();
    assert_eq!(
        err.message,
        "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: may not change once set"
    );
}

#[test]
fn wrong_types_are_400s_naming_the_field() {
    let mut d = deployment();
    d["spec"]["replicas"] = json!("3");
    let err = decode_typed(info("apps", "deployments"), &mut d).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
}

#[test]
fn scale() {
    let mut d = created("apps", "deployments", Some("demo"), deployment());
    d["metadata"]["resourceVersion"] = json!("42");
    d["status"] = json!({"replicas": 1});
    let s = to_scale(info("apps", "deployments"), &d);
    assert_eq!(
        s,
        json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": "web", "namespace": "demo", "uid": UID, "resourceVersion": "42", "creationTimestamp": NOW},
            "spec": {"replicas": 1},
            "status": {"replicas": 1, "selector": "app=web"}
        })
    );
    let mut next = d.clone();
    apply_scale(
        &mut next,
        &json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}}),
    )
    .unwrap();
    assert_eq!(next["spec"]["replicas"], 5);
    let got = update("apps", "deployments", None, &d, next).unwrap();
    assert_eq!(got["metadata"]["generation"], 2);
    apply_scale(&mut d.clone(), &json!({"spec": {}})).unwrap();
    let err = apply_scale(&mut d.clone(), &json!({"spec": {"replicas": -1}})).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            422,
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        )
    );
    let err = apply_scale(&mut d.clone(), &json!({"spec": {"replicas": "x"}})).unwrap_err();
    assert_eq!(
        err.message,
        "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32"
    );
    let err = apply_scale(
        &mut d.clone(),
        &json!({"metadata": {"name": "other"}, "spec": {"replicas": 1}}),
    )
    .unwrap_err();
    assert_eq!(err.code, 400);
    let err = apply_scale(
        &mut d.clone(),
        &json!({"metadata": {"uid": "x"}, "spec": {"replicas": 1}}),
    )
    .unwrap_err();
    assert_eq!(err.code, 409);
}

#[test]
fn helpers() {
    assert_eq!(generate_name("web-", "abcde"), "web-abcde");
    let long = "a".repeat(70);
    assert_eq!(generate_name(&long, "abcde").len(), 63);
    assert_eq!(generate_name(&"é".repeat(40), "abcde").len(), 58 + 5);
    assert!(has_status_subresource(info("apps", "deployments")));
    assert!(!has_status_subresource(info("", "configmaps")));
}

#[test]
fn priority_admission() {
    let mut p = pod();
    p["spec"]["priority"] = json!(5);
    let err = create("", "pods", Some("default"), p).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            403,
            "pods \"p\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"
        )
    );
    let mut p = pod();
    p["spec"]["priorityClassName"] = json!("system-node-critical");
    assert_eq!(
        created("", "pods", Some("default"), p)["spec"]["priority"],
        2_000_001_000
    );
    let mut p = pod();
    p["spec"]["priorityClassName"] = json!("gold");
    let err = create("", "pods", Some("default"), p).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            403,
            "pods \"p\" is forbidden: no PriorityClass with name gold was found"
        )
    );
    // Updates that leave priority and preemption policy out keep the admitted ones.
    let mut p = pod();
    p["spec"]["priorityClassName"] = json!("system-cluster-critical");
    let old = created("", "pods", Some("default"), p);
    let mut resent = old.clone();
    let spec = resent["spec"].as_object_mut().unwrap();
    spec.remove("priority");
    spec.remove("preemptionPolicy");
    let got = update("", "pods", None, &old, resent).unwrap();
    assert_eq!(got["spec"]["priority"], 2_000_000_000);
    assert_eq!(got["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    let mut changed = old.clone();
    changed["spec"]["priority"] = json!(1);
    let err = update("", "pods", None, &old, changed).unwrap_err();
    assert!(
        err.message
            .contains("pod updates may not change fields other than"),
        "{}",
        err.message
    );
}

fn priority_class(name: &str, value: i64) -> Value {
    json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value})
}

#[test]
fn priority_classes_get_kubernetes_defaults() {
    let got = created("scheduling.k8s.io", "priorityclasses", None, {
        let mut pc = priority_class("high", 1000);
        pc["globalDefault"] = json!(false);
        pc["description"] = json!("");
        pc["metadata"]["namespace"] = json!("ignored");
        pc
    });
    assert_eq!(
        got,
        json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "high", "uid": UID, "creationTimestamp": NOW, "generation": 1},
            "value": 1000,
            "preemptionPolicy": "PreemptLowerPriority"
        })
    );
    // A class without a value is one of value 0, as Go decodes it.
    let got = created(
        "scheduling.k8s.io",
        "priorityclasses",
        None,
        json!({"metadata": {"name": "zero"}, "preemptionPolicy": "Never", "globalDefault": true}),
    );
    assert_eq!(
        (
            &got["value"],
            &got["preemptionPolicy"],
            &got["globalDefault"]
        ),
        (&json!(0), &json!("Never"), &json!(true))
    );
    // Updates keep the generation.
    let mut next = got.clone();
    next["description"] = json!("changed");
    let next = update("scheduling.k8s.io", "priorityclasses", None, &got, next).unwrap();
    assert_eq!(next["metadata"]["generation"], 1);
}

/// `ValidatePriorityClass` and `ValidatePriorityClassUpdate`, with kube-apiserver's messages.
#[test]
fn priority_class_validation() {
    let invalid = |name: &str, rest: &str| {
        format!("PriorityClass.scheduling.k8s.io \"{name}\" is invalid: {rest}")
    };
    let reserved = "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: ";
    let cases: Vec<(Value, Option<String>)> = vec![
        (priority_class("max", 1_000_000_000), None),
        (priority_class("negative", -2_147_483_648), None),
        (
            priority_class("huge", 1_000_000_001),
            Some(invalid(
                "huge",
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
            )),
        ),
        (
            priority_class("system-mine", 10),
            Some(invalid(
                "system-mine",
                &format!("{reserved}system-mine is not a known system priority class"),
            )),
        ),
        (
            priority_class("system-node-critical", 10),
            Some(invalid(
                "system-node-critical",
                &format!(
                    "{reserved}value of system-node-critical PriorityClass must be 2000001000"
                ),
            )),
        ),
        (
            {
                let mut pc = priority_class("system-cluster-critical", 2_000_000_000);
                pc["globalDefault"] = json!(true);
                pc
            },
            Some(invalid(
                "system-cluster-critical",
                &format!(
                    "{reserved}globalDefault of system-cluster-critical PriorityClass must be false"
                ),
            )),
        ),
        // The system classes themselves (created at start) are valid.
        (
            priority_class("system-cluster-critical", 2_000_000_000),
            None,
        ),
        (
            {
                let mut pc = priority_class("p", 1);
                pc["preemptionPolicy"] = json!("Sometimes");
                pc
            },
            Some(invalid(
                "p",
                "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\"",
            )),
        ),
        (
            {
                let mut pc = priority_class("p", 1);
                pc["preemptionPolicy"] = json!("");
                pc
            },
            Some(invalid("p", "preemptionPolicy: Required value")),
        ),
        (
            priority_class("Upper", 1),
            Some(invalid(
                "Upper",
                "metadata.name: Invalid value: \"Upper\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )),
        ),
    ];
    for (obj, want) in cases {
        let got = create("scheduling.k8s.io", "priorityclasses", None, obj.clone());
        match want {
            None => {
                got.unwrap_or_else(|e| panic!("{obj}: {}", e.message));
            }
            Some(message) => {
                let err = got.unwrap_err();
                assert_eq!((err.code, err.message), (422, message), "{obj}");
            }
        }
    }

    let old = created(
        "scheduling.k8s.io",
        "priorityclasses",
        None,
        priority_class("p", 10),
    );
    let updated = |change: &dyn Fn(&mut Value)| {
        let mut next = old.clone();
        change(&mut next);
        update("scheduling.k8s.io", "priorityclasses", None, &old, next)
    };
    let err = updated(&|pc| pc["value"] = json!(11)).unwrap_err();
    assert_eq!(
        err.message,
        invalid("p", "value: Forbidden: may not be changed in an update.")
    );
    let err = updated(&|pc| pc["preemptionPolicy"] = json!("Never")).unwrap_err();
    assert_eq!(
        err.message,
        invalid(
            "p",
            "preemptionPolicy: Invalid value: \"Never\": field is immutable"
        )
    );
    // Left out, the policy defaults to what it was: no change.
    updated(&|pc| {
        pc.as_object_mut().unwrap().remove("preemptionPolicy");
    })
    .unwrap();
    let got = updated(&|pc| {
        pc["description"] = json!("d");
        pc["globalDefault"] = json!(true);
    })
    .unwrap();
    assert_eq!(
        (&got["description"], &got["globalDefault"]),
        (&json!("d"), &json!(true))
    );
}

/// Nothing panics on malformed input, whatever the shape.
#[test]
fn malformed_input_never_panics() {
    let junk_values = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!([1, "a", null, {}]),
        json!({}),
        json!({"a": {"b": [null]}}),
    ];
    let keys = [
        "metadata",
        "spec",
        "status",
        "data",
        "stringData",
        "subsets",
        "involvedObject",
        "regarding",
        "type",
        "immutable",
    ];
    let inner = [
        "name",
        "namespace",
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "containers",
        "initContainers",
        "selector",
        "template",
        "replicas",
        "strategy",
        "ports",
        "volumes",
        "tolerations",
        "clusterIP",
        "clusterIPs",
        "taints",
        "podCIDRs",
        "capacity",
        "resources",
        "generation",
        "deletionTimestamp",
        "uid",
        "series",
    ];
    let mut objects: Vec<Value> = Vec::new();
    for key in keys {
        for junk in &junk_values {
            objects.push(json!({key: junk}));
        }
        for k2 in inner {
            objects.push(json!({key: {k2: junk_values[2]}}));
            objects.push(json!({"metadata": {"name": "x"}, key: {k2: [junk_values[1], {k2: junk_values[4]}, junk_values[6]]}}));
        }
    }
    objects.push(json!({"spec": {"template": {"spec": {"containers": [{"resources": {"limits": {"cpu": [1]}, "requests": "x"}, "ports": [{"containerPort": "x"}], "env": [1], "volumeMounts": "m"}]}}}}));
    objects.push(json!({"spec": {"containers": [{"livenessProbe": {"httpGet": 1}, "lifecycle": {"preStop": []}}], "volumes": [{"name": 1, "projected": {"sources": [1]}}]}}));
    objects.push(json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": [], "maxUnavailable": {}}}, "selector": {"matchExpressions": [1, {"values": "x"}]}}}));
    for resource in registry::all() {
        for obj in &objects {
            let _ = decode_typed(resource, &mut obj.clone());
            let mut created = obj.clone();
            let _ = prepare_create(resource, Some("default"), &mut created, NOW, UID);
            for sub in [None, Some("status"), Some("finalize"), Some("scale")] {
                let mut a = obj.clone();
                let _ = prepare_update(resource, sub, &created, &mut a);
                let mut b = created.clone();
                let _ = prepare_update(resource, sub, obj, &mut b);
            }
            let _ = to_scale(resource, obj);
            let mut target = obj.clone();
            let _ = apply_scale(&mut target, obj);
            let _ = apply_scale(&mut created.clone(), obj);
            let _ = graceful_pod_deletion(obj, Some(-3));
        }
    }
}
