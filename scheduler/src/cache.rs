//! The scheduler's view of the cluster: one [`NodeInfo`] per node with the pods counted on it —
//! pods the watch shows bound there, and pods the scheduler has *assumed* there: chosen a node
//! for, binding not yet confirmed. An assumed pod counts from the moment its node is chosen, so
//! pods scheduled faster than their bindings come back never over-commit a node. The watch
//! showing the pod bound confirms the assumption; a failed binding forgets it.
//!
//! Pods bound to a node the cache does not know (yet, or any more) are kept aside and counted
//! when that node appears. Succeeded and Failed pods hold nothing.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use runtime::pod::Pod;

use crate::framework::{NodeInfo, uid_of};

#[derive(Debug, Clone)]
struct Placement {
    node: String,
    /// Assumed by this scheduler and not yet seen bound.
    assumed: bool,
}

/// Nodes and the pods on them.
#[derive(Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Where each counted pod is, by uid.
    placements: HashMap<String, Placement>,
    /// Bound pods of nodes the cache does not hold, by node name.
    orphans: HashMap<String, Vec<Arc<Pod>>>,
}

/// What the scheduler's pod informer keeps of each pod beyond [`Pod`]'s fields: the scheduler
/// reads no condition but PodScheduled, no container status and no pod IP.
pub fn trim(pod: &mut Pod) {
    if let Some(status) = pod.status.as_mut() {
        if let Some(conditions) = status.conditions.as_mut() {
            conditions.retain(|c| c.type_ == "PodScheduled");
            conditions.shrink_to_fit();
        }
        status.container_statuses = None;
        status.pod_ip = None;
        status.pod_ips = None;
    }
}

