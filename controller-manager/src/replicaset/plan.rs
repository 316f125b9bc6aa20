//! The ReplicaSet controller's decisions, as a pure function of what the caches show and `now`
//! (Kubernetes' `syncReplicaSet`, `manageReplicas` and `calculateStatus`).

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use runtime::pod::Pod;
use std::collections::BTreeMap;

use super::rank;
use crate::pods;

/// At most this many pods are created or deleted in one sync (Kubernetes' `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// What one sync should do.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Orphans matching the selector, to take with a controller ownerReference.
    pub adopt: Vec<String>,
    /// Owned pods whose labels no longer match, to let go.
    pub release: Vec<String>,
    /// Pods to create from the template.
    pub create: usize,
    /// Pods to delete, in this order.
    pub delete: Vec<String>,
    /// The status the ReplicaSet should report (before this plan's changes take effect).
    pub status: ReplicaSetStatus,
    /// Seconds until a ready pod becomes available (`minReadySeconds`): look again then.
    pub recheck_after_seconds: Option<i64>,
}

/// Plans one sync of `rs` over the pods of its namespace. `expectations_met` is false while an
/// earlier sync's creations or deletions are not in the cache yet: then the pod count is not
/// touched. `failure` is the error of the last failed creation, for the ReplicaFailure
/// condition.
pub fn plan(
    rs: &ReplicaSet,
    namespace_pods: &[&Pod],
    expectations_met: bool,
    failure: Option<&str>,
    now: jiff::Timestamp,
) -> Plan {
    let mut out = Plan::default();
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let spec = rs.spec.as_ref();
    let selector = api_types::labels::selector_from_label_selector(spec.map(|s| &s.selector))
        .unwrap_or_else(|_| api_types::labels::Selector::nothing());
    let empty = BTreeMap::new();
    let labels = |p: &Pod| p.metadata.labels.as_ref().unwrap_or(&empty).clone();

    // Claim pods: ours that still match, orphans that match (adopted), ours that stopped
    // matching (released). A ReplicaSet being deleted adopts nothing.
    let mut owned: Vec<&Pod> = Vec::new();
    for &pod in namespace_pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let matches = !selector.matches_nothing() && selector.matches(&labels(pod));
        match pods::controller_of(pod) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if !deleting {
                    out.release.push(name);
                }
            }
            Some(_) => {}
            None => {
                if matches && !deleting && pod.metadata.deletion_timestamp.is_none() {
                    out.adopt.push(name);
                    owned.push(pod);
                }
            }
        }
    }
    let mut active: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| pods::is_active(p))
        .collect();

    let want = spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
    if expectations_met && !deleting {
        if active.len() < want {
            out.create = (want - active.len()).min(BURST_REPLICAS);
        } else if active.len() > want {
            rank::sort_for_deletion(&mut active);
            out.delete = active
                .iter()
                .take((active.len() - want).min(BURST_REPLICAS))
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
        }
    }

    // Status, from the pods claimed now (Kubernetes' calculateStatus).
    let min_ready = i64::from(spec.and_then(|s| s.min_ready_seconds).unwrap_or(0));
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let active_now: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| pods::is_active(p))
        .collect();
    let count = |f: &dyn Fn(&Pod) -> bool| -> i32 {
        i32::try_from(active_now.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let fully_labeled = count(&|p| {
        let have = labels(p);
        template_labels.iter().all(|(k, v)| have.get(k) == Some(v))
    });
    let ready = count(&|p| pods::is_ready(p));
    let available = count(&|p| pods::is_available(p, min_ready, now));
    let previous = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = previous
        .conditions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "ReplicaFailure")
        .collect();
    if let Some(message) = failure {
        let kept = previous
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == "ReplicaFailure"))
            .filter(|c| c.message.as_deref() == Some(message))
            .and_then(|c| c.last_transition_time.clone());
        conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some(message.to_owned()),
            last_transition_time: kept.or(Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
            )),
        });
    }
    out.status = ReplicaSetStatus {
        replicas: i32::try_from(active_now.len()).unwrap_or(i32::MAX),
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        ..ReplicaSetStatus::default()
    };
    if min_ready > 0 && ready > available {
        out.recheck_after_seconds = Some(min_ready);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::test_pod;
    use serde_json::json;

    fn rs(replicas: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid", "generation": 3},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "i"}]}}
            }
        }))
        .unwrap()
    }

    fn owned(mut pod: Pod) -> Pod {
        pod.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-uid",
                "controller": true, "blockOwnerDeletion": true
            }))
            .unwrap(),
        ]);
        pod
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_000).unwrap()
    }

    #[test]
    fn creates_what_is_missing_and_deletes_the_most_deletable_surplus() {
        let ready = owned(test_pod("ready", Some("n"), "Running", Some(100), 0, 10));
        let pending = owned(test_pod("pending", None, "Pending", None, 0, 20));
        let plan_up = plan(&rs(5), &[&ready, &pending], true, None, now());
        assert_eq!(plan_up.create, 3);
        assert!(plan_up.delete.is_empty());
        let plan_down = plan(&rs(1), &[&ready, &pending], true, None, now());
        assert_eq!(plan_down.create, 0);
        assert_eq!(plan_down.delete, ["pending"]);
        let waiting = plan(&rs(5), &[&ready, &pending], false, None, now());
        assert_eq!(
            (waiting.create, waiting.delete.len()),
            (0, 0),
            "expectations not met"
        );
    }

    #[test]
    fn adopts_matching_orphans_and_releases_pods_that_stopped_matching() {
        let orphan = test_pod("orphan", None, "Pending", None, 0, 10);
        let mut relabeled = owned(test_pod("relabeled", None, "Pending", None, 0, 10));
        relabeled.metadata.labels = Some([("app".to_string(), "other".to_string())].into());
        let mut someone_elses = test_pod("theirs", None, "Pending", None, 0, 10);
        someone_elses.metadata.owner_references = Some(vec![serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "x", "controller": true
        }))
        .unwrap()]);
        let out = plan(
            &rs(1),
            &[&orphan, &relabeled, &someone_elses],
            true,
            None,
            now(),
        );
        assert_eq!(out.adopt, ["orphan"]);
        assert_eq!(out.release, ["relabeled"]);
        assert_eq!((out.create, out.delete.len()), (0, 0));
        assert_eq!(out.status.replicas, 1);
    }

    #[test]
    fn status_counts_ready_and_available_with_min_ready_seconds() {
        let mut set = rs(3);
        set.spec.as_mut().unwrap().min_ready_seconds = Some(60);
        let long_ready = owned(test_pod("a", Some("n"), "Running", Some(100), 0, 10));
        let just_ready = owned(test_pod("b", Some("n"), "Running", Some(990), 0, 10));
        let not_ready = owned(test_pod("c", Some("n"), "Running", None, 0, 10));
        let out = plan(
            &set,
            &[&long_ready, &just_ready, &not_ready],
            true,
            None,
            now(),
        );
        assert_eq!(out.status.replicas, 3);
        assert_eq!(out.status.ready_replicas, Some(2));
        assert_eq!(out.status.available_replicas, Some(1));
        assert_eq!(out.status.fully_labeled_replicas, Some(3));
        assert_eq!(out.status.observed_generation, Some(3));
        assert_eq!(out.recheck_after_seconds, Some(60));
    }

    #[test]
    fn terminating_and_finished_pods_do_not_count() {
        let mut terminating = owned(test_pod("t", Some("n"), "Running", Some(100), 0, 10));
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
        let done = owned(test_pod("d", Some("n"), "Succeeded", None, 0, 10));
        let out = plan(&rs(2), &[&terminating, &done], true, None, now());
        assert_eq!(out.create, 2);
        assert_eq!(out.status.replicas, 0);
    }

    #[test]
    fn a_failed_creation_sets_replica_failure_and_a_deleting_set_does_nothing() {
        let out = plan(
            &rs(1),
            &[],
            true,
            Some("pods \"x\" is forbidden: quota"),
            now(),
        );
        let conditions = out.status.conditions.unwrap();
        assert_eq!(conditions[0].type_, "ReplicaFailure");
        assert_eq!(conditions[0].reason.as_deref(), Some("FailedCreate"));
        let mut deleting = rs(3);
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
        let orphan = test_pod("orphan", None, "Pending", None, 0, 10);
        let out = plan(&deleting, &[&orphan], true, None, now());
        assert_eq!(
            out,
            Plan {
                status: out.status.clone(),
                ..Plan::default()
            }
        );
    }

    #[test]
    fn at_most_a_burst_per_sync() {
        assert_eq!(
            plan(&rs(10_000), &[], true, None, now()).create,
            BURST_REPLICAS
        );
    }
}
