//! `ferry`: the one binary. The subcommands (`up`, `apiserver`, `controller-manager`, `scheduler`,
//! `kubelet`) are not built yet; until they are, this binary says so instead of pretending.

use std::process::ExitCode;

const USAGE: &str = "\
ferry — a Kubernetes-compatible control plane

Usage: ferry <--version|--help>

No subcommands are built yet (see ARCHITECTURE.md for what exists today).";

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
        Some(other) => {
            eprintln!("ferry: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
