//! `ferry`: the one binary. Built so far: `ferry apiserver` and `ferry controller-manager` (the
//! Deployment, ReplicaSet, namespace and endpoints controllers and the garbage collector). The other subcommands (`up`, `scheduler`, `kubelet`) are not built yet
//! and are not offered.

mod apiserver_cmd;
mod controller_manager_cmd;

use std::future::Future;
use std::process::ExitCode;

const USAGE: &str = "\
ferry — a Kubernetes-compatible control plane

Usage:
  ferry apiserver [flags]            serve the Kubernetes API (see `ferry apiserver --help`)
  ferry controller-manager [flags]   run the controllers (see `ferry controller-manager --help`)
  ferry --version

Not built yet: ferry up, scheduler, kubelet (see ARCHITECTURE.md).";

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
        Some(other) => {
            eprintln!("ferry: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// What every subcommand does around its work: flags parsed (`Ok(None)` = `--help`), logs to
/// stderr at `RUST_LOG` (default info), a tokio runtime, and the outcome as an exit code (2 for
/// bad flags, 1 for a failure).
fn run_command<T, Fut>(
    name: &str,
    help: &str,
    flags: anyhow::Result<Option<T>>,
    run: impl FnOnce(T) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let flags = match flags {
        Ok(Some(flags)) => flags,
        Ok(None) => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ferry {name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry {name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
