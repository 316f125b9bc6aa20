//! `cargo xtask <command>`: the project's chores that need more than cargo.
//!
//! The tests need a program that cargo cannot provide: `etcd` (the storage tests run against a
//! real one), and the Python `kubernetes` client. `cargo xtask test` makes sure they are
//! installed, installing etcd with apt-get when it runs as root on a Debian-like system, then
//! runs the whole test suite. (Building needs no `protoc`: etcd-client is vendored with its
//! generated code, vendor/etcd-client/VENDORED.md.)
//!
//! This crate has no dependencies on purpose: it builds before anything else.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};

const HELP: &str = "\
cargo xtask: Ferry's project chores.

USAGE:
    cargo xtask test [<cargo test args>...]
        Install what the tests need (see `deps`), then run
        `cargo test --workspace --locked <cargo test args>`, arguments passed on as given.
        Examples: cargo xtask test -- --nocapture
                  cargo xtask test storage_conformance

    cargo xtask deps
        Only make sure `etcd` and the Python `kubernetes` client are installed. When etcd is
        missing: as root, install it with apt-get (package etcd-server); otherwise print the
        sudo command to run and exit 1.

    cargo xtask bench [[--] <storage-bench args>...]
        `deps`, then `cargo run --release -p bench --bin storage-bench -- <storage-bench args>`.
        Example: cargo xtask bench -- --quick

    cargo xtask help
        Print this help.

ENVIRONMENT:
    ETCD_BIN    an etcd binary to use instead of the `etcd` on PATH (the test harness honors it too)
";

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let command = args.next();
    let rest: Vec<OsString> = args.collect();
    let result = match command.as_ref().and_then(|c| c.to_str()) {
        // As given, `--` included: `cargo xtask test -- --nocapture` is
        // `cargo test --workspace --locked -- --nocapture`.
        Some("test") => ensure_deps().and_then(|()| cargo_test(&rest)),
        Some("deps") if rest.is_empty() => ensure_deps().map(|()| ExitCode::SUCCESS),
        Some("bench") => ensure_deps().and_then(|()| cargo_bench(&strip_separator(rest))),
        Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprint!("{HELP}");
            eprintln!("\nerror: no command given");
            Ok(ExitCode::from(2))
        }
        Some(_) => {
            eprint!("{HELP}");
            let given: Vec<_> = command
                .iter()
                .chain(&rest)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            eprintln!("\nerror: unknown command or arguments: {}", given.join(" "));
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|message| {
        eprintln!("xtask: error: {message}");
        ExitCode::FAILURE
    })
}

/// Drops one leading `--`: `cargo xtask bench -- --quick` and `cargo xtask bench --quick` are
/// the same (`cargo_bench` adds the `--` before the benchmark's own arguments).
fn strip_separator(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    args
}

/// A program the tests need and the Debian packages that provide it.
struct Tool {
    name: &'static str,
    packages: &'static [&'static str],
}

const ETCD: Tool = Tool {
    name: "etcd",
    packages: &["etcd-server"],
};

/// Makes sure `etcd` and the Python client work, installing what is missing as root.
fn ensure_deps() -> Result<(), String> {
    ensure_debian_tools()?;
    ensure_python_client()
}

/// The tests drive the official Python `kubernetes` client: installed with pip when missing.
fn ensure_python_client() -> Result<(), String> {
    let python = find_in_path("python3").ok_or(
        "python3 is not installed; the client tests need it (apt-get install python3 python3-pip)",
    )?;
    let has_client = |python: &Path| {
        Command::new(python)
            .args(["-c", "import kubernetes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_client(&python) {
        eprintln!("xtask: the Python kubernetes client is installed");
        return Ok(());
    }
    eprintln!("xtask: installing the Python kubernetes client: python3 -m pip install kubernetes");
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "kubernetes",
        ])
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !status.success() || !has_client(&python) {
        return Err("could not install the Python kubernetes client; run: python3 -m pip install kubernetes".to_owned());
    }
    Ok(())
}

fn ensure_debian_tools() -> Result<(), String> {
    let missing = missing_tools();
    if missing.is_empty() {
        eprintln!("xtask: etcd is installed");
        return Ok(());
    }
    let packages: Vec<&str> = missing
        .iter()
        .flat_map(|(tool, _)| tool.packages.iter().copied())
        .collect();
    let mut why = String::new();
    for (tool, reason) in &missing {
        let _ = writeln!(why, "  - {}: {reason}", tool.name);
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );

    if !is_root() {
        eprintln!("xtask: the tests need tools that are not installed:\n{why}");
        eprintln!("Install them with:\n\n    sudo apt-get update && sudo {install}\n");
        eprintln!("(or point ETCD_BIN at an existing binary), then run the command again.");
        return Err("missing tools; see above".to_owned());
    }
    if find_in_path("apt-get").is_none() {
        return Err(format!(
            "missing tools and no apt-get to install them with:\n{why}\
             Install etcd with your package manager."
        ));
    }
    eprintln!(
        "xtask: installing what the tests need:\n{why}xtask: running apt-get update && {install}"
    );
    apt_get(&["update"])?;
    let mut install_args = vec!["install", "-y", "--no-install-recommends"];
    install_args.extend(&packages);
    apt_get(&install_args)?;

    let still_missing = missing_tools();
    if let Some((tool, reason)) = still_missing.first() {
        return Err(format!(
            "{} is still not usable after installing {}: {reason}",
            tool.name,
            packages.join(" ")
        ));
    }
    eprintln!("xtask: installed {}", packages.join(" "));
    Ok(())
}

/// The tools that are missing or broken, each with the reason.
fn missing_tools() -> Vec<(Tool, String)> {
    let mut missing = Vec::new();
    if let Err(reason) = check_etcd() {
        missing.push((ETCD, reason));
    }
    missing
}

fn check_etcd() -> Result<(), String> {
    let etcd =
        tool_path("ETCD_BIN", "etcd").ok_or("not found on PATH (and ETCD_BIN is not set)")?;
    match Command::new(&etcd)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "`{} --version` failed: {}",
            etcd.display(),
            output.status
        )),
        Err(e) => Err(format!("cannot run {}: {e}", etcd.display())),
    }
}

/// `$var` if set, else `name` on `PATH`.
fn tool_path(var: &str, name: &str) -> Option<PathBuf> {
    match env::var_os(var) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => find_in_path(name),
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root, by `id -u` (no libc dependency).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn apt_get(args: &[&str]) -> Result<(), String> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`apt-get {}` failed: {status}", args.join(" ")))
    }
}

/// The cargo that runs us (cargo sets `CARGO` for `cargo run`), else the one on `PATH`.
fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn cargo_test(extra: &[OsString]) -> Result<ExitCode, String> {
    let mut command = cargo();
    command
        .args(["test", "--workspace", "--locked"])
        .args(extra);
    run(command)
}

fn cargo_bench(extra: &[OsString]) -> Result<ExitCode, String> {
    let mut command = cargo();
    command
        .args([
            "run",
            "--release",
            "-p",
            "bench",
            "--bin",
            "storage-bench",
            "--",
        ])
        .args(extra);
    run(command)
}

/// Runs `command` with inherited stdio and returns its exit status as ours.
fn run(mut command: Command) -> Result<ExitCode, String> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!("xtask: running {shown}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    Ok(exit_code(status))
}

fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: report it the way shells do.
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
        (None, None) => ExitCode::FAILURE,
    }
}
