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
//!
//! # Waiting: `svc --wait[=SECS] -opts DIR...` (ours; REFERENCE.md §12.6)
//!
//! `--wait` is recognised only as the **first** argument (anywhere else it ends the
//! options, as in 0.76, which reads any `--...` as `--`). svc then sends the commands as
//! above and returns once they took effect in every DIR, or after SECS seconds (default
//! 7, as runit's `sv -w`; decimals allowed):
//!
//! * with `x`: the supervisor is gone (`svwait -x`);
//! * else the last of `u d p c` sent decides: up (and ready, when the service has
//!   readiness configured: `notification-fd` and the like with ours, s6's ready flag;
//!   otherwise plain up), down, paused, not paused;
//! * with our supervise, also: its counter of handled commands (`commands` in
//!   `supervise/status.ext`, svcore::sidecar) has grown by the bytes sent, so signal
//!   letters (`-t`, `-h`, ...) are acknowledged when supervise has handled them;
//! * against a 0.76 supervise (no counter) signal letters alone return once written, and
//!   the state is checked without knowing whether supervise has read the bytes yet.
//!
//! It waits as `svwait` does (event fifodir, inotify, pidfd; polling only for 0.76).
//! Exit codes with `--wait`: 0 done; 99 timed out (`svc: fatal: timed out waiting for
//! DIR`); 111 when a DIR could not be controlled (its warning as above) or its supervisor
//! went away (`svc: fatal: unable to wait for DIR: TEXT`); 100 for a bad SECS
//! (`svc: usage: svc [ --wait[=secs] ] -opts dir ...`).

