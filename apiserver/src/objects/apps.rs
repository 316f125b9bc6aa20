//! Deployments and ReplicaSets (`pkg/apis/apps/validation`): selector, template, strategy,
//! status, and the immutable selector.

use api_types::k8s::apimachinery::pkg::apis::meta::v1::LabelSelector;
use api_types::labels::{Selector, selector_from_label_selector};
use api_types::validation::{
    is_qualified_name, is_valid_label_value, regex_error, validate_annotations, validate_labels,
};
use serde_json::Value;

use super::Kind;
use super::pod::validate_pod_spec;
use super::util::{
    Errs, Obj, forbidden, get, get_arr, get_i64, get_obj, get_str, go_int_or_string,
    go_label_selector, go_string_map, immutable, invalid, invalid_int, invalid_raw, nonnegative,
    not_supported, required, semantic_eq, string_map,
};

/// `ValidateDeploymentSpec` / `ValidateReplicaSetSpec`.
pub(crate) fn validate_spec(kind: Kind, map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let spec = get_obj(map, "spec").unwrap_or(&empty);
    nonnegative(errs, "spec.replicas", get_i64(spec, "replicas"));
    if kind == Kind::ReplicaSet {
        nonnegative(
            errs,
            "spec.minReadySeconds",
            get_i64(spec, "minReadySeconds"),
        );
    }
    let selector = get(spec, "selector");
    match selector {
        None => errs.push(required("spec.selector", "")),
        Some(sel) => {
            validate_label_selector(sel, "spec.selector", errs);
            let count = sel
                .get("matchLabels")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + sel
                    .get("matchExpressions")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
            if count == 0 {
                errs.push(invalid_raw(
                    "spec.selector",
                    go_label_selector(Some(sel)),
                    "empty selector is invalid for deployment",
                ));
            }
        }
    }
    match label_selector(selector) {
        Err(()) => errs.push(invalid_raw(
            "spec.selector",
            go_label_selector(selector),
            "invalid label selector",
        )),
        Ok(sel) => validate_template(spec, &sel, errs),
    }
    if kind == Kind::Deployment {
        validate_strategy(get_obj(spec, "strategy").unwrap_or(&empty), errs);
        nonnegative(
            errs,
            "spec.minReadySeconds",
            get_i64(spec, "minReadySeconds"),
        );
        nonnegative(
            errs,
            "spec.revisionHistoryLimit",
            get_i64(spec, "revisionHistoryLimit"),
        );
        if let Some(pds) = get_i64(spec, "progressDeadlineSeconds") {
            nonnegative(errs, "spec.progressDeadlineSeconds", Some(pds));
            if pds <= get_i64(spec, "minReadySeconds").unwrap_or(0) {
                errs.push(invalid_int(
                    "spec.progressDeadlineSeconds",
                    pds,
                    "must be greater than minReadySeconds",
                ));
            }
        }
    }
}

/// `metav1.LabelSelectorAsSelector`: `None` selects nothing.
pub(crate) fn label_selector(v: Option<&Value>) -> Result<Selector, ()> {
    let typed: Option<LabelSelector> = match v {
        None => None,
        Some(v) => Some(serde_json::from_value(v.clone()).map_err(drop)?),
    };
    selector_from_label_selector(typed.as_ref()).map_err(drop)
}

