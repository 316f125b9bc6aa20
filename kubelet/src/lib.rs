//! Ferry's kubelet: one process plays many simulated nodes. Each node registers (or re-uses) its
//! Node, heartbeats through a Lease in `kube-node-lease`, and drives the pods bound to it through
//! a kubelet's lifecycle — Pending/ContainerCreating, Running with an IP from the node's pod CIDR,
//! Ready — and through graceful deletion, writing only through the API (`kube`), as the
//! scheduler and the controller-manager do. Nothing is executed: containers are simulated.
//!
//! - `node`: what a node says about itself (Node object, status, pod CIDR, Lease); pure.
//! - `pod`: the pod statuses of each lifecycle step and pod IP allocation; pure.
//! - `lifecycle`: the simulated behaviour a pod asks for through annotations, and the
//!   kubelet's answer to exiting containers (restart policy, crash-loop back-off); pure.
//! - `run`: the process: registration, one heartbeat task and one status task for all nodes,
//!   one pod informer whose changes drive per-pod lifecycle tasks.
//!
//! # Simulated behaviour
//!
//! Pods choose how their (simulated) containers behave with annotations under
//! `sim.ferry.dev/`; without them a container starts after the kubelet's start-up delay, turns
//! Ready and runs until the pod is deleted.
//!
//! - `sim.ferry.dev/startup-delay: 2s` — this pod's start-up delay (instead of
//!   [`Options::pod_startup_delay`]).
//! - `sim.ferry.dev/exit-after: 5s` and `sim.ferry.dev/exit-code: "1"` — the containers exit
//!   with that code (default 0) each time they have run that long.
//! - `sim.ferry.dev/readiness: "false"` — readiness never succeeds: Running, not Ready.
//!
//! Durations are Go's (`500ms`, `1m30s`). A bad value is ignored as if absent, with a logged
//! warning. On an exit the kubelet follows `restartPolicy`: `Never` ends the pod `Succeeded`
//! (exit 0, containers terminated `Completed`) or `Failed` (`Error`); `OnFailure` restarts
//! only after a non-zero exit; `Always` (default) always restarts — `restartCount` grows,
//! `lastState.terminated` holds the exit, and between restarts the containers wait in
//! `CrashLoopBackOff` (`back-off 10s restarting failed container=…`) with Ready and
//! ContainersReady False. The first restart is immediate; the back-off then starts at
//! [`Options::crash_loop_backoff`] (10 s) and doubles up to 5 min; a container that ran more
//! than 10 min starts over. See [`lifecycle`].

use std::collections::BTreeMap;
use std::time::Duration;

pub mod lifecycle;
pub mod node;
pub mod pod;
mod run;

pub use run::run;

/// A taint to register with (`--register-with-taints key=value:Effect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The nodes this process plays (their index in this list picks their default pod CIDR and
    /// address).
    pub node_names: Vec<String>,
    /// The index of the first node: node `i` of this process is the cluster's node
    /// `first_index + i`, which picks its default pod CIDR (`10.244.<index>.0/24`) and
    /// InternalIP, so that several kubelet processes in one cluster never overlap.
    pub first_index: usize,
    /// Capacity (and allocatable): cpu and memory as quantities, pods as a count.
    pub cpu: String,
    pub memory: String,
    pub max_pods: u32,
    /// Extra node labels (`--node-labels`), after the well-known ones.
    pub labels: BTreeMap<String, String>,
    /// `topology.kubernetes.io/zone`, when given.
    pub zone: Option<String>,
    /// Taints a newly registered Node gets.
    pub taints: Vec<Taint>,
    /// How often each node's Lease is renewed.
    pub heartbeat_interval: Duration,
    /// How often the full node status is written when nothing changed.
    pub node_status_update_frequency: Duration,
    /// How long a pod's containers take to start (0: at once).
    pub pod_startup_delay: Duration,
    /// How long simulated containers take to stop on deletion (at most the grace period).
    pub pod_stop_time: Duration,
    /// The first crash-loop back-off (the kubelet's 10 s); it doubles up to 5 min.
    pub crash_loop_backoff: Duration,
    /// API writes in flight at once (leases, statuses, deletions).
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            node_names: vec!["ferry-node".to_owned()],
            first_index: 0,
            cpu: "4".to_owned(),
            memory: "32Gi".to_owned(),
            max_pods: 110,
            labels: BTreeMap::new(),
            zone: None,
            taints: Vec::new(),
            heartbeat_interval: Duration::from_secs(10),
            node_status_update_frequency: Duration::from_secs(300),
            pod_startup_delay: Duration::from_millis(500),
            pod_stop_time: Duration::from_millis(100),
            crash_loop_backoff: Duration::from_secs(10),
            concurrency: 64,
        }
    }
}

impl Options {
    /// `prefix-0` .. `prefix-(n-1)`.
    pub fn numbered_nodes(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i}")).collect()
    }

    /// Checks what the flags cannot have caught.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Options(what));
        if self.node_names.is_empty() {
            return bad("no nodes to run".to_owned());
        }
        let mut seen = std::collections::HashSet::new();
        for name in &self.node_names {
            if let Some(problem) = api_types::validation::is_dns1123_subdomain(name).first() {
                return bad(format!("node name {name:?}: {problem}"));
            }
            if !seen.insert(name) {
                return bad(format!("node {name:?} is named twice"));
            }
        }
        for (key, value) in &self.labels {
            let problems = [
                api_types::validation::is_qualified_name(key),
                api_types::validation::is_valid_label_value(value),
            ];
            if let Some(problem) = problems.iter().flatten().next() {
                return bad(format!("node label {key}={value}: {problem}"));
            }
        }
        for (what, value) in [("cpu", &self.cpu), ("memory", &self.memory)] {
            if api_types::quantity::parse_quantity(value).is_err() {
                return bad(format!("{what} {value:?} is not a quantity"));
            }
        }
        if self.heartbeat_interval.is_zero() || self.node_status_update_frequency.is_zero() {
            return bad("the heartbeat and status intervals must be more than 0".to_owned());
        }
        if self.crash_loop_backoff.is_zero() {
            return bad("the crash-loop back-off must be more than 0".to_owned());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("cannot register node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
}

#[cfg(test)]
mod tests {
    /// `run` can be spawned: its future is `Send` and `'static`.
    #[allow(dead_code)]
    fn run_is_spawnable(client: kube::Client) {
        drop(tokio::spawn(super::run(client, super::Options::default())));
    }
}
