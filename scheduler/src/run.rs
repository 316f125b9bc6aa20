//! The scheduler process: informers feed the cache and the queue; one thread runs scheduling
//! cycles, one pod at a time, over the cache; bindings go out asynchronously and concurrently
//! through `pods/binding`, so a slow bind never stalls the next decision.
//!
//! The cache and the queue sit behind one lock. A cycle holds it while it decides (pure CPU
//! work, well under a millisecond per pod), so what it sees is one consistent snapshot; the
//! informer handlers take it between cycles.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use api_types::labels::{Requirement, Selector, selector_from_label_selector};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt as _};
use runtime::informer::Change;
use runtime::pod::Pod;
use runtime::{Informer, Recorder, leader};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cache::{Cache, holds_resources, node_name};
use crate::cycle::{self, FitError, Settings};
use crate::framework::uid_of;
use crate::metrics::{Metrics, Outcome};
use crate::queue::{ClusterEvent, Pending, SchedulingQueue};

/// The name pods give to be scheduled by this scheduler (`spec.schedulerName`).
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// The Lease scheduler instances compete for with `--leader-elect`.
pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_NAME: &str = "ferry-scheduler";
/// Bindings in flight at once.
const MAX_CONCURRENT_BINDS: usize = 256;
/// How often parked pods are checked for the five-minute flush.
const FLUSH_PERIOD: Duration = Duration::from_secs(30);

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub leader_elect: bool,
    pub identity: String,
    pub timings: leader::Timings,
    pub settings: Settings,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            leader_elect: false,
            identity: format!("ferry-scheduler-{}", rand::random::<u32>()),
            timings: leader::Timings::default(),
            settings: Settings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("lost the leader lease; stopping")]
    LostLease,
}

struct State {
    cache: Cache,
    queue: SchedulingQueue,
    /// Where the next cycle starts looking (kube's `nextStartNodeIndex`).
    start: usize,
}

/// What the scheduling thread, the handlers and the bind tasks share.
pub struct Scheduler {
    state: Mutex<State>,
    wake: Condvar,
    client: Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    binds: Arc<Semaphore>,
    settings: Settings,
    services: Store<Service>,
    replicasets: Store<ReplicaSet>,
    runtime: tokio::runtime::Handle,
}

/// Whether this scheduler should place `pod` now.
fn wants(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let scheduler = spec.scheduler_name.as_deref().unwrap_or(SCHEDULER_NAME);
    scheduler == SCHEDULER_NAME
        && node_name(pod).is_none()
        && pod.metadata.deletion_timestamp.is_none()
        && holds_resources(pod)
        && spec.scheduling_gates.as_ref().is_none_or(Vec::is_empty)
}

fn node_event(old: &Node, new: &Node) -> Option<ClusterEvent> {
    let spec = |n: &Node| n.spec.clone().unwrap_or_default();
    let allocatable = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    let (old_spec, new_spec) = (spec(old), spec(new));
    let event = ClusterEvent::NodeChanged {
        allocatable: allocatable(old) != allocatable(new),
        labels: old.metadata.labels != new.metadata.labels,
        taints: old_spec.taints != new_spec.taints,
        unschedulable: old_spec.unschedulable != new_spec.unschedulable,
    };
    (event
        != ClusterEvent::NodeChanged {
            allocatable: false,
            labels: false,
            taints: false,
            unschedulable: false,
        })
    .then_some(event)
}

impl Scheduler {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The scheduler's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Pods waiting, by queue.
    pub fn pending(&self) -> Pending {
        self.lock().queue.pending()
    }

