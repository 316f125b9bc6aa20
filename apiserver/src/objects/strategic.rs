//! Strategic merge patch (`application/strategic-merge-patch+json`), as apimachinery's
//! `strategicpatch.StrategicMergeMapPatch` applies it on the server (`MergeParallelList` and
//! `IgnoreUnmatchedNulls` on).
//!
//! A JSON merge patch with per-field strategies: a list whose schema says
//! `x-kubernetes-patch-strategy: merge` is merged element by element — maps matched on the
//! `x-kubernetes-patch-merge-key`, scalars as a set — instead of being replaced; an object field
//! with `retainKeys` drops the keys the patch's `$retainKeys` does not list. The strategies come
//! from the served OpenAPI schemas ([`crate::openapi::patch_schemas`]), walked alongside the
//! object as kube-apiserver's `PatchMetaFromOpenAPI` walks them.
//!
//! Directives:
//! - `"$patch": "merge"` says the default (Kubernetes refuses it; Ferry merges);
//! - `"$patch": "replace"` in a map replaces it; in a merging list (as an element) replaces the
//!   list with the patch's other elements; `"$patch": "delete"` in a map deletes it, as a list
//!   element deletes the elements with its merge key;
//! - `"$setElementOrder/<list>": [...]` orders the merged list (the order the patch gives, then
//!   the live order for server-only elements);
//! - `"$retainKeys": [...]` keeps only those keys of the live map;
//! - `"$deleteFromPrimitiveList/<list>": [...]` removes those scalars from a merging list;
//! - `null` deletes a key.
//!
//! Errors are `400 BadRequest` for malformed directives and `422 Invalid` for patches that do not
//! fit the object (a merging-list element without its merge key, lists of lists). Kubernetes
//! answers some of the latter with a 500; Ferry never does.

use serde_json::{Map, Value};

use crate::errors::ApiError;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Where the walk is in the schemas: the schema of the value being merged (none once the walk
/// leaves what the schemas describe; such values merge as plain JSON merge patch does).
#[derive(Clone, Copy)]
pub struct Schema<'a> {
    schemas: &'a Map<String, Value>,
    node: Option<&'a Value>,
}

/// A field's strategies: for strategic merge patch from its `x-kubernetes-patch-strategy` and
/// `-merge-key`; for server-side apply from `x-kubernetes-list-type` and `-list-map-keys`.
#[derive(Default)]
pub(crate) struct FieldMeta<'a> {
    merge: bool,
    merge_key: Option<&'a str>,
    /// How server-side apply treats the field when it is a list.
    pub list: ListType<'a>,
}

/// `x-kubernetes-list-type`: `atomic` (the default) lists are owned and replaced whole, `set`
/// lists element by element, `map` lists element by element identified by their keys.
#[derive(Default, Clone, Copy, Debug, PartialEq)]
pub(crate) enum ListType<'a> {
    #[default]
    Atomic,
    Set,
    Map(&'a [Value]),
}

impl<'a> Schema<'a> {
    /// The schema named `name` (`io.k8s.api.apps.v1.Deployment`) among `schemas`.
    pub fn named(schemas: &'a Map<String, Value>, name: &str) -> Schema<'a> {
        Schema {
            schemas,
            node: schemas.get(name),
        }
    }

    /// The schema of the served kind `(group, kind)`.
    pub fn of_kind(group: &str, kind: &str) -> Schema<'static> {
        let patch = crate::openapi::patch_schemas();
        let node = patch
            .kinds
            .get(&(group, kind))
            .and_then(|name| patch.schemas.get(name));
        Schema {
            schemas: &patch.schemas,
            node,
        }
    }

