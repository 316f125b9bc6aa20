//! Conversion between the two served forms of an Event: `core/v1` `Event` (the storage form)
//! and `events.k8s.io/v1` `Event`, which Kubernetes stores as the same object. It follows
//! `pkg/apis/events/v1/conversion.go` and the generated `zz_generated.conversion.go`:
//!
//! | core/v1                         | events.k8s.io/v1                   |
//! |---------------------------------|------------------------------------|
//! | `metadata`                      | `metadata`                         |
//! | `eventTime`                     | `eventTime`                        |
//! | `series.{count,lastObservedTime}` | `series.{count,lastObservedTime}` |
//! | `reportingComponent`            | `reportingController`              |
//! | `reportingInstance`             | `reportingInstance`                |
//! | `action`, `reason`, `type`      | `action`, `reason`, `type`         |
//! | `involvedObject`                | `regarding`                        |
//! | `related`                       | `related`                          |
//! | `message`                       | `note`                             |
//! | `source.{component,host}`       | `deprecatedSource.{component,host}` |
//! | `firstTimestamp`                | `deprecatedFirstTimestamp`         |
//! | `lastTimestamp`                 | `deprecatedLastTimestamp`          |
//! | `count`                         | `deprecatedCount`                  |
//!
//! (The core type's Go field is `ReportingController`; only its JSON name is
//! `reportingComponent`.)
//!
//! Both functions are pure and total: fields that are absent or `null` are left out of the
//! output (never written as `null`), fields that do not belong to the target kind are dropped,
//! and nested structures (`ObjectReference`, `EventSeries`, `EventSource`) keep only their own
//! fields, as a round trip through Kubernetes' typed structs would. Malformed input (wrong types
//! anywhere) never panics: a nested structure that is not an object is dropped.
//!
//! Unlike Go's encoder, which always writes non-pointer structs (`"source": {}`,
//! `"deprecatedSource": {}`) and non-`omitempty` fields (`"reportingComponent": ""`,
//! `"eventTime": null`), an absent field here stays absent, so core → events → core is the
//! identity on every mapped field.

use api_types::fields;
use serde_json::{Map, Value};

type Obj = Map<String, Value>;

/// `apiVersion` of the `events.k8s.io/v1` form.
const EVENTS_V1_API_VERSION: &str = "events.k8s.io/v1";
/// `apiVersion` of the `core/v1` form.
const CORE_V1_API_VERSION: &str = "v1";
const KIND: &str = "Event";

/// How a field's value is carried across.
#[derive(Clone, Copy)]
enum Shape {
    /// Copied as is.
    Plain,
    /// A `core/v1` `ObjectReference` (`involvedObject`/`regarding`, `related`).
    ObjectReference,
    /// An `EventSeries`; both versions have the same two fields.
    Series,
    /// An `EventSource` (`source`/`deprecatedSource`).
    Source,
}

/// `(core/v1 name, events.k8s.io/v1 name, shape)` for every field the two forms share.
const FIELDS: &[(&str, &str, Shape)] = &[
    ("metadata", "metadata", Shape::Plain),
    ("eventTime", "eventTime", Shape::Plain),
    ("series", "series", Shape::Series),
    ("reportingComponent", "reportingController", Shape::Plain),
    ("reportingInstance", "reportingInstance", Shape::Plain),
    ("action", "action", Shape::Plain),
    ("reason", "reason", Shape::Plain),
    ("type", "type", Shape::Plain),
    ("involvedObject", "regarding", Shape::ObjectReference),
    ("related", "related", Shape::ObjectReference),
    ("message", "note", Shape::Plain),
    ("source", "deprecatedSource", Shape::Source),
    ("firstTimestamp", "deprecatedFirstTimestamp", Shape::Plain),
    ("lastTimestamp", "deprecatedLastTimestamp", Shape::Plain),
    ("count", "deprecatedCount", Shape::Plain),
];

const SERIES_FIELDS: &[&str] = &["count", "lastObservedTime"];
const SOURCE_FIELDS: &[&str] = &["component", "host"];

/// Converts a `core/v1` Event to its `events.k8s.io/v1` form
/// (`Convert_core_Event_To_v1_Event`).
pub fn core_to_events_v1(core: &Value) -> Value {
    convert(
        core,
        |(from, to, shape)| (*from, *to, *shape),
        EVENTS_V1_API_VERSION,
    )
}

/// Converts an `events.k8s.io/v1` Event to its `core/v1` form
/// (`Convert_v1_Event_To_core_Event`).
pub fn events_v1_to_core(ev: &Value) -> Value {
    convert(
        ev,
        |(to, from, shape)| (*from, *to, *shape),
        CORE_V1_API_VERSION,
    )
}

/// Builds the target object: type meta first, then every mapped field present in `input`.
/// `direction` turns a row of [`FIELDS`] into `(source name, target name, shape)`.
fn convert(
    input: &Value,
    direction: impl Fn(&(&'static str, &'static str, Shape)) -> (&'static str, &'static str, Shape),
    api_version: &str,
) -> Value {
    let mut out = Obj::new();
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from(KIND));
    if let Some(input) = input.as_object() {
        for row in FIELDS {
            let (from, to, shape) = direction(row);
            if let Some(v) = input.get(from).and_then(|v| carry(v, shape)) {
                out.insert(to.into(), v);
            }
        }
    }
    Value::Object(out)
}

/// The value to write for a present field, `None` when it must be left out.
fn carry(v: &Value, shape: Shape) -> Option<Value> {
    match shape {
        Shape::Plain => (!v.is_null()).then(|| v.clone()),
        Shape::ObjectReference => pick(v, fields::OBJECT_REFERENCE_FIELDS),
        Shape::Series => pick(v, SERIES_FIELDS),
        Shape::Source => pick(v, SOURCE_FIELDS),
    }
}

