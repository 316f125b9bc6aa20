//! Name, label and annotation rules, with Kubernetes' own messages.
//!
//! The string checks port `k8s.io/apimachinery/pkg/util/validation` (Kubernetes 1.33): each
//! `is_*` function returns the list of problems, empty when the value is fine, worded exactly as
//! kube-apiserver words them, because clients and people grep for those words. The regular
//! expressions Kubernetes uses are matched by hand here (they are all simple character classes),
//! and quoted in the messages exactly as Kubernetes quotes them.
//!
//! [`FieldError`] is `field.Error`: the `metadata.name: Invalid value: "Foo": …` lines that make up
//! an `Invalid` status and its causes.

use std::collections::BTreeMap;
use std::fmt;

/// Longest DNS-1123 label (also the longest DNS-1035 label and label value).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Longest name part of a qualified name (label or annotation key).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Largest total size of an object's annotations, keys plus values, in bytes (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `validation.MaxLenError`: "must be no more than N characters".
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `validation.RegexError`, including its quirk of a double space before "or" when there are
/// several examples: `msg (e.g. 'my-name',  or '123-abc', regex used for validation is '…')`.
pub fn regex_error(msg: &str, regex: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{regex}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(regex);
    out.push_str("')");
    out
}

/// `validation.EmptyError`.
pub fn empty_error() -> &'static str {
    "must be non-empty"
}

// ---------------------------------------------------------------------------------------------
// Hand-written matchers for the regular expressions above (anchored, as Kubernetes anchors them).

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1123_label(value: &str) -> bool {
    let b = value.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn matches_dns1123_subdomain(value: &str) -> bool {
    value.split('.').all(matches_dns1123_label)
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1035_label(value: &str) -> bool {
    matches_dns1123_label(value) && value.as_bytes()[0].is_ascii_lowercase()
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn matches_qualified_name_part(value: &str) -> bool {
    let b = value.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------

/// `IsDNS1123Label`: at most 63 characters of `[a-z0-9-]`, starting and ending alphanumeric.
/// Used for namespace names.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a valid label: the length is already checked, so it must
            // be the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`: at most 253 characters, dot-separated DNS-1123 labels. Used for most
/// object names.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1035Label`: like a DNS-1123 label but starting with a letter. Used for service names.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `IsQualifiedName`: a label or annotation key, `[prefix/]name`, where the optional prefix is a
/// DNS-1123 subdomain and the name is at most 63 characters of `[-A-Za-z0-9_.]` starting and
/// ending alphanumeric.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`: empty, or at most 63 characters of `[-A-Za-z0-9_.]` starting and ending
/// alphanumeric.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `ValidateAnnotationsSize`: keys plus values must total at most 256 KiB. The error is the
/// detail Kubernetes puts in its `Too long` field error.
pub fn validate_annotations_size(annotations: &BTreeMap<String, String>) -> Result<(), String> {
    let total: usize = annotations
        .iter()
        .map(|(k, v)| k.len().saturating_add(v.len()))
        .fold(0, usize::saturating_add);
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        Err(format!(
            "must have at most {TOTAL_ANNOTATION_SIZE_LIMIT_BYTES} bytes"
        ))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Object names.

/// Which rule a resource's object names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// `NameIsDNSSubdomain`: most resources (pods, nodes, configmaps, deployments, …).
    Dns1123Subdomain,
    /// `NameIsDNSLabel`: namespaces.
    Dns1123Label,
    /// `NameIsDNS1035Label`: services.
    Dns1035Label,
}

impl NameRule {
    /// The problems with `name` under this rule (empty when fine). With `prefix` true the name is
    /// a `generateName` prefix, which may end in `-`.
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix {
            masked = mask_trailing_dash(name);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Dns1123Subdomain => is_dns1123_subdomain(name),
            NameRule::Dns1123Label => is_dns1123_label(name),
            NameRule::Dns1035Label => is_dns1035_label(name),
        }
    }
}

/// Kubernetes' `maskTrailingDash`: a `generateName` such as `web-` is checked as `wea`, so that
/// the random suffix appended later makes it valid. (It replaces the last two characters, as
/// Kubernetes does.)
fn mask_trailing_dash(name: &str) -> String {
    // Kubernetes cuts bytes; a non-ASCII name is invalid either way, so it is left alone rather
    // than cut inside a character.
    if name.len() > 1 && name.ends_with('-') && name.is_ascii() {
        format!("{}a", &name[..name.len() - 2])
    } else {
        name.to_string()
    }
}

/// The name rule of a resource, given as its plural (`pods`) or plural and group
/// (`deployments.apps`). Namespaces use DNS-1123 labels, services DNS-1035 labels, and everything
/// else, including resources this crate does not know, DNS-1123 subdomains.
pub fn name_rule(resource: &str) -> NameRule {
    let plural = resource.split('.').next().unwrap_or(resource);
    let core = !resource.contains('.');
    match plural {
        "namespaces" if core => NameRule::Dns1123Label,
        "services" if core => NameRule::Dns1035Label,
        _ => NameRule::Dns1123Subdomain,
    }
}

/// The problems with an object name of `resource` (see [`name_rule`]); empty when the name is
/// fine. An empty name is reported as `name or generateName is required`, as Kubernetes does.
pub fn validate_object_name(resource: &str, name: &str) -> Vec<String> {
    if name.is_empty() {
        return vec!["name or generateName is required".to_string()];
    }
    name_rule(resource).check(name, false)
}

// ---------------------------------------------------------------------------------------------
// Field errors.

/// `field.ErrorType`: what kind of problem a [`FieldError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
}

impl FieldErrorType {
    /// The machine-readable reason that goes into a `Status` cause (`FieldValueInvalid`, …).
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "FieldValueNotFound",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Internal => "InternalError",
        }
    }

    /// The human-readable form (`Invalid value`, `Required value`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "Not found",
            FieldErrorType::Required => "Required value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::Internal => "Internal error",
        }
    }

    /// Whether Kubernetes prints the bad value for this type (it does not for required,
    /// forbidden, too long and internal errors).
    fn shows_value(self) -> bool {
        !matches!(
            self,
            FieldErrorType::Required
                | FieldErrorType::Forbidden
                | FieldErrorType::TooLong
                | FieldErrorType::Internal
        )
    }
}

