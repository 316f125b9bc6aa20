//! Small helpers shared by the strategies: defensive access to JSON objects (malformed input
//! must never panic, so nothing here indexes with `[]`), `field.Error` constructors Kubernetes
//! has and `api_types` does not, and Go's `%#v` renderings of the values Kubernetes prints in
//! its messages.

use std::collections::BTreeMap;

use api_types::validation::{FieldError, FieldErrorType, go_quote};
use serde_json::{Map, Value};

pub(crate) type Obj = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Reading.

/// The value at `key`, treating `null` as absent (as Go's decoder does).
pub(crate) fn get<'a>(m: &'a Obj, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// The string at `key`, `""` when absent or not a string.
pub(crate) fn get_str<'a>(m: &'a Obj, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn get_obj<'a>(m: &'a Obj, key: &str) -> Option<&'a Obj> {
    m.get(key).and_then(Value::as_object)
}

/// The array at `key`, empty when absent or not an array.
pub(crate) fn get_arr<'a>(m: &'a Obj, key: &str) -> &'a [Value] {
    m.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(crate) fn get_i64(m: &Obj, key: &str) -> Option<i64> {
    m.get(key).and_then(Value::as_i64)
}

/// A string-to-string map (labels, annotations, selectors); non-string values are skipped (the
/// typed decode reports them).
pub(crate) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The strings of an array (non-strings skipped).
pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// The object at `key`, created when absent or `null`; `None` when `key` holds something else.
pub(crate) fn obj_mut_or_create<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    let slot = m.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The object at `key` if there is one (never created).
pub(crate) fn obj_mut<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// Calls `f` on every object element of the array at `key`.
pub(crate) fn each_obj_mut(m: &mut Obj, key: &str, mut f: impl FnMut(&mut Obj)) {
    if let Some(items) = m.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

/// Sets `key` when it is absent or `null` (a Go pointer field left nil).
pub(crate) fn set_default(m: &mut Obj, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// Sets a string `key` when it is absent, `null` or `""` (a Go string field left empty). A
/// value of another type is left for validation to report.
pub(crate) fn set_default_str(m: &mut Obj, key: &str, value: &str) {
    let empty = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if empty {
        m.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// Sets an integer `key` when it is absent, `null` or 0 (a Go integer field left zero).
pub(crate) fn set_default_int(m: &mut Obj, key: &str, value: i64) {
    let zero = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(v) => v.as_i64() == Some(0),
    };
    if zero {
        m.insert(key.to_string(), Value::from(value));
    }
}

/// Equality as Kubernetes' `Semantic.DeepEqual` sees two decoded objects: an absent field, a
/// `null` and an empty list are the same thing (Go's decoder and `omitempty` make them so), and
/// numbers compare by value.
pub(crate) fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    fn vacant(v: Option<&Value>) -> bool {
        match v {
            None | Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        }
    }
    if vacant(a) && vacant(b) {
        return true;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => x
            .keys()
            .chain(y.keys())
            .all(|k| semantic_eq(x.get(k), y.get(k))),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantic_eq(Some(p), Some(q)))
        }
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Field errors (`field.Invalid`, `field.NotSupported`, … as Kubernetes builds them).

pub(crate) type Errs = Vec<FieldError>;

/// `field.Invalid` for a string value (printed quoted).
pub(crate) fn invalid(
    field: impl Into<String>,
    value: &str,
    detail: impl Into<String>,
) -> FieldError {
    FieldError::invalid(field, value, detail)
}

/// `field.Invalid` for a value already rendered as Go prints it (`-1`, `map[string]string{…}`).
pub(crate) fn invalid_raw(
    field: impl Into<String>,
    rendered: impl Into<String>,
    detail: impl Into<String>,
) -> FieldError {
    FieldError {
        kind: FieldErrorType::Invalid,
        field: field.into(),
        bad_value: Some(rendered.into()),
        detail: detail.into(),
    }
}

pub(crate) fn invalid_int(
    field: impl Into<String>,
    value: i64,
    detail: impl Into<String>,
) -> FieldError {
    invalid_raw(field, value.to_string(), detail)
}

pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError::required(field, detail)
}

pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError {
        kind: FieldErrorType::Forbidden,
        field: field.into(),
        bad_value: None,
        detail: detail.into(),
    }
}

