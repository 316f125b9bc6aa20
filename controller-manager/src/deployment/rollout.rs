//! Rollout arithmetic, pure (Kubernetes' `deployment/util` and `rolling.go`): how many pods a
//! rolling update may add or must keep, and how a scaled Deployment's replicas are shared out.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A ReplicaSet as the arithmetic sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rs {
    pub name: String,
    /// Creation time, seconds (older first when sorting).
    pub created: i64,
    pub replicas: i32,
    pub available: i32,
    /// `deployment.kubernetes.io/max-replicas` when set.
    pub max_replicas: Option<i32>,
}

/// `maxSurge`/`maxUnavailable` as counts of `desired` (`ResolveFenceposts`): a percentage of
/// surge rounds up, of unavailability rounds down — 25 % of 10 is 3 to surge, 2 unavailable —
/// and if both come out zero, one pod may be unavailable, so a rollout can always move.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let quarter = IntOrString::String("25%".into());
    let surge = scaled(max_surge.unwrap_or(&quarter), desired, true);
    let unavailable = scaled(max_unavailable.unwrap_or(&quarter), desired, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// An int-or-percent as a count of `total` (`GetScaledValueFromIntOrPercent`).
pub fn scaled(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let Some(percent) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return 0;
            };
            let product = percent * i64::from(total);
            let value = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(value).unwrap_or(i32::MAX)
        }
    }
}

/// The rolling-update bounds of a Deployment of `replicas`: (max surge, max unavailable), the
/// latter at most `replicas` (`MaxUnavailable`).
pub fn bounds(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    replicas: i32,
) -> (i32, i32) {
    let (surge, unavailable) = resolve_fenceposts(max_surge, max_unavailable, replicas);
    (surge, unavailable.min(replicas).max(0))
}

/// The new ReplicaSet's size for the next step of a rolling update (`NewRSNewReplicas`): grow
/// it as far as `replicas + maxSurge` pods in all allows, never past `replicas`.
pub fn new_rs_replicas(replicas: i32, max_surge: i32, all: &[Rs], new: &Rs) -> i32 {
    let current: i32 = all.iter().map(|rs| rs.replicas).sum();
    let max_total = replicas + max_surge;
    if current >= max_total {
        return new.replicas;
    }
    let grow = (max_total - current).min(replicas - new.replicas).max(0);
    new.replicas + grow
}

/// How far the old ReplicaSets may shrink this step (`reconcileOldReplicaSets`): first their
/// unavailable pods, then available ones while `replicas − maxUnavailable` stay available.
/// Returns the new sizes of the old sets that change, oldest first.
pub fn scale_down_old(
    replicas: i32,
    max_unavailable: i32,
    old: &[Rs],
    new: Option<&Rs>,
) -> Vec<(String, i32)> {
    let old_total: i32 = old.iter().map(|rs| rs.replicas).sum();
    if old_total == 0 {
        return Vec::new();
    }
    let all_total = old_total + new.map_or(0, |rs| rs.replicas);
    let min_available = replicas - max_unavailable;
    let new_unavailable = new.map_or(0, |rs| (rs.replicas - rs.available).max(0));
    let max_scaled_down = all_total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut sorted: Vec<Rs> = old.to_vec();
    sorted.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    // Unhealthy pods of old sets go first: they count for nothing.
    let mut cleaned = 0;
    for rs in sorted.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = (rs.replicas - rs.available).max(0);
        if rs.replicas == 0 || unhealthy == 0 {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(unhealthy);
        rs.replicas -= down;
        cleaned += down;
    }
    // Then available pods, as long as enough stay available in all (counted as the sets last
    // reported them, as Kubernetes counts).
    let available: i32 =
        sorted.iter().map(|rs| rs.available).sum::<i32>() + new.map_or(0, |rs| rs.available);
    if available > min_available {
        let mut to_remove = available - min_available;
        for rs in sorted.iter_mut() {
            if to_remove <= 0 {
                break;
            }
            if rs.replicas == 0 {
                continue;
            }
            let down = rs.replicas.min(to_remove);
            rs.replicas -= down;
            to_remove -= down;
        }
    }
    sorted
        .into_iter()
        .filter(|rs| {
            old.iter()
                .any(|o| o.name == rs.name && o.replicas != rs.replicas)
        })
        .map(|rs| (rs.name, rs.replicas))
        .collect()
}

