//! One sync of a Deployment, pure: from the Deployment, the ReplicaSets it owns and whether old
//! pods still run, the step to take now (Kubernetes' `syncDeployment` ladder: deleting → status
//! only; paused or resized → proportional scaling; otherwise one step of Recreate or
//! RollingUpdate, then history cleanup once complete).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use serde_json::{Value, json};

use super::rollout::{self, Rs};
use super::status;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotations not copied to its ReplicaSets (Kubernetes' `annotationsToSkip`).
const SKIP: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
];

/// A change to an existing ReplicaSet.
#[derive(Debug, Clone, PartialEq)]
pub struct RsUpdate {
    pub name: String,
    pub replicas: Option<i32>,
    pub min_ready_seconds: Option<i32>,
    pub annotations: BTreeMap<String, String>,
}

/// The step to take.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Option<ReplicaSet>,
    pub update: Vec<RsUpdate>,
    pub delete: Vec<String>,
    pub status: DeploymentStatus,
    /// The Deployment's revision annotation.
    pub revision: Option<String>,
    /// Look again after this many seconds (a progress deadline to check).
    pub requeue_after: Option<i64>,
}

fn replicas_of(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// A ReplicaSet for the arithmetic. Its available pods count at most up to its size: right after
/// this controller shrinks a set, its status still reports the pods it is about to lose, and
/// trusting that would shrink the old sets past `maxUnavailable`.
fn view(rs: &ReplicaSet) -> Rs {
    let replicas = replicas_of(rs);
    let reported = rs
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    Rs {
        name: rs.metadata.name.clone().unwrap_or_default(),
        created: rs
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second()),
        replicas,
        available: reported.min(replicas),
        max_replicas: annotation(rs, MAX),
    }
}

/// The pod template without the hash label, for comparing a ReplicaSet's with the Deployment's
/// (`EqualIgnoreHash`).
fn template_without_hash(template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or_default();
    let mut now_empty = false;
    if let Some(Value::Object(labels)) = value.pointer_mut("/metadata/labels") {
        labels.remove(HASH_LABEL);
        now_empty = labels.is_empty();
    }
    if now_empty && let Some(Value::Object(meta)) = value.get_mut("metadata") {
        meta.remove("labels");
    }
    value
}

