//! Typed decoding: whether an object decodes into its kind's `k8s-openapi` type, and, when it
//! does not, the 400 kube-apiserver sends (`Deployment in version "v1" cannot be handled as a
//! Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of
//! type int32`).
//!
//! serde reports where decoding failed only as a byte offset into the text it read, so the object
//! is decoded from its compact serialization and the offset is mapped back to the JSON path of
//! the offending value. Go's message also names the innermost struct and the Go type of the field;
//! both are found by "probing": decoding again with a value at the path replaced by `true`, so
//! that serde names the type it expected there (`DeploymentSpec`, `a map`, `a sequence`, `i32`).
//! Probing only happens on the error path.
//!
//! Quantities are strings to `k8s-openapi`, so they are parsed here as Kubernetes' decoder parses
//! them (`quantities must match the regular expression …`).

use api_types::k8s;
use api_types::quantity::Quantity;
use api_types::registry::ResourceInfo;
use api_types::validation::go_quote;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Kind;
use crate::errors::ApiError;

/// Decodes `obj` into the `k8s-openapi` type of the endpoint's kind (Pod, Deployment, …) and turns
/// a failure into the 400 Kubernetes' strict decoder sends, naming the field. `apiVersion` and
/// `kind` must match the endpoint (or be absent). Kinds without a typed model are accepted.
///
/// Returns the fields the type does not know (what `fieldValidation` decides about). `obj` is
/// left as it came; it is borrowed mutably only to set `apiVersion` and `kind` aside while the
/// typed decoder runs (they are checked here; the typed decoders insist on their own spelling).
pub fn decode_typed(info: &ResourceInfo, obj: &mut Value) -> Result<Vec<UnknownField>, ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(&not_an_object_message(obj)));
    };
    super::meta::check_type_meta(info, map)?;
    let api_version = map.remove("apiVersion");
    let kind_field = map.remove("kind");
    let result = check_kind(info, obj);
    if let Some(map) = obj.as_object_mut() {
        if let Some(v) = api_version {
            map.insert("apiVersion".into(), v);
        }
        if let Some(k) = kind_field {
            map.insert("kind".into(), k);
        }
    }
    result
}

/// [`decode_typed`] of `value`, without its `apiVersion` and `kind`.
fn check_kind(info: &ResourceInfo, value: &Value) -> Result<Vec<UnknownField>, ApiError> {
    use k8s::api::{apps, coordination, core, events, scheduling};
    let kind = Kind::of(info);
    let result = match kind {
        Kind::Namespace => check::<core::v1::Namespace>(info, value),
        Kind::Pod => check::<core::v1::Pod>(info, value),
        Kind::Node => check::<core::v1::Node>(info, value),
        Kind::Service => check::<core::v1::Service>(info, value),
        Kind::Endpoints => check::<core::v1::Endpoints>(info, value),
        Kind::ConfigMap => check::<core::v1::ConfigMap>(info, value),
        Kind::Secret => check::<core::v1::Secret>(info, value),
        Kind::ServiceAccount => check::<core::v1::ServiceAccount>(info, value),
        Kind::CoreEvent => check::<core::v1::Event>(info, value),
        Kind::Deployment => check::<apps::v1::Deployment>(info, value),
        Kind::ReplicaSet => check::<apps::v1::ReplicaSet>(info, value),
        Kind::Lease => check::<coordination::v1::Lease>(info, value),
        Kind::PriorityClass => check::<scheduling::v1::PriorityClass>(info, value),
        Kind::EventsEvent => check::<events::v1::Event>(info, value),
        Kind::Other => return Ok(Vec::new()),
    };
    let unknown = result?;
    let mut bad: Option<String> = None;
    for_each_quantity_ref(kind, value, &mut |q| {
        if bad.is_none()
            && let Err(e) = parse_quantity_value(q)
        {
            bad = Some(e);
        }
    });
    match bad {
        Some(msg) => Err(cannot_be_handled(info.kind, info.version, &msg)),
        None => Ok(unknown),
    }
}

