//! The kubelet process. Few tasks for many nodes: registration runs with bounded concurrency,
//! one task renews every node's Lease each heartbeat interval, one task rewrites every node's
//! status each status update period, and one task follows a pod watch (all pods, filtered here
//! by `spec.nodeName`) and starts a small task per pod for the timed steps of its life.
//!
//! Pods are not cached: a decoded `Pod` takes ~11 KB of memory (for ~2 KB of JSON), so one
//! process playing 5,000 nodes with 20 pods each would hold over 1 GB of them. The pod task
//! keeps the version it started from while it runs; between events the kubelet keeps only what
//! it tracks per pod ([`Tracked`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt as _, watcher};
use runtime::Informer;
use runtime::informer::Change;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

use crate::lifecycle::{
    self, Behaviour, Containers, CrashLoop, Decision, RestartPolicy, State, Terminated,
};
use crate::node::{self, Cidr, LEASE_NAMESPACE};
use crate::pod::{self, IpPool};
use crate::{Error, Options};

/// The field manager of the kubelet's writes.
const FIELD_MANAGER: &str = "kubelet";
/// Attempts of a write that fails for another reason than the object being gone.
const ATTEMPTS: u32 = 8;

/// A node this process plays, once registered.
#[derive(Debug, Clone)]
struct Registered {
    name: String,
    index: usize,
    host_ip: Ipv4Addr,
    cidr: Cidr,
    /// When its conditions last changed (their `lastTransitionTime`).
    since: String,
}

