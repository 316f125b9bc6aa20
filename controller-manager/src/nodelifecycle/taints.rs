//! Taint-based eviction (Kubernetes' NoExecuteTaintManager), pure: when must a pod on a node with
//! NoExecute taints go?

use k8s_openapi::api::core::v1::{Taint, Toleration};
use runtime::pod::Pod;

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const NO_EXECUTE: &str = "NoExecute";
pub const NO_SCHEDULE: &str = "NoSchedule";

pub use api_types::taints::tolerates;

/// When a pod must be deleted given the node's taints: `None` to stay (no NoExecute taint, or
/// every one tolerated without `tolerationSeconds`), else the moment — at once (`now`) when some
/// NoExecute taint is not tolerated, otherwise the earliest `timeAdded + tolerationSeconds`.
pub fn eviction_time(pod: &Pod, taints: &[Taint], now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let tolerations: &[Toleration] = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    let mut earliest: Option<jiff::Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        // Kubernetes takes the smallest tolerationSeconds among the matching tolerations; one
        // without it tolerates forever only if none sets it.
        let Some(seconds) = matching.iter().filter_map(|t| t.toleration_seconds).min() else {
            continue;
        };
        let added = taint.time_added.as_ref().map_or(now, |t| t.0);
        let at = added
            .checked_add(jiff::SignedDuration::from_secs(seconds.max(0)))
            .unwrap_or(added);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [], "tolerations": tolerations}
        }))
        .unwrap()
    }

    fn taint(key: &str, effect: &str, added: i64) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: Some(Time(jiff::Timestamp::from_second(added).unwrap())),
            value: None,
        }
    }

    #[test]
    fn eviction_times() {
        let now = jiff::Timestamp::from_second(1000).unwrap();
        let at = |s| Some(jiff::Timestamp::from_second(s).unwrap());
        let unreachable = taint(UNREACHABLE, NO_EXECUTE, 900);
        let cases: &[(&str, serde_json::Value, Vec<Taint>, Option<jiff::Timestamp>)] = &[
            ("no taints", json!([]), vec![], None),
            (
                "NoSchedule only",
                json!([]),
                vec![taint(UNREACHABLE, NO_SCHEDULE, 0)],
                None,
            ),
            (
                "untolerated: at once",
                json!([]),
                vec![unreachable.clone()],
                Some(now),
            ),
            (
                "tolerated for 300 s",
                json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                        "tolerationSeconds": 300}]),
                vec![unreachable.clone()],
                at(1200),
            ),
            (
                "tolerated forever",
                json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]),
                vec![unreachable.clone()],
                None,
            ),
            (
                "wildcard toleration",
                json!([{"operator": "Exists"}]),
                vec![unreachable.clone()],
                None,
            ),
            (
                "other key not tolerated",
                json!([{"key": NOT_READY, "operator": "Exists", "tolerationSeconds": 5}]),
                vec![unreachable.clone()],
                Some(now),
            ),
            (
                "the smallest of two taints' deadlines",
                json!([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 300},
                       {"key": "x", "operator": "Equal", "value": "y", "tolerationSeconds": 10}]),
                vec![
                    unreachable.clone(),
                    Taint {
                        value: Some("y".into()),
                        ..taint("x", NO_EXECUTE, 950)
                    },
                ],
                at(960),
            ),
            (
                "value mismatch",
                json!([{"key": "x", "operator": "Equal", "value": "z"}]),
                vec![taint("x", NO_EXECUTE, 950)],
                Some(now),
            ),
            (
                "effect mismatch",
                json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}]),
                vec![unreachable.clone()],
                Some(now),
            ),
        ];
        for (name, tolerations, taints, want) in cases {
            assert_eq!(
                eviction_time(&pod(tolerations.clone()), taints, now),
                *want,
                "{name}"
            );
        }
    }
}
