//! `ferry up`, `ferry down`, `ferry status`: a local multi-process cluster — apiserver,
//! controller-manager, scheduler and kubelets as separate OS processes (`ferry <component>`),
//! plus a local etcd with `--etcd` — supervised by the `ferry up` process, with everything it
//! needs (certificates, tokens, kubeconfigs, logs, PID files, the store) in one data directory.

/// `println!` that ignores a closed stdout (`ferry status | head`, a closed terminal): the
/// supervisor must go on supervising, and a report cut short is no reason to panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod files;
mod probe;
mod supervisor;

use std::io::{Read as _, Seek as _};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rustix::fs::FlockOperation;
use tokio::signal::unix::{SignalKind, signal};

use files::{Layout, Settings, Store};
use probe::Probe;
use supervisor::{Role, Spec, Supervisor};

const UP_HELP: &str = "\
ferry up — start a local cluster: apiserver, controller-manager, scheduler and simulated nodes
(kubelets) as separate processes, kubectl ready

Usage: ferry up [flags]

Flags:
  --nodes N                  nodes, each its own kubelet process (default 3; a later run
                             reuses the last value)
  --data-dir DIR             certificates, tokens, kubeconfig, logs (DIR/logs/<component>.log),
                             PID files (DIR/run/<component>.pid) and the store
                             (default $XDG_DATA_HOME/ferry or ~/.local/share/ferry)
  --etcd                     keep the objects in a local etcd (the `etcd` on PATH, data in
                             DIR/etcd), started and supervised as one more process
  --etcd-servers URLS        keep them in an existing etcd cluster (comma-separated URLs)
                             (default: the embedded store in DIR/store; a later run reuses the
                             last choice)
  --port P                   the apiserver's port on 127.0.0.1 (default 6443)
  --detach                   return once the cluster is ready and leave it running (stop it
                             with `ferry down`)
  --no-kubeconfig-update     do not add the `ferry` context to $KUBECONFIG or ~/.kube/config
                             (DIR/kubeconfig is written either way)
  --pod-startup-delay DUR    how long the simulated containers take to start (default 0)

In the foreground, ferry up supervises: a crashed component is restarted with back-off, and
Ctrl-C (or SIGTERM) stops the whole cluster. A kubelet killed by a signal is a machine that
died: its node stays down and its pods move elsewhere.";

const DOWN_HELP: &str = "\
ferry down — stop the cluster `ferry up` runs from a data directory, and remove the `ferry`
context it added to the user's kubeconfig

Usage: ferry down [--data-dir DIR]";

const STATUS_HELP: &str = "\
ferry status — each component of the cluster in a data directory: PID, state, health, restarts

Usage: ferry status [--data-dir DIR]";

/// The environment variable that tells a `ferry up` process it is the detached supervisor.
const DETACHED_ENV: &str = "FERRY_UP_DETACHED";
/// The line after which a detached supervisor's output is its log only.
const READY_MARK: &str = "--- ferry up: ready";

struct UpFlags {
    nodes: Option<usize>,
    data_dir: Option<PathBuf>,
    etcd: bool,
    etcd_servers: Option<String>,
    port: Option<u16>,
    detach: bool,
    update_kubeconfig: bool,
    pod_startup_delay: String,
}

fn parse_up(args: &[String]) -> anyhow::Result<Option<UpFlags>> {
    let mut flags = UpFlags {
        nodes: None,
        data_dir: None,
        etcd: false,
        etcd_servers: None,
        port: None,
        detach: false,
        update_kubeconfig: true,
        pod_startup_delay: "0".to_owned(),
    };
    let mut args = crate::FlagArgs::new(args);
    while let Some((name, inline)) = args.next_flag() {
        let mut value = || args.value(name, inline);
        match name {
            "--help" | "-h" => return Ok(None),
            "--nodes" => {
                let value = value()?;
                flags.nodes = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .with_context(|| {
                            format!("--nodes must be a number from 1 to 1000, not {value:?}")
                        })?,
                );
            }
            "--data-dir" => flags.data_dir = Some(PathBuf::from(value()?)),
            "--etcd" => flags.etcd = true,
            "--etcd-servers" => {
                let value = value()?;
                if value.trim().is_empty() {
                    bail!("--etcd-servers needs at least one URL");
                }
                flags.etcd_servers = Some(value);
            }
            "--port" => {
                let value = value()?;
                flags.port =
                    Some(
                        value.parse().ok().filter(|p| *p != 0).with_context(|| {
                            format!("--port must be a port number, not {value:?}")
                        })?,
                    );
            }
            "--detach" | "-d" => flags.detach = true,
            "--no-kubeconfig-update" => flags.update_kubeconfig = false,
            "--pod-startup-delay" => flags.pod_startup_delay = value()?,
            other => bail!("unknown flag {other:?} (see `ferry up --help`)"),
        }
    }
    if flags.etcd && flags.etcd_servers.is_some() {
        bail!("--etcd starts a local etcd and --etcd-servers uses another: choose one");
    }
    Ok(Some(flags))
}

