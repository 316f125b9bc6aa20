//! OpenAPI v2 (`/openapi/v2`): kubectl 1.27 and 1.28 fetch it — as a gnostic `openapi.v2.Document`
//! protobuf (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) — before they
//! validate or apply anything, and read the patch strategies of client-side apply from it.
//!
//! One source: the document is the v3 documents of every served group-version
//! ([`crate::openapi::group_version_document`]) restated in Swagger 2.0 terms — references under
//! `#/definitions/`, request bodies as `in: body` parameters, response schemas without media
//! types — then encoded field by field as gnostic's `OpenAPIv2.proto` numbers them. Vendor
//! extensions (`x-kubernetes-*`) travel as gnostic's `NamedAny` with their value as YAML text
//! (JSON, which YAML reads). A client that asks for anything else gets the JSON.

use std::sync::OnceLock;

use api_types::json::At;
use api_types::registry;
use prost::encoding::{WireType, encode_key, encode_varint};
use serde_json::{Map, Value, json};

/// The `Content-Type` of the protobuf answer, as kube-openapi writes it: kubectl asks for
/// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, but Go's media-type parser
/// refuses the `@` in a response.
pub const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The v2 document, in both encodings, built once.
pub struct Document {
    pub json: Vec<u8>,
    pub protobuf: Vec<u8>,
}

pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let swagger = swagger();
        let mut w = Writer::default();
        encode_document(&mut w, &swagger);
        Document {
            json: serde_json::to_vec(&swagger).unwrap_or_default(),
            protobuf: w.0,
        }
    })
}

/// The Swagger 2.0 document, from the v3 ones.
pub fn swagger() -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for gv in registry::group_versions() {
        let v3 = crate::openapi::group_version_document(gv.group, gv.version);
        // References move from components to definitions; nothing else in the text says this.
        let text = serde_json::to_string(&v3)
            .unwrap_or_default()
            .replace("#/components/schemas/", "#/definitions/");
        let v3: Value = serde_json::from_str(&text).unwrap_or_default();
        if let Some(Value::Object(v3_paths)) = v3.get("paths") {
            for (path, item) in v3_paths {
                paths.insert(path.clone(), path_item(item));
            }
        }
        if let Some(Value::Object(schemas)) = v3.at("/components/schemas") {
            for (name, schema) in schemas {
                definitions.insert(name.clone(), schema.clone());
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "definitions": definitions,
    })
}

fn path_item(item: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(item) = item {
        for (key, value) in item {
            let converted = match key.as_str() {
                "parameters" => parameters(value),
                _ if key.starts_with("x-") => value.clone(),
                _ => operation(value),
            };
            out.insert(key.clone(), converted);
        }
    }
    Value::Object(out)
}

fn parameters(list: &Value) -> Value {
    let converted = list
        .as_array()
        .map(|params| params.iter().map(parameter).collect())
        .unwrap_or_default();
    Value::Array(converted)
}

