//! The node-lifecycle controller (Kubernetes' `node-lifecycle-controller` with its
//! NoExecuteTaintManager): every `--node-monitor-period` it looks at each Node and its Lease in
//! `kube-node-lease`; a node without a heartbeat for `--node-monitor-grace-period` gets its
//! Ready, MemoryPressure, DiskPressure and PIDPressure conditions set Unknown; unhealthy nodes get
//! the `unreachable` (or `not-ready`) NoSchedule taint at once and the NoExecute one when their
//! zone's token bucket lets them (`--node-eviction-rate` nodes per second, less or none under
//! partial disruption, none at all when every zone is fully disrupted); pods on nodes with
//! NoExecute taints they do not tolerate are deleted, at once or when their `tolerationSeconds`
//! run out. Ready nodes lose those taints.
//!
//! The decisions are pure ([`plan`], [`taints`], [`zones`]); this module only reads the
//! informers and writes.

pub mod plan;
pub mod taints;
pub mod zones;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt as _};
use runtime::pod::Pod;
use serde_json::json;

use crate::runtime::{Informer, Recorder};
use zones::{Bucket, Rates, ZoneState};

/// Where the kubelets' heartbeat Leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The controller's timings and rates (kube-controller-manager's flags and defaults).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `--node-monitor-period`, 5 s.
    pub monitor_period: Duration,
    /// `--node-monitor-grace-period`, 40 s.
    pub grace_period: Duration,
    /// `--node-eviction-rate` (0.1), `--secondary-node-eviction-rate` (0.01),
    /// `--unhealthy-zone-threshold` (0.55), `--large-cluster-size-threshold` (50).
    pub rates: Rates,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(40),
            rates: Rates {
                eviction: 0.1,
                secondary: 0.01,
                unhealthy_zone_threshold: 0.55,
                large_cluster_threshold: zones::LARGE_CLUSTER_THRESHOLD,
            },
        }
    }
}

pub struct Controller {
    client: Client,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    options: Options,
    node_events: Recorder,
    eviction_events: Recorder,
    buckets: HashMap<String, Bucket>,
    started: Instant,
    /// Pods this controller asked to delete, until the informer shows them going.
    deleted: HashSet<String>,
    /// When this controller first saw each node: a node's silence counts from then at the
    /// earliest (kube's probe timestamp), so a controller-manager starting after an outage gives
    /// every node a full grace period.
    first_seen: HashMap<String, jiff::Timestamp>,
}

/// One node as a pass sees it.
struct Seen {
    node: Arc<Node>,
    heartbeat: Option<jiff::Timestamp>,
    ready: String,
    zone: String,
}

impl Controller {
    pub async fn run(
        client: Client,
        nodes: Arc<Informer<Node>>,
        leases: Arc<Informer<Lease>>,
        pods: Arc<Informer<Pod>>,
        options: Options,
    ) {
        nodes.ready().await;
        leases.ready().await;
        pods.ready().await;
        let mut controller = Controller {
            node_events: Recorder::new(client.clone(), "node-controller"),
            eviction_events: Recorder::new(client.clone(), "taint-eviction-controller"),
            client,
            nodes: nodes.store(),
            leases: leases.store(),
            pods: pods.store(),
            options,
            buckets: HashMap::new(),
            started: Instant::now(),
            deleted: HashSet::new(),
            first_seen: HashMap::new(),
        };
        let mut ticks =
            tokio::time::interval(options.monitor_period.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            controller.pass().await;
        }
    }

