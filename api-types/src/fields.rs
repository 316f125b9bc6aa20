//! Field selectors: the `fieldSelector` query string, parsed as `k8s.io/apimachinery/pkg/fields`
//! parses it, checked against each resource's supported field labels, and matched against the
//! field values Kubernetes computes for each object.
//!
//! A selector is comma-separated terms `field=value`, `field==value` or `field!=value`; in values,
//! `\`, `,` and `=` are escaped with a backslash. Only a few fields per resource can be selected
//! on ([`supported_field_labels`]); a field an object lacks counts as the empty string, so
//! `spec.nodeName=` selects unscheduled pods.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::json::At;

/// Why a field selector was rejected. The message is Kubernetes' own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Invalid { selector: String, term: String },
    /// A backslash followed by something other than `\`, `,` or `=`, or a trailing backslash.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// A bare `,` or `=` in a value. Kubernetes prints the character's code point.
    #[error("invalid field selector: unescaped character in value: {}", *.0 as u32)]
    UnescapedRune(char),
    /// A field the resource cannot be selected on.
    #[error("field label not supported: {0}")]
    UnsupportedLabel(String),
}

/// The operator of one term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `=` or `==` (the same thing; printed as `=`).
    Equals,
    /// `!=`
    NotEquals,
}

/// One term: a field, an operator and an (unescaped) value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    /// Whether the object's value of the field (missing = `""`) satisfies the term.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        match self.operator {
            FieldOperator::Equals => value == self.value,
            FieldOperator::NotEquals => value != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{}{}", self.field, op, escape_value(&self.value))
    }
}

/// A field selector: terms that must all hold. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// `fields.ParseSelector`. Terms are sorted by their text, as Kubernetes sorts them; empty
    /// terms (`a=b,,c=d`) are skipped; spaces are not trimmed (they belong to the field or value).
    pub fn parse(selector: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((field, op, raw_value)) = split_term(term) else {
                return Err(FieldSelectorError::Invalid {
                    selector: selector.to_string(),
                    term: term.to_string(),
                });
            };
            let operator = if op == "!=" {
                FieldOperator::NotEquals
            } else {
                FieldOperator::Equals
            };
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_value(raw_value)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// A selector from terms, kept in the given order.
    pub fn from_requirements(requirements: Vec<FieldRequirement>) -> FieldSelector {
        FieldSelector { requirements }
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Check every field against the resource's supported labels and convert the legacy ones
    /// (pods' `spec.host` is `spec.nodeName`), as the apiserver does before listing. `resource`
    /// is the plural for the core group (`pods`) or plural and group (`events.events.k8s.io`).
    pub fn validate_for(&self, resource: &str) -> Result<FieldSelector, FieldSelectorError> {
        let requirements = self
            .requirements
            .iter()
            .map(|r| {
                let field = convert_field_label(resource, &r.field)?;
                Ok(FieldRequirement {
                    field: field.to_string(),
                    operator: r.operator,
                    value: r.value.clone(),
                })
            })
            .collect::<Result<Vec<_>, FieldSelectorError>>()?;
        Ok(FieldSelector { requirements })
    }

    /// Whether an object with these field values matches (missing fields count as `""`).
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.matches_lookup(|field| fields.get(field).map(String::as_str))
    }

    /// Like [`FieldSelector::matches`] with the field values borrowed from a function.
    pub fn matches_lookup<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches_value(get(&r.field)))
    }

    /// Like [`FieldSelector::matches`] with the field values given by a function.
    pub fn matches_with(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches_value(get(&r.field).as_deref()))
    }

    /// `RequiresExactMatch`: the value `field` must equal for this selector to match, if the
    /// selector pins one (for `metadata.name=x`, a single get; for `spec.nodeName=n`, an index).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical form: terms joined by `,`, `==` printed as `=`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = FieldSelectorError;

    fn from_str(s: &str) -> Result<FieldSelector, FieldSelectorError> {
        FieldSelector::parse(s)
    }
}

