//! The resource verbs: get, list, create, update, patch, delete, deletecollection and the
//! subresources (status, scale, binding, eviction), over the [`Storage`] trait.
//!
//! Objects are stored as JSON without `metadata.resourceVersion`; it is set from the store's
//! modification revision on the way out, as kube-apiserver's etcd3 store does.

use std::collections::BTreeMap;
use std::sync::Arc;

use api_types::fields::{self, FieldSelector};
use api_types::json::At;
use api_types::labels::Selector;
use api_types::registry::{self, ResourceInfo};
use api_types::validation::go_quote;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::admission::{self, Validation};
use super::cache::Cached;
use super::request::{ResourceRequest, Verb};
use super::watch::initializing;
use super::{Body, Query, Server, bytes_response, ipalloc, json_response};
use crate::errors::{ApiError, OPTIMISTIC_LOCK_MESSAGE};
use crate::objects::{self, event_conversion, managed, strategic};
use crate::storage::{
    KeyValue, ListOptions, Preconditions, Revision, Storage, StorageError, encode_continue,
};
use crate::tables;

/// The namespaces that exist from the start, as in Kubernetes.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the system namespaces and the system PriorityClasses that do not exist yet (the
/// latter as kube-apiserver's `scheduling/bootstrap-system-priority-classes` post-start hook
/// does: an existing class is left as it is).
pub async fn bootstrap_store(store: &dyn Storage, prefix: &str) -> Result<(), ApiError> {
    let info = registry::by_group_version_resource("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("namespaces are not registered"))?;
    for name in SYSTEM_NAMESPACES {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        create_if_absent(store, prefix, info, obj, None).await?;
    }
    let info = registry::by_group_version_resource("scheduling.k8s.io", "v1", "priorityclasses")
        .ok_or_else(|| ApiError::internal("priorityclasses are not registered"))?;
    for class in objects::SYSTEM_PRIORITY_CLASSES {
        // Written as kube-apiserver's loopback client writes them.
        create_if_absent(
            store,
            prefix,
            info,
            class.manifest(),
            Some("kube-apiserver"),
        )
        .await?;
    }
    Ok(())
}

/// Prepares and creates a cluster-scoped object unless one of its name exists; `manager`
/// records the write in managedFields.
async fn create_if_absent(
    store: &dyn Storage,
    prefix: &str,
    info: &ResourceInfo,
    mut obj: Value,
    manager: Option<&str>,
) -> Result<(), ApiError> {
    let now = now_rfc3339();
    objects::prepare_create(info, None, &mut obj, &now, &new_uid())?;
    if let Some(name) = manager {
        let api_version = info.api_version();
        let writer = managed::Manager {
            name,
            api_version: &api_version,
            subresource: None,
            now: &now,
        };
        let schema = strategic::Schema::of_kind(info.group, info.kind);
        managed::record_update(None, &mut obj, schema, managed::Scope::Main, &writer);
    }
    let name = obj
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let key = api_types::keys::object_key(prefix, info.storage_path, None, &name);
    match store.create(&key, encode(info, &obj)).await {
        Ok(_) | Err(StorageError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(ApiError::from_storage(e, &info.qualified_resource(), &name)),
    }
}

/// How many objects of each resource are stored (for `apiserver_storage_objects`).
pub async fn object_counts(server: &Server) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for info in registry::all() {
        let prefix = api_types::keys::collection_prefix(&server.prefix, info.storage_path, None);
        if let Ok(n) = server.store.count(&prefix).await {
            counts.push((info.qualified_resource(), n));
        }
    }
    counts.sort();
    counts.dedup_by(|a, b| a.0 == b.0);
    counts
}

/// Serves a non-watch resource request.
pub async fn dispatch(
    server: &Arc<Server>,
    request: ResourceRequest,
    req: Request<Incoming>,
    query: Query,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut ctx = Ctx {
        server,
        info: request.info,
        namespace: request.namespace.clone(),
        dry_run: query.get("dryRun") == Some("All"),
        duplicates: Vec::new(),
        query,
        accept,
        warnings: std::sync::Mutex::new(Vec::new()),
    };
    if matches!(request.verb, Verb::Create | Verb::Update | Verb::Patch) {
        check_field_validation(&ctx.query, request.verb)?;
    }
    if matches!(
        request.verb,
        Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection
    ) {
        check_dry_run(&ctx.query, request.verb)?;
    }
    let body = match request.verb {
        Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection => {
            read_body(body).await?
        }
        _ => Bytes::new(),
    };
    let media = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("application/json")
        .trim();
    if matches!(request.verb, Verb::Create | Verb::Update | Verb::Patch)
        && matches!(
            media,
            "application/json"
                | "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
        )
        && ctx.query.get("fieldValidation") != Some("Ignore")
    {
        ctx.duplicates = objects::duplicate_fields(&body);
    }
    if matches!(request.verb, Verb::Delete | Verb::DeleteCollection) {
        // kubectl sends a delete's dryRun in its DeleteOptions.
        let options: Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(values) = options.get("dryRun").and_then(Value::as_array) {
            for value in values {
                match value.as_str() {
                    Some("All") => ctx.dry_run = true,
                    other => {
                        let mut query = Query::parse(None);
                        query.push("dryRun", other.unwrap_or_default());
                        check_dry_run(&query, request.verb)?;
                    }
                }
            }
        }
    }
    let name = request.name.as_deref();
    let response = match (request.verb, request.subresource.as_deref(), name) {
        (Verb::Get, None | Some("status"), Some(name)) => ctx.get(name).await,
        (Verb::Get, Some("scale"), Some(name)) => ctx.get_scale(name).await,
        (Verb::List, None, None) => ctx.list().await,
        (Verb::Create, None, None) => ctx.create(&parts.headers, &body).await,
        (Verb::Create, Some("binding"), Some(name)) => ctx.bind(name, &parts.headers, &body).await,
        (Verb::Create, Some("eviction"), Some(name)) => {
            ctx.evict(name, &parts.headers, &body).await
        }
        (Verb::Update, sub @ (None | Some("status") | Some("finalize")), Some(name)) => {
            ctx.update(name, sub, &parts.headers, &body).await
        }
        (Verb::Update, Some("scale"), Some(name)) => {
            ctx.update_scale(name, &parts.headers, &body).await
        }
        (Verb::Patch, sub @ (None | Some("status") | Some("scale")), Some(name)) => {
            ctx.patch(name, sub, &parts.headers, &body).await
        }
        (Verb::Delete, None, Some(name)) => ctx.delete(name, &body).await,
        (Verb::DeleteCollection, None, None) => ctx.delete_collection(&body).await,
        _ => Err(ApiError::method_not_allowed(
            request.verb.as_str(),
            &request.info.qualified_resource(),
        )),
    };
    let mut response = response?;
    let warnings = std::mem::take(&mut *ctx.warnings.lock().unwrap_or_else(|e| e.into_inner()));
    for warning in warnings {
        // RFC 7234 warn-code 299, as kube-apiserver sends them.
        let value = format!("299 - {}", go_quote(&warning));
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
    Ok(response)
}

/// `fieldValidation` must be empty, `Ignore`, `Warn` or `Strict` (422 otherwise, as
/// kube-apiserver's `ValidateFieldValidation` on the request's options).
fn check_field_validation(query: &Query, verb: Verb) -> Result<(), ApiError> {
    match query.get("fieldValidation") {
        None | Some("" | "Ignore" | "Warn" | "Strict") => Ok(()),
        Some(other) => Err(unsupported_option(
            verb,
            "fieldValidation",
            other,
            r#"supported values: "", "Ignore", "Strict", "Warn""#,
        )),
    }
}

/// `dryRun` must be absent or `All` (422 otherwise, as kube-apiserver's `ValidateDryRun`).
fn check_dry_run(query: &Query, verb: Verb) -> Result<(), ApiError> {
    match query.get("dryRun") {
        None | Some("" | "All") => Ok(()),
        Some(other) => Err(unsupported_option(
            verb,
            "dryRun",
            other,
            r#"supported values: "All""#,
        )),
    }
}

/// 422 for an option value the server does not support, on the verb's options kind.
fn unsupported_option(verb: Verb, field: &str, value: &str, detail: &str) -> ApiError {
    let options = match verb {
        Verb::Create => "CreateOptions",
        Verb::Update => "UpdateOptions",
        Verb::Delete | Verb::DeleteCollection => "DeleteOptions",
        _ => "PatchOptions",
    };
    ApiError::invalid(
        options,
        "meta.k8s.io",
        "",
        &[api_types::validation::FieldError {
            kind: api_types::validation::FieldErrorType::NotSupported,
            field: field.into(),
            bad_value: Some(go_quote(value)),
            detail: detail.into(),
        }],
    )
}

/// How much of a request body the server reads and drops before answering without it.
pub const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a request body, refusing more than [`super::MAX_BODY_BYTES`]. The rest of an oversized
/// body is read and dropped (up to a bound) so that the 413 reaches clients that are still
/// sending, rather than a reset stream.
async fn read_body(mut body: Incoming) -> Result<Bytes, ApiError> {
    let mut data = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(&format!("cannot read the request body: {e}")))?;
        if let Some(chunk) = frame.data_ref() {
            total += chunk.len();
            if total <= super::MAX_BODY_BYTES {
                data.extend_from_slice(chunk);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > super::MAX_BODY_BYTES {
        return Err(ApiError::request_entity_too_large(&format!(
            "the request body is larger than {} bytes",
            super::MAX_BODY_BYTES
        )));
    }
    Ok(data.freeze())
}

/// The storage key of an object.
pub fn object_key(
    server: &Server,
    info: &ResourceInfo,
    namespace: Option<&str>,
    name: &str,
) -> String {
    api_types::keys::object_key(
        &server.prefix,
        info.storage_path,
        if info.namespaced { namespace } else { None },
        name,
    )
}

/// The storage prefix of a collection (one namespace, or all).
pub fn collection_prefix(server: &Server, info: &ResourceInfo, namespace: Option<&str>) -> String {
    api_types::keys::collection_prefix(
        &server.prefix,
        info.storage_path,
        if info.namespaced { namespace } else { None },
    )
}

/// A stored value as the API shows it: with `metadata.resourceVersion`, and with `kind` and
/// `apiVersion` (core and events.k8s.io events share storage, in the core form; these are
/// converted to the requested form).
pub fn decode_stored(
    info: &ResourceInfo,
    value: &[u8],
    revision: Revision,
) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(&format!("a stored object is not JSON: {e}")))?;
    if let Some(map) = obj.as_object_mut() {
        map.insert("kind".into(), Value::String(info.kind.to_owned()));
        map.insert("apiVersion".into(), Value::String(info.api_version()));
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
        }
    }
    if is_events_v1(info) {
        obj = event_conversion::core_to_events_v1(&obj);
    }
    Ok(obj)
}

