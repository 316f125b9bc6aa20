//! The scheduling queue, as kube-scheduler's `PriorityQueue`: three places a pending pod can be.
//!
//! - **active**: ready to be tried, highest `spec.priority` first, then the earliest arrival;
//! - **backoff**: tried and failed recently; waits 1 s, doubling per attempt up to 10 s;
//! - **unschedulable**: no node fitted. It stays parked until a cluster event that could help it
//!   — one that the plugins which rejected it care about ([`helps`]) — moves it back (through
//!   backoff while its backoff lasts), or until it has been parked for five minutes (the periodic
//!   flush).
//!
//! A pod being tried is *in flight*; if an event that could help arrives meanwhile, a failure
//! sends it to backoff instead of parking it, so the event is not lost (kube's
//! `moveRequestCycle`). Time is passed in, so the queue is pure and tested without sleeping.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::pod::Pod;

use crate::framework::uid_of;
use crate::plugins::{
    inter_pod_affinity, node_affinity, node_name, node_ports, node_resources_fit,
    node_unschedulable, pod_topology_spread, taint_toleration,
};

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// kube-scheduler's `podMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// Something that changed in the cluster and may let parked pods fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterEvent {
    NodeAdded,
    /// A Node changed; which parts did.
    NodeChanged {
        allocatable: bool,
        labels: bool,
        taints: bool,
        unschedulable: bool,
    },
    /// A pod was bound, or a bound pod changed (labels matter to affinity and spreading).
    AssignedPodAdded,
    AssignedPodChanged,
    /// A bound pod went away: its resources, ports and affinity weight are free.
    AssignedPodDeleted,
}

/// Whether `event` could make a pod that `plugin` rejected fit (kube's `EventsToRegister`).
pub fn helps(plugin: &str, event: ClusterEvent) -> bool {
    use ClusterEvent::*;
    let node_changed = |f: fn(bool, bool, bool, bool) -> bool| match event {
        NodeChanged {
            allocatable,
            labels,
            taints,
            unschedulable,
        } => f(allocatable, labels, taints, unschedulable),
        _ => false,
    };
    if event == NodeAdded {
        return true;
    }
    match plugin {
        node_unschedulable::NAME => node_changed(|_, _, t, u| t || u),
        node_name::NAME => false,
        taint_toleration::NAME => node_changed(|_, _, t, _| t),
        node_affinity::NAME => node_changed(|_, l, _, _| l),
        node_ports::NAME => event == AssignedPodDeleted,
        node_resources_fit::NAME => event == AssignedPodDeleted || node_changed(|a, _, _, _| a),
        pod_topology_spread::NAME | inter_pod_affinity::NAME => {
            matches!(
                event,
                AssignedPodAdded | AssignedPodChanged | AssignedPodDeleted
            ) || node_changed(|_, l, _, _| l)
        }
        // A rejection we cannot attribute: anything may help.
        _ => true,
    }
}

/// A pending pod and what the queue knows of its attempts.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub pod: Arc<Pod>,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When it first entered the queue (for `scheduler_pod_scheduling_duration_seconds`).
    pub initial: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In `active` under this key.
    Active(ActiveKey),
    /// In `backoff` until this instant (with a sequence number to keep keys unique).
    Backoff(Instant, u64),
    /// Parked since this instant.
    Unschedulable(Instant),
    /// Popped, being tried; `cycle` is the scheduling cycle it was popped in.
    InFlight { cycle: u64 },
}

/// Higher priority first, then earlier arrival: the smallest key is popped first.
type ActiveKey = (std::cmp::Reverse<i32>, u64);

struct Entry {
    info: QueuedPod,
    place: Place,
    /// Plugins that rejected it last time (empty: unknown, any event helps).
    rejected_by: BTreeSet<String>,
    last_attempt: Instant,
}

/// How many pods wait in each place (`scheduler_pending_pods{queue}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
}

