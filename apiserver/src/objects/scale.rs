//! The `scale` subresource: `autoscaling/v1` `Scale` views of Deployments and ReplicaSets
//! (`scaleFromDeployment`, `scaleUpdatedObjectInfo`).

use api_types::k8s::api::autoscaling::v1::Scale;
use api_types::registry::{self, ResourceInfo};
use api_types::validation::validate_object_meta_name;
use serde_json::{Map, Value, json};

use super::apps::label_selector;
use super::decode::{decode_as, not_an_object_message};
use super::util::{Errs, Obj, get_obj, get_str, invalid_int, obj_mut_or_create};
use crate::errors::ApiError;

/// The `Scale` of a Deployment or ReplicaSet: name, namespace, uid, resourceVersion and
/// creationTimestamp; `spec.replicas` (left out when 0, as Go's `omitempty` does);
/// `status.replicas` and `status.selector` as a label selector string.
pub fn to_scale(_info: &ResourceInfo, obj: &Value) -> Value {
    let empty = Obj::new();
    let map = obj.as_object().unwrap_or(&empty);
    let meta = get_obj(map, "metadata").unwrap_or(&empty);
    let spec = get_obj(map, "spec").unwrap_or(&empty);
    let status = get_obj(map, "status").unwrap_or(&empty);
    let mut scale_meta = Map::new();
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(key).filter(|v| !v.is_null()) {
            scale_meta.insert(key.to_string(), v.clone());
        }
    }
    let mut scale_spec = Map::new();
    if let Some(r) = spec
        .get("replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r != 0)
    {
        scale_spec.insert("replicas".into(), json!(r));
    }
    let mut scale_status = Map::new();
    scale_status.insert(
        "replicas".into(),
        json!(status.get("replicas").and_then(Value::as_i64).unwrap_or(0)),
    );
    let selector = label_selector(spec.get("selector").filter(|v| !v.is_null()))
        .map(|s| s.to_string())
        .unwrap_or_default();
    if !selector.is_empty() {
        scale_status.insert("selector".into(), json!(selector));
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": scale_spec,
        "status": scale_status,
    })
}

/// Applies a `Scale` written by a client to its Deployment or ReplicaSet: `spec.replicas`
/// (absent means 0, as in Go), after checking the body is a well-typed `Scale` for this object
/// (400), its UID precondition (409) and `ValidateScale` (422 `Scale.autoscaling "x" is
/// invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`).
pub fn apply_scale(obj: &mut Value, scale: &Value) -> Result<(), ApiError> {
    let Some(scale_map) = scale.as_object() else {
        return Err(ApiError::bad_request(&not_an_object_message(scale)));
    };
    match scale_map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") | Some("autoscaling/v1") => {}
        Some(other) => {
            return Err(ApiError::bad_request(&format!(
                "the API version in the data ({other}) does not match the expected API version (autoscaling/v1)"
            )));
        }
    }
    match scale_map.get("kind").and_then(Value::as_str) {
        None | Some("") | Some("Scale") => {}
        Some(other) => {
            return Err(ApiError::bad_request(&format!(
                "{other} in version \"v1\" cannot be handled as a Scale: no kind \"{other}\" is registered for version \"autoscaling/v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
            )));
        }
    }
    let mut body = scale.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    decode_as::<Scale>("Scale", "v1", &body)?;

    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::internal("the scaled object is not a JSON object"));
    };
    let empty = Obj::new();
    let meta = get_obj(map, "metadata").unwrap_or(&empty);
    let name = get_str(meta, "name").to_string();
    let uid = get_str(meta, "uid").to_string();
    let kind = get_str(map, "kind").to_string();
    let scale_meta = get_obj(scale_map, "metadata").unwrap_or(&empty);
    let scale_name = get_str(scale_meta, "name");
    if !scale_name.is_empty() && scale_name != name {
        return Err(ApiError::bad_request(&format!(
            "the name of the object ({scale_name}) does not match the name on the URL ({name})"
        )));
    }
    let scale_uid = get_str(scale_meta, "uid");
    if !scale_uid.is_empty() && scale_uid != uid {
        let resource = registry::by_kind("apps", &kind)
            .map(|i| format!("{}.apps/scale", i.resource))
            .unwrap_or_else(|| "scale".to_string());
        return Err(ApiError::conflict(
            &resource,
            &name,
            &format!(
                "Precondition failed: UID in precondition: {scale_uid}, UID in object meta: {uid}"
            ),
        ));
    }
    let replicas = get_obj(scale_map, "spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut errs = Errs::new();
    if !scale_name.is_empty() {
        errs.extend(validate_object_meta_name("scale", scale_name, None));
    }
    if replicas < 0 {
        errs.push(invalid_int(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid("Scale", "autoscaling", &name, &errs));
    }
    if let Some(spec) = obj_mut_or_create(map, "spec") {
        spec.insert("replicas".into(), json!(replicas));
    }
    Ok(())
}
