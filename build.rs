//! Links the unwinder statically (libgcc_eh.a) instead of libgcc_s.so.1 where the C
//! toolchain has it.
//!
//! Why: every supervise of a tree is a separate process, and each shared library costs it
//! private dirty pages (its relocated GOT and data, and ld.so's bookkeeping): 12 KiB per
//! supervise for libgcc_s, which the release build only needs for backtraces
//! (panic = "abort"). Issue 2's memory target compares one idle supervise with
//! daemontools' 92 KiB; docs/BENCHMARKS-supervise.md has the breakdown. The static
//! unwinder is the one gcc itself uses for `-static` programs; debug builds unwind with it
//! just as well.
//!
//! Without libgcc_eh.a (another toolchain, another C library) nothing changes: rustc's
//! own `-lgcc_s` stays and the binaries are as before.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if !linux_gnu {
        return;
    }
    // rustc links through `cc` on linux-gnu; ask it where its libgcc_eh.a is. It answers
    // with the bare name when it has none.
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let Ok(out) = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !path.is_absolute() || !path.is_file() {
        return;
    }
    if let Some(dir) = path.parent() {
        // Placed before std's `-lgcc_s`, so the `_Unwind_*` symbols resolve here and
        // `--as-needed` (rustc's default) drops libgcc_s from the binary.
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static=gcc_eh");
    }
}
