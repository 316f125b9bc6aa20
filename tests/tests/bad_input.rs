//! Bad input gets its 4xx `Status`, writes nothing, and the server keeps serving.

use tests::apiserver::{Backend, RawResponse, TOKEN, TestApiServer};

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn assert_status(r: &RawResponse, code: u16, reason: &str, what: &str) {
    assert_eq!(r.code, code, "{what}: {}", r.body);
    let status = r.json();
    assert_eq!(status["kind"], "Status", "{what}: {}", r.body);
    assert_eq!(status["apiVersion"], "v1", "{what}");
    assert_eq!(status["status"], "Failure", "{what}");
    assert_eq!(status["code"], code, "{what}");
    assert_eq!(status["reason"], reason, "{what}: {}", r.body);
    assert!(
        status["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message"
    );
}

fn configmap_count(server: &TestApiServer) -> usize {
    let r = server.raw("GET", CM_PATH, None, None, Some(TOKEN));
    assert_eq!(r.code, 200, "{}", r.body);
    r.json()["items"].as_array().map_or(0, Vec::len)
}

#[test]
fn bad_input_is_refused_with_a_status_and_nothing_is_written() {
    let server = TestApiServer::start(Backend::Embedded);
    let json = Some("application/json");
    let post =
        |ct: Option<&str>, body: &[u8]| server.raw("POST", CM_PATH, ct, Some(body), Some(TOKEN));
    let ok = post(
        json,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"good"},"data":{"a":"1"}}"#,
    );
    assert_eq!(ok.code, 201, "{}", ok.body);
    let before = configmap_count(&server);

    // Malformed bodies.
    assert_status(
        &post(json, b"{\"apiVersion\": \"v1\", "),
        400,
        "BadRequest",
        "truncated JSON",
    );
    assert_status(
        &post(
            Some("application/yaml"),
            b"kind: ConfigMap\nmetadata: [unclosed\n",
        ),
        400,
        "BadRequest",
        "bad YAML",
    );
    assert_status(
        &post(
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"t"},"data":{"a":1}}"#,
        ),
        400,
        "BadRequest",
        "wrong type",
    );
    assert_status(
        &post(
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"t"},"data":"x"}"#,
        ),
        400,
        "BadRequest",
        "wrong type (object)",
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = post(json, deep.as_bytes());
    assert!(
        r.code == 400 || r.code == 413,
        "deeply nested JSON: {} {}",
        r.code,
        r.body
    );
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    assert_status(
        &post(json, big.as_bytes()),
        413,
        "RequestEntityTooLarge",
        "oversized body",
    );
    assert_status(
        &post(Some("application/vnd.kubernetes.protobuf"), b"k8s\0junk"),
        400,
        "BadRequest",
        "malformed protobuf body",
    );
    assert_status(
        &post(Some("text/plain"), b"hello"),
        415,
        "UnsupportedMediaType",
        "text body",
    );

    // Invalid objects.
    let r = post(
        json,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#,
    );
    assert_status(&r, 422, "Invalid", "invalid name");
    assert_eq!(r.json()["details"]["causes"][0]["field"], "metadata.name");
    assert_status(&post(json, br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"l","labels":{"bad key!":"v"}}}"#), 422, "Invalid", "invalid label");
    assert_status(&post(json, br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"l","labels":{"k":"bad value!"}}}"#), 422, "Invalid", "invalid label value");
    assert_status(
        &post(
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
        ),
        422,
        "Invalid",
        "missing name",
    );
    let pod = |cpu: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p"}},"spec":{{"containers":[{{"name":"c","image":"i","resources":{{"requests":{{"cpu":"{cpu}"}}}}}}]}}}}"#
        )
    };
    let r = server.raw(
        "POST",
        "/api/v1/namespaces/default/pods",
        json,
        Some(pod("12xyz").as_bytes()),
        Some(TOKEN),
    );
    assert!(
        r.code == 400 || r.code == 422,
        "invalid quantity: {} {}",
        r.code,
        r.body
    );
    assert_status(&server.raw("POST", "/api/v1/namespaces/default/pods", json, Some(br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[]}}"#), Some(TOKEN)), 422, "Invalid", "pod without containers");
    assert_status(
        &post(
            json,
            br#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"v"}}"#,
        ),
        400,
        "BadRequest",
        "wrong apiVersion",
    );
    assert_status(
        &server.raw(
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            json,
            Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"}}"#),
            Some(TOKEN),
        ),
        404,
        "NotFound",
        "missing namespace",
    );

    // Selectors and resource versions.
    assert_status(
        &server.raw(
            "GET",
            &format!("{CM_PATH}?labelSelector=a%20in%20(b"),
            None,
            None,
            Some(TOKEN),
        ),
        400,
        "BadRequest",
        "bad label selector",
    );
    assert_status(
        &server.raw(
            "GET",
            &format!("{CM_PATH}?fieldSelector=spec.nope%3D1"),
            None,
            None,
            Some(TOKEN),
        ),
        400,
        "BadRequest",
        "bad field selector",
    );
    assert_status(
        &server.raw(
            "GET",
            &format!("{CM_PATH}?resourceVersion=abc"),
            None,
            None,
            Some(TOKEN),
        ),
        400,
        "BadRequest",
        "garbage resourceVersion",
    );
    assert_status(
        &server.raw(
            "GET",
            &format!("{CM_PATH}?continue=garbage"),
            None,
            None,
            Some(TOKEN),
        ),
        400,
        "BadRequest",
        "garbage continue",
    );
    let current = ok.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let stale = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"good","resourceVersion":"{}"}},"data":{{"a":"2"}}}}"#,
        current.parse::<i64>().unwrap() - 1
    );
    assert_status(
        &server.raw(
            "PUT",
            &format!("{CM_PATH}/good"),
            json,
            Some(stale.as_bytes()),
            Some(TOKEN),
        ),
        409,
        "Conflict",
        "stale resourceVersion",
    );
    let garbage_rv = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"good","resourceVersion":"zzz"},"data":{"a":"2"}}"#;
    assert_status(
        &server.raw(
            "PUT",
            &format!("{CM_PATH}/good"),
            json,
            Some(garbage_rv.as_bytes()),
            Some(TOKEN),
        ),
        400,
        "BadRequest",
        "garbage resourceVersion in body",
    );

    // Patches that cannot apply.
    let patch = |ct: &str, body: &str| {
        server.raw(
            "PATCH",
            &format!("{CM_PATH}/good"),
            Some(ct),
            Some(body.as_bytes()),
            Some(TOKEN),
        )
    };
    assert_status(
        &patch(
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/data/missing"}]"#,
        ),
        422,
        "Invalid",
        "failing JSON patch",
    );
    assert_status(
        &patch(
            "application/json-patch+json",
            r#"[{"op":"test","path":"/data/a","value":"nope"}]"#,
        ),
        422,
        "Invalid",
        "failing JSON patch test",
    );
    assert_status(
        &patch("application/json-patch+json", "not a patch"),
        400,
        "BadRequest",
        "malformed JSON patch",
    );
    assert_status(
        &patch("application/merge-patch+json", r#"{"data":{"a":5}}"#),
        400,
        "BadRequest",
        "merge patch with a wrong type",
    );
    let smp = "application/strategic-merge-patch+json";
    assert_status(
        &patch(smp, "[1]"),
        400,
        "BadRequest",
        "strategic patch not an object",
    );
    assert_status(
        &patch(smp, "{"),
        400,
        "BadRequest",
        "malformed strategic patch",
    );
    assert_status(
        &patch(smp, r#"{"metadata":{"$patch":"bogus"}}"#),
        400,
        "BadRequest",
        "unknown $patch directive",
    );
    assert_status(
        &patch(smp, r#"{"metadata":{"ownerReferences":[{"name":"x"}]}}"#),
        422,
        "Invalid",
        "merge-list element without its merge key",
    );
    assert_status(
        &patch(smp, r#"{"metadata":{"finalizers":[["a"]]}}"#),
        422,
        "Invalid",
        "list of lists",
    );
    assert_status(
        &patch("application/xml", "<x/>"),
        415,
        "UnsupportedMediaType",
        "unknown patch type",
    );

    // Unknown resources and verbs.
    assert_status(
        &server.raw(
            "GET",
            "/api/v1/namespaces/default/widgets",
            None,
            None,
            Some(TOKEN),
        ),
        404,
        "NotFound",
        "unknown resource",
    );
    assert_status(
        &server.raw(
            "GET",
            "/apis/nope.example.com/v1/things",
            None,
            None,
            Some(TOKEN),
        ),
        404,
        "NotFound",
        "unknown group",
    );
    assert_status(
        &server.raw("PUT", CM_PATH, json, Some(b"{}"), Some(TOKEN)),
        405,
        "MethodNotAllowed",
        "PUT on a collection",
    );
    assert_status(
        &server.raw(
            "GET",
            &format!("{CM_PATH}/missing"),
            None,
            None,
            Some(TOKEN),
        ),
        404,
        "NotFound",
        "missing object",
    );

    // Credentials.
    assert_status(
        &server.raw("GET", CM_PATH, None, None, None),
        401,
        "Unauthorized",
        "no token",
    );
    assert_status(
        &server.raw("GET", CM_PATH, None, None, Some("wrong")),
        401,
        "Unauthorized",
        "bad token",
    );
    assert_eq!(
        server.raw("GET", "/version", None, None, None).code,
        200,
        "/version is public"
    );
    assert_eq!(
        server.raw("GET", "/readyz", None, None, None).code,
        200,
        "/readyz is public"
    );

    // Nothing was written, the good object is unchanged, and the server still serves.
    assert_eq!(configmap_count(&server), before);
    let good = server.raw("GET", &format!("{CM_PATH}/good"), None, None, Some(TOKEN));
    assert_eq!(good.json()["data"]["a"], "1");
    assert_eq!(good.json()["metadata"]["resourceVersion"], current.as_str());
}
