//! The watch cache: a watcher that stops reading is ended once it is the queue's capacity
//! behind while the others keep receiving, and it resumes from its last resourceVersion missing
//! nothing; lists with `resourceVersion=0`, consistent lists, and paged lists whose matches fit
//! in one page are served from the cache; the cache's sizes are on `/metrics`; objects made by
//! concurrent creates are served from the cache exactly as their creates answered them.

use std::time::Duration;

use serde_json::{Value, json};
use tests::apiserver::{Backend, TestApiServer};
use tests::etcd::EtcdServer;
use tests::http::{Client, WatchStream};

/// How many events a watcher may fall behind before the server ends its stream.
const QUEUE: usize = 32;
/// Enough data that a watcher which does not read fills every socket and TLS buffer on the way
/// (loopback buffers reach a few MiB) and then falls the queue's capacity behind.
const WRITES: usize = 250;
const PAYLOAD: usize = 64 * 1024;
const BASE: &str = "/api/v1/namespaces/default/configmaps";

fn big_cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"blob": "x".repeat(PAYLOAD)}})
}

/// (type, name, resourceVersion) of a watch event.
fn summary(event: &Value) -> (String, String, String) {
    let field = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        field(&event["type"]),
        field(&event["object"]["metadata"]["name"]),
        field(&event["object"]["metadata"]["resourceVersion"]),
    )
}

/// Reads `n` events (bookmarks skipped); fails if the stream ends or stalls first.
async fn read_events(
    stream: &mut WatchStream,
    n: usize,
    what: &str,
) -> Vec<(String, String, String)> {
    let mut seen = Vec::with_capacity(n);
    while seen.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .unwrap_or_else(|_| panic!("{what}: stalled after {} of {n} events", seen.len()))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: the stream ended after {} of {n} events",
                    seen.len()
                )
            });
        if event["type"] != "BOOKMARK" {
            seen.push(summary(&event));
        }
    }
    seen
}

async fn slow_watcher_is_ended_and_resumes(server: &TestApiServer) {
    let client = Client::new(server);
    let start = client.request("GET", BASE, None).await.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("a list carries its resourceVersion")
        .to_owned();
    let watch = format!("{BASE}?watch=true&resourceVersion={start}");
    let mut fast = client.watch(&watch).await;
    let mut slow = client.watch(&watch).await;
    let reader =
        tokio::spawn(async move { read_events(&mut fast, WRITES, "the reading watcher").await });

    let mut expected = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let name = format!("big-{i:03}");
        let r = client.request("POST", BASE, Some(&big_cm(&name))).await;
        assert_eq!(r.status, 201, "create {name}: {}", r.body);
        let rv = r.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned();
        expected.push(("ADDED".to_owned(), name, rv));
    }

    // The watcher that kept reading got every event, in order, while the other one stalled.
    let fast_seen = reader.await.expect("the reader task");
    assert_eq!(
        fast_seen, expected,
        "the reading watcher sees every event once, in order"
    );

    // The one that did not read was ended: what it got before is a prefix of the events.
    let mut slow_seen = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), slow.next())
            .await
            .expect("the server ends a watcher that fell the queue's capacity behind");
        match next {
            Some(event) if event["type"] == "BOOKMARK" => {}
            Some(event) => slow_seen.push(summary(&event)),
            None => break,
        }
    }
    assert!(
        slow_seen.len() < WRITES,
        "the stalled watcher was ended before it had every event ({} of {WRITES})",
        slow_seen.len()
    );
    assert_eq!(
        slow_seen[..],
        expected[..slow_seen.len()],
        "a prefix, in order"
    );

    // It resumes from the last resourceVersion it saw and gets exactly the rest.
    let last = slow_seen.last().map_or(start, |s| s.2.clone());
    let mut resumed = client
        .watch(&format!("{BASE}?watch=true&resourceVersion={last}"))
        .await;
    let rest = read_events(
        &mut resumed,
        WRITES - slow_seen.len(),
        "the resumed watcher",
    )
    .await;
    slow_seen.extend(rest);
    assert_eq!(slow_seen, expected, "nothing missed, nothing twice");
}

/// The value of `name{resource="configmaps"}` on `/metrics`.
async fn configmap_metric(client: &Client, name: &str) -> u64 {
    let r = client.request("GET", "/metrics", None).await;
    assert_eq!(r.status, 200);
    let text = r.body.as_str().expect("metrics are text").to_owned();
    let prefix = format!("{name}{{resource=\"configmaps\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} is on /metrics:\n{text}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is a number"))
}

