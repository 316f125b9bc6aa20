//! Recording core/v1 Events, as client-go's event recorder does: an Event names the object it is
//! about (`involvedObject`), a reason and a message; the same event again updates the existing
//! object's `count` and `lastTimestamp` instead of creating another (aggregation), so
//! `kubectl describe` shows `Scaled up replica set web-6d4cf56db6 from 0 to 3` once, counted.
//!
//! As client-go's `EventCorrelator` does, similar events (same object, type and reason, another
//! message) are combined once [`MAX_SIMILAR`] of them came within [`SIMILAR_WINDOW`], and each
//! object's events pass a token bucket ([`SPAM_BURST`], one more per [`SPAM_REFILL`]; the rest
//! are dropped): a ReplicaSet scaled up to 10,000 pods gets nine `Created pod: …` events and one
//! `(combined from similar events): Created pod: …` event counted up to its budget, not 10,000
//! Event objects.
//!
//! Recording never blocks or fails a reconcile: events are queued (at most [`QUEUED`]) for one
//! task that writes them in order, and one that cannot be queued or written is logged and
//! dropped, as client-go drops them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt as _};
use serde_json::json;

/// Events kept for aggregation, objects kept for similarity and spam counting (each map is
/// forgotten once it grows beyond this; client-go keeps LRU caches of 4096).
const REMEMBERED: usize = 4096;
/// Distinct messages of similar events after which they are combined (client-go's
/// `defaultAggregateMaxEvents`)…
pub const MAX_SIMILAR: usize = 10;
/// …within this long (`defaultAggregateIntervalInSeconds`).
pub const SIMILAR_WINDOW: Duration = Duration::from_secs(600);
/// Events an object may get at once (`defaultSpamBurst`)…
pub const SPAM_BURST: f64 = 25.0;
/// …and then one more per this long (`defaultSpamQPS`, 1/300).
pub const SPAM_REFILL: Duration = Duration::from_secs(300);
/// Events waiting to be written; more are dropped (client-go's broadcaster queue).
pub const QUEUED: usize = 1000;
/// What a combined event's message starts with.
const COMBINED: &str = "(combined from similar events): ";

/// (involved object uid, type, reason, message — or None for the combined event) → (event
/// name, count).
type Key = (String, String, String, Option<String>);
type Seen = HashMap<Key, (String, i32)>;

/// One event to write.
struct Pending {
    involved: ObjectReference,
    type_: String,
    reason: String,
    message: String,
}

/// What to write for an event, after aggregation and the spam filter.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Write (create, or count up the existing one under `key`) with this message.
    Write { key: Key, message: String },
    /// Over the object's budget: dropped.
    Spam,
}

/// Client-go's `EventCorrelator`, without the writing: decides for each event whether it is
/// written, and as what.
#[derive(Default)]
struct Correlator {
    /// (uid, type, reason) → when the first of the current run came, and its distinct messages.
    similar: HashMap<(String, String, String), (Instant, HashSet<String>)>,
    /// uid → tokens left and when they were counted.
    spam: HashMap<String, (f64, Instant)>,
}

impl Correlator {
    fn correlate(
        &mut self,
        uid: &str,
        type_: &str,
        reason: &str,
        message: &str,
        now: Instant,
    ) -> Verdict {
        let similar_key = (uid.to_owned(), type_.to_owned(), reason.to_owned());
        if self.similar.len() >= REMEMBERED && !self.similar.contains_key(&similar_key) {
            self.similar.clear();
        }
        let (since, messages) = self
            .similar
            .entry(similar_key)
            .or_insert_with(|| (now, HashSet::new()));
        if now.duration_since(*since) > SIMILAR_WINDOW {
            *since = now;
            messages.clear();
        }
        let (key_message, message) =
            if messages.contains(message) || messages.len() + 1 < MAX_SIMILAR {
                messages.insert(message.to_owned());
                (Some(message.to_owned()), message.to_owned())
            } else {
                (None, format!("{COMBINED}{message}"))
            };
        if self.spam.len() >= REMEMBERED && !self.spam.contains_key(uid) {
            self.spam.clear();
        }
        let (tokens, counted) = self.spam.entry(uid.to_owned()).or_insert((SPAM_BURST, now));
        *tokens = (*tokens
            + now.duration_since(*counted).as_secs_f64() / SPAM_REFILL.as_secs_f64())
        .min(SPAM_BURST);
        *counted = now;
        if *tokens < 1.0 {
            return Verdict::Spam;
        }
        *tokens -= 1.0;
        Verdict::Write {
            key: (
                uid.to_owned(),
                type_.to_owned(),
                reason.to_owned(),
                key_message,
            ),
            message,
        }
    }
}

/// Records events for one component (`deployment-controller`, `replicaset-controller`).
#[derive(Clone)]
pub struct Recorder {
    queue: tokio::sync::mpsc::Sender<Pending>,
}

