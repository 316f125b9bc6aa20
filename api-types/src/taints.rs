//! Taints and tolerations: Kubernetes' `Toleration.ToleratesTaint`, shared by the scheduler's
//! TaintToleration and NodeUnschedulable plugins and the controller-manager's taint-based
//! eviction.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Whether `toleration` tolerates `taint`: the effect matches (an empty one matches all), the key
/// matches (an empty one matches all, with `Exists`), and with `Equal` (the default) the values
/// are equal.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            ..Taint::default()
        }
    }

    fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Toleration {
            key: some(key),
            operator: some(operator),
            value: some(value),
            effect: some(effect),
            ..Toleration::default()
        }
    }

    #[test]
    fn kubernetes_tolerates_taint_cases() {
        let gpu = taint("gpu", Some("yes"), "NoSchedule");
        for (t, want) in [
            (toleration("gpu", "Equal", "yes", "NoSchedule"), true),
            (toleration("gpu", "", "yes", ""), true),
            (toleration("gpu", "Equal", "no", "NoSchedule"), false),
            (toleration("gpu", "Exists", "", "NoSchedule"), true),
            (toleration("gpu", "Exists", "", "NoExecute"), false),
            (toleration("other", "Exists", "", ""), false),
            (toleration("", "Exists", "", ""), true),
            (toleration("gpu", "Lt", "yes", ""), false),
            // An empty key with Equal matches a taint of any key whose value is equal, as
            // Kubernetes' ToleratesTaint does (API validation refuses such tolerations).
            (toleration("", "Equal", "yes", ""), true),
        ] {
            assert_eq!(tolerates(&t, &gpu), want, "{t:?}");
        }
        let bare = taint("node.kubernetes.io/unreachable", None, "NoExecute");
        assert!(tolerates(
            &toleration("node.kubernetes.io/unreachable", "Exists", "", "NoExecute"),
            &bare
        ));
    }
}