/// The queue. Keys are pod uids.
#[derive(Default)]
pub struct SchedulingQueue {
    entries: HashMap<String, Entry>,
    active: BTreeMap<ActiveKey, String>,
    backoff: BTreeMap<(Instant, u64), String>,
    /// Uids of the parked pods (so events scan only them).
    parked: std::collections::HashSet<String>,
    seq: u64,
    /// Scheduling cycles popped so far.
    cycle: u64,
    /// The cycle in which the last helpful event arrived.
    move_request_cycle: u64,
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// kube's `calculateBackoffDuration`: 1 s doubling per attempt, at most 10 s.
pub fn backoff_for(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (INITIAL_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

impl SchedulingQueue {
    pub fn new() -> SchedulingQueue {
        SchedulingQueue::default()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn place_active(&mut self, uid: &str) {
        self.parked.remove(uid);
        let seq = self.next_seq();
        let Some(entry) = self.entries.get_mut(uid) else {
            return;
        };
        let key = (std::cmp::Reverse(priority(&entry.info.pod)), seq);
        entry.place = Place::Active(key);
        self.active.insert(key, uid.to_owned());
    }

    fn place_backoff(&mut self, uid: &str) {
        self.parked.remove(uid);
        let seq = self.next_seq();
        let Some(entry) = self.entries.get_mut(uid) else {
            return;
        };
        let until = entry.last_attempt + backoff_for(entry.info.attempts);
        entry.place = Place::Backoff(until, seq);
        self.backoff.insert((until, seq), uid.to_owned());
    }

    /// Takes the entry out of whichever ordered set holds it (it stays in `entries`).
    fn unplace(&mut self, uid: &str) {
        self.parked.remove(uid);
        let Some(entry) = self.entries.get(uid) else {
            return;
        };
        match entry.place {
            Place::Active(key) => {
                self.active.remove(&key);
            }
            Place::Backoff(until, seq) => {
                self.backoff.remove(&(until, seq));
            }
            Place::Unschedulable(_) | Place::InFlight { .. } => {}
        }
    }

    /// A pending pod appeared, or changed. A new pod goes to active; a parked one that changed
    /// is worth another try (through backoff if it is backing off); one in flight keeps its place
    /// and the new version is what a retry will see.
    pub fn add_or_update(&mut self, pod: Arc<Pod>, now: Instant) {
        let uid = uid_of(&pod).to_owned();
        if let Some(entry) = self.entries.get_mut(&uid) {
            let changed_spec = entry.info.pod.spec != pod.spec
                || entry.info.pod.metadata.labels != pod.metadata.labels;
            let priority_changed = priority(&entry.info.pod) != priority(&pod);
            entry.info.pod = pod;
            match entry.place {
                Place::Unschedulable(_) if changed_spec => {
                    let backing_off = entry.last_attempt + backoff_for(entry.info.attempts) > now;
                    if backing_off {
                        self.place_backoff(&uid);
                    } else {
                        self.place_active(&uid);
                    }
                }
                Place::Active(_) if priority_changed => {
                    self.unplace(&uid);
                    self.place_active(&uid);
                }
                _ => {}
            }
            return;
        }
        self.entries.insert(
            uid.clone(),
            Entry {
                info: QueuedPod {
                    pod,
                    attempts: 0,
                    initial: now,
                },
                place: Place::InFlight { cycle: 0 },
                rejected_by: BTreeSet::new(),
                last_attempt: now,
            },
        );
        self.place_active(&uid);
    }

    /// The pod is gone, bound, or no longer ours.
    pub fn delete(&mut self, uid: &str) {
        self.unplace(uid);
        self.entries.remove(uid);
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// Moves pods whose backoff has ended to active.
    fn flush_backoff(&mut self, now: Instant) {
        while let Some((&(until, seq), _)) = self.backoff.first_key_value() {
            if until > now {
                break;
            }
            if let Some(uid) = self.backoff.remove(&(until, seq)) {
                self.place_active(&uid);
            }
        }
    }

    /// The next pod to try, if any is ready at `now`; it is in flight until [`Self::done`],
    /// [`Self::unschedulable`] or [`Self::retry`].
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPod> {
        self.flush_backoff(now);
        let (_, uid) = self.active.pop_first()?;
        self.cycle += 1;
        let cycle = self.cycle;
        let entry = self.entries.get_mut(&uid)?;
        entry.place = Place::InFlight { cycle };
        entry.info.attempts += 1;
        entry.last_attempt = now;
        Some(entry.info.clone())
    }

    /// The pod was placed (assumed and sent to bind): it leaves the queue.
    pub fn done(&mut self, uid: &str) {
        self.delete(uid);
    }

    /// No node fitted; `rejected_by` names the plugins that said no. Parked, unless an event that
    /// could help arrived while it was being tried.
    pub fn unschedulable(&mut self, uid: &str, rejected_by: BTreeSet<String>, now: Instant) {
        let Some(entry) = self.entries.get_mut(uid) else {
            return;
        };
        let Place::InFlight { cycle } = entry.place else {
            return;
        };
        entry.rejected_by = rejected_by;
        if self.move_request_cycle >= cycle {
            self.place_backoff(uid);
        } else {
            entry.place = Place::Unschedulable(now);
            self.parked.insert(uid.to_owned());
        }
    }

    /// Trying failed for another reason (the binding failed): back off, then try again.
    pub fn retry(&mut self, pod: Arc<Pod>, now: Instant) {
        let uid = uid_of(&pod).to_owned();
        match self.entries.get_mut(&uid) {
            Some(entry) => {
                entry.info.pod = pod;
                self.unplace(&uid);
                self.place_backoff(&uid);
            }
            None => {
                // It left the queue when it was assumed; it comes back with its attempts known
                // only as one, so it waits the first backoff.
                self.entries.insert(
                    uid.clone(),
                    Entry {
                        info: QueuedPod {
                            pod,
                            attempts: 1,
                            initial: now,
                        },
                        place: Place::InFlight { cycle: 0 },
                        rejected_by: BTreeSet::new(),
                        last_attempt: now,
                    },
                );
                self.place_backoff(&uid);
            }
        }
    }

    /// A cluster event: parked pods it could help move on (to backoff while their backoff lasts,
    /// else to active); pods in flight will not be parked by this cycle's failure.
    pub fn on_event(&mut self, event: ClusterEvent, now: Instant) {
        self.move_request_cycle = self.cycle;
        let movable: Vec<String> = self
            .parked
            .iter()
            .filter(|uid| {
                self.entries.get(*uid).is_some_and(|e| {
                    e.rejected_by.is_empty() || e.rejected_by.iter().any(|p| helps(p, event))
                })
            })
            .cloned()
            .collect();
        for uid in movable {
            self.move_parked(&uid, now);
        }
    }

    fn move_parked(&mut self, uid: &str, now: Instant) {
        let Some(entry) = self.entries.get(uid) else {
            return;
        };
        if entry.last_attempt + backoff_for(entry.info.attempts) > now {
            self.place_backoff(uid);
        } else {
            self.place_active(uid);
        }
    }

    /// The periodic flush: pods parked longer than five minutes get another try.
    pub fn flush_unschedulable(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .parked
            .iter()
            .filter(|uid| {
                self.entries.get(*uid).is_some_and(|e| {
                    matches!(e.place, Place::Unschedulable(since) if now.duration_since(since) >= MAX_UNSCHEDULABLE)
                })
            })
            .cloned()
            .collect();
        for uid in stale {
            self.move_parked(&uid, now);
        }
    }

    /// When the next backed-off pod becomes ready, if any.
    pub fn next_ready(&self) -> Option<Instant> {
        self.backoff.first_key_value().map(|(&(until, _), _)| until)
    }

    pub fn pending(&self) -> Pending {
        Pending {
            active: self.active.len(),
            backoff: self.backoff.len(),
            unschedulable: self.parked.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, priority: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": uid, "uid": uid},
                "spec": {"priority": priority, "containers": [{"name": "c"}]}
            }))
            .unwrap(),
        )
    }

    fn names(queue: &mut SchedulingQueue, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| queue.pop(now))
            .map(|p| uid_of(&p.pod).to_owned())
            .collect()
    }

    fn rejected(plugin: &str) -> BTreeSet<String> {
        BTreeSet::from([plugin.to_owned()])
    }

    #[test]
    fn higher_priority_first_then_arrival_order() {
        let t = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add_or_update(pod("low-1", 0), t);
        q.add_or_update(pod("high", 1000), t);
        q.add_or_update(pod("low-2", 0), t);
        q.add_or_update(pod("negative", -5), t);
        q.add_or_update(pod("mid", 10), t);
        assert_eq!(
            names(&mut q, t),
            ["high", "mid", "low-1", "low-2", "negative"]
        );
        assert_eq!(q.pop(t).map(|p| p.attempts), None);
    }

    #[test]
    fn backoff_doubles_from_one_second_to_ten() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(2), Duration::from_secs(2));
        assert_eq!(backoff_for(3), Duration::from_secs(4));
        assert_eq!(backoff_for(4), Duration::from_secs(8));
        assert_eq!(backoff_for(5), Duration::from_secs(10));
        assert_eq!(backoff_for(50), Duration::from_secs(10));

