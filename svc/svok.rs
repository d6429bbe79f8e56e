//! svok: is a supervise running in DIR?
//!
//! # Interface
//!
//! `svok DIR`
//!
//! svok changes to DIR and opens `supervise/ok` for writing without blocking. supervise
//! keeps a read end of that FIFO open for its whole life, so the open succeeds exactly
//! while supervise runs. Only the first argument is used; any others are ignored, as in
//! 0.76.
//!
//! # Exit codes
//!
//! * 0: supervise is running.
//! * 100: it is not (the FIFO has no reader, or does not exist), silently; or no DIR was
//!   given (`svok: usage: svok dir`).
//! * 111: `svok: fatal: unable to chdir to DIR: ERR`, or
//!   `svok: fatal: unable to open DIR/supervise/ok: ERR` for any other open error (for
//!   example `access denied` for a caller outside the delegated group).
//!
//! # Notes
//!
//! Identical to 0.76 (REFERENCE.md §5). runit, daemontools-encore and nosh services have an
//! `ok` FIFO too, so svok works on them. s6 has none, so an s6 service answers 100, as
//! with 0.76; `svstat` and `svwait` recognise s6 services by their lock instead.

use std::ffi::OsString;
use svcore::errstr::{self, EXIT_OK, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::{fifo, svdir};

/// What svok found, before it becomes an exit code.
enum Outcome {
    Supervised,
    NotSupervised,
    Fatal(String),
}

fn check(dir: &OsString) -> Outcome {
    let name = dir.to_string_lossy();
    if let Err(e) = std::env::set_current_dir(dir) {
        return Outcome::Fatal(format!("unable to chdir to {name}: {}", io_str(&e)));
    }
    match fifo::open_write(std::path::Path::new(svdir::OK)) {
        Ok(_) => Outcome::Supervised,
        // 0.76: ENOENT (never supervised here) and ENXIO (no reader) both mean "no".
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENXIO)) => {
            Outcome::NotSupervised
        }
        Err(e) => Outcome::Fatal(format!(
            "unable to open {name}/{}: {}",
            svdir::OK,
            io_str(&e)
        )),
    }
}

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        errstr::emit("svok: usage: svok dir");
        std::process::exit(EXIT_PERMANENT);
    };
    let code = match check(&dir) {
        Outcome::Supervised => EXIT_OK,
        Outcome::NotSupervised => EXIT_PERMANENT,
        Outcome::Fatal(text) => {
            errstr::fatal("svok", &text);
            EXIT_TEMPORARY
        }
    };
    std::process::exit(code);
}
