//! OpenAPI v3: `/openapi/v3` (the index) and one document per served group-version
//! (`/openapi/v3/api/v1`, `/openapi/v3/apis/apps/v1`, …), as kube-apiserver publishes them.
//!
//! One source of truth: the paths come from the registry (the same resources, verbs and
//! subresources discovery reports), the schemas from `k8s-openapi`'s generated `JsonSchema`
//! implementations (Kubernetes' own OpenAPI schemas, descriptions included). kubectl reads these
//! documents to decide whether it may send `fieldValidation` (it looks for the kind's item path
//! with a `patch` operation carrying `x-kubernetes-group-version-kind` and a `fieldValidation`
//! parameter) and for `kubectl explain`.
//!
//! The strategic-merge extensions (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`)
//! are not in `k8s-openapi`'s schemas: [`PATCH_STRATEGIES`] holds them, transcribed once from the
//! `patchStrategy`/`patchMergeKey` tags of Kubernetes' `types.go`, and [`annotate`] writes them
//! into the schemas. The published documents carry them, and strategic merge patch
//! (`objects::strategic`) reads them from [`patch_schemas`] — the same annotated schemas — as
//! kube-apiserver's `PatchMetaFromOpenAPI` does.
//!
//! OpenAPI v2 (`/openapi/v2`) is these documents restated: [`crate::openapi_v2`].

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use api_types::k8s;
use api_types::k8s::schemars::JsonSchema;
use api_types::k8s::schemars::SchemaGenerator;
use api_types::k8s::schemars::generate::SchemaSettings;
use api_types::registry::{self, ResourceInfo};
use serde_json::{Map, Value, json};

/// The Kubernetes version the documents describe (as `/version` reports).
const TITLE: &str = "Kubernetes";
const VERSION: &str = "v1.33.0";
const SCHEMAS: &str = "#/components/schemas/";

/// A published document: its bytes and the hash clients put in its URL.
pub struct Document {
    pub hash: String,
    pub body: Vec<u8>,
}

/// The index and every group-version document, built once.
pub struct Documents {
    pub index: Vec<u8>,
    /// By path below `/openapi/v3/` (`api/v1`, `apis/apps/v1`).
    pub by_path: BTreeMap<String, Document>,
}

/// The documents, built on first use.
pub fn documents() -> &'static Documents {
    static DOCUMENTS: OnceLock<Documents> = OnceLock::new();
    DOCUMENTS.get_or_init(build)
}

fn build() -> Documents {
    let mut by_path = BTreeMap::new();
    for gv in registry::group_versions() {
        let path = if gv.group.is_empty() {
            format!("api/{}", gv.version)
        } else {
            format!("apis/{}/{}", gv.group, gv.version)
        };
        let body =
            serde_json::to_vec(&group_version_document(gv.group, gv.version)).unwrap_or_default();
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let hash = format!("{:016X}", hasher.finish());
        by_path.insert(path, Document { hash, body });
    }
    let paths: Map<String, Value> = by_path
        .iter()
        .map(|(path, doc)| {
            (
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
            )
        })
        .collect();
    let index = serde_json::to_vec(&json!({ "paths": paths })).unwrap_or_default();
    Documents { index, by_path }
}

