//! Field ownership (`metadata.managedFields`) and server-side apply, after Kubernetes' field
//! manager (`k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager`, structured-merge-diff).
//!
//! A field set is a set of paths into an object. Path elements are FieldsV1's: `f:<field>` (a
//! struct field or map key), `k:<json>` (an element of a `map` list, by its keys) and `v:<json>`
//! (an element of a `set` list). A set holds the leaves a manager set (scalars, atomic lists and
//! maps, empty objects) and the list elements it put there. The list and map types come from the
//! served schemas (`x-kubernetes-list-type`, `-list-map-keys`, `x-kubernetes-map-type`), walked
//! with [`Schema`].
//!
//! - [`record_update`]: every create, update and patch gives its manager (`fieldManager`, or the
//!   client's user agent) the fields it changed, with operation `Update`; other managers lose them.
//! - [`apply`]: server-side apply. The applied configuration is merged into the live object;
//!   fields another manager owns with a different value are conflicts (409, one cause each)
//!   unless forced, when they change hands; fields the manager applied before and no longer
//!   applies are removed unless another manager owns them.
//!
//! Left out of field sets, as Kubernetes leaves them out: `apiVersion`, `kind`, the metadata the
//! server owns (name, namespace, uid, resourceVersion, generation, timestamps, managedFields), and
//! `status` for writes to the main resource of a kind with a status subresource (only `status`
//! for writes to the status subresource).

use std::collections::{BTreeMap, BTreeSet};

use api_types::json::At;
use serde_json::{Map, Value, json};

use super::strategic::{ListType, Schema};
use crate::errors::{ApiError, StatusCause};

/// A path into an object, in FieldsV1 elements (`["f:spec", "f:replicas"]`).
pub type Path = Vec<String>;

/// Paths with the value each leads to (`None` for a list element, owned as a whole member).
type Leaves<'v> = BTreeMap<Path, Option<&'v Value>>;

/// Which part of an object a write covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// The whole object but its status (the kind has a status subresource).
    MainWithoutStatus,
    /// The whole object (no status subresource).
    Main,
    /// Only `status` (a write to the status subresource).
    Status,
}

impl Scope {
    /// Whether a write in this scope covers the top-level field `key`.
    fn covers(self, key: &str) -> bool {
        match (self, key) {
            (_, "apiVersion" | "kind") => false,
            (Scope::Status, k) => k == "status",
            (Scope::MainWithoutStatus, "status") => false,
            _ => true,
        }
    }
}

const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The paths of `obj` a write in `scope` covers, with their values.
fn leaves<'v>(obj: &'v Value, schema: Schema<'_>, scope: Scope) -> Leaves<'v> {
    let mut out = Leaves::new();
    let Value::Object(map) = obj else {
        return out;
    };
    let mut path = Path::new();
    for (key, value) in map {
        if !scope.covers(key) {
            continue;
        }
        let (child, meta) = schema.field(key);
        path.push(format!("f:{key}"));
        if key == "metadata" {
            if let Value::Object(meta_map) = value {
                for (field, v) in meta_map {
                    if SERVER_METADATA.contains(&field.as_str()) {
                        continue;
                    }
                    let (grand, grand_meta) = child.field(field);
                    path.push(format!("f:{field}"));
                    collect(v, grand, grand_meta.list, &mut path, &mut out);
                    path.pop();
                }
            }
        } else {
            collect(value, child, meta.list, &mut path, &mut out);
        }
        path.pop();
    }
    out
}

fn collect<'v>(
    value: &'v Value,
    schema: Schema<'_>,
    list: ListType<'_>,
    path: &mut Path,
    out: &mut Leaves<'v>,
) {
    match value {
        Value::Object(map) if !map.is_empty() && !schema.is_atomic_map() => {
            for (key, v) in map {
                let (child, meta) = schema.field(key);
                path.push(format!("f:{key}"));
                collect(v, child, meta.list, path, out);
                path.pop();
            }
        }
        Value::Array(items) if list != ListType::Atomic && !items.is_empty() => {
            for item in items {
                let Some(element) = element_of(item, list) else {
                    continue;
                };
                path.push(element);
                out.insert(path.clone(), None);
                if let (ListType::Map(_), Value::Object(map)) = (list, item) {
                    for (key, v) in map {
                        let (child, meta) = schema.field(key);
                        path.push(format!("f:{key}"));
                        collect(v, child, meta.list, path, out);
                        path.pop();
                    }
                }
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone(), Some(value));
        }
    }
}

