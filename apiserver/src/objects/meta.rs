//! `TypeMeta` and `ObjectMeta`: what `rest.BeforeCreate` / `rest.BeforeUpdate` and
//! `ValidateObjectMeta(Update)` do for every kind.

use std::collections::BTreeSet;

use api_types::registry::{self, ResourceInfo};
use api_types::validation::{
    is_dns1123_label, is_qualified_name, validate_annotations, validate_labels,
    validate_object_meta_name,
};
use serde_json::Value;

use super::decode::{cannot_be_handled, go_json_kind};
use super::util::{
    Errs, Obj, forbidden, get_str, go_string_slice, invalid, invalid_raw, nonnegative, required,
    string_list, string_map,
};
use crate::errors::ApiError;

const NAMESPACE_MISMATCH: &str =
    "the namespace of the provided object does not match the namespace sent on the request";

/// Checks `apiVersion` and `kind` against the endpoint; absent or empty ones are fine (the
/// decoder defaults them from the URL, as Kubernetes' does).
pub(crate) fn check_type_meta(info: &ResourceInfo, map: &Obj) -> Result<(), ApiError> {
    let expected = info.api_version();
    match map.get("apiVersion") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() || *s == expected => {}
        Some(Value::String(s)) => {
            return Err(ApiError::bad_request(&format!(
                "the API version in the data ({s}) does not match the expected API version ({expected})"
            )));
        }
        Some(other) => return Err(type_meta_type_error("apiVersion", other)),
    }
    match map.get("kind") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(k)) if k.is_empty() || k == info.kind => Ok(()),
        Some(Value::String(k)) => {
            let detail = if registry::by_kind(info.group, k).is_some() {
                format!(
                    "converting (v1.{k}) to (v1.{}): unknown conversion",
                    info.kind
                )
            } else {
                format!(
                    "no kind \"{k}\" is registered for version \"{expected}\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
                )
            };
            Err(ApiError::bad_request(&format!(
                "{k} in version \"{}\" cannot be handled as a {}: {detail}",
                info.version, info.kind
            )))
        }
        Some(other) => Err(type_meta_type_error("kind", other)),
    }
}

fn type_meta_type_error(field: &str, value: &Value) -> ApiError {
    ApiError::bad_request(&format!(
        "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go struct field .{field} of type string",
        go_json_kind(value)
    ))
}

/// Sets `apiVersion` and `kind` to the endpoint's (after [`check_type_meta`]).
pub(crate) fn set_type_meta(info: &ResourceInfo, map: &mut Obj) {
    map.insert("apiVersion".into(), Value::String(info.api_version()));
    map.insert("kind".into(), Value::String(info.kind.to_string()));
}

/// The object's `metadata`, created when absent; a 400 when it is not an object.
fn metadata_mut<'a>(info: &ResourceInfo, map: &'a mut Obj) -> Result<&'a mut Obj, ApiError> {
    let slot = map.entry("metadata").or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Obj::new());
    }
    let kind = go_json_kind(slot);
    slot.as_object_mut().ok_or_else(|| {
        cannot_be_handled(
            info.kind,
            info.version,
            &format!(
                "json: cannot unmarshal {kind} into Go struct field {}.metadata of type v1.ObjectMeta",
                info.kind
            ),
        )
    })
}

/// `rest.BeforeCreate`'s part for metadata: namespace from the request, system fields set.
pub(crate) fn prepare_create_meta(
    info: &ResourceInfo,
    namespace: Option<&str>,
    map: &mut Obj,
    now: &str,
    uid: &str,
) -> Result<(), ApiError> {
    let meta = metadata_mut(info, map)?;
    let current = get_str(meta, "namespace").to_string();
    if info.namespaced {
        if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
            if current.is_empty() {
                meta.insert("namespace".into(), Value::String(ns.to_string()));
            } else if current != ns {
                return Err(ApiError::bad_request(NAMESPACE_MISMATCH));
            }
        }
    } else {
        meta.remove("namespace");
    }
    meta.insert("uid".into(), Value::String(uid.to_string()));
    meta.insert("creationTimestamp".into(), Value::String(now.to_string()));
    for key in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        meta.remove(key);
    }
    Ok(())
}