    /// One monitoring pass over every node, then the eviction pass over their pods.
    async fn pass(&mut self) {
        let now = jiff::Timestamp::now();
        let mut seen = Vec::new();
        let nodes = self.nodes.state();
        self.first_seen
            .retain(|name, _| nodes.iter().any(|n| n.metadata.name.as_ref() == Some(name)));
        for node in nodes {
            let name = node.name_any();
            let lease = self
                .leases
                .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE));
            let first_seen = *self.first_seen.entry(name.clone()).or_insert(now);
            let heartbeat = plan::heartbeat(&node, lease.as_deref()).max(Some(first_seen));
            let mut ready = plan::ready_status(&node).to_owned();
            if plan::is_stale(heartbeat, now, self.options.grace_period) {
                if let Some(conditions) = plan::unknown_conditions(&node, now) {
                    let api: Api<Node> = Api::all(self.client.clone());
                    let patch = json!({"status": {"conditions": conditions}});
                    match api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => {
                            tracing::info!(node = %name, "node stopped posting status; marked Unknown");
                            if ready != "Unknown" {
                                self.node_events.normal(
                                    &*node,
                                    "NodeNotReady",
                                    format!("Node {name} status is now: NodeNotReady"),
                                );
                            }
                        }
                        Err(error) => {
                            tracing::warn!(node = %name, %error, "marking the node Unknown");
                        }
                    }
                }
                ready = "Unknown".into();
            }
            let zone = node
                .labels()
                .get(zones::ZONE_LABEL)
                .cloned()
                .unwrap_or_default();
            seen.push(Seen {
                node,
                heartbeat,
                ready,
                zone,
            });
        }

        // Zone states, and whether every zone is down at once.
        let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for s in &seen {
            let count = counts.entry(s.zone.as_str()).or_default();
            if s.ready == "True" {
                count.0 += 1;
            } else {
                count.1 += 1;
            }
        }
        let states: BTreeMap<String, (ZoneState, usize)> = counts
            .iter()
            .map(|(zone, (ready, not_ready))| {
                let state = zones::zone_state(
                    *ready,
                    *not_ready,
                    self.options.rates.unhealthy_zone_threshold,
                );
                ((*zone).to_owned(), (state, ready + not_ready))
            })
            .collect();
        let halted = zones::all_fully_disrupted(states.values().map(|(s, _)| s));
        if halted && seen.iter().any(|s| s.ready != "True") {
            tracing::debug!("every zone is fully disrupted: no evictions");
        }

        // Taints, the longest-silent nodes first in their zone's bucket.
        seen.sort_by_key(|s| s.heartbeat);
        let elapsed = self.started.elapsed();
        let mut tainted: HashMap<String, Vec<Taint>> = HashMap::new();
        for s in &seen {
            let name = s.node.name_any();
            let current = s
                .node
                .spec
                .as_ref()
                .and_then(|spec| spec.taints.clone())
                .unwrap_or_default();
            let no_execute = if s.ready == "True" || halted {
                false
            } else if plan::has_no_execute(&current) {
                true
            } else {
                let (state, size) = states[&s.zone];
                let rate = zones::zone_rate(state, size, &self.options.rates);
                self.buckets
                    .entry(s.zone.clone())
                    .or_insert_with(|| Bucket::new(elapsed))
                    .try_take(elapsed, rate)
            };
            let want = plan::desired_taints(&current, &s.ready, no_execute, now);
            let taints = if want != current {
                let api: Api<Node> = Api::all(self.client.clone());
                let patch = json!({"spec": {"taints": want}});
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(node = %name, ready = %s.ready, ?want, "node taints updated");
                        want
                    }
                    Err(error) => {
                        tracing::warn!(node = %name, %error, "updating the node's taints");
                        current
                    }
                }
            } else {
                current
            };
            if taints.iter().any(|t| t.effect == taints::NO_EXECUTE) {
                tainted.insert(name, taints);
            }
        }
        self.evict(&tainted, now).await;
    }

    /// Deletes the pods whose NoExecute taints are not (or no longer) tolerated.
    async fn evict(&mut self, tainted: &HashMap<String, Vec<Taint>>, now: jiff::Timestamp) {
        let pods = self.pods.state();
        self.deleted
            .retain(|uid| pods.iter().any(|p| p.metadata.uid.as_deref() == Some(uid)));
        for pod in pods {
            let Some(taints) = crate::pods::node_name(&pod).and_then(|n| tainted.get(n)) else {
                continue;
            };
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() || self.deleted.contains(&uid) {
                continue;
            }
            let Some(at) = taints::eviction_time(&pod, taints, now) else {
                continue;
            };
            if at > now {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let name = pod.name_any();
            self.eviction_events.normal(
                &*pod,
                "TaintManagerEviction",
                format!("Marking for deletion Pod {namespace}/{name}"),
            );
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(pod = %format!("{namespace}/{name}"), "evicted by taint");
                    self.deleted.insert(uid);
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(error) => tracing::warn!(pod = %name, %error, "evicting the pod"),
            }
        }
    }
}