/// Whether a bound pod holds resources on its node.
pub fn holds_resources(pod: &Pod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The node a pod is bound to, if any.
pub fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Every node, in a stable order (a node keeps its position until one is removed).
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        self.index.get(name).map(|&i| &mut self.nodes[i])
    }

    /// A Node appeared or changed; returns the previous version, if any.
    pub fn apply_node(&mut self, node: Arc<Node>) -> Option<Arc<Node>> {
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Some(&i) = self.index.get(&name) {
            let previous = Arc::clone(&self.nodes[i].node);
            self.nodes[i].set_node(node);
            return Some(previous);
        }
        let mut info = NodeInfo::empty(node);
        for pod in self.orphans.remove(&name).unwrap_or_default() {
            info.add_pod(pod);
        }
        self.index.insert(name, self.nodes.len());
        self.nodes.push(info);
        None
    }

    /// A Node went away; its pods are kept aside in case it comes back.
    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        let info = self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name().to_owned(), i);
        }
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_owned(), info.pods);
        }
    }

    fn count(&mut self, pod: Arc<Pod>, node: &str, assumed: bool) {
        self.placements.insert(
            uid_of(&pod).to_owned(),
            Placement {
                node: node.to_owned(),
                assumed,
            },
        );
        match self.index.get(node) {
            Some(&i) => self.nodes[i].add_pod(pod),
            None => self.orphans.entry(node.to_owned()).or_default().push(pod),
        }
    }

    fn uncount(&mut self, uid: &str) -> Option<Placement> {
        let placement = self.placements.remove(uid)?;
        match self.index.get(&placement.node) {
            Some(&i) => {
                self.nodes[i].remove_pod(uid);
            }
            None => {
                if let Some(pods) = self.orphans.get_mut(&placement.node) {
                    pods.retain(|p| uid_of(p) != uid);
                }
            }
        }
        Some(placement)
    }

    /// A pod as the watch shows it. A bound pod that holds resources is counted on its node
    /// (confirming an assumption); anything else is not counted. Returns whether it was counted
    /// before (so the caller knows an assigned pod was added or changed).
    pub fn apply_pod(&mut self, pod: Arc<Pod>) -> bool {
        let uid = uid_of(&pod).to_owned();
        let was = self.uncount(&uid);
        match node_name(&pod).map(str::to_owned) {
            Some(node) if holds_resources(&pod) => {
                self.count(pod, &node, false);
            }
            // Not bound (yet): an assumption stands until the binding answers.
            None => {
                if let Some(placement) = was.as_ref().filter(|p| p.assumed) {
                    let node = placement.node.clone();
                    self.count(pod, &node, true);
                }
            }
            Some(_) => {}
        }
        was.is_some()
    }

    /// A pod was deleted.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        self.uncount(uid).is_some()
    }

    /// The scheduler chose `node` for `pod`: count it there until the binding is confirmed.
    pub fn assume(&mut self, pod: &Arc<Pod>, node: &str) {
        let uid = uid_of(pod).to_owned();
        self.uncount(&uid);
        self.count(Arc::clone(pod), node, true);
    }

    /// The binding failed: the assumption goes.
    pub fn forget(&mut self, uid: &str) {
        if self.placements.get(uid).is_some_and(|p| p.assumed) {
            self.uncount(uid);
        }
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.placements.get(uid).is_some_and(|p| p.assumed)
    }

    /// Drops every counted pod the watch no longer shows (after a relist), keeping assumptions
    /// still in flight. `current` holds the uids the watch shows.
    pub fn retain_pods(&mut self, current: &std::collections::HashSet<String>) {
        let gone: Vec<String> = self
            .placements
            .iter()
            .filter(|(uid, p)| !p.assumed && !current.contains(*uid))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in gone {
            self.uncount(&uid);
        }
    }

    /// Drops every node not in `current` (after a relist).
    pub fn retain_nodes(&mut self, current: &std::collections::HashSet<String>) {
        let gone: Vec<String> = self
            .index
            .keys()
            .filter(|n| !current.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            self.remove_node(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trimmed_pod_keeps_what_scheduling_reads() {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": "n"},
            "status": {"phase": "Running", "nominatedNodeName": "m", "podIP": "10.0.0.1",
                "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0}]}
        }))
        .unwrap();
        trim(&mut p);
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.nominated_node_name.as_deref(), Some("m"));
        let conditions = status.conditions.as_ref().unwrap();
        assert_eq!(
            (conditions.len(), conditions[0].type_.as_str()),
            (1, "PodScheduled")
        );
        assert!(status.container_statuses.is_none());
        assert!(holds_resources(&p));
        assert_eq!(node_name(&p), Some("n"));
    }
    use crate::plugins::filter;
    use serde_json::json;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"}}
            }))
            .unwrap(),
        )
    }

    fn pod(uid: &str, cpu: &str, node: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": uid, "namespace": "default", "uid": uid},
            "spec": {"nodeName": node, "containers": [
                {"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap()
    }

    /// Schedules `pod` on the first node that fits, assuming it there, as the scheduling cycle
    /// does, without waiting for any binding.
    fn schedule(cache: &mut Cache, pod: &Pod) -> Option<String> {
        let name = cache
            .nodes()
            .iter()
            .find(|n| filter(pod, n).is_empty())
            .map(|n| n.name().to_owned())?;
        cache.assume(&Arc::new(pod.clone()), &name);
        Some(name)
    }

    #[test]
    fn assumed_pods_count_so_no_node_is_over_committed_before_binds_confirm() {
        let mut cache = Cache::new();
        cache.apply_node(node("a"));
        cache.apply_node(node("b"));
        // Ten 1-cpu pods scheduled back to back, no binding confirmed: 4 + 4 fit, 2 do not.
        let placed: Vec<Option<String>> = (0..10)
            .map(|i| schedule(&mut cache, &pod(&format!("p{i}"), "1", None)))
            .collect();
        assert_eq!(placed.iter().filter(|p| p.is_some()).count(), 8);
        for n in cache.nodes() {
            assert_eq!(n.requested.milli_cpu, 4000, "{}", n.name());
        }
        // First fit: p0–p3 on a, p4–p7 on b.
        assert_eq!(placed[0].as_deref(), Some("a"));
        assert_eq!(placed[4].as_deref(), Some("b"));
        // The watch confirms p0 bound to a: counted once, no longer assumed.
        assert!(cache.apply_pod(Arc::new(pod("p0", "1", Some("a")))));
        assert!(!cache.is_assumed("p0"));
        assert_eq!(cache.node("a").unwrap().requested.milli_cpu, 4000);
        // p1's binding failed: forgotten, its cpu free again, and the next pod fits there.
        cache.forget("p1");
        assert_eq!(cache.node("a").unwrap().requested.milli_cpu, 3000);
        // Forgetting a confirmed pod does nothing.
        cache.forget("p0");
        assert_eq!(cache.node("a").unwrap().requested.milli_cpu, 3000);
        assert_eq!(
            schedule(&mut cache, &pod("p10", "1", None)).as_deref(),
            Some("a")
        );
    }

    #[test]
    fn an_unbound_update_keeps_the_assumption_and_a_bind_elsewhere_moves_it() {
        let mut cache = Cache::new();
        cache.apply_node(node("a"));
        cache.apply_node(node("b"));
        let p = pod("p", "1", None);
        cache.assume(&Arc::new(p.clone()), "a");
        // A status update arrives before the binding: still assumed on a.
        cache.apply_pod(Arc::new(p.clone()));
        assert!(cache.is_assumed("p"));
        assert_eq!(cache.node("a").unwrap().requested.milli_cpu, 1000);
        // Someone else bound it to b: counted on b only.
        cache.apply_pod(Arc::new(pod("p", "1", Some("b"))));
        assert_eq!(cache.node("a").unwrap().requested.milli_cpu, 0);
        assert_eq!(cache.node("b").unwrap().requested.milli_cpu, 1000);
    }

    #[test]
    fn finished_and_deleted_pods_free_their_node_and_orphans_wait_for_theirs() {
        let mut cache = Cache::new();
        cache.apply_node(node("a"));
        let mut done = pod("done", "2", Some("a"));
        cache.apply_pod(Arc::new(done.clone()));
        assert_eq!(cache.node("a").unwrap().requested.milli_cpu, 2000);
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
        cache.apply_pod(Arc::new(done));
        assert_eq!(cache.node("a").unwrap().requested.milli_cpu, 0);

        // A pod bound to a node not seen yet is counted when the node arrives.
        cache.apply_pod(Arc::new(pod("early", "3", Some("c"))));
        cache.apply_node(node("c"));
        assert_eq!(cache.node("c").unwrap().requested.milli_cpu, 3000);
        assert!(cache.remove_pod("early"));
        assert_eq!(cache.node("c").unwrap().requested.milli_cpu, 0);

        // Removing a node keeps positions consistent.
        cache.remove_node("a");
        assert_eq!(cache.nodes().len(), 1);
        assert_eq!(cache.node("c").unwrap().name(), "c");
        assert!(cache.node("a").is_none());
    }
}