/// Runs the simulated nodes until the process ends; fails only when the options are invalid
/// or a node cannot be registered.
pub async fn run(client: Client, options: Options) -> Result<(), Error> {
    options.validate()?;
    let options = Arc::new(options);
    // Owned values in and out of each future (no borrowed closure arguments), so that the
    // whole `run` future is `Send` and can be spawned.
    let registered: Vec<Registered> = futures::stream::iter(0..options.node_names.len())
        .map(|index| {
            let (client, options) = (client.clone(), Arc::clone(&options));
            let name = options.node_names[index].clone();
            async move { register(&client, options.first_index + index, &name, &options).await }
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;
    tracing::info!(nodes = registered.len(), "nodes registered");
    let registered = Arc::new(registered);
    tokio::spawn(heartbeats(
        client.clone(),
        Arc::clone(&registered),
        Arc::clone(&options),
    ));
    tokio::spawn(status_updates(
        client.clone(),
        Arc::clone(&registered),
        Arc::clone(&options),
    ));
    run_pods(client, &registered, options).await;
    Ok(())
}

fn code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Runs `write` until it succeeds (`Some`), the object is gone (`None`, on 404) or it failed
/// [`ATTEMPTS`] times (logged, `None`), backing off from 100 ms to 5 s.
async fn retrying<T, F, Fut>(what: &str, mut write: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        match write().await {
            Ok(value) => return Some(value),
            Err(error) if code(&error) == Some(404) => return None,
            Err(error) if attempt == ATTEMPTS => {
                tracing::warn!(what, %error, "giving up");
            }
            Err(error) => {
                tracing::debug!(what, %error, attempt, "retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    None
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Creates the Node, or re-uses the one already there: our labels added, a pod CIDR given
/// when it has none, its status rewritten. Conflicts (a create racing another) retry.
async fn register(
    client: &Client,
    index: usize,
    name: &str,
    options: &Options,
) -> Result<Registered, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let failed = |source| Error::Register {
        node: name.to_owned(),
        source,
    };
    let mut attempt = 0;
    let node = loop {
        attempt += 1;
        let (now, _) = node::now_strings();
        let result = match nodes.get_opt(name).await {
            Ok(None) => {
                let body: Node = serde_json::from_value(node::new_node(name, index, options, &now))
                    .map_err(|e| {
                        Error::Options(format!("the Node {name} would not decode: {e}"))
                    })?;
                nodes
                    .create(
                        &PostParams {
                            field_manager: Some(FIELD_MANAGER.to_owned()),
                            ..PostParams::default()
                        },
                        &body,
                    )
                    .await
            }
            Ok(Some(existing)) => {
                let mut patch = json!({"metadata": {"labels": node::labels(name, options)}});
                let spec = existing.spec.clone().unwrap_or_default();
                if spec.pod_cidr.as_deref().is_none_or(str::is_empty) {
                    let cidr = node::default_pod_cidr(index).to_string();
                    patch["spec"] = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
                }
                nodes
                    .patch(name, &patch_params(), &Patch::Merge(patch))
                    .await
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(node) => break node,
            Err(error) if attempt < ATTEMPTS => {
                tracing::debug!(node = name, %error, "registration failed; retrying");
                let pause = if code(&error) == Some(409) { 10 } else { 500 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(error) => return Err(failed(error)),
        }
    };
    // Conditions that were already Ready keep their transition time.
    let (now, _) = node::now_strings();
    let since = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map_or_else(|| now.clone(), |t| t.0.to_string());
    let status = Patch::Merge(json!({"status": node::status(name, index, options, &now, &since)}));
    let params = patch_params();
    retrying("node status", || nodes.patch_status(name, &params, &status)).await;
    let cidr = node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .and_then(Cidr::parse)
        .unwrap_or_else(|| {
            tracing::warn!(node = name, "no usable IPv4 podCIDR; using the default one");
            node::default_pod_cidr(index)
        });
    Ok(Registered {
        name: name.to_owned(),
        index,
        host_ip: node::internal_ip(index),
        cidr,
        since,
    })
}

/// Renews every node's Lease each heartbeat interval, `concurrency` at a time (creating it when
/// missing).
async fn heartbeats(client: Client, nodes: Arc<Vec<Registered>>, options: Arc<Options>) {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let mut ticker = tokio::time::interval(options.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        futures::stream::iter(0..nodes.len())
            .for_each_concurrent(options.concurrency.max(1), |index| {
                let (leases, nodes) = (leases.clone(), Arc::clone(&nodes));
                async move { renew(&leases, &nodes[index].name).await }
            })
            .await;
    }
}

async fn renew(leases: &Api<Lease>, name: &str) {
    let (_, micro) = node::now_strings();
    let body = node::lease(name, &micro);
    let patch = json!({"spec": body["spec"]});
    match leases
        .patch(name, &patch_params(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(error) if code(&error) == Some(404) => {
            let Ok(lease) = serde_json::from_value::<Lease>(body) else {
                return;
            };
            if let Err(error) = leases.create(&PostParams::default(), &lease).await {
                tracing::warn!(node = name, %error, "cannot create the node lease");
            }
        }
        Err(error) => tracing::warn!(node = name, %error, "cannot renew the node lease"),
    }
}

/// Writes every node's full status each status update period (the heartbeat times of its
/// conditions); nothing a simulated node reports changes in between. A node someone else marked
/// not Ready (the node-lifecycle controller's Unknown after a silence) is written again at once,
/// as the kubelet's status loop corrects an apiserver copy that differs from what it reports.
async fn status_updates(client: Client, nodes: Arc<Vec<Registered>>, options: Arc<Options>) {
    let api: Api<Node> = Api::all(client.clone());
    let informer = Informer::<Node>::start(client);
    let mut changes = Some(informer.subscribe());
    let index: HashMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    let period = options.node_status_update_frequency;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let change = match changes.as_mut() {
            Some(subscription) => tokio::select! {
                _ = ticker.tick() => None,
                change = subscription.next() => match change {
                    Some(change) => Some(change),
                    None => {
                        changes = None;
                        continue;
                    }
                },
            },
            None => {
                ticker.tick().await;
                None
            }
        };
        match change {
            None => {
                futures::stream::iter(0..nodes.len())
                    .for_each_concurrent(options.concurrency.max(1), |i| {
                        write_node_status(&api, &nodes[i], &options)
                    })
                    .await;
            }
            Some(Change::Applied(seen)) => {
                let name = seen.metadata.name.as_deref().unwrap_or_default();
                if let Some(&i) = index.get(name)
                    && !reports_ready(&seen)
                {
                    write_node_status(&api, &nodes[i], &options).await;
                }
            }
            Some(_) => {}
        }
    }
}

/// Whether the Node shows what this kubelet reports: Ready=True.
fn reports_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn write_node_status(api: &Api<Node>, node: &Registered, options: &Options) {
    let (now, _) = node::now_strings();
    let status = json!({"status": node::status(
        &node.name, node.index, options, &now, &node.since)});
    if let Err(error) = api
        .patch_status(&node.name, &patch_params(), &Patch::Merge(&status))
        .await
    {
        tracing::warn!(node = node.name, %error, "cannot update the node status");
    }
}

/// A pod this process runs.
struct Tracked {
    node: String,
    ip: Option<Ipv4Addr>,
    /// The task of its current step, if one runs.
    task: Option<AbortHandle>,
    terminating: bool,
}

struct NodePods {
    host_ip: Ipv4Addr,
    pool: IpPool,
}

/// The pods of this process's nodes, keyed by uid. Owned by the one task that follows the
/// pod watch, so it needs no lock.
struct Pods {
    client: Client,
    options: Arc<Options>,
    nodes: HashMap<String, NodePods>,
    tracked: HashMap<String, Tracked>,
    writes: Arc<Semaphore>,
}

async fn run_pods(client: Client, registered: &[Registered], options: Arc<Options>) {
    let api: Api<Pod> = Api::all(client.clone());
    // One node (a kubelet per machine, as `ferry up` runs them): only its pods, as the real
    // kubelet watches them, so the apiserver does not send every pod to every kubelet.
    let config = match registered {
        [only] => watcher::Config::default().fields(&format!("spec.nodeName={}", only.name)),
        _ => watcher::Config::default(),
    };
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut pods = Pods {
        client,
        writes: Arc::new(Semaphore::new(options.concurrency.max(1))),
        options,
        nodes: registered
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    NodePods {
                        host_ip: n.host_ip,
                        pool: IpPool::new(n.cidr),
                    },
                )
            })
            .collect(),
        tracked: HashMap::new(),
    };
    // The uids of a (re)list in progress: at its end, tracked pods it did not show are gone.
    let mut listed: Option<std::collections::HashSet<String>> = None;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "pod watch failed; retrying");
                continue;
            }
        };
        match event {
            watcher::Event::Init => listed = Some(std::collections::HashSet::new()),
            watcher::Event::InitApply(pod) => {
                if let Some(listed) = listed.as_mut() {
                    listed.insert(pod::uid(&pod).to_owned());
                }
                pods.sync(&slim(pod));
            }
            watcher::Event::InitDone => {
                if let Some(listed) = listed.take() {
                    pods.forget_all_but(&listed);
                }
            }
            watcher::Event::Apply(pod) => pods.sync(&slim(pod)),
            watcher::Event::Delete(pod) => pods.forget(pod::uid(&pod)),
        }
    }
}

/// A pod as a pod task keeps it: without `managedFields`, which the kubelet never reads.
fn slim(mut pod: Pod) -> Arc<Pod> {
    pod.metadata.managed_fields = None;
    Arc::new(pod)
}

impl Pods {
    /// Forgets every tracked pod whose uid is not in `present` (a relist did not show it).
    fn forget_all_but(&mut self, present: &std::collections::HashSet<String>) {
        let gone: Vec<String> = self
            .tracked
            .keys()
            .filter(|uid| !present.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            self.forget(&uid);
        }
    }

    fn forget(&mut self, uid: &str) {
        let Some(tracked) = self.tracked.remove(uid) else {
            return;
        };
        if let Some(task) = tracked.task {
            task.abort();
        }
        if let (Some(ip), Some(node)) = (tracked.ip, self.nodes.get_mut(&tracked.node)) {
            node.pool.release(ip);
        }
    }

    fn sync(&mut self, pod: &Arc<Pod>) {
        let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
            return;
        };
        let Some(node) = self.nodes.get_mut(node_name) else {
            return;
        };
        let uid = pod::uid(pod);
        if uid.is_empty() {
            return;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            let tracked = self.tracked.entry(uid.to_owned()).or_insert(Tracked {
                node: node_name.to_owned(),
                ip: None,
                task: None,
                terminating: false,
            });
            if tracked.terminating {
                return;
            }
            tracked.terminating = true;
            if let Some(task) = tracked.task.take() {
                task.abort();
            }
            let task = tokio::spawn(Box::pin(terminate(
                self.client.clone(),
                Arc::clone(pod),
                self.options.pod_stop_time,
                Arc::clone(&self.writes),
            )));
            tracked.task = Some(task.abort_handle());
            return;
        }
        if self.tracked.contains_key(uid) {
            return;
        }
        let finished = matches!(pod::phase(pod), "Succeeded" | "Failed");
        let adopted = pod::running_and_ready(pod)
            .then(|| pod::reported_ip(pod))
            .flatten()
            .filter(|ip| node.pool.reserve(*ip));
        let mut tracked = Tracked {
            node: node_name.to_owned(),
            ip: adopted,
            task: None,
            terminating: false,
        };
        if !finished && adopted.is_none() {
            tracked.ip = node.pool.allocate();
            if tracked.ip.is_none() {
                tracing::warn!(pod = %pod_key(pod), node = node_name,
                    "the node's pod CIDR is full; the pod stays ContainerCreating");
            }
            // Boxed: the abort handle kept for the pod keeps the task's allocation after it
            // finished, and a boxed future is freed when it finishes.
            let task = tokio::spawn(Box::pin(lifecycle(
                self.client.clone(),
                Arc::clone(pod),
                node.host_ip,
                tracked.ip,
                Arc::clone(&self.options),
                Arc::clone(&self.writes),
            )));
            tracked.task = Some(task.abort_handle());
        }
        self.tracked.insert(uid.to_owned(), tracked);
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn pods_api(client: &Client, pod: &Pod) -> Api<Pod> {
    Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    )
}

/// Writes the pod's status (merge patch: the lists it holds are replaced whole); false when the
/// pod is gone or the write kept failing.
async fn write_status(api: &Api<Pod>, name: &str, status: Value, writes: &Semaphore) -> bool {
    let Ok(_permit) = writes.acquire().await else {
        return false;
    };
    let patch = Patch::Merge(json!({"status": status}));
    let params = patch_params();
    // Boxed, so that the pod tasks waiting above stay small: the request in flight is most of a
    // task's size, and thousands of tasks may wait at once (a node filling up).
    Box::pin(retrying("pod status", || {
        api.patch_status(name, &params, &patch)
    }))
    .await
    .is_some()
}

/// Pending → (start-up delay) → Running → (readiness delay) → Ready, as the pod's
/// simulated-behaviour annotations ask: then, when the containers exit, what the restart
/// policy says — the terminal phase, or a restart (after a `CrashLoopBackOff` wait) and the
/// same again.
async fn lifecycle(
    client: Client,
    pod: Arc<Pod>,
    host_ip: Ipv4Addr,
    ip: Option<Ipv4Addr>,
    options: Arc<Options>,
    writes: Arc<Semaphore>,
) {
    let api = pods_api(&client, &pod);
    let name = pod.metadata.name.clone().unwrap_or_default();
    let (behaviour, warnings) = Behaviour::parse(&pod);
    for warning in warnings {
        tracing::warn!(pod = %pod_key(&pod), "{warning}");
    }
    let (now, _) = node::now_strings();
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(now.clone(), |t| t.0.to_string());
    let pending = pod::pending_status(&pod, host_ip, &start_time);
    if !write_status(&api, &name, pending, &writes).await {
        return;
    }
    let Some(ip) = ip else {
        return;
    };
    tokio::time::sleep(behaviour.startup_delay.unwrap_or(options.pod_startup_delay)).await;
    let (initialized_at, _) = node::now_strings();
    let readiness = behaviour.ready.then(|| pod::readiness_delay(&pod));
    let policy = RestartPolicy::of(&pod);
    let mut backoff = CrashLoop::new(options.crash_loop_backoff);
    let mut containers = Containers {
        state: State::Running {
            started_at: initialized_at.clone(),
            ready: false,
        },
        restart_count: 0,
        last: None,
    };
    let status = |containers: &Containers| {
        let (now, _) = node::now_strings();
        pod::started_status(
            &pod,
            host_ip,
            ip,
            &start_time,
            &initialized_at,
            containers,
            &now,
        )
    };
    loop {
        // The containers run: not ready until the readiness delay has passed (never when
        // readiness fails), until they exit (never without `exit-after`).
        let (started_at, _) = node::now_strings();
        let started = tokio::time::Instant::now();
        // (An instant beyond the clock's range: never.)
        let exit_at = behaviour
            .exit
            .and_then(|exit| started.checked_add(exit.after));
        let ready_at = readiness.and_then(|delay| started.checked_add(delay));
        let becomes_ready = ready_at.filter(|at| exit_at.is_none_or(|exit| *at < exit));
        containers.state = State::Running {
            started_at: started_at.clone(),
            ready: becomes_ready.is_some_and(|at| at <= started),
        };
        if !write_status(&api, &name, status(&containers), &writes).await {
            return;
        }
        if let Some(at) = becomes_ready.filter(|at| *at > started) {
            tokio::time::sleep_until(at).await;
            containers.state = State::Running {
                started_at: started_at.clone(),
                ready: true,
            };
            if !write_status(&api, &name, status(&containers), &writes).await {
                return;
            }
        }
        let (Some(exit), Some(exit_at)) = (behaviour.exit, exit_at) else {
            return;
        };
        tokio::time::sleep_until(exit_at).await;
        let (finished_at, _) = node::now_strings();
        let ran = started.elapsed();
        let terminated = Terminated {
            exit_code: exit.code,
            started_at,
            finished_at,
        };
        match lifecycle::on_exit(policy, exit.code, ran, &backoff) {
            Decision::Finished { .. } => {
                containers.state = State::Exited(terminated);
                write_status(&api, &name, status(&containers), &writes).await;
                return;
            }
            Decision::Restart { wait } => {
                containers.last = Some(terminated);
                if !wait.is_zero() {
                    containers.state = State::BackOff { backoff: wait };
                    if !write_status(&api, &name, status(&containers), &writes).await {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                }
                backoff.restarted(ran);
                containers.restart_count += 1;
            }
        }
    }
}

/// Graceful deletion: the containers stop (within the grace period, in the simulated stop
/// time), their terminated state is reported, then the pod is removed with grace 0. A pod that
/// already finished is removed at once.
async fn terminate(client: Client, pod: Arc<Pod>, stop_time: Duration, writes: Arc<Semaphore>) {
    let api = pods_api(&client, &pod);
    let name = pod.metadata.name.clone().unwrap_or_default();
    if !matches!(pod::phase(&pod), "Succeeded" | "Failed") {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .map_or(Duration::from_secs(30), |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
        tokio::time::sleep(stop_time.min(grace)).await;
        let started_at = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.to_string());
        let (now, _) = node::now_strings();
        let stopped = pod::stopped_status(&pod, started_at.as_deref().unwrap_or(&now), &now);
        if !write_status(&api, &name, stopped, &writes).await {
            return;
        }
    }
    let Ok(_permit) = writes.acquire().await else {
        return;
    };
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let deleted = Box::pin(retrying("pod deletion", || api.delete(&name, &params))).await;
    if deleted.is_none() {
        tracing::debug!(pod = %pod_key(&pod), "pod already gone");
    }
}