/// `ValidateLabelSelector`.
pub(crate) fn validate_label_selector(sel: &Value, path: &str, errs: &mut Errs) {
    errs.extend(validate_labels(
        &string_map(sel.get("matchLabels")),
        &format!("{path}.matchLabels"),
    ));
    let empty = Obj::new();
    let exprs = sel.get("matchExpressions").and_then(Value::as_array);
    for (i, e) in exprs.into_iter().flatten().enumerate() {
        let e = e.as_object().unwrap_or(&empty);
        let epath = format!("{path}.matchExpressions[{i}]");
        let values = get_arr(e, "values");
        match get_str(e, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        format!("{epath}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        format!("{epath}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(invalid(
                format!("{epath}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = get_str(e, "key");
        for msg in is_qualified_name(key) {
            errs.push(invalid(format!("{epath}.key"), key, msg));
        }
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in is_valid_label_value(v) {
                errs.push(invalid(format!("{epath}.values[{j}]"), v, msg));
            }
        }
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn validate_template(spec: &Obj, selector: &Selector, errs: &mut Errs) {
    let empty = Obj::new();
    let template = get_obj(spec, "template").unwrap_or(&empty);
    let meta = get_obj(template, "metadata").unwrap_or(&empty);
    let labels = string_map(meta.get("labels"));
    if !selector.is_everything() && !selector.matches(&labels) {
        errs.push(invalid_raw(
            "spec.template.metadata.labels",
            go_string_map(meta.get("labels")),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_labels(&labels, "spec.template.metadata.labels"));
    errs.extend(validate_annotations(
        &string_map(meta.get("annotations")),
        "spec.template.metadata.annotations",
    ));
    let pod_spec = get_obj(template, "spec").unwrap_or(&empty);
    validate_pod_spec(pod_spec, "spec.template.spec", errs);
    let restart = get_str(pod_spec, "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            restart,
            &["Always"],
        ));
    }
    if get(pod_spec, "activeDeadlineSeconds").is_some() {
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
}

/// `ValidateDeploymentStrategy`.
fn validate_strategy(strategy: &Obj, errs: &mut Errs) {
    let ty = get_str(strategy, "type");
    match ty {
        "Recreate" => {
            if get(strategy, "rollingUpdate").is_some() {
                errs.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match get_obj(strategy, "rollingUpdate") {
            None => errs.push(required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => validate_rolling_update(ru, errs),
        },
        other => {
            let rendered = format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}",
                api_types::validation::go_quote(other)
            );
            let mut e = not_supported("spec.strategy", other, &["Recreate", "RollingUpdate"]);
            e.bad_value = Some(rendered);
            errs.push(e);
        }
    }
}

fn percent_value(v: Option<&Value>) -> Option<i64> {
    let s = v?.as_str()?;
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<i64>().unwrap_or(i64::MAX))
}

/// `getIntOrPercentValue`.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    if let Some(p) = percent_value(v) {
        return p;
    }
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// `ValidateRollingUpdateDeployment`.
fn validate_rolling_update(ru: &Obj, errs: &mut Errs) {
    const PATH: &str = "spec.strategy.rollingUpdate";
    for key in ["maxUnavailable", "maxSurge"] {
        let v = ru.get(key);
        let path = format!("{PATH}.{key}");
        match v {
            Some(Value::String(_)) if percent_value(v).is_none() => errs.push(invalid_raw(
                &path,
                go_int_or_string(v),
                regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    "[0-9]+%",
                    &["1%", "93%"],
                ),
            )),
            Some(Value::Number(n)) => {
                if let Some(n) = n.as_i64().filter(|n| *n < 0) {
                    errs.push(invalid_int(&path, n, "must be greater than or equal to 0"));
                }
            }
            _ => {}
        }
    }
    let max_unavailable = ru.get("maxUnavailable");
    if int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(ru.get("maxSurge")) == 0 {
        errs.push(invalid_raw(
            format!("{PATH}.maxUnavailable"),
            go_int_or_string(max_unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    if let Some(p) = percent_value(max_unavailable).filter(|p| *p > 100) {
        errs.push(invalid(
            format!("{PATH}.maxUnavailable"),
            &format!("{p}%"),
            "must not be greater than 100%",
        ));
    }
}

/// Update-only rules: the selector is immutable (apps/v1).
pub(crate) fn validate_update(old: &Obj, new: &Obj, errs: &mut Errs) {
    let old_sel = get_obj(old, "spec").and_then(|s| s.get("selector"));
    let new_sel = get_obj(new, "spec").and_then(|s| s.get("selector"));
    if !semantic_eq(old_sel, new_sel) {
        errs.push(immutable("spec.selector", go_label_selector(new_sel)));
    }
}

/// `ValidateDeploymentStatus` / `ValidateReplicaSetStatus`.
pub(crate) fn validate_status(kind: Kind, map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    let status = get_obj(map, "status").unwrap_or(&empty);
    let n = |key: &str| get_i64(status, key).unwrap_or(0);
    let keys: &[&str] = match kind {
        Kind::Deployment => &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "terminatingReplicas",
            "collisionCount",
        ],
        _ => &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "terminatingReplicas",
            "observedGeneration",
        ],
    };
    for key in keys {
        nonnegative(errs, &format!("status.{key}"), get_i64(status, key));
    }
    let bounded: &[&str] = match kind {
        Kind::Deployment => &["updatedReplicas", "readyReplicas", "availableReplicas"],
        _ => &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
    };
    for key in bounded {
        if n(key) > n("replicas") {
            errs.push(invalid_int(
                format!("status.{key}"),
                n(key),
                "cannot be greater than status.replicas",
            ));
        }
    }
    if n("availableReplicas") > n("readyReplicas") {
        errs.push(invalid_int(
            "status.availableReplicas",
            n("availableReplicas"),
            "cannot be greater than readyReplicas",
        ));
    }
}
