//! Admission: the step of a write between decoding its body and storing it, where
//! kube-apiserver runs its admission plugins.
//!
//! The plugins that need nothing but the object run with the kind's strategy in
//! [`crate::objects`] (DefaultTolerationSeconds, the ServiceAccount plugin's `default` account;
//! NamespaceLifecycle is the handlers' namespace check). The ones here read other objects, which
//! kube-apiserver's plugins read from informers; Ferry reads them from its watch cache:
//!
//! - Priority: a new pod's `priorityClassName` is resolved into its priority
//!   ([`admit_create`]); a PriorityClass may become the global default only when no other
//!   class is one ([`Validation::validate`]).
//!
//! The order is kube-apiserver's create handler's: mutating admission after decoding, before the
//! strategy (`objects::prepare_create`: name generation, defaults, validation); validating
//! admission after the strategy, on creates and inside each update's read–modify–write.
//! Subresource writes are not admitted here (Priority ignores them, as in Kubernetes).
//!
//! Like kube-apiserver's informers, the cache may lag a write by a moment. Reads whose answer
//! could refuse a request (a pod naming a class the cache lacks, a class becoming the global
//! default) first bring the cache up to the store's current revision, so a class created just
//! before is seen; a pod that names no class takes the global default the cache holds, as
//! kube-apiserver's lister would give it.

use api_types::json::At;
use api_types::registry::{self, ResourceInfo};
use serde_json::Value;

use super::Server;
use super::handlers::{collection_prefix, decode_stored};
use crate::errors::ApiError;
use crate::objects::{self, PriorityClassInfo};
use crate::storage::ListOptions;

fn is_pods(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.resource == "pods"
}

fn is_priority_classes(info: &ResourceInfo) -> bool {
    info.group == "scheduling.k8s.io" && info.resource == "priorityclasses"
}

/// Mutating admission of a create of `obj` (decoded, not yet prepared): a pod gets its
/// priority from its PriorityClass (403 when it names a class that does not exist).
pub(crate) async fn admit_create(
    server: &Server,
    info: &ResourceInfo,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if !is_pods(info) {
        return Ok(());
    }
    let named = obj
        .at("/spec/priorityClassName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let mut classes = priority_classes(server, false).await?;
    if let Some(name) = named
        && !classes.iter().any(|c| c.name == name)
    {
        // Not (yet) in the cache: look again once it has caught up with the store.
        classes = priority_classes(server, true).await?;
    }
    objects::admit_pod_create(obj, &classes)
}

/// What validating admission of writes to one resource reads, read once before the write (so
/// that the read–modify–write itself stays free of I/O beyond the store's).
pub(crate) struct Validation {
    /// PriorityClasses, for writes of PriorityClasses.
    priority_classes: Option<Vec<PriorityClassInfo>>,
}

impl Validation {
    /// Reads what the plugins need to validate writes to `info`.
    pub(crate) async fn read(server: &Server, info: &ResourceInfo) -> Result<Validation, ApiError> {
        let priority_classes = if is_priority_classes(info) {
            Some(priority_classes(server, true).await?)
        } else {
            None
        };
        Ok(Validation { priority_classes })
    }

    /// Validating admission of `obj` (prepared by the strategy), written to the main resource
    /// (`sub` is `None`) or a subresource; `create` for creates, else an update.
    pub(crate) fn validate(
        &self,
        sub: Option<&str>,
        obj: &Value,
        create: bool,
    ) -> Result<(), ApiError> {
        if sub.is_some() {
            return Ok(());
        }
        if let Some(classes) = &self.priority_classes {
            objects::validate_admission(obj, create, classes)?;
        }
        Ok(())
    }
}

/// The PriorityClasses, from the watch cache once it is ready (`fresh`: once it reflects the
/// store's current revision), else from the store.
async fn priority_classes(
    server: &Server,
    fresh: bool,
) -> Result<Vec<PriorityClassInfo>, ApiError> {
    let info = registry::by_group_version_resource("scheduling.k8s.io", "v1", "priorityclasses")
        .ok_or_else(|| ApiError::internal("priorityclasses are not registered"))?;
    let prefix = collection_prefix(server, info, None);
    let qr = info.qualified_resource();
    if let Some(cacher) = server.caches.get(info) {
        let revision = if fresh {
            server
                .store
                .current_revision()
                .await
                .map_err(|e| ApiError::from_storage(e, &qr, ""))?
        } else {
            0
        };
        if cacher.wait_fresh(revision).await {
            let (cached, _) = cacher.snapshot(&prefix);
            return Ok(cached
                .iter()
                .filter_map(|c| PriorityClassInfo::from_object(&c.value()))
                .collect());
        }
    }
    let page = server
        .store
        .list(&prefix, &ListOptions::default())
        .await
        .map_err(|e| ApiError::from_storage(e, &qr, ""))?;
    Ok(page
        .items
        .iter()
        .filter_map(|kv| decode_stored(info, &kv.value, kv.mod_revision).ok())
        .filter_map(|obj| PriorityClassInfo::from_object(&obj))
        .collect())
}