/// The hash naming a template's ReplicaSet: FNV-1a (32 bits) of its JSON and the collision
/// count, in Kubernetes' alphabet without vowels (`SafeEncodeString`). (Kubernetes hashes Go's
/// printing of the struct, so the values differ from Kubernetes' for the same template; what
/// matters — the same template always gives the same name, a collision a new one — holds.)
pub fn template_hash(template: &Value, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(&serde_json::to_vec(template).unwrap_or_default());
    if let Some(count) = collision_count {
        feed(&count.to_le_bytes());
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Plans one sync of `d` over the ReplicaSets it controls. `old_pods_running`: some pod of an
/// old ReplicaSet has not finished (Recreate waits for none).
pub fn plan(
    d: &Deployment,
    owned: &[&ReplicaSet],
    old_pods_running: bool,
    now: jiff::Timestamp,
) -> Plan {
    let mut out = Plan::default();
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let strategy = spec.strategy.clone().unwrap_or_default();
    let recreate = strategy.type_.as_deref() == Some("Recreate");
    let rolling = strategy.rolling_update.clone().unwrap_or_default();
    let (surge, unavailable) = if recreate {
        (0, 0)
    } else {
        rollout::bounds(
            rolling.max_surge.as_ref(),
            rolling.max_unavailable.as_ref(),
            replicas,
        )
    };
    let wanted = template_without_hash(Some(&spec.template));
    let mut sorted: Vec<&ReplicaSet> = owned.to_vec();
    sorted.sort_by_key(|rs| {
        (
            rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
            rs.metadata.name.clone(),
        )
    });
    let new = sorted.iter().copied().find(|rs| {
        template_without_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref())) == wanted
    });
    let old: Vec<&ReplicaSet> = sorted
        .iter()
        .copied()
        .filter(|rs| new.is_none_or(|n| n.metadata.name != rs.metadata.name))
        .collect();
    let new_revision = old.iter().map(|rs| revision_of(rs)).max().unwrap_or(0) + 1;
    let paused = spec.paused.unwrap_or(false);
    let deleting = d.metadata.deletion_timestamp.is_some();

    // The annotations a ReplicaSet of this Deployment carries (`SetNewReplicaSetAnnotations`,
    // `SetReplicasAnnotations`).
    let copied: BTreeMap<String, String> = d
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !SKIP.contains(&k.as_str()))
        .collect();
    let sizes = |a: &mut BTreeMap<String, String>| {
        a.insert(DESIRED.into(), replicas.to_string());
        a.insert(MAX.into(), (replicas + surge).to_string());
    };
    let mut updates: BTreeMap<String, RsUpdate> = BTreeMap::new();
    let resize = |rs: &ReplicaSet, to: i32, updates: &mut BTreeMap<String, RsUpdate>| {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let entry = updates.entry(name.clone()).or_insert_with(|| RsUpdate {
            name,
            replicas: None,
            min_ready_seconds: None,
            annotations: BTreeMap::new(),
        });
        entry.replicas = Some(to);
        sizes(&mut entry.annotations);
    };

    // The new ReplicaSet's annotations follow the Deployment; a rolled-back one takes the next
    // revision.
    if let Some(rs) = new {
        let have = rs.metadata.annotations.clone().unwrap_or_default();
        let mut want = copied.clone();
        if revision_of(rs) < new_revision {
            want.insert(REVISION.into(), new_revision.to_string());
        }
        let missing: BTreeMap<String, String> = want
            .into_iter()
            .filter(|(k, v)| have.get(k) != Some(v))
            .collect();
        let min_ready =
            rs.spec.as_ref().and_then(|s| s.min_ready_seconds) != spec.min_ready_seconds;
        if !missing.is_empty() || min_ready {
            updates.insert(
                rs.metadata.name.clone().unwrap_or_default(),
                RsUpdate {
                    name: rs.metadata.name.clone().unwrap_or_default(),
                    replicas: None,
                    min_ready_seconds: min_ready.then_some(spec.min_ready_seconds.unwrap_or(0)),
                    annotations: missing,
                },
            );
        }
        let revision = updates
            .get(rs.metadata.name.as_deref().unwrap_or_default())
            .and_then(|u| u.annotations.get(REVISION).cloned())
            .unwrap_or_else(|| revision_of(rs).to_string());
        out.revision = Some(revision);
    }

    let all: Vec<&ReplicaSet> = sorted.clone();
    let views: Vec<Rs> = all.iter().map(|rs| view(rs)).collect();
    let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let saturated = new.is_some_and(|rs| {
        annotation(rs, DESIRED) == Some(replicas)
            && replicas_of(rs) == replicas
            && rs.status.as_ref().and_then(|s| s.available_replicas) == Some(replicas)
    });
    let scaling_event = all
        .iter()
        .filter(|rs| replicas_of(rs) > 0)
        .any(|rs| annotation(rs, DESIRED).is_some_and(|want| want != replicas));

    let create_new = |count: i32, out: &mut Plan| {
        let hash = template_hash(&wanted, d.status.as_ref().and_then(|s| s.collision_count));
        out.create = Some(new_replicaset(
            d,
            &hash,
            count,
            new_revision,
            &copied,
            surge,
        ));
        out.revision = Some(new_revision.to_string());
    };

    if deleting {
        // Status only.
    } else if paused || scaling_event {
        let by_name = |name: &str| {
            all.iter()
                .copied()
                .find(|rs| rs.metadata.name.as_deref() == Some(name))
        };
        let new_name = new.and_then(|rs| rs.metadata.name.clone());
        for (name, size) in rollout::proportional_scale(
            replicas,
            surge,
            status_replicas,
            &views,
            new_name.as_deref(),
            saturated,
        ) {
            if let Some(rs) = by_name(&name) {
                resize(rs, size, &mut updates);
            }
        }
        if paused && !scaling_event {
            out.delete = cleanup(d, &old);
        }
    } else if recreate {
        let active_old: Vec<&&ReplicaSet> = old.iter().filter(|rs| replicas_of(rs) > 0).collect();
        if !active_old.is_empty() {
            for rs in active_old {
                resize(rs, 0, &mut updates);
            }
        } else if old_pods_running {
            // Wait for the old pods to be gone.
        } else {
            match new {
                None => create_new(replicas, &mut out),
                Some(rs) if replicas_of(rs) != replicas => resize(rs, replicas, &mut updates),
                Some(_) => {}
            }
        }
    } else {
        match new {
            None => {
                let mut draft = view(&ReplicaSet::default());
                draft.replicas = 0;
                let count = rollout::new_rs_replicas(replicas, surge, &views, &draft);
                create_new(count, &mut out);
            }
            Some(rs) if replicas_of(rs) > replicas => resize(rs, replicas, &mut updates),
            Some(rs) => {
                let grow = rollout::new_rs_replicas(replicas, surge, &views, &view(rs));
                if grow != replicas_of(rs) {
                    resize(rs, grow, &mut updates);
                } else {
                    let old_views: Vec<Rs> = old.iter().map(|rs| view(rs)).collect();
                    for (name, size) in
                        rollout::scale_down_old(replicas, unavailable, &old_views, Some(&view(rs)))
                    {
                        if let Some(old_rs) = old
                            .iter()
                            .find(|o| o.metadata.name.as_deref() == Some(name.as_str()))
                        {
                            resize(old_rs, size, &mut updates);
                        }
                    }
                }
            }
        }
    }

    // Status from what the sets report now; once complete, old history beyond the limit goes.
    let mut status = status::rollout(d, &all, new, unavailable, now);
    status::paused_conditions(d, &mut status, now);
    if out.create.is_some() {
        if status::progress_deadline(d).is_some() {
            let hash = template_hash(&wanted, d.status.as_ref().and_then(|s| s.collision_count));
            let name = format!("{}-{hash}", d.metadata.name.clone().unwrap_or_default());
            status::set(
                &mut status,
                status::condition(
                    status::PROGRESSING,
                    "True",
                    "NewReplicaSetCreated",
                    &format!("Created new replica set \"{name}\""),
                    now,
                ),
            );
        }
    } else if new.is_some()
        && status::progress_deadline(d).is_some()
        && status::get(&status, status::PROGRESSING).is_none()
    {
        let name = new
            .and_then(|rs| rs.metadata.name.clone())
            .unwrap_or_default();
        status::set(
            &mut status,
            status::condition(
                status::PROGRESSING,
                "True",
                "FoundNewReplicaSet",
                &format!("Found new replica set \"{name}\""),
                now,
            ),
        );
    }
    if !deleting
        && !paused
        && out.create.is_none()
        && updates.values().all(|u| u.replicas.is_none())
        && status::complete(d, &status)
    {
        out.delete = cleanup(d, &old);
    }
    // A rollout still under way is looked at again when its deadline passes.
    if let (Some(deadline), Some(cond)) = (
        status::progress_deadline(d),
        status::get(&status, status::PROGRESSING),
    ) && cond.status == "True"
        && cond.reason.as_deref() != Some("NewReplicaSetAvailable")
        && let Some(updated) = &cond.last_update_time
    {
        let left = deadline - now.duration_since(updated.0).as_secs();
        out.requeue_after = Some(left.max(0) + 1);
    }
    out.update = updates.into_values().collect();
    out.status = status;
    out
}

