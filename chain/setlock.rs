//! setlock: run a program while holding a lock on a file.
//!
//! # Interface
//!
//! `setlock [-nNxX] FILE CHILD...`
//!
//! Opens FILE for appending (creating it with mode 0600), takes an exclusive `flock` on
//! it, and execs CHILD through `$PATH`. The descriptor stays open across the exec (it is
//! not close-on-exec), so CHILD and everything it starts hold the lock until they exit.
//!
//! # Options
//!
//! * `-n`: do not wait for the lock; fail at once if it is held.
//! * `-N`: wait for the lock (the default).
//! * `-x`: exit 0, silently, if FILE cannot be opened or locked.
//! * `-X`: fail in that case (the default).
//!
//! # Exit codes
//!
//! * 100: usage (`setlock: usage: setlock [ -nNxX ] file program [ arg ... ]`, after
//!   sgetopt's `setlock: illegal option -- C` for an unknown option).
//! * 111: `setlock: fatal: unable to open FILE: ERR`, `unable to lock FILE: ERR`
//!   (`temporary failure` when `-n` finds it held), `unable to run CHILD: ERR`.
//! * 0 with `-x` when FILE cannot be opened or locked.
//!
//! # Examples
//!
//! `setlock -nx /var/run/nightly.lock nightly-refresh` in cron: skip a run while the last
//! one is still going.
//!
//! # Notes
//!
//! Same as 0.76 (REFERENCE.md §9): open flags `O_WRONLY|O_NONBLOCK|O_APPEND|O_CREAT`, the
//! descriptor is the lowest free one (normally 3).

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use svcore::errstr::{self, EXIT_OK, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::getopt::{Getopt, Opt};
use svcore::pathexec;

const PROG: &str = "setlock";

fn usage() -> ! {
    errstr::emit("setlock: usage: setlock [ -nNxX ] file program [ arg ... ]");
    std::process::exit(EXIT_PERMANENT);
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut ndelay = false;
    let mut flagx = false;
    let mut g = Getopt::new(&args, "nNxX");
    while let Some(o) = g.next_opt() {
        match o {
            Opt::Opt(b'n', _) => ndelay = true,
            Opt::Opt(b'N', _) => ndelay = false,
            Opt::Opt(b'x', _) => flagx = true,
            Opt::Opt(b'X', _) => flagx = false,
            Opt::Bad(line) => {
                errstr::emit(&line);
                usage();
            }
            Opt::Opt(..) => usage(),
        }
    }
    let rest = &args[g.optind.min(args.len())..];
    if rest.len() < 2 {
        usage();
    }
    let file = rest[0].to_string_lossy().into_owned();
    let fail = |what: &str, e: io::Error| -> ! {
        if flagx {
            std::process::exit(EXIT_OK);
        }
        errstr::die(
            PROG,
            &format!("unable to {what} {file}: {}", io_str(&e)),
            EXIT_TEMPORARY,
        )
    };
    let Ok(cfile) = CString::new(rest[0].as_bytes()) else {
        fail("open", io::Error::from_raw_os_error(libc::ENOENT));
    };
    // SAFETY: open(2) with a NUL-terminated path. Deliberately without O_CLOEXEC: the
    // lock must be inherited by CHILD (REFERENCE.md §9).
    let fd = unsafe {
        libc::open(
            cfile.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_APPEND | libc::O_CREAT,
            0o600 as libc::c_uint,
        )
    };
    if fd == -1 {
        fail("open", io::Error::last_os_error());
    }
    let op = if ndelay {
        libc::LOCK_EX | libc::LOCK_NB
    } else {
        libc::LOCK_EX
    };
    loop {
        // SAFETY: flock on the descriptor opened above.
        if unsafe { libc::flock(fd, op) } == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            fail("lock", e);
        }
    }
    let err = pathexec::exec(&rest[1..]);
    errstr::die(
        PROG,
        &format!(
            "unable to run {}: {}",
            rest[1].to_string_lossy(),
            io_str(&err)
        ),
        EXIT_TEMPORARY,
    )
}