/// One field-level validation error, as `k8s.io/apimachinery/pkg/util/validation/field.Error`.
///
/// Displays as Kubernetes does: `metadata.name: Invalid value: "Foo": a lowercase RFC 1123 …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub kind: FieldErrorType,
    /// The path of the field, e.g. `metadata.labels`.
    pub field: String,
    /// The bad value, already rendered the way Kubernetes renders it (a Go-quoted string for
    /// strings); `None` when there is nothing to show.
    pub bad_value: Option<String>,
    pub detail: String,
}

impl FieldError {
    /// `field.Invalid(path, value, detail)` for a string value.
    pub fn invalid(field: impl Into<String>, value: &str, detail: impl Into<String>) -> FieldError {
        FieldError {
            kind: FieldErrorType::Invalid,
            field: field.into(),
            bad_value: Some(go_quote(value)),
            detail: detail.into(),
        }
    }

    /// `field.Required(path, detail)`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            kind: FieldErrorType::Required,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// `field.TooLong(path, "", max)` for a length in bytes.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> FieldError {
        FieldError {
            kind: FieldErrorType::TooLong,
            field: field.into(),
            bad_value: None,
            detail: format!("must have at most {max_bytes} bytes"),
        }
    }

    /// The message without the field path (`ErrorBody`), as used in `Status` causes.
    pub fn body(&self) -> String {
        let mut s = self.kind.as_str().to_string();
        if self.kind.shows_value() {
            s.push_str(": ");
            s.push_str(self.bad_value.as_deref().unwrap_or("null"));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Quote a string as Go's `%q` does (the form Kubernetes uses for bad values in messages).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `ValidateLabels`: every key a qualified name, every value a label value. `field` is the path
/// reported, normally `metadata.labels`.
pub fn validate_labels(labels: &BTreeMap<String, String>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(
            is_qualified_name(k)
                .into_iter()
                .map(|m| FieldError::invalid(field, k, m)),
        );
        errs.extend(
            is_valid_label_value(v)
                .into_iter()
                .map(|m| FieldError::invalid(field, v, m)),
        );
    }
    errs
}

/// `ValidateAnnotations`: every key a qualified name (case-insensitively), and the total size
/// within [`TOTAL_ANNOTATION_SIZE_LIMIT_BYTES`]. `field` is normally `metadata.annotations`.
pub fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    field: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for k in annotations.keys() {
        errs.extend(
            is_qualified_name(&k.to_lowercase())
                .into_iter()
                .map(|m| FieldError::invalid(field, k, m)),
        );
    }
    if validate_annotations_size(annotations).is_err() {
        errs.push(FieldError::too_long(
            field,
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
        ));
    }
    errs
}

