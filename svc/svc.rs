//! svc: send commands to supervised services.
//!
//! # Interface
//!
//! `svc -opts DIR...`
//!
//! For each DIR, svc opens `DIR/supervise/control` with `O_WRONLY|O_NONBLOCK`, makes the
//! descriptor blocking, writes every option letter in **one** `write`, and closes it. The
//! FIFO is the whole protocol: `printf dx > DIR/supervise/control` does what `svc -dx DIR`
//! does.
//!
//! # Options
//!
//! Read like djb's getopt: `-dx` is `-d -x`; `--` (or any argument starting with `--`)
//! ends the options and is skipped, and so does the first
//! argument that does not start with `-` (or is `-` alone). Each letter is sent once, in
//! the order first seen.
//!
//! | letter | effect in supervise |
//! |---|---|
//! | `-u` | up: want up, start if not running |
//! | `-d` | down: want down; TERM then CONT |
//! | `-o` | once: start if not running, do not restart |
//! | `-p` `-c` | pause (STOP) / continue (CONT) |
//! | `-h` `-a` `-i` `-t` `-k` | HUP, ALRM, INT, TERM, KILL |
//! | `-q` `-1` `-2` `-w` | QUIT, USR1, USR2, WINCH (runit and daemontools-encore letters) |
//! | `-x` | exit: supervise exits once the service is down |
//!
//! # Exit codes
//!
//! * 0 whenever the options parse, **even if every DIR failed** (each failure is a warning
//!   on stderr). `svc -dx /service/*` on a glob that matches nothing is harmless.
//! * 100: unknown option (`svc: illegal option -- z`, then the options line).
//! * 111: the current directory cannot be opened or returned to.
//!
//! # Messages
//!
//! * `svc: warning: unable to chdir to DIR: ERR`
//! * `svc: warning: unable to control DIR: supervise not running` (ENXIO: no reader)
//! * `svc: warning: unable to control DIR: ERR`
//! * `svc: warning: error writing commands to DIR: ERR`
//!
//! # Notes
//!
//! * Same as 0.76 (REFERENCE.md §5), byte for byte, plus the letters `q 1 2 w`, which a
//!   0.76 supervise ignores silently. The options line printed on a usage error is 0.76's,
//!   unchanged, because scripts and tests match it.
//! * SIGPIPE is ignored (Rust's runtime does this before `main`, as 0.76 does explicitly),
//!   so a reader that vanishes mid-write gives `error writing commands to DIR: broken pipe`.
//! * To wait for a command to take effect, use `svwait` after svc.

mod origdir;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use svcore::control::{self, SendError};
use svcore::errstr::{self, EXIT_OK, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};

/// The letters svc accepts: 0.76's `udopchaitkx` plus runit/encore's `q12w`.
const LETTERS: &[u8] = b"udopchaitkxq12w";
/// 0.76 keeps at most this many command bytes (`char data[20]`).
const MAX_BYTES: usize = 20;
/// 0.76's usage line, printed as is (no `svc:` prefix) after the illegal-option line.
const OPTIONS_LINE: &str = "svc options: u up, d down, o once, x exit, p pause, c continue, h hup, a alarm, i interrupt, t term, k kill";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    /// Command bytes, each once, in first-seen order.
    bytes: Vec<u8>,
    /// The directories.
    dirs: Vec<OsString>,
}

/// Parses like djb's sgetopt: `Err(c)` is the first illegal option letter.
fn parse(args: &[OsString]) -> Result<Args, u8> {
    let mut bytes = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        // djb's sgetopt ends the options at any argument starting with `--` and consumes
        // it, so 0.76 reads `svc --wait x` as `svc x`. We do the same.
        if a.starts_with(b"--") {
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        for &c in &a[1..] {
            if !LETTERS.contains(&c) {
                return Err(c);
            }
            if bytes.len() < MAX_BYTES && !bytes.contains(&c) {
                bytes.push(c);
            }
        }
        i += 1;
    }
    Ok(Args {
        bytes,
        dirs: args[i..].to_vec(),
    })
}

