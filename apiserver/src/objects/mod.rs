//! Per-kind preparation of writes: what kube-apiserver's registry strategies
//! (`pkg/registry/*/strategy.go`), v1 defaulting (`pkg/apis/*/v1/defaults.go`), validation
//! (`pkg/apis/*/validation`) and the default admission plugins do to an object before it is
//! stored. Pure functions over `serde_json::Value`: the handlers decode the body, call
//! [`decode_typed`], then [`prepare_create`] or [`prepare_update`], and store the result.
//!
//! - [`decode_typed`]: the body decodes into the kind's `k8s-openapi` type (400 otherwise, worded
//!   as Kubernetes' decoder words it, naming the field).
//! - [`prepare_create`] / [`prepare_update`]: type and object metadata, the strategy's
//!   `PrepareForCreate`/`PrepareForUpdate` (status reset or kept, generation), defaults, and
//!   validation (422 with every cause).
//! - [`to_scale`] / [`apply_scale`]: the `scale` subresource.
//! - [`graceful_pod_deletion`], [`has_status_subresource`], [`generate_name`],
//!   [`check_delete`]: small policies the handlers ask about.
//! - [`admit_pod_create`], [`validate_admission`]: the Priority admission plugin over a snapshot
//!   of the PriorityClasses ([`PriorityClassInfo`]), which the handlers read and call before
//!   [`prepare_create`] (pods) and after it or [`prepare_update`] (PriorityClasses).
//!
//! Every function here tolerates malformed input (wrong types anywhere) without panicking.

// `ApiError` is large (it carries a `Status`' details); it is the error type of every handler,
// so boxing it here alone would buy nothing.
#![allow(clippy::result_large_err)]

mod apps;
mod decode;
mod defaults;
pub mod event_conversion;
mod kinds;
pub mod managed;
mod meta;
mod pod;
mod priority;
mod scale;
pub mod strategic;
mod util;

#[cfg(test)]
mod tests;

use api_types::registry::ResourceInfo;
use serde_json::{Value, json};

pub use decode::{UnknownField, decode_typed, duplicate_fields};
pub use pod::graceful_pod_deletion;
pub use priority::{
    PriorityClassInfo, SYSTEM_PRIORITY_CLASSES, SystemPriorityClass, admit_pod_create,
    validate_admission,
};
pub use scale::{apply_scale, to_scale};

use crate::errors::ApiError;
use util::{Errs, Obj, get_obj, get_str, obj_mut_or_create, semantic_eq};

/// The kinds with their own strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Namespace,
    Pod,
    Node,
    Service,
    Endpoints,
    ConfigMap,
    Secret,
    ServiceAccount,
    /// `v1` Event.
    CoreEvent,
    Deployment,
    ReplicaSet,
    Lease,
    PriorityClass,
    /// `events.k8s.io/v1` Event.
    EventsEvent,
    Other,
}

impl Kind {
    pub(crate) fn of(info: &ResourceInfo) -> Kind {
        match (info.group, info.resource) {
            ("", "namespaces") => Kind::Namespace,
            ("", "pods") => Kind::Pod,
            ("", "nodes") => Kind::Node,
            ("", "services") => Kind::Service,
            ("", "endpoints") => Kind::Endpoints,
            ("", "configmaps") => Kind::ConfigMap,
            ("", "secrets") => Kind::Secret,
            ("", "serviceaccounts") => Kind::ServiceAccount,
            ("", "events") => Kind::CoreEvent,
            ("apps", "deployments") => Kind::Deployment,
            ("apps", "replicasets") => Kind::ReplicaSet,
            ("coordination.k8s.io", "leases") => Kind::Lease,
            ("scheduling.k8s.io", "priorityclasses") => Kind::PriorityClass,
            ("events.k8s.io", "events") => Kind::EventsEvent,
            _ => Kind::Other,
        }
    }

    /// Whether the strategy sets `metadata.generation` (1 on create, bumped on spec changes).
    fn has_generation(self) -> bool {
        matches!(self, Kind::Pod | Kind::Deployment | Kind::ReplicaSet)
    }