mod origdir;
// svwait uses the parts of this module that svc does not.
#[allow(dead_code)]
mod wait;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use svcore::control::{self, SendError};
use svcore::errstr::{self, EXIT_OK, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use wait::Outcome;

/// The letters svc accepts: 0.76's `udopchaitkx` plus runit/encore's `q12w`.
const LETTERS: &[u8] = b"udopchaitkxq12w";
/// 0.76 keeps at most this many command bytes (`char data[20]`).
const MAX_BYTES: usize = 20;
/// Our usage line, for a bad `--wait=SECS`.
const USAGE: &str = "svc: usage: svc [ --wait[=secs] ] -opts dir ...";
/// `--wait` without SECS (runit's `sv -w` default).
const WAIT_DEFAULT: Duration = Duration::from_secs(7);

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
/// With `waiting`, returns what to wait for in each DIR that was controlled, and whether
/// some DIR could not be.
fn control_all(
    bytes: &[u8],
    dirs: &[OsString],
    waiting: bool,
) -> Result<(Vec<(PathBuf, wait::Goal)>, bool), String> {
    let orig = origdir::OrigDir::open()
        .map_err(|e| format!("unable to open current directory: {}", io_str(&e)))?;
    let mut goals = Vec::new();
    let mut failed = false;
    for dir in dirs {
        let name = dir.to_string_lossy();
        match origdir::enter(dir) {
            Err(e) => {
                failed = true;
                errstr::warn("svc", &format!("unable to chdir to {name}: {}", io_str(&e)))
            }
            Ok(()) => {
                // The counter before our bytes (only from a sidecar that describes the
                // running supervise, see wait::Sidecar).
                let before = match waiting.then(|| wait::look(Path::new(".")).ext) {
                    Some(wait::Sidecar::Fresh(e)) => Some((e.supervisor, e.commands)),
                    _ => None,
                };
                match control::send(Path::new("."), bytes) {
                    Ok(()) => {
                        if waiting {
                            goals.push((PathBuf::from(dir), goal_for(bytes, before)));
                        }
                    }
                    Err(e) => {
                        failed = true;
                        let text = match e {
                            SendError::NotSupervised => {
                                format!("unable to control {name}: supervise not running")
                            }
                            SendError::Open(e) => {
                                format!("unable to control {name}: {}", io_str(&e))
                            }
                            SendError::Write(e) => {
                                format!("error writing commands to {name}: {}", io_str(&e))
                            }
                        };
                        errstr::warn("svc", &text);
                    }
                }
            }
        }
        orig.restore()
            .map_err(|e| format!("unable to set directory: {}", io_str(&e)))?;
    }
    Ok((goals, failed))
}

/// What `--wait` waits for after sending `bytes`; `before` is our supervise's pid and
/// command counter read before sending, when it publishes one.
fn goal_for(bytes: &[u8], before: Option<(u32, u64)>) -> wait::Goal {
    use wait::Target;
    let target = if bytes.contains(&b'x') {
        Target::Exited
    } else {
        bytes
            .iter()
            .rev()
            .find_map(|b| match b {
                // Up and, when readiness is configured (ours, s6), ready: the service
                // took effect when it can serve. Without readiness this is plain up.
                b'u' => Some(Target::Ready),
                b'd' => Some(Target::Down),
                b'p' => Some(Target::Paused),
                b'c' => Some(Target::Continued),
                _ => None,
            })
            .unwrap_or(Target::Nothing)
    };
    wait::Goal {
        target,
        commands: before.map(|(sup, n)| (sup, n + bytes.len() as u64)),
    }
}

/// Splits off a leading `--wait[=SECS]`: `Ok(None)` without it, `Err` for a bad SECS.
fn wait_option(first: Option<&OsString>) -> Result<Option<Duration>, ()> {
    let Some(a) = first.map(|a| a.as_bytes()) else {
        return Ok(None);
    };
    if a == b"--wait" {
        return Ok(Some(WAIT_DEFAULT));
    }
    match a.strip_prefix(b"--wait=") {
        Some(v) => wait::parse_secs(v).map(Some).ok_or(()),
        None => Ok(None),
    }
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let Ok(waiting) = wait_option(argv.get(1)) else {
        errstr::emit(USAGE);
        std::process::exit(EXIT_PERMANENT);
    };
    let from = if waiting.is_some() { 2 } else { 1 };
    let args = match parse(argv.get(from..).unwrap_or(&[])) {
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
    let (goals, failed) = match control_all(&args.bytes, &args.dirs, waiting.is_some()) {
        Ok(r) => r,
        Err(text) => errstr::die("svc", &text, EXIT_TEMPORARY),
    };
    let Some(timeout) = waiting else {
        // 0.76: exit 0 whenever the options parse.
        std::process::exit(EXIT_OK);
    };
    let code = match wait::wait(&goals, false, Some(Instant::now() + timeout)) {
        Outcome::Done if failed => EXIT_TEMPORARY,
        Outcome::Done => EXIT_OK,
        Outcome::TimedOut(left) => {
            let first = left.first().map(|d| wait::show(d)).unwrap_or_default();
            errstr::fatal("svc", &format!("timed out waiting for {first}"));
            wait::EXIT_TIMEOUT
        }
        Outcome::Gone(dir, why) => {
            errstr::fatal(
                "svc",
                &format!("unable to wait for {}: {why}", wait::show(&dir)),
            );
            EXIT_TEMPORARY
        }
    };
    std::process::exit(code);
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
    fn wait_option_only_first_and_well_formed() {
        let o = |s: &str| wait_option(Some(&OsString::from(s)));
        assert_eq!(o("--wait"), Ok(Some(WAIT_DEFAULT)));
        assert_eq!(o("--wait=2.5"), Ok(Some(Duration::from_millis(2500))));
        assert_eq!(o("--wait=x"), Err(()));
        assert_eq!(o("--wait="), Err(()));
        assert_eq!(o("-u"), Ok(None));
        assert_eq!(o("--waiting"), Ok(None));
        assert_eq!(wait_option(None), Ok(None));
    }

    #[test]
    fn wait_goal_from_letters() {
        use wait::Target;
        let t = |b: &[u8]| goal_for(b, None).target;
        assert_eq!(t(b"u"), Target::Ready);
        assert_eq!(t(b"dx"), Target::Exited);
        assert_eq!(t(b"ud"), Target::Down);
        assert_eq!(t(b"dut"), Target::Ready);
        assert_eq!(t(b"p"), Target::Paused);
        assert_eq!(t(b"pc"), Target::Continued);
        assert_eq!(t(b"th"), Target::Nothing);
        assert_eq!(t(b"o"), Target::Nothing);
        assert_eq!(goal_for(b"th", Some((5, 10))).commands, Some((5, 12)));
    }

    #[test]
    fn progname_is_the_basename() {
        assert_eq!(progname(Some(&OsString::from("/usr/bin/svc"))), "svc");
        assert_eq!(progname(None), "svc");
    }
}