/// FieldsV1 of every path of `obj` a write in `scope` covers: `to_fields_v1` of [`leaves`]
/// paths, built in one walk.
fn fields_v1_of(obj: &Value, schema: Schema<'_>, scope: Scope) -> Map<String, Value> {
    let mut root = Map::new();
    let Value::Object(map) = obj else {
        return root;
    };
    for (key, value) in map {
        if !scope.covers(key) {
            continue;
        }
        let (child, meta) = schema.field(key);
        if key == "metadata" {
            let mut fields = Map::new();
            if let Value::Object(meta_map) = value {
                for (field, v) in meta_map {
                    if SERVER_METADATA.contains(&field.as_str()) {
                        continue;
                    }
                    let (grand, grand_meta) = child.field(field);
                    fields.insert(
                        format!("f:{field}"),
                        fields_below(v, grand, grand_meta.list),
                    );
                }
            }
            if !fields.is_empty() {
                root.insert(format!("f:{key}"), Value::Object(fields));
            }
        } else {
            root.insert(format!("f:{key}"), fields_below(value, child, meta.list));
        }
    }
    root
}

/// FieldsV1 of `value` and what is below it, as [`collect`] walks it.
fn fields_below(value: &Value, schema: Schema<'_>, list: ListType<'_>) -> Value {
    let mut node = Map::new();
    match value {
        Value::Object(map) if !map.is_empty() && !schema.is_atomic_map() => {
            node = fields_of_members(map, schema);
        }
        Value::Array(items) if list != ListType::Atomic && !items.is_empty() => {
            for item in items {
                let Some(element) = element_of(item, list) else {
                    continue;
                };
                let mut member = Map::new();
                if let (ListType::Map(_), Value::Object(map)) = (list, item) {
                    member = fields_of_members(map, schema);
                    if !member.is_empty() {
                        member.insert(".".into(), json!({}));
                    }
                }
                // Elements with the same key are one member (Kubernetes refuses them anyway).
                match node.get_mut(&element) {
                    Some(Value::Object(earlier)) => merge_fields(earlier, member),
                    _ => {
                        node.insert(element, Value::Object(member));
                    }
                }
            }
        }
        _ => {}
    }
    Value::Object(node)
}

/// FieldsV1 of the fields of `map` (a struct or map, or a map list's element), as [`collect`]
/// walks them.
fn fields_of_members(map: &Map<String, Value>, schema: Schema<'_>) -> Map<String, Value> {
    map.iter()
        .map(|(key, v)| {
            let (child, meta) = schema.field(key);
            (format!("f:{key}"), fields_below(v, child, meta.list))
        })
        .collect()
}

/// Adds the FieldsV1 `more` to `into`.
fn merge_fields(into: &mut Map<String, Value>, more: Map<String, Value>) {
    for (key, value) in more {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(earlier)), Value::Object(more)) => merge_fields(earlier, more),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// The path element of a list item: `k:{"name":"x"}` (keys in the list's order of keys, a
/// missing `protocol` taking its default, `TCP`) or `v:"x"`.
fn element_of(item: &Value, list: ListType<'_>) -> Option<String> {
    match list {
        ListType::Atomic => None,
        ListType::Set => Some(format!("v:{item}")),
        ListType::Map(keys) => {
            let mut key = Map::new();
            for name in keys.iter().filter_map(Value::as_str) {
                match item.get(name) {
                    Some(v) => {
                        key.insert(name.to_owned(), v.clone());
                    }
                    None if name == "protocol" => {
                        key.insert(name.to_owned(), json!("TCP"));
                    }
                    None => {}
                }
            }
            // Keys in schema order, as structured-merge-diff writes them.
            let body: Vec<String> = keys
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|name| key.get(name).map(|v| format!("{}:{v}", json!(name))))
                .collect();
            Some(format!("k:{{{}}}", body.join(",")))
        }
    }
}