    /// Follows `$ref` (and a lone `allOf` member) to the schema itself.
    fn resolve(&self, mut node: &'a Value) -> &'a Value {
        for _ in 0..8 {
            // Not `pointer("/allOf/0/$ref")`: that allocates for each of its tokens, and this
            // runs for every field of every object whose managedFields a write records.
            let reference = node
                .get("$ref")
                .or_else(|| node.get("allOf")?.get(0)?.get("$ref"))
                .and_then(Value::as_str);
            let Some(target) = reference
                .and_then(|r| r.rsplit('/').next())
                .and_then(|name| self.schemas.get(name))
            else {
                break;
            };
            node = target;
        }
        node
    }

    /// The schema of `key`'s value (for a list, of its elements) and the field's strategy.
    pub(crate) fn field(&self, key: &str) -> (Schema<'a>, FieldMeta<'a>) {
        let property = self.node.map(|node| self.resolve(node)).and_then(|object| {
            object
                .get("properties")
                .and_then(|properties| properties.get(key))
                .or_else(|| object.get("additionalProperties").filter(|v| v.is_object()))
        });
        let Some(property) = property else {
            return (self.leave(), FieldMeta::default());
        };
        let strategy = property
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let list = match property
            .get("x-kubernetes-list-type")
            .and_then(Value::as_str)
        {
            Some("set") => ListType::Set,
            Some("map") => property
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map_or(ListType::Atomic, |keys| ListType::Map(keys)),
            _ => ListType::Atomic,
        };
        let meta = FieldMeta {
            merge: strategy.split(',').any(|s| s == "merge"),
            merge_key: property
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str),
            list,
        };
        let resolved = self.resolve(property);
        let child = if resolved.get("type").and_then(Value::as_str) == Some("array") {
            resolved.get("items")
        } else {
            Some(property)
        };
        (
            Schema {
                schemas: self.schemas,
                node: child,
            },
            meta,
        )
    }

    /// Whether the value here is owned and replaced whole by server-side apply
    /// (`x-kubernetes-map-type: atomic`, as `LabelSelector`).
    pub(crate) fn is_atomic_map(&self) -> bool {
        self.node.is_some_and(|node| {
            self.resolve(node)
                .get("x-kubernetes-map-type")
                .and_then(Value::as_str)
                == Some("atomic")
        })
    }

    fn leave(&self) -> Schema<'a> {
        Schema {
            schemas: self.schemas,
            node: None,
        }
    }
}

/// Applies `patch` (the request body, already parsed) to `original`.
pub fn apply(original: &Value, patch: Value, schema: Schema<'_>) -> Result<Value, ApiError> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(
            "invalid JSON document: a strategic merge patch must be a JSON object",
        ));
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch, schema).map(Value::Object)
}

fn bad_request(message: String) -> ApiError {
    ApiError::bad_request(&message)
}

