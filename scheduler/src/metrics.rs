//! kube-scheduler's metrics, by their Kubernetes names, in Prometheus' text format:
//! `scheduler_schedule_attempts_total{profile,result}`,
//! `scheduler_scheduling_attempt_duration_seconds{profile,result}` (histogram, 1 ms doubling
//! 15 times; from the start of the cycle to the end of the binding for scheduled pods, as
//! kube-scheduler measures it), `scheduler_scheduling_algorithm_duration_seconds` (the
//! decision alone), `scheduler_pending_pods{queue}` and `scheduler_pod_scheduling_duration_seconds`
//! (histogram, 10 ms doubling 20 times; from first entering the queue to being bound).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::queue::Pending;

pub const PROFILE: &str = "default-scheduler";
pub const RESULTS: [&str; 3] = ["scheduled", "unschedulable", "error"];

/// A cumulative histogram with fixed upper bounds.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// `count` buckets starting at `start`, each `factor` times the previous (Prometheus'
    /// `ExponentialBuckets`).
    pub fn exponential(start: f64, factor: f64, count: usize) -> Histogram {
        let bounds: Vec<f64> = (0..count).map(|i| start * factor.powi(i as i32)).collect();
        Histogram {
            counts: vec![0; bounds.len()],
            bounds,
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, seconds: f64) {
        self.sum += seconds;
        self.count += 1;
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The upper bound of the bucket holding quantile `q` (what Prometheus' `histogram_quantile`
    /// would interpolate within); +Inf when it lies beyond the last bucket.
    pub fn quantile_bound(&self, q: f64) -> f64 {
        let rank = (q * self.count as f64).ceil() as u64;
        let mut seen = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            seen += count;
            if seen >= rank.max(1) {
                return *bound;
            }
        }
        f64::INFINITY
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug)]
struct Inner {
    attempts: [u64; 3],
    attempt_duration: [Histogram; 3],
    algorithm_duration: Histogram,
    /// By attempts needed: 1, 2, …, and "15+" lumped at the end as kube's label does not.
    pod_scheduling: std::collections::BTreeMap<u32, Histogram>,
}

/// The scheduler's metrics.
#[derive(Debug)]
pub struct Metrics(Mutex<Inner>);

impl Default for Metrics {
    fn default() -> Metrics {
        let attempt = || Histogram::exponential(0.001, 2.0, 15);
        Metrics(Mutex::new(Inner {
            attempts: [0; 3],
            attempt_duration: [attempt(), attempt(), attempt()],
            algorithm_duration: attempt(),
            pod_scheduling: std::collections::BTreeMap::new(),
        }))
    }
}

/// How a scheduling attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Scheduled = 0,
    Unschedulable = 1,
    Error = 2,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One scheduling attempt and how long its cycle took.
    pub fn attempt(&self, outcome: Outcome, took: Duration) {
        let mut inner = self.lock();
        inner.attempts[outcome as usize] += 1;
        inner.attempt_duration[outcome as usize].observe(took.as_secs_f64());
    }

    /// How long the filtering and scoring of one cycle took.
    pub fn algorithm(&self, took: Duration) {
        self.lock().algorithm_duration.observe(took.as_secs_f64());
    }

    /// The scheduling-algorithm duration histogram.
    pub fn algorithm_durations(&self) -> Histogram {
        self.lock().algorithm_duration.clone()
    }

    /// A pod bound after `attempts` attempts, `took` after it first entered the queue.
    pub fn bound(&self, attempts: u32, took: Duration) {
        self.lock()
            .pod_scheduling
            .entry(attempts.min(15))
            .or_insert_with(|| Histogram::exponential(0.01, 2.0, 20))
            .observe(took.as_secs_f64());
    }

    /// Attempts so far, by outcome.
    pub fn attempts(&self, outcome: Outcome) -> u64 {
        self.lock().attempts[outcome as usize]
    }

    /// The scheduling-attempt duration histogram of scheduled attempts.
    pub fn scheduled_attempt_durations(&self) -> Histogram {
        self.lock().attempt_duration[Outcome::Scheduled as usize].clone()
    }

    pub fn render(&self, pending: Pending) -> String {
        let inner = self.lock();
        let mut out = String::new();
        out.push_str("# HELP scheduler_schedule_attempts_total Number of attempts to schedule pods, by the result.\n# TYPE scheduler_schedule_attempts_total counter\n");
        for (i, result) in RESULTS.iter().enumerate() {
            let _ = writeln!(
                out,
                "scheduler_schedule_attempts_total{{profile=\"{PROFILE}\",result=\"{result}\"}} {}",
                inner.attempts[i]
            );
        }
        out.push_str("# HELP scheduler_scheduling_attempt_duration_seconds Scheduling attempt latency in seconds (scheduling algorithm + binding).\n# TYPE scheduler_scheduling_attempt_duration_seconds histogram\n");
        for (i, result) in RESULTS.iter().enumerate() {
            inner.attempt_duration[i].render(
                &mut out,
                "scheduler_scheduling_attempt_duration_seconds",
                &format!("profile=\"{PROFILE}\",result=\"{result}\""),
            );
        }
        out.push_str("# HELP scheduler_scheduling_algorithm_duration_seconds Scheduling algorithm latency in seconds.\n# TYPE scheduler_scheduling_algorithm_duration_seconds histogram\n");
        inner.algorithm_duration.render(
            &mut out,
            "scheduler_scheduling_algorithm_duration_seconds",
            "",
        );
        out.push_str("# HELP scheduler_pending_pods Number of pending pods, by the queue type.\n# TYPE scheduler_pending_pods gauge\n");
        for (queue, n) in [
            ("active", pending.active),
            ("backoff", pending.backoff),
            ("unschedulable", pending.unschedulable),
            ("gated", 0),
        ] {
            let _ = writeln!(out, "scheduler_pending_pods{{queue=\"{queue}\"}} {n}");
        }
        out.push_str("# HELP scheduler_pod_scheduling_duration_seconds E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue.\n# TYPE scheduler_pod_scheduling_duration_seconds histogram\n");
        for (attempts, histogram) in &inner.pod_scheduling {
            histogram.render(
                &mut out,
                "scheduler_pod_scheduling_duration_seconds",
                &format!("attempts=\"{attempts}\""),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_cumulatively_and_find_quantile_buckets() {
        let mut h = Histogram::exponential(0.001, 2.0, 4);
        for s in [0.0005, 0.0015, 0.0015, 0.003, 0.1] {
            h.observe(s);
        }
        assert_eq!(h.quantile_bound(0.5), 0.002);
        assert_eq!(h.quantile_bound(0.8), 0.004);
        assert_eq!(h.quantile_bound(0.99), f64::INFINITY);
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.002\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 5\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 5\n"), "{out}");
    }

    #[test]
    fn the_exposition_has_kubernetes_names() {
        let m = Metrics::default();
        m.attempt(Outcome::Scheduled, Duration::from_millis(2));
        m.attempt(Outcome::Unschedulable, Duration::from_millis(1));
        m.bound(1, Duration::from_millis(30));
        let text = m.render(Pending {
            active: 3,
            backoff: 1,
            unschedulable: 2,
        });
        for line in [
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 1",
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"unschedulable\"} 1",
            "scheduler_pending_pods{queue=\"active\"} 3",
            "scheduler_pending_pods{queue=\"unschedulable\"} 2",
            "scheduler_scheduling_attempt_duration_seconds_count{profile=\"default-scheduler\",result=\"scheduled\"} 1",
            "scheduler_pod_scheduling_duration_seconds_count{attempts=\"1\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
