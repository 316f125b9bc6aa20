//! PriorityClasses (`scheduling.k8s.io/v1`) and the Priority admission plugin.
//!
//! - The PriorityClass strategy: v1 defaulting (`preemptionPolicy: PreemptLowerPriority`),
//!   `ValidatePriorityClass` (names starting with `system-` are reserved for the two system
//!   classes, user values are at most 1,000,000,000) and `ValidatePriorityClassUpdate` (`value`
//!   and `preemptionPolicy` are immutable).
//! - [`SYSTEM_PRIORITY_CLASSES`]: `system-node-critical` and `system-cluster-critical`, which
//!   the apiserver creates at start when they are missing, as kube-apiserver's
//!   `scheduling/bootstrap-system-priority-classes` post-start hook does, and which a DELETE
//!   of one object refuses ([`check_delete`], kube-apiserver's `REST.Delete`).
//! - The Priority admission plugin (`plugin/pkg/admission/priority`), as pure functions over a
//!   snapshot of the PriorityClasses ([`PriorityClassInfo`]): [`admit_pod_create`] resolves a
//!   new pod's `priorityClassName` into `spec.priority` and `spec.preemptionPolicy` (the global
//!   default class, or priority 0, when it names none); [`admit_pod_update`] keeps the priority
//!   a pod was admitted with; [`validate_admission`] refuses a second `globalDefault` class.
//!   Reading the snapshot is the caller's (`server::admission`).

use serde_json::{Value, json};

use super::util::{
    Errs, Obj, forbidden, get, get_i64, get_str, immutable, not_supported, required,
};
use crate::errors::ApiError;

/// Names with this prefix are reserved for [`SYSTEM_PRIORITY_CLASSES`].
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";
/// The highest `value` a user's PriorityClass may have (`HighestUserDefinablePriority`).
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;
/// `SystemCriticalPriority`: twice the highest user priority, so no user class reaches it.
const SYSTEM_CRITICAL_PRIORITY: i64 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
/// A pod's priority when it names no class and no class is the global default
/// (`DefaultPriorityWhenNoDefaultClassExists`).
pub const DEFAULT_PRIORITY: i64 = 0;
const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";
const PREEMPTION_POLICIES: &[&str] = &[PREEMPT_LOWER_PRIORITY, "Never"];

/// One of the classes Kubernetes reserves for system components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemPriorityClass {
    pub name: &'static str,
    pub value: i64,
    pub description: &'static str,
}

/// Kubernetes' system classes (`pkg/apis/scheduling/v1`'s `systemPriorityClasses`), neither of
/// them a global default.
pub const SYSTEM_PRIORITY_CLASSES: &[SystemPriorityClass] = &[
    SystemPriorityClass {
        name: "system-node-critical",
        value: SYSTEM_CRITICAL_PRIORITY + 1000,
        description: "Used for system critical pods that must not be moved from their current node.",
    },
    SystemPriorityClass {
        name: "system-cluster-critical",
        value: SYSTEM_CRITICAL_PRIORITY,
        description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    },
];

