//! The watch suite: many concurrent watchers each see every event of their selection exactly
//! once and in order while writers run; reconnecting from the last resourceVersion misses
//! nothing; bookmarks arrive; a watch from before the compacted revision gets 410.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tests::apiserver::{Backend, TestApiServer};
use tests::etcd::EtcdServer;
use tests::http::{Client, WatchStream};

const NAMESPACES: usize = 10;
const WATCHERS_PER_NAMESPACE: usize = 10;
const WRITES: usize = 400;

fn cm(name: &str, value: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"suite": "watch"}}, "data": {"v": value.to_string()}})
}

/// (type, name, resourceVersion) of a watch event.
fn summary(event: &Value) -> (String, String, String) {
    (
        event["type"].as_str().unwrap_or_default().to_owned(),
        event["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        event["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Reads events until one at `last_rv` arrives (bookmarks skipped); fails after a timeout.
async fn collect_until(
    stream: &mut WatchStream,
    last_rv: i64,
    what: &str,
) -> Vec<(String, String, String)> {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap_or_else(|_| panic!("{what}: timed out after {} events", seen.len()))
            .unwrap_or_else(|| panic!("{what}: the stream ended after {} events", seen.len()));
        if event["type"] == "BOOKMARK" {
            continue;
        }
        let s = summary(&event);
        let rv: i64 =
            s.2.parse()
                .unwrap_or_else(|_| panic!("{what}: bad rv in {event}"));
        seen.push(s);
        if rv >= last_rv {
            return seen;
        }
    }
}

async fn concurrent_watchers(server: &TestApiServer) {
    let client = Client::new(server);
    for n in 0..NAMESPACES {
        let r = client.request("POST", "/api/v1/namespaces", Some(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("w{n}")}}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let start_rv =
        client.request("GET", "/api/v1/namespaces", None).await.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned();

    // Watchers first, all from the same revision.
    let mut watchers = Vec::new();
    for n in 0..NAMESPACES {
        for w in 0..WATCHERS_PER_NAMESPACE {
            let path =
                format!("/api/v1/namespaces/w{n}/configmaps?watch=true&resourceVersion={start_rv}");
            watchers.push((n, w, client.watch(&path).await));
        }
    }

    // Writers: creates, updates and deletes across the namespaces, 8 at a time.
    let mut expected: BTreeMap<usize, Vec<(String, String, String)>> = BTreeMap::new();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let client = client.clone();
        writers.spawn(async move {
            let mut log = Vec::new();
            for i in 0..WRITES / 8 {
                let n = (writer + i) % NAMESPACES;
                let name = format!("cm-{writer}-{i}");
                let base = format!("/api/v1/namespaces/w{n}/configmaps");
                let r = client.request("POST", &base, Some(&cm(&name, 0))).await;
                assert_eq!(r.status, 201, "{}", r.body);
                log.push((
                    n,
                    (
                        "ADDED".to_owned(),
                        name.clone(),
                        r.body["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    ),
                ));
                if i % 2 == 0 {
                    let r = client
                        .request("PUT", &format!("{base}/{name}"), Some(&cm(&name, 1)))
                        .await;
                    assert_eq!(r.status, 200, "{}", r.body);
                    log.push((
                        n,
                        (
                            "MODIFIED".to_owned(),
                            name.clone(),
                            r.body["metadata"]["resourceVersion"]
                                .as_str()
                                .unwrap()
                                .to_owned(),
                        ),
                    ));
                }
                if i % 3 == 0 {
                    let r = client
                        .request("DELETE", &format!("{base}/{name}"), None)
                        .await;
                    assert_eq!(r.status, 200, "{}", r.body);
                    // The DELETED event carries the deletion's revision, which the reply does not;
                    // it is checked by position below.
                    log.push((n, ("DELETED".to_owned(), name.clone(), String::new())));
                }
            }
            log
        });
    }
    let mut logs = Vec::new();
    while let Some(log) = writers.join_next().await {
        logs.extend(log.unwrap());
    }
    for (n, event) in logs {
        expected.entry(n).or_default().push(event);
    }
    // Every watcher of a namespace sees the same sequence: that namespace's writes in revision
    // order, each once. The writers' own logs give the set; the order is by revision.
    let current: i64 =
        client.request("GET", "/api/v1/namespaces", None).await.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, w, mut stream) in watchers {
        let ns_expected = expected.get(&n).cloned().unwrap_or_default();
        tasks.spawn(async move {
            let what = format!("watcher {w} of namespace w{n}");
            // The last event of this namespace has the highest revision of its writes; read
            // until the stream has passed every write we know of.
            let mut seen = Vec::new();
            while seen.len() < ns_expected.len() {
                let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "{what}: timed out with {} of {} events",
                            seen.len(),
                            ns_expected.len()
                        )
                    })
                    .unwrap_or_else(|| panic!("{what}: stream ended"));
                if event["type"] != "BOOKMARK" {
                    seen.push(summary(&event));
                }
            }
            (n, w, seen, ns_expected)
        });
    }
    let mut sequences: BTreeMap<usize, Vec<(String, String, String)>> = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (n, w, seen, ns_expected) = result.unwrap();
        // In revision order, strictly increasing: each event once.
        let revisions: Vec<i64> = seen.iter().map(|s| s.2.parse().unwrap()).collect();
        assert!(
            revisions.windows(2).all(|p| p[0] < p[1]),
            "watcher {w} of w{n}: revisions not increasing: {revisions:?}"
        );
        assert!(
            revisions.iter().all(|r| *r <= current),
            "watcher {w} of w{n}: revision beyond the store"
        );
        // The same multiset of (type, name) as the writers produced, and every acknowledged
        // create/update at its acknowledged revision.
        let mut got: Vec<(String, String)> =
            seen.iter().map(|s| (s.0.clone(), s.1.clone())).collect();
        let mut want: Vec<(String, String)> = ns_expected
            .iter()
            .map(|s| (s.0.clone(), s.1.clone()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(
            got, want,
            "watcher {w} of w{n}: events differ from the writes"
        );
        for write in ns_expected.iter().filter(|e| !e.2.is_empty()) {
            assert!(
                seen.contains(write),
                "watcher {w} of w{n}: missing {write:?}"
            );
        }
        // All watchers of one namespace agree exactly.
        match sequences.get(&n) {
            Some(first) => assert_eq!(first, &seen, "watchers of w{n} disagree"),
            None => {
                sequences.insert(n, seen);
            }
        }
    }
    assert_eq!(sequences.len(), NAMESPACES);
}

async fn reconnect_and_bookmarks(server: &TestApiServer) {
    let client = Client::new(server);
    let base = "/api/v1/namespaces/default/configmaps";
    let start = client.request("GET", base, None).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stream = client
        .watch(&format!(
            "{base}?watch=true&resourceVersion={start}&allowWatchBookmarks=true"
        ))
        .await;
    let mut rvs = Vec::new();
    for i in 0..10 {
        let r = client
            .request("POST", base, Some(&cm(&format!("r{i}"), i)))
            .await;
        rvs.push(
            r.body["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
    }
    let first = collect_until(&mut stream, rvs[4], "first half").await;
    let last_seen = first.last().unwrap().2.clone();
    drop(stream);
    // Reconnect from the last resourceVersion seen: the rest arrives, nothing twice.
    let mut stream = client
        .watch(&format!(
            "{base}?watch=true&resourceVersion={last_seen}&allowWatchBookmarks=true"
        ))
        .await;
    let second = collect_until(&mut stream, rvs[9], "second half").await;
    let names: Vec<String> = first.iter().chain(&second).map(|s| s.1.clone()).collect();
    assert_eq!(names, (0..10).map(|i| format!("r{i}")).collect::<Vec<_>>());
    // Bookmarks (every second in tests) carry a revision and the kind.
    let bookmark = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a bookmark within 10 s")
            .expect("stream open");
        if event["type"] == "BOOKMARK" {
            break event;
        }
    };
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    let rv: i64 = bookmark["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rv >= rvs[9],
        "a bookmark's revision covers what was delivered"
    );
}

async fn synthetic_added_and_timeout(server: &TestApiServer) {
    let client = Client::new(server);
    let base = "/api/v1/namespaces/default/configmaps";
    client.request("POST", base, Some(&cm("initial", 0))).await;
    // rv=0: the current state first, as ADDED; then the stream ends at timeoutSeconds.
    let mut stream = client.watch(&format!("{base}?watch=true&resourceVersion=0&fieldSelector=metadata.name%3Dinitial&timeoutSeconds=2")).await;
    let event = stream.next().await.expect("the synthetic ADDED");
    assert_eq!(summary(&event).0, "ADDED");
    assert_eq!(event["object"]["kind"], "ConfigMap");
    assert_eq!(event["object"]["apiVersion"], "v1");
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = stream.next().await {
            assert_eq!(e["type"], "BOOKMARK", "only bookmarks may follow: {e}");
        }
    })
    .await;
    assert!(end.is_ok(), "timeoutSeconds ends the stream");
    // A selector that stops matching turns an update into a DELETED for that watch.
    let start = client.request("GET", base, None).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stream = client
        .watch(&format!(
            "{base}?watch=true&resourceVersion={start}&labelSelector=suite%3Dwatch"
        ))
        .await;
    let mut relabelled = client
        .request("GET", &format!("{base}/initial"), None)
        .await
        .body;
    relabelled["metadata"]["labels"] = json!({"suite": "other"});
    let r = client
        .request("PUT", &format!("{base}/initial"), Some(&relabelled))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary(&event).0, "DELETED", "{event}");
}

