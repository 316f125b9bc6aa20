//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl 1.32+ sends for
//! its `create <kind>` generators (`kubectl create namespace|deployment|configmap|secret|…`).
//!
//! The body is Kubernetes' envelope: the magic `k8s\0`, then a `runtime.Unknown` message
//! (1: typeMeta {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType) whose `raw`
//! is the object in the kind's `generated.proto` layout. It is decoded here into the JSON the same
//! object would have been sent as, and from there takes the path of every JSON body (typed decode,
//! field validation, defaults, validation).
//!
//! The field numbers are data ([`fields::MESSAGES`], generated from the `k8s-pb` crate's sources
//! by `xtask/protobuf_fields.py`); each field's JSON name is the schema property it matches in
//! the served OpenAPI schemas. The wire format is read with `prost`'s primitives. (`k8s-pb`'s
//! generated structs are not used directly: they carry no JSON mapping, so each of the ~200
//! messages would need a hand-written conversion to the JSON the rest of the server works on.) Go writes every non-pointer field, empty or not; an empty string
//! field is left out here, as Go's `omitempty` leaves it out of JSON, and a zero `Time` is no time.
//!
//! Responses are JSON: kubectl's `Accept` lists `application/json` after protobuf.

#[rustfmt::skip] // generated
mod fields;

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine;
use prost::encoding::{WireType, decode_key, decode_varint};
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// A field's protobuf type, as far as decoding it to JSON needs.
#[derive(Clone, Copy, Debug)]
pub enum Type {
    Str,
    Bool,
    Int,
    Double,
    Bytes,
    /// `map<string, string>`
    MapStr,
    /// `map<string, bytes>` (a Secret's data)
    MapBytes,
    /// A message, by its schema name.
    Msg(&'static str),
    /// `map<string, message>`
    MapMsg(&'static str),
}

/// One field of a message: its number, the `k8s-pb` (snake case) name, type and cardinality.
pub struct Field {
    pub tag: u32,
    pub name: &'static str,
    pub ty: Type,
    pub repeated: bool,
}

/// A message by its schema name (`io.k8s.api.core.v1.Namespace`), with its fields.
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

const MAGIC: &[u8] = b"k8s\0";
const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const FIELDS_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1";

/// A field ready to decode: its JSON name (empty for an embedded struct, whose fields are the
/// parent's in JSON).
struct Resolved {
    json: String,
    ty: Type,
    repeated: bool,
}

/// By message name in lower case: `k8s-pb` spells some names its own way
/// (`AwsElasticBlockStoreVolumeSource` for `AWSElasticBlockStoreVolumeSource`).
type Table = HashMap<String, HashMap<u32, Resolved>>;

/// The schemas by lower-case name.
fn schemas_by_folded_name() -> HashMap<String, &'static Value> {
    crate::openapi::patch_schemas()
        .schemas
        .iter()
        .map(|(name, schema)| (name.to_ascii_lowercase(), schema))
        .collect()
}

/// The messages by name, each field with its JSON name: the schema property whose name matches
/// the field's ignoring case and underscores (`pod_i_ps` → `podIPs`, `host_ipc` → `hostIPC`).
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let schemas = schemas_by_folded_name();
        fields::MESSAGES
            .iter()
            .map(|message| {
                let properties = properties_of(&schemas, message.name);
                let fields = message
                    .fields
                    .iter()
                    .map(|field| {
                        let json = match (properties, field.ty) {
                            (Some(properties), ty) => json_name(field.name, properties)
                                .or(match ty {
                                    // An embedded Go struct (`json:",inline"`): a nested
                                    // message on the wire, its fields in the parent in JSON.
                                    Type::Msg(_) => Some(String::new()),
                                    _ => None,
                                })
                                .unwrap_or_else(|| camel_case(field.name)),
                            (None, _) => camel_case(field.name),
                        };
                        let resolved = Resolved {
                            json,
                            ty: field.ty,
                            repeated: field.repeated,
                        };
                        (field.tag, resolved)
                    })
                    .collect();
                (message.name.to_ascii_lowercase(), fields)
            })
            .collect()
    })
}