    /// Whether the strategy sets `generation: 1` on create: the kinds with a generation, and
    /// PriorityClasses, whose strategy sets it and never bumps it.
    fn starts_at_generation_one(self) -> bool {
        self.has_generation() || self == Kind::PriorityClass
    }
}

/// Kubernetes' `SimpleNameGenerator`: the prefix (cut to 58 bytes, so that the name stays within
/// 63) followed by the random suffix (normally 5 characters).
pub fn generate_name(prefix: &str, random5: &str) -> String {
    const MAX_PREFIX: usize = 63 - 5;
    let mut cut = prefix.len().min(MAX_PREFIX);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{random5}", &prefix[..cut])
}

/// What a resource's REST storage refuses to delete, before anything is read: the system
/// PriorityClasses (403). Asked for a DELETE of one object, not for `deletecollection`.
pub fn check_delete(info: &ResourceInfo, name: &str) -> Result<(), ApiError> {
    match Kind::of(info) {
        Kind::PriorityClass => priority::check_delete(name),
        _ => Ok(()),
    }
}

/// Whether writes to the main resource ignore `status` (it has a `status` subresource).
pub fn has_status_subresource(info: &ResourceInfo) -> bool {
    info.subresources.contains(&"status")
}

/// Prepares an object for creation, as `rest.BeforeCreate` does with the kind's strategy:
///
/// - `apiVersion`/`kind` must match the endpoint (400) and are set;
/// - the namespace comes from the request (a different one in the body is a 400); cluster-scoped
///   objects lose theirs;
/// - `uid` and `creationTimestamp` (`now`, RFC 3339) are set; `resourceVersion`,
///   `deletionTimestamp` and `deletionGracePeriodSeconds` are cleared;
/// - defaults, and for pods the default admission plugins that need only the pod (default
///   tolerations, the `default` service account; Priority is [`admit_pod_create`], which the
///   caller runs first);
/// - the strategy's `PrepareForCreate`: `generation: 1` for pods, deployments, replica sets and
///   priority classes;
///   a fresh status for pods (`Pending` + QoS class), deployments, replica sets, services and
///   namespaces (`Active`, plus the `kubernetes` finalizer); nodes keep theirs;
/// - validation: a 422 listing every problem.
///
/// The name must already be set: the caller resolves `generateName` first with
/// [`generate_name`].
pub fn prepare_create(
    info: &ResourceInfo,
    namespace: Option<&str>,
    obj: &mut Value,
    now: &str,
    uid: &str,
) -> Result<(), ApiError> {
    let kind = Kind::of(info);
    let message = decode::not_an_object_message(obj);
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(&message));
    };
    meta::check_type_meta(info, map)?;
    meta::set_type_meta(info, map);
    meta::prepare_create_meta(info, namespace, map, now, uid)?;
    defaults::apply_defaults(kind, map);
    let name = object_name(map);
    if kind == Kind::Pod {
        pod::admit_create(map);
    }
    if kind.starts_at_generation_one()
        && let Some(meta) = obj_mut_or_create(map, "metadata")
    {
        meta.insert("generation".into(), json!(1));
    }
    match kind {
        Kind::Pod => pod::prepare_create(map, now),
        Kind::Deployment => {
            map.insert("status".into(), json!({}));
        }
        Kind::ReplicaSet => {
            map.insert("status".into(), json!({"replicas": 0}));
        }
        Kind::Service => kinds::prepare_service_create(map),
        Kind::Namespace => kinds::prepare_namespace_create(map),
        _ => {}
    }
    let mut errs = Errs::new();
    validate_object(info, kind, map, &mut errs);
    if kind == Kind::Pod {
        pod::validate_pod_create(get_obj(map, "spec").unwrap_or(&Obj::new()), &mut errs);
    }
    if matches!(kind, Kind::CoreEvent | Kind::EventsEvent) {
        kinds::validate_event(kind, map, true, &mut errs);
    }
    if kind == Kind::PriorityClass {
        priority::validate_create(map, &mut errs);
    }
    invalid_if_any(info, &name, &errs)
}

