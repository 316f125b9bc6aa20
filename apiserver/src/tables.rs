//! Server-side `Table` conversion for `kubectl get`, as kube-apiserver does it.
//!
//! kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…` and prints the
//! cells the server computes. This module is a port of
//! `k8s.io/kubernetes/pkg/printers/internalversion/printers.go` (column definitions, their
//! descriptions and the cell logic per kind) and of the parts of the apiserver around it:
//! content negotiation of the `as=Table` media type, `includeObject`, the
//! `PartialObjectMetadata` row objects and `duration.HumanDuration` for ages.
//!
//! The server always converts with `Wide: true` (as kube-apiserver does): every row carries
//! the `priority: 1` cells too, and kubectl hides them unless `-o wide`.
//!
//! Everything here is pure code over `serde_json::Value`: missing or malformed fields give
//! the same defaults the Kubernetes defaulting would have (`replicas: 1`, `type: ClusterIP`,
//! `protocol: TCP`, …) or empty cells, never a panic.

use std::collections::BTreeSet;

use api_types::json::At;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------------------------

/// Which `meta.k8s.io` version of `Table` the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableVersion {
    V1,
    V1Beta1,
}

impl TableVersion {
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`: the `apiVersion` of the Table and of its
    /// `PartialObjectMetadata` rows.
    pub fn api_version(self) -> &'static str {
        match self {
            TableVersion::V1 => "meta.k8s.io/v1",
            TableVersion::V1Beta1 => "meta.k8s.io/v1beta1",
        }
    }

    /// The inverse of [`TableVersion::api_version`].
    pub fn from_api_version(api_version: &str) -> Option<Self> {
        match api_version {
            "meta.k8s.io/v1" => Some(TableVersion::V1),
            "meta.k8s.io/v1beta1" => Some(TableVersion::V1Beta1),
            _ => None,
        }
    }
}

/// The `Content-Type` of a Table response.
pub fn content_type(version: TableVersion) -> &'static str {
    match version {
        TableVersion::V1 => "application/json;as=Table;v=v1;g=meta.k8s.io",
        TableVersion::V1Beta1 => "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
    }
}

/// Whether the `Accept` header asks for a Table, negotiated as kube-apiserver does
/// (`negotiation.NegotiateMediaTypeOptions` over `goautoneg.ParseAccept`).
///
/// The clauses are ordered by `q` (highest first; wildcards after specific types at equal
/// `q`, otherwise in the order sent) and the first acceptable one wins:
/// - `application/json` (or `application/*`, `*/*`) with `as=Table;g=meta.k8s.io;v=v1|v1beta1`,
///   parameters in any order: a Table of that version;
/// - a clause without `as` that the server can serve (`application/json`, `application/yaml`,
///   `application/vnd.kubernetes.protobuf`, `application/cbor`, wildcards): the plain object,
///   so `None`;
/// - anything else (`as=Table` on a non-JSON type, another `as` such as
///   `PartialObjectMetadata`, a wrong `g`/`v`, `q=0`, an unknown type) is skipped.
///
/// `None` too when there is no header or nothing matched.
pub fn wants_table(accept: Option<&str>) -> Option<TableVersion> {
    let accept = accept?;
    let mut clauses: Vec<Clause<'_>> = accept.split(',').filter_map(Clause::parse).collect();
    // goautoneg's order: q descending, then specific before wildcard type, then specific before
    // wildcard subtype. A stable sort keeps the header's order otherwise, as Go's insertion
    // sort does for short lists.
    clauses.sort_by(|a, b| {
        b.q.partial_cmp(&a.q)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then((a.ty == "*").cmp(&(b.ty == "*")))
            .then((a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    for clause in &clauses {
        if clause.q <= 0.0 {
            continue;
        }
        let json_like = (clause.ty == "*" && clause.subtype == "*")
            || (clause.ty.eq_ignore_ascii_case("application")
                && (clause.subtype == "*" || clause.subtype.eq_ignore_ascii_case("json")));
        match clause.param("as") {
            None => {
                let servable = json_like
                    || (clause.ty.eq_ignore_ascii_case("application")
                        && ["yaml", "vnd.kubernetes.protobuf", "cbor"]
                            .iter()
                            .any(|s| clause.subtype.eq_ignore_ascii_case(s)));
                if servable && clause.param("g").is_none() && clause.param("v").is_none() {
                    return None;
                }
            }
            Some("Table") if json_like && clause.param("g") == Some("meta.k8s.io") => {
                match clause.param("v") {
                    Some("v1") => return Some(TableVersion::V1),
                    Some("v1beta1") => return Some(TableVersion::V1Beta1),
                    _ => {}
                }
            }
            Some(_) => {}
        }
    }
    None
}

/// One entry of an `Accept` header.
struct Clause<'a> {
    ty: &'a str,
    subtype: &'a str,
    q: f64,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> Clause<'a> {
    fn parse(raw: &'a str) -> Option<Self> {
        let mut parts = raw.split(';');
        let range = parts.next()?.trim();
        if range.is_empty() {
            return None;
        }
        let (ty, subtype) = match range.split_once('/') {
            Some((t, s)) => (t.trim(), s.trim()),
            // goautoneg reads a bare "*" as "*/*".
            None if range == "*" => ("*", "*"),
            None => return None,
        };
        let mut q = 1.0;
        let mut params = Vec::new();
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k == "q" {
                q = v.parse().unwrap_or(1.0);
            } else {
                params.push((k, v));
            }
        }
        Some(Clause {
            ty,
            subtype,
            q,
            params,
        })
    }

    fn param(&self, key: &str) -> Option<&'a str> {
        self.params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// What each row's `object` holds (`?includeObject=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IncludeObject {
    /// `"object": null`.
    None,
    /// A `PartialObjectMetadata` with the object's metadata (the default).
    #[default]
    Metadata,
    /// The whole object, as stored.
    Object,
}

/// Reads the `includeObject` query parameter: `None`, `Metadata` (also the default for a
/// missing, empty or unknown value) or `Object`.
pub fn include_object_param(value: Option<&str>) -> IncludeObject {
    match value {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

// ---------------------------------------------------------------------------------------------
// Tables and rows
// ---------------------------------------------------------------------------------------------

/// Everything about a Table besides its rows' source objects.
#[derive(Clone, Copy, Debug)]
pub struct TableOptions<'a> {
    pub version: TableVersion,
    pub include_object: IncludeObject,
    /// False on watch events after the first: `columnDefinitions` is then `[]`.
    pub include_columns: bool,
    /// `metadata.resourceVersion`; left out when empty.
    pub resource_version: &'a str,
    /// `metadata.continue`; left out when `None` or empty.
    pub continue_token: Option<&'a str>,
    /// `metadata.remainingItemCount`.
    pub remaining_item_count: Option<i64>,
}

/// A `Table` of `objs` (one for a GET or a watch event, a page for a list), with
/// `PartialObjectMetadata` row objects.
#[allow(clippy::too_many_arguments)]
pub fn table(
    resource: &str,
    group: &str,
    objs: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<i64>,
    include_columns: bool,
    now: Timestamp,
    version: TableVersion,
) -> Value {
    let options = TableOptions {
        version,
        include_object: IncludeObject::Metadata,
        include_columns,
        resource_version,
        continue_token,
        remaining_item_count: remaining,
    };
    table_with(resource, group, objs, &options, now)
}

/// [`table`] with every option, including `includeObject`.
pub fn table_with(
    resource: &str,
    group: &str,
    objs: &[Value],
    options: &TableOptions<'_>,
    now: Timestamp,
) -> Value {
    let mut metadata = Map::new();
    if !options.resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), json!(options.resource_version));
    }
    if let Some(c) = options.continue_token.filter(|c| !c.is_empty()) {
        metadata.insert("continue".into(), json!(c));
    }
    if let Some(n) = options.remaining_item_count {
        metadata.insert("remainingItemCount".into(), json!(n));
    }
    let columns = if options.include_columns {
        column_definitions(resource, group)
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            row_with(
                resource,
                group,
                o,
                now,
                options.include_object,
                options.version,
            )
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": options.version.api_version(),
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// One row: `{"cells": [...], "object": PartialObjectMetadata}` (plus `conditions` for a
/// finished pod), with `meta.k8s.io/v1` row objects.
pub fn row(resource: &str, group: &str, obj: &Value, now: Timestamp) -> Value {
    row_with(
        resource,
        group,
        obj,
        now,
        IncludeObject::Metadata,
        TableVersion::V1,
    )
}

/// [`row`] with a choice of row object and Table version.
pub fn row_with(
    resource: &str,
    group: &str,
    obj: &Value,
    now: Timestamp,
    include: IncludeObject,
    version: TableVersion,
) -> Value {
    let (cells, conditions) = cells(Kind::of(resource, group), group, obj, now);
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => partial_object_metadata(obj, version),
    };
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    if let Some(c) = conditions {
        row.insert("conditions".into(), c);
    }
    row.insert("object".into(), object);
    Value::Object(row)
}