/// A set of paths as FieldsV1 JSON: nested objects, `{}` leaves, `".": {}` for a path that is
/// both a member and the parent of members.
pub fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for element in path {
            let entry = node
                .entry(element.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            node = next;
        }
    }
    // Members with members below them get their ".".
    fn mark(node: &mut Map<String, Value>, path: &mut Path, paths: &BTreeSet<Path>) {
        for (element, child) in node.iter_mut() {
            let Value::Object(child) = child else {
                continue;
            };
            path.push(element.clone());
            if !child.is_empty() {
                if paths.contains(path) {
                    child.insert(".".into(), json!({}));
                }
                mark(child, path, paths);
            }
            path.pop();
        }
    }
    mark(&mut root, &mut Path::new(), paths);
    Value::Object(root)
}

/// FieldsV1 JSON as a set of paths.
pub fn from_fields_v1(fields: &Value) -> BTreeSet<Path> {
    fn walk(node: &Map<String, Value>, path: &mut Path, out: &mut BTreeSet<Path>) {
        for (element, child) in node {
            if element == "." {
                out.insert(path.clone());
                continue;
            }
            path.push(element.clone());
            match child {
                Value::Object(map) if !map.is_empty() => walk(map, path, out),
                _ => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    if let Value::Object(map) = fields {
        walk(map, &mut Path::new(), &mut out);
    }
    out
}

/// A path as structured-merge-diff prints it: `.spec.containers[name="nginx"].image`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = element.strip_prefix("k:") {
            let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        }
    }
    out
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    fields: BTreeSet<Path>,
}

impl Entry {
    fn parse(value: &Value) -> Option<Entry> {
        Some(Entry {
            manager: value.get("manager")?.as_str()?.to_owned(),
            operation: value.get("operation")?.as_str()?.to_owned(),
            api_version: value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            time: value.get("time").and_then(Value::as_str).map(str::to_owned),
            subresource: value
                .get("subresource")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            fields: value
                .get("fieldsV1")
                .map(from_fields_v1)
                .unwrap_or_default(),
        })
    }

    fn to_value(&self) -> Value {
        entry_value(
            &self.manager,
            &self.operation,
            &self.api_version,
            self.time.as_deref(),
            self.subresource.as_deref(),
            to_fields_v1(&self.fields),
        )
    }

    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How a conflict names this manager (`printManager`).
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// One `managedFields` entry as JSON.
fn entry_value(
    manager: &str,
    operation: &str,
    api_version: &str,
    time: Option<&str>,
    subresource: Option<&str>,
    fields_v1: Value,
) -> Value {
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1,
    });
    if let Some(time) = time {
        entry["time"] = json!(time);
    }
    if let Some(sub) = subresource {
        entry["subresource"] = json!(sub);
    }
    entry
}

fn entries_of(obj: &Value) -> Vec<Entry> {
    obj.at("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Entry::parse).collect())
        .unwrap_or_default()
}

fn store_entries(obj: &mut Value, entries: &[Entry]) {
    let list = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_value)
        .collect();
    store_list(obj, list);
}

/// Sets `obj`'s `managedFields` to `list` (removes them when it is empty).
fn store_list(obj: &mut Value, list: Vec<Value>) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// Who made a write and how.
pub struct Manager<'a> {
    pub name: &'a str,
    /// `apps/v1`, `v1`.
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    pub now: &'a str,
}

/// The manager name Kubernetes derives from a `User-Agent` when the request names none:
/// the part before the first `/` (`kubectl/v1.33.0 (linux/amd64)` → `kubectl`).
pub fn manager_from_user_agent(user_agent: Option<&str>) -> String {
    let agent = user_agent.unwrap_or_default();
    let name = agent.split('/').next().unwrap_or_default().trim();
    if name.is_empty() {
        "unknown".into()
    } else {
        name.chars().take(128).collect()
    }
}

/// Checks a `fieldManager` query value as Kubernetes does (at most 128 printable characters).
pub fn check_manager_name(name: &str) -> Result<(), ApiError> {
    let problem = if name.len() > 128 {
        Some("Too long: may not be more than 128 bytes")
    } else if name.chars().any(|c| c.is_control()) {
        Some("Invalid value: must only contain printable characters")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ApiError::new(
            422,
            crate::errors::StatusReason::Invalid,
            format!("fieldManager: {problem}"),
        )),
        None => Ok(()),
    }
}