    fn on_pod(&self, change: Change<Pod>, pods: &Store<Pod>) {
        let now = Instant::now();
        let mut state = self.lock();
        match change {
            Change::Applied(pod) => {
                let uid = uid_of(&pod).to_owned();
                if node_name(&pod).is_some() || !wants(&pod) {
                    state.queue.delete(&uid);
                    let counted_before = state.cache.apply_pod(Arc::clone(&pod));
                    if node_name(&pod).is_some() {
                        let event = if counted_before {
                            ClusterEvent::AssignedPodChanged
                        } else {
                            ClusterEvent::AssignedPodAdded
                        };
                        state.queue.on_event(event, now);
                    } else if counted_before {
                        // A pod that held resources stopped holding them.
                        state.queue.on_event(ClusterEvent::AssignedPodDeleted, now);
                    }
                } else if state.cache.is_assumed(&uid) {
                    // Sent to bind; the watch has not shown the binding yet.
                    state.cache.apply_pod(pod);
                } else {
                    state.queue.add_or_update(pod, now);
                }
            }
            Change::Deleted(pod) => {
                let uid = uid_of(&pod);
                state.queue.delete(uid);
                if state.cache.remove_pod(uid) {
                    state.queue.on_event(ClusterEvent::AssignedPodDeleted, now);
                }
            }
            Change::Resync => {
                let current = pods.state();
                let uids: HashSet<String> = current.iter().map(|p| uid_of(p).to_owned()).collect();
                state.cache.retain_pods(&uids);
                for pod in current {
                    let uid = uid_of(&pod).to_owned();
                    if node_name(&pod).is_some() || !wants(&pod) {
                        state.queue.delete(&uid);
                        state.cache.apply_pod(pod);
                    } else if !state.cache.is_assumed(&uid) {
                        state.queue.add_or_update(pod, now);
                    }
                }
                state.queue.on_event(ClusterEvent::AssignedPodDeleted, now);
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    fn on_node(&self, change: Change<Node>, nodes: &Store<Node>) {
        let now = Instant::now();
        let mut state = self.lock();
        match change {
            Change::Applied(node) => {
                let event = match state.cache.apply_node(Arc::clone(&node)) {
                    None => Some(ClusterEvent::NodeAdded),
                    Some(old) => node_event(&old, &node),
                };
                if let Some(event) = event {
                    state.queue.on_event(event, now);
                }
            }
            Change::Deleted(node) => state.cache.remove_node(&node.name_any()),
            Change::Resync => {
                let current = nodes.state();
                let names: HashSet<String> = current.iter().map(|n| n.name_any()).collect();
                state.cache.retain_nodes(&names);
                for node in current {
                    state.cache.apply_node(node);
                }
                state.queue.on_event(ClusterEvent::NodeAdded, now);
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Kubernetes' `DefaultSelector`: the selectors of the Services and the owning ReplicaSet
    /// that select the pod, merged (every requirement of each). Used for default spreading.
    fn default_selector(&self, pod: &Pod) -> Option<Selector> {
        let namespace = pod.namespace().unwrap_or_default();
        let labels = pod.labels();
        let mut requirements: Vec<Requirement> = Vec::new();
        for service in self.services.state() {
            if service.namespace().as_deref() != Some(namespace.as_str()) {
                continue;
            }
            let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
                continue;
            };
            if selector.is_empty() {
                continue;
            }
            let selector = Selector::from_set(selector);
            if selector.matches(labels) {
                requirements.extend(selector.requirements().iter().cloned());
            }
        }
        let owner = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet");
        if let Some(owner) = owner
            && let Some(rs) = self
                .replicasets
                .get(&ObjectRef::new(&owner.name).within(&namespace))
            && let Some(spec) = rs.spec.as_ref()
            && let Ok(selector) = selector_from_label_selector(Some(&spec.selector))
            && !selector.matches_nothing()
            && selector.matches(labels)
        {
            requirements.extend(selector.requirements().iter().cloned());
        }
        (!requirements.is_empty()).then(|| Selector::from_requirements(requirements))
    }

    /// The scheduling loop; runs on its own thread until the process ends.
    fn schedule_loop(self: &Arc<Self>) {
        let mut last_flush = Instant::now();
        loop {
            let mut state = self.lock();
            let now = Instant::now();
            if now.duration_since(last_flush) >= FLUSH_PERIOD {
                state.queue.flush_unschedulable(now);
                last_flush = now;
            }
            let Some(queued) = state.queue.pop(now) else {
                let wait = state
                    .queue
                    .next_ready()
                    .map(|at| at.saturating_duration_since(now))
                    .unwrap_or(FLUSH_PERIOD)
                    .clamp(Duration::from_millis(1), FLUSH_PERIOD);
                let _ = self.wake.wait_timeout(state, wait);
                continue;
            };
            let pod = Arc::clone(&queued.pod);
            let uid = uid_of(&pod).to_owned();
            let selector = self.default_selector(&pod);
            let state = &mut *state;
            let decision = cycle::schedule(
                &pod,
                state.cache.nodes(),
                &mut state.start,
                self.settings,
                selector.as_ref(),
            );
            match decision {
                Ok(placement) => {
                    state.cache.assume(&pod, &placement.node);
                    state.queue.done(&uid);
                    self.metrics.algorithm(now.elapsed());
                    let this = Arc::clone(self);
                    self.runtime
                        .spawn(async move { this.bind(queued, placement.node, now).await });
                }
                Err(mut error) => {
                    let preemption = self.try_preempt(&pod, state.cache.nodes(), &mut error);
                    state
                        .queue
                        .unschedulable(&uid, error.rejected_by(), Instant::now());
                    self.metrics.algorithm(now.elapsed());
                    self.metrics.attempt(Outcome::Unschedulable, now.elapsed());
                    let this = Arc::clone(self);
                    let message = error.message();
                    self.runtime.spawn(async move {
                        this.report_unschedulable(&pod, message, preemption).await;
                    });
                }
            }
        }
    }

    /// DefaultPreemption as a PostFilter: sets the FitError's post-filter message, and returns
    /// the node to nominate and the victims when eviction can make room.
    fn try_preempt(
        &self,
        pod: &Pod,
        nodes: &[crate::framework::NodeInfo],
        error: &mut FitError,
    ) -> Option<cycle::Preemption> {
        // A pod whose nominated node still has victims terminating waits for them.
        let mine = cycle::priority(pod);
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref());
        if let Some(node) = nominated.and_then(|n| nodes.iter().find(|i| i.name() == n))
            && node
                .pods
                .iter()
                .any(|p| p.metadata.deletion_timestamp.is_some() && cycle::priority(p) < mine)
        {
            error.post_filter = Some(
                "preemption: not eligible due to a terminating pod on the nominated node.".into(),
            );
            return None;
        }
        match cycle::preempt(pod, nodes, error) {
            Ok(preemption) => {
                error.post_filter = None;
                Some(preemption)
            }
            Err(message) => {
                error.post_filter = Some(message);
                None
            }
        }
    }

    /// Binds `queued` to `node`; `started` is when its scheduling cycle began.
    async fn bind(
        self: Arc<Self>,
        queued: crate::queue::QueuedPod,
        node: String,
        started: Instant,
    ) {
        let pod = &queued.pod;
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": pod.metadata.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let result = {
            let _permit = self.binds.acquire().await;
            api.create_subresource::<_, serde_json::Value>(
                "binding",
                &name,
                &PostParams::default(),
                &binding,
            )
            .await
        };
        match result {
            Ok(_) => {
                self.metrics.attempt(Outcome::Scheduled, started.elapsed());
                self.metrics
                    .bound(queued.attempts, queued.initial.elapsed());
                self.recorder.normal(
                    pod.as_ref(),
                    "Scheduled",
                    format!("Successfully assigned {namespace}/{name} to {node}"),
                );
            }
            Err(error) => {
                tracing::warn!(pod = %format!("{namespace}/{name}"), %node, %error, "binding failed");
                let gone = matches!(&error, kube::Error::Api(s) if s.code == 404 || s.code == 409);
                let mut state = self.lock();
                state.cache.forget(uid_of(pod));
                if !gone {
                    state.queue.retry(Arc::clone(pod), Instant::now());
                }
                drop(state);
                self.metrics.attempt(Outcome::Error, started.elapsed());
                self.wake.notify_one();
                self.recorder.warning(
                    pod.as_ref(),
                    "FailedScheduling",
                    format!("Binding rejected: {error}"),
                );
            }
        }
    }

    /// Tells the user: the `PodScheduled=False` condition with the message, a `FailedScheduling`
    /// event, and, when preempting, the victims deleted and `status.nominatedNodeName` set.
    async fn report_unschedulable(
        &self,
        pod: &Pod,
        message: String,
        preemption: Option<cycle::Preemption>,
    ) {
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let mut nominated = None;
        if let Some(preemption) = preemption {
            for victim in &preemption.victims {
                let victims: Api<Pod> =
                    Api::namespaced(self.client.clone(), &victim.namespace().unwrap_or_default());
                self.recorder.normal(
                    victim.as_ref(),
                    "Preempted",
                    format!(
                        "Preempted by pod {} on node {}",
                        uid_of(pod),
                        preemption.node
                    ),
                );
                if let Err(error) = victims
                    .delete(&victim.name_any(), &DeleteParams::default())
                    .await
                {
                    tracing::warn!(victim = %victim.name_any(), %error, "could not preempt");
                }
            }
            nominated = Some(preemption.node);
        }
        let current = pod.status.as_ref().and_then(|s| {
            s.conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "PodScheduled")
                .cloned()
        });
        let unchanged = current.as_ref().is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message.as_str())
        });
        if !unchanged || nominated.is_some() {
            let transition = match &current {
                Some(c) if c.status == "False" => c.last_transition_time.clone(),
                _ => None,
            }
            .unwrap_or_else(|| Time(jiff::Timestamp::now()));
            let mut status = json!({"conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": transition,
            }]});
            if let Some(node) = &nominated {
                status["nominatedNodeName"] = json!(node);
            }
            if let Err(error) = api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(json!({"status": status})),
                )
                .await
            {
                tracing::debug!(pod = %pod.name_any(), %error, "could not update the PodScheduled condition");
            }
        }
        self.recorder.warning(pod, "FailedScheduling", message);
    }
}