/// `events.k8s.io` events, stored in the core/v1 form.
fn is_events_v1(info: &ResourceInfo) -> bool {
    info.group == "events.k8s.io" && info.resource == "events"
}

/// Whether two resources show their objects in the same form.
pub fn same_form(a: &ResourceInfo, b: &ResourceInfo) -> bool {
    (a.group, a.version, a.resource) == (b.group, b.version, b.resource)
}

/// An object the watch cache holds in its resource's primary form (`primary`), as `info` shows
/// it.
pub fn present(info: &ResourceInfo, obj: &Value) -> Value {
    if is_events_v1(info) {
        return event_conversion::core_to_events_v1(obj);
    }
    let mut obj = obj.clone();
    if let Some(map) = obj.as_object_mut() {
        map.insert("kind".into(), Value::String(info.kind.to_owned()));
        map.insert("apiVersion".into(), Value::String(info.api_version()));
    }
    obj
}

/// An object as it is stored: without `metadata.resourceVersion`, and in the storage form of
/// its resource (events.k8s.io events as core/v1 events).
pub fn encode(info: &ResourceInfo, obj: &Value) -> Bytes {
    let mut obj = if is_events_v1(info) {
        event_conversion::events_v1_to_core(obj)
    } else {
        obj.clone()
    };
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
}

/// [`encode`] of an object about to be created, which the caller no longer needs as it is: its
/// `resourceVersion` is dropped in place instead of from a copy.
fn encode_new(info: &ResourceInfo, obj: &mut Value) -> Stored {
    if is_events_v1(info) {
        return Stored {
            bytes: encode(info, obj),
            metadata_members: None,
        };
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    Stored::of(obj)
}

/// An object serialized as it is stored, with where the members of its `metadata` begin: the
/// object as served, with its `resourceVersion`, is then a splice of these bytes instead of a
/// second serialization.
struct Stored {
    bytes: Bytes,
    /// The offset just past the `{` of the top-level `metadata` object, if there is one.
    metadata_members: Option<usize>,
}

impl Stored {
    /// `obj` as `serde_json::to_vec` writes it, noting where its `metadata` members begin.
    fn of(obj: &Value) -> Stored {
        let Value::Object(map) = obj else {
            return Stored {
                bytes: Bytes::from(serde_json::to_vec(obj).unwrap_or_default()),
                metadata_members: None,
            };
        };
        let mut out = Vec::with_capacity(1024);
        let mut metadata_members = None;
        out.push(b'{');
        for (i, (key, value)) in map.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Writing JSON into a Vec fails only for maps with non-string keys, which a Value
            // has not.
            let _ = serde_json::to_writer(&mut out, key);
            out.push(b':');
            if key == "metadata" && value.is_object() {
                metadata_members = Some(out.len() + 1);
            }
            let _ = serde_json::to_writer(&mut out, value);
        }
        out.push(b'}');
        Stored {
            bytes: Bytes::from(out),
            metadata_members,
        }
    }

    /// The stored object with `"resourceVersion":"<revision>"` as the first member of its
    /// `metadata` (`None` when it has no `metadata` object).
    fn with_resource_version(&self, revision: i64) -> Option<Vec<u8>> {
        let at = self.metadata_members?;
        let (head, tail) = self.bytes.split_at_checked(at)?;
        let member = format!(r#""resourceVersion":"{revision}""#);
        let mut out = Vec::with_capacity(self.bytes.len() + member.len() + 1);
        out.extend_from_slice(head);
        out.extend_from_slice(member.as_bytes());
        if tail.first() != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(tail);
        Some(out)
    }
}

/// The object a create stored as `kv`, from `written` (what [`encode_new`] encoded) rather than
/// by decoding the stored bytes again: the same object, with its `resourceVersion`.
fn created_object(
    info: &ResourceInfo,
    mut written: Value,
    kv: &KeyValue,
) -> Result<Value, ApiError> {
    if is_events_v1(info) {
        // Stored in the core/v1 form: answered as reading it back would.
        return decode_stored(info, &kv.value, kv.mod_revision);
    }
    if let Some(meta) = written.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(kv.mod_revision.to_string()),
        );
    }
    Ok(written)
}

/// Decodes a request body: JSON (also when no Content-Type is given), YAML or Kubernetes'
/// protobuf.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(&format!("error decoding the request body as JSON: {e}"))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
            api_types::yaml::from_yaml_document(text).map_err(|e| {
                ApiError::bad_request(&format!("error decoding the request body as YAML: {e}"))
            })
        }
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body),
        _ => Err(ApiError::unsupported_media_type(content_type)),
    }
}

/// The current time as Kubernetes writes it (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random version-4 UUID.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut uid = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            uid.push('-');
        }
        uid.push(char::from(HEX[usize::from(x >> 4)]));
        uid.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
    uid
}

