//! Server-side apply with real kubectl (`kubectl apply --server-side`), and field ownership
//! (`metadata.managedFields`) recorded for every write.

use serde_json::{Value, json};
use tests::apiserver::{Backend, TestApiServer};

const V1: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS, labels: {app: web, tier: front}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
      - name: sidecar
        image: busybox:1.36
"#;

/// The tier label, env B and the sidecar are no longer applied: they go.
const V2: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS, labels: {app: web}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        env: [{name: A, value: "1"}]
"#;

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap_or_else(|| panic!("managedFields in {obj}"))
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().to_owned(),
                e["operation"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn server_side_apply(server: &TestApiServer, version: &str) {
    let ns = format!("ssa-{}", version.replace('.', "-"));
    let v1 = server.write_manifest(&format!("v1-{ns}.yaml"), V1, &ns);
    let v2 = server.write_manifest(&format!("v2-{ns}.yaml"), V2, &ns);
    let out = server.kubectl_ok(version, &["apply", "--server-side", "-f", &v1]);
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let get = |what: &str| -> Value {
        let out = server.kubectl_ok(
            version,
            &[
                "get",
                what,
                "-n",
                &ns,
                "-o",
                "json",
                "--show-managed-fields",
            ],
        );
        serde_json::from_str(&out).expect("kubectl get -o json")
    };
    let d = get("deployment/web");
    assert_eq!(managers(&d), [("kubectl".into(), "Apply".into())]);
    let fields = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["."]
            .is_object(),
        "{fields}"
    );
    // Without --show-managed-fields kubectl hides them, as on Kubernetes.
    let plain = server.kubectl_ok(version, &["get", "deployment/web", "-n", &ns, "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");

    // Applying the changed manifest removes what it no longer applies.
    let out = server.kubectl_ok(version, &["apply", "--server-side", "-f", &v2]);
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let d = get("deployment/web");
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(d["metadata"]["labels"].get("tier").is_none(), "{d}");
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "the sidecar is gone: {d}");
    assert_eq!(containers[0]["image"], "nginx:1.27");
    assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(
        containers[0]["imagePullPolicy"], "IfNotPresent",
        "defaults stay"
    );

    // Another manager changes replicas: applying a different value is a conflict.
    server.kubectl_ok(
        version,
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ],
    );
    let d = get("deployment/web");
    assert!(
        managers(&d).contains(&("kubectl-patch".into(), "Update".into())),
        "{:?}",
        managers(&d)
    );
    let out = server.kubectl(version, &["apply", "--server-side", "-f", &v2]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a conflict fails the apply");
    assert!(
        stderr.contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas"#
        ),
        "{stderr}"
    );
    assert_eq!(
        get("deployment/web")["spec"]["replicas"],
        5,
        "nothing written"
    );
    // --force-conflicts takes the field over.
    server.kubectl_ok(
        version,
        &["apply", "--server-side", "--force-conflicts", "-f", &v2],
    );
    let d = get("deployment/web");
    assert_eq!(d["spec"]["replicas"], 3);
    let patcher = d["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|e| e["manager"] == "kubectl-patch");
    assert!(
        patcher.is_none_or(|e| e["fieldsV1"]["f:spec"].get("f:replicas").is_none()),
        "{d}"
    );

    // Client-side apply first, then server-side apply of the same object (kubectl migrates
    // the client-side manager's fields with a JSON patch of managedFields).
    let cm = server.write_manifest(&format!("cm-{ns}.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: NS}\ndata: {a: \"1\", b: \"2\"}\n",
        &ns,
    );
    server.kubectl_ok(version, &["apply", "-f", &cm]);
    let c = get("configmap/settings");
    assert!(
        managers(&c).contains(&("kubectl-client-side-apply".into(), "Update".into())),
        "{:?}",
        managers(&c)
    );
    let cm2 = server.write_manifest(&format!("cm2-{ns}.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: NS}\ndata: {a: \"9\"}\n",
        &ns,
    );
    server.kubectl_ok(version, &["apply", "--server-side", "-f", &cm2]);
    let c = get("configmap/settings");
    // A changed value the client-side manager set: no conflict for `kubectl` taking over, as
    // on Kubernetes; b, no longer applied, goes; the annotation follows the new configuration.
    assert_eq!(c["data"], json!({"a": "9"}), "{c}");
    let last = c["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_default();
    assert!(last.contains(r#""a":"9""#), "{last}");
}

#[test]
fn kubectl_1_33_server_side_apply() {
    let server = TestApiServer::start(Backend::Embedded);
    server_side_apply(&server, "1.33");
}

#[test]
fn kubectl_1_30_server_side_apply() {
    let server = TestApiServer::start(Backend::Embedded);
    server_side_apply(&server, "1.30");
}

#[test]
fn kubectl_1_27_server_side_apply() {
    let server = TestApiServer::start(Backend::Embedded);
    server_side_apply(&server, "1.27");
}

#[test]
fn apply_patches_over_http() {
    let server = TestApiServer::start(Backend::Embedded);
    let token = Some(tests::apiserver::TOKEN);
    let apply = Some("application/apply-patch+yaml");
    let path = "/api/v1/namespaces/default/configmaps/c";
    let body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1'}\n";

    let missing = server.raw("PATCH", path, apply, Some(body), token);
    assert_eq!(missing.code, 422, "{}", missing.body);
    assert!(
        missing.body.contains("fieldManager: Required value"),
        "{}",
        missing.body
    );

    let created = server.raw(
        "PATCH",
        &format!("{path}?fieldManager=me"),
        apply,
        Some(body),
        token,
    );
    assert_eq!(created.code, 201, "{}", created.body);
    let created = created.json();
    assert_eq!(created["data"]["a"], "1");
    assert_eq!(created["metadata"]["managedFields"][0]["manager"], "me");
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );

    let again = server.raw(
        "PATCH",
        &format!("{path}?fieldManager=me"),
        apply,
        Some(body),
        token,
    );
    assert_eq!(again.code, 200, "{}", again.body);

    // JSON is YAML too.
    let json_body =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"b":"2"}}"#;
    let other = server.raw(
        "PATCH",
        &format!("{path}?fieldManager=you"),
        apply,
        Some(json_body),
        token,
    );
    assert_eq!(other.code, 200, "{}", other.body);
    assert_eq!(other.json()["data"], json!({"a": "1", "b": "2"}));

    // Conflict with every cause named.
    let clash = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 'x', b: 'y'}\n";
    let conflict = server.raw(
        "PATCH",
        &format!("{path}?fieldManager=third"),
        apply,
        Some(clash),
        token,
    );
    assert_eq!(conflict.code, 409, "{}", conflict.body);
    let status = conflict.json();
    assert_eq!(status["reason"], "Conflict");
    let causes = status["details"]["causes"].as_array().expect("causes");
    assert_eq!(causes.len(), 2, "{status}");
    assert_eq!(
        status["message"],
        "Apply failed with 2 conflicts: conflicts with \"me\":\n- .data.a\nconflicts with \"you\":\n- .data.b"
    );

    // Bad applied configurations.
    for (body, code) in [
        (
            &b"apiVersion: v1\nkind: Secret\nmetadata: {name: c}\n"[..],
            400,
        ),
        (b"kind: ConfigMap\nmetadata: {name: c}\n", 400),
        (
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
            400,
        ),
        (
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: [1\n",
            400,
        ),
        (
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndatum: {a: b}\n",
            400,
        ),
    ] {
        let r = server.raw(
            "PATCH",
            &format!("{path}?fieldManager=me"),
            apply,
            Some(body),
            token,
        );
        assert_eq!(
            r.code,
            code,
            "{}: {}",
            String::from_utf8_lossy(body),
            r.body
        );
    }

    // Every write records its manager: a PUT by a named manager, a merge patch by user agent.
    let put = server.raw(
        "PUT",
        &format!("{path}?fieldManager=editor"),
        Some("application/json"),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1","b":"2","c":"3"}}"#),
        token,
    );
    assert_eq!(put.code, 200, "{}", put.body);
    let entries = put.json()["metadata"]["managedFields"].clone();
    let editor = entries
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["manager"] == "editor")
        .unwrap_or_else(|| panic!("{entries}"))
        .clone();
    assert_eq!(editor["operation"], "Update");
    assert_eq!(editor["fieldsV1"], json!({"f:data": {"f:c": {}}}));
    let long = "x".repeat(129);
    let r = server.raw(
        "PUT",
        &format!("{path}?fieldManager={long}"),
        Some("application/json"),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#),
        token,
    );
    assert_eq!(r.code, 422, "{}", r.body);
}
