//! setuidgid: run a program under an account's uid and gid.
//!
//! # Interface
//!
//! `setuidgid ACCOUNT CHILD...`
//!
//! Looks ACCOUNT up with `getpwnam`, drops every supplementary group but the account's
//! primary gid (`setgroups`), then `setgid` and `setuid`, and execs CHILD (found through
//! `$PATH`, as daemontools' pathexec does). The environment is unchanged (no `HOME`,
//! `USER` ...).
//!
//! # Options
//!
//! None.
//!
//! # Exit codes
//!
//! * 100: usage (`setuidgid: usage: setuidgid account child`).
//! * 111: `setuidgid: fatal: unknown account X`, `unable to setgid: ERR` (also for a
//!   `setgroups` failure), `unable to setuid: ERR`, `unable to run CHILD: ERR`.
//! * Otherwise CHILD's own exit status (setuidgid is replaced by it).
//!
//! # Examples
//!
//! `exec setuidgid site nsd -i -t config.tcl` in a `run` file, when nsd does not need root
//! to bind (ports above 1024; see examples/openacs/).
//!
//! # Notes
//!
//! Same as 0.76 (REFERENCE.md §9). SIGPIPE reaches CHILD with its default disposition.

use std::ffi::OsString;
use svcore::errstr::{self, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::pathexec;

const PROG: &str = "setuidgid";

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    // 0.76: `if (!account || !*++argv) usage`.
    if args.len() < 3 {
        errstr::emit("setuidgid: usage: setuidgid account child");
        std::process::exit(EXIT_PERMANENT);
    }
    let account = args[1].to_string_lossy().into_owned();
    let user = match nix::unistd::User::from_name(&account) {
        Ok(Some(u)) => u,
        _ => die(&format!("unknown account {account}")),
    };
    let gid = user.gid;
    // 0.76's prot_gid: setgroups(1, &gid) then setgid; either failure is "setgid".
    if let Err(e) = nix::unistd::setgroups(&[gid]).and_then(|()| nix::unistd::setgid(gid)) {
        die(&format!(
            "unable to setgid: {}",
            errstr::errno_str(e as i32)
        ));
    }
    if let Err(e) = nix::unistd::setuid(user.uid) {
        die(&format!(
            "unable to setuid: {}",
            errstr::errno_str(e as i32)
        ));
    }
    let err = pathexec::exec(&args[2..]);
    die(&format!(
        "unable to run {}: {}",
        args[2].to_string_lossy(),
        io_str(&err)
    ));
}

fn die(text: &str) -> ! {
    errstr::die(PROG, text, EXIT_TEMPORARY)
}