/// A v3 parameter (`schema: {type}`) as a v2 one (`type` beside `name`).
fn parameter(param: &Value) -> Value {
    let mut out = Map::new();
    for key in ["name", "in", "description", "required"] {
        if let Some(value) = param.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(Value::Object(schema)) = param.get("schema") {
        for (key, value) in schema {
            out.insert(key.clone(), value.clone());
        }
    }
    Value::Object(out)
}

fn operation(op: &Value) -> Value {
    let Value::Object(op) = op else {
        return op.clone();
    };
    let mut out = Map::new();
    let mut params = op
        .get("parameters")
        .map(parameters)
        .and_then(|p| p.as_array().cloned())
        .unwrap_or_default();
    if let Some(Value::Object(content)) = op.get("requestBody").and_then(|b| b.get("content")) {
        let schema = content.values().find_map(|c| c.get("schema")).cloned();
        params.push(json!({"name": "body", "in": "body", "required": true, "schema": schema}));
        out.insert(
            "consumes".into(),
            Value::Array(content.keys().map(|k| json!(k)).collect()),
        );
    }
    let mut produces = Vec::new();
    let mut responses = Map::new();
    if let Some(Value::Object(v3)) = op.get("responses") {
        for (code, response) in v3 {
            let mut converted = Map::new();
            if let Some(description) = response.get("description") {
                converted.insert("description".into(), description.clone());
            }
            if let Some(Value::Object(content)) = response.get("content") {
                for media in content.keys() {
                    if !produces.contains(media) {
                        produces.push(media.clone());
                    }
                }
                if let Some(schema) = content.values().find_map(|c| c.get("schema")) {
                    converted.insert("schema".into(), schema.clone());
                }
            }
            responses.insert(code.clone(), Value::Object(converted));
        }
    }
    for (key, value) in op {
        if !matches!(key.as_str(), "parameters" | "requestBody" | "responses") {
            out.insert(key.clone(), value.clone());
        }
    }
    out.insert("parameters".into(), Value::Array(params));
    out.insert("responses".into(), Value::Object(responses));
    out.insert(
        "produces".into(),
        Value::Array(produces.into_iter().map(Value::String).collect()),
    );
    Value::Object(out)
}

/// A protobuf writer over prost's encoding primitives.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn string(&mut self, tag: u32, value: &str) {
        if value.is_empty() {
            return;
        }
        encode_key(tag, WireType::LengthDelimited, &mut self.0);
        encode_varint(value.len() as u64, &mut self.0);
        self.0.extend_from_slice(value.as_bytes());
    }

    fn boolean(&mut self, tag: u32, value: bool) {
        if value {
            encode_key(tag, WireType::Varint, &mut self.0);
            encode_varint(1, &mut self.0);
        }
    }

    fn int64(&mut self, tag: u32, value: i64) {
        if value != 0 {
            encode_key(tag, WireType::Varint, &mut self.0);
            encode_varint(value as u64, &mut self.0);
        }
    }

    fn double(&mut self, tag: u32, value: f64) {
        if value != 0.0 {
            encode_key(tag, WireType::SixtyFourBit, &mut self.0);
            self.0.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// A nested message (always written: presence selects a `oneof` branch).
    fn message(&mut self, tag: u32, body: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        body(&mut inner);
        encode_key(tag, WireType::LengthDelimited, &mut self.0);
        encode_varint(inner.0.len() as u64, &mut self.0);
        self.0.extend_from_slice(&inner.0);
    }

    fn strings(&mut self, tag: u32, values: Option<&Value>) {
        for value in values.and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = value.as_str() {
                self.string(tag, s);
            }
        }
    }

    /// gnostic `Any`: the value as YAML text.
    fn any(&mut self, tag: u32, value: &Value) {
        // JSON is YAML; a string stays quoted so it reads back as a string.
        let yaml = serde_json::to_string(value).unwrap_or_default();
        self.message(tag, |w| w.string(2, &yaml));
    }

    /// The `x-` keys of `object` as gnostic `NamedAny`s.
    fn extensions(&mut self, tag: u32, object: &Map<String, Value>) {
        for (key, value) in object.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.message(tag, |w| {
                w.string(1, key);
                w.any(2, value);
            });
        }
    }
}

fn str_of<'v>(object: &'v Map<String, Value>, key: &str) -> &'v str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn bool_of(object: &Map<String, Value>, key: &str) -> bool {
    object.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn encode_document(w: &mut Writer, doc: &Value) {
    let Value::Object(doc) = doc else { return };
    w.string(1, str_of(doc, "swagger"));
    if let Some(Value::Object(info)) = doc.get("info") {
        w.message(2, |w| {
            w.string(1, str_of(info, "title"));
            w.string(2, str_of(info, "version"));
        });
    }
    if let Some(Value::Object(paths)) = doc.get("paths") {
        w.message(8, |w| {
            for (path, item) in paths {
                w.message(2, |w| {
                    w.string(1, path);
                    w.message(2, |w| encode_path_item(w, item));
                });
            }
        });
    }
    if let Some(Value::Object(definitions)) = doc.get("definitions") {
        w.message(9, |w| {
            for (name, schema) in definitions {
                w.message(1, |w| {
                    w.string(1, name);
                    w.message(2, |w| encode_schema(w, schema));
                });
            }
        });
    }
}

