//! Namespace deletion as in Kubernetes: the namespace turns Terminating and refuses new content
//! until its `spec.finalizers` are removed through `/finalize`, then it is gone.

use serde_json::json;
use tests::apiserver::{Backend, TOKEN, TestApiServer};

#[test]
fn deleting_a_namespace_marks_it_terminating_until_finalized() {
    let server = TestApiServer::start(Backend::Embedded);
    let json_ct = Some("application/json");
    let ns = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
    )
    .unwrap();
    let r = server.raw(
        "POST",
        "/api/v1/namespaces",
        json_ct,
        Some(&ns),
        Some(TOKEN),
    );
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.json()["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(r.json()["status"]["phase"], "Active");

    let r = server.raw(
        "DELETE",
        "/api/v1/namespaces/doomed",
        None,
        None,
        Some(TOKEN),
    );
    assert_eq!(r.code, 200, "{}", r.body);
    let r = server.raw("GET", "/api/v1/namespaces/doomed", None, None, Some(TOKEN));
    assert_eq!(
        r.code, 200,
        "still there while its finalizers are pending: {}",
        r.body
    );
    assert_eq!(r.json()["status"]["phase"], "Terminating");
    assert!(r.json()["metadata"]["deletionTimestamp"].is_string());

    let cm = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}),
    )
    .unwrap();
    let r = server.raw(
        "POST",
        "/api/v1/namespaces/doomed/configmaps",
        json_ct,
        Some(&cm),
        Some(TOKEN),
    );
    assert_eq!(r.code, 403, "{}", r.body);
    assert!(
        r.body.contains("because it is being terminated"),
        "{}",
        r.body
    );

    let mut finalized = server
        .raw("GET", "/api/v1/namespaces/doomed", None, None, Some(TOKEN))
        .json();
    finalized["spec"]["finalizers"] = json!([]);
    let r = server.raw(
        "PUT",
        "/api/v1/namespaces/doomed/finalize",
        json_ct,
        Some(&serde_json::to_vec(&finalized).unwrap()),
        Some(TOKEN),
    );
    assert_eq!(r.code, 200, "{}", r.body);
    let r = server.raw("GET", "/api/v1/namespaces/doomed", None, None, Some(TOKEN));
    assert_eq!(r.code, 404, "gone once finalized: {}", r.body);
}
