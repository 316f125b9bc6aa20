//! Recording core/v1 Events, as client-go's event recorder does: an Event names the object it is
//! about (`involvedObject`), a reason and a message; the same event again updates the existing
//! object's `count` and `lastTimestamp` instead of creating another (aggregation), so
//! `kubectl describe` shows `Scaled up replica set web-6d4cf56db6 from 0 to 3` once, counted.
//!
//! Recording never blocks or fails a reconcile: events are sent from their own task, and one that
//! cannot be written is logged and dropped, as client-go drops them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt as _};
use serde_json::json;

/// Events of one object kept for aggregation (the oldest are forgotten beyond this).
const REMEMBERED: usize = 4096;

/// (involved object uid, type, reason, message) → (event name, count).
type Seen = HashMap<(String, String, String, String), (String, i32)>;

/// Records events for one component (`deployment-controller`, `replicaset-controller`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: &'static str,
    seen: Arc<Mutex<Seen>>,
}

impl Recorder {
    pub fn new(client: Client, component: &'static str) -> Recorder {
        Recorder {
            client,
            component,
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records a `Normal` event about `object`.
    pub fn normal<K: Resource<DynamicType = ()>>(&self, object: &K, reason: &str, message: String) {
        self.record(object, "Normal", reason, message);
    }

    /// Records a `Warning` event about `object`.
    pub fn warning<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &str,
        message: String,
    ) {
        self.record(object, "Warning", reason, message);
    }

    fn record<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        let involved = ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: object.meta().name.clone(),
            namespace: object.meta().namespace.clone(),
            uid: object.meta().uid.clone(),
            resource_version: object.meta().resource_version.clone(),
            ..ObjectReference::default()
        };
        let recorder = self.clone();
        let (type_, reason) = (type_.to_owned(), reason.to_owned());
        tokio::spawn(async move {
            if let Err(error) = recorder.emit(involved, &type_, &reason, &message).await {
                tracing::debug!(%error, reason, "could not record an event");
            }
        });
    }

    async fn emit(
        &self,
        involved: ObjectReference,
        type_: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let namespace = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Time(jiff::Timestamp::now());
        let key = (
            involved.uid.clone().unwrap_or_default(),
            type_.to_owned(),
            reason.to_owned(),
            message.to_owned(),
        );
        let known = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((name, count)) = known {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, name, count + 1);
                    return Ok(());
                }
                // Gone (events expire): write a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let nanos = now.0.as_nanosecond();
        let name = format!("{}.{:x}", involved.name.clone().unwrap_or_default(), nanos);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            involved_object: involved,
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(type_.to_owned()),
            source: Some(EventSource {
                component: Some(self.component.to_owned()),
                host: None,
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(self.component.to_owned()),
            reporting_instance: Some(self.component.to_owned()),
            ..Event::default()
        };
        let created = api.create(&PostParams::default(), &event).await?;
        self.remember(key, created.name_any(), 1);
        Ok(())
    }

    fn remember(&self, key: (String, String, String, String), name: String, count: i32) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= REMEMBERED && !seen.contains_key(&key) {
            seen.clear();
        }
        seen.insert(key, (name, count));
    }
}
