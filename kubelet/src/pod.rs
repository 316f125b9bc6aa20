//! A simulated pod's life as the kubelet reports it: the statuses it writes through
//! `pods/status` at each step, and pod IP allocation from the node's CIDR. Pure functions.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use crate::lifecycle::{Containers, State, Terminated, backoff_message};
use crate::node::{Cidr, RUNTIME_SCHEME};

/// The pod IPs of one node: its CIDR minus the network address, the gateway (`.1`, as the
/// bridge CNI plugins keep it) and the broadcast address. Addresses are handed out round-robin,
/// so a freed one is reused only after the others.
#[derive(Debug, Clone)]
pub struct IpPool {
    cidr: Cidr,
    used: BTreeSet<u32>,
    next: u32,
}

impl IpPool {
    pub fn new(cidr: Cidr) -> IpPool {
        IpPool {
            cidr,
            used: BTreeSet::new(),
            next: 2,
        }
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// The usable offsets: 2 ..= size-2.
    fn last(&self) -> u32 {
        u32::try_from(self.cidr.size().saturating_sub(2)).unwrap_or(u32::MAX - 1)
    }

    /// A free address, or `None` when the CIDR is full.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let (first, last) = (2, self.last());
        if last < first {
            return None;
        }
        let count = u64::from(last - first) + 1;
        let mut offset = self.next.clamp(first, last);
        for _ in 0..count.min(u64::from(u32::MAX)) {
            if !self.used.contains(&offset) {
                self.used.insert(offset);
                self.next = if offset >= last { first } else { offset + 1 };
                return Some(self.cidr.nth(offset));
            }
            offset = if offset >= last { first } else { offset + 1 };
        }
        None
    }

    /// Marks `ip` taken (a pod already running when the kubelet starts); false when it is not
    /// an address of this pool.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        if !self.cidr.contains(ip) {
            return false;
        }
        let offset = u32::from(ip).wrapping_sub(u32::from(self.cidr.base));
        if offset < 2 || offset > self.last() {
            return false;
        }
        self.used.insert(offset)
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        if self.cidr.contains(ip) {
            self.used
                .remove(&u32::from(ip).wrapping_sub(u32::from(self.cidr.base)));
        }
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

fn containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
}

fn init_containers(pod: &Pod) -> &[Container] {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[])
}

/// How long after its containers start the pod turns Ready: the longest
/// `readinessProbe.initialDelaySeconds` of its containers (the probe's first success).
pub fn readiness_delay(pod: &Pod) -> Duration {
    let seconds = containers(pod)
        .iter()
        .filter_map(|c| c.readiness_probe.as_ref()?.initial_delay_seconds)
        .max()
        .unwrap_or(0);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

fn condition(type_: &str, status: bool, reason: Option<&str>, at: &str) -> Value {
    let mut condition = json!({"type": type_, "status": if status { "True" } else { "False" },
                               "lastProbeTime": null, "lastTransitionTime": at});
    if let Some(reason) = reason {
        condition["reason"] = json!(reason);
    }
    condition
}

fn image(container: &Container) -> String {
    container.image.clone().unwrap_or_default()
}

fn container_id(pod: &Pod, container: &Container) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    format!("{RUNTIME_SCHEME}://{uid}-{}", container.name)
}

fn waiting(container: &Container, reason: &str) -> Value {
    json!({"name": container.name, "image": image(container), "imageID": "",
           "ready": false, "started": false, "restartCount": 0,
           "state": {"waiting": {"reason": reason}}})
}

fn terminated(pod: &Pod, container: &Container, started: &str, finished: &str) -> Value {
    let image = image(container);
    json!({"name": container.name, "image": image,
           "imageID": format!("{RUNTIME_SCHEME}://{image}"),
           "containerID": container_id(pod, container),
           "ready": false, "started": false, "restartCount": 0,
           "state": {"terminated": {"exitCode": 0, "reason": "Completed",
               "startedAt": started, "finishedAt": finished,
               "containerID": container_id(pod, container)}}})
}

