//! OpenAPI v3 and server-side field validation, with real kubectl at its default
//! `--validate=strict`: kubectl finds each kind's PATCH operation with a `fieldValidation`
//! parameter in `/openapi/v3/<group-version>`, sends `fieldValidation=Strict`, and the server
//! rejects unknown fields in Kubernetes' words; `kubectl explain` reads the schemas.

use tests::apiserver::{Backend, TestApiServer};

const MANIFEST: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS}
data: {a: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: NS}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"#;

const UNKNOWN_FIELD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: typo, namespace: NS}
spec:
  replicass: 2
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec:
      containers: [{name: c, image: nginx, imagePullPolicyy: Always}]
"#;

fn output(out: &std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kubectl_with_default_validation(server: &TestApiServer, version: &str) {
    let ns = format!("v{}", version.replace('.', "-"));
    let manifest = server.write_manifest(&format!("m-{ns}.yaml"), MANIFEST, &ns);
    let (ok, stdout, stderr) = output(&server.kubectl(version, &["apply", "-f", &manifest]));
    assert!(ok, "kubectl {version} apply: {stdout}{stderr}");
    for line in [
        format!("namespace/{ns} created"),
        "configmap/settings created".into(),
        "deployment.apps/web created".into(),
        "service/web created".into(),
    ] {
        assert!(
            stdout.contains(&line),
            "kubectl {version}: {line} in {stdout}"
        );
    }

    // An unknown field: rejected as Kubernetes rejects it, nothing written.
    let typo = server.write_manifest(&format!("typo-{ns}.yaml"), UNKNOWN_FIELD, &ns);
    let (ok, _, stderr) = output(&server.kubectl(version, &["apply", "-f", &typo]));
    assert!(!ok, "kubectl {version}: an unknown field is rejected");
    assert!(
        stderr.contains(&format!(
            r#"Error from server (BadRequest): error when creating "{typo}": Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicass", unknown field "spec.template.spec.containers[0].imagePullPolicyy""#
        )),
        "kubectl {version}: {stderr}"
    );
    let (ok, _, stderr) =
        output(&server.kubectl(version, &["get", "deployment", "typo", "-n", &ns]));
    assert!(!ok && stderr.contains("not found"), "{stderr}");

    // --validate=warn: created without the unknown fields, each reported.
    let (ok, stdout, stderr) =
        output(&server.kubectl(version, &["apply", "-f", &typo, "--validate=warn"]));
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stderr.contains(r#"Warning: unknown field "spec.replicass""#),
        "{stderr}"
    );
    let (_, spec, _) = output(&server.kubectl(
        version,
        &[
            "get",
            "deployment",
            "typo",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec}",
        ],
    ));
    assert!(
        !spec.contains("replicass") && !spec.contains("imagePullPolicyy"),
        "{spec}"
    );

    // explain reads the schemas.
    let (ok, stdout, stderr) =
        output(&server.kubectl(version, &["explain", "deployment.spec.strategy"]));
    assert!(ok, "kubectl {version} explain: {stderr}");
    for text in [
        "DeploymentStrategy",
        "rollingUpdate",
        "\"Recreate\" or \"RollingUpdate\"",
    ] {
        assert!(
            stdout.contains(text),
            "kubectl {version} explain: {text} in {stdout}"
        );
    }
}

#[test]
fn kubectl_1_33_applies_with_strict_validation() {
    let server = TestApiServer::start(Backend::Embedded);
    kubectl_with_default_validation(&server, "1.33");
}

/// kubectl 1.27 and 1.28 fetch `/openapi/v2` (gnostic protobuf) before anything else.
#[test]
fn kubectl_1_27_applies_with_strict_validation() {
    let server = TestApiServer::start(Backend::Embedded);
    kubectl_with_default_validation(&server, "1.27");
}

#[test]
fn kubectl_1_28_applies_with_strict_validation() {
    let server = TestApiServer::start(Backend::Embedded);
    kubectl_with_default_validation(&server, "1.28");
}

#[test]
fn kubectl_1_30_applies_with_strict_validation() {
    let server = TestApiServer::start(Backend::Embedded);
    kubectl_with_default_validation(&server, "1.30");
}

