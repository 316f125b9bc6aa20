//! The one place errors become Kubernetes `Status` objects.
//!
//! Every failure the apiserver reports goes out as an [`ApiError`]: an HTTP code, a
//! machine-readable [`StatusReason`], a human message and optional [`StatusDetails`]. The
//! constructors reproduce kube-apiserver's own texts (`k8s.io/apimachinery/pkg/api/errors`),
//! because kubectl prints `Error from server (<reason>): <message>` verbatim and rebuilds some
//! messages (422 Invalid, NotFound) from `details`; a user who knows Kubernetes' wording should
//! see the same words here.
//!
//! Storage failures are mapped in [`ApiError::from_storage`], so that handlers never choose codes
//! for them themselves.

use std::fmt;

use api_types::validation::{FieldError, go_quote};
use serde_json::{Map, Value, json};

use crate::storage::StorageError;

/// The message of a 409 Conflict on a stale `resourceVersion` (Kubernetes'
/// `OptimisticLockErrorMsg`); kubectl's apply retries when it sees a Conflict.
pub const OPTIMISTIC_LOCK_MESSAGE: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// The media types a request body may have (for the 415 message).
pub const ACCEPTED_BODY_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// The patch media types, in the order kube-apiserver lists them in its 415 message.
pub const ACCEPTED_PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/strategic-merge-patch+json",
];

/// `metav1.StatusReason`: why a request failed, as kubectl shows it in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusReason {
    NotFound,
    AlreadyExists,
    Conflict,
    Invalid,
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    UnsupportedMediaType,
    Gone,
    Expired,
    Unauthorized,
    Forbidden,
    RequestEntityTooLarge,
    TooManyRequests,
    Timeout,
    InternalError,
    ServiceUnavailable,
}

impl StatusReason {
    /// The reason as it appears in a `Status` (`NotFound`, `InternalError`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusReason::NotFound => "NotFound",
            StatusReason::AlreadyExists => "AlreadyExists",
            StatusReason::Conflict => "Conflict",
            StatusReason::Invalid => "Invalid",
            StatusReason::BadRequest => "BadRequest",
            StatusReason::MethodNotAllowed => "MethodNotAllowed",
            StatusReason::NotAcceptable => "NotAcceptable",
            StatusReason::UnsupportedMediaType => "UnsupportedMediaType",
            StatusReason::Gone => "Gone",
            StatusReason::Expired => "Expired",
            StatusReason::Unauthorized => "Unauthorized",
            StatusReason::Forbidden => "Forbidden",
            StatusReason::RequestEntityTooLarge => "RequestEntityTooLarge",
            StatusReason::TooManyRequests => "TooManyRequests",
            StatusReason::Timeout => "Timeout",
            StatusReason::InternalError => "InternalError",
            StatusReason::ServiceUnavailable => "ServiceUnavailable",
        }
    }
}

impl fmt::Display for StatusReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cause of a failure (`metav1.StatusCause`); empty strings are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCause {
    /// Machine-readable cause (`FieldValueInvalid`, `NamespaceTerminating`, …); JSON `reason`.
    pub reason: String,
    pub message: String,
    /// The field path (`spec.replicas`).
    pub field: String,
}

impl StatusCause {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put_str(&mut m, "reason", &self.reason);
        put_str(&mut m, "message", &self.message);
        put_str(&mut m, "field", &self.field);
        Value::Object(m)
    }
}

/// `metav1.StatusDetails`. Kubernetes puts the *resource* (`deployments`) into `kind` for most
/// errors and the kind (`Deployment`) only for 422 Invalid. Empty fields are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusDetails {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub uid: String,
    pub causes: Vec<StatusCause>,
    /// Sent as `retryAfterSeconds` and as the `Retry-After` header when non-zero.
    pub retry_after_seconds: u32,
}