/// The status on first sight: Pending, scheduled, containers being created (init containers,
/// if any, first).
pub fn pending_status(pod: &Pod, host_ip: Ipv4Addr, now: &str) -> Value {
    let has_init = !init_containers(pod).is_empty();
    let main_reason = if has_init {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    let mut status = json!({
        "phase": "Pending",
        "hostIP": host_ip.to_string(),
        "hostIPs": [{"ip": host_ip.to_string()}],
        "startTime": now,
        "qosClass": qos_class(pod),
        "conditions": [
            condition("PodReadyToStartContainers", false, None, now),
            condition("Initialized", !has_init, (has_init).then_some("ContainersNotInitialized"), now),
            condition("Ready", false, Some("ContainersNotReady"), now),
            condition("ContainersReady", false, Some("ContainersNotReady"), now),
            condition("PodScheduled", true, None, now),
        ],
        "containerStatuses": containers(pod).iter().map(|c| waiting(c, main_reason)).collect::<Vec<_>>(),
    });
    if has_init {
        status["initContainerStatuses"] = init_containers(pod)
            .iter()
            .map(|c| waiting(c, "PodInitializing"))
            .collect();
    }
    status
}

/// The status once the containers run (init containers completed): Running with its IP;
/// `ready` once the readiness delay has passed.
pub fn running_status(
    pod: &Pod,
    host_ip: Ipv4Addr,
    pod_ip: Ipv4Addr,
    start_time: &str,
    started_at: &str,
    ready: bool,
    now: &str,
) -> Value {
    let containers = Containers {
        state: State::Running {
            started_at: started_at.to_owned(),
            ready,
        },
        restart_count: 0,
        last: None,
    };
    started_status(
        pod,
        host_ip,
        pod_ip,
        start_time,
        started_at,
        &containers,
        now,
    )
}

/// The status once the pod's sandbox and init containers are done (at `initialized_at`), its
/// containers in `containers`' state: Running (ready or not, or waiting in
/// `CrashLoopBackOff`), or finished — Succeeded when they exited 0, Failed otherwise.
pub fn started_status(
    pod: &Pod,
    host_ip: Ipv4Addr,
    pod_ip: Ipv4Addr,
    start_time: &str,
    initialized_at: &str,
    containers: &Containers,
    now: &str,
) -> Value {
    let ip = pod_ip.to_string();
    let ready = matches!(containers.state, State::Running { ready: true, .. });
    let (phase, not_ready) = match &containers.state {
        State::Exited(exit) if exit.exit_code == 0 => ("Succeeded", Some("PodCompleted")),
        State::Exited(_) => ("Failed", Some("PodCompleted")),
        _ => ("Running", (!ready).then_some("ContainersNotReady")),
    };
    let names: Vec<&str> = self::containers(pod)
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let unready = |type_: &str| {
        let mut condition = condition(type_, ready, not_ready, now);
        if not_ready == Some("ContainersNotReady") {
            condition["message"] = json!(format!(
                "containers with unready status: [{}]",
                names.join(" ")
            ));
        }
        condition
    };
    let finished = matches!(containers.state, State::Exited(_));
    let mut status = json!({
        "phase": phase,
        "hostIP": host_ip.to_string(),
        "hostIPs": [{"ip": host_ip.to_string()}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start_time,
        "qosClass": qos_class(pod),
        "conditions": [
            condition("PodReadyToStartContainers", !finished, None,
                if finished { now } else { initialized_at }),
            condition("Initialized", true, None, initialized_at),
            unready("Ready"),
            unready("ContainersReady"),
            condition("PodScheduled", true, None, start_time),
        ],
        "containerStatuses": self::containers(pod).iter()
            .map(|c| container_status(pod, c, containers)).collect::<Vec<_>>(),
    });
    if !init_containers(pod).is_empty() {
        status["initContainerStatuses"] = init_containers(pod)
            .iter()
            .map(|c| terminated(pod, c, start_time, initialized_at))
            .collect();
    }
    status
}

fn terminated_state(pod: &Pod, container: &Container, exit: &Terminated) -> Value {
    json!({"terminated": {"exitCode": exit.exit_code, "reason": exit.reason(),
        "startedAt": exit.started_at, "finishedAt": exit.finished_at,
        "containerID": container_id(pod, container)}})
}

fn container_status(pod: &Pod, container: &Container, containers: &Containers) -> Value {
    let image = image(container);
    let (state, ready, started) = match &containers.state {
        State::Running { started_at, ready } => {
            (json!({"running": {"startedAt": started_at}}), *ready, true)
        }
        State::BackOff { backoff } => (
            json!({"waiting": {"reason": "CrashLoopBackOff",
                "message": backoff_message(*backoff, &container.name, pod)}}),
            false,
            false,
        ),
        State::Exited(exit) => (terminated_state(pod, container, exit), false, false),
    };
    let mut status = json!({"name": container.name, "image": image,
        "imageID": format!("{RUNTIME_SCHEME}://{image}"),
        "containerID": container_id(pod, container),
        "ready": ready, "started": started, "restartCount": containers.restart_count,
        "state": state});
    if let Some(last) = &containers.last {
        status["lastState"] = terminated_state(pod, container, last);
    }
    status
}

/// The status once the containers stopped on deletion (they exit 0 on SIGTERM): the terminal
/// phase the kubelet writes before it removes a deleted pod.
pub fn stopped_status(pod: &Pod, started_at: &str, now: &str) -> Value {
    json!({
        "phase": "Succeeded",
        "conditions": [
            condition("PodReadyToStartContainers", false, None, now),
            condition("Initialized", true, None, started_at),
            condition("Ready", false, Some("PodCompleted"), now),
            condition("ContainersReady", false, Some("PodCompleted"), now),
            condition("PodScheduled", true, None, started_at),
        ],
        "containerStatuses": containers(pod).iter()
            .map(|c| terminated(pod, c, started_at, now)).collect::<Vec<_>>(),
    })
}

/// Kubernetes' QoS class: Guaranteed when every container's requests equal its limits for cpu
/// and memory, BestEffort when nothing is requested or limited, Burstable otherwise.
pub fn qos_class(pod: &Pod) -> &'static str {
    let all: Vec<&Container> = containers(pod).iter().chain(init_containers(pod)).collect();
    let mut any = false;
    let mut guaranteed = true;
    for container in all {
        let resources = container.resources.clone().unwrap_or_default();
        let requests = resources.requests.unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        for name in ["cpu", "memory"] {
            let limit = limits.get(name);
            let request = requests.get(name).or(limit);
            if request.is_some() || limit.is_some() {
                any = true;
            }
            let equal = match (request, limit) {
                (Some(r), Some(l)) => match (
                    api_types::quantity::parse_quantity(&r.0),
                    api_types::quantity::parse_quantity(&l.0),
                ) {
                    (Ok(r), Ok(l)) => r == l,
                    _ => false,
                },
                _ => false,
            };
            guaranteed &= equal;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// The pod's uid ("" when it has none).
pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// The phase the pod's status reports.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pod IP a previous run of the kubelet gave a running pod, if any.
pub fn reported_ip(pod: &Pod) -> Option<Ipv4Addr> {
    pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

/// Whether the pod is reported running and ready already (adopted as is after a restart).
pub fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running"
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default",
            "uid": "u-1"}, "spec": spec}))
        .expect("a Pod")
    }

    #[test]
    fn ip_pool_allocates_uniquely_and_reuses_late() {
        let mut pool = IpPool::new(Cidr::parse("10.244.1.0/29").expect("cidr"));
        // .2 to .6: five addresses.
        let ips: Vec<_> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(
            ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "10.244.1.2",
                "10.244.1.3",
                "10.244.1.4",
                "10.244.1.5",
                "10.244.1.6"
            ]
        );
        assert_eq!(pool.allocate(), None);
        pool.release(Ipv4Addr::new(10, 244, 1, 4));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(10, 244, 1, 4)));
        pool.release(Ipv4Addr::new(10, 244, 1, 2));
        pool.release(Ipv4Addr::new(10, 244, 1, 5));
        // Round-robin: the next free after the last handed out.
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(10, 244, 1, 5)));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(10, 244, 1, 2)));
        assert_eq!(pool.in_use(), 5);
    }

    #[test]
    fn ip_pool_reserve() {
        let mut pool = IpPool::new(Cidr::parse("10.244.0.0/24").expect("cidr"));
        assert!(pool.reserve(Ipv4Addr::new(10, 244, 0, 2)));
        assert!(!pool.reserve(Ipv4Addr::new(10, 244, 0, 2)));
        assert!(!pool.reserve(Ipv4Addr::new(10, 244, 1, 2)));
        assert!(!pool.reserve(Ipv4Addr::new(10, 244, 0, 255)));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(10, 244, 0, 3)));
        // A /31 or /32 has no pod addresses.
        assert_eq!(
            IpPool::new(Cidr::parse("10.0.0.0/32").expect("cidr")).allocate(),
            None
        );
    }

    #[test]
    fn statuses_decode_and_say_what_the_kubelet_says() {
        let pod = pod(json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "web", "image": "nginx:1.27",
                "readinessProbe": {"initialDelaySeconds": 3, "httpGet": {"port": 80}},
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}}}],
        }));
        assert_eq!(readiness_delay(&pod), Duration::from_secs(3));
        assert_eq!(qos_class(&pod), "Burstable"); // the init container asks nothing
        let host = Ipv4Addr::new(172, 20, 0, 2);
        let now = "2026-01-01T00:00:00Z";
        let pending = pending_status(&pod, host, now);
        assert_eq!(pending["phase"], "Pending");
        assert_eq!(pending["hostIP"], "172.20.0.2");
        assert_eq!(
            pending["containerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
        assert_eq!(
            pending["initContainerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
        let running = running_status(
            &pod,
            host,
            Ipv4Addr::new(10, 244, 0, 2),
            now,
            now,
            true,
            now,
        );
        assert_eq!(running["phase"], "Running");
        assert_eq!(running["podIPs"], json!([{"ip": "10.244.0.2"}]));
        let web = &running["containerStatuses"][0];
        assert_eq!(web["ready"], true);
        assert_eq!(web["started"], true);
        assert_eq!(web["restartCount"], 0);
        assert_eq!(web["imageID"], "ferry-sim://nginx:1.27");
        assert_eq!(web["containerID"], "ferry-sim://u-1-web");
        assert_eq!(
            running["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        for status in [
            pending,
            running,
            stopped_status(&pod, now, now),
            running_status(
                &pod,
                host,
                Ipv4Addr::new(10, 244, 0, 2),
                now,
                now,
                false,
                now,
            ),
        ] {
            let decoded: k8s_openapi::api::core::v1::PodStatus =
                serde_json::from_value(status).expect("a valid PodStatus");
            assert!(decoded.conditions.is_some());
        }
    }

    /// A crash loop's waiting state, the exits recorded in `lastState`, and the terminal
    /// phases: what `kubectl get pods` turns into CrashLoopBackOff, Completed and Error.
    #[test]
    fn crash_loop_and_terminal_statuses() {
        let pod = pod(json!({"containers": [{"name": "app", "image": "busybox"},
                                            {"name": "side", "image": "busybox"}]}));
        let host = Ipv4Addr::new(172, 20, 0, 2);
        let ip = Ipv4Addr::new(10, 244, 0, 2);
        let now = "2026-01-01T00:00:00Z";
        let exit = |exit_code| Terminated {
            exit_code,
            started_at: "2026-01-01T00:00:00Z".to_owned(),
            finished_at: "2026-01-01T00:00:01Z".to_owned(),
        };
        let backing_off = Containers {
            state: State::BackOff {
                backoff: Duration::from_secs(20),
            },
            restart_count: 2,
            last: Some(exit(1)),
        };
        let status = started_status(&pod, host, ip, now, now, &backing_off, now);
        assert_eq!(status["phase"], "Running");
        let app = &status["containerStatuses"][0];
        assert_eq!(app["restartCount"], 2);
        assert_eq!(app["ready"], false);
        assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(
            app["state"]["waiting"]["message"],
            "back-off 20s restarting failed container=app pod=p_default(u-1)"
        );
        assert_eq!(app["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(app["lastState"]["terminated"]["reason"], "Error");
        for type_ in [2, 3] {
            let condition = &status["conditions"][type_];
            assert_eq!(condition["status"], "False");
            assert_eq!(condition["reason"], "ContainersNotReady");
            assert_eq!(
                condition["message"],
                "containers with unready status: [app side]"
            );
        }
        let restarted = Containers {
            state: State::Running {
                started_at: now.to_owned(),
                ready: true,
            },
            restart_count: 3,
            last: Some(exit(1)),
        };
        let running = started_status(&pod, host, ip, now, now, &restarted, now);
        assert_eq!(
            running["containerStatuses"][1]["state"]["running"]["startedAt"],
            now
        );
        assert_eq!(running["conditions"][2]["status"], "True");
        let mut statuses = vec![status, running];
        for (code, phase, reason) in [(0, "Succeeded", "Completed"), (3, "Failed", "Error")] {
            let done = Containers {
                state: State::Exited(exit(code)),
                restart_count: 0,
                last: None,
            };
            let status = started_status(&pod, host, ip, now, now, &done, now);
            assert_eq!(status["phase"], phase);
            let terminated = &status["containerStatuses"][0]["state"]["terminated"];
            assert_eq!(terminated["exitCode"], code);
            assert_eq!(terminated["reason"], reason);
            assert_eq!(status["conditions"][2]["reason"], "PodCompleted");
            statuses.push(status);
        }
        for status in statuses {
            let _: k8s_openapi::api::core::v1::PodStatus =
                serde_json::from_value(status).expect("a valid PodStatus");
        }
    }

    #[test]
    fn qos_classes() {
        let best_effort = pod(json!({"containers": [{"name": "c", "image": "i"}]}));
        assert_eq!(qos_class(&best_effort), "BestEffort");
        let guaranteed = pod(json!({"containers": [{"name": "c", "image": "i",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}));
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        assert_eq!(readiness_delay(&guaranteed), Duration::ZERO);
    }
}
