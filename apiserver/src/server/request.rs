//! What a request is about: kube-apiserver's `RequestInfo`, parsed from the path and method.

use api_types::registry::{self, ResourceInfo};

use crate::errors::ApiError;

/// The verb of a resource request, as Kubernetes names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource (as opposed to discovery, health, metrics…).
#[derive(Clone, Debug)]
pub struct ResourceRequest {
    pub info: &'static ResourceInfo,
    pub verb: Verb,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// What a path addresses.
#[derive(Debug)]
pub enum Route {
    Version,
    Health(&'static str),
    Metrics,
    /// `/api` (core) or `/apis`.
    DiscoveryRoot {
        core: bool,
    },
    /// `/apis/<group>`.
    DiscoveryGroup(String),
    /// `/api/v1`, `/apis/<group>/<version>`.
    DiscoveryVersion {
        group: String,
        version: String,
    },
    /// `/openapi/v3` (the index, `""`) or `/openapi/v3/<api/v1|apis/<group>/<version>>`.
    OpenApiV3(String),
    /// `/openapi/v2`.
    OpenApiV2,
    Resource(ResourceRequest),
}

/// Parses a request path and method, as kube-apiserver's `RequestInfoFactory` does.
pub fn route(method: &http::Method, path: &str, watch_param: bool) -> Result<Route, ApiError> {
    let path = path.trim_end_matches('/');
    match path {
        "/version" => return Ok(Route::Version),
        "/healthz" => return Ok(Route::Health("healthz")),
        "/livez" => return Ok(Route::Health("livez")),
        "/readyz" => return Ok(Route::Health("readyz")),
        "/metrics" => return Ok(Route::Metrics),
        "/api" => return Ok(Route::DiscoveryRoot { core: true }),
        "/apis" => return Ok(Route::DiscoveryRoot { core: false }),
        "/openapi/v3" => return Ok(Route::OpenApiV3(String::new())),
        "/openapi/v2" => return Ok(Route::OpenApiV2),
        _ => {}
    }
    if let Some(document) = path.strip_prefix("/openapi/v3/") {
        return Ok(Route::OpenApiV3(document.to_owned()));
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => return Ok(Route::DiscoveryGroup((*group).to_owned())),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::not_found_path()),
    };
    if rest.is_empty() {
        return Ok(Route::DiscoveryVersion {
            group: group.to_owned(),
            version: version.to_owned(),
        });
    }
    let mut rest: Vec<&str> = rest.to_vec();
    let mut watch = watch_param;
    if rest.first() == Some(&"watch") {
        watch = true;
        rest.remove(0);
    }
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        // `namespaces/<ns>` is the namespace itself; `namespaces/<ns>/status|finalize` its
        // subresources; anything else below it is a namespaced resource.
        namespace = Some(rest[1].to_owned());
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest.drain(..2);
        }
    }
    let (resource, name, subresource) = match rest.as_slice() {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
        _ => return Err(ApiError::not_found_path()),
    };
    // A namespace addressed as `namespaces/<name>` is cluster-scoped: its "namespace" is its name.
    if resource == "namespaces" {
        namespace = None;
    }
    let info = registry::by_group_version_resource(group, version, resource)
        .ok_or_else(ApiError::not_found_path)?;
    if let Some(sub) = subresource
        && !info.subresources.contains(&sub)
    {
        return Err(ApiError::not_found_path());
    }
    if info.namespaced != namespace.is_some() && name.is_some() && info.namespaced {
        return Err(ApiError::not_found_path());
    }
    if !info.namespaced && namespace.is_some() {
        return Err(ApiError::not_found_path());
    }
    let verb = match (method.as_str(), name.is_some()) {
        ("GET" | "HEAD", _) if watch => Verb::Watch,
        ("GET" | "HEAD", true) => Verb::Get,
        ("GET" | "HEAD", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => {
            return Err(ApiError::method_not_allowed(
                method.as_str(),
                &info.qualified_resource(),
            ));
        }
    };
    Ok(Route::Resource(ResourceRequest {
        info,
        verb,
        namespace,
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: &str, path: &str) -> ResourceRequest {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        match route(&method, path, path.contains("?watch")).unwrap() {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_parse_like_kube_apiserver() {
        let r = resource("GET", "/api/v1/namespaces/demo/pods");
        assert_eq!(
            (
                r.info.resource,
                r.verb,
                r.namespace.as_deref(),
                r.name.as_deref()
            ),
            ("pods", Verb::List, Some("demo"), None)
        );
        let r = resource("GET", "/api/v1/namespaces/demo");
        assert_eq!(
            (
                r.info.resource,
                r.verb,
                r.namespace.as_deref(),
                r.name.as_deref()
            ),
            ("namespaces", Verb::Get, None, Some("demo"))
        );
        let r = resource("PUT", "/api/v1/namespaces/demo/status");
        assert_eq!(
            (r.info.resource, r.name.as_deref(), r.subresource.as_deref()),
            ("namespaces", Some("demo"), Some("status"))
        );
        let r = resource(
            "PATCH",
            "/apis/apps/v1/namespaces/demo/deployments/web/scale",
        );
        assert_eq!(
            (r.info.resource, r.verb, r.subresource.as_deref()),
            ("deployments", Verb::Patch, Some("scale"))
        );
        let r = resource("GET", "/api/v1/watch/namespaces/demo/pods");
        assert_eq!(r.verb, Verb::Watch);
        let r = resource("GET", "/api/v1/pods");
        assert_eq!((r.verb, r.namespace), (Verb::List, None));
        let r = resource("DELETE", "/api/v1/namespaces/demo/configmaps");
        assert_eq!(r.verb, Verb::DeleteCollection);
        let r = resource("GET", "/api/v1/nodes/n1");
        assert_eq!((r.info.resource, r.name.as_deref()), ("nodes", Some("n1")));
        let r = resource("POST", "/api/v1/namespaces/demo/pods/p/binding");
        assert_eq!(
            (r.verb, r.subresource.as_deref()),
            (Verb::Create, Some("binding"))
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/api/v1/namespaces/demo/widgets",
            "/apis/apps/v1/deployments/x/y/z",
            "/nope",
            "/api/v1/namespaces/demo/pods/p/exec",
            "/api/v1/namespaces/demo/nodes/n",
        ] {
            let err = route(&http::Method::GET, path, false).unwrap_err();
            assert_eq!(err.code, 404, "{path}");
        }
    }
}