        let t = Instant::now();
        let mut q = SchedulingQueue::new();
        let p = pod("p", 0);
        q.add_or_update(Arc::clone(&p), t);
        let first = q.pop(t).unwrap();
        assert_eq!(first.attempts, 1);
        q.retry(Arc::clone(&p), t);
        assert!(
            q.pop(t + Duration::from_millis(999)).is_none(),
            "still backing off"
        );
        assert_eq!(q.next_ready(), Some(t + Duration::from_secs(1)));
        let t2 = t + Duration::from_secs(1);
        let second = q.pop(t2).unwrap();
        assert_eq!(second.attempts, 2);
        q.retry(p, t2);
        assert!(q.pop(t2 + Duration::from_millis(1999)).is_none());
        assert!(q.pop(t2 + Duration::from_secs(2)).is_some());
    }

    #[test]
    fn a_parked_pod_moves_only_on_an_event_that_could_help_it() {
        let t = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add_or_update(pod("cpu", 0), t);
        q.add_or_update(pod("selector", 0), t);
        q.pop(t).unwrap();
        q.pop(t).unwrap();
        q.unschedulable("cpu", rejected(node_resources_fit::NAME), t);
        q.unschedulable("selector", rejected(node_affinity::NAME), t);
        assert_eq!(q.pending().unschedulable, 2);

        // A taint change helps neither; a bound pod deleted frees resources, not labels.
        let later = t + Duration::from_secs(30);
        q.on_event(
            ClusterEvent::NodeChanged {
                allocatable: false,
                labels: false,
                taints: true,
                unschedulable: false,
            },
            later,
        );
        assert_eq!(q.pending().unschedulable, 2);
        q.on_event(ClusterEvent::AssignedPodDeleted, later);
        assert_eq!(names(&mut q, later), ["cpu"]);
        assert_eq!(q.pending().unschedulable, 1);

        // A node relabelled helps the selector; a new node helps everyone.
        q.on_event(
            ClusterEvent::NodeChanged {
                allocatable: false,
                labels: true,
                taints: false,
                unschedulable: false,
            },
            later,
        );
        assert_eq!(names(&mut q, later), ["selector"]);
        q.unschedulable("selector", rejected(node_affinity::NAME), later);
        q.on_event(ClusterEvent::NodeAdded, later + Duration::from_secs(30));
        assert_eq!(names(&mut q, later + Duration::from_secs(30)), ["selector"]);
    }

    #[test]
    fn a_moved_pod_still_waits_out_its_backoff() {
        let t = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add_or_update(pod("p", 0), t);
        q.pop(t).unwrap();
        q.unschedulable("p", rejected(node_resources_fit::NAME), t);
        q.on_event(ClusterEvent::NodeAdded, t + Duration::from_millis(100));
        assert_eq!(q.pending().backoff, 1);
        assert!(q.pop(t + Duration::from_millis(500)).is_none());
        assert!(q.pop(t + Duration::from_secs(1)).is_some());
    }

    #[test]
    fn an_event_during_the_attempt_is_not_lost() {
        let t = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add_or_update(pod("p", 0), t);
        q.pop(t).unwrap();
        // A node appears while the pod is being tried against the old snapshot.
        q.on_event(ClusterEvent::NodeAdded, t);
        q.unschedulable("p", rejected(node_resources_fit::NAME), t);
        assert_eq!(q.pending().unschedulable, 0);
        assert!(q.pop(t + Duration::from_secs(1)).is_some());
    }

    #[test]
    fn parked_pods_are_flushed_after_five_minutes_and_updates_retry_them() {
        let t = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add_or_update(pod("a", 0), t);
        q.add_or_update(pod("b", 0), t);
        q.pop(t).unwrap();
        q.pop(t).unwrap();
        q.unschedulable("a", rejected(node_name::NAME), t);
        q.unschedulable("b", rejected(node_name::NAME), t);
        q.flush_unschedulable(t + Duration::from_secs(299));
        assert_eq!(q.pending().unschedulable, 2);

        // The user edits b: worth another try at once.
        let mut edited = (*pod("b", 0)).clone();
        edited.metadata.labels = Some([("x".to_owned(), "y".to_owned())].into());
        q.add_or_update(Arc::new(edited), t + Duration::from_secs(10));
        assert_eq!(names(&mut q, t + Duration::from_secs(10)), ["b"]);

        q.flush_unschedulable(t + MAX_UNSCHEDULABLE);
        assert_eq!(names(&mut q, t + MAX_UNSCHEDULABLE), ["a"]);
    }

    #[test]
    fn deleted_pods_leave_every_place() {
        let t = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add_or_update(pod("a", 0), t);
        q.add_or_update(pod("b", 0), t);
        q.pop(t).unwrap();
        q.retry(pod("a", 0), t);
        q.delete("a");
        q.delete("b");
        assert_eq!(q.pending(), Pending::default());
        assert!(q.pop(t + MAX_BACKOFF).is_none());
    }
}
