//! Strategic merge patch with real kubectl: client-side `kubectl apply` of a changed manifest
//! (kubectl computes a three-way strategic merge patch with `$setElementOrder`, `$retainKeys` and
//! `$patch: delete`), `kubectl set image`, `kubectl patch --type=strategic`, `kubectl rollout
//! restart` and `kubectl label` — each must change what it says and keep what the server added.

use serde_json::Value;
use tests::apiserver::{Backend, TestApiServer};

const V1: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 2}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: NS}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}, {name: https, port: 443}]
"#;

/// Image changed, env B dropped and C added, a port added, the sidecar gone, a new container
/// first, strategy switched to Recreate (so `rollingUpdate` must go: `$retainKeys`), a label
/// added, one service port dropped.
const V2: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS, labels: {app: web, tier: front}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy:
    type: Recreate
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: logger
        image: fluent-bit:3
      - name: nginx
        image: nginx:1.27
        env: [{name: A, value: "1"}, {name: C, value: "3"}]
        ports: [{containerPort: 80}, {containerPort: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: NS}
spec:
  selector: {app: web}
  ports: [{name: https, port: 443}]
"#;

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|item| match &item[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn second_apply_changes_what_the_manifest_changed(server: &TestApiServer, version: &str) {
    let ns = format!("smp-{}", version.replace('.', "-"));
    let v1 = server.write_manifest(&format!("v1-{ns}.yaml"), V1, &ns);
    let v2 = server.write_manifest(&format!("v2-{ns}.yaml"), V2, &ns);
    let out = server.kubectl_ok(version, &["apply", "-f", &v1]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let first = server.kubectl_get(version, "deployment/web", &ns);
    let uid = first["metadata"]["uid"].clone();

    let out = server.kubectl_ok(version, &["apply", "-f", &v2]);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert!(out.contains("service/web configured"), "{out}");
    let d = server.kubectl_get(version, "deployment/web", &ns);
    assert_eq!(d["metadata"]["uid"], uid, "patched in place");
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["strategy"],
        serde_json::json!({"type": "Recreate"}),
        "$retainKeys dropped rollingUpdate"
    );
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(
        names(&pod["containers"], "name"),
        ["logger", "nginx"],
        "sidecar deleted, logger first ($setElementOrder)"
    );
    let nginx = &pod["containers"][1];
    assert_eq!(nginx["image"], "nginx:1.27");
    assert_eq!(names(&nginx["env"], "name"), ["A", "C"]);
    assert_eq!(names(&nginx["ports"], "containerPort"), ["80", "443"]);
    assert_eq!(
        nginx["imagePullPolicy"], "IfNotPresent",
        "server defaults survive the patch"
    );
    assert_eq!(nginx["ports"][0]["protocol"], "TCP");
    let applied: Value = serde_json::from_str(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("last-applied-configuration"),
    )
    .expect("last-applied is JSON");
    assert_eq!(applied["spec"]["replicas"], 3, "last-applied round-trips");
    let svc = server.kubectl_get(version, "service/web", &ns);
    assert_eq!(names(&svc["spec"]["ports"], "name"), ["https"]);
    assert!(svc["spec"]["clusterIP"].is_string(), "allocated IP kept");

    // The same manifest again changes nothing.
    let out = server.kubectl_ok(version, &["apply", "-f", &v2]);
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");

    // Imperative commands that send strategic merge patches.
    server.kubectl_ok(
        version,
        &[
            "set",
            "image",
            "deployment/web",
            "nginx=nginx:1.28",
            "-n",
            &ns,
        ],
    );
    server.kubectl_ok(version,
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            &ns,
            "--type=strategic",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"logger","$patch":"delete"},{"name":"nginx","env":[{"name":"D","value":"4"}]}]}}}}"#,
        ],
    );
    server.kubectl_ok(
        version,
        &["rollout", "restart", "deployment/web", "-n", &ns],
    );
    server.kubectl_ok(version, &["label", "deployment/web", "-n", &ns, "tier-"]);
    let d = server.kubectl_get(version, "deployment/web", &ns);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(names(&pod["containers"], "name"), ["nginx"]);
    assert_eq!(pod["containers"][0]["image"], "nginx:1.28");
    // A raw patch without `$setElementOrder`: the new element goes first, as in Kubernetes.
    assert_eq!(names(&pod["containers"][0]["env"], "name"), ["D", "A", "C"]);
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{d}"
    );
    assert!(d["metadata"]["labels"].get("tier").is_none(), "{d}");
    assert!(d["metadata"]["generation"].as_i64() >= Some(5), "{d}");
}

