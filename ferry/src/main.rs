//! `ferry`: the one binary. `ferry up` starts a local multi-process cluster (and `ferry down`,
//! `ferry status` manage it); `ferry apiserver`, `ferry controller-manager`, `ferry scheduler`
//! and `ferry kubelet` (simulated nodes) run the parts.

mod apiserver_cmd;
mod controller_manager_cmd;
mod kubelet_cmd;
mod scheduler_cmd;
mod up;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use std::io::Write as _;

use anyhow::Context;

/// Every ferry process allocates through mimalloc: the apiserver's request path is
/// allocation-heavy, and glibc's malloc cost it about a third of its CPU (see BENCHMARKS.md,
/// scheduler benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
ferry — a Kubernetes-compatible control plane

Usage:
  ferry up [flags]                   start a local cluster, kubectl ready (see `ferry up --help`)
  ferry down [--data-dir DIR]        stop it
  ferry status [--data-dir DIR]      its components, their health and restarts
  ferry apiserver [flags]            serve the Kubernetes API (see `ferry apiserver --help`)
  ferry controller-manager [flags]   run the controllers (see `ferry controller-manager --help`)
  ferry scheduler [flags]            place pods on nodes (see `ferry scheduler --help`)
  ferry kubelet [flags]              simulated nodes (see `ferry kubelet --help`)
  ferry --version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version" | "-V" | "version") => {
            println!("ferry {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        None | Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("apiserver") => apiserver_cmd::main(&args[1..]),
        Some("controller-manager") => controller_manager_cmd::main(&args[1..]),
        Some("scheduler") => scheduler_cmd::main(&args[1..]),
        Some("kubelet") => kubelet_cmd::main(&args[1..]),
        Some("up") => up::up_main(&args[1..]),
        Some("down") => up::down_main(&args[1..]),
        Some("status") => up::status_main(&args[1..]),
        Some(other) => {
            eprintln!("ferry: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// What every component subcommand does around its work: flags parsed (`Ok(None)` =
/// `--help`), logs to stderr at `RUST_LOG` (default info), a tokio runtime, and the outcome as
/// an exit code (2 for bad flags, 1 for a failure).
fn run_command<T, Fut>(
    name: &str,
    help: &str,
    flags: anyhow::Result<Option<T>>,
    run: impl FnOnce(T) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let flags = match parsed(name, help, flags) {
        Ok(flags) => flags,
        Err(code) => return code,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: logs written to files (`ferry up`'s) stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    block_on(name, async { run(flags).await.map(|()| ExitCode::SUCCESS) })
}

/// The flags, or the exit code when there is nothing to run: `--help` printed (0), or bad
/// flags explained (2).
fn parsed<T>(name: &str, help: &str, flags: anyhow::Result<Option<T>>) -> Result<T, ExitCode> {
    match flags {
        Ok(Some(flags)) => Ok(flags),
        Ok(None) => {
            // `ferry up --help | head` is no reason to panic.
            let _ = writeln!(std::io::stdout(), "{help}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("ferry {name}: {e:#}");
            Err(ExitCode::from(2))
        }
    }
}

/// Runs `work` on a new tokio runtime; an error is printed and exits 1.
///
/// The runtime has a worker per core, as tokio's default, but at most twice the cores of
/// blocking threads instead of 512. Only the apiserver's embedded store runs work there (its
/// reads), mostly CPU on pages already cached, so more threads would not finish it sooner; and
/// each thread keeps its own allocator heap: with 100 kubelets relisting, tokio started ~40 of
/// them, ~8 MB of the apiserver's RSS at 10,000 pods (a 100-node `ferry up`).
fn block_on(name: &str, work: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cores * 2)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry {name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(work).unwrap_or_else(|e| {
        eprintln!("ferry {name}: {e:#}");
        ExitCode::FAILURE
    })
}

/// The `--leader-elect-*` duration flags the controller-manager and the scheduler both take
/// (kube's names); false when `name` is not one of them.
pub(crate) fn leader_election_timing(
    timings: &mut runtime::leader::Timings,
    name: &str,
    value: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<bool> {
    let field = match name {
        "--leader-elect-lease-duration" => &mut timings.lease_duration,
        "--leader-elect-renew-deadline" => &mut timings.renew_deadline,
        "--leader-elect-retry-period" => &mut timings.retry_period,
        _ => return Ok(false),
    };
    *field = seconds(&value()?)?;
    Ok(true)
}

/// A duration flag in seconds (`15s`, `0.5s`), as the Kubernetes components write them.
pub(crate) fn seconds(value: &str) -> anyhow::Result<Duration> {
    let number = value
        .strip_suffix('s')
        .with_context(|| format!("{value:?}: durations are in seconds, like 15s"))?;
    // `try_from`: a negative or infinite number is an error, not a panic.
    number
        .parse()
        .ok()
        .and_then(|n: f64| Duration::try_from_secs_f64(n).ok())
        .with_context(|| format!("{value:?} is not a duration"))
}

/// The flags of a command line, kube's style: `--name value` or `--name=value`.
pub(crate) struct FlagArgs<'a> {
    args: std::slice::Iter<'a, String>,
}

impl<'a> FlagArgs<'a> {
    pub(crate) fn new(args: &'a [String]) -> FlagArgs<'a> {
        FlagArgs { args: args.iter() }
    }

    /// The next flag's name, and its value when given after `=`.
    pub(crate) fn next_flag(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        let arg = self.args.next()?;
        Some(match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        })
    }

    /// The value of flag `name`: the one after `=`, else the next argument.
    pub(crate) fn value(&mut self, name: &str, inline: Option<&str>) -> anyhow::Result<String> {
        match inline {
            Some(value) => Ok(value.to_owned()),
            None => self
                .args
                .next()
                .cloned()
                .with_context(|| format!("{name} needs a value")),
        }
    }
}

/// A client for the apiserver named by `kubeconfig`, or by `KUBECONFIG`/`~/.kube/config`.
pub(crate) async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    use anyhow::Context as _;
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("cannot use {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no --kubeconfig, and no usable KUBECONFIG or ~/.kube/config")?,
    };
    http2_client(config).context("cannot build a client")
}

/// A client for `config` that multiplexes every request and watch over one HTTP/2 connection,
/// as client-go does: kube's default client speaks HTTP/1.1, one connection per request in
/// flight, and a hundred kubelets each kept a dozen of them open at the apiserver. Otherwise
/// the stack of kube's default client: its timeouts, retries, authentication and headers.
fn http2_client(config: kube::Config) -> anyhow::Result<kube::Client> {
    use http_body_util::BodyExt as _;
    use kube::client::{ConfigExt as _, retry::RetryPolicy};
    use tower::ServiceExt as _;

    // kube's own client refuses a proxy unless built with its proxy features, which Ferry's is not.
    if let Some(proxy) = &config.proxy_url {
        anyhow::bail!(
            "the kubeconfig names a proxy ({proxy}); Ferry's components connect directly"
        );
    }
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    // Requests share the connection as small HTTP/2 frames: Nagle's algorithm would hold one
    // back until the previous one is acknowledged (40 ms of delayed ACK).
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http()
        .enable_http2()
        .wrap_connector(http);
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http2: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| tower::retry::RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(http2)
        .map_response(|response| response.map(|body| body.map_err(tower::BoxError::from)));
    Ok(kube::client::ClientBuilder::new(service, config.default_namespace).build())
}

#[cfg(test)]
mod tests {
    fn config() -> kube::Config {
        kube::Config::new("https://127.0.0.1:6443".parse().expect("a URL"))
    }

    #[tokio::test]
    async fn the_components_client_builds_and_refuses_a_proxy() {
        super::http2_client(config()).expect("a client without a proxy");
        let mut proxied = config();
        proxied.proxy_url = Some("http://proxy.example:3128".parse().expect("a URL"));
        let Err(error) = super::http2_client(proxied) else {
            panic!("a proxy is refused");
        };
        assert!(error.to_string().contains("proxy.example:3128"), "{error}");
    }
}