fn unprocessable(message: String) -> ApiError {
    ApiError::new(422, crate::errors::StatusReason::Invalid, message)
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema<'_>,
) -> Result<Map<String, Value>, ApiError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                merge_map(Map::new(), patch, schema)
            }
            Some("delete") => Ok(Map::new()),
            // The default, said explicitly (Kubernetes refuses it; Ferry takes it at its word).
            Some("merge") => {
                patch.remove(DIRECTIVE);
                merge_map(original, patch, schema)
            }
            _ => Err(bad_request(format!(
                "unknown patch type: {directive} in map: {}",
                Value::Object(patch.clone())
            ))),
        };
    }
    retain_keys(&mut original, &mut patch)?;
    set_element_orders(&mut original, &mut patch, schema)?;
    for (key, patch_value) in patch {
        let (key, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(list) => (list.to_owned(), true),
            None => (key, false),
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let (child, meta) = schema.field(&key);
        let merged = match (original.remove(&key), patch_value) {
            (Some(Value::Object(o)), Value::Object(p)) => Value::Object(merge_map(o, p, child)?),
            (Some(Value::Array(o)), Value::Array(p)) => {
                Value::Array(merge_list_field(o, p, child, &meta, delete_list, &key)?)
            }
            (Some(kept), _) if delete_list => kept,
            (None, _) if delete_list => continue,
            (None | Some(_), Value::Object(p)) => Value::Object(merge_map(Map::new(), p, child)?),
            (None | Some(_), Value::Array(p)) if meta.merge => Value::Array(merge_list(
                Vec::new(),
                p,
                child,
                meta.merge_key,
                false,
                &key,
            )?),
            (None | Some(_), p) => without_nulls(p),
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// A list field: merged if its strategy says so, replaced otherwise.
fn merge_list_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema<'_>,
    meta: &FieldMeta<'_>,
    delete_list: bool,
    field: &str,
) -> Result<Vec<Value>, ApiError> {
    if meta.merge {
        merge_list(original, patch, schema, meta.merge_key, delete_list, field)
    } else {
        Ok(patch.into_iter().map(without_nulls).collect())
    }
}

/// Whether the list holds maps; lists of lists and mixed lists are refused.
fn holds_maps(original: &[Value], patch: &[Value]) -> Result<bool, ApiError> {
    let mut maps = None;
    for item in original.iter().chain(patch) {
        if item.is_array() {
            return Err(unprocessable("lists of lists are not supported".into()));
        }
        let is_map = item.is_object();
        if *maps.get_or_insert(is_map) != is_map {
            return Err(bad_request(format!(
                "invalid patch format: a list mixes maps and scalars: {}",
                Value::Array(patch.to_vec())
            )));
        }
    }
    Ok(maps.unwrap_or(false))
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema<'_>,
    merge_key: Option<&str>,
    delete_list: bool,
    field: &str,
) -> Result<Vec<Value>, ApiError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if !holds_maps(&original, &patch)? {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(&patch) {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        let (in_patch, server_only) = partition(merged, &patch, None);
        return Ok(normalize_order(
            in_patch,
            server_only,
            &patch,
            &original,
            None,
        ));
    }
    let Some(key) = merge_key else {
        return Err(unprocessable(format!(
            "cannot merge lists without merge key for {field}"
        )));
    };
    let (original, patch) = apply_list_directives(original, patch, key, schema)?;
    let mut merged = original.clone();
    for item in &patch {
        let Value::Object(item_map) = item else {
            continue;
        };
        let value = merge_key_of(item_map, key)?;
        match merged.iter().position(|m| m.get(key) == Some(value)) {
            Some(at) => {
                let Value::Object(live) = std::mem::take(&mut merged[at]) else {
                    continue;
                };
                merged[at] = Value::Object(merge_map(live, item_map.clone(), schema)?);
            }
            None => merged.push(Value::Object(merge_map(
                Map::new(),
                item_map.clone(),
                schema,
            )?)),
        }
    }
    let (in_patch, server_only) = partition(merged, &patch, Some(key));
    Ok(normalize_order(
        in_patch,
        server_only,
        &patch,
        &original,
        Some(key),
    ))
}

fn merge_key_of<'v>(item: &'v Map<String, Value>, key: &str) -> Result<&'v Value, ApiError> {
    item.get(key).ok_or_else(|| {
        unprocessable(format!(
            "map: {} does not contain declared merge key: {key}",
            Value::Object(item.clone())
        ))
    })
}