async fn lists_from_the_cache_and_metrics(server: &TestApiServer) {
    let client = Client::new(server);
    let before = configmap_metric(&client, "apiserver_cache_list_total").await;
    let list = client
        .request("GET", &format!("{BASE}?resourceVersion=0"), None)
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(WRITES));
    assert_eq!(
        configmap_metric(&client, "apiserver_cache_list_total").await,
        before + 1,
        "a resourceVersion=0 list is served from the watch cache"
    );

    // A consistent list (no resourceVersion, no limit) also comes from the cache, once it has
    // caught up: a write acknowledged just before is in it.
    let r = client.request("POST", BASE, Some(&big_cm("fresh"))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let list = client.request("GET", BASE, None).await;
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["name"] == "fresh"),
        "a consistent list includes the write acknowledged before it"
    );
    assert_eq!(
        configmap_metric(&client, "apiserver_cache_list_total").await,
        before + 2
    );
    // Pages the cache cannot continue (more matches than the page) are the store's, with a
    // continue token: without a selector, and with one that most objects match.
    for query in [
        "limit=10",
        "limit=10&fieldSelector=metadata.namespace%3Ddefault",
    ] {
        let page = client
            .request("GET", &format!("{BASE}?{query}"), None)
            .await;
        assert_eq!(page.body["items"].as_array().map(Vec::len), Some(10));
        assert!(
            page.body["metadata"]["continue"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{query}"
        );
        assert_eq!(
            configmap_metric(&client, "apiserver_cache_list_total").await,
            before + 2,
            "{query}"
        );
    }
    // A paged list whose matches all fit in its page comes from the cache, whole: no next page.
    let page = client
        .request(
            "GET",
            &format!("{BASE}?limit=10&fieldSelector=metadata.name%3Dfresh"),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.body["items"][0]["metadata"]["name"], "fresh");
    assert!(
        page.body["metadata"].get("continue").is_none(),
        "{}",
        page.body["metadata"]
    );
    assert_eq!(
        configmap_metric(&client, "apiserver_cache_list_total").await,
        before + 3
    );

    assert_eq!(
        configmap_metric(&client, "ferry_watch_cache_objects").await,
        WRITES as u64 + 1
    );
    assert!(
        configmap_metric(&client, "apiserver_watch_cache_events_received_total").await
            > WRITES as u64
    );
    assert!(configmap_metric(&client, "apiserver_watch_cache_capacity").await > 0);
    assert!(configmap_metric(&client, "apiserver_watch_cache_initializations_total").await >= 1);
    let rv: u64 = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(configmap_metric(&client, "apiserver_watch_cache_resource_version").await >= rv);
}

/// Concurrent creates: the cache serves each object (by name, by label, in a watch's initial
/// state) exactly as its create answered it, whether it took the object the create offered or
/// read it from the storage event.
async fn created_objects_are_served_as_created(server: &TestApiServer) {
    const CREATES: usize = 64;
    let client = Client::new(server);
    let created = futures::future::join_all((0..CREATES).map(|i| {
        let client = client.clone();
        async move {
            let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("made-{i:02}"), "labels": {"batch": "made"}},
                "data": {"i": i.to_string()}});
            let r = client.request("POST", BASE, Some(&body)).await;
            assert_eq!(r.status, 201, "{}", r.body);
            r.body
        }
    }))
    .await;
    for answered in &created {
        let name = answered["metadata"]["name"].as_str().unwrap();
        let got = client
            .request("GET", &format!("{BASE}/{name}?resourceVersion=0"), None)
            .await;
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(&got.body, answered, "the cache's {name} is the one created");
    }
    let list = client
        .request(
            "GET",
            &format!("{BASE}?resourceVersion=0&labelSelector=batch%3Dmade"),
            None,
        )
        .await;
    let mut items = list.body["items"].as_array().cloned().unwrap_or_default();
    for item in &mut items {
        // List items carry no kind and apiVersion of their own.
        let map = item.as_object_mut().unwrap();
        map.remove("kind");
        map.remove("apiVersion");
    }
    let mut expected: Vec<Value> = created.clone();
    for item in &mut expected {
        let map = item.as_object_mut().unwrap();
        map.remove("kind");
        map.remove("apiVersion");
    }
    let by_name = |v: &Value| {
        v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    items.sort_by_key(by_name);
    expected.sort_by_key(by_name);
    assert_eq!(
        items, expected,
        "a label selector finds every created object, as created"
    );
    let mut watch = client
        .watch(&format!(
            "{BASE}?watch=true&resourceVersion=0&labelSelector=batch%3Dmade"
        ))
        .await;
    let mut initial = Vec::new();
    while initial.len() < CREATES {
        let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("the initial events arrive")
            .expect("the stream stays open");
        assert_eq!(event["type"], "ADDED");
        initial.push(event["object"].clone());
    }
    initial.sort_by_key(by_name);
    let mut answered = created;
    answered.sort_by_key(by_name);
    assert_eq!(
        initial, answered,
        "a watch's initial state is each object as created"
    );
}

fn suite(server: &TestApiServer) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(slow_watcher_is_ended_and_resumes(server));
    runtime.block_on(lists_from_the_cache_and_metrics(server));
    runtime.block_on(created_objects_are_served_as_created(server));
}

#[test]
fn watch_cache_on_the_embedded_store() {
    suite(&TestApiServer::start_with_queue(Backend::Embedded, QUEUE));
}

#[test]
fn watch_cache_on_etcd() {
    let etcd = EtcdServer::start();
    suite(&TestApiServer::start_with_queue(
        Backend::Etcd(&etcd),
        QUEUE,
    ));
}