/// Decodes a body as `T` (whose Kubernetes kind is `kind`), reporting failures as
/// [`decode_typed`] does. Used for subresource bodies such as `Scale`.
pub(crate) fn decode_as<T: DeserializeOwned>(
    kind: &str,
    version: &str,
    obj: &Value,
) -> Result<T, ApiError> {
    let text = serde_json::to_string(obj).map_err(|e| ApiError::bad_request(&e.to_string()))?;
    serde_json::from_str::<T>(&text)
        .map_err(|err| cannot_be_handled(kind, version, &go_error::<T>(kind, obj, &err)))
}

fn check<T: DeserializeOwned>(
    info: &ResourceInfo,
    value: &Value,
) -> Result<Vec<UnknownField>, ApiError> {
    let mut unknown = Vec::new();
    // One typed pass that also collects what the type skips; on failure the object is decoded
    // again from its text, which is what locates the error for Kubernetes' wording.
    let decoded = serde_ignored::deserialize::<_, _, T>(value, |path| {
        let mut segs = Vec::new();
        ignored_path(&path, &mut segs);
        unknown.push(UnknownField(segs));
    });
    match decoded {
        Ok(_) => Ok(unknown),
        Err(err) => match decode_as::<T>(info.kind, info.version, value) {
            Err(e) => Err(e),
            // Decoding from the text succeeded where decoding the value did not (not seen):
            // report the value's error as it is.
            Ok(_) => Err(cannot_be_handled(info.kind, info.version, &err.to_string())),
        },
    }
}

/// The fields a JSON document sets more than once (`spec.replicas`, `metadata.labels.app`), in
/// document order: Kubernetes' strict decoder reports each; decoding keeps the last value.
/// Not JSON: none (the body's own decoding reports the error).
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::borrow::Cow;
    use std::collections::HashSet;
    use std::fmt::Write as _;

    /// Maps up to this many keys are checked by a scan, bigger ones through a hash set.
    const SCAN: usize = 32;

    /// Walks one value; `path` is the value's path, restored before returning.
    struct Walk<'o> {
        path: &'o mut String,
        out: &'o mut Vec<String>,
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen: Vec<Cow<'de, str>> = Vec::new();
            let mut many: HashSet<Cow<'de, str>> = HashSet::new();
            let len = self.path.len();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if len > 0 {
                    self.path.push('.');
                }
                self.path.push_str(&key);
                let repeated = if many.is_empty() && seen.len() < SCAN {
                    let repeated = seen.contains(&key);
                    if !repeated {
                        seen.push(key);
                    }
                    repeated
                } else {
                    many.extend(seen.drain(..));
                    !many.insert(key)
                };
                if repeated {
                    self.out.push(self.path.clone());
                }
                map.next_value_seed(Walk {
                    path: &mut *self.path,
                    out: &mut *self.out,
                })?;
                self.path.truncate(len);
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let len = self.path.len();
            for index in 0.. {
                let _ = write!(self.path, "[{index}]");
                let walk = Walk {
                    path: &mut *self.path,
                    out: &mut *self.out,
                };
                let more = seq.next_element_seed(walk)?.is_some();
                self.path.truncate(len);
                if !more {
                    break;
                }
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }

    let mut out = Vec::new();
    let mut path = String::new();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let walk = Walk {
        path: &mut path,
        out: &mut out,
    };
    if walk.deserialize(&mut deserializer).is_err() {
        return Vec::new();
    }
    out
}

/// A field of a request body that its kind's type does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField(Vec<Seg>);

impl UnknownField {
    /// The field's path as Kubernetes' strict decoder names it: `spec.replicass`,
    /// `spec.template.spec.containers[0].imagee`.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// Drops the field from `obj`, as decoding into the type does.
    pub fn remove_from(&self, obj: &mut Value) {
        let Some((Seg::Key(last), parent)) = self.0.split_last() else {
            return;
        };
        if let Some(Value::Object(map)) = lookup_mut(obj, parent) {
            map.remove(last);
        }
    }
}

fn ignored_path(path: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            ignored_path(parent, out);
            out.push(Seg::Index(*index));
        }
        Path::Map { parent, key } => {
            ignored_path(parent, out);
            out.push(Seg::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent, out),
    }
}