/// `--data-dir DIR` alone (down, status).
fn parse_data_dir(args: &[String], command: &str) -> anyhow::Result<Option<Option<PathBuf>>> {
    let mut data_dir = None;
    let mut args = crate::FlagArgs::new(args);
    while let Some((name, inline)) = args.next_flag() {
        match name {
            "--help" | "-h" => return Ok(None),
            "--data-dir" => data_dir = Some(PathBuf::from(args.value(name, inline)?)),
            other => bail!("unknown flag {other:?} (see `ferry {command} --help`)"),
        }
    }
    Ok(Some(data_dir))
}

fn layout_for(data_dir: Option<PathBuf>) -> anyhow::Result<Layout> {
    let root = match data_dir {
        Some(dir) => dir,
        None => Layout::default_root()?,
    };
    // Absolute, so the components and the PID checks see the same paths from anywhere.
    let root = if root.is_absolute() {
        root
    } else {
        std::env::current_dir()
            .context("cannot find the current directory")?
            .join(root)
    };
    Ok(Layout::new(root))
}

/// The data directory's lock, held by the supervisor while the cluster runs.
struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// Takes the lock, or says who holds it.
    fn acquire(layout: &Layout) -> anyhow::Result<DirLock> {
        let path = layout.lock_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let holder = supervisor_pid(layout)
                .map(|pid| format!(" (ferry up, pid {pid})"))
                .unwrap_or_default();
            bail!(
                "{} is in use by a running cluster{holder}: see `ferry status --data-dir {0}`, \
                 or stop it with `ferry down --data-dir {0}`",
                layout.root.display()
            );
        }
        Ok(DirLock { _file: file })
    }

    /// Whether a supervisor holds the lock now.
    fn held(layout: &Layout) -> bool {
        let Ok(file) = std::fs::File::open(layout.lock_file()) else {
            return false;
        };
        rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared).is_err()
    }
}

fn supervisor_pid(layout: &Layout) -> Option<u32> {
    read_pid(&layout.pid_file("up"))
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Kills what a supervisor that died without stopping its cluster left behind: the processes
/// of the PID files whose command line names this data directory.
fn kill_leftovers(layout: &Layout) -> usize {
    let Ok(entries) = std::fs::read_dir(layout.run()) else {
        return 0;
    };
    let root = layout.root.to_string_lossy().into_owned();
    let mut killed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pid") {
            continue;
        }
        if let Some(pid) = read_pid(&path) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&root) && pid != std::process::id() {
                supervisor::signal(pid, rustix::process::Signal::KILL);
                killed += 1;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_file(layout.status_file());
    killed
}