impl StatusDetails {
    /// Details naming an object by qualified resource (`deployments.apps`) and name.
    fn for_resource(qualified_resource: &str, name: &str) -> StatusDetails {
        let (resource, group) = split_qualified_resource(qualified_resource);
        StatusDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: resource.to_string(),
            ..StatusDetails::default()
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put_str(&mut m, "name", &self.name);
        put_str(&mut m, "group", &self.group);
        put_str(&mut m, "kind", &self.kind);
        put_str(&mut m, "uid", &self.uid);
        if !self.causes.is_empty() {
            m.insert(
                "causes".into(),
                Value::Array(self.causes.iter().map(StatusCause::to_json).collect()),
            );
        }
        if self.retry_after_seconds > 0 {
            m.insert(
                "retryAfterSeconds".into(),
                Value::from(self.retry_after_seconds),
            );
        }
        Value::Object(m)
    }
}

fn put_str(m: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        m.insert(key.into(), Value::String(value.to_string()));
    }
}

/// Split a qualified resource (`deployments.apps`, `events.events.k8s.io`, `pods`) into the
/// resource and its group; plurals never contain a dot, so the first dot separates them.
fn split_qualified_resource(qualified_resource: &str) -> (&str, &str) {
    qualified_resource
        .split_once('.')
        .unwrap_or((qualified_resource, ""))
}

