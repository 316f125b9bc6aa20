//! Expectations: what a ReplicaSet's last sync asked for and the cache does not show yet.
//!
//! After creating or deleting pods, the controller must not trust its pod cache until the watch
//! has delivered those changes — or it would create (or delete) the same pods again. Kubernetes
//! counts expected adds and deletes and lowers the counts from event handlers; here the record
//! keeps the uids themselves and is checked against the cache (level-triggered): a creation is
//! seen once its pod is in the cache, a deletion once its pod is gone from it or terminating.
//! Creations still in flight count until they return. A record older than five minutes is
//! dropped, as Kubernetes' expectations expire, so a lost event cannot wedge a ReplicaSet.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long expectations are trusted (Kubernetes' `ExpectationsTimeout`).
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Default)]
struct Record {
    in_flight: usize,
    created: HashSet<String>,
    deleted: HashSet<String>,
    since: Option<Instant>,
}

/// What a pod looks like in the cache, for [`Expectations::satisfied`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Absent,
    Present,
    Terminating,
}

#[derive(Default)]
pub struct Expectations {
    records: Mutex<HashMap<String, Record>>,
}

impl Expectations {
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.entry(key.to_owned()).or_default();
        record.since.get_or_insert_with(Instant::now);
        f(record)
    }

    /// `count` creations are about to be sent.
    pub fn creating(&self, key: &str, count: usize) {
        self.with(key, |r| r.in_flight += count);
    }

    /// A creation returned: with the new pod's uid, or `None` when it failed.
    pub fn created(&self, key: &str, uid: Option<String>) {
        self.with(key, |r| {
            r.in_flight = r.in_flight.saturating_sub(1);
            r.created.extend(uid);
        });
    }

    /// A deletion of the pod with `uid` was sent (and did not fail).
    pub fn deleted(&self, key: &str, uid: String) {
        self.with(key, |r| {
            r.deleted.insert(uid);
        });
    }

    /// Whether the cache shows everything asked for; prunes what it shows.
    pub fn satisfied(&self, key: &str, seen: impl Fn(&str) -> Seen) -> bool {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let Some(record) = records.get_mut(key) else {
            return true;
        };
        record.created.retain(|uid| seen(uid) == Seen::Absent);
        record.deleted.retain(|uid| seen(uid) == Seen::Present);
        let expired = record.since.is_some_and(|s| s.elapsed() > TIMEOUT);
        let done = record.in_flight == 0 && record.created.is_empty() && record.deleted.is_empty();
        if done || expired {
            records.remove(key);
            return true;
        }
        false
    }

    /// The ReplicaSet is gone: forget it.
    pub fn forget(&self, key: &str) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_once_the_cache_shows_every_change() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs", |_| Seen::Absent), "nothing expected");
        e.creating("ns/rs", 2);
        e.created("ns/rs", Some("a".into()));
        assert!(
            !e.satisfied("ns/rs", |_| Seen::Absent),
            "one creation in flight"
        );
        e.created("ns/rs", None);
        assert!(
            !e.satisfied("ns/rs", |_| Seen::Absent),
            "a is not in the cache yet"
        );
        assert!(e.satisfied("ns/rs", |_| Seen::Present));
        e.deleted("ns/rs", "b".into());
        assert!(!e.satisfied("ns/rs", |_| Seen::Present));
        assert!(e.satisfied("ns/rs", |_| Seen::Terminating));
    }
}