/// `{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{…}}`: the
/// object's metadata without `managedFields`.
fn partial_object_metadata(obj: &Value, version: TableVersion) -> Value {
    let mut metadata = obj
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    metadata.remove("managedFields");
    json!({"kind": "PartialObjectMetadata", "apiVersion": version.api_version(), "metadata": metadata})
}

// ---------------------------------------------------------------------------------------------
// Kinds and their columns
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pod,
    ReplicationController,
    ReplicaSet,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Endpoints,
    EndpointSlice,
    Node,
    Event,
    Namespace,
    Secret,
    ServiceAccount,
    ConfigMap,
    Lease,
    PriorityClass,
    /// Everything else: Name, Age.
    Default,
}

impl Kind {
    fn of(resource: &str, group: &str) -> Kind {
        match (group, resource) {
            ("", "pods") => Kind::Pod,
            ("", "replicationcontrollers") => Kind::ReplicationController,
            ("apps" | "extensions", "replicasets") => Kind::ReplicaSet,
            ("apps" | "extensions", "deployments") => Kind::Deployment,
            ("apps", "statefulsets") => Kind::StatefulSet,
            ("apps" | "extensions", "daemonsets") => Kind::DaemonSet,
            ("batch", "jobs") => Kind::Job,
            ("batch", "cronjobs") => Kind::CronJob,
            ("", "services") => Kind::Service,
            ("", "endpoints") => Kind::Endpoints,
            ("discovery.k8s.io", "endpointslices") => Kind::EndpointSlice,
            ("", "nodes") => Kind::Node,
            ("" | "events.k8s.io", "events") => Kind::Event,
            ("", "namespaces") => Kind::Namespace,
            ("", "secrets") => Kind::Secret,
            ("", "serviceaccounts") => Kind::ServiceAccount,
            ("", "configmaps") => Kind::ConfigMap,
            ("coordination.k8s.io", "leases") => Kind::Lease,
            ("scheduling.k8s.io", "priorityclasses") => Kind::PriorityClass,
            _ => Kind::Default,
        }
    }
}

/// One `TableColumnDefinition`.
struct Col {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i64,
}

const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Col = Col {
    name: "Name",
    ty: "string",
    format: "name",
    description: D_NAME,
    priority: 0,
};
const AGE: Col = col("Age", "string", D_AGE);
const CONTAINERS: Col = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Col = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

// Descriptions: the SwaggerDoc strings Kubernetes uses for these columns.
const D_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const D_AGE: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const D_POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
const D_NODE_NAME: &str = "NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements.";
const D_NOMINATED_NODE: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const D_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
const D_NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
const D_RC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const D_RC_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const D_RC_READY: &str = "The number of ready replicas for this replication controller.";
const D_RC_SELECTOR: &str = "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_RS_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const D_RS_STATUS_REPLICAS: &str = "Replicas is the most recently oberved number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const D_RS_READY: &str = "The number of ready replicas for this replica set.";
const D_RS_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_DEPLOY_UPDATED: &str = "Total number of non-terminated pods targeted by this deployment that have the desired template spec.";
const D_DEPLOY_AVAILABLE: &str = "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.";
const D_DEPLOY_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.";
const D_DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const D_DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const D_DS_READY: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.";
const D_DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
const D_DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
const D_DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_JOB_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
const D_JOB_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_CJ_SCHEDULE: &str = "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
const D_CJ_TIMEZONE: &str = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
const D_CJ_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
const D_CJ_ACTIVE: &str = "A list of pointers to currently running jobs.";
const D_CJ_LAST_SCHEDULE: &str =
    "Information when was the last time the job was successfully scheduled.";
const D_SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const D_SVC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const D_SVC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
const D_SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const D_SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
const D_ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
const D_SLICE_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.";
const D_SLICE_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.";
const D_SLICE_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";
const D_NODE_VERSION: &str = "Kubelet Version reported by the node.";
const D_NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/concepts/nodes/node/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const D_NODE_OS_IMAGE: &str =
    "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
const D_NODE_KERNEL: &str =
    "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
const D_NODE_RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
const D_EVENT_LAST: &str =
    "The time at which the most recent occurrence of this event was recorded.";
const D_EVENT_TYPE: &str =
    "Type of this event (Normal, Warning), new types could be added in the future";
const D_EVENT_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
const D_EVENT_OBJECT: &str = "The object that this event is about.";
const D_EVENT_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
const D_EVENT_SOURCE: &str =
    "The component reporting this event. Should be a short machine understandable string.";
const D_EVENT_MESSAGE: &str = "A human-readable description of the status of this operation.";
const D_EVENT_FIRST: &str =
    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
const D_EVENT_COUNT: &str = "The number of times this event has occurred.";
const D_SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
const D_SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
const D_SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
const D_CONFIGMAP_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const D_PC_VALUE: &str = "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.";
const D_PC_GLOBAL_DEFAULT: &str = "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.";
const D_PC_PREEMPTION_POLICY: &str = "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.";
const D_LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";

const POD_COLUMNS: &[Col] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", D_POD_IP),
    wide("Node", "string", D_NODE_NAME),
    wide("Nominated Node", "string", D_NOMINATED_NODE),
    wide("Readiness Gates", "string", D_READINESS_GATES),
];

const RC_COLUMNS: &[Col] = &[
    NAME,
    col("Desired", "integer", D_RC_REPLICAS),
    col("Current", "integer", D_RC_STATUS_REPLICAS),
    col("Ready", "integer", D_RC_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", D_RC_SELECTOR),
];

const RS_COLUMNS: &[Col] = &[
    NAME,
    col("Desired", "integer", D_RS_REPLICAS),
    col("Current", "integer", D_RS_STATUS_REPLICAS),
    col("Ready", "integer", D_RS_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", D_RS_SELECTOR),
];

// Kubernetes declares Up-to-date and Available as "string" columns with integer cells.
const DEPLOYMENT_COLUMNS: &[Col] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", D_DEPLOY_UPDATED),
    col("Available", "string", D_DEPLOY_AVAILABLE),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", D_DEPLOY_SELECTOR),
];

const STATEFULSET_COLUMNS: &[Col] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

const DAEMONSET_COLUMNS: &[Col] = &[
    NAME,
    col("Desired", "integer", D_DS_DESIRED),
    col("Current", "integer", D_DS_CURRENT),
    col("Ready", "integer", D_DS_READY),
    col("Up-to-date", "integer", D_DS_UPDATED),
    col("Available", "integer", D_DS_AVAILABLE),
    col("Node Selector", "string", D_NODE_SELECTOR),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", D_DS_SELECTOR),
];

const JOB_COLUMNS: &[Col] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", D_JOB_SUCCEEDED),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", D_JOB_SELECTOR),
];

const CRONJOB_COLUMNS: &[Col] = &[
    NAME,
    col("Schedule", "string", D_CJ_SCHEDULE),
    col("Timezone", "string", D_CJ_TIMEZONE),
    col("Suspend", "boolean", D_CJ_SUSPEND),
    col("Active", "integer", D_CJ_ACTIVE),
    col("Last Schedule", "string", D_CJ_LAST_SCHEDULE),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", D_JOB_SELECTOR),
];

const SERVICE_COLUMNS: &[Col] = &[
    NAME,
    col("Type", "string", D_SVC_TYPE),
    col("Cluster-IP", "string", D_SVC_CLUSTER_IP),
    col("External-IP", "string", D_SVC_EXTERNAL_IPS),
    col("Port(s)", "string", D_SVC_PORTS),
    AGE,
    wide("Selector", "string", D_SVC_SELECTOR),
];

const ENDPOINTS_COLUMNS: &[Col] = &[NAME, col("Endpoints", "string", D_ENDPOINTS_SUBSETS), AGE];

const ENDPOINTSLICE_COLUMNS: &[Col] = &[
    NAME,
    col("AddressType", "string", D_SLICE_ADDRESS_TYPE),
    col("Ports", "string", D_SLICE_PORTS),
    col("Endpoints", "string", D_SLICE_ENDPOINTS),
    AGE,
];

const NODE_COLUMNS: &[Col] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", D_NODE_VERSION),
    wide("Internal-IP", "string", D_NODE_ADDRESSES),
    wide("External-IP", "string", D_NODE_ADDRESSES),
    wide("OS-Image", "string", D_NODE_OS_IMAGE),
    wide("Kernel-Version", "string", D_NODE_KERNEL),
    wide("Container-Runtime", "string", D_NODE_RUNTIME),
];

const EVENT_COLUMNS: &[Col] = &[
    col("Last Seen", "string", D_EVENT_LAST),
    col("Type", "string", D_EVENT_TYPE),
    col("Reason", "string", D_EVENT_REASON),
    col("Object", "string", D_EVENT_OBJECT),
    wide("Subobject", "string", D_EVENT_FIELD_PATH),
    wide("Source", "string", D_EVENT_SOURCE),
    col("Message", "string", D_EVENT_MESSAGE),
    wide("First Seen", "string", D_EVENT_FIRST),
    wide("Count", "string", D_EVENT_COUNT),
    Col {
        name: "Name",
        ty: "string",
        format: "name",
        description: D_NAME,
        priority: 1,
    },
];

