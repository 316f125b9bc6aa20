//! Simulated behaviour chosen by the user, and what the kubelet does about it. Pure.
//!
//! A pod asks for behaviour through annotations under [`PREFIX`] (`sim.ferry.dev/`); every
//! container of the pod (not its init containers) behaves alike:
//!
//! | annotation | value | meaning |
//! |---|---|---|
//! | `sim.ferry.dev/startup-delay` | duration (`2s`, `500ms`, `1m30s`) | this pod's start-up delay, instead of the kubelet's `--pod-startup-delay` |
//! | `sim.ferry.dev/exit-after` | duration | the containers exit after running this long (each time they start) |
//! | `sim.ferry.dev/exit-code` | `0` ..= `255` (default `0`) | the code they exit with (only with `exit-after`) |
//! | `sim.ferry.dev/readiness` | `"true"` or `"false"` (default `"true"`) | `"false"`: readiness never succeeds (Running, not Ready) |
//!
//! A bad value (or an unknown name under the prefix) is treated as if the annotation were
//! absent; [`Behaviour::parse`] says why, and the kubelet logs it as a warning.
//!
//! When the containers exit, the pod's `restartPolicy` decides ([`on_exit`]): `Never` ends the
//! pod (`Succeeded` when they exited 0, `Failed` otherwise, terminated `Completed`/`Error`);
//! `OnFailure` restarts them only after a non-zero exit; `Always` (the default) always does.
//! Restarts back off as the kubelet's do ([`CrashLoop`]): the first restart is immediate, each
//! later one waits (from the exit) the current back-off — shown as the containers' waiting
//! reason `CrashLoopBackOff` — which starts at the base (10 s) and doubles up to 5 min; a
//! container that ran more than 10 min starts over.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

/// The prefix of the simulated-behaviour annotations.
pub const PREFIX: &str = "sim.ferry.dev/";
pub const STARTUP_DELAY: &str = "sim.ferry.dev/startup-delay";
pub const EXIT_AFTER: &str = "sim.ferry.dev/exit-after";
pub const EXIT_CODE: &str = "sim.ferry.dev/exit-code";
pub const READINESS: &str = "sim.ferry.dev/readiness";

/// The kubelet's longest crash-loop back-off (`MaxContainerBackOff`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What a pod's annotations ask for. The default behaves like a healthy container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    /// The pod's own start-up delay, when given.
    pub startup_delay: Option<Duration>,
    /// The containers exit after running this long, with this code.
    pub exit: Option<Exit>,
    /// Whether readiness can succeed.
    pub ready: bool,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            startup_delay: None,
            exit: None,
            ready: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub after: Duration,
    pub code: i32,
}

impl Behaviour {
    /// The behaviour `pod`'s annotations ask for, and one warning per annotation ignored.
    pub fn parse(pod: &Pod) -> (Behaviour, Vec<String>) {
        let empty = BTreeMap::new();
        let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
        Behaviour::from_annotations(annotations)
    }

    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> (Behaviour, Vec<String>) {
        let mut behaviour = Behaviour::default();
        let mut warnings = Vec::new();
        let mut ignored = |key: &str, value: &str, why: &str| {
            warnings.push(format!("annotation {key}={value:?} ignored: {why}"));
        };
        let mut exit_after = None;
        let mut exit_code = None;
        for (key, value) in annotations.range(PREFIX.to_owned()..) {
            if !key.starts_with(PREFIX) {
                break;
            }
            match key.as_str() {
                STARTUP_DELAY => match parse_duration(value) {
                    Some(delay) => behaviour.startup_delay = Some(delay),
                    None => ignored(key, value, "not a duration such as 2s or 500ms"),
                },
                EXIT_AFTER => match parse_duration(value) {
                    Some(after) => exit_after = Some(after),
                    None => ignored(key, value, "not a duration such as 5s or 1m"),
                },
                EXIT_CODE => match value.trim().parse::<i32>() {
                    Ok(code) if (0..=255).contains(&code) => exit_code = Some((key, value, code)),
                    _ => ignored(key, value, "not an exit code from 0 to 255"),
                },
                READINESS => match value.trim() {
                    "true" => behaviour.ready = true,
                    "false" => behaviour.ready = false,
                    _ => ignored(key, value, "neither \"true\" nor \"false\""),
                },
                _ => ignored(key, value, "not a simulated behaviour"),
            }
        }
        match (exit_after, exit_code) {
            (Some(after), code) => {
                behaviour.exit = Some(Exit {
                    after,
                    code: code.map_or(0, |(_, _, code)| code),
                });
            }
            (None, Some((key, value, _))) => {
                ignored(key, value, "without sim.ferry.dev/exit-after")
            }
            (None, None) => {}
        }
        (behaviour, warnings)
    }
}