/// The strategic-merge strategies of the served kinds' fields: (schema, property, strategy,
/// merge key), as the `patchStrategy`/`patchMergeKey` struct tags of Kubernetes 1.33 declare them.
/// A list field not named here is replaced whole by a patch ("atomic"); an object field not named
/// here is merged key by key.
pub const PATCH_STRATEGIES: &[(&str, &str, &str, Option<&str>)] = &[
    (META, "finalizers", "merge", None),
    (META, "ownerReferences", "merge", Some("uid")),
    (CORE, "PodSpec.volumes", "merge,retainKeys", Some("name")),
    (CORE, "PodSpec.initContainers", "merge", Some("name")),
    (CORE, "PodSpec.containers", "merge", Some("name")),
    (CORE, "PodSpec.ephemeralContainers", "merge", Some("name")),
    (CORE, "PodSpec.imagePullSecrets", "merge", Some("name")),
    (CORE, "PodSpec.hostAliases", "merge", Some("ip")),
    (
        CORE,
        "PodSpec.topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    (CORE, "PodSpec.schedulingGates", "merge", Some("name")),
    (
        CORE,
        "PodSpec.resourceClaims",
        "merge,retainKeys",
        Some("name"),
    ),
    (CORE, "Container.ports", "merge", Some("containerPort")),
    (CORE, "Container.env", "merge", Some("name")),
    (CORE, "Container.volumeMounts", "merge", Some("mountPath")),
    (CORE, "Container.volumeDevices", "merge", Some("devicePath")),
    (
        CORE,
        "EphemeralContainer.ports",
        "merge",
        Some("containerPort"),
    ),
    (CORE, "EphemeralContainer.env", "merge", Some("name")),
    (
        CORE,
        "EphemeralContainer.volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        CORE,
        "EphemeralContainer.volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (CORE, "PodStatus.conditions", "merge", Some("type")),
    (CORE, "PodStatus.podIPs", "merge", Some("ip")),
    (CORE, "PodStatus.hostIPs", "merge", Some("ip")),
    (
        CORE,
        "PodStatus.resourceClaimStatuses",
        "merge,retainKeys",
        Some("name"),
    ),
    (CORE, "NodeSpec.podCIDRs", "merge", None),
    (CORE, "NodeStatus.conditions", "merge", Some("type")),
    (CORE, "NodeStatus.addresses", "merge", Some("type")),
    (CORE, "NamespaceStatus.conditions", "merge", Some("type")),
    (CORE, "ServiceSpec.ports", "merge", Some("port")),
    (CORE, "ServiceStatus.conditions", "merge", Some("type")),
    (CORE, "ServiceAccount.secrets", "merge", Some("name")),
    (APPS, "DeploymentSpec.strategy", "retainKeys", None),
    (APPS, "DeploymentStatus.conditions", "merge", Some("type")),
    (APPS, "ReplicaSetStatus.conditions", "merge", Some("type")),
];

/// Server-side apply's list-map keys where they are more than the merge key (Kubernetes'
/// `+listMapKey` markers); every other merging list is a map on its merge key, or a set.
const LIST_MAP_KEYS: &[(&str, &str, &[&str])] = &[
    (CORE, "Container.ports", &["containerPort", "protocol"]),
    (
        CORE,
        "EphemeralContainer.ports",
        &["containerPort", "protocol"],
    ),
    (CORE, "ServiceSpec.ports", &["port", "protocol"]),
    (
        CORE,
        "PodSpec.topologySpreadConstraints",
        &["topologyKey", "whenUnsatisfiable"],
    ),
];

/// Structs server-side apply owns whole (`+structType=atomic`).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.ObjectReference",
];

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta.";
const CORE: &str = "io.k8s.api.core.v1.";
const APPS: &str = "io.k8s.api.apps.v1.";

/// Writes [`PATCH_STRATEGIES`] into `schemas` (those whose schema is there), and the list and
/// map types server-side apply follows: a merging list with a merge key is a `map` list on that
/// key (or on its [`LIST_MAP_KEYS`]), one without a `set`, as Kubernetes' schema converter
/// derives them; every other list is `atomic`.
fn annotate(schemas: &mut Map<String, Value>) {
    for name in ATOMIC_STRUCTS {
        if let Some(Value::Object(schema)) = schemas.get_mut(*name) {
            schema.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
    }
    for (prefix, field, strategy, merge_key) in PATCH_STRATEGIES {
        let path = format!("{prefix}{field}");
        let Some((name, property)) = path.rsplit_once('.') else {
            continue;
        };
        let Some(Value::Object(property)) = schemas
            .get_mut(name)
            .and_then(|schema| schema.get_mut("properties"))
            .and_then(|properties| properties.get_mut(property))
        else {
            continue;
        };
        property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        if let Some(key) = merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
        if !strategy.split(',').any(|s| s == "merge") {
            continue;
        }
        match merge_key {
            Some(key) => {
                let keys = LIST_MAP_KEYS
                    .iter()
                    .find(|(p, f, _)| *p == *prefix && *f == *field)
                    .map_or_else(|| vec![*key], |(_, _, keys)| keys.to_vec());
                property.insert("x-kubernetes-list-type".into(), json!("map"));
                property.insert("x-kubernetes-list-map-keys".into(), json!(keys));
            }
            None => {
                property.insert("x-kubernetes-list-type".into(), json!("set"));
            }
        }
    }
}

/// The schemas strategic merge patch walks: every served kind's (and the `Scale` subresource's),
/// with the patch extensions, by name; and each kind's schema name by (group, kind).
pub struct PatchSchemas {
    pub schemas: Map<String, Value>,
    pub kinds: BTreeMap<(&'static str, &'static str), String>,
}

/// The patch schemas, built on first use.
pub fn patch_schemas() -> &'static PatchSchemas {
    static SCHEMAS: OnceLock<PatchSchemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut generator = SchemaSettings::openapi3().into_generator();
        let mut kinds = BTreeMap::new();
        let served = registry::all()
            .iter()
            .map(|info| (info.group, info.kind))
            .chain([
                ("autoscaling", "Scale"),
                ("", "Binding"),
                ("policy", "Eviction"),
            ]);
        for (group, kind) in served {
            if let Some(name) = kind_schema(&mut generator, group, kind) {
                kinds.insert((group, kind), name);
            }
        }
        let mut schemas = generator.take_definitions(true);
        annotate(&mut schemas);
        PatchSchemas { schemas, kinds }
    })
}

