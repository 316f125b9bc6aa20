//! The `kube` crate's watcher and reflector against the apiserver: a paged initial list, then a
//! watch; after a forced 410 (the resume revision compacted away) it re-lists and catches up.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use tests::apiserver::{Backend, TestApiServer};

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": {"app": "reflected"}}, "data": {"a": "b"}})).unwrap()
}

#[test]
fn kube_watcher_and_reflector_list_watch_and_recover_from_410() {
    let server = TestApiServer::start(Backend::Embedded);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(server.kubeconfig()).expect("read the kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("a client config");
        let client = kube::Client::try_from(config).expect("a client");
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        for i in 0..25 {
            api.create(&PostParams::default(), &configmap(&format!("cm-{i}")))
                .await
                .expect("create");
        }

        // Paged list (10 per page), then a watch that the server ends every second.
        let (reader, writer) = reflector::store();
        let config = watcher::Config::default()
            .labels("app=reflected")
            .page_size(10)
            .timeout(1);
        let mut stream =
            Box::pin(reflector::reflector(writer, watcher(api.clone(), config)).default_backoff());
        let mut inits = 0;
        // Polls the reflector until it holds `want` objects, counting initial lists.
        macro_rules! poll_until {
            ($want:expr) => {{
                let want: usize = $want;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                while reader.state().len() != want {
                    let event = tokio::time::timeout_at(deadline, stream.next())
                        .await
                        .unwrap_or_else(|_| {
                            panic!(
                                "the reflector holds {} objects, not {want}",
                                reader.state().len()
                            )
                        })
                        .expect("the watcher stream ended");
                    if let Ok(watcher::Event::Init) = event {
                        inits += 1;
                    }
                }
            }};
        }
        poll_until!(25);
        assert_eq!(inits, 1);

        // Live events.
        api.create(&PostParams::default(), &configmap("live"))
            .await
            .unwrap();
        poll_until!(26);

        // Stop polling until the server has ended the watch, then write and compact: the
        // watcher's resume revision is gone, the server answers 410, and the watcher re-lists.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for i in 0..5 {
            api.create(&PostParams::default(), &configmap(&format!("late-{i}")))
                .await
                .unwrap();
        }
        let compacted =
            std::thread::scope(|s| s.spawn(|| server.compact_now()).join().expect("compact"));
        assert!(compacted > 0);
        poll_until!(31);
        assert!(
            inits >= 2,
            "the watcher re-listed after the 410 ({inits} initial lists)"
        );
        let mut names: Vec<String> = reader
            .state()
            .iter()
            .map(|cm| cm.metadata.name.clone().unwrap())
            .collect();
        names.sort();
        assert!(
            names.contains(&"late-4".to_owned()) && names.contains(&"live".to_owned()),
            "{names:?}"
        );
    });
}