/// `splitTerms`: split at commas that are not escaped; the escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// `splitTerm`: the first operator in the term splits it (fields cannot be escaped); `!=` and
/// `==` are tried before `=` at each position.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

/// `fields.EscapeValue`: escape `\`, `,` and `=`.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `fields.UnescapeValue`.
pub fn unescape_value(value: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(value.len());
    let mut in_slash = false;
    for c in value.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(FieldSelectorError::InvalidEscapeSequence(format!("\\{c}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(FieldSelectorError::UnescapedRune(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(FieldSelectorError::InvalidEscapeSequence("\\".to_string()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Per-resource field labels.

/// The fields of an `ObjectReference` (an event's `involvedObject` / `regarding`).
pub const OBJECT_REFERENCE_FIELDS: &[&str] = &[
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
];

const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const NODE_FIELDS: &[&str] = &["metadata.name", "spec.unschedulable"];
const NAMESPACE_FIELDS: &[&str] = &["metadata.name", "status.phase"];
const SERVICE_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.clusterIP",
    "spec.type",
];
const SECRET_FIELDS: &[&str] = &["metadata.name", "metadata.namespace", "type"];
const REPLICASET_FIELDS: &[&str] = &["metadata.name", "metadata.namespace", "status.replicas"];
const EVENT_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
const EVENTS_V1_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "source",
    "type",
];
const DEFAULT_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The field labels a resource can be selected on, as its field label conversion function in
/// Kubernetes accepts them. `resource` is the plural for the core group, plural and group
/// otherwise; resources without their own list accept `metadata.name` and `metadata.namespace`.
pub fn supported_field_labels(resource: &str) -> &'static [&'static str] {
    match resource {
        "pods" => POD_FIELDS,
        "nodes" => NODE_FIELDS,
        "namespaces" => NAMESPACE_FIELDS,
        "services" => SERVICE_FIELDS,
        "secrets" => SECRET_FIELDS,
        "events" => EVENT_FIELDS,
        "events.events.k8s.io" => EVENTS_V1_FIELDS,
        "replicasets.apps" => REPLICASET_FIELDS,
        _ => DEFAULT_FIELDS,
    }
}

/// The field label conversion: the label as the object's field set names it, or
/// `field label not supported: <label>`.
pub fn convert_field_label<'a>(
    resource: &str,
    label: &'a str,
) -> Result<&'a str, FieldSelectorError> {
    if resource == "pods" && label == "spec.host" {
        // Old v1 clients sent spec.host.
        return Ok("spec.nodeName");
    }
    if supported_field_labels(resource).contains(&label) {
        Ok(label)
    } else {
        Err(FieldSelectorError::UnsupportedLabel(label.to_string()))
    }
}