/// The `$patch` elements of a merging list: `delete` removes the live elements with that merge
/// key, `replace` makes the patch's other elements the whole list. Returns (live, patch) with the
/// directive elements gone.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    schema: Schema<'_>,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Value::Object(map) = &item else {
                    continue;
                };
                let value = merge_key_of(map, key)?;
                original.retain(|live| live.get(key) != Some(value));
            }
            Some("replace") => replace = true,
            // The default for a merging list, said explicitly (Kubernetes refuses it with
            // "merging lists cannot yet be specified in the patch"; Ferry takes it at its word).
            Some("merge") => {}
            _ => {
                return Err(bad_request(format!(
                    "unknown patch type: {directive} in map: {item}"
                )));
            }
        }
    }
    if replace {
        let list = plain
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => merge_map(Map::new(), map, schema).map(Value::Object),
                other => Ok(other),
            })
            .collect::<Result<_, _>>()?;
        Ok((list, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Whether `item` is in `list`: by merge key for maps, by value for scalars.
fn position(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    match key {
        Some(key) => {
            let value = item.get(key)?;
            list.iter().position(|v| v.get(key) == Some(value))
        }
        None => list.iter().position(|v| v == item),
    }
}

/// Splits `merged` into the elements `by` names and the rest, keeping order.
fn partition(merged: Vec<Value>, by: &[Value], key: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|item| position(by, item, key).is_some())
}

/// apimachinery's `normalizeElementOrder`: patch elements in the patch's order, server-only
/// elements in the live order, the two interleaved by the live order where both are known.
fn normalize_order(
    mut in_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let rank = |order: &[Value], item: &Value| position(order, item, key).unwrap_or(usize::MAX);
    in_patch.sort_by_key(|item| rank(patch_order, item));
    server_only.sort_by_key(|item| rank(server_order, item));
    // mergeSortedSlice: insert server-only elements among the patch's, before the first patch
    // element the live list has after them.
    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                let (li, ri) = (
                    position(server_order, l, key),
                    position(server_order, r, key),
                );
                matches!((li, ri), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// `$retainKeys`: the live map keeps only the keys listed; the patch may set no other key.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(keys) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Some(keys) = keys.as_array() else {
        return Err(bad_request("invalid patch format of retainKeys".into()));
    };
    let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(SET_ELEMENT_ORDER)
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        {
            continue;
        }
        if !keys.contains(&key.as_str()) {
            return Err(unprocessable(format!(
                "patch content doesn't match retainKeys list: {key} is not in $retainKeys"
            )));
        }
    }
    original.retain(|key, _| keys.contains(&key.as_str()));
    Ok(())
}

/// `$setElementOrder/<list>`: merges the list now and orders the result — the directive's order
/// first, then the live order for server-only elements.
fn set_element_orders(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Schema<'_>,
) -> Result<(), ApiError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let order = patch.remove(&directive).unwrap_or_default();
        let field = directive[SET_ELEMENT_ORDER.len()..].to_owned();
        let Value::Array(order) = order else {
            return Err(bad_request(format!(
                "invalid patch format of setElementOrder list: {directive} is not a list"
            )));
        };
        let (child, meta) = schema.field(&field);
        let key = meta.merge_key;
        let live = match original.get(&field) {
            Some(Value::Array(live)) => Some(live.clone()),
            _ => None,
        };
        let listed = match patch.remove(&field) {
            Some(Value::Array(listed)) => Some(listed),
            Some(Value::Null) | None => None,
            Some(other) => {
                return Err(bad_request(format!(
                    "invalid patch format: {field} must be a list, not {other}"
                )));
            }
        };
        check_order(listed.as_deref().unwrap_or_default(), &order, key)?;
        let merged = match (live.clone(), listed) {
            (Some(live), None) => live,
            (None, Some(listed)) => {
                merge_list_field(Vec::new(), listed, child, &meta, false, &field)?
            }
            (Some(live), Some(listed)) => {
                merge_list_field(live, listed, child, &meta, false, &field)?
            }
            (None, None) => continue,
        };
        let (in_order, server_only) = partition(merged, &order, key);
        let ordered = normalize_order(
            in_order,
            server_only,
            &order,
            live.as_deref().unwrap_or_default(),
            key,
        );
        original.insert(field, Value::Array(ordered));
    }
    Ok(())
}