/// Prepares an update of `old` (as stored) to `new`, as `rest.BeforeUpdate` does with the kind's
/// strategy (`subresource` is `None` for the main resource, `Some("status")`, or
/// `Some("finalize")` for namespaces):
///
/// - `apiVersion`/`kind` as on create; name and namespace must stay (400); `uid`,
///   `creationTimestamp`, `deletionTimestamp`, `deletionGracePeriodSeconds` and `generation`
///   come from `old`; finalizers cannot be added to an object being deleted;
/// - main resource: defaults (and pods' default tolerations, and the priority and preemption
///   policy they were admitted with when the writer left them out); `status` is taken from
///   `old` for kinds with a status subresource; `generation` is bumped when the spec changed
///   (deployments: also when annotations changed, as Kubernetes does); namespaces keep their
///   finalizers; services keep their allocated cluster IPs and node ports;
/// - `status`: only the status (and metadata, as Kubernetes allows) is taken from `new`; the
///   spec comes from `old` (deployments: also labels; pods: also owner references);
/// - validation, including the update rules: immutable selectors, pod spec changes limited to
///   images and the like, immutable cluster IPs, immutable ConfigMaps/Secrets, …
pub fn prepare_update(
    info: &ResourceInfo,
    subresource: Option<&str>,
    old: &Value,
    new: &mut Value,
) -> Result<(), ApiError> {
    let kind = Kind::of(info);
    let empty = Obj::new();
    let old_map = old.as_object().unwrap_or(&empty);
    let message = decode::not_an_object_message(new);
    let Some(map) = new.as_object_mut() else {
        return Err(ApiError::bad_request(&message));
    };
    meta::check_type_meta(info, map)?;
    meta::set_type_meta(info, map);
    let mut errs = meta::prepare_update_meta(info, old_map, map)?;
    let name = object_name(map);
    let sub = subresource.filter(|s| !s.is_empty());
    defaults::apply_defaults(kind, map);
    match sub {
        None => {
            if kind == Kind::Pod
                && let Some(spec) = obj_mut_or_create(map, "spec")
            {
                pod::default_tolerations(spec);
                if let Some(old_spec) = get_obj(old_map, "spec") {
                    priority::admit_pod_update(old_spec, spec);
                }
            }
            if has_status_subresource(info) {
                copy_from(old_map, map, "status");
            }
            match kind {
                Kind::Namespace => {
                    let finalizers = get_obj(old_map, "spec")
                        .and_then(|s| s.get("finalizers"))
                        .cloned();
                    if let Some(spec) = obj_mut_or_create(map, "spec") {
                        match finalizers {
                            Some(f) => spec.insert("finalizers".into(), f),
                            None => spec.remove("finalizers"),
                        };
                    }
                }
                Kind::Service => kinds::prepare_service_update(old_map, map),
                _ => {}
            }
            if kind.has_generation() {
                let mut changed = !semantic_eq(old_map.get("spec"), map.get("spec"));
                if kind == Kind::Deployment {
                    let annotations = |m: &Obj| {
                        get_obj(m, "metadata")
                            .and_then(|m| m.get("annotations"))
                            .cloned()
                    };
                    changed |=
                        !semantic_eq(annotations(old_map).as_ref(), annotations(map).as_ref());
                }
                if changed {
                    let generation = get_obj(old_map, "metadata")
                        .and_then(|m| m.get("generation"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if let Some(meta) = obj_mut_or_create(map, "metadata") {
                        meta.insert("generation".into(), json!(generation.saturating_add(1)));
                    }
                }
            }
            validate_object(info, kind, map, &mut errs);
            match kind {
                Kind::Pod => {
                    let old_spec = get_obj(old_map, "spec").unwrap_or(&empty);
                    pod::validate_pod_spec_update(
                        old_spec,
                        get_obj(map, "spec").unwrap_or(&empty),
                        &mut errs,
                    );
                }
                Kind::Deployment | Kind::ReplicaSet => {
                    apps::validate_update(old_map, map, &mut errs)
                }
                Kind::Service => kinds::validate_service_update(old_map, map, &mut errs),
                Kind::ConfigMap | Kind::Secret => {
                    kinds::validate_data_update(kind, old_map, map, &mut errs)
                }
                Kind::Node => kinds::validate_node_update(old_map, map, &mut errs),
                Kind::CoreEvent | Kind::EventsEvent => {
                    kinds::validate_event(kind, map, false, &mut errs)
                }
                Kind::PriorityClass => priority::validate_update(old_map, map, &mut errs),
                _ => {}
            }
        }
        Some("status") if has_status_subresource(info) => {
            copy_from(old_map, map, "spec");
            match kind {
                Kind::Pod => pod::prepare_status_update(old_map, map),
                Kind::Deployment => {
                    let labels = get_obj(old_map, "metadata")
                        .and_then(|m| m.get("labels"))
                        .cloned();
                    if let Some(meta) = obj_mut_or_create(map, "metadata") {
                        match labels {
                            Some(l) => meta.insert("labels".into(), l),
                            None => meta.remove("labels"),
                        };
                    }
                }
                _ => {}
            }
            meta::validate_object_meta(info, get_obj(map, "metadata").unwrap_or(&empty), &mut errs);
            match kind {
                Kind::Deployment | Kind::ReplicaSet => apps::validate_status(kind, map, &mut errs),
                Kind::Namespace => kinds::validate_namespace_status(map, &mut errs),
                Kind::Node => {
                    kinds::validate_node(map, &mut errs);
                    kinds::validate_node_update(old_map, map, &mut errs);
                }
                _ => {}
            }
        }
        Some("finalize") if kind == Kind::Namespace => {
            copy_from(old_map, map, "status");
            meta::validate_object_meta(info, get_obj(map, "metadata").unwrap_or(&empty), &mut errs);
            kinds::validate_namespace(map, &mut errs);
        }
        Some(other) => {
            return Err(ApiError::bad_request(&format!(
                "the server does not support the {other} subresource of {}",
                info.qualified_resource()
            )));
        }
    }
    invalid_if_any(info, &name, &errs)
}

/// The object's name (empty when missing).
fn object_name(map: &Obj) -> String {
    get_obj(map, "metadata")
        .map(|m| get_str(m, "name").to_string())
        .unwrap_or_default()
}

/// Replaces `key` of `to` with `from`'s (removing it when `from` has none).
fn copy_from(from: &Obj, to: &mut Obj, key: &str) {
    match from.get(key) {
        Some(v) => {
            to.insert(key.to_string(), v.clone());
        }
        None => {
            to.remove(key);
        }
    }
}

fn invalid_if_any(info: &ResourceInfo, name: &str, errs: &Errs) -> Result<(), ApiError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(info.kind, info.group, name, errs))
    }
}

