//! The processes of a `ferry up` cluster: started with their logs and PID files, restarted with
//! back-off when they crash, stopped together.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::files::{self, Layout};
use super::probe::Probe;

/// mimalloc's delay before it returns freed memory to the system (milliseconds).
const MIMALLOC_PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// The first restart waits this long; each quick failure after it doubles the wait.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A component that ran this long before it failed starts its back-off over.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long stopping components get after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What a component stands for, which decides what happens when it dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// etcd, apiserver, controller-manager, scheduler: always restarted.
    ControlPlane,
    /// A kubelet plays a machine: killed by a signal, the machine is gone and stays down (its
    /// pods move elsewhere, as on a real cluster); exiting with an error, it is restarted.
    Node,
}

/// How to run one component.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub role: Role,
    pub probe: Probe,
    /// Components are started by stage, and stopped in the reverse order.
    pub stage: u8,
}

/// One component's state, as `ferry status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Running,
    /// Crashed; restarting after a back-off.
    Restarting,
    /// A killed node: not restarted.
    Down,
    Stopped,
}

/// The status file's record of a component.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    pub name: String,
    pub pid: Option<u32>,
    pub state: State,
    pub restarts: u32,
    /// The last exit, in words.
    pub last_exit: Option<String>,
    pub probe: Probe,
}

/// The status file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFile {
    pub supervisor_pid: u32,
    pub server: String,
    pub components: Vec<ComponentStatus>,
}

struct Component {
    spec: Spec,
    pid: Option<u32>,
    /// Bumped on every start, so a late exit of an earlier process is recognized.
    generation: u64,
    state: State,
    restarts: u32,
    quick_failures: u32,
    started: Instant,
    last_exit: Option<String>,
}

/// Something that happened to a component.
#[derive(Debug)]
pub enum Event {
    Exited {
        index: usize,
        generation: u64,
        status: std::io::Result<ExitStatus>,
    },
    RestartDue {
        index: usize,
        generation: u64,
    },
}

pub struct Supervisor {
    layout: Layout,
    server: String,
    components: Vec<Component>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
}

/// An exit status in words: `exit code 1`, `killed by SIGKILL`.
pub fn describe(status: &std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(9)) => "killed by SIGKILL".to_owned(),
            (None, Some(15)) => "killed by SIGTERM".to_owned(),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended".to_owned(),
        },
        Err(e) => format!("lost: {e}"),
    }
}

/// Sends `signal` to `pid`; a process already gone is not an error.
pub fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Whether a process `pid` exists.
pub fn alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

impl Supervisor {
    pub fn new(layout: Layout, server: String, specs: Vec<Spec>) -> Supervisor {
        let (events_tx, events) = mpsc::unbounded_channel();
        let components = specs
            .into_iter()
            .map(|spec| Component {
                spec,
                pid: None,
                generation: 0,
                state: State::Stopped,
                restarts: 0,
                quick_failures: 0,
                started: Instant::now(),
                last_exit: None,
            })
            .collect();
        Supervisor {
            layout,
            server,
            components,
            events_tx,
            events,
        }
    }

    /// The indexes of the components of `stage`.
    pub fn stage(&self, stage: u8) -> Vec<usize> {
        (0..self.components.len())
            .filter(|&i| self.components[i].spec.stage == stage)
            .collect()
    }

    pub fn spec(&self, index: usize) -> &Spec {
        &self.components[index].spec
    }

    pub fn pid(&self, index: usize) -> Option<u32> {
        self.components[index].pid
    }

