//! The node-lifecycle decisions, pure: a node's last heartbeat, whether it is stale, the
//! conditions to write when it is, and the taints it should carry.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::taints::{NO_EXECUTE, NO_SCHEDULE, NOT_READY, UNREACHABLE};

/// The conditions the controller marks Unknown when the kubelet stops posting.
pub const MONITORED: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";

/// The later of the node's Lease renewTime and its Ready condition's lastHeartbeatTime; the
/// node's creation when it has neither.
pub fn heartbeat(node: &Node, lease: Option<&Lease>) -> Option<jiff::Timestamp> {
    let renewed = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let posted = ready_condition(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    renewed
        .max(posted)
        .or_else(|| node.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The Ready condition's status: `True`, `False` or `Unknown` (also when it is missing).
pub fn ready_status(node: &Node) -> &str {
    ready_condition(node).map_or("Unknown", |c| c.status.as_str())
}

/// No heartbeat for longer than `grace`.
pub fn is_stale(
    heartbeat: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    grace: std::time::Duration,
) -> bool {
    heartbeat.is_none_or(|h| {
        now.duration_since(h)
            > jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX)
    })
}

/// The conditions of a stale node with Ready, MemoryPressure, DiskPressure and PIDPressure
/// Unknown (added when missing); `None` when they already are.
pub fn unknown_conditions(node: &Node, now: jiff::Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for kind in MONITORED {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some(REASON_UNKNOWN.into());
                c.message = Some(MESSAGE_UNKNOWN.into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: kind.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

/// Whether the node carries either of the controller's NoExecute taints.
pub fn has_no_execute(taints: &[Taint]) -> bool {
    taints
        .iter()
        .any(|t| t.effect == NO_EXECUTE && (t.key == UNREACHABLE || t.key == NOT_READY))
}

/// The taints a node should carry given its Ready status: none of the controller's when `True`;
/// `not-ready` for `False`, `unreachable` otherwise — NoSchedule always, NoExecute when
/// `no_execute` (the eviction rate and the disruption rules decide that). Other taints stay, as
/// do the `timeAdded`s of those kept.
pub fn desired_taints(
    current: &[Taint],
    ready: &str,
    no_execute: bool,
    now: jiff::Timestamp,
) -> Vec<Taint> {
    let key = match ready {
        "True" => None,
        "False" => Some(NOT_READY),
        _ => Some(UNREACHABLE),
    };
    let ours = |t: &Taint| {
        (t.key == UNREACHABLE || t.key == NOT_READY)
            && (t.effect == NO_EXECUTE || t.effect == NO_SCHEDULE)
    };
    let mut want: Vec<Taint> = current.iter().filter(|t| !ours(t)).cloned().collect();
    if let Some(key) = key {
        let mut add = |effect: &str| {
            let kept = current.iter().find(|t| t.key == key && t.effect == effect);
            want.push(kept.cloned().unwrap_or_else(|| Taint {
                key: key.into(),
                effect: effect.into(),
                time_added: Some(Time(now)),
                value: None,
            }));
        };
        add(NO_SCHEDULE);
        if no_execute {
            add(NO_EXECUTE);
        }
    }
    want
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap()
    }

    fn node(ready: &str, heartbeat: i64) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n", "creationTimestamp": "1970-01-01T00:00:10Z"},
            "status": {"conditions": [
                {"type": "Ready", "status": ready, "lastHeartbeatTime": at(heartbeat).to_string()},
                {"type": "MemoryPressure", "status": "False"},
            ]}
        }))
        .unwrap()
    }

    fn lease(renewed: i64) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "spec": {"renewTime": format!("{}", at(renewed).strftime("%Y-%m-%dT%H:%M:%S.000000Z"))}
        }))
        .unwrap()
    }

    #[test]
    fn heartbeats_and_staleness() {
        let grace = std::time::Duration::from_secs(40);
        let cases = [
            ("status only", node("True", 100), None, Some(at(100))),
            (
                "lease later",
                node("True", 100),
                Some(lease(130)),
                Some(at(130)),
            ),
            (
                "status later",
                node("True", 150),
                Some(lease(130)),
                Some(at(150)),
            ),
        ];
        for (name, node, lease, want) in cases {
            assert_eq!(heartbeat(&node, lease.as_ref()), want, "{name}");
        }
        let bare: Node = serde_json::from_value(json!({
            "metadata": {"name": "n", "creationTimestamp": "1970-01-01T00:00:10Z"}
        }))
        .unwrap();
        assert_eq!(heartbeat(&bare, None), Some(at(10)), "creation");
        assert!(!is_stale(Some(at(100)), at(140), grace));
        assert!(is_stale(Some(at(100)), at(141), grace));
        assert!(is_stale(None, at(0), grace));
    }

    #[test]
    fn stale_conditions_turn_unknown_once() {
        let conditions = unknown_conditions(&node("True", 100), at(200)).unwrap();
        assert_eq!(conditions.len(), 4, "missing ones added: {conditions:?}");
        for c in &conditions {
            assert_eq!(c.status, "Unknown", "{}", c.type_);
        }
        let ready = &conditions[0];
        assert_eq!(ready.reason.as_deref(), Some(REASON_UNKNOWN));
        assert_eq!(ready.message.as_deref(), Some(MESSAGE_UNKNOWN));
        assert_eq!(
            ready.last_heartbeat_time.as_ref().unwrap().0,
            at(100),
            "kept"
        );
        let mut marked = node("True", 100);
        marked.status.as_mut().unwrap().conditions = Some(conditions);
        assert_eq!(unknown_conditions(&marked, at(300)), None);
    }

    #[test]
    fn taints_follow_readiness() {
        let t = |key: &str, effect: &str, added: i64| Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: Some(Time(at(added))),
            value: None,
        };
        let other = t("dedicated", NO_SCHEDULE, 1);
        let keys = |taints: Vec<Taint>| -> Vec<(String, String, i64)> {
            taints
                .into_iter()
                .map(|t| (t.key, t.effect, t.time_added.unwrap().0.as_second()))
                .collect()
        };
        let k = |key: &str, effect: &str, added: i64| (key.to_owned(), effect.to_owned(), added);
        let cases = [
            (
                "ready: nothing",
                vec![other.clone()],
                "True",
                true,
                vec![k("dedicated", NO_SCHEDULE, 1)],
            ),
            (
                "unknown, rate not yet: NoSchedule only",
                vec![],
                "Unknown",
                false,
                vec![k(UNREACHABLE, NO_SCHEDULE, 50)],
            ),
            (
                "unknown: both",
                vec![t(UNREACHABLE, NO_SCHEDULE, 40)],
                "Unknown",
                true,
                vec![
                    k(UNREACHABLE, NO_SCHEDULE, 40),
                    k(UNREACHABLE, NO_EXECUTE, 50),
                ],
            ),
            (
                "not ready swaps unreachable",
                vec![
                    t(UNREACHABLE, NO_SCHEDULE, 40),
                    t(UNREACHABLE, NO_EXECUTE, 40),
                ],
                "False",
                true,
                vec![k(NOT_READY, NO_SCHEDULE, 50), k(NOT_READY, NO_EXECUTE, 50)],
            ),
            (
                "ready again removes all",
                vec![
                    other.clone(),
                    t(UNREACHABLE, NO_SCHEDULE, 40),
                    t(UNREACHABLE, NO_EXECUTE, 40),
                ],
                "True",
                true,
                vec![k("dedicated", NO_SCHEDULE, 1)],
            ),
            (
                "disruption removes NoExecute",
                vec![
                    t(UNREACHABLE, NO_SCHEDULE, 40),
                    t(UNREACHABLE, NO_EXECUTE, 40),
                ],
                "Unknown",
                false,
                vec![k(UNREACHABLE, NO_SCHEDULE, 40)],
            ),
        ];
        for (name, current, ready, no_execute, want) in cases {
            assert_eq!(
                keys(desired_taints(&current, ready, no_execute, at(50))),
                want,
                "{name}"
            );
        }
    }
}