const NAMESPACE_COLUMNS: &[Col] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];
const SECRET_COLUMNS: &[Col] = &[
    NAME,
    col("Type", "string", D_SECRET_TYPE),
    col("Data", "string", D_SECRET_DATA),
    AGE,
];
const SERVICEACCOUNT_COLUMNS: &[Col] = &[NAME, col("Secrets", "string", D_SA_SECRETS), AGE];
const CONFIGMAP_COLUMNS: &[Col] = &[NAME, col("Data", "string", D_CONFIGMAP_DATA), AGE];
const LEASE_COLUMNS: &[Col] = &[NAME, col("Holder", "string", D_LEASE_HOLDER), AGE];
/// Since Kubernetes 1.32 PreemptionPolicy is a default column, after Age.
const PRIORITY_CLASS_COLUMNS: &[Col] = &[
    NAME,
    col("Value", "integer", D_PC_VALUE),
    col("Global-Default", "boolean", D_PC_GLOBAL_DEFAULT),
    AGE,
    col("PreemptionPolicy", "string", D_PC_PREEMPTION_POLICY),
];
const DEFAULT_COLUMNS: &[Col] = &[NAME, AGE];

fn columns_of(kind: Kind) -> &'static [Col] {
    match kind {
        Kind::Pod => POD_COLUMNS,
        Kind::ReplicationController => RC_COLUMNS,
        Kind::ReplicaSet => RS_COLUMNS,
        Kind::Deployment => DEPLOYMENT_COLUMNS,
        Kind::StatefulSet => STATEFULSET_COLUMNS,
        Kind::DaemonSet => DAEMONSET_COLUMNS,
        Kind::Job => JOB_COLUMNS,
        Kind::CronJob => CRONJOB_COLUMNS,
        Kind::Service => SERVICE_COLUMNS,
        Kind::Endpoints => ENDPOINTS_COLUMNS,
        Kind::EndpointSlice => ENDPOINTSLICE_COLUMNS,
        Kind::Node => NODE_COLUMNS,
        Kind::Event => EVENT_COLUMNS,
        Kind::Namespace => NAMESPACE_COLUMNS,
        Kind::Secret => SECRET_COLUMNS,
        Kind::ServiceAccount => SERVICEACCOUNT_COLUMNS,
        Kind::ConfigMap => CONFIGMAP_COLUMNS,
        Kind::Lease => LEASE_COLUMNS,
        Kind::PriorityClass => PRIORITY_CLASS_COLUMNS,
        Kind::Default => DEFAULT_COLUMNS,
    }
}

/// The `columnDefinitions` for a resource (plural) in a group (`""` for core): each
/// `{"name","type","format","description","priority"}` as Kubernetes declares it. Resources
/// without a printer get Name and Age.
pub fn column_definitions(resource: &str, group: &str) -> Vec<Value> {
    columns_of(Kind::of(resource, group))
        .iter()
        .map(|c| json!({"name": c.name, "type": c.ty, "format": c.format, "description": c.description, "priority": c.priority}))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------------

/// The cells of one row, and the row's `conditions` when it has any.
fn cells(kind: Kind, group: &str, obj: &Value, now: Timestamp) -> (Vec<Value>, Option<Value>) {
    let name = json!(text(obj, "/metadata/name"));
    let age = json!(age(obj, now));
    let cells = match kind {
        Kind::Pod => return pod_cells(obj, now),
        Kind::ReplicationController => {
            let template_containers = containers(obj, "/spec/template/spec/containers");
            let (names, images) = layout_containers(template_containers);
            vec![
                name,
                json!(replicas(obj)),
                json!(int(obj, "/status/replicas")),
                json!(int(obj, "/status/readyReplicas")),
                age,
                json!(names),
                json!(images),
                json!(format_labels(obj.at("/spec/selector"))),
            ]
        }
        Kind::ReplicaSet => {
            let (names, images) =
                layout_containers(containers(obj, "/spec/template/spec/containers"));
            vec![
                name,
                json!(replicas(obj)),
                json!(int(obj, "/status/replicas")),
                json!(int(obj, "/status/readyReplicas")),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(obj.at("/spec/selector"))),
            ]
        }
        Kind::Deployment => {
            let (names, images) =
                layout_containers(containers(obj, "/spec/template/spec/containers"));
            let selector = match label_selector_string(obj.at("/spec/selector")) {
                Ok(s) => s,
                Err(()) => "<invalid>".to_owned(),
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    replicas(obj)
                )),
                json!(int(obj, "/status/updatedReplicas")),
                json!(int(obj, "/status/availableReplicas")),
                age,
                json!(names),
                json!(images),
                json!(selector),
            ]
        }
        Kind::StatefulSet => {
            let (names, images) =
                layout_containers(containers(obj, "/spec/template/spec/containers"));
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    replicas(obj)
                )),
                age,
                json!(names),
                json!(images),
            ]
        }
        Kind::DaemonSet => {
            let (names, images) =
                layout_containers(containers(obj, "/spec/template/spec/containers"));
            vec![
                name,
                json!(int(obj, "/status/desiredNumberScheduled")),
                json!(int(obj, "/status/currentNumberScheduled")),
                json!(int(obj, "/status/numberReady")),
                json!(int(obj, "/status/updatedNumberScheduled")),
                json!(int(obj, "/status/numberAvailable")),
                json!(format_labels(obj.at("/spec/template/spec/nodeSelector"))),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(obj.at("/spec/selector"))),
            ]
        }
        Kind::Job => job_cells(obj, now, name, age),
        Kind::CronJob => {
            let last_schedule = match obj.at("/status/lastScheduleTime").filter(|v| !v.is_null()) {
                Some(t) => translate_since(timestamp(t), now),
                None => "<none>".to_owned(),
            };
            let time_zone = obj
                .at("/spec/timeZone")
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let suspend = match obj.at("/spec/suspend").and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let (names, images) = layout_containers(containers(
                obj,
                "/spec/jobTemplate/spec/template/spec/containers",
            ));
            vec![
                name,
                json!(text(obj, "/spec/schedule")),
                json!(time_zone),
                json!(suspend),
                json!(list(obj, "/status/active").len()),
                json!(last_schedule),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(
                    obj.at("/spec/jobTemplate/spec/selector")
                )),
            ]
        }
        Kind::Service => service_cells(obj, name, age),
        Kind::Endpoints => vec![name, json!(format_endpoints(obj)), age],
        Kind::EndpointSlice => {
            vec![
                name,
                json!(text(obj, "/addressType")),
                json!(format_slice_ports(obj)),
                json!(format_slice_endpoints(obj)),
                age,
            ]
        }
        Kind::Node => node_cells(obj, name, age),
        Kind::Event => event_cells(obj, group, now),
        Kind::Namespace => {
            let phase = obj
                .at("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Active");
            vec![name, json!(phase), age]
        }
        Kind::Secret => {
            let ty = obj
                .get("type")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .unwrap_or("Opaque");
            vec![name, json!(ty), json!(map_len(obj, "/data")), age]
        }
        Kind::ServiceAccount => vec![name, json!(list(obj, "/secrets").len()), age],
        Kind::ConfigMap => vec![
            name,
            json!(map_len(obj, "/data") + map_len(obj, "/binaryData")),
            age,
        ],
        Kind::Lease => vec![name, json!(text(obj, "/spec/holderIdentity")), age],
        Kind::PriorityClass => vec![
            name,
            json!(int(obj, "/value")),
            json!(
                obj.get("globalDefault")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            age,
            json!(text(obj, "/preemptionPolicy")),
        ],
        Kind::Default => vec![name, age],
    };
    (cells, None)
}