/// `field.Duplicate` for a value already rendered.
pub(crate) fn duplicate(field: impl Into<String>, rendered: impl Into<String>) -> FieldError {
    FieldError {
        kind: FieldErrorType::Duplicate,
        field: field.into(),
        bad_value: Some(rendered.into()),
        detail: String::new(),
    }
}

pub(crate) fn not_found(field: impl Into<String>, value: &str) -> FieldError {
    FieldError {
        kind: FieldErrorType::NotFound,
        field: field.into(),
        bad_value: Some(go_quote(value)),
        detail: String::new(),
    }
}

/// `field.NotSupported`: `Unsupported value: "X": supported values: "A", "B"`.
pub(crate) fn not_supported(
    field: impl Into<String>,
    value: &str,
    supported: &[&str],
) -> FieldError {
    let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    FieldError {
        kind: FieldErrorType::NotSupported,
        field: field.into(),
        bad_value: Some(go_quote(value)),
        detail: format!("supported values: {}", quoted.join(", ")),
    }
}

/// `ValidateNonnegativeField`.
pub(crate) fn nonnegative(errs: &mut Errs, field: &str, value: Option<i64>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errs.push(invalid_int(field, v, "must be greater than or equal to 0"));
    }
}

/// `ValidateImmutableField` for a value already rendered.
pub(crate) fn immutable(field: impl Into<String>, rendered_new: impl Into<String>) -> FieldError {
    invalid_raw(field, rendered_new, "field is immutable")
}

// ---------------------------------------------------------------------------------------------
// Go renderings (`%#v`) of values Kubernetes puts into messages.

/// `map[string]string{"a":"b", "c":"d"}`; `map[string]string(nil)` for an absent map.
pub(crate) fn go_string_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v.as_str().unwrap_or(""))))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// `[]string{"a", "b"}`; `[]string(nil)` for an absent list.
pub(crate) fn go_string_slice(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".to_string(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|s| go_quote(s.as_str().unwrap_or("")))
                .collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// A `metav1.LabelSelector` as `%#v` prints it (the `v1` package name included).
pub(crate) fn go_label_selector(v: Option<&Value>) -> String {
    let empty = Obj::new();
    let sel = v.and_then(Value::as_object).unwrap_or(&empty);
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|e| {
                    let e = e.as_object().unwrap_or(&empty);
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(get_str(e, "key")),
                        go_quote(get_str(e, "operator")),
                        go_string_slice(e.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_string_map(sel.get("matchLabels")),
        exprs
    )
}

/// An `intstr.IntOrString` as `%#v` prints it.
pub(crate) fn go_int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => {
            format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                go_quote(s)
            )
        }
        Some(Value::Number(n)) => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            n.as_i64().unwrap_or(0)
        ),
        _ => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renderings() {
        assert_eq!(
            go_string_map(Some(&json!({"b": "2", "a": "1"}))),
            r#"map[string]string{"a":"1", "b":"2"}"#
        );
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        assert_eq!(go_string_map(Some(&json!({}))), "map[string]string{}");
        assert_eq!(
            go_label_selector(Some(&json!({"matchLabels": {"app": "web"}}))),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            go_int_or_string(Some(&json!(0))),
            r#"intstr.IntOrString{Type:0, IntVal:0, StrVal:""}"#
        );
        assert_eq!(
            go_int_or_string(Some(&json!("x%"))),
            r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"x%"}"#
        );
    }

    #[test]
    fn semantic_equality() {
        assert!(semantic_eq(
            Some(&json!({"a": [], "b": null})),
            Some(&json!({}))
        ));
        assert!(semantic_eq(
            Some(&json!({"n": 1})),
            Some(&json!({"n": 1.0}))
        ));
        assert!(!semantic_eq(Some(&json!({"a": [1]})), Some(&json!({}))));
        assert!(!semantic_eq(Some(&json!({"a": {}})), Some(&json!({}))));
    }

    #[test]
    fn defaults_never_overwrite_other_types() {
        let mut m = json!({"a": 5, "b": "", "c": null})
            .as_object()
            .cloned()
            .unwrap();
        set_default_str(&mut m, "a", "x");
        set_default_str(&mut m, "b", "x");
        set_default_str(&mut m, "c", "x");
        assert_eq!(Value::Object(m), json!({"a": 5, "b": "x", "c": "x"}));
        let mut m = json!({"spec": "oops"}).as_object().cloned().unwrap();
        assert!(obj_mut_or_create(&mut m, "spec").is_none());
    }
}
