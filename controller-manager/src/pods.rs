//! Small questions about pods that several controllers ask.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use runtime::pod::Pod;

/// What the controller-manager's pod informer keeps of each pod beyond [`Pod`]'s fields: no
/// controller here reads a condition other than Ready, or which pod the scheduler nominated.
pub fn trim(pod: &mut Pod) {
    if let Some(status) = pod.status.as_mut() {
        if let Some(conditions) = status.conditions.as_mut() {
            conditions.retain(|c| c.type_ == "Ready");
            conditions.shrink_to_fit();
        }
        status.nominated_node_name = None;
    }
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

pub fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Not finished and not being deleted (`controller.IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod last became ready (its Ready condition's last transition).
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// Ready for at least `min_ready_seconds` at `now` (`podutil.IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i64, now: jiff::Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod).is_some_and(|since| {
        since
            .checked_add(jiff::SignedDuration::from_secs(min_ready_seconds))
            .is_ok_and(|at| at <= now)
    })
}

pub fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|statuses| statuses.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

pub fn created(pod: &Pod) -> Option<jiff::Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// The pod's controller ownerReference, if any.
pub fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A pod for table tests: `ready_at`/`created_at` are seconds since the epoch.
#[cfg(test)]
pub fn test_pod(
    name: &str,
    node: Option<&str>,
    phase: &str,
    ready_at: Option<i64>,
    restarts: i32,
    created_at: i64,
) -> Pod {
    let at = |s: i64| serde_json::json!(jiff::Timestamp::from_second(s).unwrap().to_string());
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "creationTimestamp": at(created_at), "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": node},
        "status": {
            "phase": phase,
            "conditions": ready_at.map(|t| vec![serde_json::json!(
                {"type": "Ready", "status": "True", "lastTransitionTime": at(t)})]),
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": ready_at.is_some(),
                                   "restartCount": restarts}],
        }
    }))
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trimmed_pod_answers_every_question_as_before() {
        let mut pod = test_pod("p", Some("n"), "Running", Some(100), 3, 50);
        let status = pod.status.as_mut().unwrap();
        status.conditions.as_mut().unwrap().insert(
            0,
            serde_json::from_value(serde_json::json!({"type": "PodScheduled", "status": "True"}))
                .unwrap(),
        );
        status.nominated_node_name = Some("n".into());
        let before = pod.clone();
        trim(&mut pod);
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.conditions.as_ref().unwrap().len(), 1);
        assert_eq!(status.nominated_node_name, None);
        let now = jiff::Timestamp::from_second(1000).unwrap();
        for p in [&before, &pod] {
            assert!(is_ready(p) && is_active(p) && is_available(p, 10, now));
            assert_eq!(ready_since(p), ready_since(&before));
            assert_eq!(max_restarts(p), 3);
            assert_eq!((phase(p), node_name(p)), ("Running", Some("n")));
        }
    }
}
