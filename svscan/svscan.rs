//! svscan: starts and keeps alive one supervise per service directory.
//!
//! # Interface
//!
//! `svscan [-r] [-1] [-g SECS] [DIR]`
//!
//! svscan changes to DIR (default: stay in `.`) and, for every subdirectory NAME whose
//! name does not begin with `.` (symlinks followed), runs `supervise NAME`; when
//! `NAME/log` exists it also runs `supervise log` in NAME, with the service's stdout
//! joined to the logger's stdin by a pipe that svscan keeps open for the entry's whole
//! life. A supervise that exits is started again at the next pass (within 5 s) while its
//! directory is present. Directories are identified by (device, inode). `supervise` is
//! found on `$PATH` and gets svscan's environment. All of this is 0.76's behaviour
//! (REFERENCE.md §6); see docs/svscan.md.
//!
//! Beyond 0.76, with no flag: a new or renamed service directory is picked up at once
//! (inotify on DIR; the 5 s pass stays as the fallback), SIGHUP and SIGALRM rescan at
//! once, dead children are reaped at once, there is no 1000-service limit (the soft
//! `RLIMIT_NOFILE` is raised to the hard one; children get the original back), and a
//! restarted svscan adopts the supervise processes still running from an earlier one
//! (it checks `supervise/ok` before starting one, and takes their log pipe back).
//!
//! # Options
//!
//! * `-r`, `--stop-removed`: when a service directory leaves DIR, stop its service
//!   (`dx` to its supervise, then `ox` to its log's once the service is gone), as runit's
//!   runsvdir does. 0.76 never stops anything.
//! * `-1`, `--pid1`: PID-1 / container mode (REFERENCE.md §12.9); on by default when
//!   svscan is process 1. svscan becomes a child subreaper (when not PID 1) and reaps
//!   every orphan at once; on SIGTERM, SIGINT or SIGHUP it stops every service first,
//!   each logger once its service's supervise has exited (so the pipe drains), KILLs
//!   whatever is left after the grace period, and exits when everything has stopped.
//! * `-g SECS`, `--grace SECS`: the grace period of PID-1 mode (default 10).
//! * `-e NAME`, `--exit-with NAME`: in PID-1 mode, exit with the code of service NAME
//!   (a directory in DIR) after the stop, as a container's exit code (REFERENCE.md
//!   §12.9): its last exit code, or 128 + signal when a signal killed it, from the
//!   `supervise/status.ext` sidecar that our supervise keeps. Without a sidecar (a 0.76
//!   supervise), or when NAME never died, the usual 0 or 111.
//!
//! # Exit codes
//!
//! 100 usage; 111 when DIR cannot be entered. svscan otherwise runs for ever, except in
//! PID-1 mode, where it exits 0 after an orderly stop and 111 when something had to be
//! killed, or with NAME's code under `-e NAME`.
//!
//! # Signals
//!
//! * SIGCHLD: reap at once.
//! * SIGHUP, SIGALRM: rescan at once (in 0.76 they kill svscan). In PID-1 mode SIGHUP
//!   stops everything instead.
//! * SIGTERM, SIGINT: default action (svscan dies, supervise processes keep running, as
//!   0.76); in PID-1 mode: orderly stop.
//!
//! # Notes
//!
//! * 0.76 takes its first argument as DIR whatever it is; ours reads leading `-` options.
//! * 0.76's warnings are kept word for word, including the `unable to stat NAME` warning
//!   repeated at every pass for a dangling symlink.

mod event_loop;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use svcore::errstr;

const PROG: &str = "svscan";
const USAGE: &str = "svscan: usage: svscan [-r] [-1] [-g secs] [-e name] [dir]";

/// What the command line asked for.
pub struct Options {
    /// `-r`: stop services whose directory left DIR.
    pub stop_removed: bool,
    /// `-1`: PID-1 mode even when not process 1.
    pub pid1: bool,
    /// `-g`: the grace period before KILL in PID-1 mode.
    pub grace: Duration,
    /// `-e`: the service whose exit code svscan exits with in PID-1 mode.
    pub exit_with: Option<OsString>,
    /// The scan directory, if given.
    pub dir: Option<OsString>,
}

fn parse(args: Vec<OsString>) -> Option<Options> {
    let mut o = Options {
        stop_removed: false,
        pid1: false,
        grace: Duration::from_secs(10),
        exit_with: None,
        dir: None,
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-r") | Some("--stop-removed") => o.stop_removed = true,
            Some("-1") | Some("--pid1") => o.pid1 = true,
            Some("-g") | Some("--grace") => {
                let secs: f64 = it.next()?.to_str()?.parse().ok()?;
                if !(0.0..=86400.0).contains(&secs) {
                    return None;
                }
                o.grace = Duration::from_secs_f64(secs);
            }
            Some("-e") | Some("--exit-with") => o.exit_with = Some(it.next()?),
            Some("--") => {
                o.dir = it.next();
                break;
            }
            Some(s) if s.starts_with('-') && s.len() > 1 => return None,
            _ => {
                o.dir = Some(a);
                break;
            }
        }
    }
    if it.next().is_some() {
        return None;
    }
    Some(o)
}

fn main() -> ExitCode {
    let Some(opts) = parse(std::env::args_os().skip(1).collect()) else {
        errstr::emit(USAGE);
        return ExitCode::from(errstr::EXIT_PERMANENT as u8);
    };
    if let Some(dir) = &opts.dir {
        if let Err(e) = std::env::set_current_dir(dir) {
            errstr::fatal(
                PROG,
                &format!(
                    "unable to chdir to {}: {}",
                    dir.to_string_lossy(),
                    errstr::io_str(&e)
                ),
            );
            return ExitCode::from(errstr::EXIT_TEMPORARY as u8);
        }
    }
    match event_loop::run(&opts) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errstr::fatal(PROG, &format!("{e}"));
            ExitCode::from(errstr::EXIT_TEMPORARY as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Option<Options> {
        parse(a.iter().map(OsString::from).collect())
    }

    #[test]
    fn options_and_dir() {
        let o = p(&["-r", "-g", "2.5", "/service"]).unwrap();
        assert!(o.stop_removed && !o.pid1);
        assert_eq!(o.grace, Duration::from_millis(2500));
        assert_eq!(o.dir, Some(OsString::from("/service")));
        assert!(p(&[]).unwrap().dir.is_none());
        assert!(p(&["--pid1"]).unwrap().pid1);
        assert_eq!(p(&["--", "-r"]).unwrap().dir, Some(OsString::from("-r")));
        let o = p(&["-1", "-e", "web", "/service"]).unwrap();
        assert_eq!(o.exit_with, Some(OsString::from("web")));
        assert!(p(&["-e"]).is_none());
    }

    #[test]
    fn bad_usage() {
        assert!(p(&["-z"]).is_none());
        assert!(p(&["a", "b"]).is_none());
        assert!(p(&["-g"]).is_none());
        assert!(p(&["-g", "x"]).is_none());
    }
}