impl SystemPriorityClass {
    /// The class as a client would create it.
    pub fn manifest(&self) -> Value {
        json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": self.name},
            "value": self.value,
            "description": self.description,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Strategy.

/// `SetDefaults_PriorityClass`, and Go's round trip of the v1 type: `value` is always written
/// (a missing one decodes as 0), `globalDefault: false` and an empty `description` are not
/// (`omitempty`).
pub(crate) fn defaults(map: &mut Obj) {
    if get(map, "preemptionPolicy").is_none() {
        map.insert("preemptionPolicy".into(), json!(PREEMPT_LOWER_PRIORITY));
    }
    if get(map, "value").is_none() {
        map.insert("value".into(), json!(0));
    }
    if matches!(
        map.get("globalDefault"),
        Some(Value::Bool(false) | Value::Null)
    ) {
        map.remove("globalDefault");
    }
    if matches!(map.get("description"), Some(Value::Null))
        || map.get("description").and_then(Value::as_str) == Some("")
    {
        map.remove("description");
    }
}

fn value_of(map: &Obj) -> i64 {
    get_i64(map, "value").unwrap_or(0)
}

fn global_default_of(map: &Obj) -> bool {
    map.get("globalDefault").and_then(Value::as_bool) == Some(true)
}

/// `IsKnownSystemPriorityClass`: whether `name` is a system class with its own value and
/// `globalDefault`; the error says which of them is wrong.
fn is_known_system_priority_class(
    name: &str,
    value: i64,
    global_default: bool,
) -> Result<(), String> {
    let Some(class) = SYSTEM_PRIORITY_CLASSES.iter().find(|c| c.name == name) else {
        return Err(format!("{name} is not a known system priority class"));
    };
    if class.value != value {
        return Err(format!(
            "value of {} PriorityClass must be {}",
            class.name, class.value
        ));
    }
    if global_default {
        return Err(format!(
            "globalDefault of {} PriorityClass must be false",
            class.name
        ));
    }
    Ok(())
}

/// `ValidatePriorityClass` beyond object metadata (create only: Kubernetes' update validation
/// does not run it again).
pub(crate) fn validate_create(map: &Obj, errs: &mut Errs) {
    let name = map
        .get("metadata")
        .and_then(Value::as_object)
        .map_or("", |m| get_str(m, "name"));
    let value = value_of(map);
    if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
        if let Err(e) = is_known_system_priority_class(name, value, global_default_of(map)) {
            errs.push(forbidden(
                "metadata.name",
                format!(
                    "priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {e}"
                ),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(forbidden(
            "value",
            format!(
                "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
            ),
        ));
    }
    if let Some(policy) = get(map, "preemptionPolicy") {
        validate_preemption_policy(
            policy.as_str().unwrap_or_default(),
            "preemptionPolicy",
            errs,
        );
    }
}

/// `ValidatePreemptionPolicy`.
fn validate_preemption_policy(policy: &str, path: &str, errs: &mut Errs) {
    if policy.is_empty() {
        errs.push(required(path, ""));
    } else if !PREEMPTION_POLICIES.contains(&policy) {
        errs.push(not_supported(path, policy, PREEMPTION_POLICIES));
    }
}

/// `ValidatePriorityClassUpdate` beyond object metadata: `value` and `preemptionPolicy` stay.
pub(crate) fn validate_update(old: &Obj, new: &Obj, errs: &mut Errs) {
    if value_of(old) != value_of(new) {
        errs.push(forbidden("value", "may not be changed in an update."));
    }
    let policy = |m: &Obj| get(m, "preemptionPolicy").cloned();
    if policy(old) != policy(new) {
        // Go prints the new (pointer) value, or `null` when there is none.
        let rendered = match get(new, "preemptionPolicy") {
            Some(Value::String(s)) => api_types::validation::go_quote(s),
            Some(other) => other.to_string(),
            None => "null".to_string(),
        };
        errs.push(immutable("preemptionPolicy", rendered));
    }
}

/// The PriorityClass REST storage's `Delete`: a system class cannot be deleted (403). Only a
/// DELETE of the one object asks: Kubernetes' `deletecollection` goes around this check, and
/// the class is created again at the next start.
pub(crate) fn check_delete(name: &str) -> Result<(), ApiError> {
    if SYSTEM_PRIORITY_CLASSES.iter().any(|c| c.name == name) {
        return Err(ApiError::forbidden(
            "priorityclasses.scheduling.k8s.io",
            name,
            "this is a system priority class and cannot be deleted",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The Priority admission plugin.

/// What the Priority plugin reads of a PriorityClass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityClassInfo {
    pub name: String,
    pub value: i64,
    pub global_default: bool,
    /// `None` for a class stored without one (written before the field existed).
    pub preemption_policy: Option<String>,
}

impl PriorityClassInfo {
    /// The plugin's view of a stored PriorityClass; `None` for something that is not one.
    pub fn from_object(obj: &Value) -> Option<PriorityClassInfo> {
        let map = obj.as_object()?;
        let name = map.get("metadata")?.get("name")?.as_str()?.to_owned();
        Some(PriorityClassInfo {
            name,
            value: value_of(map),
            global_default: global_default_of(map),
            preemption_policy: map
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// The global default class (`getDefaultPriorityClass`): if a race let two classes become
/// global defaults, the one with the lowest value.
pub fn default_priority_class(classes: &[PriorityClassInfo]) -> Option<&PriorityClassInfo> {
    classes
        .iter()
        .filter(|c| c.global_default)
        .min_by_key(|c| c.value)
}

/// The name the plugin's Forbidden errors give a pod (`extractResourceName`): its name, else its
/// `generateName` (admission runs before the name is generated).
fn admission_name(obj: &Obj) -> String {
    let meta = obj.get("metadata").and_then(Value::as_object);
    let field = |key| meta.map_or("", |m| get_str(m, key));
    match field("name") {
        "" => field("generateName").to_owned(),
        name => name.to_owned(),
    }
}

/// The Priority plugin's `admitPod` on create: `spec.priorityClassName` names an existing class
/// (403 otherwise: `no PriorityClass with name foo was found`), whose value becomes
/// `spec.priority` and whose preemption policy becomes `spec.preemptionPolicy`. A pod that
/// names no class gets the global default class (its name is written into
/// `priorityClassName`), or priority 0 and `PreemptLowerPriority` when there is none. A pod
/// that sets `priority` or `preemptionPolicy` itself must agree with the class (403).
///
/// `classes` is the plugin's view of the PriorityClasses (kube-apiserver's informer).
pub fn admit_pod_create(obj: &mut Value, classes: &[PriorityClassInfo]) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Ok(());
    };
    let name = admission_name(map);
    let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let class_name = get_str(spec, "priorityClassName").to_owned();
    let (priority, policy) = if class_name.is_empty() {
        match default_priority_class(classes) {
            Some(class) => {
                spec.insert("priorityClassName".into(), json!(class.name));
                (class.value, class.preemption_policy.clone())
            }
            None => (DEFAULT_PRIORITY, Some(PREEMPT_LOWER_PRIORITY.to_owned())),
        }
    } else {
        let Some(class) = classes.iter().find(|c| c.name == class_name) else {
            return Err(ApiError::forbidden(
                "pods",
                &name,
                &format!("no PriorityClass with name {class_name} was found"),
            ));
        };
        (class.value, class.preemption_policy.clone())
    };
    if let Some(given) = get(spec, "priority").and_then(Value::as_i64)
        && given != priority
    {
        return Err(ApiError::forbidden(
            "pods",
            &name,
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ),
        ));
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(policy) = policy {
        if let Some(given) = get(spec, "preemptionPolicy").and_then(Value::as_str)
            && given != policy
        {
            return Err(ApiError::forbidden(
                "pods",
                &name,
                &format!(
                    "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
                ),
            ));
        }
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

/// The Priority plugin's `admitPod` on update: a pod written without `priority` or
/// `preemptionPolicy` keeps the ones it was admitted with (validation then forbids changing
/// them).
pub(crate) fn admit_pod_update(old_spec: &Obj, spec: &mut Obj) {
    for key in ["priority", "preemptionPolicy"] {
        if get(spec, key).is_none()
            && let Some(v) = get(old_spec, key)
        {
            spec.insert(key.to_owned(), v.clone());
        }
    }
}

/// The Priority plugin's `validatePriorityClass`: a class may become the global default only
/// when no other class is one (403 `PriorityClass a is already marked as default. Only one
/// default can exist`). `create` tells a create (any existing default refuses it) from an
/// update (the default itself may be written again).
pub fn validate_admission(
    obj: &Value,
    create: bool,
    classes: &[PriorityClassInfo],
) -> Result<(), ApiError> {
    let Some(class) = PriorityClassInfo::from_object(obj) else {
        return Ok(());
    };
    if !class.global_default {
        return Ok(());
    }
    match default_priority_class(classes) {
        Some(default) if create || default.name != class.name => Err(ApiError::forbidden(
            "priorityclasses.scheduling.k8s.io",
            &class.name,
            &format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                default.name
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(
        name: &str,
        value: i64,
        global_default: bool,
        policy: Option<&str>,
    ) -> PriorityClassInfo {
        PriorityClassInfo {
            name: name.into(),
            value,
            global_default,
            preemption_policy: policy.map(str::to_owned),
        }
    }

    fn system() -> Vec<PriorityClassInfo> {
        SYSTEM_PRIORITY_CLASSES
            .iter()
            .map(|c| class(c.name, c.value, false, Some(PREEMPT_LOWER_PRIORITY)))
            .collect()
    }

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    /// (what, classes, pod spec, spec after admission or the 403 message).
    type AdmitCase = (
        &'static str,
        Vec<PriorityClassInfo>,
        Value,
        Result<Value, &'static str>,
    );

    #[test]
    fn pods_get_their_class_priority() {
        let mut with_default = system();
        with_default.push(class("low", -10, true, Some("Never")));
        with_default.push(class("high", 1000, false, Some("PreemptLowerPriority")));
        let mut two_defaults = with_default.clone();
        two_defaults.push(class("lower", -20, true, None));
        let cases: Vec<AdmitCase> = vec![
            (
                "no class, no default: priority 0",
                system(),
                json!({}),
                Ok(json!({"priority": 0, "preemptionPolicy": "PreemptLowerPriority"})),
            ),
            (
                "a system class",
                system(),
                json!({"priorityClassName": "system-node-critical"}),
                Ok(
                    json!({"priorityClassName": "system-node-critical", "priority": 2_000_001_000, "preemptionPolicy": "PreemptLowerPriority"}),
                ),
            ),
            (
                "a user class",
                with_default.clone(),
                json!({"priorityClassName": "high"}),
                Ok(
                    json!({"priorityClassName": "high", "priority": 1000, "preemptionPolicy": "PreemptLowerPriority"}),
                ),
            ),
            (
                "the global default, named in the pod",
                with_default.clone(),
                json!({}),
                Ok(
                    json!({"priorityClassName": "low", "priority": -10, "preemptionPolicy": "Never"}),
                ),
            ),
            (
                "two defaults after a race: the lowest value wins",
                two_defaults,
                json!({}),
                Ok(json!({"priorityClassName": "lower", "priority": -20})),
            ),
            (
                "a matching priority is fine",
                with_default.clone(),
                json!({"priorityClassName": "high", "priority": 1000, "preemptionPolicy": "PreemptLowerPriority"}),
                Ok(
                    json!({"priorityClassName": "high", "priority": 1000, "preemptionPolicy": "PreemptLowerPriority"}),
                ),
            ),
            (
                "an unknown class",
                system(),
                json!({"priorityClassName": "foo"}),
                Err("pods \"p\" is forbidden: no PriorityClass with name foo was found"),
            ),
            (
                "a priority of its own",
                system(),
                json!({"priority": 5}),
                Err(
                    "pods \"p\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name",
                ),
            ),
            (
                "a priority that is not the class'",
                with_default.clone(),
                json!({"priorityClassName": "high", "priority": 5}),
                Err(
                    "pods \"p\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name",
                ),
            ),
            (
                "a preemption policy that is not the class'",
                with_default,
                json!({"preemptionPolicy": "PreemptLowerPriority"}),
                Err(
                    "pods \"p\" is forbidden: the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name",
                ),
            ),
        ];
        for (what, classes, spec, want) in cases {
            let mut obj = pod(spec);
            let got = admit_pod_create(&mut obj, &classes).map(|()| obj["spec"].clone());
            match want {
                Ok(spec) => assert_eq!(got.unwrap(), spec, "{what}"),
                Err(message) => {
                    let err = got.unwrap_err();
                    assert_eq!((err.code(), err.message.as_str()), (403, message), "{what}");
                }
            }
        }
    }

    #[test]
    fn forbidden_pods_are_named_by_generate_name_before_they_have_a_name() {
        let mut obj =
            json!({"metadata": {"generateName": "web-"}, "spec": {"priorityClassName": "x"}});
        let err = admit_pod_create(&mut obj, &[]).unwrap_err();
        assert_eq!(
            err.message,
            "pods \"web-\" is forbidden: no PriorityClass with name x was found"
        );
        // Malformed objects are left to validation.
        for mut junk in [json!(null), json!({"spec": 1}), json!([])] {
            admit_pod_create(&mut junk, &[]).unwrap();
        }
    }

    #[test]
    fn updates_keep_the_admitted_priority() {
        let old =
            json!({"priority": 1000, "preemptionPolicy": "Never", "priorityClassName": "high"});
        let mut new = json!({"priorityClassName": "high"});
        admit_pod_update(old.as_object().unwrap(), new.as_object_mut().unwrap());
        assert_eq!(new, old);
        let mut changed = json!({"priority": 7});
        admit_pod_update(old.as_object().unwrap(), changed.as_object_mut().unwrap());
        assert_eq!(changed, json!({"priority": 7, "preemptionPolicy": "Never"}));
    }

    #[test]
    fn only_one_global_default() {
        let classes = vec![
            class("first", 10, true, None),
            class("second", 20, false, None),
        ];
        let pc = |name: &str, global_default: bool| json!({"metadata": {"name": name}, "value": 1, "globalDefault": global_default});
        let refused = "priorityclasses.scheduling.k8s.io \"second\" is forbidden: PriorityClass first is already marked as default. Only one default can exist";
        for create in [true, false] {
            let err = validate_admission(&pc("second", true), create, &classes).unwrap_err();
            assert_eq!((err.code(), err.message.as_str()), (403, refused));
            validate_admission(&pc("second", false), create, &classes).unwrap();
        }
        // The default may be written again, but not created twice.
        validate_admission(&pc("first", true), false, &classes).unwrap();
        assert!(validate_admission(&pc("first", true), true, &classes).is_err());
        // Without a default, anyone may become it.
        validate_admission(&pc("second", true), true, &classes[1..]).unwrap();
    }

    #[test]
    fn system_classes_cannot_be_deleted() {
        let err = check_delete("system-node-critical").unwrap_err();
        assert_eq!(
            (err.code(), err.message.as_str()),
            (
                403,
                "priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"
            )
        );
        assert!(check_delete("system-cluster-critical").is_err());
        check_delete("system-other").unwrap();
        check_delete("high").unwrap();
    }

    #[test]
    fn system_classes_are_kubernetes_own() {
        let got: Vec<(&str, i64)> = SYSTEM_PRIORITY_CLASSES
            .iter()
            .map(|c| (c.name, c.value))
            .collect();
        assert_eq!(
            got,
            [
                ("system-node-critical", 2_000_001_000),
                ("system-cluster-critical", 2_000_000_000)
            ]
        );
        for c in SYSTEM_PRIORITY_CLASSES {
            let manifest = c.manifest();
            let mut errs = Errs::new();
            validate_create(manifest.as_object().unwrap(), &mut errs);
            assert!(errs.is_empty(), "{}: {errs:?}", c.name);
            let info = PriorityClassInfo::from_object(&manifest).unwrap();
            assert_eq!(
                (info.name.as_str(), info.value, info.global_default),
                (c.name, c.value, false)
            );
        }
    }
}