    /// Starts component `index`, its output appended to its log.
    pub fn start(&mut self, index: usize) -> anyhow::Result<u32> {
        let layout = self.layout.clone();
        let component = &mut self.components[index];
        let spec = &component.spec;
        let log_path = layout.log(&spec.name);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        {
            use std::io::Write as _;
            let _ = writeln!(
                log,
                "--- ferry up: starting {} ({})",
                spec.name,
                jiff::Timestamp::now()
            );
        }
        let stderr = log
            .try_clone()
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut command = tokio::process::Command::new(&spec.program);
        command
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            // Its own process group: a Ctrl-C in the terminal reaches the supervisor only,
            // which then stops the components in order.
            .process_group(0);
        // mimalloc returns freed pages to the system at once instead of 10 ms later: holding
        // 10,000 pods the apiserver's RSS is ~20 % lower, at no measurable cost (BENCHMARKS.md).
        // Unless the user chose otherwise.
        if std::env::var_os(MIMALLOC_PURGE_DELAY).is_none() {
            command.env(MIMALLOC_PURGE_DELAY, "0");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", spec.program.display()))?;
        let pid = child.id().context("a just-started process has no pid")?;
        files::write(&layout.pid_file(&spec.name), &format!("{pid}\n"), false)?;
        component.generation += 1;
        component.pid = Some(pid);
        component.state = State::Running;
        component.started = Instant::now();
        let (events, generation) = (self.events_tx.clone(), component.generation);
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = events.send(Event::Exited {
                index,
                generation,
                status,
            });
        });
        self.save_status();
        Ok(pid)
    }

    /// The next event.
    pub async fn next_event(&mut self) -> Event {
        // The supervisor holds a sender itself, so the channel never closes.
        match self.events.recv().await {
            Some(event) => event,
            None => std::future::pending().await,
        }
    }

    /// An event, if one is waiting.
    pub fn try_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Applies `event` while the cluster runs: crashed components are restarted after their
    /// back-off, killed nodes stay down. What happened is printed.
    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Exited {
                index,
                generation,
                status,
            } => {
                let component = &mut self.components[index];
                if generation != component.generation || component.state != State::Running {
                    return;
                }
                let how = describe(&status);
                let name = component.spec.name.clone();
                let _ = std::fs::remove_file(self.layout.pid_file(&name));
                component.pid = None;
                component.last_exit = Some(how.clone());
                let killed = status.as_ref().is_ok_and(|s| s.signal().is_some());
                if component.spec.role == Role::Node && killed {
                    component.state = State::Down;
                    let node = match &component.spec.probe {
                        Probe::Node { name } => name.clone(),
                        _ => name.clone(),
                    };
                    say!(
                        "{name} ({how}): node {node} is down and stays down, as a machine that died; \
                         its pods move to other nodes once the node-lifecycle controller's grace \
                         period and their tolerations run out (`ferry down` and `ferry up` bring it back)"
                    );
                } else {
                    if component.started.elapsed() >= STABLE_AFTER {
                        component.quick_failures = 0;
                    }
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << component.quick_failures.min(5))
                        .min(MAX_BACKOFF);
                    component.quick_failures += 1;
                    component.state = State::Restarting;
                    say!(
                        "{name} exited ({how}); restarting in {}s",
                        backoff.as_secs()
                    );
                    let events = self.events_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(backoff).await;
                        let _ = events.send(Event::RestartDue { index, generation });
                    });
                }
                self.save_status();
            }
            Event::RestartDue { index, generation } => {
                let component = &self.components[index];
                if component.generation != generation || component.state != State::Restarting {
                    return;
                }
                let name = component.spec.name.clone();
                match self.start(index) {
                    Ok(pid) => {
                        let component = &mut self.components[index];
                        component.restarts += 1;
                        say!(
                            "{name} restarted (pid {pid}, restart {})",
                            component.restarts
                        );
                        self.save_status();
                    }
                    Err(e) => {
                        say!("{name} could not be restarted: {e:#}; trying again in 30s");
                        let events = self.events_tx.clone();
                        let generation = self.components[index].generation;
                        tokio::spawn(async move {
                            tokio::time::sleep(MAX_BACKOFF).await;
                            let _ = events.send(Event::RestartDue { index, generation });
                        });
                    }
                }
            }
        }
    }

    /// Stops every component: by stage, the last started first, SIGTERM then (after a grace
    /// period) SIGKILL; waits until they have exited.
    pub async fn stop_all(&mut self) {
        let mut stages: Vec<u8> = self.components.iter().map(|c| c.spec.stage).collect();
        stages.sort_unstable();
        stages.dedup();
        for stage in stages.into_iter().rev() {
            let indexes = self.stage(stage);
            for &i in &indexes {
                let component = &mut self.components[i];
                if component.state == State::Restarting {
                    component.state = State::Stopped;
                }
                if let (State::Running, Some(pid)) = (&component.state, component.pid) {
                    signal(pid, Signal::TERM);
                }
            }
            let deadline = Instant::now() + STOP_GRACE;
            let mut killed = false;
            while indexes
                .iter()
                .any(|&i| self.components[i].state == State::Running)
            {
                let wait = if Instant::now() < deadline {
                    deadline - Instant::now()
                } else if !killed {
                    for &i in &indexes {
                        if let (State::Running, Some(pid)) =
                            (&self.components[i].state, self.components[i].pid)
                        {
                            say!(
                                "{} did not stop in time: killing it",
                                self.components[i].spec.name
                            );
                            signal(pid, Signal::KILL);
                        }
                    }
                    killed = true;
                    Duration::from_secs(5)
                } else {
                    break;
                };
                match tokio::time::timeout(wait, self.events.recv()).await {
                    Ok(Some(Event::Exited {
                        index, generation, ..
                    })) if self.components[index].generation == generation => {
                        let component = &mut self.components[index];
                        component.state = State::Stopped;
                        component.pid = None;
                        let _ = std::fs::remove_file(self.layout.pid_file(&component.spec.name));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) if killed => break,
                    Err(_) => {}
                }
            }
        }
        let _ = std::fs::remove_file(self.layout.status_file());
    }

    /// The components' state, for `ferry status`.
    pub fn status(&self) -> StatusFile {
        StatusFile {
            supervisor_pid: std::process::id(),
            server: self.server.clone(),
            components: self
                .components
                .iter()
                .map(|c| ComponentStatus {
                    name: c.spec.name.clone(),
                    pid: c.pid,
                    state: c.state.clone(),
                    restarts: c.restarts,
                    last_exit: c.last_exit.clone(),
                    probe: c.spec.probe.clone(),
                })
                .collect(),
        }
    }

    fn save_status(&self) {
        let text = serde_json::to_string_pretty(&self.status()).unwrap_or_default();
        if let Err(e) = files::write(&self.layout.status_file(), &text, false) {
            say!("cannot record the cluster's status: {e:#}");
        }
    }

    /// The last lines of component `index`'s log.
    pub fn log_tail(&self, index: usize, lines: usize) -> String {
        let path = self.layout.log(&self.components[index].spec.name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}