/// Old ReplicaSets beyond `revisionHistoryLimit`, lowest revision first, that are empty.
fn cleanup(d: &Deployment, old: &[&ReplicaSet]) -> Vec<String> {
    let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
        return Vec::new();
    };
    let mut alive: Vec<&&ReplicaSet> = old
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let excess = alive.len() as i64 - i64::from(limit);
    if excess <= 0 {
        return Vec::new();
    }
    alive.sort_by_key(|rs| revision_of(rs));
    alive
        .into_iter()
        .take(usize::try_from(excess).unwrap_or(0))
        .filter(|rs| {
            replicas_of(rs) == 0
                && rs.status.as_ref().is_none_or(|s| s.replicas == 0)
                && rs.metadata.generation <= rs.status.as_ref().and_then(|s| s.observed_generation)
        })
        .filter_map(|rs| rs.metadata.name.clone())
        .collect()
}

/// The ReplicaSet for the Deployment's current template: named `<deployment>-<hash>`, the hash
/// label on its template and selector, a controller ownerReference.
fn new_replicaset(
    d: &Deployment,
    hash: &str,
    replicas: i32,
    revision: i64,
    copied: &BTreeMap<String, String>,
    surge: i32,
) -> ReplicaSet {
    let spec = d.spec.clone().unwrap_or_default();
    let mut template = serde_json::to_value(&spec.template).unwrap_or_default();
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = serde_json::to_value(&spec.selector).unwrap_or_default();
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut annotations = copied.clone();
    annotations.insert(REVISION.into(), revision.to_string());
    let want = spec.replicas.unwrap_or(1);
    annotations.insert(DESIRED.into(), want.to_string());
    annotations.insert(MAX.into(), (want + surge).to_string());
    let name = d.metadata.name.clone().unwrap_or_default();
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("{name}-{hash}"),
            "namespace": d.metadata.namespace,
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                "uid": d.metadata.uid, "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": spec.min_ready_seconds.unwrap_or(0),
            "selector": selector,
            "template": template
        }
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn deployment(replicas: i32, image: &str, strategy: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": strategy,
                "revisionHistoryLimit": 1,
                "progressDeadlineSeconds": 600,
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": image}]}}
            }
        }))
        .unwrap()
    }

    fn rolling(surge: Value, unavailable: Value) -> Value {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    }

    /// A simulated cluster: the plan's ReplicaSets, whose pods exist at once and become available
    /// one step after they appear.
    struct Sim {
        d: Deployment,
        sets: Vec<ReplicaSet>,
        clock: i64,
    }

    impl Sim {
        fn now(&self) -> jiff::Timestamp {
            jiff::Timestamp::from_second(1_000_000 + self.clock).unwrap()
        }

        /// One sync and what follows it; returns whether anything changed.
        fn step(&mut self) -> bool {
            self.clock += 1;
            let owned: Vec<&ReplicaSet> = self.sets.iter().collect();
            let plan = plan(&self.d, &owned, false, self.now());
            let changed = plan.create.is_some() || plan.update.iter().any(|u| u.replicas.is_some());
            if let Some(mut rs) = plan.create {
                rs.metadata.creation_timestamp = Some(Time(self.now()));
                rs.metadata.uid = rs.metadata.name.clone();
                self.sets.push(rs);
            }
            for update in plan.update {
                let rs = self
                    .sets
                    .iter_mut()
                    .find(|rs| rs.metadata.name.as_deref() == Some(update.name.as_str()))
                    .unwrap();
                if let Some(n) = update.replicas {
                    rs.spec.as_mut().unwrap().replicas = Some(n);
                }
                rs.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .extend(update.annotations);
            }
            self.sets
                .retain(|rs| !plan.delete.contains(rs.metadata.name.as_ref().unwrap()));
            // The ReplicaSet controller and the kubelet: pods that existed before this step are
            // available now; new ones are not yet; removed ones are gone.
            for rs in &mut self.sets {
                let want = replicas_of(rs);
                let status = rs.status.get_or_insert_with(Default::default);
                let existed = status.replicas;
                status.replicas = want;
                status.available_replicas = Some(existed.min(want));
                status.ready_replicas = status.available_replicas;
                status.observed_generation = rs.metadata.generation;
            }
            let mut d_status = plan.status;
            d_status.observed_generation = self.d.metadata.generation;
            self.d.status = Some(d_status);
            if let Some(revision) = plan.revision {
                self.d
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(REVISION.into(), revision);
            }
            changed
        }

        fn total(&self) -> i32 {
            self.sets.iter().map(replicas_of).sum()
        }

        fn available(&self) -> i32 {
            self.sets
                .iter()
                .map(|rs| {
                    rs.status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .unwrap_or(0)
                })
                .sum()
        }

        /// Steps until three syncs in a row change nothing.
        fn settle(&mut self) {
            let mut quiet = 0;
            for _ in 0..500 {
                if self.step() {
                    quiet = 0;
                } else {
                    quiet += 1;
                    if quiet == 3 {
                        return;
                    }
                }
            }
            panic!(
                "no convergence: {:?}",
                self.sets.iter().map(view).collect::<Vec<_>>()
            );
        }

        fn change_image(&mut self, image: &str) {
            self.d
                .spec
                .as_mut()
                .unwrap()
                .template
                .spec
                .as_mut()
                .unwrap()
                .containers[0]
                .image = Some(image.into());
            self.d.metadata.generation = Some(self.d.metadata.generation.unwrap_or(1) + 1);
        }
    }

    fn sizes(sim: &Sim) -> Vec<(String, i32)> {
        sim.sets
            .iter()
            .map(|rs| {
                let image = rs
                    .spec
                    .as_ref()
                    .unwrap()
                    .template
                    .as_ref()
                    .unwrap()
                    .spec
                    .as_ref()
                    .unwrap()
                    .containers[0]
                    .image
                    .clone()
                    .unwrap();
                (image, replicas_of(rs))
            })
            .collect()
    }

    #[test]
    fn a_rolling_update_never_leaves_its_bounds_and_ends_with_the_new_template() {
        let values = [
            json!(0),
            json!(1),
            json!(2),
            json!(3),
            json!("25%"),
            json!("50%"),
            json!("100%"),
        ];
        for replicas in [0, 1, 2, 3, 5, 10] {
            for surge in &values {
                for unavailable in &values {
                    let strategy = rolling(surge.clone(), unavailable.clone());
                    let d = deployment(replicas, "v1", strategy);
                    let (max_surge, max_unavailable) = {
                        let r = d
                            .spec
                            .as_ref()
                            .unwrap()
                            .strategy
                            .clone()
                            .unwrap()
                            .rolling_update
                            .unwrap();
                        rollout::bounds(r.max_surge.as_ref(), r.max_unavailable.as_ref(), replicas)
                    };
                    let mut sim = Sim {
                        d,
                        sets: Vec::new(),
                        clock: 0,
                    };
                    sim.settle();
                    assert_eq!(sizes(&sim), [("v1".to_string(), replicas)]);
                    sim.change_image("v2");
                    let floor = replicas - max_unavailable;
                    for _ in 0..500 {
                        let changed = sim.step();
                        let case = format!(
                            "replicas {replicas}, surge {surge}, unavailable {unavailable}: {:?}",
                            sizes(&sim)
                        );
                        assert!(sim.total() <= replicas + max_surge, "too many pods, {case}");
                        assert!(
                            sim.available() >= floor.min(replicas),
                            "too few available, {case}"
                        );
                        if !changed
                            && sizes(&sim)
                                .iter()
                                .all(|(image, n)| image == "v2" || *n == 0)
                            && sim.available() == replicas
                        {
                            break;
                        }
                    }
                    let settled: Vec<(String, i32)> =
                        sizes(&sim).into_iter().filter(|(_, n)| *n > 0).collect();
                    let want: Vec<(String, i32)> = if replicas > 0 {
                        vec![("v2".to_string(), replicas)]
                    } else {
                        vec![]
                    };
                    assert_eq!(
                        settled, want,
                        "replicas {replicas}, surge {surge}, unavailable {unavailable}"
                    );
                }
            }
        }
    }

    #[test]
    fn first_sync_creates_the_hashed_replicaset_with_revision_1() {
        let d = deployment(10, "v1", rolling(json!("25%"), json!("25%")));
        let out = plan(&d, &[], false, jiff::Timestamp::from_second(100).unwrap());
        let rs = out.create.expect("a new ReplicaSet");
        let hash = rs.metadata.labels.as_ref().unwrap()[HASH_LABEL].clone();
        assert_eq!(
            rs.metadata.name.as_deref(),
            Some(format!("web-{hash}").as_str())
        );
        assert_eq!(
            rs.spec.as_ref().unwrap().replicas,
            Some(10),
            "nothing else runs: the surge allows all"
        );
        assert_eq!(
            rs.spec
                .as_ref()
                .unwrap()
                .selector
                .match_labels
                .as_ref()
                .unwrap()[HASH_LABEL],
            hash
        );
        let annotations = rs.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[REVISION], "1");
        assert_eq!(annotations[DESIRED], "10");
        assert_eq!(annotations[MAX], "13");
        assert_eq!(out.revision.as_deref(), Some("1"));
        let progressing = status::get(&out.status, status::PROGRESSING).unwrap();
        assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetCreated"));
        // The same template always hashes the same; a collision count changes it.
        let template = template_without_hash(Some(&d.spec.as_ref().unwrap().template));
        assert_eq!(template_hash(&template, None), hash);
        assert_ne!(template_hash(&template, Some(1)), hash);
    }

    #[test]
    fn recreate_scales_old_to_zero_then_waits_then_creates() {
        let mut sim = Sim {
            d: deployment(3, "v1", json!({"type": "Recreate"})),
            sets: Vec::new(),
            clock: 0,
        };
        sim.settle();
        sim.change_image("v2");
        sim.step();
        assert_eq!(
            sizes(&sim),
            [("v1".to_string(), 0)],
            "old scaled to zero first"
        );
        let owned: Vec<&ReplicaSet> = sim.sets.iter().collect();
        let waiting = plan(&sim.d, &owned, true, sim.now());
        assert!(waiting.create.is_none(), "old pods still running: wait");
        sim.settle();
        assert_eq!(
            sizes(&sim)
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect::<Vec<_>>(),
            [("v2".to_string(), 3)]
        );
    }

    #[test]
    fn rollback_reuses_the_old_replicaset_with_the_next_revision_and_history_is_limited() {
        let mut sim = Sim {
            d: deployment(2, "v1", rolling(json!(1), json!(0))),
            sets: Vec::new(),
            clock: 0,
        };
        sim.settle();
        sim.change_image("v2");
        sim.settle();
        sim.change_image("v3");
        sim.settle();
        // revisionHistoryLimit 1: of the two old sets, only the newest stays.
        assert_eq!(sizes(&sim), [("v2".to_string(), 0), ("v3".to_string(), 2)]);
        sim.change_image("v2");
        sim.settle();
        let v2 = sim.sets.iter().find(|rs| sizes_of(rs) == "v2").unwrap();
        assert_eq!(v2.metadata.annotations.as_ref().unwrap()[REVISION], "4");
        assert_eq!(replicas_of(v2), 2);
        assert_eq!(sim.d.metadata.annotations.as_ref().unwrap()[REVISION], "4");
    }

    fn sizes_of(rs: &ReplicaSet) -> String {
        rs.spec
            .as_ref()
            .unwrap()
            .template
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone()
            .unwrap()
    }

    #[test]
    fn paused_deployments_scale_but_do_not_roll() {
        let mut sim = Sim {
            d: deployment(2, "v1", rolling(json!(1), json!(0))),
            sets: Vec::new(),
            clock: 0,
        };
        sim.settle();
        sim.d.spec.as_mut().unwrap().paused = Some(true);
        sim.change_image("v2");
        sim.d.spec.as_mut().unwrap().replicas = Some(5);
        sim.settle();
        assert_eq!(sizes(&sim), [("v1".to_string(), 5)]);
        let progressing = status::get(sim.d.status.as_ref().unwrap(), status::PROGRESSING).unwrap();
        assert_eq!(progressing.reason.as_deref(), Some("DeploymentPaused"));
        sim.d.spec.as_mut().unwrap().paused = Some(false);
        sim.settle();
        assert_eq!(
            sizes(&sim)
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect::<Vec<_>>(),
            [("v2".to_string(), 5)]
        );
    }

    #[test]
    fn a_stalled_rollout_exceeds_its_progress_deadline() {
        let mut d = deployment(2, "v1", rolling(json!(1), json!(0)));
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(10);
        let start = jiff::Timestamp::from_second(1_000).unwrap();
        let first = plan(&d, &[], false, start);
        d.status = Some(first.status);
        assert_eq!(first.requeue_after, Some(11));
        // Its pods never become available: after the deadline, ProgressDeadlineExceeded.
        let mut rs = first.create.unwrap();
        rs.metadata.creation_timestamp = Some(Time(start));
        rs.status = Some(Default::default());
        rs.status.as_mut().unwrap().replicas = 2;
        let later = plan(
            &d,
            &[&rs],
            false,
            start
                .checked_add(jiff::SignedDuration::from_secs(5))
                .unwrap(),
        );
        d.status = Some(later.status);
        let late = plan(
            &d,
            &[&rs],
            false,
            start
                .checked_add(jiff::SignedDuration::from_secs(30))
                .unwrap(),
        );
        let progressing = status::get(&late.status, status::PROGRESSING).unwrap();
        assert_eq!(
            progressing.reason.as_deref(),
            Some("ProgressDeadlineExceeded"),
            "{progressing:?}"
        );
        assert_eq!(progressing.status, "False");
    }
}