/// `schema.GroupKind.String()`: `Deployment.apps`, or `Pod` for the core group.
fn qualified_kind(kind: &str, group: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// A failed request, as Kubernetes reports it: becomes a `Status` with [`ApiError::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status code, also sent as the Status' `code`.
    pub code: u16,
    pub reason: StatusReason,
    /// Printed verbatim by kubectl.
    pub message: String,
    /// `None` leaves `details` out of the Status; `Some` of an empty value sends `{}`, as Go
    /// does for a non-nil pointer to an empty struct.
    pub details: Option<StatusDetails>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Any error; prefer the named constructors, which carry Kubernetes' texts.
    pub fn new(code: u16, reason: StatusReason, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: StatusDetails) -> ApiError {
        self.details = Some(details);
        self
    }

    /// 404 `deployments.apps "x" not found` (`NewNotFound`).
    pub fn not_found(qualified_resource: &str, name: &str) -> ApiError {
        ApiError::new(
            404,
            StatusReason::NotFound,
            format!("{qualified_resource} {} not found", go_quote(name)),
        )
        .with_details(StatusDetails::for_resource(qualified_resource, name))
    }

    /// 404 for a path that names nothing: `the server could not find the requested resource`,
    /// with empty details, as kube-apiserver answers an unknown URL.
    pub fn not_found_path() -> ApiError {
        ApiError::new(
            404,
            StatusReason::NotFound,
            "the server could not find the requested resource",
        )
        .with_details(StatusDetails::default())
    }

    /// 409 `deployments.apps "x" already exists` (`NewAlreadyExists`).
    pub fn already_exists(qualified_resource: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            StatusReason::AlreadyExists,
            format!("{qualified_resource} {} already exists", go_quote(name)),
        )
        .with_details(StatusDetails::for_resource(qualified_resource, name))
    }

    /// 409 `Operation cannot be fulfilled on deployments.apps "x": <message>` (`NewConflict`);
    /// pass [`OPTIMISTIC_LOCK_MESSAGE`] for a stale `resourceVersion`.
    pub fn conflict(qualified_resource: &str, name: &str, message: &str) -> ApiError {
        ApiError::new(
            409,
            StatusReason::Conflict,
            format!(
                "Operation cannot be fulfilled on {qualified_resource} {}: {message}",
                go_quote(name)
            ),
        )
        .with_details(StatusDetails::for_resource(qualified_resource, name))
    }

    /// 409 Conflict of server-side apply (`NewApplyConflict`): the causes name the fields
    /// (`FieldManagerConflict`) and the details nothing else.
    pub fn apply_conflict(causes: Vec<StatusCause>, message: &str) -> ApiError {
        ApiError::new(409, StatusReason::Conflict, message).with_details(StatusDetails {
            causes,
            ..StatusDetails::default()
        })
    }

    /// 422 `Deployment.apps "bad" is invalid: spec.replicas: Invalid value: -1: …` (`NewInvalid`).
    ///
    /// `kind` is the kind (`Deployment`), `group` its group (`""` for core, giving
    /// `Pod "x" is invalid: …`). Several errors are joined as Kubernetes' aggregate does:
    /// `[a, b]`, with duplicate messages dropped. Each error also becomes a cause, from which
    /// kubectl rebuilds its `The Deployment "bad" is invalid: …` line.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> ApiError {
        let causes = errors
            .iter()
            .map(|e| StatusCause {
                reason: e.kind.reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        let subject = format!("{} {}", qualified_kind(kind, group), go_quote(name));
        let message = match aggregate(errors) {
            None => format!("{subject} is invalid"),
            Some(list) => format!("{subject} is invalid: {list}"),
        };
        ApiError::new(422, StatusReason::Invalid, message).with_details(StatusDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            causes,
            ..StatusDetails::default()
        })
    }

    /// 422 for a JSON patch that cannot be applied. Kubernetes answers this with its generic
    /// `the server rejected our request due to an error in our request` and empty details
    /// (`NewGenericServerResponse`), dropping the patch library's text; so does Ferry, so that
    /// kubectl prints what it prints against Kubernetes. `_detail` is accepted for call sites
    /// that have it; it is not sent.
    pub fn patch_failed(_detail: &str) -> ApiError {
        ApiError::new(
            422,
            StatusReason::Invalid,
            "the server rejected our request due to an error in our request",
        )
        .with_details(StatusDetails::default())
    }

    /// 400 with the message as given (`NewBadRequest`).
    pub fn bad_request(message: &str) -> ApiError {
        ApiError::new(400, StatusReason::BadRequest, message)
    }

    /// 405 for a verb the resource does not serve. The message is what kubectl shows for
    /// kube-apiserver's 405 (`the server does not allow this method on the requested resource
    /// (post pods)`); `verb` is the HTTP method or Kubernetes verb, shown lower-cased.
    pub fn method_not_allowed(verb: &str, qualified_resource: &str) -> ApiError {
        ApiError::new(
            405,
            StatusReason::MethodNotAllowed,
            format!(
                "the server does not allow this method on the requested resource ({} {qualified_resource})",
                verb.to_ascii_lowercase()
            ),
        )
        .with_details(StatusDetails::for_resource(qualified_resource, ""))
    }

    /// 406 with the message as given, e.g. `only the following media types are accepted: …`.
    pub fn not_acceptable(message: &str) -> ApiError {
        ApiError::new(406, StatusReason::NotAcceptable, message)
    }

    /// 415 for a request body of a type Ferry does not decode: `the body of the request was in
    /// an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf`.
    /// Kubernetes' text does not name the rejected type, so neither does this one.
    pub fn unsupported_media_type(_content_type: &str) -> ApiError {
        unsupported(ACCEPTED_BODY_MEDIA_TYPES)
    }

    /// 415 for a PATCH whose Content-Type is not a patch type, listing the patch types as
    /// Kubernetes does.
    pub fn unsupported_patch_type(_content_type: &str) -> ApiError {
        unsupported(ACCEPTED_PATCH_MEDIA_TYPES)
    }

    /// 410 Gone with the message as given (`NewGone`).
    pub fn gone(message: &str) -> ApiError {
        ApiError::new(410, StatusReason::Gone, message)
    }

    /// 410 Expired (`NewResourceExpired`): what Kubernetes sends for a compacted
    /// `resourceVersion`, e.g. `too old resource version: 5 (10)`. Informers relist on it.
    pub fn expired(message: &str) -> ApiError {
        ApiError::new(410, StatusReason::Expired, message)
    }

    /// 401 `Unauthorized`, as kube-apiserver's authentication filter sends it.
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, StatusReason::Unauthorized, "Unauthorized")
    }

    /// 403 `pods "x" is forbidden: <message>` (`NewForbidden`): without a name `pods is
    /// forbidden: …`, without a resource `forbidden: …`.
    pub fn forbidden(qualified_resource: &str, name: &str, message: &str) -> ApiError {
        let text = if qualified_resource.is_empty() {
            format!("forbidden: {message}")
        } else if name.is_empty() {
            format!("{qualified_resource} is forbidden: {message}")
        } else {
            format!(
                "{qualified_resource} {} is forbidden: {message}",
                go_quote(name)
            )
        };
        ApiError::new(403, StatusReason::Forbidden, text)
            .with_details(StatusDetails::for_resource(qualified_resource, name))
    }

    /// 403 for a create in a namespace being deleted: `unable to create new content in
    /// namespace demo because it is being terminated`, with a `NamespaceTerminating` cause on
    /// `metadata.namespace`. Use [`ApiError::namespace_terminating_for`] when the object is
    /// known: it gives kube-apiserver's full text.
    pub fn namespace_terminating(namespace: &str) -> ApiError {
        let mut error = ApiError::new(
            403,
            StatusReason::Forbidden,
            namespace_terminating_text(namespace),
        )
        .with_details(StatusDetails::default());
        add_namespace_terminating_cause(&mut error, namespace);
        error
    }

    /// Kubernetes' exact NamespaceLifecycle rejection: `pods "x" is forbidden: unable to create
    /// new content in namespace demo because it is being terminated` (no name for a
    /// `generateName` create), with the `NamespaceTerminating` cause.
    pub fn namespace_terminating_for(
        qualified_resource: &str,
        name: &str,
        namespace: &str,
    ) -> ApiError {
        let mut error = ApiError::forbidden(
            qualified_resource,
            name,
            &namespace_terminating_text(namespace),
        );
        add_namespace_terminating_cause(&mut error, namespace);
        error
    }

    /// 413 `Request entity too large: <message>` (`NewRequestEntityTooLargeError`).
    pub fn request_entity_too_large(message: &str) -> ApiError {
        ApiError::new(
            413,
            StatusReason::RequestEntityTooLarge,
            format!("Request entity too large: {message}"),
        )
    }

    /// 429 with `retryAfterSeconds` (and so a `Retry-After` header): kubectl retries it by
    /// itself.
    pub fn too_many_requests(retry_after_seconds: u32) -> ApiError {
        ApiError::new(
            429,
            StatusReason::TooManyRequests,
            "Too many requests, please try again later.",
        )
        .with_details(StatusDetails {
            retry_after_seconds,
            ..StatusDetails::default()
        })
    }

    /// 504 `Timeout: <message>` (`NewTimeoutError` without a retry delay).
    pub fn timeout(message: &str) -> ApiError {
        ApiError::new(504, StatusReason::Timeout, format!("Timeout: {message}"))
            .with_details(StatusDetails::default())
    }

    /// 500 `Internal error occurred: <message>` (`NewInternalError`), the message also as the
    /// one cause.
    pub fn internal(message: &str) -> ApiError {
        ApiError::new(
            500,
            StatusReason::InternalError,
            format!("Internal error occurred: {message}"),
        )
        .with_details(StatusDetails {
            causes: vec![StatusCause {
                message: message.to_string(),
                ..StatusCause::default()
            }],
            ..StatusDetails::default()
        })
    }

    /// 503 with the message as given (`NewServiceUnavailable`).
    pub fn service_unavailable(message: &str) -> ApiError {
        ApiError::new(503, StatusReason::ServiceUnavailable, message)
    }

    /// The API error for a storage failure on object `name` (`""` for lists and watches) of
    /// `qualified_resource`:
    ///
    /// | storage | API |
    /// |---|---|
    /// | `NotFound` | 404 NotFound |
    /// | `AlreadyExists` | 409 AlreadyExists |
    /// | `Conflict` | 409 Conflict: [`OPTIMISTIC_LOCK_MESSAGE`] for a `resourceVersion` mismatch; Kubernetes' `StorageError: invalid object, Code: 4, …` text for a failed UID precondition; otherwise the storage message |
    /// | `TooOld` | 410 Expired `too old resource version: R (C)` |
    /// | `FutureRevision` | 504 Timeout `Timeout: Too large resource version: R, current: C`, cause `ResourceVersionTooLarge`, retry after 1 s (`storage.NewTooLargeResourceVersionError`) |
    /// | `InvalidContinue` | 400 BadRequest |
    /// | `Rejected` | the [`ApiError`] it carries, else 400 BadRequest |
    /// | `Unavailable` | 503 ServiceUnavailable |
    /// | `Internal` | 500 InternalError |
    pub fn from_storage(err: StorageError, qualified_resource: &str, name: &str) -> ApiError {
        match err {
            StorageError::NotFound { .. } => ApiError::not_found(qualified_resource, name),
            StorageError::AlreadyExists { .. } => {
                ApiError::already_exists(qualified_resource, name)
            }
            StorageError::Conflict { key, message } => {
                let text = if message.contains("ResourceVersion in precondition") {
                    OPTIMISTIC_LOCK_MESSAGE.to_string()
                } else if message.starts_with("Precondition failed") {
                    // `storage.NewInvalidObjError` as `StorageError.Error()` prints it.
                    format!(
                        "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: {message}"
                    )
                } else {
                    message
                };
                ApiError::conflict(qualified_resource, name, &text)
            }
            StorageError::TooOld {
                requested,
                compacted,
            } => ApiError::expired(&format!(
                "too old resource version: {requested} ({compacted})"
            )),
            StorageError::FutureRevision { requested, current } => ApiError::new(
                504,
                StatusReason::Timeout,
                format!("Timeout: Too large resource version: {requested}, current: {current}"),
            )
            .with_details(StatusDetails {
                causes: vec![StatusCause {
                    reason: "ResourceVersionTooLarge".into(),
                    message: "Too large resource version".into(),
                    field: String::new(),
                }],
                retry_after_seconds: 1,
                ..StatusDetails::default()
            }),
            e @ StorageError::InvalidContinue(_) => ApiError::bad_request(&e.to_string()),
            StorageError::Rejected(inner) => match inner.downcast::<ApiError>() {
                Ok(api) => *api,
                Err(other) => ApiError::bad_request(&other.to_string()),
            },
            e @ StorageError::Unavailable(_) => ApiError::service_unavailable(&e.to_string()),
            StorageError::Internal(message) => ApiError::internal(&message),
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// Seconds for the `Retry-After` header: `details.retryAfterSeconds` when non-zero, as
    /// kube-apiserver sets it.
    pub fn retry_after(&self) -> Option<u32> {
        self.details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0)
    }

    /// The `Status` object (`{"kind":"Status","apiVersion":"v1","metadata":{},"status":
    /// "Failure",…}`), for a response body or a watch `ERROR` event.
    pub fn status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        put_str(&mut m, "message", &self.message);
        m.insert("reason".into(), json!(self.reason.as_str()));
        if let Some(details) = &self.details {
            m.insert("details".into(), details.to_json());
        }
        m.insert("code".into(), Value::from(self.code));
        Value::Object(m)
    }

    /// [`ApiError::status`] serialized, for a response body.
    pub fn body(&self) -> Vec<u8> {
        // Serializing a `Value` cannot fail.
        serde_json::to_vec(&self.status()).unwrap_or_default()
    }
}

