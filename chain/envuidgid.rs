//! envuidgid: run a program with an account's uid and gid in `$UID` and `$GID`.
//!
//! # Interface
//!
//! `envuidgid ACCOUNT CHILD...`
//!
//! Looks ACCOUNT up with `getpwnam`, sets `GID` and then `UID` to the decimal ids in the
//! environment, and execs CHILD through `$PATH`. It changes no ids itself; a later program
//! (for example a server that binds as root, then drops privileges) reads the variables.
//!
//! # Options
//!
//! None.
//!
//! # Exit codes
//!
//! * 100: usage (`envuidgid: usage: envuidgid account child`).
//! * 111: `envuidgid: fatal: unknown account X`, `unable to run CHILD: ERR`.
//!
//! # Notes
//!
//! Same as 0.76 (REFERENCE.md §9), including the order in which the two variables are set
//! (GID first), which shows in `env` output.

use std::ffi::OsString;
use svcore::errstr::{self, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::pathexec::Env;

const PROG: &str = "envuidgid";

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() < 3 {
        errstr::emit("envuidgid: usage: envuidgid account child");
        std::process::exit(EXIT_PERMANENT);
    }
    let account = args[1].to_string_lossy().into_owned();
    let user = match nix::unistd::User::from_name(&account) {
        Ok(Some(u)) => u,
        _ => die(&format!("unknown account {account}")),
    };
    let mut env = Env::new();
    // envuidgid.c sets GID before UID; the order is visible in the child's environ.
    env.set(b"GID", user.gid.as_raw().to_string().as_bytes());
    env.set(b"UID", user.uid.as_raw().to_string().as_bytes());
    let err = env.exec(&args[2..]);
    die(&format!(
        "unable to run {}: {}",
        args[2].to_string_lossy(),
        io_str(&err)
    ));
}

fn die(text: &str) -> ! {
    errstr::die(PROG, text, EXIT_TEMPORARY)
}