/// Five random lowercase alphanumerics for `generateName`, from Kubernetes' alphabet (no vowels).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Namespaces recently seen active, so that creates need not read their namespace from the
/// store every time. Kubernetes' NamespaceLifecycle admission answers from an informer cache,
/// which lags the same way; entries expire after [`NamespaceCache::TTL`], and a namespace this
/// server deletes is forgotten at once.
#[derive(Default)]
pub struct NamespaceCache {
    seen: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl NamespaceCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(1);

    fn recently_active(&self, ns: &str) -> bool {
        self.seen
            .lock()
            .is_ok_and(|seen| seen.get(ns).is_some_and(|at| at.elapsed() < Self::TTL))
    }

    fn saw_active(&self, ns: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() > 10_000 {
                seen.retain(|_, at| at.elapsed() < Self::TTL);
            }
            seen.insert(ns.to_owned(), std::time::Instant::now());
        }
    }

    fn forget(&self, ns: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(ns);
        }
    }
}

/// Whether a list the watch cache cannot serve (yet) goes to the store: always once the cache
/// has been initialized (it is only behind); while it is (re)initializing, only a list that
/// returns everything it reads (no selector) or is bounded by a `limit` (KEP-4568).
fn store_may_serve(initialized: bool, filter: &Filter, limited: bool) -> bool {
    initialized || filter.is_everything() || limited
}

/// The label and field selectors of a list or watch.
pub struct Filter {
    labels: Selector,
    fields: FieldSelector,
    qualified: String,
}

impl Filter {
    pub fn from_query(info: &ResourceInfo, query: &Query) -> Result<Filter, ApiError> {
        let labels = match query.get("labelSelector") {
            Some(s) if !s.trim().is_empty() => Selector::parse(s)
                .map_err(|e| ApiError::bad_request(&format!("unable to parse requirement: {e}")))?,
            _ => Selector::everything(),
        };
        let qualified = info.qualified_resource();
        let fields = match query.get("fieldSelector") {
            Some(s) if !s.trim().is_empty() => FieldSelector::parse(s)
                .and_then(|f| f.validate_for(&qualified))
                .map_err(|e| ApiError::bad_request(&e.to_string()))?,
            _ => FieldSelector::everything(),
        };
        Ok(Filter {
            labels,
            fields,
            qualified,
        })
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_everything() && self.fields.is_everything()
    }

    /// As [`Filter::matches`], on the labels and fields the watch cache extracted.
    pub fn matches_cached(&self, obj: &Cached) -> bool {
        (self.labels.is_everything() || self.labels.matches_with(|k| obj.labels().get(k)))
            && (self.fields.is_everything() || self.fields.matches_lookup(|f| obj.fields().get(f)))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if !self.labels.is_everything() {
            let labels: BTreeMap<String, String> = obj
                .at("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            if !self.labels.matches(&labels) {
                return false;
            }
        }
        self.fields.is_everything()
            || self
                .fields
                .matches(&fields::object_fields(&self.qualified, obj))
    }
}

/// How a list or watch asks for a resourceVersion.
pub enum RvRequest {
    /// Unset: the latest, read consistently.
    Latest,
    /// `0`: any state is fine (the latest is served).
    Any,
    /// Not older than, or exactly (`resourceVersionMatch=Exact`), this revision.
    NotOlderThan(Revision),
    Exact(Revision),
}

/// Parses `resourceVersion` (as in an object or a query).
pub fn parse_rv(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::bad_request(&format!(
                "invalid resource version: strconv.ParseUint: parsing {rv:?}: invalid syntax"
            ))
        })
}