/// The 200 `Status` Kubernetes returns for a delete that did not return the object:
/// `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":…,
/// "group":…,"kind":"configmaps","uid":…}}`. `kind` is the resource plural, as Kubernetes puts
/// it; empty fields are left out; like Kubernetes, there is no `code`.
pub fn success_status(name: &str, group: &str, kind: &str, uid: &str) -> Value {
    let details = StatusDetails {
        name: name.to_string(),
        group: group.to_string(),
        kind: kind.to_string(),
        uid: uid.to_string(),
        ..StatusDetails::default()
    };
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details.to_json(),
    })
}

fn unsupported(accepted: &[&str]) -> ApiError {
    ApiError::new(
        415,
        StatusReason::UnsupportedMediaType,
        format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        ),
    )
}

fn namespace_terminating_text(namespace: &str) -> String {
    format!("unable to create new content in namespace {namespace} because it is being terminated")
}

fn add_namespace_terminating_cause(error: &mut ApiError, namespace: &str) {
    error
        .details
        .get_or_insert_with(StatusDetails::default)
        .causes
        .push(StatusCause {
            reason: "NamespaceTerminating".into(),
            message: format!("namespace {namespace} is being terminated"),
            field: "metadata.namespace".into(),
        });
}

/// `field.ErrorList.ToAggregate().Error()`: `None` for no errors, the one message for one, and
/// `[a, b]` for several, each distinct message once, in order.
fn aggregate(errors: &[FieldError]) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let text = e.to_string();
        if !seen.contains(&text) {
            seen.push(text);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::validation::FieldErrorType;

    fn status(e: &ApiError) -> String {
        serde_json::to_string(&e.status()).unwrap()
    }

    /// Compare as JSON values, so key order does not matter.
    fn assert_status(e: &ApiError, want: &str) {
        let want: Value = serde_json::from_str(want).unwrap();
        assert_eq!(e.status(), want, "{}", status(e));
        assert_eq!(e.code().to_string(), want["code"].to_string());
        let body: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(body, want);
    }

    #[test]
    fn not_found() {
        assert_status(
            &ApiError::not_found("deployments.apps", "nope"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"deployments.apps \"nope\" not found","reason":"NotFound",
                "details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}"#,
        );
        assert_status(
            &ApiError::not_found("namespaces", "ghost"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"namespaces \"ghost\" not found","reason":"NotFound",
                "details":{"name":"ghost","kind":"namespaces"},"code":404}"#,
        );
        assert_status(
            &ApiError::not_found("events.events.k8s.io", "e"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"events.events.k8s.io \"e\" not found","reason":"NotFound",
                "details":{"name":"e","group":"events.k8s.io","kind":"events"},"code":404}"#,
        );
        assert_status(
            &ApiError::not_found_path(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"the server could not find the requested resource","reason":"NotFound",
                "details":{},"code":404}"#,
        );
    }

    #[test]
    fn names_are_go_quoted() {
        let e = ApiError::not_found("pods", "a\"b");
        assert_eq!(e.message, r#"pods "a\"b" not found"#);
        assert_eq!(e.details.unwrap().name, "a\"b");
    }

    #[test]
    fn already_exists_and_conflict() {
        assert_status(
            &ApiError::already_exists("deployments.apps", "nginx"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"deployments.apps \"nginx\" already exists","reason":"AlreadyExists",
                "details":{"name":"nginx","group":"apps","kind":"deployments"},"code":409}"#,
        );
        assert_status(
            &ApiError::conflict("deployments.apps", "nginx", OPTIMISTIC_LOCK_MESSAGE),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Operation cannot be fulfilled on deployments.apps \"nginx\": the object has been modified; please apply your changes to the latest version and try again",
                "reason":"Conflict",
                "details":{"name":"nginx","group":"apps","kind":"deployments"},"code":409}"#,
        );
        assert_status(
            &ApiError::apply_conflict(
                vec![StatusCause {
                    reason: "FieldManagerConflict".into(),
                    message: "conflict with \"kubectl-client-side-apply\" using apps/v1".into(),
                    field: ".spec.replicas".into(),
                }],
                "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas",
            ),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas",
                "reason":"Conflict",
                "details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"kubectl-client-side-apply\" using apps/v1","field":".spec.replicas"}]},
                "code":409}"#,
        );
    }

    fn replicas_error() -> FieldError {
        FieldError {
            kind: FieldErrorType::Invalid,
            field: "spec.replicas".into(),
            bad_value: Some("-1".into()),
            detail: "must be greater than or equal to 0".into(),
        }
    }

    #[test]
    fn invalid_one_cause() {
        assert_status(
            &ApiError::invalid("Deployment", "apps", "bad", &[replicas_error()]),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Deployment.apps \"bad\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "reason":"Invalid",
                "details":{"name":"bad","group":"apps","kind":"Deployment",
                  "causes":[{"reason":"FieldValueInvalid","message":"Invalid value: -1: must be greater than or equal to 0","field":"spec.replicas"}]},
                "code":422}"#,
        );
    }

    #[test]
    fn invalid_core_and_several_causes() {
        let name = FieldError::invalid("metadata.name", "Foo", "a lowercase RFC 1123 subdomain");
        let required = FieldError::required("spec.containers", "");
        let e = ApiError::invalid(
            "Pod",
            "",
            "Foo",
            &[name.clone(), required.clone(), name.clone()],
        );
        assert_eq!(
            e.message,
            r#"Pod "Foo" is invalid: [metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain, spec.containers: Required value]"#
        );
        let details = e.details.clone().unwrap();
        assert_eq!(details.group, "");
        assert_eq!(details.kind, "Pod");
        // Causes are not de-duplicated: Kubernetes makes one per error.
        assert_eq!(details.causes.len(), 3);
        assert_eq!(details.causes[1].reason, "FieldValueRequired");
        assert_eq!(details.causes[1].message, "Required value");
        assert_eq!(details.causes[1].field, "spec.containers");
        assert!(!status(&e).contains("\"group\""));

        let none = ApiError::invalid("Pod", "", "x", &[]);
        assert_eq!(none.message, r#"Pod "x" is invalid"#);
        assert_eq!(
            none.status()["details"],
            json!({"name": "x", "kind": "Pod"})
        );
    }

    #[test]
    fn simple_reasons() {
        let cases: Vec<(ApiError, u16, &str, &str)> = vec![
            (ApiError::bad_request("boom"), 400, "BadRequest", "boom"),
            (
                ApiError::not_acceptable(
                    "only the following media types are accepted: application/json",
                ),
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json",
            ),
            (
                ApiError::unsupported_media_type("application/vnd.kubernetes.protobuf"),
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            ),
            (
                ApiError::unsupported_patch_type("application/json"),
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
            ),
            (ApiError::gone("gone"), 410, "Gone", "gone"),
            (
                ApiError::expired("too old resource version: 5 (10)"),
                410,
                "Expired",
                "too old resource version: 5 (10)",
            ),
            (
                ApiError::unauthorized(),
                401,
                "Unauthorized",
                "Unauthorized",
            ),
            (
                ApiError::request_entity_too_large("limit is 3145728"),
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 3145728",
            ),
            (
                ApiError::service_unavailable("etcd is down"),
                503,
                "ServiceUnavailable",
                "etcd is down",
            ),
        ];
        for (e, code, reason, message) in cases {
            let want = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code,
            });
            assert_eq!(e.status(), want, "{reason}");
            assert_eq!(e.to_string(), message);
            assert_eq!(e.retry_after(), None);
        }
    }

    #[test]
    fn method_not_allowed() {
        assert_status(
            &ApiError::method_not_allowed("POST", "pods"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"the server does not allow this method on the requested resource (post pods)",
                "reason":"MethodNotAllowed","details":{"kind":"pods"},"code":405}"#,
        );
        let e = ApiError::method_not_allowed("delete", "deployments.apps");
        assert_eq!(
            e.status()["details"],
            json!({"group": "apps", "kind": "deployments"})
        );
    }

    #[test]
    fn forbidden() {
        assert_status(
            &ApiError::forbidden("pods", "x", "nope"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"pods \"x\" is forbidden: nope","reason":"Forbidden",
                "details":{"name":"x","kind":"pods"},"code":403}"#,
        );
        assert_eq!(
            ApiError::forbidden("pods", "", "User \"bob\" cannot list resource \"pods\"").message,
            r#"pods is forbidden: User "bob" cannot list resource "pods""#
        );
        assert_eq!(ApiError::forbidden("", "", "no").message, "forbidden: no");
    }

    #[test]
    fn namespace_terminating() {
        assert_status(
            &ApiError::namespace_terminating("demo"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"unable to create new content in namespace demo because it is being terminated",
                "reason":"Forbidden",
                "details":{"causes":[{"reason":"NamespaceTerminating","message":"namespace demo is being terminated","field":"metadata.namespace"}]},
                "code":403}"#,
        );
        assert_status(
            &ApiError::namespace_terminating_for("deployments.apps", "web", "demo"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"deployments.apps \"web\" is forbidden: unable to create new content in namespace demo because it is being terminated",
                "reason":"Forbidden",
                "details":{"name":"web","group":"apps","kind":"deployments",
                  "causes":[{"reason":"NamespaceTerminating","message":"namespace demo is being terminated","field":"metadata.namespace"}]},
                "code":403}"#,
        );
    }

    #[test]
    fn retries_timeouts_and_internal_errors() {
        let e = ApiError::too_many_requests(1);
        assert_status(
            &e,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Too many requests, please try again later.","reason":"TooManyRequests",
                "details":{"retryAfterSeconds":1},"code":429}"#,
        );
        assert_eq!(e.retry_after(), Some(1));
        assert_eq!(ApiError::too_many_requests(0).retry_after(), None);

        let e = ApiError::timeout("request did not complete within requested timeout");
        assert_status(
            &e,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Timeout: request did not complete within requested timeout",
                "reason":"Timeout","details":{},"code":504}"#,
        );
        assert_eq!(e.retry_after(), None);

        assert_status(
            &ApiError::internal("a stored object is not JSON"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Internal error occurred: a stored object is not JSON",
                "reason":"InternalError",
                "details":{"causes":[{"message":"a stored object is not JSON"}]},"code":500}"#,
        );
        assert_status(
            &ApiError::patch_failed("missing path"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"the server rejected our request due to an error in our request",
                "reason":"Invalid","details":{},"code":422}"#,
        );
    }

    #[test]
    fn success() {
        assert_eq!(
            success_status("app", "", "configmaps", "1234"),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",
                   "details":{"name":"app","kind":"configmaps","uid":"1234"}})
        );
        assert_eq!(
            success_status("web", "apps", "deployments", "")["details"],
            json!({"name":"web","group":"apps","kind":"deployments"})
        );
    }

    #[test]
    fn storage_errors() {
        let qr = "deployments.apps";
        let e = ApiError::from_storage(StorageError::NotFound { key: "k".into() }, qr, "x");
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, r#"deployments.apps "x" not found"#)
        );

        let e = ApiError::from_storage(StorageError::AlreadyExists { key: "k".into() }, qr, "x");
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (
                409,
                StatusReason::AlreadyExists,
                r#"deployments.apps "x" already exists"#
            )
        );

        let rv = StorageError::Conflict {
            key: "/registry/deployments/default/x".into(),
            message: "Precondition failed: ResourceVersion in precondition: 4, ResourceVersion in object meta: 5".into(),
        };
        let e = ApiError::from_storage(rv, qr, "x");
        assert_eq!(e.reason, StatusReason::Conflict);
        assert_eq!(
            e.message,
            format!(
                r#"Operation cannot be fulfilled on deployments.apps "x": {OPTIMISTIC_LOCK_MESSAGE}"#
            )
        );

        let uid = StorageError::Conflict {
            key: "/registry/deployments/default/x".into(),
            message: "Precondition failed: UID in precondition: a, UID in object meta: b".into(),
        };
        assert_eq!(
            ApiError::from_storage(uid, qr, "x").message,
            r#"Operation cannot be fulfilled on deployments.apps "x": StorageError: invalid object, Code: 4, Key: /registry/deployments/default/x, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: a, UID in object meta: b"#
        );

        let e = ApiError::from_storage(
            StorageError::TooOld {
                requested: 5,
                compacted: 10,
            },
            qr,
            "",
        );
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (
                410,
                StatusReason::Expired,
                "too old resource version: 5 (10)"
            )
        );

        let e = ApiError::from_storage(
            StorageError::FutureRevision {
                requested: 50,
                current: 12,
            },
            qr,
            "",
        );
        assert_status(
            &e,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Timeout: Too large resource version: 50, current: 12","reason":"Timeout",
                "details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}],"retryAfterSeconds":1},
                "code":504}"#,
        );
        assert_eq!(e.retry_after(), Some(1));

        let e = ApiError::from_storage(StorageError::InvalidContinue("bad token".into()), qr, "");
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "continue key is not valid: bad token")
        );

        let carried = ApiError::invalid("Deployment", "apps", "x", &[replicas_error()]);
        let e = ApiError::from_storage(StorageError::Rejected(Box::new(carried.clone())), qr, "x");
        assert_eq!(e, carried);

        let e = ApiError::from_storage(
            StorageError::Rejected("not an API error".to_string().into()),
            qr,
            "x",
        );
        assert_eq!((e.code, e.message.as_str()), (400, "not an API error"));

        let e = ApiError::from_storage(StorageError::Unavailable("etcd down".into()), qr, "x");
        assert_eq!((e.code, e.reason), (503, StatusReason::ServiceUnavailable));

        let e = ApiError::from_storage(StorageError::Internal("corrupt".into()), qr, "x");
        assert_eq!(
            (e.code, e.message.as_str()),
            (500, "Internal error occurred: corrupt")
        );
    }

    #[test]
    fn reasons_round_trip_through_display() {
        assert_eq!(StatusReason::InternalError.to_string(), "InternalError");
        assert_eq!(
            StatusReason::RequestEntityTooLarge.as_str(),
            "RequestEntityTooLarge"
        );
    }
}