fn encode_path_item(w: &mut Writer, item: &Value) {
    let Value::Object(item) = item else { return };
    for (verb, tag) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if let Some(op) = item.get(verb) {
            w.message(tag, |w| encode_operation(w, op));
        }
    }
    for param in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(9, |w| encode_parameter(w, param));
    }
    w.extensions(10, item);
}

fn encode_operation(w: &mut Writer, op: &Value) {
    let Value::Object(op) = op else { return };
    w.strings(1, op.get("tags"));
    w.string(2, str_of(op, "summary"));
    w.string(3, str_of(op, "description"));
    w.string(5, str_of(op, "operationId"));
    w.strings(6, op.get("produces"));
    w.strings(7, op.get("consumes"));
    for param in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(8, |w| encode_parameter(w, param));
    }
    if let Some(Value::Object(responses)) = op.get("responses") {
        w.message(9, |w| {
            for (code, response) in responses {
                w.message(1, |w| {
                    w.string(1, code);
                    w.message(2, |w| {
                        w.message(1, |w| {
                            let Value::Object(response) = response else {
                                return;
                            };
                            w.string(1, str_of(response, "description"));
                            if let Some(schema) = response.get("schema") {
                                w.message(2, |w| w.message(1, |w| encode_schema(w, schema)));
                            }
                        })
                    });
                });
            }
        });
    }
    w.strings(10, op.get("schemes"));
    w.boolean(11, bool_of(op, "deprecated"));
    w.extensions(13, op);
}

/// `ParametersItem` → `Parameter` → body or non-body (query, path).
fn encode_parameter(w: &mut Writer, param: &Value) {
    let Value::Object(param) = param else { return };
    w.message(1, |w| match str_of(param, "in") {
        "body" => w.message(1, |w| {
            w.string(1, str_of(param, "description"));
            w.string(2, str_of(param, "name"));
            w.string(3, "body");
            w.boolean(4, bool_of(param, "required"));
            if let Some(schema) = param.get("schema") {
                w.message(5, |w| encode_schema(w, schema));
            }
        }),
        location => w.message(2, |w| {
            // QueryParameterSubSchema is 3, PathParameterSubSchema 4; from `type` on, the
            // path message numbers its fields one lower (it has no allow_empty_value).
            let (branch, shift) = if location == "path" { (4, 1) } else { (3, 0) };
            w.message(branch, |w| {
                w.boolean(1, bool_of(param, "required"));
                w.string(2, location);
                w.string(3, str_of(param, "description"));
                w.string(4, str_of(param, "name"));
                w.string(6 - shift, str_of(param, "type"));
                w.string(7 - shift, str_of(param, "format"));
                w.boolean(20 - shift, bool_of(param, "uniqueItems"));
            });
        }),
    });
}