/// A port nobody listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free port")?
        .local_addr()?
        .port())
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The first `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

pub fn up_main(args: &[String]) -> ExitCode {
    let flags = match crate::parsed("up", UP_HELP, parse_up(args)) {
        Ok(flags) => flags,
        Err(code) => return code,
    };
    if flags.detach && std::env::var_os(DETACHED_ENV).is_none() {
        return detach(&flags, args).unwrap_or_else(|e| {
            eprintln!("ferry up: {e:#}");
            ExitCode::FAILURE
        });
    }
    crate::block_on("up", async { up(flags).await.map(|()| ExitCode::SUCCESS) })
}

/// `--detach`: runs the supervisor as a background process (its own process group, output in
/// DIR/logs/up.log), shows its progress, and returns once the cluster is ready — or fails with
/// its error when it cannot start.
fn detach(flags: &UpFlags, args: &[String]) -> anyhow::Result<ExitCode> {
    let layout = layout_for(flags.data_dir.clone())?;
    layout.create()?;
    // Checked here too, for a quick answer; the supervisor takes the lock itself.
    drop(DirLock::acquire(&layout)?);
    let log_path = layout.log("up");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut offset = log.seek(std::io::SeekFrom::End(0))?;
    let args: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--detach" && *a != "-d")
        .collect();
    let mut child = std::process::Command::new(
        std::env::current_exe().context("cannot find the ferry binary")?,
    )
    .arg("up")
    .args(args)
    .arg(format!("--data-dir={}", layout.root.display()))
    .env(DETACHED_ENV, "1")
    .stdin(std::process::Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log.try_clone()?)
    .process_group(0)
    .spawn()
    .context("cannot start the supervisor")?;
    let mut pending = String::new();
    // The supervisor's own error, to repeat on stderr when it fails.
    let mut last_error: Option<String> = None;
    loop {
        let mut chunk = String::new();
        log.seek(std::io::SeekFrom::Start(offset))?;
        let read = log.read_to_string(&mut chunk)?;
        offset += read as u64;
        pending.push_str(&chunk);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            let line = line.trim_end();
            if line == READY_MARK {
                say!(
                    "ferry up: running in the background (pid {}); `ferry status --data-dir {1}` \
                     shows it, `ferry down --data-dir {1}` stops it; logs in {2}",
                    child.id(),
                    layout.root.display(),
                    layout.logs().display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            if line.starts_with("ferry up: ") {
                last_error = Some(line.to_owned());
            }
            say!("{line}");
        }
        if let Some(status) = child.try_wait()? {
            if read == 0 {
                {
                    use std::io::Write as _;
                    let _ = write!(std::io::stdout(), "{pending}");
                }
                if let Some(error) = &last_error {
                    eprintln!("{error}");
                }
                eprintln!(
                    "ferry up: the cluster did not start ({status}); see {}",
                    log_path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Resolves the settings: the flags, else what the last run used, else the defaults.
fn settings(flags: &UpFlags, layout: &Layout) -> anyhow::Result<Settings> {
    let previous = Settings::load(layout)?;
    let store = if flags.etcd {
        match previous.as_ref().map(|p| &p.store) {
            Some(Store::LocalEtcd {
                client_port,
                peer_port,
            }) => Store::LocalEtcd {
                client_port: *client_port,
                peer_port: *peer_port,
            },
            _ => Store::LocalEtcd {
                client_port: free_port()?,
                peer_port: free_port()?,
            },
        }
    } else if let Some(servers) = &flags.etcd_servers {
        Store::EtcdServers(servers.clone())
    } else {
        previous
            .as_ref()
            .map_or(Store::Embedded, |p| p.store.clone())
    };
    // A local etcd's ports are kept from run to run, unless something else took them.
    let store = match store {
        Store::LocalEtcd {
            client_port,
            peer_port,
        } if !port_free(client_port) || !port_free(peer_port) => Store::LocalEtcd {
            client_port: if port_free(client_port) {
                client_port
            } else {
                free_port()?
            },
            peer_port: if port_free(peer_port) {
                peer_port
            } else {
                free_port()?
            },
        },
        store => store,
    };
    Ok(Settings {
        store,
        port: flags
            .port
            .or(previous.as_ref().map(|p| p.port))
            .unwrap_or(6443),
        nodes: flags
            .nodes
            .or(previous.as_ref().map(|p| p.nodes))
            .unwrap_or(3),
    })
}

fn node_name(i: usize) -> String {
    format!("ferry-node-{i}")
}

/// Every component's command line.
fn specs(
    layout: &Layout,
    settings: &Settings,
    pod_startup_delay: &str,
) -> anyhow::Result<Vec<Spec>> {
    let ferry = std::env::current_exe().context("cannot find the ferry binary")?;
    let path = |p: PathBuf| p.display().to_string();
    let mut specs = Vec::new();
    let etcd_servers = match &settings.store {
        Store::Embedded => None,
        Store::EtcdServers(servers) => Some(servers.clone()),
        Store::LocalEtcd {
            client_port,
            peer_port,
        } => {
            let etcd = on_path("etcd").context(
                "--etcd needs `etcd` on PATH (Debian and Ubuntu: apt-get install etcd-server), \
                 or use --etcd-servers, or the embedded store",
            )?;
            let client = format!("http://127.0.0.1:{client_port}");
            let peer = format!("http://127.0.0.1:{peer_port}");
            specs.push(Spec {
                name: "etcd".into(),
                program: etcd,
                args: vec![
                    "--name=ferry".into(),
                    format!("--data-dir={}", path(layout.etcd_data())),
                    format!("--listen-client-urls={client}"),
                    format!("--advertise-client-urls={client}"),
                    format!("--listen-peer-urls={peer}"),
                    format!("--initial-advertise-peer-urls={peer}"),
                    format!("--initial-cluster=ferry={peer}"),
                    "--log-level=warn".into(),
                ],
                role: Role::ControlPlane,
                probe: Probe::Etcd {
                    client_port: *client_port,
                },
                stage: 0,
            });
            Some(client)
        }
    };
    let mut apiserver = vec![
        "apiserver".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={}", settings.port),
        format!("--tls-cert-file={}", path(layout.serving_cert())),
        format!("--tls-private-key-file={}", path(layout.serving_key())),
        format!("--token-auth-file={}", path(layout.tokens())),
        format!("--data-dir={}", path(layout.store())),
    ];
    if let Some(servers) = etcd_servers {
        apiserver.push(format!("--etcd-servers={servers}"));
    }
    specs.push(Spec {
        name: "apiserver".into(),
        program: ferry.clone(),
        args: apiserver,
        role: Role::ControlPlane,
        probe: Probe::ApiServer,
        stage: 1,
    });
    specs.push(Spec {
        name: "controller-manager".into(),
        program: ferry.clone(),
        args: vec![
            "controller-manager".into(),
            format!(
                "--kubeconfig={}",
                path(layout.component_kubeconfig("controller-manager"))
            ),
        ],
        role: Role::ControlPlane,
        probe: Probe::Process,
        stage: 2,
    });
    let scheduler_address = format!("127.0.0.1:{}", free_port()?);
    specs.push(Spec {
        name: "scheduler".into(),
        program: ferry.clone(),
        args: vec![
            "scheduler".into(),
            format!(
                "--kubeconfig={}",
                path(layout.component_kubeconfig("scheduler"))
            ),
            format!("--bind-address={scheduler_address}"),
        ],
        role: Role::ControlPlane,
        probe: Probe::Http {
            address: scheduler_address,
        },
        stage: 2,
    });
    for i in 1..=settings.nodes {
        let name = format!("kubelet-{i}");
        specs.push(Spec {
            program: ferry.clone(),
            args: vec![
                "kubelet".into(),
                format!("--kubeconfig={}", path(layout.component_kubeconfig(&name))),
                format!("--node-name={}", node_name(i)),
                // Each kubelet process its own pod CIDR and node address.
                format!("--first-node-index={i}"),
                format!("--pod-startup-delay={pod_startup_delay}"),
            ],
            role: Role::Node,
            probe: Probe::Node { name: node_name(i) },
            stage: 3,
            name,
        });
    }
    Ok(specs)
}

/// The certificates, tokens and kubeconfigs; returns the admin kubeconfig.
fn write_credentials(layout: &Layout, settings: &Settings) -> anyhow::Result<serde_json::Value> {
    let ca = files::ensure_pki(layout)?;
    let nodes: Vec<String> = (1..=settings.nodes).map(node_name).collect();
    let tokens = files::ensure_tokens(layout, &files::users(&nodes))?;
    let server = format!("https://127.0.0.1:{}", settings.port);
    let admin = files::kubeconfig(&server, &ca, files::token_of(&tokens, "admin")?);
    files::write_kubeconfig(&layout.kubeconfig(), &admin)?;
    let mut components = vec![
        (
            "controller-manager".to_owned(),
            "system:kube-controller-manager".to_owned(),
        ),
        ("scheduler".to_owned(), "system:kube-scheduler".to_owned()),
    ];
    components.extend((1..=settings.nodes).map(|i| {
        (
            format!("kubelet-{i}"),
            format!("system:node:{}", node_name(i)),
        )
    }));
    for (component, user) in components {
        let config = files::kubeconfig(&server, &ca, files::token_of(&tokens, &user)?);
        files::write_kubeconfig(&layout.component_kubeconfig(&component), &config)?;
    }
    Ok(admin)
}

/// SIGINT or SIGTERM.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

async fn up(flags: UpFlags) -> anyhow::Result<()> {
    let began = Instant::now();
    let detached = std::env::var_os(DETACHED_ENV).is_some();
    let mut signals = StopSignals::new()?;
    let layout = layout_for(flags.data_dir.clone())?;
    let first_run = !layout.root.join("cluster.json").exists();
    layout.create()?;
    let _lock = DirLock::acquire(&layout)?;
    let leftovers = kill_leftovers(&layout);
    if leftovers > 0 {
        say!("stopped {leftovers} process(es) an earlier ferry up left running");
    }
    let settings = settings(&flags, &layout)?;
    if !port_free(settings.port) {
        bail!(
            "port {} on 127.0.0.1 is already in use (another cluster, or another program): \
             choose another with --port",
            settings.port
        );
    }
    let specs = specs(&layout, &settings, &flags.pod_startup_delay)?;
    settings.save(&layout)?;
    let admin = write_credentials(&layout, &settings)?;
    files::write(
        &layout.pid_file("up"),
        &format!("{}\n", std::process::id()),
        false,
    )?;
    let store = match &settings.store {
        Store::Embedded => format!("embedded store in {}", layout.store().display()),
        Store::LocalEtcd { client_port, .. } => {
            format!(
                "local etcd on 127.0.0.1:{client_port}, data in {}",
                layout.etcd_data().display()
            )
        }
        Store::EtcdServers(servers) => format!("etcd at {servers}"),
    };
    say!(
        "ferry up: {} cluster in {} ({store})",
        if first_run { "new" } else { "existing" },
        layout.root.display()
    );
    let server = format!("https://127.0.0.1:{}", settings.port);
    let mut supervisor = Supervisor::new(layout.clone(), server.clone(), specs);
    let started = tokio::select! {
        result = start(&mut supervisor, &layout, settings.nodes, began) => result,
        signal = signals.recv() => Err(anyhow::anyhow!("interrupted by {signal}")),
    };
    if let Err(e) = started {
        supervisor.stop_all().await;
        let _ = std::fs::remove_file(layout.pid_file("up"));
        return Err(e);
    }
    let kubeconfig_note = if flags.update_kubeconfig {
        match files::merge_into_user_kubeconfig(&layout, &admin) {
            Ok(path) => format!(
                "kubectl's current context is now `ferry` (in {})",
                path.display()
            ),
            Err(e) => format!(
                "the `ferry` context could not be added to your kubeconfig ({e:#}); use \
                 KUBECONFIG={}",
                layout.kubeconfig().display()
            ),
        }
    } else {
        format!(
            "kubeconfig: export KUBECONFIG={}",
            layout.kubeconfig().display()
        )
    };
    say!(
        "\nThe cluster is ready ({:.1}s): {server}\n{kubeconfig_note}\n\nNext:\n  kubectl get nodes\n  \
         kubectl create deployment hello --image=nginx --replicas=3\n  kubectl rollout status \
         deployment/hello\n",
        began.elapsed().as_secs_f64()
    );
    if detached {
        say!("{READY_MARK}");
    } else {
        say!(
            "Supervising; Ctrl-C stops the cluster. Logs in {}",
            layout.logs().display()
        );
    }
    let stop = loop {
        tokio::select! {
            event = supervisor.next_event() => supervisor.handle(event),
            signal = signals.recv() => break signal,
        }
    };
    say!("ferry up: {stop}: stopping the cluster");
    supervisor.stop_all().await;
    if flags.update_kubeconfig
        && let Err(e) = files::remove_from_user_kubeconfig(&layout)
    {
        say!("could not remove the `ferry` context from your kubeconfig: {e:#}");
    }
    let _ = std::fs::remove_file(layout.pid_file("up"));
    say!("ferry up: stopped");
    Ok(())
}

/// Starts the components stage by stage and waits until they are healthy, printing one line
/// per component; fails with the log of a component that exits or never gets healthy.
async fn start(
    supervisor: &mut Supervisor,
    layout: &Layout,
    nodes: usize,
    began: Instant,
) -> anyhow::Result<()> {
    let mut client: Option<kube::Client> = None;
    for stage in 0..=3 {
        let indexes = supervisor.stage(stage);
        for &i in &indexes {
            supervisor.start(i)?;
        }
        let mut waiting = indexes.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut ready_nodes = 0;
        while !waiting.is_empty() {
            if let Some(supervisor::Event::Exited { index, status, .. }) = supervisor.try_event() {
                bail!(
                    "{} exited while starting ({}); the end of {}:\n{}",
                    supervisor.spec(index).name,
                    supervisor::describe(&status),
                    layout.log(&supervisor.spec(index).name).display(),
                    supervisor.log_tail(index, 20)
                );
            }
            if client.is_none() && stage >= 1 {
                client = crate::client(Some(&layout.kubeconfig())).await.ok();
            }
            let mut still = Vec::new();
            let mut prober = probe::Prober::new(client.as_ref());
            for &i in &waiting {
                let spec = supervisor.spec(i);
                if prober.check(&spec.probe).await.is_healthy() {
                    let what = match &spec.probe {
                        Probe::Node { .. } => {
                            ready_nodes += 1;
                            format!("node {} Ready ({ready_nodes}/{nodes})", node_of(spec))
                        }
                        Probe::Process => "running".to_owned(),
                        _ => "ready".to_owned(),
                    };
                    say!(
                        "  {:<20} {what:<28} {:>5.1}s  pid {}",
                        spec.name,
                        began.elapsed().as_secs_f64(),
                        supervisor.pid(i).unwrap_or_default()
                    );
                } else {
                    still.push(i);
                }
            }
            waiting = still;
            if waiting.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let names: Vec<&str> = waiting
                    .iter()
                    .map(|&i| supervisor.spec(i).name.as_str())
                    .collect();
                bail!(
                    "not healthy after 60s: {}; the end of {}:\n{}",
                    names.join(", "),
                    layout.log(names[0]).display(),
                    supervisor.log_tail(waiting[0], 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

fn node_of(spec: &Spec) -> &str {
    match &spec.probe {
        Probe::Node { name } => name,
        _ => &spec.name,
    }
}

pub fn down_main(args: &[String]) -> ExitCode {
    match crate::parsed("down", DOWN_HELP, parse_data_dir(args, "down")) {
        Ok(data_dir) => down(data_dir).unwrap_or_else(|e| {
            eprintln!("ferry down: {e:#}");
            ExitCode::FAILURE
        }),
        Err(code) => code,
    }
}

fn down(data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let layout = layout_for(data_dir)?;
    if !DirLock::held(&layout) {
        // No supervisor: clean up what a killed one may have left.
        let leftovers = kill_leftovers(&layout);
        let removed = files::remove_from_user_kubeconfig(&layout)?;
        if leftovers == 0 && removed.is_none() {
            eprintln!(
                "ferry down: no cluster is running in {}",
                layout.root.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        say!("ferry down: stopped {leftovers} leftover process(es)");
        return Ok(ExitCode::SUCCESS);
    }
    let pid = supervisor_pid(&layout).with_context(|| {
        format!(
            "a cluster holds {} but its {} is missing",
            layout.lock_file().display(),
            layout.pid_file("up").display()
        )
    })?;
    say!(
        "ferry down: stopping the cluster in {} (pid {pid})",
        layout.root.display()
    );
    supervisor::signal(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(60);
    while DirLock::held(&layout) {
        if Instant::now() > deadline {
            bail!("the cluster (pid {pid}) did not stop within 60s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    say!("ferry down: stopped");
    Ok(ExitCode::SUCCESS)
}

pub fn status_main(args: &[String]) -> ExitCode {
    match crate::parsed("status", STATUS_HELP, parse_data_dir(args, "status")) {
        Ok(data_dir) => crate::block_on("status", status(data_dir)),
        Err(code) => code,
    }
}

/// Prints each component; exits 0 when every one is healthy, 1 otherwise (3 when no cluster
/// runs).
async fn status(data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let layout = layout_for(data_dir)?;
    if !DirLock::held(&layout) {
        say!("no cluster is running in {}", layout.root.display());
        return Ok(ExitCode::from(3));
    }
    let path = layout.status_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is the cluster still starting?)",
            path.display()
        )
    })?;
    let status: supervisor::StatusFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not readable", path.display()))?;
    let client = crate::client(Some(&layout.kubeconfig())).await.ok();
    say!(
        "cluster {} (supervisor pid {}), data in {}",
        status.server,
        status.supervisor_pid,
        layout.root.display()
    );
    say!(
        "{:<20} {:>8}  {:<11} {:<28} RESTARTS",
        "COMPONENT",
        "PID",
        "STATE",
        "HEALTH"
    );
    let mut all_healthy = true;
    let mut prober = probe::Prober::new(client.as_ref());
    for component in &status.components {
        let running = component.state == supervisor::State::Running
            && component.pid.is_some_and(supervisor::alive);
        let health = if running {
            prober.check(&component.probe).await
        } else {
            probe::Health::Unhealthy(
                component
                    .last_exit
                    .clone()
                    .unwrap_or_else(|| "not running".to_owned()),
            )
        };
        all_healthy &= health.is_healthy();
        let state = match component.state {
            supervisor::State::Running => "running",
            supervisor::State::Restarting => "restarting",
            supervisor::State::Down => "down",
            supervisor::State::Stopped => "stopped",
        };
        say!(
            "{:<20} {:>8}  {:<11} {:<28} {}",
            component.name,
            component
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            state,
            health.text(),
            component.restarts
        );
    }
    Ok(if all_healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn up_flags() {
        let flags = parse_up(&args(&[
            "--nodes=5",
            "--data-dir",
            "/tmp/x",
            "--etcd",
            "--port=7443",
            "--detach",
            "--no-kubeconfig-update",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(flags.nodes, Some(5));
        assert!(flags.etcd && flags.detach && !flags.update_kubeconfig);
        assert_eq!(flags.port, Some(7443));
        for bad in [
            &["--etcd", "--etcd-servers=http://a:2379"][..],
            &["--nodes=0"],
            &["--port=0"],
            &["--port=x"],
            &["--bogus"],
        ] {
            assert!(parse_up(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_come_from_flags_then_the_last_run() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        layout.create().unwrap();
        let mut flags = parse_up(&args(&["--etcd", "--nodes=2", "--port=7443"]))
            .unwrap()
            .unwrap();
        let first = settings(&flags, &layout).unwrap();
        first.save(&layout).unwrap();
        assert!(matches!(first.store, Store::LocalEtcd { .. }));
        flags = parse_up(&[]).unwrap().unwrap();
        let second = settings(&flags, &layout).unwrap();
        assert_eq!(second.store, first.store, "the store is remembered");
        assert_eq!((second.port, second.nodes), (7443, 2));
    }

    #[test]
    fn every_node_is_its_own_kubelet_with_its_own_index() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        let settings = Settings {
            store: Store::Embedded,
            port: 6443,
            nodes: 3,
        };
        let specs = specs(&layout, &settings, "0").unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "apiserver",
                "controller-manager",
                "scheduler",
                "kubelet-1",
                "kubelet-2",
                "kubelet-3"
            ]
        );
        let kubelet = &specs[4];
        assert!(
            kubelet
                .args
                .contains(&"--node-name=ferry-node-2".to_owned())
        );
        assert!(kubelet.args.contains(&"--first-node-index=2".to_owned()));
        assert_eq!(kubelet.role, Role::Node);
        assert!(
            !specs[0]
                .args
                .iter()
                .any(|a| a.starts_with("--etcd-servers")),
            "embedded store"
        );
    }
}