/// printPod: Name, Ready, Status, Restarts, Age, IP, Node, Nominated Node, Readiness Gates.
fn pod_cells(pod: &Value, now: Timestamp) -> (Vec<Value>, Option<Value>) {
    let init_specs = list(pod, "/spec/initContainers");
    let conditions = list(pod, "/status/conditions");
    let mut total = list(pod, "/spec/containers").len();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut restartable_init_restarts = 0i64;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = text(pod, "/status/phase");
    let mut reason = match text(pod, "/status/reason") {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_owned();
    }

    let row_conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]),
        ),
        _ => None,
    };

    // A sidecar: an init container with restartPolicy Always (the last spec of a name wins,
    // as in Kubernetes' map).
    let restartable = |name: &str| {
        init_specs
            .iter()
            .rev()
            .find(|c| text(c, "/name") == name)
            .is_some_and(|c| text(c, "/restartPolicy") == "Always")
    };
    total += init_specs
        .iter()
        .filter(|c| text(c, "/restartPolicy") == "Always")
        .count();

    let mut initializing = false;
    for (i, status) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += int(status, "/restartCount");
        let last_finished = last_termination(status);
        later(&mut last_restart, last_finished);
        let is_restartable = restartable(text(status, "/name"));
        if is_restartable {
            restartable_init_restarts += int(status, "/restartCount");
            later(&mut last_restartable_init_restart, last_finished);
        }
        let terminated = object_at(status, "/state/terminated");
        let waiting = object_at(status, "/state/waiting");
        if terminated.is_some_and(|t| int(t, "/exitCode") == 0) {
            continue;
        }
        if is_restartable && status.get("started").and_then(Value::as_bool) == Some(true) {
            if status.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match text(t, "/reason") {
                "" if int(t, "/signal") != 0 => format!("Init:Signal:{}", int(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int(t, "/exitCode")),
                r => format!("Init:{r}"),
            };
        } else if let Some(w) =
            waiting.filter(|w| !matches!(text(w, "/reason"), "" | "PodInitializing"))
        {
            reason = format!("Init:{}", text(w, "/reason"));
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| text(c, "/type") == "Initialized")
        .is_some_and(|c| text(c, "/status") == "True");
    if !initializing || initialized {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for status in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(status, "/restartCount");
            later(&mut last_restart, last_termination(status));
            let waiting = object_at(status, "/state/waiting");
            let terminated = object_at(status, "/state/terminated");
            if let Some(w) = waiting.filter(|w| !text(w, "/reason").is_empty()) {
                reason = text(w, "/reason").to_owned();
            } else if let Some(t) = terminated {
                reason = match text(t, "/reason") {
                    "" if int(t, "/signal") != 0 => format!("Signal:{}", int(t, "/signal")),
                    "" => format!("ExitCode:{}", int(t, "/exitCode")),
                    r => r.to_owned(),
                };
            } else if status.get("ready").and_then(Value::as_bool) == Some(true)
                && object_at(status, "/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        // Back to "Running" while a container still runs.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }

    let deleting = pod
        .at("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if deleting && text(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if deleting && !matches!(phase, "Failed" | "Succeeded") {
        reason = "Terminating".to_owned();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", translate_since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let pod_ip = match list(pod, "/status/podIPs").first() {
        Some(ip) => text(ip, "/ip"),
        None => text(pod, "/status/podIP"),
    };
    let readiness_gates = list(pod, "/spec/readinessGates");
    let gates = if readiness_gates.is_empty() {
        "<none>".to_owned()
    } else {
        let true_conditions = readiness_gates
            .iter()
            .filter(|gate| {
                let ty = text(gate, "/conditionType");
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == ty)
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{}/{}", true_conditions, readiness_gates.len())
    };

    let cells = vec![
        json!(text(pod, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(age(pod, now)),
        json!(or_none(pod_ip)),
        json!(or_none(text(pod, "/spec/nodeName"))),
        json!(or_none(text(pod, "/status/nominatedNodeName"))),
        json!(gates),
    ];
    (cells, row_conditions)
}

/// `lastState.terminated.finishedAt` of a container status, when it has one.
fn last_termination(status: &Value) -> Option<Timestamp> {
    object_at(status, "/lastState/terminated")
        .and_then(|t| t.get("finishedAt"))
        .and_then(timestamp)
}

/// Keeps the later of two times.
fn later(current: &mut Option<Timestamp>, candidate: Option<Timestamp>) {
    if let Some(c) = candidate
        && current.is_none_or(|t| t < c)
    {
        *current = Some(c);
    }
}

/// printJob: Name, Status, Completions, Duration, Age, Containers, Images, Selector.
fn job_cells(job: &Value, now: Timestamp, name: Value, age: Value) -> Vec<Value> {
    let succeeded = int(job, "/status/succeeded");
    let completions = match job.at("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match job
            .at("/spec/parallelism")
            .and_then(Value::as_i64)
            .unwrap_or(0)
        {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = job.at("/status/startTime").and_then(timestamp);
    let completion = job.at("/status/completionTime").and_then(timestamp);
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now.duration_since(s)),
        (Some(s), Some(c)) => human_duration(c.duration_since(s)),
    };
    let conditions = list(job, "/status/conditions");
    // hasJobCondition: the first condition of the type decides.
    let has = |ty: &str| {
        conditions
            .iter()
            .find(|c| text(c, "/type") == ty)
            .is_some_and(|c| text(c, "/status") == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if job
        .at("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = layout_containers(containers(job, "/spec/template/spec/containers"));
    vec![
        name,
        json!(status),
        json!(completions),
        json!(duration),
        age,
        json!(names),
        json!(images),
        json!(format_label_selector(job.at("/spec/selector"))),
    ]
}

/// printService: Name, Type, Cluster-IP, External-IP, Port(s), Age, Selector.
fn service_cells(svc: &Value, name: Value, age: Value) -> Vec<Value> {
    let svc_type = match text(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    // Internally clusterIPs is filled from clusterIP when only the latter is set.
    let cluster_ip = match list(svc, "/spec/clusterIPs").first() {
        Some(ip) => ip.as_str().unwrap_or_default().to_owned(),
        None => match text(svc, "/spec/clusterIP") {
            "" => "<none>".to_owned(),
            ip => ip.to_owned(),
        },
    };
    let external_ips: Vec<&str> = list(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" if !external_ips.is_empty() => external_ips.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_owned(),
        "LoadBalancer" => {
            // Wide output: never clipped to 16 characters.
            let ingress: BTreeSet<&str> = list(svc, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| match (text(i, "/ip"), text(i, "/hostname")) {
                    ("", "") => None,
                    ("", host) => Some(host),
                    (ip, _) => Some(ip),
                })
                .collect();
            let mut all: Vec<&str> = ingress.into_iter().collect();
            if !external_ips.is_empty() {
                all.extend(external_ips.iter().copied());
                all.join(",")
            } else if !all.is_empty() {
                all.join(",")
            } else {
                "<pending>".to_owned()
            }
        }
        "ExternalName" => text(svc, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    };
    let ports: Vec<String> = list(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = match text(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            match int(p, "/nodePort") {
                node_port if node_port > 0 => {
                    format!("{}:{}/{}", int(p, "/port"), node_port, protocol)
                }
                _ => format!("{}/{}", int(p, "/port"), protocol),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports.join(",")
    };
    vec![
        name,
        json!(svc_type),
        json!(cluster_ip),
        json!(external),
        json!(ports),
        age,
        json!(format_labels(svc.at("/spec/selector"))),
    ]
}

/// printNode: Name, Status, Roles, Age, Version, Internal-IP, External-IP, OS-Image,
/// Kernel-Version, Container-Runtime.
fn node_cells(node: &Value, name: Value, age: Value) -> Vec<Value> {
    // The last condition of a type wins, as in Kubernetes' map; only Ready is shown.
    let ready = list(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| text(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if text(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if node.at("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    if let Some(labels) = node.at("/metadata/labels").and_then(Value::as_object) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_owned());
                }
            } else if key == "kubernetes.io/role"
                && let Some(v) = value.as_str().filter(|v| !v.is_empty())
            {
                roles.insert(v.to_owned());
            }
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };

    let address = |ty: &str| {
        list(node, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == ty)
            .map(|a| text(a, "/address"))
            .unwrap_or("<none>")
    };
    let unknown = |s: &str| {
        if s.is_empty() {
            "<unknown>".to_owned()
        } else {
            s.to_owned()
        }
    };
    vec![
        name,
        json!(status.join(",")),
        json!(roles),
        age,
        json!(text(node, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(text(node, "/status/nodeInfo/osImage"))),
        json!(unknown(text(node, "/status/nodeInfo/kernelVersion"))),
        json!(unknown(text(
            node,
            "/status/nodeInfo/containerRuntimeVersion"
        ))),
    ]
}

/// printEvent, for core/v1 Events and (converted the way Kubernetes converts them)
/// events.k8s.io/v1 Events: Last Seen, Type, Reason, Object, Subobject, Source, Message,
/// First Seen, Count, Name.
fn event_cells(event: &Value, group: &str, now: Timestamp) -> Vec<Value> {
    let new_api = group == "events.k8s.io";
    let field = |core: &str, events_k8s_io: &str| {
        event
            .get(if new_api { events_k8s_io } else { core })
            .unwrap_or(&Value::Null)
    };
    let involved = field("involvedObject", "regarding");
    let source = field("source", "deprecatedSource");
    let reporting_controller = text(field("reportingComponent", "reportingController"), "");
    let reporting_instance = text(event, "/reportingInstance");
    let message = text(field("message", "note"), "");
    let event_time = event.get("eventTime").and_then(timestamp);

    let first = match field("firstTimestamp", "deprecatedFirstTimestamp") {
        v if timestamp(v).is_some() => translate_since(timestamp(v), now),
        _ => translate_since(event_time, now),
    };
    let mut last = match field("lastTimestamp", "deprecatedLastTimestamp") {
        v if timestamp(v).is_some() => translate_since(timestamp(v), now),
        _ => first.clone(),
    };
    let mut count = as_int(field("count", "deprecatedCount"));
    match event.get("series").filter(|s| s.is_object()) {
        Some(series) => {
            last = translate_since(series.get("lastObservedTime").and_then(timestamp), now);
            count = int(series, "/count");
        }
        // Singleton events have no count in the new API.
        None if count == 0 => count = 1,
        None => {}
    }

    let kind = text(involved, "/kind").to_lowercase();
    let target = match text(involved, "/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = first_non_empty(text(source, "/component"), reporting_controller);
    let host = first_non_empty(text(source, "/host"), reporting_instance);
    let source = if host.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {host}")
    };

    vec![
        json!(last),
        json!(text(event, "/type")),
        json!(text(event, "/reason")),
        json!(target),
        json!(text(involved, "/fieldPath")),
        json!(source),
        json!(message.trim()),
        json!(first),
        json!(count),
        json!(text(event, "/metadata/name")),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

/// formatEndpoints: up to three `ip:port` (or bare IPs for subsets without ports), then
/// `+ N more...`; `<none>` without subsets.
fn format_endpoints(endpoints: &Value) -> String {
    let subsets = list(endpoints, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    const MAX: usize = 3;
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = list(subset, "/addresses");
        let ports = list(subset, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for address in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(text(address, "/ip").to_owned());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(join_host_port(text(address, "/ip"), int(port, "/port")));
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// Go's `net.JoinHostPort`: brackets around IPv6 addresses.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// formatDiscoveryPorts for an EndpointSlice.
fn format_slice_ports(slice: &Value) -> String {
    let ports: Vec<String> = list(slice, "/ports")
        .iter()
        .map(|p| {
            match (
                p.get("port").and_then(Value::as_i64),
                p.get("name").and_then(Value::as_str),
            ) {
                (Some(port), _) => port.to_string(),
                (None, Some(name)) => name.to_owned(),
                (None, None) => "*".to_owned(),
            }
        })
        .collect();
    list_with_more(ports)
}

/// formatDiscoveryEndpoints for an EndpointSlice.
fn format_slice_endpoints(slice: &Value) -> String {
    let addresses: Vec<String> = list(slice, "/endpoints")
        .iter()
        .flat_map(|e| {
            list(e, "/addresses")
                .iter()
                .map(|a| a.as_str().unwrap_or_default().to_owned())
        })
        .collect();
    list_with_more(addresses)
}

/// listWithMoreString: three entries, then `+ N more...`; `<unset>` when empty.
fn list_with_more(all: Vec<String>) -> String {
    const MAX: usize = 3;
    let count = all.len();
    let shown = all[..count.min(MAX)].join(",");
    if count > MAX {
        format!("{shown} + {} more...", count - MAX)
    } else if shown.is_empty() {
        "<unset>".to_owned()
    } else {
        shown
    }
}

/// layoutContainerCells: the names and the images, each joined with commas.
fn layout_containers(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn containers<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    list(obj, pointer)
}

/// `spec.replicas`, defaulted to 1 as Kubernetes does when it is not set.
fn replicas(obj: &Value) -> i64 {
    obj.at("/spec/replicas")
        .filter(|v| !v.is_null())
        .map(as_int)
        .unwrap_or(1)
}

// ---------------------------------------------------------------------------------------------
// Labels and selectors
// ---------------------------------------------------------------------------------------------

/// `labels.FormatLabels`: `k=v` sorted by key and joined with commas; `<none>` when empty.
fn format_labels(map: Option<&Value>) -> String {
    let Some(map) = map.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".to_owned();
    };
    let mut pairs: Vec<(&String, &str)> = map
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when it selects everything
/// (or nothing), `<error>` when it is invalid.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_owned(),
        Ok(s) => s,
        Err(()) => "<error>".to_owned(),
    }
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key, `k=v`,
/// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined with commas. Empty for a missing or empty
/// selector.
fn label_selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let selector = selector.as_object().ok_or(())?;
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").filter(|m| !m.is_null()) {
        for (k, v) in labels.as_object().ok_or(())? {
            requirements.push((k.clone(), format!("{k}={}", v.as_str().ok_or(())?)));
        }
    }
    if let Some(expressions) = selector.get("matchExpressions").filter(|m| !m.is_null()) {
        for expr in expressions.as_array().ok_or(())? {
            let key = expr.get("key").and_then(Value::as_str).ok_or(())?;
            let mut values: Vec<&str> = match expr.get("values").filter(|v| !v.is_null()) {
                Some(v) => v
                    .as_array()
                    .ok_or(())?
                    .iter()
                    .map(|s| s.as_str().ok_or(()))
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            values.sort_unstable();
            let requirement = match expr.get("operator").and_then(Value::as_str) {
                Some("In") if !values.is_empty() => format!("{key} in ({})", values.join(",")),
                Some("NotIn") if !values.is_empty() => {
                    format!("{key} notin ({})", values.join(","))
                }
                Some("Exists") if values.is_empty() => key.to_owned(),
                Some("DoesNotExist") if values.is_empty() => format!("!{key}"),
                _ => return Err(()),
            };
            requirements.push((key.to_owned(), requirement));
        }
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(","))
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// `duration.HumanDuration` from k8s.io/apimachinery: "34s" up to two minutes, "5m30s" up
/// to ten, "70m" up to three hours, "3h20m" up to eight, "47h" up to two days, "3d4h" up to
/// eight, "400d" up to two years, "2y10d" up to eight, then "9y". Slightly negative
/// durations (clock skew up to two seconds) are "0s", more negative ones "<invalid>".
pub fn human_duration(d: SignedDuration) -> String {
    const SECOND: i128 = 1_000_000_000;
    const MINUTE: i128 = 60 * SECOND;
    const HOUR: i128 = 60 * MINUTE;
    let nanos = d.as_nanos();
    let seconds = nanos / SECOND;
    if seconds < -1 {
        return "<invalid>".to_owned();
    } else if seconds < 0 {
        return "0s".to_owned();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, dy)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// translateTimestampSince: the age of a time, `<unknown>` without one.
fn translate_since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_owned(),
    }
}

/// The AGE cell: from `metadata.creationTimestamp`.
fn age(obj: &Value, now: Timestamp) -> String {
    translate_since(
        obj.at("/metadata/creationTimestamp").and_then(timestamp),
        now,
    )
}

/// An RFC 3339 time (seconds or micro/nanoseconds); `None` for a missing, null, unparseable
/// or zero (`0001-01-01T00:00:00Z`, Go's zero time) value.
fn timestamp(v: &Value) -> Option<Timestamp> {
    const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;
    let t: Timestamp = v.as_str()?.trim().parse().ok()?;
    (t.as_second() != GO_ZERO_TIME_SECONDS || t.subsec_nanosecond() != 0).then_some(t)
}

// ---------------------------------------------------------------------------------------------
// Reading JSON leniently
// ---------------------------------------------------------------------------------------------

/// The string at a JSON pointer, or "" (also for non-strings). An empty pointer is the value.
fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.at(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// The integer at a JSON pointer, or 0.
fn int(v: &Value, pointer: &str) -> i64 {
    v.at(pointer).map(as_int).unwrap_or(0)
}

fn as_int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
        .or_else(|| v.as_f64().map(|f| f as i64))
        .unwrap_or(0)
}

/// The array at a JSON pointer, or an empty slice.
fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.at(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The number of keys of the object at a JSON pointer, or 0.
fn map_len(v: &Value, pointer: &str) -> usize {
    v.at(pointer).and_then(Value::as_object).map_or(0, Map::len)
}

/// The object at a JSON pointer (Go's non-nil pointer to a struct).
fn object_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.at(pointer).filter(|o| o.is_object())
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    /// A time `secs` seconds before [`now`].
    fn ago(secs: i64) -> String {
        now()
            .checked_sub(SignedDuration::from_secs(secs))
            .unwrap()
            .to_string()
    }

    fn cells_of(resource: &str, group: &str, obj: &Value) -> Vec<Value> {
        row(resource, group, obj, now())["cells"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn names(columns: &[Value]) -> Vec<&str> {
        columns
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn human_duration_matches_kubernetes() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1s"),
            (34, "34s"),
            (70, "70s"),
            (119, "119s"),
            (120, "2m"),
            (190, "3m10s"),
            (330, "5m30s"),
            (600, "10m"),
            (70 * 60, "70m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 20 * 60, "3h20m"),
            (8 * 3600 + 59 * 60, "8h"),
            (47 * 3600, "47h"),
            (49 * 3600, "2d1h"),
            (72 * 3600, "3d"),
            ((8 * 24 + 2) * 3600, "8d"),
            (367 * 24 * 3600, "367d"),
            ((365 * 2 * 24 + 25) * 3600, "2y1d"),
            (365 * 3 * 24 * 3600, "3y"),
            ((365 * 8 * 24 + 2) * 3600, "8y"),
            (-1, "0s"),
            (-2, "<invalid>"),
        ];
        for &(secs, want) in cases {
            assert_eq!(
                human_duration(SignedDuration::from_secs(secs)),
                want,
                "{secs}s"
            );
        }
        // Go truncates towards zero: -1.5s is still "0s", 1.9s is "1s".
        assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
        assert_eq!(human_duration(SignedDuration::from_millis(1900)), "1s");
    }

    #[test]
    fn negotiation_follows_the_accept_list() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(wants_table(Some(kubectl)), Some(TableVersion::V1));
        assert_eq!(
            wants_table(Some("application/json;g=meta.k8s.io;as=Table;v=v1beta1")),
            Some(TableVersion::V1Beta1)
        );
        assert_eq!(
            wants_table(Some("application/json; as=Table; g=meta.k8s.io; v=v1")),
            Some(TableVersion::V1)
        );
        assert_eq!(wants_table(Some("application/json")), None);
        assert_eq!(wants_table(Some("application/json, */*")), None);
        assert_eq!(
            wants_table(Some("application/vnd.kubernetes.protobuf,application/json")),
            None
        );
        assert_eq!(wants_table(None), None);
        assert_eq!(wants_table(Some("")), None);
        // Plain JSON first wins.
        assert_eq!(
            wants_table(Some(
                "application/json,application/json;as=Table;v=v1;g=meta.k8s.io"
            )),
            None
        );
        // Unusable Table clauses are skipped.
        assert_eq!(
            wants_table(Some(
                "application/json;as=Table;v=v2;g=meta.k8s.io,application/json"
            )),
            None
        );
        assert_eq!(
            wants_table(Some("application/json;as=Table;v=v1;g=example.com")),
            None
        );
        assert_eq!(
            wants_table(Some(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io"
            )),
            Some(TableVersion::V1Beta1)
        );
        assert_eq!(
            wants_table(Some(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io"
            )),
            Some(TableVersion::V1)
        );
        // q values reorder.
        assert_eq!(
            wants_table(Some(
                "application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io"
            )),
            Some(TableVersion::V1)
        );
        assert_eq!(
            wants_table(Some(
                "application/json;as=Table;v=v1;g=meta.k8s.io;q=0,application/json"
            )),
            None
        );
        assert_eq!(
            wants_table(Some("*/*;as=Table;v=v1;g=meta.k8s.io")),
            Some(TableVersion::V1)
        );
        assert_eq!(
            content_type(TableVersion::V1),
            "application/json;as=Table;v=v1;g=meta.k8s.io"
        );
        assert_eq!(
            content_type(TableVersion::V1Beta1),
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
        );
        assert_eq!(
            TableVersion::from_api_version(TableVersion::V1Beta1.api_version()),
            Some(TableVersion::V1Beta1)
        );
    }

    #[test]
    fn include_object_parameter() {
        assert_eq!(include_object_param(None), IncludeObject::Metadata);
        assert_eq!(include_object_param(Some("")), IncludeObject::Metadata);
        assert_eq!(
            include_object_param(Some("Metadata")),
            IncludeObject::Metadata
        );
        assert_eq!(include_object_param(Some("None")), IncludeObject::None);
        assert_eq!(include_object_param(Some("Object")), IncludeObject::Object);
        assert_eq!(include_object_param(Some("bogus")), IncludeObject::Metadata);
    }

    #[test]
    fn column_definitions_per_kind() {
        let pods = column_definitions("pods", "");
        assert_eq!(
            names(&pods),
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(
            pods[0],
            json!({"name": "Name", "type": "string", "format": "name", "description": D_NAME, "priority": 0})
        );
        assert_eq!(pods[3]["type"], "string");
        assert_eq!(pods[4]["description"], D_AGE);
        assert_eq!(
            pods.iter()
                .map(|c| c["priority"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            [0, 0, 0, 0, 0, 1, 1, 1, 1]
        );

        let deployments = column_definitions("deployments", "apps");
        assert_eq!(
            names(&deployments),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(deployments[5]["priority"], 1);
        assert_eq!(
            names(&column_definitions("replicasets", "apps")),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            names(&column_definitions("nodes", "")),
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
        assert_eq!(
            names(&column_definitions("services", "")),
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector"
            ]
        );
        assert_eq!(
            names(&column_definitions("namespaces", "")),
            ["Name", "Status", "Age"]
        );
        assert_eq!(
            names(&column_definitions("configmaps", "")),
            ["Name", "Data", "Age"]
        );
        assert_eq!(
            names(&column_definitions("secrets", "")),
            ["Name", "Type", "Data", "Age"]
        );
        assert_eq!(
            names(&column_definitions("serviceaccounts", "")),
            ["Name", "Secrets", "Age"]
        );
        assert_eq!(
            names(&column_definitions("endpoints", "")),
            ["Name", "Endpoints", "Age"]
        );
        assert_eq!(
            names(&column_definitions("leases", "coordination.k8s.io")),
            ["Name", "Holder", "Age"]
        );
        let pc = column_definitions("priorityclasses", "scheduling.k8s.io");
        assert_eq!(
            names(&pc),
            ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
        );
        let types: Vec<(&str, i64)> = pc
            .iter()
            .map(|c| (c["type"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            types,
            [
                ("string", 0),
                ("integer", 0),
                ("boolean", 0),
                ("string", 0),
                ("string", 0)
            ]
        );
        let events = column_definitions("events", "");
        assert_eq!(
            names(&events),
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        assert_eq!(events[9]["format"], "name");
        assert_eq!(events[9]["priority"], 1);
        assert_eq!(column_definitions("events", "events.k8s.io"), events);
        assert_eq!(
            names(&column_definitions("widgets", "example.com")),
            ["Name", "Age"]
        );
        // A core name in another group is not the core kind.
        assert_eq!(
            names(&column_definitions("pods", "example.com")),
            ["Name", "Age"]
        );
    }

    fn running_pod() -> Value {
        json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {
                "name": "web-1", "namespace": "demo", "uid": "u1", "resourceVersion": "42",
                "creationTimestamp": ago(34), "labels": {"app": "web"},
                "managedFields": [{"manager": "kubectl", "operation": "Update"}]
            },
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}, {"name": "sidecar", "image": "envoy"}]},
            "status": {
                "phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(30)}}},
                    {"name": "sidecar", "ready": false, "restartCount": 2, "state": {"running": {"startedAt": ago(5)}},
                     "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(6)}}}
                ]
            }
        })
    }

    #[test]
    fn pod_running_with_one_container_not_ready() {
        let pod = running_pod();
        let r = row("pods", "", &pod, now());
        assert_eq!(
            r["cells"],
            json!([
                "web-1",
                "1/2",
                "Running",
                "2 (6s ago)",
                "34s",
                "10.244.0.5",
                "node-1",
                "<none>",
                "<none>"
            ])
        );
        assert!(r.get("conditions").is_none());
        let object = &r["object"];
        assert_eq!(object["kind"], "PartialObjectMetadata");
        assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(object["metadata"]["labels"]["app"], "web");
        assert_eq!(object["metadata"]["namespace"], "demo");
        assert!(object["metadata"].get("managedFields").is_none());
        assert!(object.get("spec").is_none());
    }

    #[test]
    fn pod_waiting_reasons() {
        let mut pod = running_pod();
        pod["status"]["containerStatuses"] = json!([
            {"name": "app", "ready": false, "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(400)}}},
            {"name": "sidecar", "ready": true, "restartCount": 0, "state": {"running": {}}}
        ]);
        assert_eq!(
            cells_of("pods", "", &pod)[1..4],
            [
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("5 (6m40s ago)")
            ]
        );

        let pending = json!({
            "metadata": {"name": "p", "creationTimestamp": ago(3)},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        });
        assert_eq!(
            cells_of("pods", "", &pending),
            [
                json!("p"),
                json!("0/1"),
                json!("ContainerCreating"),
                json!("0"),
                json!("3s"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );

        // Scheduling gates.
        let gated = json!({
            "metadata": {"name": "g"},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}
        });
        assert_eq!(cells_of("pods", "", &gated)[2], "SchedulingGated");
        // No creation time: "<unknown>".
        assert_eq!(cells_of("pods", "", &gated)[4], "<unknown>");
    }

    #[test]
    fn pod_terminating_and_node_lost() {
        let mut pod = running_pod();
        pod["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cells_of("pods", "", &pod)[2], "Terminating");
        pod["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells_of("pods", "", &pod)[2], "Unknown");
        // A finished pod being deleted keeps its status.
        let mut done = running_pod();
        done["metadata"]["deletionTimestamp"] = json!(ago(1));
        done["status"]["phase"] = json!("Succeeded");
        done["status"]["containerStatuses"] = json!([{"name": "app", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
        let r = row("pods", "", &done, now());
        assert_eq!(r["cells"][2], "Completed");
        assert_eq!(
            r["conditions"],
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
        );
    }

    #[test]
    fn pod_completed_exit_codes_and_signals() {
        let pod = |state: Value, ready: bool| {
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                   "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                              "containerStatuses": [
                                  {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                                  {"name": "b", "ready": false, "restartCount": 0, "state": state}]}})
        };
        // A completed container while another still runs: Running, or NotReady.
        assert_eq!(
            cells_of(
                "pods",
                "",
                &pod(
                    json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
                    true
                )
            )[2],
            "Running"
        );
        assert_eq!(
            cells_of(
                "pods",
                "",
                &pod(
                    json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
                    false
                )
            )[2],
            "NotReady"
        );
        assert_eq!(
            cells_of(
                "pods",
                "",
                &pod(json!({"terminated": {"exitCode": 3}}), true)
            )[2],
            "ExitCode:3"
        );
        assert_eq!(
            cells_of(
                "pods",
                "",
                &pod(json!({"terminated": {"exitCode": 137, "signal": 9}}), true)
            )[2],
            "Signal:9"
        );
        let failed = json!({"metadata": {"name": "f"}, "spec": {"containers": [{"name": "a"}]},
                            "status": {"phase": "Failed", "reason": "Evicted"}});
        let r = row("pods", "", &failed, now());
        assert_eq!(r["cells"][2], "Evicted");
        assert_eq!(r["conditions"][0]["reason"], "Failed");
    }

    #[test]
    fn pod_init_containers() {
        let base = |init_statuses: Value| {
            json!({"metadata": {"name": "i"},
                   "spec": {"initContainers": [{"name": "setup"}, {"name": "migrate"}], "containers": [{"name": "app"}]},
                   "status": {"phase": "Pending", "initContainerStatuses": init_statuses,
                              "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}})
        };
        let running_first = base(json!([
            {"name": "setup", "ready": false, "restartCount": 0, "state": {"running": {}}},
            {"name": "migrate", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
        ]));
        assert_eq!(
            cells_of("pods", "", &running_first)[1..4],
            [json!("0/1"), json!("Init:0/2"), json!("0")]
        );
        let second = base(json!([
            {"name": "setup", "ready": true, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "migrate", "ready": false, "restartCount": 0, "state": {"running": {}}}
        ]));
        assert_eq!(cells_of("pods", "", &second)[2], "Init:1/2");
        let crashing = base(json!([
            {"name": "setup", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}}}
        ]));
        assert_eq!(
            cells_of("pods", "", &crashing)[2..4],
            [json!("Init:CrashLoopBackOff"), json!("3 (20s ago)")]
        );
        let failed = base(
            json!([{"name": "setup", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]),
        );
        assert_eq!(cells_of("pods", "", &failed)[2], "Init:ExitCode:2");
        let errored = base(
            json!([{"name": "setup", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
        );
        assert_eq!(cells_of("pods", "", &errored)[2], "Init:Error");

        // A started sidecar counts as a container.
        let sidecar = json!({"metadata": {"name": "s"},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                       "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1, "state": {"running": {}}}],
                       "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        assert_eq!(
            cells_of("pods", "", &sidecar)[1..4],
            [json!("2/2"), json!("Running"), json!("1")]
        );
    }

    #[test]
    fn pod_wide_cells() {
        let pod = json!({"metadata": {"name": "w"},
            "spec": {"containers": [{"name": "a"}], "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.9", "nominatedNodeName": "node-2",
                       "conditions": [{"type": "example.com/lb", "status": "True"}, {"type": "example.com/dns", "status": "False"}]}});
        assert_eq!(
            cells_of("pods", "", &pod)[5..],
            [
                json!("10.0.0.9"),
                json!("<none>"),
                json!("node-2"),
                json!("1/2")
            ]
        );
    }

    #[test]
    fn deployment_row() {
        let d = json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "nginx", "namespace": "demo", "creationTimestamp": ago(34)},
            "spec": {"replicas": 3,
                     "selector": {"matchLabels": {"app": "nginx", "tier": "web"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            cells_of("deployments", "apps", &d),
            [
                json!("nginx"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("34s"),
                json!("nginx,log"),
                json!("nginx:1.25,busybox"),
                json!("app=nginx,env in (dev,prod),tier=web")
            ]
        );
        // Fresh: no status, replicas defaulted.
        let fresh =
            json!({"metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": {"app": "x"}}}});
        assert_eq!(
            cells_of("deployments", "apps", &fresh)[1..4],
            [json!("0/1"), json!(0), json!(0)]
        );
        // An invalid operator.
        let bad = json!({"metadata": {"name": "b"}, "spec": {"selector": {"matchExpressions": [{"key": "k", "operator": "Near"}]}}});
        assert_eq!(cells_of("deployments", "apps", &bad)[7], "<invalid>");
    }

    #[test]
    fn replicaset_statefulset_daemonset_rows() {
        let rs = json!({"metadata": {"name": "nginx-abc", "creationTimestamp": ago(7200)},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}, "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(
            cells_of("replicasets", "apps", &rs),
            [
                json!("nginx-abc"),
                json!(2),
                json!(2),
                json!(1),
                json!("120m"),
                json!("nginx"),
                json!("nginx"),
                json!("app=nginx,!canary")
            ]
        );
        let empty_selector = json!({"metadata": {"name": "r"}, "spec": {"replicas": 0}});
        assert_eq!(
            cells_of("replicasets", "apps", &empty_selector)[7],
            "<none>"
        );

        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "pg", "image": "postgres"}]}}},
                         "status": {"readyReplicas": 3}});
        assert_eq!(
            cells_of("statefulsets", "apps", &sts),
            [
                json!("db"),
                json!("3/3"),
                json!("<unknown>"),
                json!("pg"),
                json!("postgres")
            ]
        );

        let ds = json!({"metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "agent:1"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}});
        assert_eq!(
            cells_of("daemonsets", "apps", &ds),
            [
                json!("agent"),
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux"),
                json!("<unknown>"),
                json!("a"),
                json!("agent:1"),
                json!("app=agent")
            ]
        );
    }

    #[test]
    fn job_and_cronjob_rows() {
        let job = json!({"metadata": {"name": "pi", "creationTimestamp": ago(300)},
            "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}},
            "status": {"succeeded": 1, "startTime": ago(300), "completionTime": ago(250), "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(
            cells_of("jobs", "batch", &job)[..5],
            [
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("50s"),
                json!("5m")
            ]
        );
        let running = json!({"metadata": {"name": "r"}, "spec": {"parallelism": 3}, "status": {"startTime": ago(90)}});
        assert_eq!(
            cells_of("jobs", "batch", &running)[1..4],
            [json!("Running"), json!("0/1 of 3"), json!("90s")]
        );

        let cj = json!({"metadata": {"name": "hello"}, "spec": {"schedule": "*/1 * * * *", "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(30)}});
        assert_eq!(
            cells_of("cronjobs", "batch", &cj),
            [
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("30s"),
                json!("<unknown>"),
                json!("hello"),
                json!("busybox"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn node_rows() {
        let node = json!({
            "kind": "Node", "apiVersion": "v1",
            "metadata": {"name": "node-1", "creationTimestamp": ago(3 * 86400),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge", "node-role.kubernetes.io/": ""}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.0"}
            }
        });
        assert_eq!(
            cells_of("nodes", "", &node),
            [
                json!("node-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,edge,worker"),
                json!("3d"),
                json!("v1.33.1"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0"),
                json!("containerd://1.7.0")
            ]
        );
        let not_ready = json!({"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(
            cells_of("nodes", "", &not_ready)[1..3],
            [json!("NotReady"), json!("<none>")]
        );
        let bare = json!({"metadata": {"name": "n3"}});
        assert_eq!(
            cells_of("nodes", "", &bare)[1..],
            [
                json!("Unknown"),
                json!("<none>"),
                json!("<unknown>"),
                json!(""),
                json!("<none>"),
                json!("<none>"),
                json!("<unknown>"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
    }

    #[test]
    fn service_rows() {
        let node_port = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(600)},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "selector": {"app": "web", "tier": "fe"},
                     "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}, {"port": 443, "nodePort": 30443}]}
        });
        assert_eq!(
            cells_of("services", "", &node_port),
            [
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP,443:30443/TCP"),
                json!("10m"),
                json!("app=web,tier=fe")
            ]
        );
        let pending_lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.11", "ports": [{"port": 80, "nodePort": 31000}]}});
        assert_eq!(
            cells_of("services", "", &pending_lb)[1..5],
            [
                json!("LoadBalancer"),
                json!("10.96.0.11"),
                json!("<pending>"),
                json!("80:31000/TCP")
            ]
        );
        let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]},
                        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}}});
        assert_eq!(
            cells_of("services", "", &lb)[2..4],
            [json!("<none>"), json!("203.0.113.9,lb.example.com,1.2.3.4")]
        );
        let headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
        assert_eq!(
            cells_of("services", "", &headless)[1..],
            [
                json!("ClusterIP"),
                json!("None"),
                json!("<none>"),
                json!("<none>"),
                json!("<unknown>"),
                json!("<none>")
            ]
        );
        let external_name = json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(
            cells_of("services", "", &external_name)[2..4],
            [json!("<none>"), json!("db.example.com")]
        );
    }

    #[test]
    fn event_rows() {
        let event = json!({
            "kind": "Event", "apiVersion": "v1",
            "metadata": {"name": "nginx.17f3", "namespace": "demo"},
            "involvedObject": {"kind": "Deployment", "namespace": "demo", "name": "nginx", "apiVersion": "apps/v1"},
            "reason": "ScalingReplicaSet", "message": "Scaled up replica set nginx-381fc543a3 to 3\n",
            "source": {"component": "deployment-controller"},
            "firstTimestamp": ago(3600), "lastTimestamp": ago(40), "count": 4, "type": "Normal"
        });
        assert_eq!(
            cells_of("events", "", &event),
            [
                json!("40s"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/nginx"),
                json!(""),
                json!("deployment-controller"),
                json!("Scaled up replica set nginx-381fc543a3 to 3"),
                json!("60m"),
                json!(4),
                json!("nginx.17f3")
            ]
        );
        // New-style: eventTime only, a series, reportingComponent/Instance.
        let series = json!({
            "metadata": {"name": "p.1"}, "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "message": "Back-off restarting", "type": "Warning",
            "eventTime": "2025-06-01T11:00:00.000000Z", "reportingComponent": "kubelet", "reportingInstance": "node-1",
            "series": {"count": 7, "lastObservedTime": "2025-06-01T11:59:50.123456Z"}
        });
        assert_eq!(
            cells_of("events", "", &series),
            [
                json!("9s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/p"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting"),
                json!("60m"),
                json!(7),
                json!("p.1")
            ]
        );
        // events.k8s.io/v1 field names.
        let v1 = json!({
            "metadata": {"name": "e"}, "regarding": {"kind": "Node", "name": "node-1"}, "note": "Starting kubelet.",
            "reason": "Starting", "type": "Normal", "eventTime": ago(120), "reportingController": "kubelet", "reportingInstance": "node-1"
        });
        assert_eq!(
            cells_of("events", "events.k8s.io", &v1),
            [
                json!("2m"),
                json!("Normal"),
                json!("Starting"),
                json!("node/node-1"),
                json!(""),
                json!("kubelet, node-1"),
                json!("Starting kubelet."),
                json!("2m"),
                json!(1),
                json!("e")
            ]
        );
        let empty = json!({});
        assert_eq!(
            cells_of("events", "", &empty),
            [
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!(""),
                json!(""),
                json!(""),
                json!(""),
                json!("<unknown>"),
                json!(1),
                json!("")
            ]
        );
    }

    #[test]
    fn small_kinds() {
        let ns = json!({"metadata": {"name": "demo", "creationTimestamp": ago(5)}, "status": {"phase": "Terminating"}});
        assert_eq!(
            cells_of("namespaces", "", &ns),
            [json!("demo"), json!("Terminating"), json!("5s")]
        );
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(cells_of("configmaps", "", &cm)[1], 3);
        let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            cells_of("secrets", "", &secret)[1..3],
            [json!("kubernetes.io/tls"), json!(2)]
        );
        assert_eq!(
            cells_of("secrets", "", &json!({"metadata": {"name": "o"}}))[1..3],
            [json!("Opaque"), json!(0)]
        );
        let sa = json!({"metadata": {"name": "default"}, "secrets": [{"name": "t"}]});
        assert_eq!(cells_of("serviceaccounts", "", &sa)[1], 1);
        let lease = json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "node-1_abc"}});
        assert_eq!(
            cells_of("leases", "coordination.k8s.io", &lease)[1],
            "node-1_abc"
        );
        let pc = json!({"metadata": {"name": "high", "creationTimestamp": ago(5)}, "value": 1000, "globalDefault": true, "preemptionPolicy": "Never"});
        assert_eq!(
            cells_of("priorityclasses", "scheduling.k8s.io", &pc),
            [
                json!("high"),
                json!(1000),
                json!(true),
                json!("5s"),
                json!("Never")
            ]
        );
        // printPriorityClass: no globalDefault is false, no policy is empty.
        let bare = json!({"metadata": {"name": "b", "creationTimestamp": ago(5)}, "value": -5});
        assert_eq!(
            cells_of("priorityclasses", "scheduling.k8s.io", &bare),
            [json!("b"), json!(-5), json!(false), json!("5s"), json!("")]
        );
        let ep = json!({"metadata": {"name": "web"}, "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]},
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}
        ]});
        assert_eq!(
            cells_of("endpoints", "", &ep)[1],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."
        );
        let ep6 = json!({"metadata": {"name": "v6"}, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}]});
        assert_eq!(cells_of("endpoints", "", &ep6)[1], "[fd00::1]:8080");
        assert_eq!(
            cells_of("endpoints", "", &json!({"metadata": {"name": "none"}}))[1],
            "<none>"
        );
        let slice = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "dns"}],
                           "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]});
        assert_eq!(
            cells_of("endpointslices", "discovery.k8s.io", &slice)[1..4],
            [
                json!("IPv4"),
                json!("80,dns"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
            ]
        );
        assert_eq!(
            cells_of("endpointslices", "discovery.k8s.io", &json!({}))[2..4],
            [json!("<unset>"), json!("<unset>")]
        );
        let widget = json!({"metadata": {"name": "w", "creationTimestamp": ago(86400 * 400)}});
        assert_eq!(
            cells_of("widgets", "example.com", &widget),
            [json!("w"), json!("400d")]
        );
    }

    #[test]
    fn malformed_objects_never_panic() {
        let weird = [
            json!(null),
            json!(7),
            json!("pod"),
            json!([]),
            json!({}),
            json!({"metadata": "x", "spec": [], "status": 3}),
            json!({"metadata": {"name": 5, "creationTimestamp": "yesterday", "labels": "x"},
                   "spec": {"containers": "x", "initContainers": [1, null], "replicas": "three", "selector": {"matchLabels": [1]}, "ports": [null, {"port": "x"}], "type": 3},
                   "status": {"containerStatuses": [null, {"state": "x"}], "initContainerStatuses": [{"state": {"terminated": "x"}}], "conditions": {"type": "Ready"},
                              "podIPs": [null], "loadBalancer": {"ingress": [7]}, "addresses": "x", "active": {}}}),
            json!({"metadata": {"creationTimestamp": "0001-01-01T00:00:00Z", "deletionTimestamp": null}, "series": 1, "count": -3, "subsets": [{"addresses": [1], "ports": [2]}]}),
        ];
        let resources = [
            ("pods", ""),
            ("replicationcontrollers", ""),
            ("replicasets", "apps"),
            ("deployments", "apps"),
            ("statefulsets", "apps"),
            ("daemonsets", "apps"),
            ("jobs", "batch"),
            ("cronjobs", "batch"),
            ("services", ""),
            ("endpoints", ""),
            ("endpointslices", "discovery.k8s.io"),
            ("nodes", ""),
            ("events", ""),
            ("events", "events.k8s.io"),
            ("namespaces", ""),
            ("secrets", ""),
            ("serviceaccounts", ""),
            ("configmaps", ""),
            ("leases", "coordination.k8s.io"),
            ("priorityclasses", "scheduling.k8s.io"),
            ("widgets", "example.com"),
        ];
        for (resource, group) in resources {
            let columns = column_definitions(resource, group).len();
            for obj in &weird {
                let r = row(resource, group, obj, now());
                assert_eq!(
                    r["cells"].as_array().unwrap().len(),
                    columns,
                    "{resource}.{group} {obj}"
                );
            }
        }
        // The zero time is no time.
        assert_eq!(cells_of("configmaps", "", &weird[7])[2], "<unknown>");
    }

    #[test]
    fn whole_tables() {
        let pods = [
            running_pod(),
            json!({"metadata": {"name": "b"}, "spec": {"containers": []}, "status": {"phase": "Pending"}}),
        ];
        let t = table(
            "pods",
            "",
            &pods,
            "1034",
            Some("tok"),
            Some(5),
            true,
            now(),
            TableVersion::V1,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "1034", "continue": "tok", "remainingItemCount": 5})
        );
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 9);
        assert_eq!(t["rows"].as_array().unwrap().len(), 2);
        assert_eq!(t["rows"][1]["cells"][1], "0/0");

        // A watch event after the first: no columns, v1beta1 everywhere, no empty metadata fields.
        let t = table(
            "pods",
            "",
            &pods[..1],
            "",
            None,
            None,
            false,
            now(),
            TableVersion::V1Beta1,
        );
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(t["metadata"], json!({}));
        assert_eq!(t["columnDefinitions"], json!([]));
        assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1beta1");

        let empty = table(
            "deployments",
            "apps",
            &[],
            "7",
            Some(""),
            None,
            true,
            now(),
            TableVersion::V1,
        );
        assert_eq!(empty["rows"], json!([]));
        assert_eq!(empty["metadata"], json!({"resourceVersion": "7"}));

        // includeObject.
        let options = |include_object| TableOptions {
            version: TableVersion::V1,
            include_object,
            include_columns: true,
            resource_version: "1",
            continue_token: None,
            remaining_item_count: None,
        };
        let none = table_with("pods", "", &pods[..1], &options(IncludeObject::None), now());
        assert_eq!(none["rows"][0]["object"], Value::Null);
        let whole = table_with(
            "pods",
            "",
            &pods[..1],
            &options(IncludeObject::Object),
            now(),
        );
        assert_eq!(whole["rows"][0]["object"], pods[0]);
        let meta = row_with(
            "pods",
            "",
            &pods[0],
            now(),
            IncludeObject::Metadata,
            TableVersion::V1,
        );
        assert_eq!(meta, row("pods", "", &pods[0], now()));
    }
}