fn encode_schema(w: &mut Writer, schema: &Value) {
    let Value::Object(schema) = schema else {
        return;
    };
    w.string(1, str_of(schema, "$ref"));
    w.string(2, str_of(schema, "format"));
    w.string(3, str_of(schema, "title"));
    w.string(4, str_of(schema, "description"));
    if let Some(default) = schema.get("default") {
        w.any(5, default);
    }
    let number = |key: &str| schema.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let integer = |key: &str| schema.get(key).and_then(Value::as_i64).unwrap_or(0);
    w.double(6, number("multipleOf"));
    w.double(7, number("maximum"));
    w.boolean(8, bool_of(schema, "exclusiveMaximum"));
    w.double(9, number("minimum"));
    w.boolean(10, bool_of(schema, "exclusiveMinimum"));
    w.int64(11, integer("maxLength"));
    w.int64(12, integer("minLength"));
    w.string(13, str_of(schema, "pattern"));
    w.int64(14, integer("maxItems"));
    w.int64(15, integer("minItems"));
    w.boolean(16, bool_of(schema, "uniqueItems"));
    w.int64(17, integer("maxProperties"));
    w.int64(18, integer("minProperties"));
    w.strings(19, schema.get("required"));
    for value in schema
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.any(20, value);
    }
    match schema.get("additionalProperties") {
        Some(Value::Bool(allowed)) => w.message(21, |w| w.boolean(2, *allowed)),
        Some(additional @ Value::Object(_)) => {
            w.message(21, |w| w.message(1, |w| encode_schema(w, additional)));
        }
        _ => {}
    }
    match schema.get("type") {
        Some(Value::String(t)) => w.message(22, |w| w.string(1, t)),
        Some(types @ Value::Array(_)) => w.message(22, |w| w.strings(1, Some(types))),
        _ => {}
    }
    match schema.get("items") {
        Some(Value::Array(items)) => w.message(23, |w| {
            for item in items {
                w.message(1, |w| encode_schema(w, item));
            }
        }),
        Some(item @ Value::Object(_)) => {
            w.message(23, |w| w.message(1, |w| encode_schema(w, item)))
        }
        _ => {}
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(24, |w| encode_schema(w, part));
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        w.message(25, |w| {
            for (name, property) in properties {
                w.message(1, |w| {
                    w.string(1, name);
                    w.message(2, |w| encode_schema(w, property));
                });
            }
        });
    }
    w.string(26, str_of(schema, "discriminator"));
    w.boolean(27, bool_of(schema, "readOnly"));
    if let Some(example) = schema.get("example") {
        w.any(30, example);
    }
    w.extensions(31, schema);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swagger_has_every_kind_with_its_patch_operation_and_definitions() {
        let doc = swagger();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        let params = patch["parameters"].as_array().unwrap();
        assert!(params.iter().any(|p| p["name"] == "fieldValidation"
            && p["in"] == "query"
            && p["type"] == "string"));
        assert!(params.iter().any(|p| p["in"] == "body"
            && p["schema"]["$ref"] == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"));
        let deployment = &doc["definitions"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let pc = &doc["definitions"]["io.k8s.api.scheduling.v1.PriorityClass"];
        assert_eq!(
            pc["x-kubernetes-group-version-kind"][0]["kind"],
            "PriorityClass"
        );
        assert!(
            doc["paths"]["/apis/scheduling.k8s.io/v1/priorityclasses/{name}"]["patch"].is_object()
        );
        let containers =
            &doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert!(
            !serde_json::to_string(&doc)
                .unwrap()
                .contains("#/components/")
        );
    }

    #[test]
    fn protobuf_encoding_is_well_formed() {
        let doc = document();
        assert!(doc.protobuf.len() > 100_000, "{}", doc.protobuf.len());
        // Field 1 (swagger) comes first: key 0x0a, length 3, "2.0".
        assert_eq!(&doc.protobuf[..5], b"\x0a\x032.0");
        // Walk the top level: every field parses and the lengths add up.
        let mut buf = &doc.protobuf[..];
        let mut fields = Vec::new();
        while !buf.is_empty() {
            let (tag, wire) = prost::encoding::decode_key(&mut buf).unwrap();
            assert_eq!(wire, WireType::LengthDelimited);
            let len = prost::encoding::decode_varint(&mut buf).unwrap() as usize;
            buf = &buf[len..];
            fields.push(tag);
        }
        assert_eq!(fields, [1, 2, 8, 9]);
    }
}