/// A duration as Go writes them: a sequence of decimal numbers with units `ns`, `us` (`µs`),
/// `ms`, `s`, `m`, `h` (`1m30s`, `1.5s`, `500ms`), or `0`. `None` when it is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// A duration as Go prints it (`time.Duration.String`): `500ms`, `10s`, `1m20s`, `5m0s`.
pub fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let fraction = |value: u128, unit: u128| {
        let whole = value / unit;
        let part = value % unit;
        if part == 0 {
            whole.to_string()
        } else {
            let digits = unit.to_string().len() - 1;
            let part = format!("{part:0digits$}");
            format!("{whole}.{}", part.trim_end_matches('0'))
        }
    };
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 1_000_000));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds = fraction(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The pod's policy (`Always` when unset).
    pub fn of(pod: &Pod) -> RestartPolicy {
        match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether containers that exited with `code` are restarted.
    pub fn restarts(self, code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// A container's crash-loop back-off, as the kubelet's `flowcontrol.Backoff` entry keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoop {
    /// The first back-off.
    pub base: Duration,
    /// The current back-off; `None` before the first restart.
    pub current: Option<Duration>,
}

impl CrashLoop {
    pub fn new(base: Duration) -> CrashLoop {
        CrashLoop {
            base: base.min(MAX_BACKOFF),
            current: None,
        }
    }

    /// Whether a container that ran `ran` before it exited has outlived its back-off entry
    /// (more than twice the longest back-off): it starts over.
    fn expired(ran: Duration) -> bool {
        ran > MAX_BACKOFF * 2
    }

    /// How long after an exit (after running `ran`) the container waits in `CrashLoopBackOff`:
    /// zero for the first restart and after a long run.
    pub fn wait(&self, ran: Duration) -> Duration {
        match self.current {
            Some(current) if !CrashLoop::expired(ran) => current,
            _ => Duration::ZERO,
        }
    }

    /// The restart: the next back-off doubles (up to 5 min), or starts at the base.
    pub fn restarted(&mut self, ran: Duration) {
        self.current = Some(match self.current {
            Some(current) if !CrashLoop::expired(ran) => (current * 2).min(MAX_BACKOFF),
            _ => self.base,
        });
    }
}

/// What the kubelet does when the containers exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The pod is finished: `Succeeded` (all exited 0) or `Failed`.
    Finished { succeeded: bool },
    /// The containers restart after `wait` (zero: at once); while waiting they are
    /// `CrashLoopBackOff` with back-off `wait`.
    Restart { wait: Duration },
}

/// The containers exited with `code` after running `ran`.
pub fn on_exit(policy: RestartPolicy, code: i32, ran: Duration, backoff: &CrashLoop) -> Decision {
    if policy.restarts(code) {
        Decision::Restart {
            wait: backoff.wait(ran),
        }
    } else {
        Decision::Finished {
            succeeded: code == 0,
        }
    }
}

/// A container's termination, as `state.terminated` / `lastState.terminated` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
}

impl Terminated {
    /// `Completed` for exit 0, `Error` otherwise (the container runtime's reasons).
    pub fn reason(&self) -> &'static str {
        if self.exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// The state of the pod's (alike) containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running {
        started_at: String,
        ready: bool,
    },
    /// Waiting to restart: `CrashLoopBackOff` with this back-off.
    BackOff {
        backoff: Duration,
    },
    /// Finished for good (the pod's terminal phase).
    Exited(Terminated),
}

