//! Protobuf request bodies: kubectl 1.32+ sends its `create <kind>` generators' objects as
//! `application/vnd.kubernetes.protobuf`. Real kubectl 1.33 and 1.32 create each kind Ferry
//! serves that way, and what is stored is what the flags said.

use tests::apiserver::{Backend, TestApiServer};

fn create_generators(version: &str) {
    let server = TestApiServer::start(Backend::Embedded);
    let ns = "gen";
    let out = server.kubectl_ok(version, &["create", "namespace", ns]);
    assert_eq!(out.trim(), "namespace/gen created");
    let namespace = server.kubectl_get(version, "namespace/gen", ns);
    assert_eq!(namespace["status"]["phase"], "Active");

    let out = server.kubectl_ok(
        version,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=3",
            "--port=8080",
            "-n",
            ns,
        ],
    );
    assert_eq!(out.trim(), "deployment.apps/web created");
    let d = server.kubectl_get(version, "deployment/web", ns);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.27");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate", "defaulted");
    assert!(d["metadata"]["creationTimestamp"].is_string());
    // --replicas=0 is a zero the client set, not an absent field.
    server.kubectl_ok(
        version,
        &[
            "create",
            "deployment",
            "idle",
            "--image=x",
            "--replicas=0",
            "-n",
            ns,
        ],
    );
    assert_eq!(
        server.kubectl_get(version, "deployment/idle", ns)["spec"]["replicas"],
        0
    );

    server.kubectl_ok(
        version,
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=a=b",
            "--from-literal=empty=",
            "-n",
            ns,
        ],
    );
    let cm = server.kubectl_get(version, "configmap/settings", ns);
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "empty": ""}));

    server.kubectl_ok(
        version,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=password=s3cr3t",
            "-n",
            ns,
        ],
    );
    let secret = server.kubectl_get(version, "secret/creds", ns);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["password"], "czNjcjN0", "base64 of s3cr3t");

    server.kubectl_ok(
        version,
        &[
            "create",
            "service",
            "clusterip",
            "api",
            "--tcp=80:8080",
            "-n",
            ns,
        ],
    );
    let svc = server.kubectl_get(version, "service/api", ns);
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080, "IntOrString");
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty())
    );

    server.kubectl_ok(version, &["create", "serviceaccount", "robot", "-n", ns]);
    server.kubectl_get(version, "serviceaccount/robot", ns);

    // Creating it again is AlreadyExists, as with a JSON body.
    let out = server.kubectl(
        version,
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=a=b",
            "-n",
            ns,
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#"configmaps "settings" already exists"#),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubectl_1_33_create_generators_send_protobuf() {
    create_generators("1.33");
}

#[test]
fn kubectl_1_32_create_generators_send_protobuf() {
    create_generators("1.32");
}

#[test]
fn kubectl_1_30_create_generators_send_json() {
    create_generators("1.30");
}

/// kubectl 1.27 sends JSON for the same commands.
#[test]
fn kubectl_1_27_create_generators_send_json() {
    create_generators("1.27");
}

#[test]
fn malformed_protobuf_is_a_bad_request() {
    let server = TestApiServer::start(Backend::Embedded);
    let token = Some(tests::apiserver::TOKEN);
    let protobuf = Some("application/vnd.kubernetes.protobuf");
    for body in [&b"k8s\0\x0a\xff"[..], b"not protobuf", b"k8s\0\x12\x03abc"] {
        let r = server.raw(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            protobuf,
            Some(body),
            token,
        );
        assert_eq!(r.code, 400, "{}", r.body);
        assert_eq!(r.json()["reason"], "BadRequest");
    }
}