/// Records a non-apply write (create, update, patch) of `new` over `old` by `manager`: it owns
/// the fields it added or changed, others lose them, and removed fields leave every set.
/// `managedFields` the client sent in `new` (different from `old`'s) are taken as the start,
/// as Kubernetes takes them; an empty list there resets ownership.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    schema: Schema<'_>,
    scope: Scope,
    manager: &Manager<'_>,
) {
    let sent = new.at("/metadata/managedFields");
    let previous = old.and_then(|o| o.at("/metadata/managedFields"));
    let entries = match (sent, old) {
        (Some(sent), _) if Some(sent) != previous => entries_of(new),
        (_, Some(old)) => entries_of(old),
        _ => Vec::new(),
    };
    if old.is_none() && entries.is_empty() {
        // A create with no ownership to start from: the manager owns every field it set.
        let fields = fields_v1_of(new, schema, scope);
        let list = if fields.is_empty() {
            Vec::new()
        } else {
            vec![entry_value(
                manager.name,
                "Update",
                manager.api_version,
                Some(manager.now),
                manager.subresource,
                Value::Object(fields),
            )]
        };
        store_list(new, list);
        return;
    }
    record_changes(old, new, entries, schema, scope, manager);
}

/// [`record_update`] over `entries`, the ownership before the write: the paths that differ
/// between `old` and `new` change hands.
fn record_changes(
    old: Option<&Value>,
    new: &mut Value,
    mut entries: Vec<Entry>,
    schema: Schema<'_>,
    scope: Scope,
    manager: &Manager<'_>,
) {
    let empty = Value::Null;
    let before = leaves(old.unwrap_or(&empty), schema, scope);
    let after = leaves(new, schema, scope);
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|(path, value)| before.get(*path) != Some(value))
        .map(|(path, _)| path.clone())
        .collect();
    let removed: BTreeSet<&Path> = before.keys().filter(|p| !after.contains_key(*p)).collect();
    for entry in &mut entries {
        entry
            .fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if !changed.is_empty() {
        let at = entries
            .iter()
            .position(|e| e.is(manager.name, "Update", manager.subresource));
        let entry = match at {
            Some(at) => &mut entries[at],
            None => {
                entries.push(Entry {
                    manager: manager.name.to_owned(),
                    operation: "Update".into(),
                    api_version: manager.api_version.to_owned(),
                    time: None,
                    subresource: manager.subresource.map(str::to_owned),
                    fields: BTreeSet::new(),
                });
                entries.last_mut().expect("just pushed")
            }
        };
        entry.fields.extend(changed);
        entry.api_version = manager.api_version.to_owned();
        entry.time = Some(manager.now.to_owned());
    }
    store_entries(new, &entries);
}