/// `rest.BeforeUpdate`'s part for metadata: the request may not move or rename the object, and
/// the fields only the server sets are copied from the stored object. Returns the field errors
/// that make the update invalid (a changed uid, finalizers added during deletion).
pub(crate) fn prepare_update_meta(
    info: &ResourceInfo,
    old: &Obj,
    new: &mut Obj,
) -> Result<Errs, ApiError> {
    let empty = Obj::new();
    let old_meta = old
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let meta = metadata_mut(info, new)?;
    let mut errs = Errs::new();

    let old_name = get_str(old_meta, "name");
    match get_str(meta, "name") {
        "" => {
            meta.insert("name".into(), Value::String(old_name.to_string()));
        }
        n if n != old_name => {
            return Err(ApiError::bad_request(&format!(
                "the name of the object ({n}) does not match the name on the URL ({old_name})"
            )));
        }
        _ => {}
    }
    if info.namespaced {
        let old_ns = get_str(old_meta, "namespace");
        match get_str(meta, "namespace") {
            "" => {
                meta.insert("namespace".into(), Value::String(old_ns.to_string()));
            }
            ns if ns != old_ns => return Err(ApiError::bad_request(NAMESPACE_MISMATCH)),
            _ => {}
        }
    } else {
        meta.remove("namespace");
    }
    let old_uid = get_str(old_meta, "uid");
    match get_str(meta, "uid") {
        "" => {
            meta.insert("uid".into(), Value::String(old_uid.to_string()));
        }
        u if u != old_uid => errs.push(invalid("metadata.uid", u, "field is immutable")),
        _ => {}
    }
    for key in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(key).filter(|v| !v.is_null()) {
            Some(v) => {
                meta.insert(key.to_string(), v.clone());
            }
            None => {
                meta.remove(key);
            }
        }
    }
    if old_meta
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        let before: BTreeSet<String> = string_list(old_meta.get("finalizers"))
            .into_iter()
            .collect();
        let added: BTreeSet<String> = string_list(meta.get("finalizers"))
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            let quoted: Vec<String> = added
                .iter()
                .map(|f| api_types::validation::go_quote(f))
                .collect();
            errs.push(forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers [{}]",
                    quoted.join(" ")
                ),
            ));
        }
    }
    Ok(errs)
}

/// `ValidateObjectMeta`: names, namespace, generation, labels, annotations, owner references and
/// finalizers.
pub(crate) fn validate_object_meta(info: &ResourceInfo, meta: &Obj, errs: &mut Errs) {
    let name = get_str(meta, "name");
    let generate = meta.get("generateName").and_then(Value::as_str);
    errs.extend(validate_object_meta_name(
        &info.qualified_resource(),
        name,
        generate,
    ));
    let ns = get_str(meta, "namespace");
    if info.namespaced {
        if ns.is_empty() {
            errs.push(required("metadata.namespace", ""));
        } else {
            for msg in is_dns1123_label(ns) {
                errs.push(invalid("metadata.namespace", ns, msg));
            }
        }
    } else if !ns.is_empty() {
        errs.push(forbidden("metadata.namespace", "not allowed on this type"));
    }
    nonnegative(
        errs,
        "metadata.generation",
        meta.get("generation").and_then(Value::as_i64),
    );
    errs.extend(validate_labels(
        &string_map(meta.get("labels")),
        "metadata.labels",
    ));
    errs.extend(validate_annotations(
        &string_map(meta.get("annotations")),
        "metadata.annotations",
    ));
    validate_owner_references(meta, errs);
    validate_finalizers(meta.get("finalizers"), "metadata.finalizers", errs);
}

fn validate_owner_references(meta: &Obj, errs: &mut Errs) {
    const PATH: &str = "metadata.ownerReferences";
    let empty = Obj::new();
    let mut first_controller: Option<String> = None;
    let refs = meta.get("ownerReferences").and_then(Value::as_array);
    for r in refs.into_iter().flatten() {
        let r = r.as_object().unwrap_or(&empty);
        let api_version = get_str(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(invalid(
                format!("{PATH}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            if get_str(r, key).is_empty() {
                errs.push(invalid(format!("{PATH}.{key}"), "", "must not be empty"));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{}/{}", get_str(r, "kind"), get_str(r, "name"));
            match &first_controller {
                Some(first) => errs.push(invalid_raw(
                    PATH,
                    serde_json::to_string(&meta.get("ownerReferences")).unwrap_or_default(),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                    ),
                )),
                None => first_controller = Some(this),
            }
        }
    }
}

/// `ValidateFinalizers`: qualified names, and not both `orphan` and `foregroundDeletion`.
pub(crate) fn validate_finalizers(list: Option<&Value>, path: &str, errs: &mut Errs) {
    let finalizers = string_list(list);
    for f in &finalizers {
        for msg in is_qualified_name(f) {
            errs.push(invalid(path, f, msg));
        }
    }
    if finalizers.iter().any(|f| f == "orphan")
        && finalizers.iter().any(|f| f == "foregroundDeletion")
    {
        errs.push(invalid_raw(
            path,
            go_string_slice(list),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}