/// What the kubelet reports of the pod's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containers {
    pub state: State,
    pub restart_count: u32,
    pub last: Option<Terminated>,
}

/// The `CrashLoopBackOff` message, as the kubelet writes it.
pub fn backoff_message(backoff: Duration, container: &str, pod: &Pod) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={}_{}({})",
        go_duration(backoff),
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("2s", Some(ms(2000))),
            ("500ms", Some(ms(500))),
            ("1m30s", Some(ms(90_000))),
            ("1.5s", Some(ms(1500))),
            ("1h", Some(ms(3_600_000))),
            ("0", Some(Duration::ZERO)),
            ("0s", Some(Duration::ZERO)),
            (" 3s ", Some(ms(3000))),
            ("", None),
            ("5", None),
            ("-1s", None),
            ("s", None),
            ("2 s", None),
            ("2x", None),
            ("1..5s", None),
            ("10sec", None),
        ] {
            assert_eq!(parse_duration(text), want, "{text:?}");
        }
        for (duration, want) in [
            (ms(500), "500ms"),
            (ms(1500), "1.5s"),
            (ms(10_000), "10s"),
            (ms(80_000), "1m20s"),
            (ms(300_000), "5m0s"),
            (ms(3_661_000), "1h1m1s"),
            (Duration::ZERO, "0s"),
            (Duration::from_micros(5), "5µs"),
        ] {
            assert_eq!(go_duration(duration), want);
        }
    }

    #[test]
    fn annotations_parse() {
        let (behaviour, warnings) = Behaviour::from_annotations(&annotations(&[
            (STARTUP_DELAY, "2s"),
            (EXIT_AFTER, "5s"),
            (EXIT_CODE, "1"),
            (READINESS, "false"),
            ("other.example/x", "y"),
        ]));
        assert_eq!(warnings, Vec::<String>::new());
        assert_eq!(
            behaviour,
            Behaviour {
                startup_delay: Some(Duration::from_secs(2)),
                exit: Some(Exit {
                    after: Duration::from_secs(5),
                    code: 1
                }),
                ready: false,
            }
        );
        // exit-code defaults to 0.
        let (behaviour, _) = Behaviour::from_annotations(&annotations(&[(EXIT_AFTER, "1m")]));
        assert_eq!(
            behaviour.exit,
            Some(Exit {
                after: Duration::from_secs(60),
                code: 0
            })
        );
        let (behaviour, warnings) = Behaviour::from_annotations(&BTreeMap::new());
        assert_eq!(behaviour, Behaviour::default());
        assert!(warnings.is_empty());
    }

    /// Bad values: as if the annotation were absent, with a warning; never a panic.
    #[test]
    fn bad_annotations_are_ignored_with_a_warning() {
        for (pairs, want) in [
            (vec![(STARTUP_DELAY, "soon")], Behaviour::default()),
            (vec![(STARTUP_DELAY, "-2s")], Behaviour::default()),
            (vec![(EXIT_AFTER, "five")], Behaviour::default()),
            (vec![(READINESS, "False")], Behaviour::default()),
            (vec![(READINESS, "")], Behaviour::default()),
            (vec![(EXIT_CODE, "1")], Behaviour::default()),
            (vec![("sim.ferry.dev/crash", "yes")], Behaviour::default()),
            (
                vec![(EXIT_AFTER, "1s"), (EXIT_CODE, "256")],
                Behaviour {
                    exit: Some(Exit {
                        after: Duration::from_secs(1),
                        code: 0,
                    }),
                    ..Behaviour::default()
                },
            ),
            (
                vec![(EXIT_AFTER, "1s"), (EXIT_CODE, "-1")],
                Behaviour {
                    exit: Some(Exit {
                        after: Duration::from_secs(1),
                        code: 0,
                    }),
                    ..Behaviour::default()
                },
            ),
            (
                vec![(EXIT_AFTER, "99999999999999999999h"), (READINESS, "false")],
                Behaviour {
                    ready: false,
                    ..Behaviour::default()
                },
            ),
        ] {
            let (behaviour, warnings) = Behaviour::from_annotations(&annotations(&pairs));
            assert_eq!(behaviour, want, "{pairs:?}");
            assert_eq!(warnings.len(), 1, "{pairs:?}: {warnings:?}");
            assert!(warnings[0].contains("ignored"), "{warnings:?}");
        }
    }

    #[test]
    fn restart_policies() {
        let backoff = CrashLoop::new(Duration::from_secs(10));
        let ran = Duration::from_secs(1);
        let finished = |succeeded| Decision::Finished { succeeded };
        let at_once = Decision::Restart {
            wait: Duration::ZERO,
        };
        for (policy, code, want) in [
            (RestartPolicy::Never, 0, finished(true)),
            (RestartPolicy::Never, 3, finished(false)),
            (RestartPolicy::OnFailure, 0, finished(true)),
            (RestartPolicy::OnFailure, 1, at_once),
            (RestartPolicy::Always, 0, at_once),
            (RestartPolicy::Always, 1, at_once),
        ] {
            assert_eq!(
                on_exit(policy, code, ran, &backoff),
                want,
                "{policy:?} {code}"
            );
        }
        let pod = |policy: Option<&str>| -> Pod {
            serde_json::from_value(serde_json::json!({"spec": {"containers": [],
                "restartPolicy": policy}}))
            .expect("a Pod")
        };
        assert_eq!(RestartPolicy::of(&pod(None)), RestartPolicy::Always);
        assert_eq!(RestartPolicy::of(&pod(Some("Never"))), RestartPolicy::Never);
        assert_eq!(
            RestartPolicy::of(&pod(Some("OnFailure"))),
            RestartPolicy::OnFailure
        );
    }

    /// Exits after 1 s each time: restart at once, then wait 10 s, 20 s, 40 s … up to 5 min.
    #[test]
    fn back_off_doubles_to_five_minutes() {
        let mut backoff = CrashLoop::new(Duration::from_secs(10));
        let ran = Duration::from_secs(1);
        let mut waits = Vec::new();
        for _ in 0..9 {
            let Decision::Restart { wait } = on_exit(RestartPolicy::Always, 1, ran, &backoff)
            else {
                panic!("Always restarts");
            };
            waits.push(wait.as_secs());
            backoff.restarted(ran);
        }
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    /// A container that ran more than 10 minutes starts over: restarted at once, then 10 s.
    #[test]
    fn back_off_resets_after_a_long_run() {
        let secs = Duration::from_secs;
        let mut backoff = CrashLoop::new(secs(10));
        let mut waits = Vec::new();
        for ran in [1, 1, 1, 1, 601, 1, 1, 600, 1] {
            waits.push(backoff.wait(secs(ran)).as_secs());
            backoff.restarted(secs(ran));
        }
        assert_eq!(waits, [0, 10, 20, 40, 0, 10, 20, 40, 80]);
        // A base above the maximum is capped.
        assert_eq!(CrashLoop::new(secs(900)).base, MAX_BACKOFF);
        // A short base for tests doubles the same way.
        let mut short = CrashLoop::new(Duration::from_millis(100));
        short.restarted(secs(0));
        short.restarted(secs(0));
        assert_eq!(short.wait(secs(0)), Duration::from_millis(200));
    }

    #[test]
    fn messages_and_reasons() {
        let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "crash",
            "namespace": "default", "uid": "u-1"}}))
        .expect("a Pod");
        assert_eq!(
            backoff_message(Duration::from_secs(10), "app", &pod),
            "back-off 10s restarting failed container=app pod=crash_default(u-1)"
        );
        assert_eq!(
            backoff_message(Duration::from_secs(300), "app", &pod),
            "back-off 5m0s restarting failed container=app pod=crash_default(u-1)"
        );
        let exit = |exit_code| Terminated {
            exit_code,
            started_at: String::new(),
            finished_at: String::new(),
        };
        assert_eq!(exit(0).reason(), "Completed");
        assert_eq!(exit(3).reason(), "Error");
    }
}
