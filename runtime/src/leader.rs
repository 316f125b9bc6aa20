//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does it.
//!
//! A candidate takes the Lease when it is free or its holder has not renewed it for the lease
//! duration — measured on the candidate's own clock from when it last saw the Lease change, never
//! from the timestamps inside it, so clock skew between machines does not matter. The leader
//! renews every retry period; if it cannot renew within the renew deadline it has lost, and
//! [`Elected::lost`] fires so the process stops acting at once. Every write carries the Lease's
//! resourceVersion: two candidates never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// Timings, client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Timings {
        Timings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// A candidate for one Lease.
pub struct Candidate {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
}

/// Held leadership: [`Elected::lost`] completes when it is gone.
pub struct Elected {
    lost: watch::Receiver<bool>,
}

impl Elected {
    /// Completes when leadership is lost (the Lease could not be renewed in time, or another
    /// candidate holds it).
    pub async fn lost(&mut self) {
        while !*self.lost.borrow() {
            if self.lost.changed().await.is_err() {
                return;
            }
        }
    }
}

/// What a candidate last saw of the Lease, and when (on its own clock).
struct Observed {
    holder: Option<String>,
    resource_version: Option<String>,
    at: Instant,
}

impl Candidate {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timings: Timings,
    ) -> Candidate {
        Candidate {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timings,
        }
    }

    /// Waits until this candidate holds the Lease; then keeps renewing it in the background.
    pub async fn acquire(self) -> Elected {
        let mut observed: Option<Observed> = None;
        loop {
            match self.try_acquire_or_renew(&mut observed).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => tracing::warn!(lease = %self.name, %error, "leader election"),
            }
            tokio::time::sleep(self.timings.retry_period).await;
        }
        tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
        let (tx, lost) = watch::channel(false);
        tokio::spawn(async move {
            let mut last_renew = Instant::now();
            loop {
                tokio::select! {
                    // Whoever held the leadership is gone: stop renewing.
                    () = tx.closed() => return,
                    () = tokio::time::sleep(self.timings.retry_period) => {}
                }
                match self.try_acquire_or_renew(&mut observed).await {
                    Ok(true) => last_renew = Instant::now(),
                    Ok(false) => {
                        tracing::error!(lease = %self.name, "another candidate holds the lease");
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(lease = %self.name, %error, "renewing the lease failed");
                    }
                }
                if last_renew.elapsed() > self.timings.renew_deadline {
                    tracing::error!(lease = %self.name, "could not renew the lease in time");
                    break;
                }
            }
            let _ = tx.send(true);
        });
        Elected { lost }
    }

    /// One attempt: `Ok(true)` when this candidate holds the Lease afterwards.
    async fn try_acquire_or_renew(
        &self,
        observed: &mut Option<Observed>,
    ) -> Result<bool, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let duration_seconds = i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(15);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let resource_version = lease.metadata.resource_version.clone();
        // Note when the Lease last changed, on our clock.
        let changed = observed
            .as_ref()
            .is_none_or(|o| o.resource_version != resource_version || o.holder != holder);
        if changed {
            *observed = Some(Observed {
                holder: holder.clone(),
                resource_version: resource_version.clone(),
                at: Instant::now(),
            });
        }
        let mine = holder.as_deref() == Some(self.identity.as_str());
        let lease_duration = spec
            .lease_duration_seconds
            .map_or(self.timings.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(15))
            });
        let expired = observed
            .as_ref()
            .is_some_and(|o| o.at.elapsed() > lease_duration);
        if holder.is_some() && !mine && !expired {
            return Ok(false);
        }
        let mut next = spec;
        if !mine {
            next.acquire_time = Some(now.clone());
            next.lease_transitions = Some(next.lease_transitions.unwrap_or(0) + 1);
        }
        next.holder_identity = Some(self.identity.clone());
        next.lease_duration_seconds = Some(duration_seconds);
        next.renew_time = Some(now);
        lease.spec = Some(next);
        // `replace` sends the resourceVersion: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                *observed = Some(Observed {
                    holder: Some(self.identity.clone()),
                    resource_version: updated.metadata.resource_version,
                    at: Instant::now(),
                });
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}
