//! Zones and the eviction rate (Kubernetes' zone states), pure: how disrupted is a zone, how fast
//! may its nodes be evicted, and the token bucket that spaces them.

use std::time::Duration;

/// The zone label; nodes without it share the zone `""`.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Above this many nodes a partially disrupted zone still evicts, at the secondary rate
/// (kube-controller-manager's `--large-cluster-size-threshold`, 50).
pub const LARGE_CLUSTER_THRESHOLD: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    /// At least `unhealthy_zone_threshold` of the zone (and more than two nodes) unhealthy.
    PartialDisruption,
    /// Every node of the zone unhealthy.
    FullDisruption,
}

/// Kubernetes' `ComputeZoneState` over (ready, not ready) node counts.
pub fn zone_state(ready: usize, not_ready: usize, unhealthy_threshold: f64) -> ZoneState {
    if not_ready > 0 && ready == 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= unhealthy_threshold
    {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// The rates, as kube-controller-manager's flags.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// `--node-eviction-rate`, nodes per second.
    pub eviction: f64,
    /// `--secondary-node-eviction-rate`.
    pub secondary: f64,
    /// `--unhealthy-zone-threshold`.
    pub unhealthy_zone_threshold: f64,
    /// `--large-cluster-size-threshold`.
    pub large_cluster_threshold: usize,
}

/// Nodes per second a zone may have evicted (Kubernetes' `setLimiterInZone`): the normal rate
/// when Normal or fully disrupted (full disruption of every zone at once stops everything, see
/// [`all_fully_disrupted`]), the secondary rate when partially disrupted in a large zone, none in
/// a small one.
pub fn zone_rate(state: ZoneState, zone_size: usize, rates: &Rates) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => rates.eviction,
        ZoneState::PartialDisruption if zone_size > rates.large_cluster_threshold => {
            rates.secondary
        }
        ZoneState::PartialDisruption => 0.0,
    }
}

/// Every zone fully disrupted: most likely the control plane lost its nodes rather than the nodes
/// failing, so nothing is evicted and the NoExecute taints go (Kubernetes' master disruption).
pub fn all_fully_disrupted<'a>(states: impl IntoIterator<Item = &'a ZoneState>) -> bool {
    let mut any = false;
    for state in states {
        if *state != ZoneState::FullDisruption {
            return false;
        }
        any = true;
    }
    any
}

/// A token bucket of burst 1 (client-go's flowcontrol rate limiter as the controller uses it),
/// on an elapsed-time clock the caller provides.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Duration,
}

impl Bucket {
    pub fn new(now: Duration) -> Bucket {
        Bucket {
            tokens: 1.0,
            last: now,
        }
    }

    /// Takes a token at `rate` per second if one is there.
    pub fn try_take(&mut self, now: Duration, rate: f64) -> bool {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        if rate > 0.0 {
            self.tokens = (self.tokens + elapsed * rate).min(1.0);
        }
        if rate > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_states() {
        use ZoneState::*;
        let cases = [
            ((3, 0), Normal),
            ((0, 0), Normal),
            ((0, 1), FullDisruption),
            ((0, 5), FullDisruption),
            ((1, 2), Normal),            // two unhealthy never partial
            ((2, 3), PartialDisruption), // 0.6 ≥ 0.55
            ((3, 3), Normal),            // 0.5 < 0.55
            ((1, 99), PartialDisruption),
        ];
        for ((ready, not_ready), want) in cases {
            assert_eq!(
                zone_state(ready, not_ready, 0.55),
                want,
                "{ready}/{not_ready}"
            );
        }
    }

    #[test]
    fn zone_rates() {
        let rates = Rates {
            eviction: 0.1,
            secondary: 0.01,
            unhealthy_zone_threshold: 0.55,
            large_cluster_threshold: 50,
        };
        assert_eq!(zone_rate(ZoneState::Normal, 10, &rates), 0.1);
        assert_eq!(zone_rate(ZoneState::FullDisruption, 10, &rates), 0.1);
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 10, &rates), 0.0);
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 51, &rates), 0.01);
        assert!(all_fully_disrupted(&[ZoneState::FullDisruption]));
        assert!(!all_fully_disrupted(&[
            ZoneState::FullDisruption,
            ZoneState::Normal
        ]));
        assert!(!all_fully_disrupted(&[]));
    }

    #[test]
    fn bucket_spaces_takes_by_the_rate() {
        let s = Duration::from_secs_f64;
        let mut bucket = Bucket::new(s(0.0));
        assert!(bucket.try_take(s(0.0), 0.5), "burst of one");
        assert!(!bucket.try_take(s(0.1), 0.5));
        assert!(!bucket.try_take(s(1.9), 0.5));
        assert!(bucket.try_take(s(2.0), 0.5));
        assert!(!bucket.try_take(s(3.0), 0.5));
        // No refill at rate 0.
        let mut stopped = Bucket::new(s(0.0));
        assert!(!stopped.try_take(s(100.0), 0.0));
    }
}