/// `transformDecodeError`: `Pod in version "v1" cannot be handled as a Pod: <detail>`.
pub(crate) fn cannot_be_handled(kind: &str, version: &str, detail: &str) -> ApiError {
    ApiError::bad_request(&format!(
        "{kind} in version {} cannot be handled as a {kind}: {detail}",
        go_quote(version)
    ))
}

/// What Kubernetes says when the body is JSON but not an object.
pub(crate) fn not_an_object_message(obj: &Value) -> String {
    format!(
        "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
        go_json_kind(obj)
    )
}

/// The JSON kind of a value as Go's decoder names it in messages.
pub(crate) fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// Go-style messages for serde errors.

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// What a probe found at a path.
enum Shape {
    Struct(String),
    Map,
    Seq,
    Unknown,
}

const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const GO_TIME_LAYOUT: &str = "2006-01-02T15:04:05Z07:00";

/// Go's `encoding/json` message for the first problem serde found decoding `value` as `T`
/// (`root` is the Go name of `T`). Falls back to serde's text when the problem is not one Go's
/// decoder would describe the same way.
fn go_error<T: DeserializeOwned>(root: &str, value: &Value, err: &serde_json::Error) -> String {
    let message = strip_position(&err.to_string());
    if err.classify() != serde_json::error::Category::Data || err.line() != 1 {
        return message;
    }
    let Some(path) = locate(value, err.column()) else {
        return message;
    };
    let Some(node) = lookup(value, &path) else {
        return message;
    };
    // The struct fields on the way (map keys and list indexes are not named by Go).
    let mut struct_name = root.to_string();
    let mut fields: Vec<&str> = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        if let Seg::Key(key) = seg {
            let parent = if i == 0 {
                Shape::Struct(root.to_string())
            } else {
                shape_at::<T>(value, &path[..i])
            };
            if let Shape::Struct(name) = parent {
                struct_name = name;
                fields.push(key);
            }
        }
    }
    let expected = expected_of(&message).map(str::to_string);
    let expected = match expected {
        Some(e) => e,
        None => {
            // A custom error (bad base64, bad timestamp): find out what was expected here.
            let here = probe::<T>(value, &path, Value::Bool(true)).unwrap_or_default();
            if let Value::String(s) = node {
                if here.contains("base64") {
                    return format!(
                        "illegal base64 data at input byte {}",
                        base64_error_offset(s)
                    );
                }
                if here.contains("Time") || here.to_ascii_lowercase().contains("timestamp") {
                    return format!(
                        "parsing time {} as {}: cannot parse {} as {}",
                        go_quote(s),
                        go_quote(GO_TIME_LAYOUT),
                        go_quote(s),
                        go_quote("2006")
                    );
                }
            }
            return message;
        }
    };
    if expected == "Quantity" {
        return QUANTITY_FORMAT_ERROR.to_string();
    }
    let go_type = go_type_of::<T>(&expected, value, &path, 0);
    let desc = describe(node, &go_type);
    if fields.is_empty() {
        format!("json: cannot unmarshal {desc} into Go value of type {go_type}")
    } else {
        format!(
            "json: cannot unmarshal {desc} into Go struct field {struct_name}.{} of type {go_type}",
            fields.join(".")
        )
    }
}

/// serde_json appends ` at line L column C`; Kubernetes' messages have no position.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The `expected …` part of serde's `invalid type: …, expected …` messages.
fn expected_of(message: &str) -> Option<&str> {
    if !(message.starts_with("invalid type:") || message.starts_with("invalid value:")) {
        return None;
    }
    message
        .rfind(", expected ")
        .map(|i| &message[i + ", expected ".len()..])
}

/// Decodes `value` with the node at `path` replaced, and returns what serde expected there.
fn probe<T: DeserializeOwned>(value: &Value, path: &[Seg], replacement: Value) -> Option<String> {
    let mut copy = value.clone();
    *lookup_mut(&mut copy, path)? = replacement;
    let text = serde_json::to_string(&copy).ok()?;
    let err = serde_json::from_str::<T>(&text).err()?;
    expected_of(&strip_position(&err.to_string())).map(str::to_string)
}

