//! Lays out the release binary's code by use (`symbol-order.txt`), so that each component maps
//! only the pages of the binary it runs. A `ferry` process maps the code it executes from the
//! binary's page cache in 64 KiB windows (the kernel's fault-around); with the linker's default
//! layout the 2.4–4.2 MB of functions a component runs at idle were strewn over ~10 MB of
//! windows each, and the three control-plane processes together mapped ~32 MB of text.
//! `symbol-order.txt` lists the functions the apiserver, scheduler and controller-manager ran
//! under callgrind (`symbol-order.sh` records and writes it): first those run at start-up and
//! idle, then those run only under work; each tier grouped by which components ran them.
//!
//! Applied to release builds for x86_64-unknown-linux-gnu only, where rustc links with LLD by
//! default (Rust ≥ 1.90; GNU ld has no `--symbol-ordering-file`), unless
//! `FERRY_NO_SYMBOL_ORDER` is set. The names carry hashes that depend on the compiler version
//! and on the features each crate is built with: the file fits what `cargo build --release -p
//! ferry` (the README's build) makes with the compiler that generated it. Names a build does
//! not contain are skipped silently, and a build that matches none is laid out as without the
//! file: the layout changes, never the code. `symbol-order.sh --check` says how much of the list
//! a build has; adding a dependency or changing a crate's features calls for a new list.

use std::env;
use std::path::Path;

fn main() {
    let order =
        Path::new(&env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=FERRY_NO_SYMBOL_ORDER");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_by_default = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    if release && lld_by_default && env::var_os("FERRY_NO_SYMBOL_ORDER").is_none() {
        println!(
            "cargo:rustc-link-arg-bin=ferry=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=ferry=-Wl,--no-warn-symbol-ordering");
    }
}