/// A message's schema properties; for a struct only ever embedded (`EphemeralContainerCommon`),
/// which has no schema of its own, those of the message embedding it.
fn properties_of(
    schemas: &HashMap<String, &'static Value>,
    message: &str,
) -> Option<&'static Map<String, Value>> {
    let own = |name: &str| {
        schemas
            .get(&name.to_ascii_lowercase())
            .and_then(|schema| schema.get("properties"))
            .and_then(Value::as_object)
    };
    own(message).or_else(|| {
        fields::MESSAGES
            .iter()
            .find(|parent| {
                parent
                    .fields
                    .iter()
                    .any(|f| matches!(f.ty, Type::Msg(m) if m == message))
            })
            .and_then(|parent| own(parent.name))
    })
}

fn json_name(snake: &str, properties: &Map<String, Value>) -> Option<String> {
    let folded: String = snake.chars().filter(|c| *c != '_').collect();
    properties
        .keys()
        .find(|key| key.eq_ignore_ascii_case(&folded))
        .cloned()
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(&format!(
        "error decoding the request body as protobuf: {message}"
    ))
}

/// Decodes a protobuf request body into the object's JSON (with `apiVersion` and `kind`).
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("the body does not start with Kubernetes' protobuf magic \"k8s\\0\""))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut reader = Reader(envelope);
    while let Some((tag, value)) = reader.field()? {
        match (tag, value) {
            (1, Wire::Len(type_meta)) => {
                let mut meta = Reader(type_meta);
                while let Some((tag, value)) = meta.field()? {
                    match (tag, value) {
                        (1, Wire::Len(v)) => api_version = utf8(v)?.to_owned(),
                        (2, Wire::Len(v)) => kind = utf8(v)?.to_owned(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(bytes)) => raw = bytes,
            (3, Wire::Len(encoding)) if !encoding.is_empty() => {
                return Err(bad(format!(
                    "content encoding {:?} is not supported",
                    String::from_utf8_lossy(encoding)
                )));
            }
            _ => {}
        }
    }
    let group = api_version
        .rsplit_once('/')
        .map_or("", |(group, _version)| group);
    let schemas = crate::openapi::patch_schemas();
    let Some(name) = schemas.kinds.get(&(group, kind.as_str())) else {
        return Err(bad(format!(
            "no kind {kind:?} is registered for version {api_version:?}"
        )));
    };
    let mut object = match decode_message(name, raw, 0)? {
        Some(Value::Object(object)) => object,
        _ => Map::new(),
    };
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(object))
}

/// Kubernetes' objects nest far less; this bounds the recursion on hostile input.
const MAX_DEPTH: usize = 64;

/// One message as JSON; `None` for a value JSON leaves out (a zero time).
fn decode_message(name: &str, bytes: &[u8], depth: usize) -> Result<Option<Value>, ApiError> {
    if depth > MAX_DEPTH {
        return Err(bad("the object nests too deeply"));
    }
    let folded = name.to_ascii_lowercase();
    match folded.as_str() {
        n if n == TIME.to_ascii_lowercase() => return time(bytes, false),
        n if n == MICRO_TIME.to_ascii_lowercase() => return time(bytes, true),
        n if n == QUANTITY.to_ascii_lowercase() => {
            return Ok(Some(Value::String(string_field(bytes, 1)?)));
        }
        n if n == INT_OR_STRING.to_ascii_lowercase() => return int_or_string(bytes),
        n if n == FIELDS_V1.to_ascii_lowercase() => {
            let raw = bytes_field(bytes, 1)?;
            return serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| bad(format!("fieldsV1 is not JSON: {e}")));
        }
        _ => {}
    }
    let fields = table().get(&folded);
    let mut object = Map::new();
    let mut reader = Reader(bytes);
    while let Some((tag, wire)) = reader.field()? {
        let Some(field) = fields.and_then(|fields| fields.get(&tag)) else {
            continue; // an unknown field number: skipped, as proto2 decoders do
        };
        match field.ty {
            Type::MapStr | Type::MapBytes | Type::MapMsg(_) => {
                let Wire::Len(entry) = wire else {
                    return Err(bad(format!(
                        "{}: a map entry must be length-delimited",
                        field.json
                    )));
                };
                let (key, value) = map_entry(field.ty, entry, depth)?;
                let map = object
                    .entry(field.json.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(map), Some(value)) = (map, value) {
                    map.insert(key, value);
                }
            }
            _ if field.repeated => {
                let items = object
                    .entry(field.json.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = items else { continue };
                match (field.ty, wire) {
                    // Packed numbers (proto3 style): several values in one field.
                    (Type::Int | Type::Bool, Wire::Len(packed)) => {
                        let mut packed = Reader(packed);
                        while !packed.0.is_empty() {
                            items.push(scalar(field.ty, Wire::Varint(packed.varint()?))?);
                        }
                    }
                    (ty, wire) => items.extend(value(ty, wire, &field.json, depth)?),
                }
            }
            Type::Msg(name) if field.json.is_empty() => {
                let Wire::Len(bytes) = wire else {
                    return Err(bad(format!("{name}: a message must be length-delimited")));
                };
                if let Some(Value::Object(inline)) = decode_message(name, bytes, depth + 1)? {
                    object.extend(inline);
                }
            }
            ty => match value(ty, wire, &field.json, depth)? {
                Some(Value::String(s)) if s.is_empty() => {
                    object.remove(&field.json);
                }
                Some(v) => {
                    object.insert(field.json.clone(), v);
                }
                None => {
                    object.remove(&field.json);
                }
            },
        }
    }
    Ok(Some(Value::Object(object)))
}

fn value(ty: Type, wire: Wire<'_>, field: &str, depth: usize) -> Result<Option<Value>, ApiError> {
    match (ty, wire) {
        (Type::Msg(name), Wire::Len(bytes)) => decode_message(name, bytes, depth + 1),
        (Type::Msg(_), _) => Err(bad(format!("{field}: a message must be length-delimited"))),
        (ty, wire) => scalar(ty, wire).map(Some),
    }
}

fn scalar(ty: Type, wire: Wire<'_>) -> Result<Value, ApiError> {
    Ok(match (ty, wire) {
        (Type::Str, Wire::Len(v)) => Value::String(utf8(v)?.to_owned()),
        (Type::Bytes, Wire::Len(v)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(v))
        }
        (Type::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        // int32 and int64 alike: negative numbers are ten-byte two's complement varints.
        (Type::Int, Wire::Varint(v)) => Value::from(v as i64),
        (Type::Double, Wire::Fixed64(v)) => {
            serde_json::Number::from_f64(f64::from_bits(v)).map_or(Value::Null, Value::Number)
        }
        (ty, wire) => {
            return Err(bad(format!(
                "a {ty:?} field cannot have wire type {}",
                wire.kind()
            )));
        }
    })
}

fn map_entry(ty: Type, entry: &[u8], depth: usize) -> Result<(String, Option<Value>), ApiError> {
    let mut key = String::new();
    let mut value = match ty {
        Type::MapMsg(name) => decode_message(name, &[], depth + 1)?,
        Type::MapBytes => Some(Value::String(String::new())),
        _ => Some(Value::String(String::new())),
    };
    let mut reader = Reader(entry);
    while let Some((tag, wire)) = reader.field()? {
        match (tag, ty, wire) {
            (1, _, Wire::Len(k)) => key = utf8(k)?.to_owned(),
            (2, Type::MapMsg(name), Wire::Len(v)) => value = decode_message(name, v, depth + 1)?,
            (2, Type::MapBytes, wire) => value = Some(scalar(Type::Bytes, wire)?),
            (2, _, wire) => value = Some(scalar(Type::Str, wire)?),
            _ => {}
        }
    }
    Ok((key, value))
}

/// `metav1.Time`/`MicroTime` {1: seconds, 2: nanos} as RFC 3339; the zero time is no time.
fn time(bytes: &[u8], micro: bool) -> Result<Option<Value>, ApiError> {
    let (mut seconds, mut nanos) = (0i64, 0i64);
    let mut reader = Reader(bytes);
    while let Some((tag, wire)) = reader.field()? {
        match (tag, wire) {
            (1, Wire::Varint(v)) => seconds = v as i64,
            (2, Wire::Varint(v)) => nanos = i64::from(v as i32),
            _ => {}
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(None);
    }
    let at = jiff::Timestamp::new(seconds, nanos as i32)
        .map_err(|e| bad(format!("a time out of range: {e}")))?;
    let text = if micro {
        format!("{}", at.strftime("%Y-%m-%dT%H:%M:%S.%6fZ"))
    } else {
        format!("{}", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    };
    Ok(Some(Value::String(text)))
}

/// `intstr.IntOrString` {1: type (0 int, 1 string), 2: intVal, 3: strVal}.
fn int_or_string(bytes: &[u8]) -> Result<Option<Value>, ApiError> {
    let (mut is_string, mut int, mut string) = (false, 0i64, String::new());
    let mut reader = Reader(bytes);
    while let Some((tag, wire)) = reader.field()? {
        match (tag, wire) {
            (1, Wire::Varint(v)) => is_string = v == 1,
            (2, Wire::Varint(v)) => int = i64::from(v as i32),
            (3, Wire::Len(v)) => string = utf8(v)?.to_owned(),
            _ => {}
        }
    }
    Ok(Some(if is_string {
        Value::String(string)
    } else {
        Value::from(int)
    }))
}

fn string_field(bytes: &[u8], want: u32) -> Result<String, ApiError> {
    Ok(utf8(&bytes_field(bytes, want)?)?.to_owned())
}

fn bytes_field(bytes: &[u8], want: u32) -> Result<Vec<u8>, ApiError> {
    let mut reader = Reader(bytes);
    let mut out = Vec::new();
    while let Some((tag, wire)) = reader.field()? {
        if let (true, Wire::Len(v)) = (tag == want, wire) {
            out = v.to_vec();
        }
    }
    Ok(out)
}

fn utf8(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|_| bad("a string is not UTF-8"))
}

/// A field's value as the wire gives it.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    /// No served field is a 32-bit fixed type; such a field is skipped.
    Fixed32,
    Len(&'a [u8]),
}

impl Wire<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64(_) => "fixed64",
            Wire::Fixed32 => "fixed32",
            Wire::Len(_) => "length-delimited",
        }
    }
}