fn shape_at<T: DeserializeOwned>(value: &Value, path: &[Seg]) -> Shape {
    match probe::<T>(value, path, Value::Bool(true)).as_deref() {
        Some("a map") => Shape::Map,
        Some("a sequence") => Shape::Seq,
        Some(name) if is_identifier(name) => Shape::Struct(name.to_string()),
        _ => Shape::Unknown,
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The Go type Kubernetes names for what serde `expected`.
fn go_type_of<T: DeserializeOwned>(
    expected: &str,
    value: &Value,
    path: &[Seg],
    depth: usize,
) -> String {
    let simple = match expected {
        "i8" => "int8",
        "i16" => "int16",
        "i32" | "a 32-bit integer" | "IntOrString" => "int32",
        "i64" => "int64",
        "u8" => "uint8",
        "u16" => "uint16",
        "u32" => "uint32",
        "u64" => "uint64",
        "f32" => "float32",
        "f64" => "float64",
        "a string" | "a borrowed string" | "Time" | "MicroTime" => "string",
        "a boolean" => "bool",
        "a base64-encoded string" => "[]uint8",
        "Quantity" => "resource.Quantity",
        _ => "",
    };
    if !simple.is_empty() {
        return simple.to_string();
    }
    if depth < 2 {
        if expected == "a sequence" {
            let elem = probe::<T>(value, path, json!([true]))
                .map(|e| go_type_of::<T>(&e, value, path, depth + 1));
            return format!("[]{}", elem.unwrap_or_else(|| "interface {}".to_string()));
        }
        if expected == "a map" {
            let elem = probe::<T>(value, path, json!({"k": true}))
                .map(|e| go_type_of::<T>(&e, value, path, depth + 1));
            return format!(
                "map[string]{}",
                elem.unwrap_or_else(|| "interface {}".to_string())
            );
        }
    }
    if is_identifier(expected) {
        format!("v1.{expected}")
    } else {
        expected.to_string()
    }
}

/// How Go's decoder describes the offending JSON value: `string`, `number`, `number 1.5` (a
/// number that does not fit the integer type), `bool`, `array`, `object`.
fn describe(node: &Value, go_type: &str) -> String {
    match node {
        Value::Number(n) if go_type.starts_with("int") || go_type.starts_with("uint") => {
            let fits = match go_type {
                "int8" => n.as_i64().is_some_and(|v| i8::try_from(v).is_ok()),
                "int16" => n.as_i64().is_some_and(|v| i16::try_from(v).is_ok()),
                "int32" => n.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
                "int64" => n.as_i64().is_some(),
                "uint8" => n.as_u64().is_some_and(|v| u8::try_from(v).is_ok()),
                "uint16" => n.as_u64().is_some_and(|v| u16::try_from(v).is_ok()),
                "uint32" => n.as_u64().is_some_and(|v| u32::try_from(v).is_ok()),
                _ => n.as_u64().is_some(),
            };
            if fits {
                "number".to_string()
            } else {
                format!("number {n}")
            }
        }
        other => go_json_kind(other).to_string(),
    }
}

/// Where Go's base64 decoder would report the first problem in `s`.
fn base64_error_offset(s: &str) -> usize {
    let bytes = s.as_bytes();
    let data_len = bytes.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
    for (i, b) in bytes.iter().enumerate() {
        let ok =
            b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || (*b == b'=' && i >= data_len);
        if !ok {
            return i;
        }
    }
    if !bytes.len().is_multiple_of(4) {
        return bytes.len() - bytes.len() % 4;
    }
    if bytes.len() - data_len > 2 {
        return data_len;
    }
    0
}

fn lookup<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = value;
    for seg in path {
        cur = match seg {
            Seg::Key(k) => cur.as_object()?.get(k)?,
            Seg::Index(i) => cur.as_array()?.get(*i)?,
        };
    }
    Some(cur)
}

fn lookup_mut<'a>(value: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = value;
    for seg in path {
        cur = match seg {
            Seg::Key(k) => cur.as_object_mut()?.get_mut(k)?,
            Seg::Index(i) => cur.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(cur)
}

/// The path of the value at byte offset `target` of `value`'s compact serialization: serde
/// reports the offset just past a scalar it rejected, or the opening bracket of a list or object
/// it rejected. The deepest match wins; without one, the deepest value spanning the offset.
fn locate(value: &Value, target: usize) -> Option<Vec<Seg>> {
    struct Walk {
        target: usize,
        offset: usize,
        path: Vec<Seg>,
        exact: Option<(usize, Vec<Seg>)>,
        spanning: Option<(usize, Vec<Seg>)>,
    }
    fn json_len(v: &Value) -> usize {
        serde_json::to_string(v).map_or(0, |s| s.len())
    }
    fn walk(w: &mut Walk, v: &Value, depth: usize) {
        let start = w.offset;
        if depth > 512 {
            w.offset += json_len(v);
            return;
        }
        match v {
            Value::Object(m) => {
                w.offset += 1;
                for (i, (k, child)) in m.iter().enumerate() {
                    if i > 0 {
                        w.offset += 1;
                    }
                    w.offset += json_len(&Value::String(k.clone())) + 1;
                    w.path.push(Seg::Key(k.clone()));
                    walk(w, child, depth + 1);
                    w.path.pop();
                }
                w.offset += 1;
            }
            Value::Array(a) => {
                w.offset += 1;
                for (i, child) in a.iter().enumerate() {
                    if i > 0 {
                        w.offset += 1;
                    }
                    w.path.push(Seg::Index(i));
                    walk(w, child, depth + 1);
                    w.path.pop();
                }
                w.offset += 1;
            }
            scalar => w.offset += json_len(scalar),
        }
        let end = w.offset;
        let container = v.is_object() || v.is_array();
        if (end == w.target || (container && start == w.target))
            && w.exact.as_ref().is_none_or(|(d, _)| depth > *d)
        {
            w.exact = Some((depth, w.path.clone()));
        }
        if start <= w.target
            && w.target <= end
            && w.spanning.as_ref().is_none_or(|(d, _)| depth > *d)
        {
            w.spanning = Some((depth, w.path.clone()));
        }
    }
    let mut w = Walk {
        target,
        offset: 0,
        path: Vec::new(),
        exact: None,
        spanning: None,
    };
    walk(&mut w, value, 0);
    w.exact.or(w.spanning).map(|(_, p)| p)
}

// ---------------------------------------------------------------------------------------------
// Quantities.

/// Where a kind keeps resource quantities, relative to the object; `*` is every element of a
/// list, a trailing `**` every value of a map. The flag marks resource lists, which Kubernetes
/// rounds up to milli precision (`SetDefaults_ResourceList`).
fn quantity_patterns(kind: Kind) -> Vec<(Vec<&'static str>, bool)> {
    const POD_SPEC: &[(&[&str], bool)] = &[
        (&["containers", "*", "resources", "limits", "**"], true),
        (&["containers", "*", "resources", "requests", "**"], true),
        (&["initContainers", "*", "resources", "limits", "**"], true),
        (
            &["initContainers", "*", "resources", "requests", "**"],
            true,
        ),
        (
            &["ephemeralContainers", "*", "resources", "limits", "**"],
            true,
        ),
        (
            &["ephemeralContainers", "*", "resources", "requests", "**"],
            true,
        ),
        (
            &[
                "containers",
                "*",
                "env",
                "*",
                "valueFrom",
                "resourceFieldRef",
                "divisor",
            ],
            false,
        ),
        (
            &[
                "initContainers",
                "*",
                "env",
                "*",
                "valueFrom",
                "resourceFieldRef",
                "divisor",
            ],
            false,
        ),
        (&["overhead", "**"], true),
        (&["resources", "limits", "**"], true),
        (&["resources", "requests", "**"], true),
        (&["volumes", "*", "emptyDir", "sizeLimit"], false),
    ];
    let prefix: &[&str] = match kind {
        Kind::Pod => &["spec"],
        Kind::Deployment | Kind::ReplicaSet => &["spec", "template", "spec"],
        Kind::Node => {
            return vec![
                (vec!["status", "capacity", "**"], true),
                (vec!["status", "allocatable", "**"], true),
            ];
        }
        _ => return Vec::new(),
    };
    POD_SPEC
        .iter()
        .map(|(p, list)| (prefix.iter().chain(p.iter()).copied().collect(), *list))
        .collect()
}

/// [`for_each_quantity`] for reading: `f` sees each quantity of `obj`.
fn for_each_quantity_ref(kind: Kind, obj: &Value, f: &mut dyn FnMut(&Value)) {
    fn visit(v: &Value, pattern: &[&str], f: &mut dyn FnMut(&Value)) {
        match pattern.split_first() {
            None => {
                if !v.is_null() {
                    f(v);
                }
            }
            Some((&"*", rest)) => {
                for item in v.as_array().into_iter().flatten() {
                    visit(item, rest, f);
                }
            }
            Some((&"**", _)) => {
                for item in v.as_object().into_iter().flat_map(|m| m.values()) {
                    if !item.is_null() {
                        f(item);
                    }
                }
            }
            Some((key, rest)) => {
                if let Some(next) = v.get(*key) {
                    visit(next, rest, f);
                }
            }
        }
    }
    for (pattern, _) in quantity_patterns(kind) {
        visit(obj, &pattern, f);
    }
}

/// Calls `f` on every quantity of an object of `kind` (with whether it is in a resource list).
pub(crate) fn for_each_quantity(kind: Kind, obj: &mut Value, f: &mut dyn FnMut(&mut Value, bool)) {
    fn visit(v: &mut Value, pattern: &[&str], list: bool, f: &mut dyn FnMut(&mut Value, bool)) {
        match pattern.split_first() {
            None => {
                if !v.is_null() {
                    f(v, list);
                }
            }
            Some((&"*", rest)) => {
                if let Some(items) = v.as_array_mut() {
                    for item in items {
                        visit(item, rest, list, f);
                    }
                }
            }
            Some((&"**", _)) => {
                if let Some(m) = v.as_object_mut() {
                    for item in m.values_mut().filter(|v| !v.is_null()) {
                        f(item, list);
                    }
                }
            }
            Some((key, rest)) => {
                if let Some(next) = v.as_object_mut().and_then(|m| m.get_mut(*key)) {
                    visit(next, rest, list, f);
                }
            }
        }
    }
    for (pattern, list) in quantity_patterns(kind) {
        visit(obj, &pattern, list, f);
    }
}

/// Parses a quantity as Go's `Quantity.UnmarshalJSON` does: a string or a bare number.
pub(crate) fn parse_quantity_value(v: &Value) -> Result<Quantity, String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return Err(QUANTITY_FORMAT_ERROR.to_string()),
    };
    Quantity::parse(&text).map_err(|e| e.to_string())
}