/// The field values of an object, as Kubernetes' `GetAttrs` computes them for the resource:
/// `metadata.name`, `metadata.namespace` (namespaced resources only) and the resource's own
/// fields. Fields the object lacks get Kubernetes' zero values (`""`, `"false"`, `"0"`).
///
/// Events are stored once for both groups; the core fields are read from either the core shape
/// (`involvedObject`, `source.component`, `reportingComponent`) or the `events.k8s.io` shape
/// (`regarding`, `deprecatedSource.component`, `reportingController`), and named as the
/// resource's group names them.
pub fn object_fields(resource: &str, obj: &Value) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        fields.insert(k.to_string(), v);
    };
    put("metadata.name", string_at(obj, &["metadata", "name"]));
    // Cluster-scoped objects have no namespace field (`DefaultClusterScopedAttr`); resources
    // the registry does not know are taken as namespaced.
    let cluster_scoped =
        crate::registry::by_qualified_resource(resource).is_some_and(|r| !r.namespaced);
    if !cluster_scoped {
        put(
            "metadata.namespace",
            string_at(obj, &["metadata", "namespace"]),
        );
    }
    match resource {
        "pods" => {
            put("spec.nodeName", string_at(obj, &["spec", "nodeName"]));
            put(
                "spec.restartPolicy",
                string_at(obj, &["spec", "restartPolicy"]),
            );
            put(
                "spec.schedulerName",
                string_at(obj, &["spec", "schedulerName"]),
            );
            put(
                "spec.serviceAccountName",
                string_at(obj, &["spec", "serviceAccountName"]),
            );
            put("spec.hostNetwork", bool_at(obj, &["spec", "hostNetwork"]));
            put("status.phase", string_at(obj, &["status", "phase"]));
            // Kubernetes reads the first of status.podIPs; a v1 object may carry only podIP.
            let pod_ip = obj
                .at("/status/podIPs/0/ip")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| string_at(obj, &["status", "podIP"]));
            put("status.podIP", pod_ip);
            put(
                "status.nominatedNodeName",
                string_at(obj, &["status", "nominatedNodeName"]),
            );
        }
        "nodes" => put(
            "spec.unschedulable",
            bool_at(obj, &["spec", "unschedulable"]),
        ),
        "namespaces" => put("status.phase", string_at(obj, &["status", "phase"])),
        "services" => {
            put("spec.clusterIP", string_at(obj, &["spec", "clusterIP"]));
            put("spec.type", string_at(obj, &["spec", "type"]));
        }
        "secrets" => put("type", string_at(obj, &["type"])),
        "replicasets.apps" => {
            let replicas = obj
                .at("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            put("status.replicas", replicas.to_string());
        }
        "events" | "events.events.k8s.io" => {
            let core = resource == "events";
            let reference = obj.get("involvedObject").or_else(|| obj.get("regarding"));
            let prefix = if core { "involvedObject" } else { "regarding" };
            for part in OBJECT_REFERENCE_FIELDS {
                let v = reference
                    .and_then(|r| r.get(part))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                put(&format!("{prefix}.{part}"), v.to_string());
            }
            put("reason", string_at(obj, &["reason"]));
            put("type", string_at(obj, &["type"]));
            let reporting = first_string(obj, &[&["reportingComponent"], &["reportingController"]]);
            put(
                if core {
                    "reportingComponent"
                } else {
                    "reportingController"
                },
                reporting.clone(),
            );
            let component = first_string(
                obj,
                &[&["source", "component"], &["deprecatedSource", "component"]],
            );
            put(
                "source",
                if component.is_empty() {
                    reporting
                } else {
                    component
                },
            );
        }
        _ => {}
    }
    fields
}

fn string_at(obj: &Value, path: &[&str]) -> String {
    let mut v = obj;
    for key in path {
        match v.get(key) {
            Some(next) => v = next,
            None => return String::new(),
        }
    }
    v.as_str().unwrap_or("").to_string()
}