#[test]
fn openapi_documents_and_field_validation_over_http() {
    let server = TestApiServer::start(Backend::Embedded);
    let token = Some(tests::apiserver::TOKEN);
    let index = server.raw("GET", "/openapi/v3", None, None, token);
    assert_eq!(index.code, 200, "{}", index.body);
    let index = index.json();
    for gv in [
        "api/v1",
        "apis/apps/v1",
        "apis/coordination.k8s.io/v1",
        "apis/events.k8s.io/v1",
    ] {
        let url = index["paths"][gv]["serverRelativeURL"]
            .as_str()
            .unwrap_or_else(|| panic!("{gv} in the index: {index}"));
        let doc = server.raw("GET", url, None, None, token);
        assert_eq!(doc.code, 200, "{url}");
        assert!(
            doc.headers
                .to_ascii_lowercase()
                .contains("cache-control: public, immutable")
        );
        assert_eq!(doc.json()["openapi"], "3.0.0");
    }
    // OpenAPI v2: gnostic protobuf for those who ask (kubectl 1.27/1.28), JSON otherwise.
    let v2 = server.raw("GET", "/openapi/v2", None, None, token);
    assert_eq!(v2.code, 200);
    let v2 = v2.json();
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    assert_eq!(server.raw("GET", "/openapi/v2", None, None, None).code, 401);
    // A stale hash is redirected to the current document.
    let stale = server.raw(
        "GET",
        "/openapi/v3/apis/apps/v1?hash=0123",
        None,
        None,
        token,
    );
    assert_eq!(stale.code, 301);
    assert!(
        stale.headers.contains("/openapi/v3/apis/apps/v1?hash="),
        "{}",
        stale.headers
    );
    assert_eq!(
        server
            .raw("GET", "/openapi/v3/apis/nope/v1", None, None, token)
            .code,
        404
    );
    assert_eq!(server.raw("GET", "/openapi/v3", None, None, None).code, 401);

    // Strict on create, update and patch; nothing written when rejected.
    let base = "/api/v1/namespaces/default/configmaps";
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1"},"extra":true}"#;
    let strict = server.raw(
        "POST",
        &format!("{base}?fieldValidation=Strict"),
        Some("application/json"),
        Some(body),
        token,
    );
    assert_eq!(strict.code, 400, "{}", strict.body);
    assert_eq!(
        strict.json()["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra""#
    );
    assert_eq!(
        server
            .raw("GET", &format!("{base}/c"), None, None, token)
            .code,
        404
    );
    // Duplicate fields: named with their path, the last value kept when allowed.
    let twice = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","name":"d"},"data":{"a":"1","a":"2"},"extra":1}"#;
    let strict = server.raw(
        "POST",
        &format!("{base}?fieldValidation=Strict"),
        Some("application/json"),
        Some(twice),
        token,
    );
    assert_eq!(strict.code, 400, "{}", strict.body);
    assert_eq!(
        strict.json()["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name", duplicate field "data.a", unknown field "extra""#
    );
    let warned = server.raw("POST", base, Some("application/json"), Some(twice), token);
    assert_eq!(warned.code, 201, "{}", warned.body);
    let duplicate_warning = r#"299 - "duplicate field \"data.a\"""#;
    assert!(
        warned.headers.contains(duplicate_warning),
        "{}",
        warned.headers
    );
    assert_eq!(warned.json()["data"]["a"], "2");
    let warned = server.raw("POST", base, Some("application/json"), Some(body), token);
    assert_eq!(warned.code, 201, "{}", warned.body);
    assert!(
        warned
            .headers
            .to_ascii_lowercase()
            .contains(r#"warning: 299 - "unknown field \"extra\"""#),
        "{}",
        warned.headers
    );
    assert!(
        warned.json().get("extra").is_none(),
        "unknown fields are not stored"
    );
    let patch = server.raw(
        "PATCH",
        &format!("{base}/c?fieldValidation=Strict"),
        Some("application/merge-patch+json"),
        Some(br#"{"data":{"a":"2"},"metadata":{"labelz":{"x":"y"}}}"#),
        token,
    );
    assert_eq!(patch.code, 400, "{}", patch.body);
    assert!(
        patch.body.contains(r#"unknown field \"metadata.labelz\""#),
        "{}",
        patch.body
    );
    let stored = server
        .raw("GET", &format!("{base}/c"), None, None, token)
        .json();
    assert_eq!(stored["data"]["a"], "1", "the rejected patch wrote nothing");
    let ignored = server.raw(
        "PUT",
        &format!("{base}/c?fieldValidation=Ignore"),
        Some("application/json"),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"3"},"extra":1}"#),
        token,
    );
    assert_eq!(ignored.code, 200, "{}", ignored.body);
    assert!(
        !ignored.headers.to_ascii_lowercase().contains("warning:"),
        "{}",
        ignored.headers
    );
    assert_eq!(ignored.json()["data"]["a"], "3");

    // An unsupported directive is refused as kube-apiserver refuses it.
    let bogus = server.raw(
        "POST",
        &format!("{base}?fieldValidation=Bogus"),
        Some("application/json"),
        Some(body),
        token,
    );
    assert_eq!(bogus.code, 422, "{}", bogus.body);
    assert_eq!(
        bogus.json()["message"],
        r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": supported values: "", "Ignore", "Strict", "Warn""#
    );
}
