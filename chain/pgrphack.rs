//! pgrphack: run a program in a new session and process group.
//!
//! # Interface
//!
//! `pgrphack CHILD...`
//!
//! Calls `setsid()` (its result is ignored, as in 0.76: a process that already leads a
//! group keeps it) and execs CHILD through `$PATH`. Under supervise, `exec pgrphack nsd ...`
//! puts the daemon and its children in their own group, so `kill -- -PID` reaches them all.
//!
//! # Options
//!
//! None.
//!
//! # Exit codes
//!
//! * 100: usage (`pgrphack: usage: pgrphack child`).
//! * 111: `pgrphack: fatal: unable to run CHILD: ERR`.
//!
//! # Notes
//!
//! Same as 0.76 (REFERENCE.md §9).

use std::ffi::OsString;
use svcore::errstr::{self, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::pathexec;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() < 2 {
        errstr::emit("pgrphack: usage: pgrphack child");
        std::process::exit(EXIT_PERMANENT);
    }
    // 0.76 ignores setsid's result (EPERM when already a group leader).
    let _ = nix::unistd::setsid();
    let err = pathexec::exec(&args[1..]);
    errstr::die(
        "pgrphack",
        &format!(
            "unable to run {}: {}",
            args[1].to_string_lossy(),
            io_str(&err)
        ),
        EXIT_TEMPORARY,
    )
}
