//! `/metrics` in Prometheus text format, with kube-apiserver's metric names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use super::cache::CacheStats;

/// Bucket bounds of `apiserver_request_duration_seconds` (kube-apiserver's, trimmed).
const BUCKETS: [f64; 14] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 4.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters and latencies, per verb and resource.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<(String, String), Histogram>>,
    /// Open watches (`apiserver_longrunning_requests`).
    pub watches: AtomicI64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, verb: &str, resource: &str, code: u16, latency: Duration) {
        let verb = verb.to_uppercase();
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((verb.clone(), resource.to_owned(), code))
                .or_default() += 1;
        }
        if let Ok(mut durations) = self.durations.lock() {
            let h = durations.entry((verb, resource.to_owned())).or_default();
            let seconds = latency.as_secs_f64();
            for (bucket, bound) in h.buckets.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// The text exposition; `objects` are the stored objects per resource.
    pub fn render(&self, objects: &[(String, i64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, version, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((verb, resource, code), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        if let Ok(durations) = self.durations.lock() {
            for ((verb, resource), h) in durations.iter() {
                let labels = format!("resource=\"{resource}\",verb=\"{verb}\"");
                for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                    let _ = writeln!(
                        out,
                        "apiserver_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_sum{{{labels}}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_count{{{labels}}} {}",
                    h.count
                );
            }
        }
        out.push_str("# HELP apiserver_longrunning_requests Gauge of all active long-running apiserver requests.\n# TYPE apiserver_longrunning_requests gauge\n");
        let _ = writeln!(
            out,
            "apiserver_longrunning_requests{{verb=\"WATCH\"}} {}",
            self.watches.load(Ordering::Relaxed)
        );
        out.push_str("# HELP apiserver_storage_objects Number of stored objects at the time of last check split by kind.\n# TYPE apiserver_storage_objects gauge\n");
        for (resource, n) in objects {
            let _ = writeln!(
                out,
                "apiserver_storage_objects{{resource=\"{resource}\"}} {n}"
            );
        }
        out
    }
}

/// One metric family rendered from the caches' stats: name, type, help, value.
type MetricFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&CacheStats) -> String,
);

/// The watch caches' sizes, with kube-apiserver's metric names where it has them
/// (`apiserver_watch_cache_*`) and Ferry's own for what it has not.
pub fn render_caches(stats: &[CacheStats]) -> String {
    let mut out = String::new();
    let families: [MetricFamily; 8] = [
        (
            "apiserver_cache_list_total",
            "counter",
            "Number of LIST requests served from watch cache.",
            |s| s.lists_served.to_string(),
        ),
        (
            "apiserver_watch_cache_capacity",
            "gauge",
            "Total capacity of watch cache broken by resource type.",
            |s| s.capacity.to_string(),
        ),
        (
            "apiserver_watch_cache_events_received_total",
            "counter",
            "Counter of events received in watch cache broken by resource type.",
            |s| s.events_received.to_string(),
        ),
        (
            "apiserver_watch_cache_initializations_total",
            "counter",
            "Counter of watch cache initializations broken by resource type.",
            |s| s.initializations.to_string(),
        ),
        (
            "apiserver_watch_cache_resource_version",
            "gauge",
            "Current resource version of watch cache broken by resource type.",
            |s| s.revision.to_string(),
        ),
        (
            "ferry_watch_cache_objects",
            "gauge",
            "Objects held by the watch cache, by resource type.",
            |s| s.objects.to_string(),
        ),
        (
            "ferry_watch_cache_window_events",
            "gauge",
            "Events held in the watch cache's window, by resource type.",
            |s| s.window.to_string(),
        ),
        (
            "ferry_watch_cache_window_bytes",
            "gauge",
            "Bytes of JSON of the objects of the watch cache's window, by resource type.",
            |s| s.window_bytes.to_string(),
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in stats {
            let _ = writeln!(out, "{name}{{resource=\"{}\"}} {}", s.resource, value(s));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_kubernetes_metric_names() {
        let m = Metrics::default();
        m.observe("get", "pods", 200, Duration::from_millis(3));
        m.observe("get", "pods", 404, Duration::from_millis(30));
        let text = m.render(&[("pods".into(), 7)]);
        assert!(
            text.contains("apiserver_request_total{code=\"200\",resource=\"pods\",verb=\"GET\"} 1"),
            "{text}"
        );
        assert!(text.contains("apiserver_request_duration_seconds_bucket{resource=\"pods\",verb=\"GET\",le=\"0.005\"} 1"), "{text}");
        assert!(
            text.contains(
                "apiserver_request_duration_seconds_count{resource=\"pods\",verb=\"GET\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("apiserver_storage_objects{resource=\"pods\"} 7"),
            "{text}"
        );
    }
}
