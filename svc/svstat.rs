//! svstat: print the status of supervised services.
//!
//! # Interface
//!
//! `svstat DIR...`
//!
//! One line per DIR on stdout, `DIR: ` followed by the first of these that applies
//! (REFERENCE.md §5):
//!
//! * `unable to chdir: ERR`
//! * `unable to stat down: ERR` (anything but "does not exist")
//! * `supervise not running`
//! * `unable to open supervise/ok: ERR`
//! * `unable to open supervise/status: ERR`
//! * `unable to read supervise/status: bad format` (or `: ERR`)
//! * `up (pid P) S seconds` or `down S seconds`, then, in this order, `, normally down`
//!   (up with a `down` file), `, normally up` (down without one), `, paused` (up),
//!   `, want up` (down), `, want down` (up).
//!
//! S is whole seconds since the last change, 0 when the stamp is in the future; the plural
//! is fixed (`1 seconds`).
//!
//! # Exit codes
//!
//! * 0 always, whatever the services' states.
//! * 111: `svstat: fatal: unable to open current directory: ERR` or
//!   `svstat: fatal: unable to set directory: ERR`.
//!
//! # Notes
//!
//! * The line is 0.76's, byte for byte. With no DIR nothing is printed. Arguments are all
//!   directories: 0.76 has no options, so `svstat -x` reports a directory named `-x`.
//! * It reads every supervisor's status file (REFERENCE.md §11.7): daemontools and ours
//!   (18 bytes), runit (20, with `supervise/stat`), daemontools-encore (20 or 40), nosh (87)
//!   and s6 (35, real-TAI stamps converted, liveness from an fcntl lock on
//!   `supervise/lock` because s6 has no `ok` FIFO). A 0.76 svstat reads the first four
//!   through their common 18-byte prefix and calls an s6 service
//!   `unable to open supervise/ok: file does not exist`.
//! * A read error on `status` prints `unable to read supervise/status: ERR`, as the table
//!   says. 0.76 misses it (it compares `r < sizeof status` with `r == -1` as unsigned) and
//!   prints whatever the previous DIR left in its buffer; we do not copy that bug.

mod origdir;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use svcore::errstr::{self, EXIT_OK, EXIT_TEMPORARY, io_str};
use svcore::svstat;
use svcore::tai64n::Tai64n;

/// The text after `DIR: ` for the current directory (the caller has just entered it).
fn describe_here() -> String {
    match svstat::probe(Path::new(".")) {
        // 0.76 reads the clock after reading the status.
        Ok(s) => svstat::line(&s, Tai64n::now()),
        Err(p) => p.text(),
    }
}

/// The 0.76 report for each DIR. `Err` is one of the two fatal cwd problems.
fn report(dirs: &[OsString]) -> Result<Vec<u8>, String> {
    let orig = origdir::OrigDir::open()
        .map_err(|e| format!("unable to open current directory: {}", io_str(&e)))?;
    let mut out = Vec::new();
    for dir in dirs {
        out.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()));
        out.extend_from_slice(b": ");
        let text = match origdir::enter(dir) {
            Err(e) => format!("unable to chdir: {}", io_str(&e)),
            Ok(()) => describe_here(),
        };
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
        orig.restore()
            .map_err(|e| format!("unable to set directory: {}", io_str(&e)))?;
    }
    Ok(out)
}

fn main() {
    let dirs: Vec<OsString> = std::env::args_os().skip(1).collect();
    match report(&dirs) {
        Ok(out) => {
            // 0.76 ignores a failing stdout too; the exit code stays 0.
            let _ = std::io::stdout().lock().write_all(&out);
            std::process::exit(EXIT_OK);
        }
        Err(text) => {
            errstr::fatal("svstat", &text);
            std::process::exit(EXIT_TEMPORARY);
        }
    }
}
