//! Events are one resource served in two groups: core/v1 `events` and `events.k8s.io/v1`
//! `events`, both stored once under `/registry/events`. An event written through either group
//! reads, lists and watches through the other, converted field by field as Kubernetes does.

use std::time::Duration;

use serde_json::{Value, json};
use tests::apiserver::{Backend, TestApiServer};
use tests::etcd::EtcdServer;
use tests::http::Client;

const CORE: &str = "/api/v1/namespaces/default/events";
const EVENTS_V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn core_event() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "pod-a.1"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "pod-a", "apiVersion": "v1"},
        "reason": "Scheduled",
        "message": "Successfully assigned default/pod-a to node-1",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": "2026-11-30T10:00:00Z",
        "lastTimestamp": "2026-11-30T10:00:05Z",
        "count": 3,
        "type": "Normal"
    })
}

fn events_v1_event() -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "pod-b.1"},
        "eventTime": "2026-11-30T10:01:00.000000Z",
        "reportingController": "example.com/controller",
        "reportingInstance": "controller-0",
        "action": "Binding",
        "reason": "FailedScheduling",
        "type": "Warning",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "pod-b"},
        "note": "0/3 nodes are available"
    })
}

async fn suite(server: &TestApiServer) {
    let client = Client::new(server);
    let start = client.request("GET", CORE, None).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch_v1 = client
        .watch(&format!("{EVENTS_V1}?watch=true&resourceVersion={start}"))
        .await;
    let mut watch_core = client
        .watch(&format!("{CORE}?watch=true&resourceVersion={start}"))
        .await;

    // Written through core/v1, read through events.k8s.io/v1.
    let r = client.request("POST", CORE, Some(&core_event())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = client
        .request("GET", &format!("{EVENTS_V1}/pod-a.1"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ev = r.body;
    assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
    assert_eq!(ev["kind"], "Event");
    assert_eq!(ev["regarding"]["name"], "pod-a");
    assert_eq!(ev["note"], "Successfully assigned default/pod-a to node-1");
    assert_eq!(ev["deprecatedSource"]["component"], "default-scheduler");
    assert_eq!(ev["deprecatedFirstTimestamp"], "2026-11-30T10:00:00Z");
    assert_eq!(ev["deprecatedCount"], 3);
    assert!(
        ev.get("involvedObject").is_none() && ev.get("message").is_none(),
        "{ev}"
    );

    // Written through events.k8s.io/v1, read through core/v1.
    let r = client
        .request("POST", EVENTS_V1, Some(&events_v1_event()))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["apiVersion"], "events.k8s.io/v1", "{}", r.body);
    assert_eq!(r.body["note"], "0/3 nodes are available");
    let r = client
        .request("GET", &format!("{CORE}/pod-b.1"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let core = r.body;
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["involvedObject"]["name"], "pod-b");
    assert_eq!(core["message"], "0/3 nodes are available");
    assert_eq!(core["reportingComponent"], "example.com/controller");
    assert_eq!(core["reportingInstance"], "controller-0");
    assert_eq!(core["action"], "Binding");
    assert!(
        core.get("regarding").is_none() && core.get("note").is_none(),
        "{core}"
    );

    // Both lists hold both events, each in its own form (from the store and from the cache).
    for query in ["", "?resourceVersion=0", "?limit=1"] {
        for (base, api_version, field) in [
            (CORE, "v1", "involvedObject"),
            (EVENTS_V1, "events.k8s.io/v1", "regarding"),
        ] {
            let r = client.request("GET", &format!("{base}{query}"), None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let items = r.body["items"].as_array().unwrap();
            assert_eq!(
                items.len(),
                if query == "?limit=1" { 1 } else { 2 },
                "{base}{query}"
            );
            for item in items {
                assert_eq!(item["apiVersion"], api_version, "{base}{query}: {item}");
                assert!(item.get(field).is_some(), "{base}{query}: {item}");
            }
        }
    }

    // A field selector on the group's own field names.
    let r = client
        .request(
            "GET",
            &format!("{EVENTS_V1}?fieldSelector=regarding.name%3Dpod-b"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pod-b.1"]);

    // Updates through one group keep the other group's fields.
    let mut updated = client
        .request("GET", &format!("{EVENTS_V1}/pod-a.1"), None)
        .await
        .body;
    updated["note"] = json!("rescheduled");
    let r = client
        .request("PUT", &format!("{EVENTS_V1}/pod-a.1"), Some(&updated))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let core = client
        .request("GET", &format!("{CORE}/pod-a.1"), None)
        .await
        .body;
    assert_eq!(core["message"], "rescheduled");
    assert_eq!(core["source"]["component"], "default-scheduler");
    assert_eq!(core["count"], 3);

    // Each watch sees all three writes, in its own form.
    for (stream, api_version, field) in [
        (&mut watch_v1, "events.k8s.io/v1", "regarding"),
        (&mut watch_core, "v1", "involvedObject"),
    ] {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("an event within 10 s")
                .expect("the watch stays open");
            assert_eq!(event["object"]["apiVersion"], api_version, "{event}");
            assert!(event["object"].get(field).is_some(), "{event}");
            seen.push((
                event["type"].as_str().unwrap().to_owned(),
                event["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ));
        }
        let expected = [
            ("ADDED", "pod-a.1"),
            ("ADDED", "pod-b.1"),
            ("MODIFIED", "pod-a.1"),
        ]
        .map(|(t, n)| (t.to_owned(), n.to_owned()));
        assert_eq!(seen, expected, "{api_version}");
    }

    // Deleted through one group, gone from both.
    let r = client
        .request("DELETE", &format!("{CORE}/pod-b.1"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = client
        .request("GET", &format!("{EVENTS_V1}/pod-b.1"), None)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        r.body["message"], "events.events.k8s.io \"pod-b.1\" not found",
        "{}",
        r.body
    );
}

#[test]
fn events_in_both_groups_on_the_embedded_store() {
    let server = TestApiServer::start(Backend::Embedded);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(suite(&server));
}

#[test]
fn events_in_both_groups_on_etcd() {
    let etcd = EtcdServer::start();
    let server = TestApiServer::start(Backend::Etcd(&etcd));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(suite(&server));
}
