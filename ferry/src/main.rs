//! `ferry`: the one binary. Built so far: `ferry apiserver`. The other subcommands (`up`,
//! `controller-manager`, `scheduler`, `kubelet`) are not built yet and are not offered.

mod apiserver_cmd;

use std::process::ExitCode;

const USAGE: &str = "\
ferry — a Kubernetes-compatible control plane

Usage:
  ferry apiserver [flags]   serve the Kubernetes API (see `ferry apiserver --help`)
  ferry --version

Not built yet: ferry up, controller-manager, scheduler, kubelet (see ARCHITECTURE.md).";

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
        Some(other) => {
            eprintln!("ferry: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
