//! What the filter plugins' tests share: nodes and pods built from JSON, and a runner for
//! Kubernetes-style table tests that reports every failing case at once.

use k8s_openapi::api::core::v1::Node;
use runtime::pod::Pod;
use serde_json::{Value, json};

use crate::framework::{NodeInfo, Status};

/// Merges `extra` into `base`: objects key by key, anything else replaced.
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

/// A node named `name` with these fields merged in.
pub fn node(name: &str, extra: Value) -> Node {
    let mut n = json!({"metadata": {"name": name}});
    merge(&mut n, extra);
    serde_json::from_value(n).unwrap()
}

/// A pod `p` in `default` without containers, with these fields merged in.
pub fn pod(extra: Value) -> Pod {
    let mut p =
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": []}});
    merge(&mut p, extra);
    serde_json::from_value(p).unwrap()
}

/// The rejection a case expects, with Kubernetes' reasons.
pub fn unschedulable(reasons: &[&str]) -> Status {
    Status::Unschedulable(reasons.iter().map(|r| (*r).to_owned()).collect())
}

/// One row of a table: its name, the incoming pod, the node (with the pods already on it) and
/// the status the filter must return.
pub type Case = (&'static str, Pod, NodeInfo, Status);

/// Runs `filter` over the table and fails with every case whose status differs.
pub fn check(filter: fn(&Pod, &NodeInfo) -> Status, cases: Vec<Case>) {
    let total = cases.len();
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(name, pod, node, want)| {
            let got = filter(&pod, &node);
            (got != want).then(|| format!("{name}:\n    got  {got:?}\n    want {want:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