/// Proportional scaling (`scale`): when a Deployment's size changes mid-rollout, the pods to add
/// (or remove) are shared among the active ReplicaSets in proportion to their sizes, leftovers to
/// the largest. `new` is the new set's name if any. Returns the target size of every set that
/// changes.
pub fn proportional_scale(
    replicas: i32,
    max_surge: i32,
    status_replicas: i32,
    sets: &[Rs],
    new: Option<&str>,
    new_saturated: bool,
) -> Vec<(String, i32)> {
    let mut active: Vec<&Rs> = sets.iter().filter(|rs| rs.replicas > 0).collect();
    // One active set (or none: the newest) takes the whole size.
    if active.len() <= 1 {
        let target = match active.first() {
            Some(rs) => Some(*rs),
            None => new
                .and_then(|n| sets.iter().find(|rs| rs.name == n))
                .or_else(|| sets.iter().max_by_key(|rs| (rs.created, rs.name.clone()))),
        };
        return target
            .filter(|rs| rs.replicas != replicas)
            .map(|rs| vec![(rs.name.clone(), replicas)])
            .unwrap_or_default();
    }
    // The new set is full: the old ones go.
    if new_saturated {
        return active
            .iter()
            .filter(|rs| Some(rs.name.as_str()) != new)
            .map(|rs| (rs.name.clone(), 0))
            .collect();
    }
    let total: i32 = active.iter().map(|rs| rs.replicas).sum();
    let allowed = if replicas > 0 {
        replicas + max_surge
    } else {
        0
    };
    let to_add = allowed - total;
    if to_add == 0 {
        return Vec::new();
    }
    // Larger sets first; among equal sizes, newer first when growing, older first when shrinking.
    active.sort_by(|a, b| {
        b.replicas.cmp(&a.replicas).then(if to_add > 0 {
            b.created.cmp(&a.created)
        } else {
            a.created.cmp(&b.created)
        })
    });
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::new();
    for rs in &active {
        let proportion = proportion(rs, replicas, max_surge, status_replicas, to_add, added);
        sizes.push((rs.name.clone(), rs.replicas + proportion));
        added += proportion;
    }
    if let Some(first) = sizes.first_mut() {
        first.1 = (first.1 + to_add - added).max(0);
    }
    sizes
        .into_iter()
        .filter(|(name, size)| {
            active
                .iter()
                .any(|rs| &rs.name == name && rs.replicas != *size)
        })
        .collect()
}

