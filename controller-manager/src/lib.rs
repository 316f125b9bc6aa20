//! Ferry's controller-manager: the controllers that drive the cluster toward its declared state,
//! reaching the apiserver only through the `kube` client, as kube-controller-manager does.
//!
//! - [`runtime`] (its own crate, shared with the scheduler): shared informers, work queues with
//!   client-go's backoff, the worker loop, events, leader election on a Lease
//!   (`kube-system/ferry-controller-manager`).
//! - [`replicaset`]: the ReplicaSet controller.
//! - [`deployment`]: the Deployment controller.
//! - [`garbagecollector`]: deletes what lost its owners; foreground and orphan deletion.
//! - [`namespace`]: empties Terminating namespaces and lets them go.
//! - [`endpoints`]: an Endpoints object per Service with a selector.
//! - [`nodelifecycle`]: marks silent nodes Unknown, taints unhealthy nodes and evicts their pods
//!   (taint-based eviction), rate-limited per zone.
//! - [`nodeipam`]: a pod CIDR per node from `--cluster-cidr`.
//!
//! Built so far: the runtime (with an event recorder), leader election, the ReplicaSet,
//! Deployment, namespace, endpoints, node-lifecycle and node IPAM controllers and the garbage
//! collector.

pub mod deployment;
pub mod endpoints;
pub mod garbagecollector;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod pods;
pub mod replicaset;

pub use runtime::{self, leader};

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::Client;
use runtime::pod::Pod;

/// The controllers this build has, by the names `--controllers` takes.
pub const CONTROLLERS: &[&str] = &[
    "deployment",
    "endpoint",
    "garbagecollector",
    "namespace",
    "nodeipam",
    "nodelifecycle",
    "replicaset",
];

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Take the `kube-system/ferry-controller-manager` Lease before acting.
    pub leader_elect: bool,
    /// This instance's name in the Lease (`hostname_uuid` in Kubernetes).
    pub identity: String,
    pub timings: leader::Timings,
    /// The controllers to run (names from [`CONTROLLERS`]).
    pub controllers: Vec<String>,
    /// Workers of the ReplicaSet controller (`--concurrent-replicaset-syncs`, 5 by default).
    pub replicaset_workers: usize,
    /// Workers of the Deployment controller (`--concurrent-deployment-syncs`, 5 by default).
    pub deployment_workers: usize,
    /// The node-lifecycle controller's timings and rates.
    pub node_lifecycle: nodelifecycle::Options,
    /// `--allocate-node-cidrs`: the node IPAM's range (`--cluster-cidr`) and block size
    /// (`--node-cidr-mask-size`); `None` leaves podCIDRs alone.
    pub allocate_node_cidrs: Option<(String, u8)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            leader_elect: false,
            identity: format!("ferry-controller-manager-{}", rand::random::<u32>()),
            timings: leader::Timings::default(),
            controllers: CONTROLLERS.iter().map(|c| (*c).to_owned()).collect(),
            replicaset_workers: 5,
            deployment_workers: 5,
            node_lifecycle: nodelifecycle::Options::default(),
            allocate_node_cidrs: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown controller {0:?} (this build has: {list})", list = CONTROLLERS.join(", "))]
    UnknownController(String),
    #[error("--cluster-cidr: {0}")]
    Cidr(#[from] nodeipam::CidrError),
    #[error("lost the leader lease; stopping")]
    LostLease,
}

/// The Lease the controller-manager instances compete for.
pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_NAME: &str = "ferry-controller-manager";

/// Runs the controllers (after winning the Lease, with `leader_elect`) until the process ends;
/// returns [`Error::LostLease`] at once if leadership is lost.
pub async fn run(client: Client, options: Options) -> Result<(), Error> {
    for name in &options.controllers {
        if !CONTROLLERS.contains(&name.as_str()) {
            return Err(Error::UnknownController(name.clone()));
        }
    }
    let allocator = options
        .allocate_node_cidrs
        .as_ref()
        .map(|(cidr, mask)| nodeipam::Allocator::new(cidr, *mask))
        .transpose()?;
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
    let controllers = start(client, &options, allocator);
    match &mut elected {
        Some(elected) => {
            tokio::select! {
                () = controllers => Ok(()),
                () = elected.lost() => Err(Error::LostLease),
            }
        }
        None => {
            controllers.await;
            Ok(())
        }
    }
}

/// The selected controllers, over shared informers (started once, for whoever needs them).
async fn start(client: Client, options: &Options, allocator: Option<nodeipam::Allocator>) {
    let wants = |name: &str| options.controllers.iter().any(|c| c == name);
    let mut tasks = tokio::task::JoinSet::new();
    let replicasets = runtime::Informer::<ReplicaSet>::start(client.clone());
    let pods = runtime::Informer::<Pod>::start_trimmed(client.clone(), pods::trim);
    if wants("replicaset") {
        tasks.spawn(replicaset::Controller::run(
            client.clone(),
            Arc::clone(&replicasets),
            Arc::clone(&pods),
            options.replicaset_workers,
        ));
    }
    if wants("deployment") {
        let deployments = runtime::Informer::<Deployment>::start(client.clone());
        tasks.spawn(deployment::Controller::run(
            client.clone(),
            deployments,
            Arc::clone(&replicasets),
            Arc::clone(&pods),
            options.deployment_workers,
        ));
    }
    if wants("endpoint") {
        use k8s_openapi::api::core::v1::{Endpoints, Service};
        tasks.spawn(endpoints::Controller::run(
            client.clone(),
            runtime::Informer::<Service>::start(client.clone()),
            Arc::clone(&pods),
            runtime::Informer::<Endpoints>::start(client.clone()),
            5,
        ));
    }
    if wants("namespace") {
        let namespaces =
            runtime::Informer::<k8s_openapi::api::core::v1::Namespace>::start(client.clone());
        tasks.spawn(namespace::Controller::run(client.clone(), namespaces, 5));
    }
    let wants_ipam = wants("nodeipam") && allocator.is_some();
    let nodes = (wants("nodelifecycle") || wants_ipam)
        .then(|| runtime::Informer::<k8s_openapi::api::core::v1::Node>::start(client.clone()));
    if let Some(nodes) = &nodes {
        if wants("nodelifecycle") {
            use k8s_openapi::api::coordination::v1::Lease;
            tasks.spawn(nodelifecycle::Controller::run(
                client.clone(),
                Arc::clone(nodes),
                runtime::Informer::<Lease>::start(client.clone()),
                Arc::clone(&pods),
                options.node_lifecycle,
            ));
        }
        if let Some(allocator) = allocator.filter(|_| wants_ipam) {
            tasks.spawn(nodeipam::run(client.clone(), Arc::clone(nodes), allocator));
        }
    }
    if wants("garbagecollector") {
        tasks.spawn(garbagecollector::Collector::run(
            client.clone(),
            Arc::clone(&pods),
            20,
        ));
    }
    while tasks.join_next().await.is_some() {}
}