/// The name sgetopt prints: the last component of argv[0].
fn progname(argv0: Option<&OsString>) -> String {
    argv0
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "svc".to_string())
}

/// Sends `bytes` to each DIR, warning per failure; `Err` only for the fatal cwd problems.
fn control_all(bytes: &[u8], dirs: &[OsString]) -> Result<(), String> {
    let orig = origdir::OrigDir::open()
        .map_err(|e| format!("unable to open current directory: {}", io_str(&e)))?;
    for dir in dirs {
        let name = dir.to_string_lossy();
        match origdir::enter(dir) {
            Err(e) => errstr::warn("svc", &format!("unable to chdir to {name}: {}", io_str(&e))),
            Ok(()) => match control::send(Path::new("."), bytes) {
                Ok(()) => {}
                Err(SendError::NotSupervised) => errstr::warn(
                    "svc",
                    &format!("unable to control {name}: supervise not running"),
                ),
                Err(SendError::Open(e)) => {
                    errstr::warn("svc", &format!("unable to control {name}: {}", io_str(&e)))
                }
                Err(SendError::Write(e)) => errstr::warn(
                    "svc",
                    &format!("error writing commands to {name}: {}", io_str(&e)),
                ),
            },
        }
        orig.restore()
            .map_err(|e| format!("unable to set directory: {}", io_str(&e)))?;
    }
    Ok(())
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let args = match parse(argv.get(1..).unwrap_or(&[])) {
        Ok(a) => a,
        Err(c) => {
            errstr::emit(&format!(
                "{}: illegal option -- {}",
                progname(argv.first()),
                char::from(c)
            ));
            errstr::emit(OPTIONS_LINE);
            std::process::exit(EXIT_PERMANENT);
        }
    };
    if let Err(text) = control_all(&args.bytes, &args.dirs) {
        errstr::fatal("svc", &text);
        std::process::exit(EXIT_TEMPORARY);
    }
    std::process::exit(EXIT_OK);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Args, u8> {
        parse(&v.iter().map(OsString::from).collect::<Vec<_>>())
    }

    fn ok(bytes: &[u8], dirs: &[&str]) -> Result<Args, u8> {
        Ok(Args {
            bytes: bytes.to_vec(),
            dirs: dirs.iter().map(OsString::from).collect(),
        })
    }

    #[test]
    fn grouped_and_separate_letters_are_the_same() {
        assert_eq!(p(&["-dx", "s"]), ok(b"dx", &["s"]));
        assert_eq!(p(&["-d", "-x", "s"]), ok(b"dx", &["s"]));
    }

    #[test]
    fn each_letter_once_in_first_seen_order() {
        assert_eq!(
            p(&["-udu", "-d", "-x", "-u", "a", "b"]),
            ok(b"udx", &["a", "b"])
        );
        assert_eq!(p(&["-q12w"]), ok(b"q12w", &[]));
    }

    #[test]
    fn options_end_at_double_dash_dash_alone_or_first_dir() {
        assert_eq!(p(&["-d", "--", "-u"]), ok(b"d", &["-u"]));
        assert_eq!(p(&["-d", "-", "-u"]), ok(b"d", &["-", "-u"]));
        assert_eq!(p(&["-d", "x", "-u"]), ok(b"d", &["x", "-u"]));
        assert_eq!(p(&["a"]), ok(b"", &["a"]));
    }

    #[test]
    fn illegal_letter_is_reported() {
        assert_eq!(p(&["-dz", "s"]), Err(b'z'));
        assert_eq!(p(&["-d", "--wait", "-u"]), ok(b"d", &["-u"]));
    }

    #[test]
    fn progname_is_the_basename() {
        assert_eq!(progname(Some(&OsString::from("/usr/bin/svc"))), "svc");
        assert_eq!(progname(None), "svc");
    }
}