/// Reads protobuf fields from a buffer with prost's wire primitives; every read is
/// bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        decode_varint(&mut self.0).map_err(bad)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ApiError> {
        if n > self.0.len() {
            return Err(bad("a field is longer than the body"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// The next field number and value; `None` at the end.
    fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>, ApiError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let (tag, wire_type) = decode_key(&mut self.0).map_err(bad)?;
        let wire = match wire_type {
            WireType::Varint => Wire::Varint(self.varint()?),
            WireType::SixtyFourBit => Wire::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or_default(),
            )),
            WireType::LengthDelimited => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| bad("a length out of range"))?;
                Wire::Len(self.take(len)?)
            }
            WireType::ThirtyTwoBit => {
                self.take(4)?;
                Wire::Fixed32
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(bad("protobuf groups are not supported"));
            }
        };
        Ok(Some((tag, wire)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tiny protobuf writer for the tests.
    #[derive(Default)]
    struct W(Vec<u8>);

    impl W {
        fn varint(mut self, mut v: u64) -> W {
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(byte);
                    return self;
                }
                self.0.push(byte | 0x80);
            }
        }
        fn int(self, tag: u32, v: i64) -> W {
            self.varint(u64::from(tag) << 3).varint(v as u64)
        }
        fn bytes(self, tag: u32, v: &[u8]) -> W {
            let mut w = self
                .varint((u64::from(tag) << 3) | 2)
                .varint(v.len() as u64);
            w.0.extend_from_slice(v);
            w
        }
        fn str(self, tag: u32, v: &str) -> W {
            self.bytes(tag, v.as_bytes())
        }
        fn msg(self, tag: u32, v: W) -> W {
            self.bytes(tag, &v.0)
        }
    }

    fn envelope(api_version: &str, kind: &str, raw: W) -> Vec<u8> {
        let unknown = W::default()
            .msg(1, W::default().str(1, api_version).str(2, kind))
            .msg(2, raw)
            .str(3, "")
            .str(4, "");
        [MAGIC, &unknown.0].concat()
    }

    /// ObjectMeta as gogo-protobuf writes it: every non-pointer field, empty ones included.
    fn meta(name: &str) -> W {
        W::default()
            .str(1, name)
            .str(2, "")
            .str(3, "")
            .str(4, "")
            .str(5, "")
            .str(6, "")
            .int(7, 0)
            .msg(8, W::default())
    }

    #[test]
    fn every_message_field_finds_its_json_name_in_the_schemas() {
        let schemas = schemas_by_folded_name();
        let special = [TIME, MICRO_TIME, QUANTITY, INT_OR_STRING, FIELDS_V1];
        for message in fields::MESSAGES {
            if special.contains(&message.name) {
                continue;
            }
            let properties = properties_of(&schemas, message.name)
                .unwrap_or_else(|| panic!("no schema for {}", message.name));
            for field in message.fields {
                if let Type::Msg(embedded) = field.ty
                    && json_name(field.name, properties).is_none()
                {
                    let embedded = fields::MESSAGES
                        .iter()
                        .find(|m| m.name == embedded)
                        .unwrap();
                    for inner in embedded.fields {
                        assert!(
                            json_name(inner.name, properties).is_some(),
                            "{}.{} (embedded {}) has no schema property",
                            message.name,
                            inner.name,
                            embedded.name
                        );
                    }
                    continue;
                }
                assert!(
                    json_name(field.name, properties).is_some(),
                    "{}.{} has no schema property",
                    message.name,
                    field.name
                );
            }
        }
        let pod_status = &table()["io.k8s.api.core.v1.podstatus"];
        assert!(pod_status.values().any(|f| f.json == "podIPs"));
        let pod_spec = &table()["io.k8s.api.core.v1.podspec"];
        assert!(pod_spec.values().any(|f| f.json == "hostIPC"));
    }

    #[test]
    fn kubectl_create_configmap_body() {
        // Appendix B of the wire notes: `kubectl create configmap c1 --from-literal=a=b`.
        let raw = W::default()
            .msg(1, meta("c1"))
            .msg(2, W::default().str(1, "a").str(2, "b"));
        let value = decode(&envelope("v1", "ConfigMap", raw)).unwrap();
        assert_eq!(
            value,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c1", "generation": 0}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn deployment_with_nested_messages_quantities_and_int_or_string() {
        let container = W::default()
            .str(1, "nginx")
            .str(2, "nginx:1.27")
            .msg(6, W::default().str(1, "http").int(3, 80))
            .msg(
                8,
                W::default().msg(
                    2,
                    W::default()
                        .str(1, "cpu")
                        .msg(2, W::default().str(1, "100m")),
                ),
            );
        let spec = W::default()
            .int(1, 0)
            .msg(
                2,
                W::default().msg(1, W::default().str(1, "app").str(2, "web")),
            )
            .msg(
                3,
                W::default()
                    .msg(
                        1,
                        W::default().msg(11, W::default().str(1, "app").str(2, "web")),
                    )
                    .msg(2, W::default().msg(2, container)),
            )
            .msg(
                4,
                W::default().str(1, "RollingUpdate").msg(
                    2,
                    W::default()
                        .msg(1, W::default().int(1, 1).str(3, "25%"))
                        .msg(2, W::default().int(1, 0).int(2, 2)),
                ),
            );
        let value = decode(&envelope(
            "apps/v1",
            "Deployment",
            W::default().msg(1, meta("web")).msg(2, spec),
        ))
        .unwrap();
        let spec = &value["spec"];
        assert_eq!(spec["replicas"], 0, "a zero the client set is kept");
        assert_eq!(spec["selector"]["matchLabels"]["app"], "web");
        let c = &spec["template"]["spec"]["containers"][0];
        assert_eq!(c["name"], "nginx");
        assert_eq!(c["ports"][0]["containerPort"], 80);
        assert_eq!(c["ports"][0]["name"], "http");
        assert_eq!(c["resources"]["requests"]["cpu"], "100m");
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], "25%");
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], 2);
        assert!(value["metadata"].get("creationTimestamp").is_none());
    }

    #[test]
    fn secrets_carry_bytes_as_base64_and_times_as_rfc3339() {
        let raw = W::default()
            .msg(1, meta("s").msg(8, W::default().int(1, 1_700_000_000)))
            .msg(2, W::default().str(1, "k").bytes(2, b"\x00\xffv"))
            .str(3, "Opaque");
        let value = decode(&envelope("v1", "Secret", raw)).unwrap();
        assert_eq!(value["data"]["k"], "AP92");
        assert_eq!(value["type"], "Opaque");
        assert_eq!(
            value["metadata"]["creationTimestamp"],
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        for body in [
            b"junk".to_vec(),
            b"k8s\0\x0a\xff".to_vec(),
            envelope("v1", "Nope", W::default()),
            envelope("v1", "ConfigMap", W::default().bytes(1, b"\x0a\x05ab")),
            [MAGIC, b"\x0b"].concat(),
            [MAGIC, &[0xff; 12]].concat(),
        ] {
            let err = decode(&body).unwrap_err();
            assert_eq!(err.code(), 400, "{body:?}");
        }
    }
}