fn first_string(obj: &Value, paths: &[&[&str]]) -> String {
    paths
        .iter()
        .map(|p| string_at(obj, p))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

fn bool_at(obj: &Value, path: &[&str]) -> String {
    let mut v = obj;
    for key in path {
        match v.get(key) {
            Some(next) => v = next,
            None => return "false".to_string(),
        }
    }
    v.as_bool().unwrap_or(false).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let cases = [
            ("", ""),
            ("metadata.name=x", "metadata.name=x"),
            ("metadata.name==x", "metadata.name=x"),
            ("metadata.namespace!=y", "metadata.namespace!=y"),
            ("spec.nodeName=", "spec.nodeName="),
            (
                "status.phase=Running,metadata.name=a",
                "metadata.name=a,status.phase=Running",
            ),
            ("a=b,,c=d", "a=b,c=d"),
            (",", ""),
            ("a=x\\,y", "a=x\\,y"),
            ("a=x\\=y", "a=x\\=y"),
            ("a=x\\\\y", "a=x\\\\y"),
            ("a=!b", "a=!b"),
            ("a= b", "a= b"),
            ("é=ü", "é=ü"),
        ];
        for (input, want) in cases {
            let s = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(s.to_string(), want, "{input:?}");
            assert_eq!(
                FieldSelector::parse(&s.to_string()).unwrap(),
                s,
                "round trip {input:?}"
            );
        }
        let s = FieldSelector::parse("a=x\\,y,b!=\\=").unwrap();
        assert_eq!(
            s.requirements(),
            [
                FieldRequirement {
                    field: "a".into(),
                    operator: FieldOperator::Equals,
                    value: "x,y".into()
                },
                FieldRequirement {
                    field: "b".into(),
                    operator: FieldOperator::NotEquals,
                    value: "=".into()
                },
            ]
        );
    }

    #[test]
    fn rejects_malformed_selectors() {
        let cases = [
            (
                "metadata.name",
                "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
            ),
            ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            ("a==b,c", "invalid selector: 'a==b,c'; can't understand 'c'"),
            (
                "a=x\\y",
                "invalid field selector: invalid escape sequence: \\y",
            ),
            (
                "a=x\\",
                "invalid field selector: invalid escape sequence: \\",
            ),
            (
                "a=x\\é",
                "invalid field selector: invalid escape sequence: \\é",
            ),
            (
                "a!==b",
                "invalid field selector: unescaped character in value: 61",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                FieldSelector::parse(input).unwrap_err().to_string(),
                want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn validates_labels_per_resource() {
        let cases: Vec<(&str, &str, Result<&str, &str>)> = vec![
            (
                "pods",
                "metadata.name=a,spec.nodeName=n",
                Ok("metadata.name=a,spec.nodeName=n"),
            ),
            ("pods", "spec.host=n", Ok("spec.nodeName=n")),
            ("pods", "status.podIPs=1.2.3.4", Ok("status.podIPs=1.2.3.4")),
            (
                "pods",
                "spec.containers=x",
                Err("field label not supported: spec.containers"),
            ),
            (
                "pods",
                "metadata.name =a",
                Err("field label not supported: metadata.name "),
            ),
            (
                "nodes",
                "spec.unschedulable=true",
                Ok("spec.unschedulable=true"),
            ),
            (
                "nodes",
                "metadata.namespace=x",
                Err("field label not supported: metadata.namespace"),
            ),
            (
                "namespaces",
                "status.phase=Active",
                Ok("status.phase=Active"),
            ),
            (
                "namespaces",
                "metadata.namespace=x",
                Err("field label not supported: metadata.namespace"),
            ),
            ("services", "spec.clusterIP=None", Ok("spec.clusterIP=None")),
            ("secrets", "type=Opaque", Ok("type=Opaque")),
            (
                "configmaps",
                "type=Opaque",
                Err("field label not supported: type"),
            ),
            (
                "configmaps",
                "metadata.namespace=a",
                Ok("metadata.namespace=a"),
            ),
            (
                "deployments.apps",
                "status.replicas=1",
                Err("field label not supported: status.replicas"),
            ),
            (
                "replicasets.apps",
                "status.replicas=1",
                Ok("status.replicas=1"),
            ),
            (
                "events",
                "involvedObject.uid=u,involvedObject.name=n,involvedObject.namespace=d,involvedObject.kind=Deployment",
                Ok(
                    "involvedObject.kind=Deployment,involvedObject.name=n,involvedObject.namespace=d,involvedObject.uid=u",
                ),
            ),
            (
                "events",
                "reportingComponent=kubelet,source=kubelet",
                Ok("reportingComponent=kubelet,source=kubelet"),
            ),
            (
                "events",
                "regarding.name=x",
                Err("field label not supported: regarding.name"),
            ),
            (
                "events.events.k8s.io",
                "regarding.name=x",
                Ok("regarding.name=x"),
            ),
            (
                "events.events.k8s.io",
                "involvedObject.name=x",
                Err("field label not supported: involvedObject.name"),
            ),
            (
                "events.events.k8s.io",
                "reportingController=c",
                Ok("reportingController=c"),
            ),
            (
                "leases.coordination.k8s.io",
                "metadata.name=x",
                Ok("metadata.name=x"),
            ),
            ("pods", "", Ok("")),
        ];
        for (resource, input, want) in cases {
            let got = FieldSelector::parse(input).unwrap().validate_for(resource);
            assert_eq!(
                got.map(|s| s.to_string()).map_err(|e| e.to_string()),
                want.map(String::from).map_err(String::from),
                "{resource} {input:?}"
            );
        }
    }

    #[test]
    fn pod_fields_and_matching() {
        let scheduled = json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "node-a", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.5"}], "nominatedNodeName": "x"}
        });
        let f = object_fields("pods", &scheduled);
        let want: BTreeMap<String, String> = [
            ("metadata.name", "web-1"),
            ("metadata.namespace", "default"),
            ("spec.nodeName", "node-a"),
            ("spec.restartPolicy", "Always"),
            ("spec.schedulerName", "default-scheduler"),
            ("spec.serviceAccountName", "default"),
            ("spec.hostNetwork", "true"),
            ("status.phase", "Running"),
            ("status.podIP", "10.0.0.5"),
            ("status.nominatedNodeName", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(f, want);

        let pending = json!({"metadata": {"name": "web-2", "namespace": "default"}, "spec": {}, "status": {"podIP": "10.0.0.7"}});
        let g = object_fields("pods", &pending);
        assert_eq!(g["spec.nodeName"], "");
        assert_eq!(g["spec.hostNetwork"], "false");
        assert_eq!(g["status.podIP"], "10.0.0.7");

        let cases = [
            ("spec.nodeName=", false, true),
            ("spec.nodeName!=", true, false),
            ("spec.nodeName=node-a", true, false),
            ("spec.host=node-a", true, false),
            (
                "metadata.name=web-1,metadata.namespace=default",
                true,
                false,
            ),
            ("status.phase!=Running", false, true),
            ("spec.hostNetwork=false", false, true),
            ("status.podIPs=", true, true),
            ("", true, true),
        ];
        for (input, want_scheduled, want_pending) in cases {
            let s = FieldSelector::parse(input)
                .unwrap()
                .validate_for("pods")
                .unwrap();
            assert_eq!(s.matches(&f), want_scheduled, "{input} on scheduled");
            assert_eq!(s.matches(&g), want_pending, "{input} on pending");
            assert_eq!(
                s.matches_with(|k| g.get(k).cloned()),
                want_pending,
                "{input} on pending via fn"
            );
        }
    }

    #[test]
    fn other_resources_fields() {
        type Case = (&'static str, Value, &'static [(&'static str, &'static str)]);
        let cases: Vec<Case> = vec![
            (
                "nodes",
                json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}}),
                &[("metadata.name", "n1"), ("spec.unschedulable", "true")],
            ),
            (
                "nodes",
                json!({"metadata": {"name": "n2"}}),
                &[("metadata.name", "n2"), ("spec.unschedulable", "false")],
            ),
            (
                "namespaces",
                json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}}),
                &[("metadata.name", "default"), ("status.phase", "Active")],
            ),
            (
                "secrets",
                json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque"}),
                &[
                    ("metadata.name", "s"),
                    ("metadata.namespace", "d"),
                    ("type", "Opaque"),
                ],
            ),
            (
                "services",
                json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"}}),
                &[
                    ("metadata.name", "s"),
                    ("metadata.namespace", "d"),
                    ("spec.clusterIP", "10.96.0.1"),
                    ("spec.type", "ClusterIP"),
                ],
            ),
            (
                "replicasets.apps",
                json!({"metadata": {"name": "r", "namespace": "d"}, "status": {"replicas": 3}}),
                &[
                    ("metadata.name", "r"),
                    ("metadata.namespace", "d"),
                    ("status.replicas", "3"),
                ],
            ),
            (
                "replicasets.apps",
                json!({"metadata": {"name": "r", "namespace": "d"}}),
                &[
                    ("metadata.name", "r"),
                    ("metadata.namespace", "d"),
                    ("status.replicas", "0"),
                ],
            ),
            (
                "configmaps",
                json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"type": "x"}}),
                &[("metadata.name", "c"), ("metadata.namespace", "d")],
            ),
            (
                "leases.coordination.k8s.io",
                json!("not an object"),
                &[("metadata.name", ""), ("metadata.namespace", "")],
            ),
            (
                "priorityclasses.scheduling.k8s.io",
                json!({"metadata": {"name": "high"}, "value": 1000}),
                &[("metadata.name", "high")],
            ),
        ];
        for (resource, obj, want) in cases {
            let want: BTreeMap<String, String> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(object_fields(resource, &obj), want, "{resource} {obj}");
        }
    }

    #[test]
    fn event_fields_from_either_shape() {
        let core = json!({
            "metadata": {"name": "e1", "namespace": "demo"},
            "involvedObject": {"kind": "Deployment", "namespace": "demo", "name": "nginx", "uid": "u1",
                               "apiVersion": "apps/v1", "resourceVersion": "7", "fieldPath": ""},
            "reason": "ScalingReplicaSet", "type": "Normal",
            "source": {"component": "deployment-controller"},
            "reportingComponent": "deployment-controller"
        });
        let v1 = json!({
            "metadata": {"name": "e2", "namespace": "demo"},
            "regarding": {"kind": "Pod", "namespace": "demo", "name": "web", "uid": "u2"},
            "reason": "Scheduled", "type": "Normal",
            "reportingController": "default-scheduler"
        });
        let f = object_fields("events", &core);
        assert_eq!(f["involvedObject.kind"], "Deployment");
        assert_eq!(f["involvedObject.uid"], "u1");
        assert_eq!(f["involvedObject.apiVersion"], "apps/v1");
        assert_eq!(f["source"], "deployment-controller");
        assert_eq!(f["reportingComponent"], "deployment-controller");
        let g = object_fields("events", &v1);
        assert_eq!(g["involvedObject.kind"], "Pod");
        assert_eq!(g["involvedObject.fieldPath"], "");
        assert_eq!(g["reportingComponent"], "default-scheduler");
        assert_eq!(
            g["source"], "default-scheduler",
            "source falls back to the reporting controller"
        );
        let h = object_fields("events.events.k8s.io", &core);
        assert_eq!(h["regarding.name"], "nginx");
        assert_eq!(h["reportingController"], "deployment-controller");
        assert!(!h.contains_key("involvedObject.name"));
        // kubectl describe's query, in any order.
        let s = FieldSelector::parse(
            "involvedObject.uid=u1,involvedObject.name=nginx,involvedObject.namespace=demo,involvedObject.kind=Deployment",
        )
        .unwrap()
        .validate_for("events")
        .unwrap();
        assert!(s.matches(&f));
        assert!(!s.matches(&g));
        // Every field a resource supports is produced by object_fields, and vice versa.
        for resource in ["events", "events.events.k8s.io"] {
            let produced: Vec<String> = object_fields(resource, &core).into_keys().collect();
            let mut supported: Vec<String> = supported_field_labels(resource)
                .iter()
                .map(|s| s.to_string())
                .collect();
            supported.sort();
            assert_eq!(produced, supported, "{resource}");
        }
    }

    #[test]
    fn exact_matches() {
        let s = FieldSelector::parse("metadata.name=web,spec.nodeName!=n").unwrap();
        assert_eq!(s.requires_exact_match("metadata.name"), Some("web"));
        assert_eq!(s.requires_exact_match("spec.nodeName"), None);
        assert_eq!(s.requires_exact_match("status.phase"), None);
        assert!(FieldSelector::everything().is_everything());
        assert!(FieldSelector::everything().matches(&BTreeMap::new()));
        assert_eq!("a=b".parse::<FieldSelector>().unwrap().to_string(), "a=b");
    }

    #[test]
    fn escaping_round_trips() {
        for value in ["", "plain", "a,b", "a=b", "a\\b", "\\,=", "ü,"] {
            assert_eq!(unescape_value(&escape_value(value)).unwrap(), value);
        }
    }
}