/// Registers `T`'s schema (and everything it refers to); returns its name.
fn register<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// The schema of a kind Ferry serves or takes in a subresource, by group and kind.
fn kind_schema(generator: &mut SchemaGenerator, group: &str, kind: &str) -> Option<String> {
    use k8s::api::{apps, autoscaling, coordination, core, events, policy, scheduling};
    Some(match (group, kind) {
        ("", "Namespace") => register::<core::v1::Namespace>(generator),
        ("", "Pod") => register::<core::v1::Pod>(generator),
        ("", "Node") => register::<core::v1::Node>(generator),
        ("", "Service") => register::<core::v1::Service>(generator),
        ("", "Endpoints") => register::<core::v1::Endpoints>(generator),
        ("", "ConfigMap") => register::<core::v1::ConfigMap>(generator),
        ("", "Secret") => register::<core::v1::Secret>(generator),
        ("", "ServiceAccount") => register::<core::v1::ServiceAccount>(generator),
        ("", "Event") => register::<core::v1::Event>(generator),
        ("", "Binding") => register::<core::v1::Binding>(generator),
        ("apps", "Deployment") => register::<apps::v1::Deployment>(generator),
        ("apps", "ReplicaSet") => register::<apps::v1::ReplicaSet>(generator),
        ("coordination.k8s.io", "Lease") => register::<coordination::v1::Lease>(generator),
        ("scheduling.k8s.io", "PriorityClass") => {
            register::<scheduling::v1::PriorityClass>(generator)
        }
        ("events.k8s.io", "Event") => register::<events::v1::Event>(generator),
        ("autoscaling", "Scale") => register::<autoscaling::v1::Scale>(generator),
        ("policy", "Eviction") => register::<policy::v1::Eviction>(generator),
        _ => return None,
    })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMAS}{name}") })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// `CoreV1`, `AppsV1`, `CoordinationV1`: how kube-apiserver names a group-version in
/// operation ids.
fn operation_prefix(group: &str, version: &str) -> String {
    let group = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("{}{}", capitalize(group), capitalize(version))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn query_parameter(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": kind, "uniqueItems": true},
    })
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