/// The patch's elements (other than `$patch` ones) must appear in the order list, in its order.
fn check_order(listed: &[Value], order: &[Value], key: Option<&str>) -> Result<(), ApiError> {
    let mut last = None;
    for item in listed {
        if item.get(DIRECTIVE).is_some() {
            continue;
        }
        let at = position(order, item, key);
        if at.is_none() || at < last {
            return Err(bad_request(
                "invalid patch format of setElementOrder list: it must name the patch's \
                 elements in the patch's order"
                    .into(),
            ));
        }
        last = at;
    }
    Ok(())
}

/// A value the patch adds where nothing was: nulls in it mean nothing.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(group: &str, kind: &str, original: Value, patch: Value) -> Value {
        apply(&original, patch, Schema::of_kind(group, kind)).unwrap()
    }

    fn deployment(containers: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn containers_merge_by_name_and_keep_server_only_fields() {
        let live = deployment(json!([
            {"name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent"},
            {"name": "b", "image": "b:1"},
        ]));
        let out = patch(
            "apps",
            "Deployment",
            live,
            deployment(json!([{"name": "a", "image": "a:2"}])),
        );
        assert_eq!(
            out,
            deployment(json!([
                {"name": "a", "image": "a:2", "imagePullPolicy": "IfNotPresent"},
                {"name": "b", "image": "b:1"},
            ]))
        );
    }

    #[test]
    fn nested_merge_keys_env_by_name_ports_by_container_port() {
        let live = deployment(json!([{
            "name": "a",
            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
        }]));
        let out = patch(
            "apps",
            "Deployment",
            live,
            deployment(json!([{
                "name": "a",
                "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}],
                "ports": [{"containerPort": 443}],
            }])),
        );
        assert_eq!(
            out,
            deployment(json!([{
                "name": "a",
                "env": [
                    {"name": "X", "value": "1"},
                    {"name": "Y", "value": "3"},
                    {"name": "Z", "value": "4"},
                ],
                // Without $setElementOrder a new element goes before the server-only ones it
                // cannot be ranked against (mergeSortedSlice); kubectl always sends the order.
                "ports": [{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}],
            }]))
        );
    }

    #[test]
    fn lists_without_a_strategy_are_replaced() {
        let live =
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}}});
        let out = patch(
            "apps",
            "Deployment",
            live,
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "c"}]}}}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "c"}]}}}})
        );
    }

    #[test]
    fn null_deletes_and_maps_merge() {
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}});
        let out = patch(
            "",
            "ConfigMap",
            live,
            json!({"metadata": {"labels": {"a": null, "c": "3"}, "annotations": null}, "data": {"k": "v", "n": null}}),
        );
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn patch_delete_directive_removes_the_element_with_that_key() {
        let live = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let out = patch(
            "apps",
            "Deployment",
            live,
            deployment(json!([{"name": "b", "$patch": "delete"}])),
        );
        assert_eq!(out, deployment(json!([{"name": "a"}, {"name": "c"}])));
    }

    #[test]
    fn patch_replace_directive_in_a_list_and_in_a_map() {
        let live = deployment(json!([{"name": "a", "image": "x"}, {"name": "b"}]));
        let out = patch(
            "apps",
            "Deployment",
            live.clone(),
            deployment(json!([{"name": "c"}, {"$patch": "replace"}])),
        );
        assert_eq!(out, deployment(json!([{"name": "c"}])));
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let out = patch(
            "",
            "Pod",
            live,
            json!({"metadata": {"labels": {"c": "3", "$patch": "replace"}}}),
        );
        assert_eq!(out, json!({"metadata": {"labels": {"c": "3"}}}));
        let out = patch(
            "",
            "Pod",
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}}),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        );
        assert_eq!(out, json!({"metadata": {"labels": {}}, "spec": {"x": 1}}));
    }

    #[test]
    fn patch_merge_directive_is_the_default_said_aloud() {
        let live = json!({"metadata": {"labels": {"a": "1"}}});
        let out = patch(
            "",
            "Pod",
            live,
            json!({"metadata": {"labels": {"b": "2", "$patch": "merge"}}}),
        );
        assert_eq!(out, json!({"metadata": {"labels": {"a": "1", "b": "2"}}}));
        let live = deployment(json!([{"name": "a"}]));
        let out = patch(
            "apps",
            "Deployment",
            live,
            deployment(json!([{"$patch": "merge"}, {"name": "b"}])),
        );
        assert_eq!(out, deployment(json!([{"name": "b"}, {"name": "a"}])));
    }

    #[test]
    fn set_element_order_orders_patch_and_server_only_elements() {
        // kubectl's patch when the manifest reorders containers b, a and adds c before a.
        let live = deployment(json!([{"name": "a"}, {"name": "x"}, {"name": "b"}]));
        let out = patch(
            "apps",
            "Deployment",
            live,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
                "containers": [{"name": "c", "image": "c:1"}],
            }}}}),
        );
        assert_eq!(
            out,
            // x is server-only: it keeps its live place before b (mergeSortedSlice).
            deployment(json!([
                {"name": "x"},
                {"name": "b"},
                {"name": "c", "image": "c:1"},
                {"name": "a"},
            ]))
        );
    }

    #[test]
    fn set_element_order_must_agree_with_the_patch() {
        let live = deployment(json!([{"name": "a"}, {"name": "b"}]));
        let err = apply(
            &live,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}],
            }}}}),
            Schema::of_kind("apps", "Deployment"),
        )
        .unwrap_err();
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn retain_keys_drops_the_live_keys_it_does_not_list() {
        let live = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = patch(
            "apps",
            "Deployment",
            live,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(out, json!({"spec": {"strategy": {"type": "Recreate"}}}));
        // A patch key the list does not name is refused.
        let err = apply(
            &json!({}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            Schema::of_kind("apps", "Deployment"),
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
        // Volumes: merge by name, and each volume keeps only its retained keys.
        let live = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
        let out = patch(
            "",
            "Pod",
            live,
            json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["configMap", "name"], "configMap": {"name": "c"}}]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}})
        );
    }

    #[test]
    fn primitive_lists_merge_as_sets_and_delete_from_primitive_list() {
        let live = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = patch(
            "",
            "ConfigMap",
            live.clone(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
        );
        assert_eq!(out, json!({"metadata": {"finalizers": ["c", "a", "b"]}}));
        let out = patch(
            "",
            "ConfigMap",
            live,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out, json!({"metadata": {"finalizers": ["b"]}}));
    }

    #[test]
    fn merge_key_missing_and_lists_of_lists_are_refused() {
        let live = deployment(json!([{"name": "a"}]));
        let err = apply(
            &live,
            deployment(json!([{"image": "x"}])),
            Schema::of_kind("apps", "Deployment"),
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
        let err = apply(
            &json!({"metadata": {"finalizers": ["a"]}}),
            json!({"metadata": {"finalizers": [["a"]]}}),
            Schema::of_kind("", "ConfigMap"),
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
        let err = apply(&json!({}), json!([1]), Schema::of_kind("", "ConfigMap")).unwrap_err();
        assert_eq!(err.code(), 400);
        let err = apply(
            &json!({}),
            json!({"metadata": {"$patch": "bogus"}}),
            Schema::of_kind("", "ConfigMap"),
        )
        .unwrap_err();
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn directives_never_reach_a_new_value() {
        let out = patch(
            "apps",
            "Deployment",
            json!({"spec": {}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                   "template": {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": null}]}]}}}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"strategy": {"type": "Recreate"},
                   "template": {"spec": {"containers": [{"name": "a", "env": [{"name": "X"}]}]}}}})
        );
    }

    #[test]
    fn conditions_merge_by_type_on_status() {
        let live = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "PodScheduled", "status": "True"},
        ]}});
        let out = patch(
            "",
            "Pod",
            live,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            out,
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "PodScheduled", "status": "True"},
            ]}})
        );
    }
}
