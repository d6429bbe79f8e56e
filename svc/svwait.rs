//! svwait: wait until services are up, ready, down, finished, or their supervisor is gone.
//!
//! # Interface
//!
//! `svwait [ -u | -U | -d | -D | -x ] [ -a | -o ] [ -t SECS ] DIR...`
//!
//! svwait returns when every DIR (`-o`: one DIR) is in the wanted state. It works with any
//! supervisor svstat reads (ours, daemontools 0.76, runit, daemontools-encore, nosh, s6)
//! and only reads files: it sends nothing. Semantics as s6-svwait (REFERENCE.md §11.3).
//!
//! # Options
//!
//! * `-u`: up, a process is running (the default).
//! * `-U`: up and ready. Readiness is the `notification-fd` report with our supervise or
//!   s6; a service without readiness configured, and the formats that have none (0.76,
//!   runit, encore, nosh), are ready as soon as they are up.
//! * `-d`: down, no process running.
//! * `-D`: down and `./finish` done (ours, runit, s6; the same as `-d` elsewhere).
//! * `-x`: the supervisor is gone (`svok` fails), for example after `svc -dx`.
//! * `-a`: wait for all DIRs (the default); `-o`: for one of them.
//! * `-t SECS`: give up after SECS seconds (decimals allowed, `0` checks once). Without
//!   it, svwait waits forever.
//!
//! # Exit codes
//!
//! * 0: done.
//! * 99: timed out (`svwait: fatal: timed out waiting for DIR`, naming the first DIR
//!   still waited for), as s6-svwait's 99.
//! * 100: usage (`svwait: usage: ...`, after `svwait: illegal option -- C` for an unknown
//!   letter), or no DIR.
//! * 111: a DIR is not supervised or cannot be read, or its supervisor went away while
//!   waited for: `svwait: fatal: unable to wait for DIR: TEXT`, TEXT being svstat's
//!   (`supervise not running`, `unable to open supervise/status: ...`).
//!
//! # How it waits
//!
//! Without polling where the supervisor allows it: our supervise's and s6's `event/`
//! fifodir (REFERENCE.md §11.5), inotify on `supervise/`, and a pidfd on our supervise.
//! A 0.76 or runit supervisor gives no way to notice its own death, so those DIRs are
//! re-checked every 100 ms as well (REFERENCE.md §12.5, "falls back to polling").
//!
//! # Notes
//!
//! Not in daemontools 0.76. Differences from s6-svwait: `-t` is in seconds, not
//! milliseconds; `-x` is ours; a supervisor gone is 111 (s6 says 102); `-U` on an s6
//! service without `notification-fd` returns when it is up (s6-svwait waits forever
//! there; `s6-svc -wU` does as we do).

// svc --wait uses the parts of this module that svwait does not.
#[allow(dead_code)]
mod wait;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;
use svcore::errstr::{self, EXIT_OK, EXIT_PERMANENT, EXIT_TEMPORARY};
use svcore::getopt::{Getopt, Opt};
use wait::{EXIT_TIMEOUT, Goal, Outcome, Target};

const USAGE: &str =
    "svwait: usage: svwait [ -u | -U | -d | -D | -x ] [ -a | -o ] [ -t secs ] dir ...";

/// The parsed command line.
#[derive(Debug, PartialEq)]
struct Args {
    target: Target,
    any: bool,
    timeout: Option<std::time::Duration>,
    dirs: Vec<PathBuf>,
}

/// Parses with djb's getopt; `Err` is the lines to print before exiting 100.
fn parse(argv: &[OsString]) -> Result<Args, Vec<String>> {
    let mut g = Getopt::new(argv, "uUdDxaot:");
    let mut a = Args {
        target: Target::Up,
        any: false,
        timeout: None,
        dirs: Vec::new(),
    };
    while let Some(o) = g.next_opt() {
        match o {
            Opt::Opt(b'u', _) => a.target = Target::Up,
            Opt::Opt(b'U', _) => a.target = Target::Ready,
            Opt::Opt(b'd', _) => a.target = Target::Down,
            Opt::Opt(b'D', _) => a.target = Target::Finished,
            Opt::Opt(b'x', _) => a.target = Target::Exited,
            Opt::Opt(b'a', _) => a.any = false,
            Opt::Opt(b'o', _) => a.any = true,
            Opt::Opt(b't', Some(v)) => {
                let t = wait::parse_secs(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()))
                    .ok_or_else(|| vec![USAGE.to_string()])?;
                a.timeout = Some(t);
            }
            Opt::Opt(..) => return Err(vec![USAGE.to_string()]),
            Opt::Bad(line) => return Err(vec![line, USAGE.to_string()]),
        }
    }
    a.dirs = argv
        .get(g.optind..)
        .unwrap_or(&[])
        .iter()
        .map(PathBuf::from)
        .collect();
    if a.dirs.is_empty() {
        return Err(vec![USAGE.to_string()]);
    }
    Ok(a)
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let a = match parse(&argv) {
        Ok(a) => a,
        Err(lines) => {
            for l in lines {
                errstr::emit(&l);
            }
            std::process::exit(EXIT_PERMANENT);
        }
    };
    let goal = Goal {
        target: a.target,
        commands: None,
    };
    let dirs: Vec<(PathBuf, Goal)> = a.dirs.iter().map(|d| (d.clone(), goal)).collect();
    let deadline = a.timeout.map(|t| Instant::now() + t);
    match wait::wait(&dirs, a.any, deadline) {
        Outcome::Done => std::process::exit(EXIT_OK),
        Outcome::TimedOut(left) => {
            let first = left.first().map(|d| wait::show(d)).unwrap_or_default();
            errstr::die(
                "svwait",
                &format!("timed out waiting for {first}"),
                EXIT_TIMEOUT,
            )
        }
        Outcome::Gone(dir, why) => errstr::die(
            "svwait",
            &format!("unable to wait for {}: {why}", wait::show(&dir)),
            EXIT_TEMPORARY,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn p(v: &[&str]) -> Result<Args, Vec<String>> {
        let mut a = vec![OsString::from("svwait")];
        a.extend(v.iter().map(OsString::from));
        parse(&a)
    }

    #[test]
    fn defaults_and_letters() {
        let a = p(&["s"]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(a.target, Target::Up);
        assert!(!a.any);
        assert_eq!(a.timeout, None);
        let a = p(&["-Uo", "-t", "1.5", "a", "b"]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(a.target, Target::Ready);
        assert!(a.any);
        assert_eq!(a.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(a.dirs, vec![PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(
            p(&["-d", "-x", "-t0", "s"]).map(|a| (a.target, a.timeout)),
            Ok((Target::Exited, Some(Duration::ZERO)))
        );
    }

    #[test]
    fn usage_errors() {
        assert_eq!(p(&[]), Err(vec![USAGE.to_string()]));
        assert_eq!(p(&["-u"]), Err(vec![USAGE.to_string()]));
        assert_eq!(p(&["-t", "soon", "s"]), Err(vec![USAGE.to_string()]));
        assert_eq!(
            p(&["-z", "s"]),
            Err(vec![
                "svwait: illegal option -- z".to_string(),
                USAGE.to_string()
            ])
        );
    }
}