/// The name checks of `ValidateObjectMeta` for an object of `resource`: `metadata.generateName`
/// (when given) and `metadata.name`, which is required unless a `generateName` is given (the
/// name is generated before validation in Kubernetes, so callers validate after generating).
pub fn validate_object_meta_name(
    resource: &str,
    name: &str,
    generate_name: Option<&str>,
) -> Vec<FieldError> {
    let rule = name_rule(resource);
    let mut errs = Vec::new();
    if let Some(generate_name) = generate_name.filter(|g| !g.is_empty()) {
        errs.extend(
            rule.check(generate_name, true)
                .into_iter()
                .map(|m| FieldError::invalid("metadata.generateName", generate_name, m)),
        );
    }
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        errs.extend(
            rule.check(name, false)
                .into_iter()
                .map(|m| FieldError::invalid("metadata.name", name, m)),
        );
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    #[test]
    fn dns1123_label() {
        let long = "a".repeat(64);
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("a", vec![]),
            ("my-name", vec![]),
            ("123-abc", vec![]),
            ("0", vec![]),
            (&long[..63], vec![]),
            ("", vec![LABEL_MSG]),
            ("-a", vec![LABEL_MSG]),
            ("a-", vec![LABEL_MSG]),
            ("A", vec![LABEL_MSG]),
            ("a_b", vec![LABEL_MSG]),
            ("a.b", vec!["must not contain dots"]),
            ("é", vec![LABEL_MSG]),
            (&long, vec!["must be no more than 63 characters"]),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1123_label(input), want, "input {input:?}");
        }
    }

    #[test]
    fn dns1123_subdomain() {
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        let long_dot = format!("{}.", &long[..253]);
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("example.com", vec![]),
            ("a", vec![]),
            ("a-b.c-d", vec![]),
            ("1.2.3.4", vec![]),
            (&long[..253], vec![]),
            ("", vec![SUBDOMAIN_MSG]),
            ("a..b", vec![SUBDOMAIN_MSG]),
            (".a", vec![SUBDOMAIN_MSG]),
            ("a.", vec![SUBDOMAIN_MSG]),
            ("a.-b", vec![SUBDOMAIN_MSG]),
            ("Web", vec![SUBDOMAIN_MSG]),
            ("web_1", vec![SUBDOMAIN_MSG]),
            ("a/b", vec![SUBDOMAIN_MSG]),
            (&long[..255], vec!["must be no more than 253 characters"]),
            (&long[..254], vec!["must be no more than 253 characters"]),
            (
                &long_dot,
                vec!["must be no more than 253 characters", SUBDOMAIN_MSG],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1123_subdomain(input), want, "input {input:?}");
        }
    }

    #[test]
    fn dns1035_label() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("my-name", vec![]),
            ("abc-123", vec![]),
            ("a", vec![]),
            ("1abc", vec![DNS1035_MSG]),
            ("", vec![DNS1035_MSG]),
            ("a.b", vec![DNS1035_MSG]),
            ("abc-", vec![DNS1035_MSG]),
            ("Abc", vec![DNS1035_MSG]),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1035_label(input), want, "input {input:?}");
        }
    }

    #[test]
    fn qualified_names() {
        let long_name = "a".repeat(64);
        let too_long = format!("example.com/{long_name}");
        let many_slashes = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
        let prefix_msg = format!("prefix part {SUBDOMAIN_MSG}");
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("app", vec![]),
            ("MyName", vec![]),
            ("my.name", vec![]),
            ("123-abc", vec![]),
            ("a_b", vec![]),
            ("app.kubernetes.io/name", vec![]),
            ("example.com/MyName", vec![]),
            ("", vec!["name part must be non-empty", NAME_PART_MSG]),
            ("-app", vec![NAME_PART_MSG]),
            ("app-", vec![NAME_PART_MSG]),
            ("my app", vec![NAME_PART_MSG]),
            ("/name", vec!["prefix part must be non-empty"]),
            (
                "example.com/",
                vec!["name part must be non-empty", NAME_PART_MSG],
            ),
            ("Example.com/name", vec![prefix_msg.as_str()]),
            ("a/b/c", vec![many_slashes]),
            (
                &too_long,
                vec!["name part must be no more than 63 characters"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(is_qualified_name(input), want, "input {input:?}");
        }
    }

    #[test]
    fn label_values() {
        let long = "v".repeat(64);
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("", vec![]),
            ("v", vec![]),
            ("MyValue", vec![]),
            ("my_value", vec![]),
            ("12345", vec![]),
            ("a.b-c_d", vec![]),
            ("-v", vec![VALUE_MSG]),
            ("v-", vec![VALUE_MSG]),
            ("a b", vec![VALUE_MSG]),
            ("a/b", vec![VALUE_MSG]),
            ("ü", vec![VALUE_MSG]),
            (&long, vec!["must be no more than 63 characters"]),
        ];
        for (input, want) in cases {
            assert_eq!(is_valid_label_value(input), want, "input {input:?}");
        }
    }

    #[test]
    fn annotation_size() {
        let mut small = BTreeMap::new();
        small.insert(
            "a".to_string(),
            "b".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1),
        );
        assert_eq!(validate_annotations_size(&small), Ok(()));
        let mut big = BTreeMap::new();
        big.insert(
            "ab".to_string(),
            "b".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1),
        );
        assert_eq!(
            validate_annotations_size(&big),
            Err("must have at most 262144 bytes".to_string())
        );
        let errs = validate_annotations(&big, "metadata.annotations");
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: must have at most 262144 bytes"
        );
    }

    #[test]
    fn annotations_keys_are_case_insensitive_qualified_names() {
        let mut a = BTreeMap::new();
        a.insert("Example.COM/Key".to_string(), "anything at all".to_string());
        assert!(validate_annotations(&a, "metadata.annotations").is_empty());
        a.insert("bad key".to_string(), String::new());
        let errs = validate_annotations(&a, "metadata.annotations");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with(
            "metadata.annotations: Invalid value: \"bad key\": name part must consist"
        ));
    }

    #[test]
    fn labels_report_key_and_value() {
        let mut l = BTreeMap::new();
        l.insert("app".to_string(), "web".to_string());
        assert!(validate_labels(&l, "metadata.labels").is_empty());
        l.insert("bad/key/x".to_string(), "bad value".to_string());
        let errs: Vec<String> = validate_labels(&l, "metadata.labels")
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].starts_with(
            "metadata.labels: Invalid value: \"bad/key/x\": a qualified name must consist"
        ));
        assert!(
            errs[1].starts_with(
                "metadata.labels: Invalid value: \"bad value\": a valid label must be"
            )
        );
    }

    #[test]
    fn object_names_by_resource() {
        let cases: Vec<(&str, &str, Vec<&str>)> = vec![
            ("pods", "web-1", vec![]),
            ("pods", "web.1", vec![]),
            ("pods", "Web", vec![SUBDOMAIN_MSG]),
            ("pods", "", vec!["name or generateName is required"]),
            ("namespaces", "team-a", vec![]),
            ("namespaces", "team.a", vec!["must not contain dots"]),
            ("services", "web", vec![]),
            ("services", "1web", vec![DNS1035_MSG]),
            ("services", "web.x", vec![DNS1035_MSG]),
            ("nodes", "node-1.example.com", vec![]),
            ("deployments.apps", "nginx", vec![]),
            ("deployments.apps", "nginx_", vec![SUBDOMAIN_MSG]),
            ("leases.coordination.k8s.io", "kube-scheduler", vec![]),
            (
                "priorityclasses.scheduling.k8s.io",
                "system-node-critical",
                vec![],
            ),
            (
                "priorityclasses.scheduling.k8s.io",
                "High",
                vec![SUBDOMAIN_MSG],
            ),
            ("widgets.example.com", "a.b", vec![]),
            ("events.events.k8s.io", "x.17a", vec![]),
        ];
        for (resource, name, want) in cases {
            assert_eq!(
                validate_object_name(resource, name),
                want,
                "{resource} {name:?}"
            );
        }
    }

    #[test]
    fn object_meta_names() {
        let cases: Vec<(&str, &str, Option<&str>, Vec<&str>)> = vec![
            ("pods", "web-abcde", Some("web-"), vec![]),
            (
                "pods",
                "",
                None,
                vec!["metadata.name: Required value: name or generateName is required"],
            ),
            (
                "pods",
                "Web",
                None,
                vec![
                    "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
            (
                "services",
                "x",
                Some("1a-"),
                vec![
                    "metadata.generateName: Invalid value: \"1a-\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            ("namespaces", "ns-x", Some("ns-"), vec![]),
            ("pods", "a", Some("a-"), vec![]),
        ];
        for (resource, name, generate, want) in cases {
            let got: Vec<String> = validate_object_meta_name(resource, name, generate)
                .iter()
                .map(|e| e.to_string())
                .collect();
            assert_eq!(got, want, "{resource} {name:?} {generate:?}");
        }
        // A non-ASCII prefix is reported, not cut inside a character.
        let errs = validate_object_meta_name("pods", "a", Some("é-"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.generateName");
    }

    #[test]
    fn go_quoting() {
        let cases = [
            ("a", "\"a\""),
            ("a\"b", "\"a\\\"b\""),
            ("a\\b", "\"a\\\\b\""),
            ("a\nb", "\"a\\nb\""),
            ("\u{1}", "\"\\x01\""),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want);
        }
    }

    #[test]
    fn field_error_bodies() {
        let e = FieldError::invalid("metadata.name", "x", "bad");
        assert_eq!(e.body(), "Invalid value: \"x\": bad");
        assert_eq!(e.kind.reason(), "FieldValueInvalid");
        let r = FieldError::required("spec.containers", "");
        assert_eq!(r.to_string(), "spec.containers: Required value");
    }
}