/// Rewrites a quantity in canonical form (`1000m` → `1`, `0.5` → `500m`, `1024Mi` → `1Gi`),
/// rounding resource-list values up to milli precision, as a round trip through Kubernetes does.
pub(crate) fn canonicalize_quantity(v: &mut Value, resource_list: bool) {
    let Ok(mut q) = parse_quantity_value(v) else {
        return;
    };
    if resource_list && q.to_value_ceil().unsigned_abs() < 1_000_000_000_000_000 {
        let milli = Quantity::from_milli(q.to_milli_ceil(), q.format());
        if milli != q {
            q = milli;
        }
    }
    *v = Value::String(q.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::registry;

    fn info(group: &str, resource: &str) -> &'static ResourceInfo {
        registry::by_group_version_resource(group, "v1", resource).unwrap()
    }

    fn message(group: &str, resource: &str, mut obj: Value) -> String {
        let err = decode_typed(info(group, resource), &mut obj).unwrap_err();
        assert_eq!(err.code, 400, "{}", err.message);
        err.message
    }

    #[test]
    fn wrong_types_name_the_field_as_go_does() {
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            (
                "apps",
                "deployments",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": "3"}}),
                "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
            ),
            (
                "",
                "configmaps",
                json!({"metadata": {"name": "c"}, "data": {"a": 1}}),
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string",
            ),
            (
                "",
                "configmaps",
                json!({"metadata": {"name": "c"}, "data": "x"}),
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct field ConfigMap.data of type map[string]string",
            ),
            (
                "apps",
                "deployments",
                json!({"spec": "x"}),
                "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field Deployment.spec of type v1.DeploymentSpec",
            ),
            (
                "",
                "pods",
                json!({"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": "80"}]}]}}),
                "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
            ),
            (
                "",
                "pods",
                json!({"spec": {"containers": "x"}}),
                "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container",
            ),
            (
                "",
                "pods",
                json!({"metadata": {"labels": {"a": true}}}),
                "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string",
            ),
            (
                "apps",
                "deployments",
                json!({"spec": {"replicas": 1.5}}),
                "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32",
            ),
            (
                "apps",
                "deployments",
                json!({"spec": {"replicas": 3_000_000_000_i64}}),
                "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas of type int32",
            ),
            (
                "",
                "pods",
                json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "12xyz"}}}]}}),
                "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ),
            (
                "",
                "pods",
                json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": true}}}]}}),
                "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ),
            (
                "",
                "secrets",
                json!({"data": {"a": "!!"}}),
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0",
            ),
            (
                "",
                "services",
                json!({"spec": {"ports": [{"port": 80, "targetPort": true}]}}),
                "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32",
            ),
        ];
        for (group, resource, obj, want) in cases {
            assert_eq!(message(group, resource, obj.clone()), want, "{obj}");
        }
    }

    #[test]
    fn well_typed_objects_pass() {
        let mut ok = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx",
                                           "resources": {"limits": {"cpu": 1, "memory": "64Mi"}}}]}}}
        });
        decode_typed(info("apps", "deployments"), &mut ok).unwrap();
        decode_typed(
            info("", "configmaps"),
            &mut json!({"data": {"a": "b"}, "metadata": null}),
        )
        .unwrap();
    }

    #[test]
    fn duplicate_fields_are_found_by_path_in_small_and_big_maps() {
        let body = br#"{"a":1,"spec":{"list":[{"x":1,"x":2},{"y":[{"z":1,"z":1}]}]},"a":2}"#;
        assert_eq!(
            duplicate_fields(body),
            vec!["spec.list[0].x", "spec.list[1].y[0].z", "a"]
        );
        let mut big: String = (0..100).map(|i| format!(r#""k{i}":{i},"#)).collect();
        big.push_str(r#""k7":0,"k99":0"#);
        assert_eq!(
            duplicate_fields(format!(r#"{{"data":{{{big}}}}}"#).as_bytes()),
            vec!["data.k7", "data.k99"]
        );
        assert!(duplicate_fields(br#"{"a":{"b":1},"c":{"b":1}}"#).is_empty());
        assert!(duplicate_fields(b"not json").is_empty());
    }

    #[test]
    fn type_meta_and_shape() {
        let err = decode_typed(info("", "configmaps"), &mut json!([])).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message.starts_with(
                "couldn't get version/kind; json parse error: json: cannot unmarshal array"
            ),
            "{}",
            err.message
        );
        let err = decode_typed(
            info("", "configmaps"),
            &mut json!({"apiVersion": "v2", "kind": "ConfigMap"}),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "the API version in the data (v2) does not match the expected API version (v1)"
        );
        let err = decode_typed(
            info("", "configmaps"),
            &mut json!({"apiVersion": "v1", "kind": "Pod"}),
        )
        .unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .starts_with("Pod in version \"v1\" cannot be handled as a ConfigMap"),
            "{}",
            err.message
        );
    }

    #[test]
    fn quantities_are_canonicalized() {
        let cases = [
            (json!("1000m"), true, "1"),
            (json!("0.5"), true, "500m"),
            (json!(1), true, "1"),
            (json!("1024Mi"), true, "1Gi"),
            (json!("0.1m"), true, "1m"),
            (json!("100Mi"), false, "100Mi"),
        ];
        for (input, list, want) in cases {
            let mut v = input.clone();
            canonicalize_quantity(&mut v, list);
            assert_eq!(v, json!(want), "{input}");
        }
    }

    #[test]
    fn base64_offsets() {
        assert_eq!(base64_error_offset("!!"), 0);
        assert_eq!(base64_error_offset("YWJj!"), 4);
        assert_eq!(base64_error_offset("YWJjZA"), 4);
    }
}
