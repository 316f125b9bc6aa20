//! Which pods a ReplicaSet deletes first when it has too many: Kubernetes' `ActivePods` order
//! (`pkg/controller/controller_utils.go`), most deletable first:
//!
//! 1. not yet scheduled before scheduled;
//! 2. `Pending` before `Unknown` before `Running`;
//! 3. not ready before ready;
//! 4. ready for a shorter time before ready for longer;
//! 5. more container restarts before fewer;
//! 6. newer before older.

use std::cmp::Ordering;

use runtime::pod::Pod;

use crate::pods;

/// Sorts `pods` so the first are the ones to delete.
pub fn sort_for_deletion(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| compare(a, b));
}

/// `Less` when `a` should be deleted before `b`.
pub fn compare(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| pods::node_name(p).is_some();
    let phase = |p: &Pod| match pods::phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase(a).cmp(&phase(b)))
        .then_with(|| pods::is_ready(a).cmp(&pods::is_ready(b)))
        // Both ready: the one ready more recently first (a later transition sorts first).
        .then_with(|| match (pods::ready_since(a), pods::ready_since(b)) {
            (Some(ta), Some(tb)) if pods::is_ready(a) => tb.cmp(&ta),
            _ => Ordering::Equal,
        })
        .then_with(|| pods::max_restarts(b).cmp(&pods::max_restarts(a)))
        // Newer first; a pod without a creation time counts as newest.
        .then_with(|| match (pods::created(a), pods::created(b)) {
            (Some(ca), Some(cb)) => cb.cmp(&ca),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::test_pod;

    fn names(pods: &[&Pod]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn kubernetes_deletion_order() {
        let unscheduled = test_pod("unscheduled", None, "Pending", None, 0, 100);
        let pending = test_pod("pending", Some("n1"), "Pending", None, 0, 100);
        let unknown = test_pod("unknown", Some("n1"), "Unknown", None, 0, 100);
        let not_ready = test_pod("not-ready", Some("n1"), "Running", None, 0, 100);
        let ready_recently = test_pod("ready-recently", Some("n1"), "Running", Some(500), 0, 100);
        let ready_long = test_pod("ready-long", Some("n1"), "Running", Some(200), 0, 100);
        let restarts = test_pod("restarts", Some("n1"), "Running", Some(200), 3, 100);
        let newer = test_pod("newer", Some("n1"), "Running", Some(200), 0, 150);
        let mut pods = vec![
            &ready_long,
            &restarts,
            &newer,
            &ready_recently,
            &not_ready,
            &unknown,
            &pending,
            &unscheduled,
        ];
        sort_for_deletion(&mut pods);
        assert_eq!(
            names(&pods),
            [
                "unscheduled",
                "pending",
                "unknown",
                "not-ready",
                "ready-recently",
                "restarts",
                "newer",
                "ready-long",
            ]
        );
    }
}