/// The task that writes one recorder's events, in order.
struct Writer {
    client: Client,
    component: &'static str,
    correlator: Correlator,
    seen: Seen,
}

impl Recorder {
    /// A recorder whose events are written by a task of its own (started here, so this runs
    /// inside a Tokio runtime).
    pub fn new(client: Client, component: &'static str) -> Recorder {
        let (queue, mut pending) = tokio::sync::mpsc::channel::<Pending>(QUEUED);
        let mut writer = Writer {
            client,
            component,
            correlator: Correlator::default(),
            seen: HashMap::new(),
        };
        tokio::spawn(async move {
            while let Some(event) = pending.recv().await {
                let reason = event.reason.clone();
                if let Err(error) = writer.write(event).await {
                    tracing::debug!(%error, reason, "could not record an event");
                }
            }
        });
        Recorder { queue }
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
        let pending = Pending {
            involved,
            type_: type_.to_owned(),
            reason: reason.to_owned(),
            message,
        };
        if self.queue.try_send(pending).is_err() {
            tracing::debug!(reason, "too many events queued; dropped one");
        }
    }
}

impl Writer {
    async fn write(&mut self, event: Pending) -> Result<(), kube::Error> {
        let Pending {
            involved,
            type_,
            reason,
            message,
        } = event;
        let uid = involved.uid.clone().unwrap_or_default();
        let (key, message) =
            match self
                .correlator
                .correlate(&uid, &type_, &reason, &message, Instant::now())
            {
                Verdict::Write { key, message } => (key, message),
                Verdict::Spam => {
                    tracing::debug!(
                        reason,
                        uid,
                        "an object's events are over their budget; dropped one"
                    );
                    return Ok(());
                }
            };
        let namespace = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Time(jiff::Timestamp::now());
        if let Some((name, count)) = self.seen.get(&key).cloned() {
            let patch = json!({"count": count + 1, "lastTimestamp": now, "message": message});
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
            reason: Some(reason),
            message: Some(message),
            type_: Some(type_),
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

    fn remember(&mut self, key: Key, name: String, count: i32) {
        if self.seen.len() >= REMEMBERED && !self.seen.contains_key(&key) {
            self.seen.clear();
        }
        self.seen.insert(key, (name, count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_of(verdict: Verdict) -> (Option<String>, String) {
        match verdict {
            Verdict::Write { key, message } => (key.3, message),
            Verdict::Spam => panic!("unexpected spam verdict"),
        }
    }

    #[test]
    fn similar_events_are_combined_after_nine_distinct_messages() {
        let mut c = Correlator::default();
        let now = Instant::now();
        for i in 0..MAX_SIMILAR - 1 {
            let msg = format!("Created pod: p{i}");
            assert_eq!(
                message_of(c.correlate("rs", "Normal", "SuccessfulCreate", &msg, now)),
                (Some(msg.clone()), msg)
            );
        }
        // The tenth distinct message, and every one after, go to one combined event.
        for i in MAX_SIMILAR - 1..MAX_SIMILAR + 5 {
            let msg = format!("Created pod: p{i}");
            assert_eq!(
                message_of(c.correlate("rs", "Normal", "SuccessfulCreate", &msg, now)),
                (None, format!("(combined from similar events): {msg}"))
            );
        }
        // A message seen before is still counted on its own event.
        assert_eq!(
            message_of(c.correlate("rs", "Normal", "SuccessfulCreate", "Created pod: p0", now)).0,
            Some("Created pod: p0".into())
        );
        // Another reason, or another object, is not similar.
        assert_eq!(
            message_of(c.correlate("rs", "Normal", "SuccessfulDelete", "Deleted pod: p0", now)).0,
            Some("Deleted pod: p0".into())
        );
        // After the window, messages count from zero again.
        let later = now + SIMILAR_WINDOW + Duration::from_secs(1);
        assert_eq!(
            message_of(c.correlate("rs", "Normal", "SuccessfulCreate", "Created pod: q", later)).0,
            Some("Created pod: q".into())
        );
    }

    #[test]
    fn an_object_gets_a_burst_of_25_events_then_one_per_five_minutes() {
        let mut c = Correlator::default();
        let now = Instant::now();
        for _ in 0..25 {
            assert!(matches!(
                c.correlate("pod", "Normal", "Scheduled", "m", now),
                Verdict::Write { .. }
            ));
        }
        assert_eq!(
            c.correlate("pod", "Normal", "Scheduled", "m", now),
            Verdict::Spam
        );
        // Other objects have their own budget.
        assert!(matches!(
            c.correlate("other", "Normal", "Scheduled", "m", now),
            Verdict::Write { .. }
        ));
        let later = now + SPAM_REFILL;
        assert!(matches!(
            c.correlate("pod", "Normal", "Scheduled", "m", later),
            Verdict::Write { .. }
        ));
        assert_eq!(
            c.correlate("pod", "Normal", "Scheduled", "m", later),
            Verdict::Spam
        );
    }
}