/// `GetReplicaSetProportion`: this set's share of `to_add`, bounded by what is left to add.
fn proportion(
    rs: &Rs,
    replicas: i32,
    max_surge: i32,
    status_replicas: i32,
    to_add: i32,
    added: i32,
) -> i32 {
    if rs.replicas == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if replicas == 0 {
        -rs.replicas
    } else {
        let deployment_replicas = replicas + max_surge;
        let annotated = rs.max_replicas.unwrap_or(status_replicas);
        if annotated == 0 {
            0
        } else {
            let size =
                f64::from(rs.replicas) * f64::from(deployment_replicas) / f64::from(annotated);
            size.round() as i32 - rs.replicas
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i32) -> IntOrString {
        IntOrString::Int(n)
    }
    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }
    fn rs(name: &str, created: i64, replicas: i32, available: i32) -> Rs {
        Rs {
            name: name.into(),
            created,
            replicas,
            available,
            max_replicas: None,
        }
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        // (maxSurge, maxUnavailable, replicas) → (surge, unavailable)
        let cases = [
            (pct("25%"), pct("25%"), 10, (3, 2)),
            (pct("25%"), pct("25%"), 4, (1, 1)),
            (pct("25%"), pct("25%"), 1, (1, 0)),
            (pct("0%"), pct("25%"), 3, (0, 1)),
            (pct("0%"), pct("0%"), 3, (0, 1)),
            (int(0), int(0), 5, (0, 1)),
            (int(2), int(0), 5, (2, 0)),
            (pct("50%"), pct("50%"), 5, (3, 2)),
            (pct("100%"), pct("100%"), 3, (3, 3)),
            (int(1), pct("10%"), 9, (1, 0)),
            (pct("10%"), pct("10%"), 9, (1, 0)),
            (pct("30%"), int(1), 0, (0, 1)),
        ];
        for (surge, unavailable, replicas, want) in cases {
            assert_eq!(
                resolve_fenceposts(Some(&surge), Some(&unavailable), replicas),
                want,
                "{surge:?} {unavailable:?} {replicas}"
            );
        }
        assert_eq!(
            resolve_fenceposts(None, None, 10),
            (3, 2),
            "defaults are 25%"
        );
        assert_eq!(
            bounds(Some(&int(0)), Some(&int(5)), 3),
            (0, 3),
            "at most replicas"
        );
    }

    #[test]
    fn the_new_set_grows_within_the_surge() {
        let new = rs("new", 2, 0, 0);
        let old = rs("old", 1, 10, 10);
        // 10 replicas, surge 3: the new set may start 3 pods.
        assert_eq!(new_rs_replicas(10, 3, &[old.clone(), new.clone()], &new), 3);
        // Already at 13 pods in all: no more.
        let new3 = rs("new", 2, 3, 0);
        assert_eq!(
            new_rs_replicas(10, 3, &[old.clone(), new3.clone()], &new3),
            3
        );
        // Never past replicas.
        let new9 = rs("new", 2, 9, 9);
        assert_eq!(
            new_rs_replicas(10, 3, &[rs("old", 1, 1, 1), new9.clone()], &new9),
            10
        );
    }

    #[test]
    fn old_sets_shrink_unhealthy_first_then_within_max_unavailable() {
        // 10 replicas, 2 unavailable allowed; old 10 (all available), new 3 (none available).
        let old = [rs("old", 1, 10, 10)];
        let new = rs("new", 2, 3, 0);
        // 13 pods, min available 8, 3 new unavailable: 13 - 8 - 3 = 2 may go.
        assert_eq!(
            scale_down_old(10, 2, &old, Some(&new)),
            [("old".to_string(), 8)]
        );
        // Unhealthy old pods go first, and count for nothing.
        let old = [rs("old", 1, 10, 6)];
        assert_eq!(
            scale_down_old(10, 2, &old, Some(&rs("new", 2, 0, 0))),
            [("old".to_string(), 8)]
        );
        // Nothing to spare.
        let old = [rs("old", 1, 8, 8)];
        assert!(scale_down_old(10, 2, &old, Some(&rs("new", 2, 2, 0))).is_empty());
        // Oldest first across several old sets.
        let old = [rs("b", 2, 2, 2), rs("a", 1, 2, 2)];
        // 6 available, 2 must stay: 4 go, the oldest set first.
        assert_eq!(
            scale_down_old(4, 2, &old, Some(&rs("new", 3, 2, 2))),
            [("a".to_string(), 0), ("b".to_string(), 0)]
        );
    }

    #[test]
    fn proportional_scaling_shares_the_change() {
        // Mid-rollout 10 → 15 with surge 3: old 8 and new 5 (max-replicas 13) → 18 pods allowed.
        let mut old = rs("old", 1, 8, 8);
        old.max_replicas = Some(13);
        let mut new = rs("new", 2, 5, 0);
        new.max_replicas = Some(13);
        let out = proportional_scale(15, 4, 10, &[old.clone(), new.clone()], Some("new"), false);
        // 19 allowed, 6 to add: old gets round(8×19/13)−8 = 4, new round(5×19/13)−5 = 2.
        assert_eq!(out, [("old".to_string(), 12), ("new".to_string(), 7)]);
        // Scaling down shares the removal the same way.
        let out = proportional_scale(5, 2, 10, &[old, new], Some("new"), false);
        assert_eq!(out, [("old".to_string(), 4), ("new".to_string(), 3)]);
        // One active set takes it all; a saturated new set empties the old ones.
        assert_eq!(
            proportional_scale(7, 2, 3, &[rs("a", 1, 3, 3)], None, false),
            [("a".to_string(), 7)]
        );
        assert_eq!(
            proportional_scale(
                3,
                1,
                3,
                &[rs("old", 1, 1, 1), rs("new", 2, 3, 3)],
                Some("new"),
                true
            ),
            [("old".to_string(), 0)]
        );
    }
}
