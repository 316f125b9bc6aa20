//! ClusterIP allocation: addresses come from the service range (a /28 in tests: 13 usable),
//! are unique, are released on delete, and exhaustion is a clear error.

use std::collections::BTreeSet;

use serde_json::json;
use tests::apiserver::{Backend, TOKEN, TestApiServer};

fn service(name: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut spec = json!({"selector": {"app": name}, "ports": [{"port": 80}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap()
}

#[test]
fn cluster_ips_are_allocated_released_and_exhausted_clearly() {
    let server = TestApiServer::start(Backend::Embedded);
    let path = "/api/v1/namespaces/default/services";
    let create = |name: &str, extra: serde_json::Value| {
        server.raw(
            "POST",
            path,
            Some("application/json"),
            Some(&service(name, extra)),
            Some(TOKEN),
        )
    };

    let mut ips = BTreeSet::new();
    for i in 0..13 {
        let r = create(&format!("s{i}"), json!({}));
        assert_eq!(r.code, 201, "{}", r.body);
        let ip = r.json()["spec"]["clusterIP"].as_str().unwrap().to_owned();
        assert!(ip.starts_with("10.96.0."), "{ip}");
        assert!(
            !["10.96.0.0", "10.96.0.1", "10.96.0.15"].contains(&ip.as_str()),
            "reserved address handed out: {ip}"
        );
        assert_eq!(r.json()["spec"]["clusterIPs"], json!([ip.clone()]));
        assert!(ips.insert(ip), "an address was handed out twice");
    }
    let full = create("s13", json!({}));
    assert_eq!(full.code, 500, "{}", full.body);
    assert!(
        full.json()["message"]
            .as_str()
            .unwrap()
            .contains("range is full"),
        "{}",
        full.body
    );
    assert_eq!(
        server
            .raw("GET", &format!("{path}/s13"), None, None, Some(TOKEN))
            .code,
        404,
        "nothing written"
    );

    // Headless and ExternalName services need no address.
    let r = create("headless", json!({"clusterIP": "None"}));
    assert_eq!(
        (r.code, r.json()["spec"]["clusterIP"].as_str()),
        (201, Some("None")),
        "{}",
        r.body
    );
    let r = create(
        "ext",
        json!({"type": "ExternalName", "externalName": "example.com", "selector": null}),
    );
    assert_eq!(r.code, 201, "{}", r.body);

    // Deleting releases the address; asking for a taken one is Invalid.
    let released = server
        .raw("GET", &format!("{path}/s3"), None, None, Some(TOKEN))
        .json()["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server
            .raw("DELETE", &format!("{path}/s3"), None, None, Some(TOKEN))
            .code,
        200
    );
    let taken = server
        .raw("GET", &format!("{path}/s4"), None, None, Some(TOKEN))
        .json()["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = create("wants-taken", json!({"clusterIP": taken}));
    assert_eq!(r.code, 422, "{}", r.body);
    assert!(
        r.body.contains("provided IP is already allocated"),
        "{}",
        r.body
    );
    let r = create("wants-outside", json!({"clusterIP": "192.168.0.10"}));
    assert_eq!(r.code, 422, "{}", r.body);
    let r = create("again", json!({"clusterIP": released}));
    assert_eq!(
        r.code, 201,
        "the released address is free again: {}",
        r.body
    );
}