/// The kind's `Validate`: object metadata first, then the kind's own rules.
fn validate_object(info: &ResourceInfo, kind: Kind, map: &Obj, errs: &mut Errs) {
    let empty = Obj::new();
    meta::validate_object_meta(info, get_obj(map, "metadata").unwrap_or(&empty), errs);
    match kind {
        Kind::Pod => pod::validate_pod_spec(get_obj(map, "spec").unwrap_or(&empty), "spec", errs),
        Kind::Deployment | Kind::ReplicaSet => apps::validate_spec(kind, map, errs),
        Kind::Service => kinds::validate_service(map, errs),
        Kind::ConfigMap => kinds::validate_config_map(map, errs),
        Kind::Secret => kinds::validate_secret(map, errs),
        Kind::Namespace => kinds::validate_namespace(map, errs),
        Kind::Node => kinds::validate_node(map, errs),
        Kind::Endpoints => kinds::validate_endpoints(map, errs),
        Kind::Lease => kinds::validate_lease(map, errs),
        // PriorityClasses: create-only rules (`ValidatePriorityClass`) in `prepare_create`,
        // update rules in `prepare_update`, as Kubernetes' update validation is its own.
        Kind::CoreEvent
        | Kind::EventsEvent
        | Kind::ServiceAccount
        | Kind::PriorityClass
        | Kind::Other => {}
    }
}