/// Starts the scheduler (after winning the Lease, with `leader_elect`) and runs until the
/// process ends; returns [`Error::LostLease`] at once if leadership is lost. `ready` receives
/// the running scheduler (for metrics and benchmarks).
pub async fn run(
    client: Client,
    options: Options,
    ready: Option<tokio::sync::oneshot::Sender<Arc<Scheduler>>>,
) -> Result<(), Error> {
    let mut elected = if options.leader_elect {
        let candidate = leader::Candidate::new(
            client.clone(),
            LEASE_NAMESPACE,
            LEASE_NAME,
            &options.identity,
            options.timings,
        );
        Some(candidate.acquire().await)
    } else {
        None
    };
    let scheduler = start(client, options.settings).await;
    if let Some(ready) = ready {
        let _ = ready.send(Arc::clone(&scheduler));
    }
    match &mut elected {
        Some(elected) => {
            elected.lost().await;
            Err(Error::LostLease)
        }
        None => std::future::pending().await,
    }
}

/// Starts the informers, waits for their first lists, and starts the scheduling thread.
pub async fn start(client: Client, settings: Settings) -> Arc<Scheduler> {
    let pods = Informer::<Pod>::start_trimmed(client.clone(), crate::cache::trim);
    let nodes = Informer::<Node>::start(client.clone());
    let services = Informer::<Service>::start(client.clone());
    let replicasets = Informer::<ReplicaSet>::start(client.clone());
    let scheduler = Arc::new(Scheduler {
        state: Mutex::new(State {
            cache: Cache::new(),
            queue: SchedulingQueue::new(),
            start: 0,
        }),
        wake: Condvar::new(),
        recorder: Recorder::new(client.clone(), SCHEDULER_NAME),
        client,
        metrics: Arc::new(Metrics::default()),
        binds: Arc::new(Semaphore::new(MAX_CONCURRENT_BINDS)),
        settings,
        services: services.store(),
        replicasets: replicasets.store(),
        runtime: tokio::runtime::Handle::current(),
    });
    // Subscribe before waiting, so nothing between the list and the subscription is missed;
    // the first Resync fills the cache from the list.
    let node_changes = nodes.subscribe();
    let pod_changes = pods.subscribe();
    nodes.ready().await;
    pods.ready().await;
    services.ready().await;
    replicasets.ready().await;
    {
        let this = Arc::clone(&scheduler);
        this.on_node(Change::Resync, &nodes.store());
        this.on_pod(Change::Resync, &pods.store());
    }
    let (this, store) = (Arc::clone(&scheduler), nodes.store());
    node_changes.forward(move |change| this.on_node(change, &store));
    let (this, store) = (Arc::clone(&scheduler), pods.store());
    pod_changes.forward(move |change| this.on_pod(change, &store));
    let this = Arc::clone(&scheduler);
    std::thread::Builder::new()
        .name("scheduling-cycle".into())
        .spawn(move || this.schedule_loop())
        .ok();
    scheduler
}
