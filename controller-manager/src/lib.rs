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
//!
//! Built so far: the runtime (with an event recorder), leader election, the ReplicaSet,
//! Deployment, namespace and endpoints controllers and the garbage collector. Not built yet (see
//! ARCHITECTURE.md): the node-lifecycle controller.

pub mod deployment;
pub mod endpoints;
pub mod garbagecollector;
pub mod namespace;
pub mod pods;
pub mod replicaset;

pub use runtime::{self, leader};

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;

/// The controllers this build has, by the names `--controllers` takes.
pub const CONTROLLERS: &[&str] = &[
    "deployment",
    "endpoint",
    "garbagecollector",
    "namespace",
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
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown controller {0:?} (this build has: {list})", list = CONTROLLERS.join(", "))]
    UnknownController(String),
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
    let controllers = start(client, &options);
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
async fn start(client: Client, options: &Options) {
    let wants = |name: &str| options.controllers.iter().any(|c| c == name);
    let mut tasks = tokio::task::JoinSet::new();
    let replicasets = runtime::Informer::<ReplicaSet>::start(client.clone());
    let pods = runtime::Informer::<Pod>::start(client.clone());
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
    if wants("garbagecollector") {
        tasks.spawn(garbagecollector::Collector::run(client.clone(), 20));
    }
    while tasks.join_next().await.is_some() {}
}