/// The query parameters of writes (create, update, patch).
fn write_parameters(patch: bool) -> Vec<Value> {
    let mut params = vec![
        query_parameter(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        ),
        query_parameter(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query_parameter(
            "fieldValidation",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore, - Warn, - Strict.",
        ),
    ];
    if patch {
        params.push(query_parameter(
            "force",
            "boolean",
            "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.",
        ));
    }
    params
}

fn list_parameters() -> Vec<Value> {
    vec![
        query_parameter(
            "allowWatchBookmarks",
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
        ),
        query_parameter(
            "continue",
            "string",
            "The continue option should be set when retrieving more results from the server.",
        ),
        query_parameter(
            "fieldSelector",
            "string",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        query_parameter(
            "labelSelector",
            "string",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        query_parameter(
            "limit",
            "integer",
            "limit is a maximum number of responses to return for a list call.",
        ),
        query_parameter(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
        ),
        query_parameter(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        query_parameter(
            "timeoutSeconds",
            "integer",
            "Timeout for the list/watch call.",
        ),
        query_parameter(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
        ),
    ]
}

fn delete_parameters() -> Vec<Value> {
    vec![
        query_parameter(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted.",
        ),
        query_parameter(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted.",
        ),
        query_parameter(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
        ),
    ]
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn responses(codes: &[(&str, &str)], schema: &Value) -> Value {
    let mut out = Map::new();
    for (code, description) in codes {
        out.insert(
            (*code).to_owned(),
            json!({"description": description, "content": json_content(schema.clone())}),
        );
    }
    out.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

/// The operations kube-apiserver publishes for a resource or subresource.
#[derive(Clone, Copy)]
enum Operation {
    List,
    Create,
    DeleteCollection,
    Get,
    Update,
    Patch,
    Delete,
}

/// What the operations of one path act on.
#[derive(Clone)]
struct Target<'a> {
    /// `CoreV1`, `AppsV1`, … (operation ids).
    prefix: &'a str,
    tag: &'a str,
    gvk: Value,
    /// The rest of the operation id: `NamespacedDeployment`, `NamespacedDeploymentScale`,
    /// `DeploymentForAllNamespaces`.
    name: String,
    /// `a Deployment`, `scale of the specified Deployment`.
    what: String,
    /// The schema taken and returned.
    schema: Value,
    list: Value,
    status: Value,
    delete_options: Value,
    patch: Value,
}

impl Target<'_> {
    /// One operation: its HTTP verb and its object, with kube-apiserver's extensions.
    fn operation(&self, operation: Operation) -> (&'static str, Value) {
        let ok = ("200", "OK");
        let created = ("201", "Created");
        let accepted = ("202", "Accepted");
        let json = |schema: &Value| Some(json_content(schema.clone()));
        let patch_body = json!({
            "application/json-patch+json": {"schema": self.patch},
            "application/merge-patch+json": {"schema": self.patch},
        });
        let (verb, action, id, description, parameters, body, codes, returns): (
            _,
            _,
            _,
            _,
            _,
            _,
            &[(&str, &str)],
            _,
        ) = match operation {
            Operation::List => (
                "get",
                "list",
                "list",
                format!(
                    "list or watch objects of kind {}",
                    self.gvk["kind"].as_str().unwrap_or("")
                ),
                list_parameters(),
                None,
                &[ok],
                &self.list,
            ),
            Operation::Create => (
                "post",
                "post",
                "create",
                format!("create {}", self.what),
                write_parameters(false),
                json(&self.schema),
                &[ok, created, accepted],
                &self.schema,
            ),
            Operation::DeleteCollection => (
                "delete",
                "deletecollection",
                "deleteCollection",
                format!("delete collection of {}", self.what),
                [delete_parameters(), list_parameters()].concat(),
                json(&self.delete_options),
                &[ok],
                &self.status,
            ),
            Operation::Get => (
                "get",
                "get",
                "read",
                format!("read {}", self.what),
                Vec::new(),
                None,
                &[ok],
                &self.schema,
            ),
            Operation::Update => (
                "put",
                "put",
                "replace",
                format!("replace {}", self.what),
                write_parameters(false),
                json(&self.schema),
                &[ok, created],
                &self.schema,
            ),
            Operation::Patch => (
                "patch",
                "patch",
                "patch",
                format!("partially update {}", self.what),
                write_parameters(true),
                Some(patch_body),
                &[ok, created],
                &self.schema,
            ),
            Operation::Delete => (
                "delete",
                "delete",
                "delete",
                format!("delete {}", self.what),
                delete_parameters(),
                json(&self.delete_options),
                &[ok, accepted],
                &self.status,
            ),
        };
        let mut op = json!({
            "description": description,
            "operationId": format!("{id}{}{}", self.prefix, self.name),
            "tags": [self.tag],
            "parameters": parameters,
            "responses": responses(codes, returns),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": self.gvk,
        });
        if let Some(body) = body {
            op["requestBody"] = json!({"content": body, "required": true});
        }
        (verb, op)
    }
}

/// The paths of one resource: collection, item, all-namespaces list, subresources.
fn resource_paths(
    info: &ResourceInfo,
    generator: &mut SchemaGenerator,
    paths: &mut Map<String, Value>,
) -> Option<String> {
    use k8s::apimachinery::pkg::apis::meta::v1 as meta;
    let kind_name = kind_schema(generator, info.group, info.kind)?;
    let base = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    let prefix = operation_prefix(info.group, info.version);
    let group = if info.group.is_empty() {
        "core"
    } else {
        info.group.split('.').next().unwrap_or(info.group)
    };
    let tag = format!("{group}_{}", info.version);
    let scope = if info.namespaced { "Namespaced" } else { "" };
    let kind = info.kind;
    let target = Target {
        prefix: &prefix,
        tag: &tag,
        gvk: gvk(info.group, info.version, kind),
        name: format!("{scope}{kind}"),
        what: format!("the specified {kind}"),
        schema: schema_ref(&kind_name),
        list: schema_ref(&list_schema_name(&kind_name)),
        status: schema_ref(&register::<meta::Status>(generator)),
        delete_options: schema_ref(&register::<meta::DeleteOptions>(generator)),
        patch: schema_ref(&register::<meta::Patch>(generator)),
    };
    let (collection, item) = if info.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", info.resource),
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", info.resource),
        )
    } else {
        (
            format!("{base}/{}", info.resource),
            format!("{base}/{}/{{name}}", info.resource),
        )
    };
    let pretty = query_parameter(
        "pretty",
        "string",
        "If 'true', then the output is pretty printed.",
    );
    let mut scope_parameters = vec![pretty.clone()];
    if info.namespaced {
        scope_parameters.push(path_parameter(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let mut item_parameters = vec![path_parameter("name", &format!("name of the {kind}"))];
    item_parameters.extend(scope_parameters.iter().cloned());
    let served = |candidates: &[(&str, Operation)]| -> Vec<Operation> {
        candidates
            .iter()
            .filter(|(verb, _)| info.has_verb(verb))
            .map(|(_, op)| *op)
            .collect()
    };
    insert_path(
        paths,
        &collection,
        scope_parameters,
        &target,
        &served(&[
            ("list", Operation::List),
            ("create", Operation::Create),
            ("deletecollection", Operation::DeleteCollection),
        ]),
    );
    insert_path(
        paths,
        &item,
        item_parameters.clone(),
        &target,
        &served(&[
            ("get", Operation::Get),
            ("update", Operation::Update),
            ("patch", Operation::Patch),
            ("delete", Operation::Delete),
        ]),
    );
    if info.namespaced && info.has_verb("list") {
        let across = Target {
            name: format!("{kind}ForAllNamespaces"),
            ..target.clone()
        };
        insert_path(
            paths,
            &format!("{base}/{}", info.resource),
            vec![pretty],
            &across,
            &[Operation::List],
        );
    }

    // Subresources, with the kind each takes and returns.
    for sub in info.subresource_infos() {
        let Some(sub_name) = kind_schema(generator, sub.group, sub.kind) else {
            continue;
        };
        let sub_target = Target {
            gvk: gvk(sub.group, sub.version, sub.kind),
            name: format!("{scope}{kind}{}", capitalize(sub.name)),
            what: format!("{} of the specified {kind}", sub.name),
            schema: schema_ref(&sub_name),
            ..target.clone()
        };
        let operations: Vec<Operation> = sub
            .verbs
            .iter()
            .filter_map(|verb| match *verb {
                "get" => Some(Operation::Get),
                "update" => Some(Operation::Update),
                "patch" => Some(Operation::Patch),
                "create" => Some(Operation::Create),
                _ => None,
            })
            .collect();
        insert_path(
            paths,
            &format!("{item}/{}", sub.name),
            item_parameters.clone(),
            &sub_target,
            &operations,
        );
    }
    Some(kind_name)
}

fn insert_path(
    paths: &mut Map<String, Value>,
    path: &str,
    parameters: Vec<Value>,
    target: &Target<'_>,
    operations: &[Operation],
) {
    if operations.is_empty() {
        return;
    }
    let mut item = Map::new();
    for operation in operations {
        let (verb, value) = target.operation(*operation);
        item.insert(verb.to_owned(), value);
    }
    item.insert("parameters".into(), Value::Array(parameters));
    paths.insert(path.to_owned(), Value::Object(item));
}

/// `io.k8s.api.core.v1.Pod` → `io.k8s.api.core.v1.PodList`.
fn list_schema_name(kind_name: &str) -> String {
    format!("{kind_name}List")
}

/// A `<Kind>List` schema, as Kubernetes publishes it.
fn list_schema(kind_name: &str, group: &str, version: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            },
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": {"allOf": [schema_ref(kind_name)], "default": {}},
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {
                "allOf": [schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")],
                "default": {},
                "description": "Standard list metadata.",
            },
        },
        "x-kubernetes-group-version-kind": [gvk(group, version, &format!("{kind}List"))],
    })
}

/// The document of one group-version.
pub fn group_version_document(group: &str, version: &str) -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    register::<k8s::apimachinery::pkg::apis::meta::v1::ListMeta>(&mut generator);
    let mut paths = Map::new();
    let mut kinds = Vec::new();
    for info in registry::resources_in(group, version) {
        if let Some(name) = resource_paths(info, &mut generator, &mut paths) {
            kinds.push((name, info));
        }
    }
    let mut schemas = generator.take_definitions(true);
    annotate(&mut schemas);
    for (name, info) in &kinds {
        if let Some(Value::Object(schema)) = schemas.get_mut(name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(info.group, info.version, info.kind)]),
            );
        }
        schemas.insert(
            list_schema_name(name),
            list_schema(name, info.group, info.version, info.kind),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_patch_strategy_names_a_property_of_a_served_schema() {
        let PatchSchemas { schemas, kinds } = patch_schemas();
        assert!(kinds.contains_key(&("apps", "Deployment")));
        assert!(kinds.contains_key(&("autoscaling", "Scale")));
        for (prefix, field, strategy, merge_key) in PATCH_STRATEGIES {
            let path = format!("{prefix}{field}");
            let (name, property) = path.rsplit_once('.').unwrap();
            let schema = &schemas[name]["properties"][property];
            assert_eq!(schema["x-kubernetes-patch-strategy"], *strategy, "{path}");
            let is_list = schema["type"] == "array";
            assert_eq!(is_list, strategy.contains("merge"), "{path}");
            if let Some(key) = merge_key {
                assert_eq!(schema["x-kubernetes-patch-merge-key"], *key, "{path}");
                let item = schema["items"]["$ref"].as_str().unwrap();
                let item = item.strip_prefix(SCHEMAS).unwrap();
                assert!(
                    schemas[item]["properties"].get(key).is_some(),
                    "{path}: {item} has no {key}"
                );
            }
        }
        let document = group_version_document("apps", "v1");
        let containers = &document["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]
            ["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    }

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn index_lists_every_group_version_with_its_hash() {
        let docs = documents();
        let index: Value = serde_json::from_slice(&docs.index).unwrap();
        for path in [
            "api/v1",
            "apis/apps/v1",
            "apis/coordination.k8s.io/v1",
            "apis/events.k8s.io/v1",
            "apis/scheduling.k8s.io/v1",
        ] {
            let url = index["paths"][path]["serverRelativeURL"].as_str().unwrap();
            let hash = &docs.by_path[path].hash;
            assert_eq!(url, format!("/openapi/v3/{path}?hash={hash}"));
        }
    }

    #[test]
    fn patch_operations_carry_the_kind_and_field_validation() {
        let doc = group_version_document("apps", "v1");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        let core = group_version_document("", "v1");
        let ns = &core["paths"]["/api/v1/namespaces/{name}"]["patch"];
        assert_eq!(ns["x-kubernetes-group-version-kind"]["kind"], "Namespace");
        // A cluster-scoped kind of a named group: kube-apiserver's operation ids and GVK.
        let scheduling = group_version_document("scheduling.k8s.io", "v1");
        let pc = &scheduling["paths"]["/apis/scheduling.k8s.io/v1/priorityclasses/{name}"]["patch"];
        assert_eq!(
            pc["x-kubernetes-group-version-kind"],
            json!({"group": "scheduling.k8s.io", "version": "v1", "kind": "PriorityClass"})
        );
        assert_eq!(pc["operationId"], "patchSchedulingV1PriorityClass");
        assert!(
            scheduling["components"]["schemas"]["io.k8s.api.scheduling.v1.PriorityClass"]
                ["properties"]["value"]["description"]
                .as_str()
                .unwrap()
                .starts_with("value represents the integer value of this priority class")
        );
        let scale =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["put"];
        assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
        assert_eq!(
            scale["operationId"],
            "replaceAppsV1NamespacedDeploymentScale"
        );
    }

    #[test]
    fn schemas_are_kubernetes_own_and_every_ref_resolves() {
        for (group, version) in [
            ("", "v1"),
            ("apps", "v1"),
            ("coordination.k8s.io", "v1"),
            ("events.k8s.io", "v1"),
            ("scheduling.k8s.io", "v1"),
        ] {
            let doc = group_version_document(group, version);
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            let mut all = Vec::new();
            refs(&doc, &mut all);
            assert!(!all.is_empty());
            for r in all {
                let name = r.strip_prefix(SCHEMAS).unwrap_or_else(|| panic!("{r}"));
                assert!(
                    schemas.contains_key(name),
                    "{group}/{version}: {r} is missing"
                );
            }
        }
        let doc = group_version_document("apps", "v1");
        let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        let strategy = &doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentStrategy"];
        assert!(
            strategy["properties"]["type"]["description"]
                .as_str()
                .unwrap()
                .contains("Recreate")
        );
    }
}