#[test]
fn kubectl_1_33_second_apply_is_a_strategic_merge() {
    let server = TestApiServer::start(Backend::Embedded);
    second_apply_changes_what_the_manifest_changed(&server, "1.33");
}

#[test]
fn kubectl_1_30_second_apply_is_a_strategic_merge() {
    let server = TestApiServer::start(Backend::Embedded);
    second_apply_changes_what_the_manifest_changed(&server, "1.30");
}

/// kubectl 1.27 takes the patch strategies from `/openapi/v2`.
#[test]
fn kubectl_1_27_second_apply_is_a_strategic_merge() {
    let server = TestApiServer::start(Backend::Embedded);
    second_apply_changes_what_the_manifest_changed(&server, "1.27");
}

#[test]
fn strategic_merge_patch_over_http_is_atomic_and_typed() {
    let server = TestApiServer::start(Backend::Embedded);
    let token = Some(tests::apiserver::TOKEN);
    let smp = Some("application/strategic-merge-patch+json");
    let base = "/api/v1/namespaces/default/pods";
    let pod = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","finalizers":["a/b"]},
        "spec":{"containers":[{"name":"c","image":"x","volumeMounts":[{"name":"v","mountPath":"/v"}]}],
        "volumes":[{"name":"v","emptyDir":{}}]}}"#;
    let patch = |path: &str, body: &[u8]| server.raw("PATCH", path, smp, Some(body), token);
    let created = server.raw("POST", base, Some("application/json"), Some(pod), token);
    assert_eq!(created.code, 201, "{}", created.body);

    // A volume switched from emptyDir to configMap with $retainKeys (what kubectl sends).
    let patched = patch(&format!("{base}/p"), br#"{"metadata":{"finalizers":["c/d"]},
                 "spec":{"volumes":[{"name":"v","$retainKeys":["configMap","name"],"configMap":{"name":"cm"}}]}}"#);
    // Pod volumes cannot change after creation: Kubernetes' validation says so (422), and
    // nothing is written.
    assert_eq!(patched.code, 422, "{}", patched.body);
    let stored = server
        .raw("GET", &format!("{base}/p"), None, None, token)
        .json();
    assert!(
        stored["spec"]["volumes"][0]["emptyDir"].is_object(),
        "{stored}"
    );

    // Finalizers merge as a set; $deleteFromPrimitiveList removes one.
    let patched = patch(
        &format!("{base}/p"),
        br#"{"metadata":{"finalizers":["c/d"]}}"#,
    );
    assert_eq!(patched.code, 200, "{}", patched.body);
    assert_eq!(
        patched.json()["metadata"]["finalizers"],
        serde_json::json!(["c/d", "a/b"])
    );
    let patched = patch(
        &format!("{base}/p"),
        br#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a/b","c/d"]}}"#,
    );
    assert_eq!(patched.code, 200, "{}", patched.body);
    assert!(
        patched.json()["metadata"].get("finalizers").is_none()
            || patched.json()["metadata"]["finalizers"] == serde_json::json!([])
    );

    // Status conditions merge by type through the status subresource.
    let status = patch(
        &format!("{base}/p/status"),
        br#"{"status":{"conditions":[{"type":"PodScheduled","status":"True"}]}}"#,
    );
    assert_eq!(status.code, 200, "{}", status.body);
    let status = patch(
        &format!("{base}/p/status"),
        br#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    );
    assert_eq!(status.code, 200, "{}", status.body);
    assert_eq!(
        names(&status.json()["status"]["conditions"], "type"),
        ["Ready", "PodScheduled"]
    );

    // Unknown fields in a strategic patch follow fieldValidation.
    let strict = patch(
        &format!("{base}/p?fieldValidation=Strict"),
        br#"{"spec":{"containers":[{"name":"c","imagee":"y"}]}}"#,
    );
    assert_eq!(strict.code, 400, "{}", strict.body);
    assert!(
        strict
            .body
            .contains(r#"unknown field \"spec.containers[0].imagee\""#),
        "{}",
        strict.body
    );
}