/// Server-side apply of `applied` (the request's configuration, nulls dropped) by `manager`
/// onto `live` (`None`: the object does not exist yet). Returns the merged object with its
/// `managedFields`; the caller then defaults, validates and stores it as any write.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    schema: Schema<'_>,
    scope: Scope,
    manager: &Manager<'_>,
    force: bool,
) -> Result<Value, ApiError> {
    let mut applied = without_nulls(applied);
    // Only the part of the object the scope covers is applied.
    if let Value::Object(map) = &mut applied {
        match scope {
            Scope::MainWithoutStatus => {
                map.remove("status");
            }
            Scope::Status => map
                .retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")),
            Scope::Main => {}
        }
    }
    let empty = json!({});
    let live = live.unwrap_or(&empty);
    let mut entries = entries_of(live);
    let mine = entries
        .iter()
        .position(|e| e.is(manager.name, "Apply", manager.subresource));
    let previous: BTreeSet<Path> = mine
        .map(|at| entries[at].fields.clone())
        .unwrap_or_default();

    let applying = leaves(&applied, schema, scope);
    let current = leaves(live, schema, scope);

    // Conflicts: a field another manager owns, set here to a different value.
    let mut conflicts: Vec<(usize, Path)> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        // Another entry of the same name (`kubectl` updating through `scale`, say) is another
        // manager, as in Kubernetes, where the operation and subresource are part of its name.
        if Some(index) == mine {
            continue;
        }
        for (path, value) in &applying {
            if value.is_some() && entry.fields.contains(path) && current.get(path) != Some(value) {
                conflicts.push((index, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        // Kubernetes' lastAppliedManager: `kubectl` taking over from client-side apply does not
        // conflict on fields still as the last-applied-configuration annotation set them.
        let upgraded = manager.name == KUBECTL
            && last_applied(live).is_some_and(|last| {
                let set = leaves(&last, schema, scope);
                conflicts
                    .iter()
                    .all(|(_, path)| set.get(path).is_some_and(|v| current.get(path) == Some(v)))
            });
        if !upgraded {
            return Err(conflict_error(&entries, &conflicts));
        }
    }
    for (index, path) in &conflicts {
        entries[*index].fields.remove(path);
    }

    let mut merged = live.clone();
    merge(&mut merged, &applied, schema, ListType::Atomic);

    // Fields this manager stops applying go, unless someone else owns them (or below them).
    let dropped: Vec<&Path> = previous
        .iter()
        .filter(|p| !applying.contains_key(*p))
        .collect();
    let owned_by_others = |path: &[String]| {
        entries.iter().enumerate().any(|(index, e)| {
            Some(index) != mine && e.fields.iter().any(|owned| owned.starts_with(path))
        })
    };
    // Parents first: a list element goes whole, before its key fields could be.
    for path in dropped {
        if owned_by_others(path) {
            continue;
        }
        remove_path(&mut merged, path);
        // A map or list left empty by the removal goes too, unless it is still applied or owned.
        for depth in (1..path.len()).rev() {
            let parent = &path[..depth];
            let now_empty = value_at(&merged, parent).is_some_and(|v| match v {
                Value::Object(map) => map.is_empty(),
                Value::Array(items) => items.is_empty(),
                _ => false,
            });
            if !now_empty
                || applying.keys().any(|p| p.starts_with(parent))
                || owned_by_others(parent)
            {
                break;
            }
            remove_path(&mut merged, parent);
        }
    }

    let fields: BTreeSet<Path> = applying.into_keys().collect();
    match mine {
        Some(at) => {
            entries[at].fields = fields;
            entries[at].api_version = manager.api_version.to_owned();
            entries[at].time = Some(manager.now.to_owned());
        }
        None => entries.push(Entry {
            manager: manager.name.to_owned(),
            operation: "Apply".into(),
            api_version: manager.api_version.to_owned(),
            time: Some(manager.now.to_owned()),
            subresource: manager.subresource.map(str::to_owned),
            fields,
        }),
    }
    // Kubernetes' lastAppliedUpdater: `kubectl`'s server-side apply keeps an existing
    // last-applied-configuration annotation in step, so a later client-side apply sees it.
    if manager.name == KUBECTL && last_applied(live).is_some() {
        let mut config = applied.clone();
        if let Some(Value::Object(annotations)) = config.pointer_mut("/metadata/annotations") {
            annotations.remove(LAST_APPLIED);
        }
        let text = serde_json::to_string(&config).unwrap_or_default();
        if let Some(Value::Object(annotations)) = merged.pointer_mut("/metadata/annotations") {
            annotations.insert(LAST_APPLIED.into(), Value::String(text));
        }
    }
    // Ownership of fields that no longer exist ends.
    let existing = leaves(&merged, schema, scope);
    for entry in &mut entries {
        entry.fields.retain(|p| existing.contains_key(p));
    }
    store_entries(&mut merged, &entries);
    Ok(merged)
}

/// The manager `kubectl apply --server-side` uses by default.
const KUBECTL: &str = "kubectl";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The client-side apply annotation of `obj`, parsed.
fn last_applied(obj: &Value) -> Option<Value> {
    let text = obj
        .at("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    serde_json::from_str(text).ok()
}

fn conflict_error(entries: &[Entry], conflicts: &[(usize, Path)]) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|(index, path)| StatusCause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", entries[*index].describe()),
            field: display(path),
        })
        .collect();
    let message = if let [(index, path)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            entries[*index].describe(),
            display(path)
        )
    } else {
        let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (index, path) in conflicts {
            by_manager
                .entry(entries[*index].describe())
                .or_default()
                .push(display(path));
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {manager}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::apply_conflict(causes, &message)
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Merges an applied configuration into the live object: maps key by key, `map` lists element
/// by element on their keys, `set` lists as sets; atomic values are replaced.
fn merge(live: &mut Value, applied: &Value, schema: Schema<'_>, list: ListType<'_>) {
    match (live, applied) {
        (Value::Object(live), Value::Object(applied)) if !schema.is_atomic_map() => {
            for (key, value) in applied {
                let (child, meta) = schema.field(key);
                match live.get_mut(key) {
                    Some(existing) => merge(existing, value, child, meta.list),
                    None => {
                        live.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(live), Value::Array(applied)) if list != ListType::Atomic => {
            for item in applied {
                let element = element_of(item, list);
                match live
                    .iter_mut()
                    .find(|l| element.is_some() && element_of(l, list) == element)
                {
                    Some(existing) => merge(existing, item, schema, ListType::Atomic),
                    None => live.push(item.clone()),
                }
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

/// Removes what `path` leads to: a field, a map key, a list element.
fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = obj;
    for element in parents {
        let next = match element_position(node, element) {
            Some(Position::Key(key)) => node.get_mut(&key),
            Some(Position::Index(i)) => node.get_mut(i),
            None => None,
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    match element_position(node, last) {
        Some(Position::Key(key)) => {
            if let Value::Object(map) = node {
                map.remove(&key);
            }
        }
        Some(Position::Index(i)) => {
            if let Value::Array(items) = node {
                items.remove(i);
            }
        }
        None => {}
    }
}

/// The value `path` leads to.
fn value_at<'v>(obj: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut node = obj;
    for element in path {
        node = match element_position(node, element)? {
            Position::Key(key) => node.get(&key)?,
            Position::Index(i) => node.get(i)?,
        };
    }
    Some(node)
}

enum Position {
    Key(String),
    Index(usize),
}

fn element_position(node: &Value, element: &str) -> Option<Position> {
    if let Some(field) = element.strip_prefix("f:") {
        return node.get(field).map(|_| Position::Key(field.to_owned()));
    }
    let items = node.as_array()?;
    if let Some(value) = element.strip_prefix("v:") {
        let value: Value = serde_json::from_str(value).ok()?;
        return items.iter().position(|i| *i == value).map(Position::Index);
    }
    let key: Map<String, Value> = serde_json::from_str(element.strip_prefix("k:")?).ok()?;
    items
        .iter()
        .position(|item| {
            key.iter().all(|(k, v)| match item.get(k) {
                Some(have) => have == v,
                None => k == "protocol" && v == "TCP",
            })
        })
        .map(Position::Index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema<'static> {
        Schema::of_kind("apps", "Deployment")
    }

    fn manager(name: &'static str) -> Manager<'static> {
        Manager {
            name,
            api_version: "apps/v1",
            subresource: None,
            now: "2026-12-01T00:00:00Z",
        }
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                ]}}
            },
            "status": {"replicas": 1}
        })
    }

    #[test]
    fn a_create_records_in_one_walk_what_the_general_diff_records() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u",
                         "labels": {"app": "web", "tier": "x"},
                         "annotations": {"a": "b"}, "finalizers": ["x/y", "x/z"],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "rs", "uid": "1", "controller": true}]},
            "spec": {
                "containers": [
                    {"name": "a", "image": "i", "ports": [{"containerPort": 80},
                        {"containerPort": 53, "protocol": "UDP"}],
                     "env": [{"name": "E", "value": "1"}], "args": ["x", "y"],
                     "resources": {"limits": {"cpu": "1"}}},
                    {"name": "b", "image": "j"},
                    {"name": "a", "imagePullPolicy": "Always"},
                ],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "nodeSelector": {},
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let cases = [
            (
                pod.clone(),
                Schema::of_kind("", "Pod"),
                Scope::MainWithoutStatus,
            ),
            (pod.clone(), Schema::of_kind("", "Pod"), Scope::Main),
            (pod, Schema::of_kind("", "Pod"), Scope::Status),
            (deployment(3, "nginx"), schema(), Scope::MainWithoutStatus),
            (bare, Schema::of_kind("", "ConfigMap"), Scope::Main),
        ];
        for (obj, schema, scope) in cases {
            let mut fast = obj.clone();
            record_update(None, &mut fast, schema, scope, &manager("kubectl"));
            let mut general = obj;
            record_changes(
                None,
                &mut general,
                Vec::new(),
                schema,
                scope,
                &manager("kubectl"),
            );
            assert_eq!(fast, general, "{scope:?}");
        }
    }

    #[test]
    fn fields_v1_is_what_kubernetes_writes() {
        let obj = deployment(2, "nginx:1.27");
        let set: BTreeSet<Path> = leaves(&obj, schema(), Scope::MainWithoutStatus)
            .into_keys()
            .collect();
        let fields = to_fields_v1(&set);
        assert_eq!(
            fields,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {},
                                "f:containerPort": {},
                            }},
                        }}}
                    }
                }
            })
        );
        assert_eq!(from_fields_v1(&fields), set, "FieldsV1 round-trips");
        assert_eq!(
            display(&[
                "f:spec".into(),
                "f:template".into(),
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"name\":\"nginx\"}".into(),
                "f:image".into()
            ]),
            ".spec.template.spec.containers[name=\"nginx\"].image"
        );
    }

    #[test]
    fn updates_take_the_fields_they_change_from_other_managers() {
        let mut created = deployment(2, "nginx:1.27");
        record_update(
            None,
            &mut created,
            schema(),
            Scope::MainWithoutStatus,
            &manager("kubectl-create"),
        );
        let entries = entries_of(&created);
        assert_eq!(entries.len(), 1);
        assert!(
            entries[0]
                .fields
                .contains(&vec!["f:spec".to_string(), "f:replicas".to_string()])
        );
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(5);
        record_update(
            Some(&created),
            &mut scaled,
            schema(),
            Scope::MainWithoutStatus,
            &manager("hpa"),
        );
        let entries = entries_of(&scaled);
        let replicas = vec!["f:spec".to_string(), "f:replicas".to_string()];
        assert!(!entries[0].fields.contains(&replicas));
        assert_eq!(entries[1].manager, "hpa");
        assert_eq!(entries[1].fields, BTreeSet::from([replicas]));
    }

    #[test]
    fn apply_conflicts_force_and_removal() {
        let applied = deployment(2, "nginx:1.27");
        let first = apply(
            None,
            &applied,
            schema(),
            Scope::MainWithoutStatus,
            &manager("alice"),
            false,
        )
        .unwrap();
        assert_eq!(first["spec"]["replicas"], 2);
        // Bob applies a different replicas: a conflict with alice.
        let mut bobs = deployment(3, "nginx:1.27");
        bobs["spec"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k == "replicas");
        let err = apply(
            Some(&first),
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "web"}, "spec": {"replicas": 3}}),
            schema(),
            Scope::MainWithoutStatus,
            &manager("bob"),
            false,
        )
        .unwrap_err();
        assert_eq!(err.code(), 409);
        let status = err.status();
        assert_eq!(
            status["message"],
            "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
        );
        assert_eq!(status["details"]["causes"][0]["field"], ".spec.replicas");
        // Forced, bob takes it.
        let forced = apply(
            Some(&first),
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "web"}, "spec": {"replicas": 3}}),
            schema(),
            Scope::MainWithoutStatus,
            &manager("bob"),
            true,
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        // Alice stops applying replicas and the label: replicas stays (bob owns it), the
        // label goes.
        let mut again = deployment(0, "nginx:1.28");
        again["spec"].as_object_mut().unwrap().remove("replicas");
        again["metadata"].as_object_mut().unwrap().remove("labels");
        let out = apply(
            Some(&forced),
            &again,
            schema(),
            Scope::MainWithoutStatus,
            &manager("alice"),
            false,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert!(out["metadata"].get("labels").is_none(), "{out}");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.28"
        );
        assert_eq!(
            out["status"]["replicas"],
            json!(null),
            "status is not applied"
        );
        // Same value as another manager: shared, no conflict.
        let shared = apply(
            Some(&out),
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "web"}, "spec": {"replicas": 3}}),
            schema(),
            Scope::MainWithoutStatus,
            &manager("carol"),
            false,
        )
        .unwrap();
        assert_eq!(entries_of(&shared).len(), 3);
    }

    #[test]
    fn removing_a_list_element_a_manager_applied() {
        let mut two = deployment(1, "a");
        two["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "b"}));
        let first = apply(
            None,
            &two,
            schema(),
            Scope::MainWithoutStatus,
            &manager("alice"),
            false,
        )
        .unwrap();
        let out = apply(
            Some(&first),
            &deployment(1, "a"),
            schema(),
            Scope::MainWithoutStatus,
            &manager("alice"),
            false,
        )
        .unwrap();
        let containers = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1, "{out}");
        assert_eq!(containers[0]["name"], "nginx");
    }
}
