//! What Ferry's controllers and scheduler stand on: shared informers ([`informer`]), work queues
//! ([`queue`]), the worker loop that drains a queue into a reconcile function ([`run_workers`]),
//! the event recorder ([`events`]), leader election on a Lease ([`leader`]) and the pod as their
//! informers hold it ([`pod`]).

pub mod events;
pub mod http;
pub mod informer;
pub mod leader;
pub mod pod;
pub mod queue;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

pub use events::Recorder;
pub use informer::{Change, Informer};
pub use queue::WorkQueue;

/// What a reconcile asks for when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing more until something changes.
    AwaitChange,
    /// Look again after a while (a deadline to check, expectations to wait out).
    RequeueAfter(Duration),
}

/// `namespace/name` (or `name`), the key controllers queue.
pub fn key_of(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// Splits a key into (namespace, name).
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// Runs `workers` tasks that take keys from `queue` and reconcile them, one key at a time per
/// worker and never one key in two workers; failures come back with backoff. Returns when the
/// queue shuts down.
pub async fn run_workers<F, Fut, E>(
    controller: &'static str,
    queue: Arc<WorkQueue<String>>,
    workers: usize,
    reconcile: F,
) where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let queue = Arc::clone(&queue);
        let reconcile = reconcile.clone();
        tasks.spawn(async move {
            while let Some(key) = queue.get().await {
                let span = tracing::info_span!("reconcile", controller, key = %key);
                match reconcile(key.clone()).instrument(span).await {
                    Ok(Action::AwaitChange) => queue.forget(&key),
                    Ok(Action::RequeueAfter(after)) => {
                        queue.forget(&key);
                        queue.add_after(key.clone(), after);
                    }
                    Err(error) => {
                        tracing::warn!(controller, key = %key, %error, "reconcile failed; retrying");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