pub fn rv_request(query: &Query) -> Result<RvRequest, ApiError> {
    let rv = query.get("resourceVersion").unwrap_or_default();
    let exact = match query.get("resourceVersionMatch") {
        None | Some("") => false,
        Some("Exact") => true,
        Some("NotOlderThan") => false,
        Some(other) => {
            return Err(ApiError::bad_request(&format!(
                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
    };
    match rv {
        "" if query
            .get("resourceVersionMatch")
            .is_some_and(|m| !m.is_empty()) =>
        {
            Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ))
        }
        "" => Ok(RvRequest::Latest),
        "0" if exact => Err(ApiError::bad_request(
            "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        )),
        "0" => Ok(RvRequest::Any),
        rv if exact => Ok(RvRequest::Exact(parse_rv(rv)?)),
        rv => Ok(RvRequest::NotOlderThan(parse_rv(rv)?)),
    }
}

/// One request's context.
struct Ctx<'a> {
    server: &'a Arc<Server>,
    info: &'static ResourceInfo,
    namespace: Option<String>,
    query: Query,
    accept: Option<String>,
    /// `Warning` headers for the response (`fieldValidation=Warn`).
    warnings: std::sync::Mutex<Vec<String>>,
    /// `dryRun=All`, in the query or (deletes) in the DeleteOptions body.
    dry_run: bool,
    /// The fields a JSON body sets twice (`fieldValidation` reports them with unknown fields).
    duplicates: Vec<String>,
}

impl Ctx<'_> {
    /// Applies `fieldValidation` to the fields of `obj` its kind does not know: `Strict` rejects
    /// them (400, in the words of Kubernetes' strict decoder), `Warn` (the default, as in
    /// kube-apiserver) drops them and reports each in a `Warning` header, `Ignore` drops them.
    /// They are never stored, as Kubernetes' typed decoding never keeps them.
    fn unknown_fields(
        &self,
        obj: &mut Value,
        unknown: Vec<objects::UnknownField>,
    ) -> Result<(), ApiError> {
        self.unknown_fields_or(obj, unknown, "Warn")
    }

    /// [`Self::unknown_fields`] with `default` when the request sets no `fieldValidation`
    /// (server-side apply refuses unknown fields unless told otherwise, as Kubernetes' typed
    /// apply does).
    fn unknown_fields_or(
        &self,
        obj: &mut Value,
        unknown: Vec<objects::UnknownField>,
        default: &str,
    ) -> Result<(), ApiError> {
        let mut warnings = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
        // A retried read-modify-write starts over.
        warnings.clear();
        if unknown.is_empty() && self.duplicates.is_empty() {
            return Ok(());
        }
        let described: Vec<String> = self
            .duplicates
            .iter()
            .map(|path| format!("duplicate field {}", go_quote(path)))
            .chain(
                unknown
                    .iter()
                    .map(|f| format!("unknown field {}", go_quote(&f.path()))),
            )
            .collect();
        match self.query.get("fieldValidation").unwrap_or(default) {
            "Strict" => {
                return Err(ApiError::bad_request(&format!(
                    "{kind} in version {version} cannot be handled as a {kind}: strict decoding error: {list}",
                    kind = self.info.kind,
                    version = go_quote(self.info.version),
                    list = described.join(", ")
                )));
            }
            "Ignore" => {}
            _ => *warnings = described,
        }
        for field in &unknown {
            field.remove_from(obj);
        }
        Ok(())
    }

    fn store(&self) -> &dyn Storage {
        self.server.store.as_ref()
    }

    /// The manager of this write: `fieldManager`, else the client's user agent, as
    /// kube-apiserver names it.
    fn manager_name(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        match self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(name) => {
                managed::check_manager_name(name)?;
                Ok(name.to_owned())
            }
            None => Ok(managed::manager_from_user_agent(
                headers
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
            )),
        }
    }

    /// The part of the object a write to `sub` covers, for field ownership.
    fn scope(&self, sub: Option<&str>) -> managed::Scope {
        match sub {
            Some("status") => managed::Scope::Status,
            _ if objects::has_status_subresource(self.info) => managed::Scope::MainWithoutStatus,
            _ => managed::Scope::Main,
        }
    }

    fn api_version(&self) -> String {
        if self.info.group.is_empty() {
            self.info.version.to_owned()
        } else {
            format!("{}/{}", self.info.group, self.info.version)
        }
    }

    /// Records in `next`'s managedFields what this (non-apply) write changed over `old`.
    fn record_update(
        &self,
        manager: &str,
        sub: Option<&str>,
        old: Option<&Value>,
        next: &mut Value,
    ) {
        let api_version = self.api_version();
        let now = now_rfc3339();
        let writer = managed::Manager {
            name: manager,
            api_version: &api_version,
            subresource: sub.filter(|s| *s != "finalize"),
            now: &now,
        };
        let schema = strategic::Schema::of_kind(self.info.group, self.info.kind);
        managed::record_update(old, next, schema, self.scope(sub), &writer);
    }

    fn key(&self, name: &str) -> String {
        object_key(self.server, self.info, self.namespace.as_deref(), name)
    }

    fn qr(&self) -> String {
        self.info.qualified_resource()
    }

    fn storage_error(&self, name: &str) -> impl Fn(StorageError) -> ApiError + '_ {
        let qr = self.qr();
        let name = name.to_owned();
        move |e| ApiError::from_storage(e, &qr, &name)
    }

    /// One object, as JSON or as a one-row Table.
    fn respond(&self, status: StatusCode, obj: &Value) -> Response<Body> {
        if let Some(version) = tables::wants_table(self.accept.as_deref()) {
            let rv = obj
                .at("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let table = tables::table(
                self.info.resource,
                self.info.group,
                std::slice::from_ref(obj),
                rv,
                None,
                None,
                true,
                jiff::Timestamp::now(),
                version,
            );
            return bytes_response(
                status,
                tables::content_type(version),
                serde_json::to_vec(&table).unwrap_or_default(),
            );
        }
        json_response(status, obj)
    }

    /// The 201 for `created`, just stored as `kv` (written as `stored`). Served as JSON, its
    /// serialization is the one the watch cache keeps for this version: it is handed to the
    /// cache, whose storage watch event for the create then needs no parsing.
    fn respond_created(&self, kv: &KeyValue, created: &Value, stored: &Stored) -> Response<Body> {
        // Events of events.k8s.io are cached in their core/v1 form; a Table is not the object.
        let cacher = self.server.caches.get(self.info).filter(|_| {
            !is_events_v1(self.info) && tables::wants_table(self.accept.as_deref()).is_none()
        });
        let Some(cacher) = cacher else {
            return self.respond(StatusCode::CREATED, created);
        };
        let cached = Arc::new(match stored.with_resource_version(kv.mod_revision) {
            Some(json) => Cached::with_json(cacher.primary, created, json),
            None => Cached::new(cacher.primary, created),
        });
        let body = cached.json().clone();
        cacher.offer(&kv.key, kv.mod_revision, cached);
        bytes_response(StatusCode::CREATED, "application/json", body)
    }

    async fn read(&self, name: &str) -> Result<(KeyValue, Value), ApiError> {
        let kv = self
            .store()
            .get(&self.key(name), None)
            .await
            .map_err(self.storage_error(name))?;
        let obj = decode_stored(self.info, &kv.value, kv.mod_revision)?;
        Ok((kv, obj))
    }

    async fn get(&self, name: &str) -> Result<Response<Body>, ApiError> {
        // `resourceVersion=0`: any state will do, and the watch cache has one.
        if self.query.get("resourceVersion") == Some("0")
            && let Some(cacher) = self.server.caches.get(self.info)
            && cacher.wait_fresh(0).await
        {
            let cached = cacher
                .get(&self.key(name))
                .ok_or_else(|| ApiError::not_found(&self.qr(), name))?;
            let obj = if same_form(self.info, cacher.primary) {
                cached.value()
            } else {
                present(self.info, &cached.value())
            };
            return Ok(self.respond(StatusCode::OK, &obj));
        }
        let revision = match self.query.get("resourceVersion") {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(parse_rv(rv)?),
        };
        let kv = match revision {
            // "Not older than": the latest is never older.
            Some(rv) => {
                let current = self
                    .store()
                    .current_revision()
                    .await
                    .map_err(self.storage_error(name))?;
                if rv > current {
                    return Err(ApiError::from_storage(
                        StorageError::FutureRevision {
                            requested: rv,
                            current,
                        },
                        &self.qr(),
                        name,
                    ));
                }
                self.store().get(&self.key(name), None).await
            }
            None => self.store().get(&self.key(name), None).await,
        }
        .map_err(self.storage_error(name))?;
        let obj = decode_stored(self.info, &kv.value, kv.mod_revision)?;
        Ok(self.respond(StatusCode::OK, &obj))
    }

    async fn get_scale(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let (_, obj) = self.read(name).await?;
        Ok(json_response(
            StatusCode::OK,
            &objects::to_scale(self.info, &obj),
        ))
    }

    async fn list(&self) -> Result<Response<Body>, ApiError> {
        let filter = Filter::from_query(self.info, &self.query)?;
        let limit = match self.query.get("limit") {
            None | Some("") => None,
            Some(l) => Some(
                l.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(&format!("invalid limit {l:?}")))?,
            )
            .filter(|l| *l > 0)
            .map(|l| l as usize),
        };
        let continue_token = self
            .query
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let rv = rv_request(&self.query)?;
        if continue_token.is_some() && !matches!(rv, RvRequest::Latest) {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        // Served from the watch cache as kube-apiserver serves it: any state (`0`, whatever
        // the `limit`), not older than a revision, or consistent (unset) — except pages the
        // cache cannot continue (`continue`, or more matches than `limit`), which the store
        // serves so that their continue tokens hold.
        let cacheable = continue_token.is_none() && !matches!(rv, RvRequest::Exact(_));
        if cacheable && let Some(response) = self.list_from_cache(&filter, &rv, limit).await? {
            return Ok(response);
        }
        let revision = match rv {
            RvRequest::Exact(r) => Some(r),
            RvRequest::NotOlderThan(r) => {
                let current = self
                    .store()
                    .current_revision()
                    .await
                    .map_err(self.storage_error(""))?;
                if r > current {
                    return Err(ApiError::from_storage(
                        StorageError::FutureRevision {
                            requested: r,
                            current,
                        },
                        &self.qr(),
                        "",
                    ));
                }
                None
            }
            RvRequest::Latest | RvRequest::Any => None,
        };
        let page = list_filtered(
            self.server,
            self.info,
            self.namespace.as_deref(),
            &filter,
            revision,
            limit,
            continue_token,
        )
        .await?;
        if let Some(version) = tables::wants_table(self.accept.as_deref()) {
            let table = tables::table(
                self.info.resource,
                self.info.group,
                &page.items,
                &page.revision.to_string(),
                page.continue_token.as_deref(),
                page.remaining,
                true,
                jiff::Timestamp::now(),
                version,
            );
            return Ok(bytes_response(
                StatusCode::OK,
                tables::content_type(version),
                serde_json::to_vec(&table).unwrap_or_default(),
            ));
        }
        Ok(json_response(StatusCode::OK, &list_object(self.info, page)))
    }

    /// A list from the watch cache, once it is fresh enough; `None` when it is not (the store
    /// serves the list then). While the cache is (re)initializing, a list with a selector and
    /// no `limit` gets 429 instead, as kube-apiserver's resilient watch cache initialization
    /// (KEP-4568) answers: from the store it would read every object of the resource to return
    /// a few.
    ///
    /// A `limit` it honours only when everything that matches fits in one page (then there is
    /// no next page to continue): a kubelet's or `kubectl get -l`'s paged list of a few objects
    /// is answered from memory instead of a scan of every object in the store.
    async fn list_from_cache(
        &self,
        filter: &Filter,
        rv: &RvRequest,
        limit: Option<usize>,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let Some(cacher) = self.server.caches.get(self.info) else {
            return Ok(None);
        };
        let fresh_at = match rv {
            RvRequest::Any => 0,
            RvRequest::Latest => self
                .store()
                .current_revision()
                .await
                .map_err(self.storage_error(""))?,
            RvRequest::NotOlderThan(r) => *r,
            RvRequest::Exact(_) => return Ok(None),
        };
        if !cacher.wait_fresh(fresh_at).await {
            if !store_may_serve(cacher.revision() > 0, filter, limit.is_some()) {
                return Err(initializing());
            }
            return Ok(None);
        }
        let prefix = collection_prefix(self.server, self.info, self.namespace.as_deref());
        // `resourceVersion=0` gets the whole list whatever its `limit`, as from kube-apiserver.
        let at_most = limit.filter(|_| !matches!(rv, RvRequest::Any));
        let Some((items, revision)) =
            cacher.list_matching(&prefix, |o| filter.matches_cached(o), at_most)
        else {
            return Ok(None);
        };
        let converted = !same_form(self.info, cacher.primary);
        if let Some(version) = tables::wants_table(self.accept.as_deref()) {
            let values: Vec<Value> = items
                .iter()
                .map(|c| present(self.info, &c.value()))
                .collect();
            let table = tables::table(
                self.info.resource,
                self.info.group,
                &values,
                &revision.to_string(),
                None,
                None,
                true,
                jiff::Timestamp::now(),
                version,
            );
            return Ok(Some(bytes_response(
                StatusCode::OK,
                tables::content_type(version),
                serde_json::to_vec(&table).unwrap_or_default(),
            )));
        }
        let size: usize = items.iter().map(|c| c.json().len() + 1).sum();
        let mut body = Vec::with_capacity(size + 256);
        body.extend_from_slice(
            format!(
                r#"{{"kind":"{}List","apiVersion":"{}","metadata":{{"resourceVersion":"{revision}"}},"items":["#,
                self.info.kind,
                self.info.api_version()
            )
            .as_bytes(),
        );
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            if converted {
                let value = present(self.info, &item.value());
                body.extend_from_slice(&serde_json::to_vec(&value).unwrap_or_default());
            } else {
                body.extend_from_slice(item.json());
            }
        }
        body.extend_from_slice(b"]}");
        Ok(Some(bytes_response(
            StatusCode::OK,
            "application/json",
            body,
        )))
    }

    async fn check_namespace(&self) -> Result<(), ApiError> {
        let Some(ns) = self.namespace.as_deref().filter(|_| self.info.namespaced) else {
            return Ok(());
        };
        let info = registry::by_group_version_resource("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("namespaces are not registered"))?;
        if self.server.active_namespaces.recently_active(ns) {
            return Ok(());
        }
        let key = object_key(self.server, info, None, ns);
        match self.store().get(&key, None).await {
            Ok(kv) => {
                let obj: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                if obj
                    .at("/metadata/deletionTimestamp")
                    .is_some_and(|t| !t.is_null())
                {
                    return Err(ApiError::namespace_terminating(ns));
                }
                self.server.active_namespaces.saw_active(ns);
                Ok(())
            }
            Err(StorageError::NotFound { .. }) => Err(ApiError::not_found("namespaces", ns)),
            Err(e) => Err(ApiError::from_storage(e, "namespaces", ns)),
        }
    }

    fn dry_run(&self) -> bool {
        self.dry_run
    }

    async fn create(&self, headers: &HeaderMap, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let mut obj = decode_body(headers, body)?;
        let unknown = objects::decode_typed(self.info, &mut obj)?;
        self.unknown_fields(&mut obj, unknown)?;
        let manager = self.manager_name(headers)?;
        self.create_object(obj, &manager, None).await
    }

    /// Creates `obj` (decoded and field-validated); `applied` carries the managedFields of a
    /// server-side apply that creates, instead of recording `manager`'s update.
    async fn create_object(
        &self,
        mut obj: Value,
        manager: &str,
        applied: Option<Value>,
    ) -> Result<Response<Body>, ApiError> {
        let generate = obj
            .at("/metadata/generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(str::to_owned);
        let has_name = obj
            .at("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        self.check_namespace().await?;
        admission::admit_create(self.server, self.info, &mut obj).await?;
        let validation = Validation::read(self.server, self.info).await?;
        // A generated name may collide; Kubernetes retries the create with a new one.
        let retries = !has_name && generate.is_some();
        for _ in 0..8 {
            let mut attempt = if retries {
                obj.clone()
            } else {
                std::mem::take(&mut obj)
            };
            if let (false, Some(prefix)) = (has_name, &generate)
                && let Some(meta) = attempt.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.insert(
                    "name".into(),
                    Value::String(objects::generate_name(prefix, &random_suffix())),
                );
            }
            objects::prepare_create(
                self.info,
                self.namespace.as_deref(),
                &mut attempt,
                &now_rfc3339(),
                &new_uid(),
            )?;
            validation.validate(None, &attempt, true)?;
            match &applied {
                Some(fields) => attempt["metadata"]["managedFields"] = fields.clone(),
                None => self.record_update(manager, None, None, &mut attempt),
            }
            let name = attempt
                .at("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if self.dry_run() {
                return Ok(self.respond(StatusCode::CREATED, &attempt));
            }
            let allocated = self.allocate_cluster_ip(&mut attempt, &name).await?;
            let stored = encode_new(self.info, &mut attempt);
            let result = self
                .store()
                .create(&self.key(&name), stored.bytes.clone())
                .await;
            if result.is_err()
                && let Some(ip) = &allocated
            {
                ipalloc::release(self.store(), &self.server.prefix, ip).await;
            }
            match result {
                Ok(kv) => {
                    let created = created_object(self.info, attempt, &kv)?;
                    return Ok(self.respond_created(&kv, &created, &stored));
                }
                Err(StorageError::AlreadyExists { .. }) if retries => continue,
                Err(e) => return Err(ApiError::from_storage(e, &self.qr(), &name)),
            }
        }
        Err(ApiError::already_exists(&self.qr(), "(generated name)"))
    }

    fn is_namespace(&self) -> bool {
        self.info.group.is_empty() && self.info.resource == "namespaces"
    }

    fn is_service(&self) -> bool {
        self.info.group.is_empty() && self.info.resource == "services"
    }

    /// Gives a new Service its cluster IP; returns the address reserved, if any.
    async fn allocate_cluster_ip(
        &self,
        obj: &mut Value,
        name: &str,
    ) -> Result<Option<String>, ApiError> {
        if !self.is_service() || !obj.get("spec").is_some_and(ipalloc::wants_ip) {
            return Ok(None);
        }
        let requested = obj
            .at("/spec/clusterIP")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let owner = format!("{}/{name}", self.namespace.as_deref().unwrap_or_default());
        let ip = ipalloc::allocate(
            self.store(),
            &self.server.prefix,
            &self.server.service_range,
            requested.as_deref(),
            &owner,
        )
        .await?
        .to_string();
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
        Ok(Some(ip))
    }

    /// Read–modify–write of one object; `change` turns the current object into the new one.
    /// An object left with a deletionTimestamp and no finalizers is then deleted.
    async fn modify(
        &self,
        name: &str,
        preconditions: Preconditions,
        change: &mut (dyn FnMut(&Value) -> Result<Value, ApiError> + Send),
    ) -> Result<Value, ApiError> {
        if self.dry_run() {
            // Everything but the write: the same change, defaults and validation.
            let (kv, old) = self.read(name).await?;
            preconditions.check(&kv).map_err(self.storage_error(name))?;
            return change(&old);
        }
        let info = self.info;
        let is_namespace = self.is_namespace();
        // A change that leaves a deleting object with no finalizers finishes its deletion: the
        // object is deleted instead of written (as kube-apiserver's `shouldDeleteDuringUpdate`),
        // so nobody ever sees it deleting with nothing left to wait for.
        loop {
            let mut finished: Option<(Value, i64)> = None;
            let mut update = |current: Option<&KeyValue>| -> Result<Bytes, StorageError> {
                let current =
                    current.ok_or_else(|| StorageError::NotFound { key: String::new() })?;
                let old = decode_stored(info, &current.value, current.mod_revision)
                    .map_err(|e| StorageError::Rejected(Box::new(e)))?;
                let new = change(&old).map_err(|e| StorageError::Rejected(Box::new(e)))?;
                if finishes_deletion(&old, &new, is_namespace) {
                    finished = Some((new, current.mod_revision));
                    return Err(StorageError::Rejected(Box::new(ApiError::internal(
                        "the deletion is finished instead",
                    ))));
                }
                Ok(encode(info, &new))
            };
            let result = self
                .store()
                .guaranteed_update(&self.key(name), &preconditions, false, &mut update)
                .await;
            let Some((obj, revision)) = finished else {
                let kv = result.map_err(self.storage_error(name))?;
                return decode_stored(self.info, &kv.value, kv.mod_revision);
            };
            let pre = Preconditions {
                uid: None,
                resource_version: Some(revision),
            };
            match self.store().delete(&self.key(name), &pre).await {
                Ok(_) => {
                    if let Some(ip) = obj
                        .at("/spec/clusterIP")
                        .and_then(Value::as_str)
                        .filter(|_| self.is_service())
                    {
                        ipalloc::release(self.store(), &self.server.prefix, ip).await;
                    }
                    return Ok(obj);
                }
                Err(StorageError::NotFound { .. }) => return Ok(obj),
                // Changed meanwhile: start over from what is there now.
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_storage(e, &self.qr(), name)),
            }
        }
    }

    async fn update(
        &self,
        name: &str,
        sub: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let mut new = decode_body(headers, body)?;
        let unknown = objects::decode_typed(self.info, &mut new)?;
        self.unknown_fields(&mut new, unknown)?;
        check_body_name(&new, name)?;
        let preconditions = body_preconditions(&new)?;
        let info = self.info;
        let manager = self.manager_name(headers)?;
        let validation = Validation::read(self.server, info).await?;
        let obj = self
            .modify(name, preconditions, &mut |old| {
                let mut next = new.clone();
                objects::prepare_update(info, sub, old, &mut next)?;
                validation.validate(sub, &next, false)?;
                self.record_update(&manager, sub, Some(old), &mut next);
                Ok(next)
            })
            .await?;
        Ok(self.respond(StatusCode::OK, &obj))
    }

    async fn update_scale(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let scale = decode_body(headers, body)?;
        check_body_name(&scale, name)?;
        let preconditions = body_preconditions(&scale)?;
        let info = self.info;
        let manager = self.manager_name(headers)?;
        let obj = self
            .modify(name, preconditions, &mut |old| {
                let mut next = old.clone();
                objects::apply_scale(&mut next, &scale)?;
                objects::prepare_update(info, None, old, &mut next)?;
                self.record_update(&manager, Some("scale"), Some(old), &mut next);
                Ok(next)
            })
            .await?;
        Ok(json_response(
            StatusCode::OK,
            &objects::to_scale(self.info, &obj),
        ))
    }

    async fn patch(
        &self,
        name: &str,
        sub: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let kind = match media.as_str() {
            "application/json-patch+json" => PatchKind::Json(
                serde_json::from_slice::<json_patch::Patch>(body).map_err(|e| {
                    ApiError::bad_request(&format!("error decoding a JSON patch: {e}"))
                })?,
            ),
            "application/merge-patch+json" => {
                PatchKind::Merge(serde_json::from_slice::<Value>(body).map_err(|e| {
                    ApiError::bad_request(&format!("error decoding a merge patch: {e}"))
                })?)
            }
            "application/strategic-merge-patch+json" => {
                PatchKind::Strategic(serde_json::from_slice::<Value>(body).map_err(|e| {
                    ApiError::bad_request(&format!("error decoding a strategic merge patch: {e}"))
                })?)
            }
            "application/apply-patch+yaml" => return self.apply(name, sub, body).await,
            _ => return Err(ApiError::unsupported_patch_type(content_type)),
        };
        let manager = self.manager_name(headers)?;
        let info = self.info;
        let qr = self.qr();
        let scale = sub == Some("scale");
        let validation = Validation::read(self.server, info).await?;
        let obj = self
            .modify(name, Preconditions::none(), &mut |old| {
                let target = if scale {
                    objects::to_scale(info, old)
                } else {
                    old.clone()
                };
                let mut patched = target.clone();
                match &kind {
                    PatchKind::Json(patch) => json_patch::patch(&mut patched, patch)
                        .map_err(|e| ApiError::patch_failed(&e.to_string()))?,
                    PatchKind::Merge(patch) => json_patch::merge(&mut patched, patch),
                    PatchKind::Strategic(patch) => {
                        let schema = if scale {
                            strategic::Schema::of_kind("autoscaling", "Scale")
                        } else {
                            strategic::Schema::of_kind(info.group, info.kind)
                        };
                        patched = strategic::apply(&target, patch.clone(), schema)?;
                    }
                }
                // A patch that sets resourceVersion makes it a precondition, as in Kubernetes.
                let want = patched
                    .at("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let have = target
                    .at("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !want.is_empty() && want != have {
                    return Err(ApiError::conflict(&qr, name, OPTIMISTIC_LOCK_MESSAGE));
                }
                let mut next = if scale {
                    let mut next = old.clone();
                    objects::apply_scale(&mut next, &patched)?;
                    next
                } else {
                    patched
                };
                let unknown = objects::decode_typed(info, &mut next)?;
                self.unknown_fields(&mut next, unknown)?;
                objects::prepare_update(info, if scale { None } else { sub }, old, &mut next)?;
                validation.validate(sub, &next, false)?;
                self.record_update(&manager, sub, Some(old), &mut next);
                Ok(next)
            })
            .await?;
        if scale {
            return Ok(json_response(
                StatusCode::OK,
                &objects::to_scale(self.info, &obj),
            ));
        }
        Ok(self.respond(StatusCode::OK, &obj))
    }

    /// Server-side apply (`application/apply-patch+yaml`): merges the applied configuration
    /// into the object, or creates it (201), tracking ownership in managedFields; conflicts
    /// with other managers are 409 unless `force=true`.
    async fn apply(
        &self,
        name: &str,
        sub: Option<&str>,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        if sub == Some("scale") {
            return Err(ApiError::unsupported_patch_type(
                "application/apply-patch+yaml",
            ));
        }
        let Some(manager) = self.query.get("fieldManager").filter(|m| !m.is_empty()) else {
            return Err(ApiError::new(
                422,
                crate::errors::StatusReason::Invalid,
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        };
        managed::check_manager_name(manager)?;
        let force = self.query.get("force").is_some_and(|f| f == "true");
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the apply patch is not UTF-8"))?;
        let applied = api_types::yaml::from_yaml_document(text)
            .map_err(|e| ApiError::bad_request(&format!("error decoding YAML: {e}")))?;
        self.check_applied(&applied, name)?;
        let api_version = self.api_version();
        let now = now_rfc3339();
        let writer = managed::Manager {
            name: manager,
            api_version: &api_version,
            subresource: sub,
            now: &now,
        };
        let schema = strategic::Schema::of_kind(self.info.group, self.info.kind);
        let scope = self.scope(sub);
        let info = self.info;
        let validation = Validation::read(self.server, info).await?;
        let updated = self
            .modify(name, Preconditions::none(), &mut |old| {
                let mut next = managed::apply(Some(old), &applied, schema, scope, &writer, force)?;
                let unknown = objects::decode_typed(info, &mut next)?;
                self.unknown_fields_or(&mut next, unknown, "Strict")?;
                objects::prepare_update(info, sub, old, &mut next)?;
                validation.validate(sub, &next, false)?;
                Ok(next)
            })
            .await;
        match updated {
            Ok(obj) => Ok(self.respond(StatusCode::OK, &obj)),
            Err(e) if e.code() == 404 && sub.is_none() => {
                let mut created = managed::apply(None, &applied, schema, scope, &writer, force)?;
                let fields = created.at("/metadata/managedFields").cloned();
                if let Some(meta) = created.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("name".into(), json!(name));
                }
                let unknown = objects::decode_typed(info, &mut created)?;
                self.unknown_fields_or(&mut created, unknown, "Strict")?;
                self.check_namespace().await?;
                self.create_object(created, manager, fields).await
            }
            Err(e) => Err(e),
        }
    }

    /// An applied configuration must be an object of this kind, named as the URL names it.
    fn check_applied(&self, applied: &Value, name: &str) -> Result<(), ApiError> {
        let Value::Object(map) = applied else {
            return Err(ApiError::bad_request("an apply patch must be an object"));
        };
        let api_version = map
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() {
            return Err(ApiError::bad_request(
                "the apply patch must set apiVersion and kind",
            ));
        }
        if kind != self.info.kind || api_version != self.api_version() {
            return Err(ApiError::bad_request(&format!(
                "the apply patch is a {api_version}, Kind={kind}, not the {}, Kind={} of the URL",
                self.api_version(),
                self.info.kind
            )));
        }
        check_body_name(applied, name)
    }

    async fn delete(&self, name: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let options = DeleteOptions::parse(body, &self.query)?;
        objects::check_delete(self.info, name)?;
        let obj = self.delete_one(name, &options).await?;
        Ok(json_response(StatusCode::OK, &obj))
    }

    /// Deletes one object as Kubernetes does: objects with finalizers, pods with a grace period
    /// and namespaces get a deletionTimestamp and stay until their finalizers (or kubelet, or
    /// the namespace controller) are done; everything else goes at once.
    async fn delete_one(&self, name: &str, options: &DeleteOptions) -> Result<Value, ApiError> {
        if self.is_namespace() {
            self.server.active_namespaces.forget(name);
        }
        let (kv, current) = self.read(name).await?;
        options
            .preconditions
            .check(&kv)
            .map_err(self.storage_error(name))?;
        let mut finalizers: Vec<String> = current
            .at("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        match options.propagation.as_deref() {
            Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                finalizers.push("foregroundDeletion".into())
            }
            Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                finalizers.push("orphan".into())
            }
            _ => {}
        }
        let is_namespace = self.info.resource == "namespaces" && self.info.group.is_empty();
        let grace = if self.info.resource == "pods" && self.info.group.is_empty() {
            objects::graceful_pod_deletion(&current, options.grace_period_seconds)
        } else {
            None
        };
        let already_deleting = current
            .at("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null());
        if finalizers.is_empty() && !is_namespace && grace.is_none_or(|g| g <= 0) {
            if self.dry_run() {
                return Ok(current);
            }
            let pre = Preconditions {
                uid: options.preconditions.uid.clone(),
                resource_version: Some(kv.mod_revision),
            };
            let last = self
                .store()
                .delete(&self.key(name), &pre)
                .await
                .map_err(self.storage_error(name))?;
            let last = decode_stored(self.info, &last.value, last.mod_revision)?;
            if self.is_service()
                && let Some(ip) = last.at("/spec/clusterIP").and_then(Value::as_str)
            {
                ipalloc::release(self.store(), &self.server.prefix, ip).await;
            }
            return Ok(last);
        }
        if already_deleting && !is_namespace && grace.is_none() {
            return Ok(current);
        }
        let now = now_rfc3339();
        let pre = options.preconditions.clone();
        self.modify(name, pre, &mut |old| {
            let mut next = old.clone();
            let meta = next
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| ApiError::internal("object without metadata"))?;
            if meta.get("deletionTimestamp").is_none_or(Value::is_null) {
                let at = match grace {
                    Some(g) if g > 0 => (jiff::Timestamp::now()
                        + jiff::SignedDuration::from_secs(g))
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
                    _ => now.clone(),
                };
                meta.insert("deletionTimestamp".into(), Value::String(at));
                meta.insert(
                    "deletionGracePeriodSeconds".into(),
                    json!(grace.unwrap_or(0)),
                );
            }
            if !finalizers.is_empty() {
                meta.insert("finalizers".into(), json!(finalizers));
            }
            if is_namespace {
                next["status"]["phase"] = json!("Terminating");
            }
            Ok(next)
        })
        .await
    }

    async fn delete_collection(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let options = DeleteOptions::parse(body, &self.query)?;
        let filter = Filter::from_query(self.info, &self.query)?;
        let page = list_filtered(
            self.server,
            self.info,
            self.namespace.as_deref(),
            &filter,
            None,
            None,
            None,
        )
        .await?;
        let mut deleted = Vec::new();
        for item in &page.items {
            let name = item
                .at("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let ns = item
                .at("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let ctx = Ctx {
                server: self.server,
                info: self.info,
                namespace: ns.or(self.namespace.clone()),
                query: self.query.clone(),
                accept: None,
                warnings: std::sync::Mutex::new(Vec::new()),
                dry_run: self.dry_run,
                duplicates: Vec::new(),
            };
            match ctx.delete_one(name, &options).await {
                Ok(obj) => deleted.push(obj),
                Err(e) if e.code() == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let revision = self
            .store()
            .current_revision()
            .await
            .map_err(self.storage_error(""))?;
        Ok(json_response(
            StatusCode::OK,
            &list_object(
                self.info,
                ListPage {
                    items: deleted,
                    revision,
                    continue_token: None,
                    remaining: None,
                },
            ),
        ))
    }

    async fn bind(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let binding = decode_body(headers, body)?;
        let node = binding
            .at("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::bad_request("Binding target.name is required"))?
            .to_owned();
        let uid = binding
            .at("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let now = now_rfc3339();
        let qr = "pods/binding".to_owned();
        self.modify(name, Preconditions { uid, resource_version: None }, &mut |old| {
            if old.at("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
                return Err(ApiError::conflict(&qr, name, &format!("pod {name} is being deleted, cannot be assigned to a host")));
            }
            if let Some(current) = old.at("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict(&qr, name, &format!("pod {name} is already assigned to node {current:?}")));
            }
            let mut next = old.clone();
            next["spec"]["nodeName"] = json!(node);
            let conditions = next["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            next["status"]["conditions"] = json!(conditions);
            Ok(next)
        })
        .await?;
        Ok(json_response(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }

    async fn evict(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let eviction = if body.is_empty() {
            json!({})
        } else {
            decode_body(headers, body)?
        };
        let options =
            DeleteOptions::from_value(eviction.get("deleteOptions").cloned().unwrap_or(json!({})))?;
        self.delete_one(name, &options).await?;
        Ok(json_response(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }
}

enum PatchKind {
    Json(json_patch::Patch),
    Merge(Value),
    Strategic(Value),
}

/// Whether a change from `old` to `new` finishes a deletion (kube-apiserver's
/// `shouldDeleteDuringUpdate`): it removed the last finalizer (for a namespace, also the last
/// `spec.finalizers`, which the namespace controller removes through /finalize) of an object
/// being deleted with no grace period left. A graceful deletion (a pod's) is finished by its
/// kubelet, with a delete of grace 0.
fn finishes_deletion(old: &Value, new: &Value, is_namespace: bool) -> bool {
    let nonempty = |obj: &Value, pointer: &str| {
        obj.at(pointer)
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
    };
    let waiting = |obj: &Value| {
        nonempty(obj, "/metadata/finalizers") || (is_namespace && nonempty(obj, "/spec/finalizers"))
    };
    let deleting = new
        .at("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let grace = new
        .at("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    deleting && grace <= 0 && waiting(old) && !waiting(new)
}

/// The name in a PUT body must be the one in the URL.
fn check_body_name(obj: &Value, name: &str) -> Result<(), ApiError> {
    match obj.at("/metadata/name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != name => Err(ApiError::bad_request(&format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

/// A body's `metadata.resourceVersion` (and uid) as preconditions of an update.
fn body_preconditions(obj: &Value) -> Result<Preconditions, ApiError> {
    let resource_version = match obj.at("/metadata/resourceVersion").and_then(Value::as_str) {
        Some(rv) if !rv.is_empty() => Some(parse_rv(rv)?),
        _ => None,
    };
    let uid = obj
        .at("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    Ok(Preconditions {
        uid,
        resource_version,
    })
}

/// A delete's options, from its body or query.
struct DeleteOptions {
    preconditions: Preconditions,
    grace_period_seconds: Option<i64>,
    propagation: Option<String>,
}

impl DeleteOptions {
    fn parse(body: &[u8], query: &Query) -> Result<DeleteOptions, ApiError> {
        let value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(&format!("error decoding DeleteOptions: {e}")))?
        };
        let mut options = DeleteOptions::from_value(value)?;
        if let Some(g) = query.get("gracePeriodSeconds") {
            options.grace_period_seconds = Some(g.parse().map_err(|_| {
                ApiError::bad_request(&format!("invalid gracePeriodSeconds {g:?}"))
            })?);
        }
        if let Some(p) = query.get("propagationPolicy") {
            options.propagation = Some(p.to_owned());
        }
        if let Some(p) = &options.propagation
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(&format!(
                "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
        Ok(options)
    }

    fn from_value(value: Value) -> Result<DeleteOptions, ApiError> {
        let resource_version = match value
            .at("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            Some(rv) if !rv.is_empty() => Some(parse_rv(rv)?),
            _ => None,
        };
        let uid = value
            .at("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let orphan = value.get("orphanDependents").and_then(Value::as_bool);
        let propagation = value
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(match orphan {
                Some(true) => Some("Orphan".into()),
                Some(false) => Some("Background".into()),
                None => None,
            });
        Ok(DeleteOptions {
            preconditions: Preconditions {
                uid,
                resource_version,
            },
            grace_period_seconds: value.get("gracePeriodSeconds").and_then(Value::as_i64),
            propagation,
        })
    }
}

/// A page of matching objects.
pub struct ListPage {
    pub items: Vec<Value>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// Lists a collection at one revision, keeping what `filter` matches, until `limit` matches.
pub async fn list_filtered(
    server: &Server,
    info: &ResourceInfo,
    namespace: Option<&str>,
    filter: &Filter,
    revision: Option<Revision>,
    limit: Option<usize>,
    continue_token: Option<String>,
) -> Result<ListPage, ApiError> {
    let prefix = collection_prefix(server, info, namespace);
    let qr = info.qualified_resource();
    let to_api = |e: StorageError| match e {
        StorageError::TooOld { .. } if continue_token_is_set(&continue_token) => ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        ),
        StorageError::InvalidContinue(msg) => {
            ApiError::bad_request(&format!("continue key is not valid: {msg}"))
        }
        e => ApiError::from_storage(e, &qr, ""),
    };
    let mut options = ListOptions {
        revision,
        limit: limit.map(|l| l.max(1)),
        continue_token: continue_token.clone(),
    };
    let mut items = Vec::new();
    loop {
        let page = server
            .store
            .list(&prefix, &options)
            .await
            .map_err(&to_api)?;
        let revision = page.revision;
        let count = page.items.len();
        for (index, kv) in page.items.into_iter().enumerate() {
            let obj = decode_stored(info, &kv.value, kv.mod_revision)?;
            if !filter.matches(&obj) {
                continue;
            }
            items.push(obj);
            if limit.is_some_and(|l| items.len() >= l) {
                let more_here = index + 1 < count;
                if more_here || page.continue_token.is_some() {
                    let remaining = filter
                        .is_everything()
                        .then(|| (count - index - 1) as i64 + page.remaining.unwrap_or(0));
                    return Ok(ListPage {
                        items,
                        revision,
                        continue_token: Some(encode_continue(&prefix, &kv.key, revision)),
                        remaining: remaining.filter(|r| *r > 0),
                    });
                }
                return Ok(ListPage {
                    items,
                    revision,
                    continue_token: None,
                    remaining: None,
                });
            }
        }
        match page.continue_token {
            Some(token) => {
                options = ListOptions {
                    revision: None,
                    limit: options.limit,
                    continue_token: Some(token),
                }
            }
            None => {
                return Ok(ListPage {
                    items,
                    revision,
                    continue_token: None,
                    remaining: None,
                });
            }
        }
    }
}

fn continue_token_is_set(token: &Option<String>) -> bool {
    token.as_deref().is_some_and(|t| !t.is_empty())
}

/// A `<Kind>List` object.
pub fn list_object(info: &ResourceInfo, page: ListPage) -> Value {
    let mut metadata = json!({"resourceVersion": page.revision.to_string()});
    if let Some(token) = page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": metadata, "items": page.items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_object_is_served_as_its_stored_bytes_with_its_resource_version() {
        for obj in [
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "a", "labels": {"metadata": "{\"metadata\":{"}},
                   "data": {"metadata": "{}"}}),
            json!({"kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}),
            json!({"kind": "Odd", "metadata": {}}),
        ] {
            let stored = Stored::of(&obj);
            assert_eq!(stored.bytes, serde_json::to_vec(&obj).unwrap());
            let served: Value =
                serde_json::from_slice(&stored.with_resource_version(42).unwrap()).unwrap();
            let mut expected = obj.clone();
            expected["metadata"]["resourceVersion"] = json!("42");
            assert_eq!(served, expected);
        }
        // Without a metadata object there is nothing to splice into.
        for obj in [json!({"kind": "X"}), json!({"metadata": "m"}), json!([1])] {
            assert_eq!(Stored::of(&obj).with_resource_version(1), None);
            assert_eq!(Stored::of(&obj).bytes, serde_json::to_vec(&obj).unwrap());
        }
    }

    #[test]
    fn while_the_cache_initializes_only_unselective_or_limited_lists_go_to_the_store() {
        let pods = registry::by_qualified_resource("pods").unwrap();
        let filter = |q: &str| Filter::from_query(pods, &Query::parse(Some(q))).unwrap();
        let (all, labelled, on_node) = (
            filter("resourceVersion=0"),
            filter("labelSelector=app%3Da"),
            filter("fieldSelector=spec.nodeName%3Dnode-1"),
        );
        for (initialized, f, limited, expected) in [
            (true, &labelled, false, true),
            (true, &on_node, false, true),
            (false, &all, false, true),
            (false, &labelled, true, true),
            (false, &labelled, false, false),
            (false, &on_node, false, false),
        ] {
            assert_eq!(
                store_may_serve(initialized, f, limited),
                expected,
                "initialized {initialized}, limited {limited}"
            );
        }
    }

    #[test]
    fn uids_are_version_4() {
        let uid = new_uid();
        let groups: Vec<&str> = uid.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(
            uid.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(groups[2].starts_with('4'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(uid, new_uid());
    }

    #[test]
    fn resource_versions_parse() {
        assert_eq!(parse_rv("42").unwrap(), 42);
        for bad in ["abc", "-1", "1.5", ""] {
            assert_eq!(parse_rv(bad).unwrap_err().code(), 400, "{bad}");
        }
    }

    #[test]
    fn stored_objects_carry_no_resource_version() {
        let obj = json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        let stored: Value = serde_json::from_slice(&encode(&registry::all()[0], &obj)).unwrap();
        assert!(stored.at("/metadata/resourceVersion").is_none());
    }
}