fn compacted_revision_is_gone(server: &TestApiServer) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Client::new(server);
    let base = "/api/v1/namespaces/default/configmaps";
    let old = runtime.block_on(async {
        let r = client.request("POST", base, Some(&cm("old", 0))).await;
        let rv = r.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap();
        client
            .request("PUT", &format!("{base}/old"), Some(&cm("old", 1)))
            .await;
        client
            .request("PUT", &format!("{base}/old"), Some(&cm("old", 2)))
            .await;
        rv
    });
    server.compact_now();
    runtime.block_on(async {
        let mut stream = client
            .watch(&format!("{base}?watch=true&resourceVersion={}", old - 1))
            .await;
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .expect("an ERROR event");
        assert_eq!(event["type"], "ERROR", "{event}");
        assert_eq!(event["object"]["kind"], "Status");
        assert_eq!(event["object"]["code"], 410);
        assert_eq!(event["object"]["reason"], "Expired");
        assert!(
            stream.next().await.is_none(),
            "the stream ends after the error"
        );
    });
}

#[test]
fn watch_suite_on_the_embedded_store() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(concurrent_watchers(&server));
    runtime.block_on(reconnect_and_bookmarks(&server));
    runtime.block_on(synthetic_added_and_timeout(&server));
    compacted_revision_is_gone(&server);
}

#[test]
fn watch_suite_on_etcd() {
    let etcd = EtcdServer::start();
    let server = TestApiServer::start(Backend::Etcd(&etcd));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(concurrent_watchers(&server));
    runtime.block_on(reconnect_and_bookmarks(&server));
    runtime.block_on(synthetic_added_and_timeout(&server));
    compacted_revision_is_gone(&server);
}
