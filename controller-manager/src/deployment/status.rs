//! A Deployment's status and conditions, pure (Kubernetes' `calculateStatus`, `syncRolloutStatus`
//! and `checkPausedConditions`).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.clone().unwrap_or_default();
    (
        s.replicas,
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
    )
}

/// A condition as `NewDeploymentCondition` makes it.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `SetDeploymentCondition`: same status and reason → unchanged; same status → the transition
/// time is kept.
pub fn set(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove(status, &condition.type_);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition);
}

pub fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

/// The counts, and the Available condition (`calculateStatus`).
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    max_unavailable: i32,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let available: i32 = all.iter().map(|rs| rs_status(rs).2).sum();
    let total: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let previous = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|rs| rs_status(rs).0).sum()),
        updated_replicas: Some(new.map_or(0, |rs| rs_status(rs).0)),
        ready_replicas: Some(all.iter().map(|rs| rs_status(rs).1).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: previous.collision_count,
        conditions: previous.conditions.clone(),
        ..DeploymentStatus::default()
    };
    if available >= replicas - max_unavailable {
        set(
            &mut status,
            condition(
                AVAILABLE,
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
            ),
        );
    } else {
        set(
            &mut status,
            condition(
                AVAILABLE,
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
            ),
        );
    }
    status
}

/// `DeploymentComplete`: every replica updated and available, and the spec observed.
pub fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    status.updated_replicas == Some(replicas)
        && status.replicas == Some(replicas)
        && status.available_replicas == Some(replicas)
        && status.observed_generation >= d.metadata.generation
}

/// `DeploymentProgressing`: more updated, ready or available pods, or fewer old ones, than last
/// reported.
fn progressing(d: &Deployment, status: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(status.replicas) - n(status.updated_replicas);
    n(status.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(status.ready_replicas) > n(old.ready_replicas)
        || n(status.available_replicas) > n(old.available_replicas)
}

pub fn progress_deadline(d: &Deployment) -> Option<i64> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
        .map(i64::from)
}

/// `DeploymentTimedOut`: no progress since the Progressing condition was last updated, for
/// longer than `progressDeadlineSeconds`.
fn timed_out(d: &Deployment, status: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    let (Some(deadline), Some(cond)) = (progress_deadline(d), get(status, PROGRESSING)) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => cond
            .last_update_time
            .as_ref()
            .and_then(|t| {
                t.0.checked_add(jiff::SignedDuration::from_secs(deadline))
                    .ok()
            })
            .is_some_and(|at| at < now),
    }
}

/// The full status after a rollout step (`syncRolloutStatus`): counts, Available, Progressing
/// (complete, progressing or timed out) and the ReplicaFailure of the ReplicaSets.
pub fn rollout(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    max_unavailable: i32,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let mut status = calculate(d, all, new, max_unavailable, now);
    let new_name = new.and_then(|rs| rs.metadata.name.clone());
    if progress_deadline(d).is_none() {
        remove(&mut status, PROGRESSING);
    }
    let current = d.status.as_ref().and_then(|s| get(s, PROGRESSING)).cloned();
    let was_complete = status.replicas == status.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some("NewReplicaSetAvailable");
    let name = d.metadata.name.clone().unwrap_or_default();
    if progress_deadline(d).is_some() && !was_complete {
        if complete(d, &status) {
            let message = match &new_name {
                Some(rs) => format!("ReplicaSet \"{rs}\" has successfully progressed."),
                None => format!("Deployment \"{name}\" has successfully progressed."),
            };
            set(
                &mut status,
                condition(PROGRESSING, "True", "NewReplicaSetAvailable", &message, now),
            );
        } else if progressing(d, &status) {
            let message = match &new_name {
                Some(rs) => format!("ReplicaSet \"{rs}\" is progressing."),
                None => format!("Deployment \"{name}\" is progressing."),
            };
            let mut cond = condition(PROGRESSING, "True", "ReplicaSetUpdated", &message, now);
            if let Some(current) = &current {
                if current.status == "True" {
                    cond.last_transition_time = current.last_transition_time.clone();
                }
                remove(&mut status, PROGRESSING);
            }
            set(&mut status, cond);
        } else if timed_out(d, &status, now) {
            let message = match &new_name {
                Some(rs) => format!("ReplicaSet \"{rs}\" has timed out progressing."),
                None => format!("Deployment \"{name}\" has timed out progressing."),
            };
            set(
                &mut status,
                condition(
                    PROGRESSING,
                    "False",
                    "ProgressDeadlineExceeded",
                    &message,
                    now,
                ),
            );
        }
    }
    // The ReplicaSets' failure (the new one's first) becomes the Deployment's.
    let failure = new.into_iter().chain(all.iter().copied()).find_map(|rs| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE && c.status == "True")
            .cloned()
    });
    match failure {
        Some(c) => set(
            &mut status,
            condition(
                REPLICA_FAILURE,
                "True",
                c.reason.as_deref().unwrap_or("FailedCreate"),
                c.message.as_deref().unwrap_or_default(),
                now,
            ),
        ),
        None => remove(&mut status, REPLICA_FAILURE),
    }
    status
}

/// `checkPausedConditions`: Progressing says Unknown/DeploymentPaused while paused, and
/// DeploymentResumed once resumed (a timeout already reported stays).
pub fn paused_conditions(d: &Deployment, status: &mut DeploymentStatus, now: jiff::Timestamp) {
    if progress_deadline(d).is_none() {
        return;
    }
    let reason = get(status, PROGRESSING).and_then(|c| c.reason.clone());
    if reason.as_deref() == Some("ProgressDeadlineExceeded") {
        return;
    }
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let shown = reason.as_deref() == Some("DeploymentPaused");
    if paused && !shown {
        set(
            status,
            condition(
                PROGRESSING,
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                now,
            ),
        );
    } else if !paused && shown {
        set(
            status,
            condition(
                PROGRESSING,
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                now,
            ),
        );
    }
}