/// The object `v` restricted to `fields` (null members dropped); `None` when `v` is not an
/// object. An empty object stays an empty object.
fn pick(v: &Value, fields: &[&str]) -> Option<Value> {
    let m = v.as_object()?;
    let kept: Obj = fields
        .iter()
        .filter_map(|&f| {
            m.get(f)
                .filter(|v| !v.is_null())
                .map(|v| (f.to_string(), v.clone()))
        })
        .collect();
    Some(Value::Object(kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_core() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": "web-0.17a8c3f2",
                "namespace": "default",
                "uid": "5a3e0a36-1c1d-4d8e-9c1e-2f9b6f1f0a11",
                "resourceVersion": "42",
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "labels": {"app": "web"}
            },
            "eventTime": "2024-05-01T10:00:00.123456Z",
            "series": {"count": 3, "lastObservedTime": "2024-05-01T10:05:00.000001Z"},
            "reportingComponent": "kubelet",
            "reportingInstance": "node-1",
            "action": "Pulling",
            "reason": "Pulling",
            "type": "Normal",
            "involvedObject": {
                "kind": "Pod",
                "namespace": "default",
                "name": "web-0",
                "uid": "0c8e4e0a-7b5f-4c52-8d0e-2a7e9b3c1d22",
                "apiVersion": "v1",
                "resourceVersion": "40",
                "fieldPath": "spec.containers{web}"
            },
            "related": {"kind": "Node", "name": "node-1", "apiVersion": "v1"},
            "message": "Pulling image \"nginx:1.25\"",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T10:00:00Z",
            "lastTimestamp": "2024-05-01T10:05:00Z",
            "count": 3
        })
    }

    #[test]
    fn full_core_event_converts_and_round_trips() {
        let core = full_core();
        let ev = core_to_events_v1(&core);
        assert_eq!(
            ev,
            json!({
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": core["metadata"],
                "eventTime": "2024-05-01T10:00:00.123456Z",
                "series": {"count": 3, "lastObservedTime": "2024-05-01T10:05:00.000001Z"},
                "reportingController": "kubelet",
                "reportingInstance": "node-1",
                "action": "Pulling",
                "reason": "Pulling",
                "type": "Normal",
                "regarding": core["involvedObject"],
                "related": {"kind": "Node", "name": "node-1", "apiVersion": "v1"},
                "note": "Pulling image \"nginx:1.25\"",
                "deprecatedSource": {"component": "kubelet", "host": "node-1"},
                "deprecatedFirstTimestamp": "2024-05-01T10:00:00Z",
                "deprecatedLastTimestamp": "2024-05-01T10:05:00Z",
                "deprecatedCount": 3
            })
        );
        assert_eq!(events_v1_to_core(&ev), core);
    }

    #[test]
    fn minimal_core_event_round_trips_without_nulls() {
        let core = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p"}
        });
        let ev = core_to_events_v1(&core);
        assert_eq!(
            ev,
            json!({
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": "e1", "namespace": "default"},
                "regarding": {"kind": "Pod", "name": "p"}
            })
        );
        assert_eq!(events_v1_to_core(&ev), core);
    }

    #[test]
    fn events_v1_object_converts_to_core_field_names() {
        let ev = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e2", "namespace": "ns"},
            "eventTime": "2024-05-01T10:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000000Z"},
            "reportingController": "example.com/controller",
            "reportingInstance": "controller-abc",
            "action": "Scheduling",
            "reason": "FailedScheduling",
            "type": "Warning",
            "regarding": {"kind": "Pod", "namespace": "ns", "name": "p"},
            "related": {"kind": "Node", "name": "n"},
            "note": "0/3 nodes are available",
            "deprecatedSource": {"component": "scheduler"},
            "deprecatedFirstTimestamp": "2024-05-01T09:59:00Z",
            "deprecatedLastTimestamp": "2024-05-01T10:01:00Z",
            "deprecatedCount": 2
        });
        assert_eq!(
            events_v1_to_core(&ev),
            json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "e2", "namespace": "ns"},
                "eventTime": "2024-05-01T10:00:00.000000Z",
                "series": {"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000000Z"},
                "reportingComponent": "example.com/controller",
                "reportingInstance": "controller-abc",
                "action": "Scheduling",
                "reason": "FailedScheduling",
                "type": "Warning",
                "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p"},
                "related": {"kind": "Node", "name": "n"},
                "message": "0/3 nodes are available",
                "source": {"component": "scheduler"},
                "firstTimestamp": "2024-05-01T09:59:00Z",
                "lastTimestamp": "2024-05-01T10:01:00Z",
                "count": 2
            })
        );
        // And back again.
        assert_eq!(core_to_events_v1(&events_v1_to_core(&ev)), ev);
    }

    #[test]
    fn nulls_foreign_fields_and_malformed_values_are_dropped() {
        let core = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "e3"},
            "message": null,
            "eventTime": null,
            "note": "not a core field",
            "deprecatedCount": 7,
            "status": {"x": 1},
            "involvedObject": {"kind": "Pod", "name": "p", "extra": true, "uid": null},
            "series": {"count": 1, "state": "Ongoing"},
            "source": {},
            "related": "not-an-object"
        });
        assert_eq!(
            core_to_events_v1(&core),
            json!({
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": "e3"},
                "regarding": {"kind": "Pod", "name": "p"},
                "series": {"count": 1},
                "deprecatedSource": {}
            })
        );
        // Non-objects convert to a bare typed object instead of panicking.
        assert_eq!(
            events_v1_to_core(&json!([1, 2])),
            json!({"apiVersion": "v1", "kind": "Event"})
        );
        assert_eq!(
            core_to_events_v1(&Value::Null),
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event"})
        );
    }
}
