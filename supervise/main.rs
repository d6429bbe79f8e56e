//! supervise: starts and monitors one service.
//!
//! # Interface
//!
//! `supervise DIR`
//!
//! supervise switches to DIR and starts `./run`. It restarts `./run` whenever it exits,
//! at most once a second (start to start). Commands arrive as bytes on the FIFO
//! `DIR/supervise/control` (`svc` writes them); the state is published in the 18-byte
//! `DIR/supervise/status` (`svstat` reads it). The process title stays `supervise DIR`.
//!
//! Startup, in order (REFERENCE.md §4), each failure fatal with exit 111: chdir to DIR;
//! stat `down` (if it exists the service starts want-down); create `supervise/` (0700; a
//! `supervise` symlink, even a dangling one, is allowed, as in Debian's patch 0002) and
//! lock `supervise/lock` (flock and fcntl); open `supervise/control` for reading and
//! keep a write end; write `status`; open `supervise/ok` for reading; start `./run`
//! unless want-down.
//!
//! # Control bytes
//!
//! `u` up, `d` down (TERM then CONT), `o` once, `p` pause (STOP), `c` continue (CONT),
//! `h` HUP, `a` ALRM, `i` INT, `t` TERM, `k` KILL, `q` QUIT, `1` USR1, `2` USR2, `w`
//! WINCH, `x` exit as soon as there is no process. Other bytes are ignored.
//!
//! # Options
//!
//! None on the command line. Opt-in per-service settings (issue 6, REFERENCE.md §11,
//! §12), read at startup and before every start; docs/supervise.md lists every key:
//!
//! * s6's single-value files `notification-fd`, `timeout-kill`, `timeout-finish`,
//!   `down-signal`, `max-death-tally` (same meanings as in s6);
//! * `./finish EXITCODE SIGNAL NAME` after each death of run (s6's convention: 256 for
//!   killed by a signal; exit 125 = do not restart), bounded by `timeout-finish`;
//! * `service.toml`: the same keys, plus `setsid`/`process-group`, `cgroup`,
//!   `no-restart-exit-codes`, `[backoff]`, `[readiness]` (`notify-socket`, `check`) and
//!   `[health]` (`url` through `svprobe`, or `command`; restart after N failures).
//!
//! An invalid file is a warning naming the file, line and key; supervise keeps the last
//! good settings (the 0.76 defaults at startup) and never stops the service for it.
//!
//! # Files
//!
//! Besides 0.76's `supervise/{lock,control,ok,status}`: `supervise/status.ext` (state,
//! command counter, readiness, restarts, last exit, planned restart, health),
//! `supervise/deaths` (exit history), `event/` (s6's fifodir: `s u U d D O x`), and with
//! `notify-socket` the socket `supervise/notify`. Formats: svcore::sidecar and
//! docs/supervise.md. `status` stays 18 bytes.
//!
//! # Exit codes
//!
//! 0 after `x`; 100 usage (`supervise: usage: supervise dir`); 111 a startup failure
//! (`supervise: fatal: unable to chdir to DIR: ERR`, `unable to stat DIR/down: ERR`,
//! `unable to acquire DIR/supervise/lock: ERR`, `unable to read DIR/supervise/control:
//! ERR`, `unable to write DIR/supervise/control: ERR`, `unable to read DIR/supervise/ok:
//! ERR`).
//!
//! # Signals
//!
//! SIGCHLD is caught (through a self-pipe). Nothing else is handled: TERM kills
//! supervise and leaves the child running, as in 0.76.
//!
//! # Notes (differences from 0.76)
//!
//! * The 1-second floor between starts is a timer in the event loop, not a blocking
//!   `sleep(1)`: control bytes and reaping go on during it, and `d` or `x` cancel the
//!   pending start. While waiting, status says pid 0, want up.
//! * A failed fork is retried by a 60 s timer (0.76 sleeps 60 s, then waits for a `u`).
//! * A failed status write is retried (1 s, doubling to 60 s) until it succeeds.
//! * `q`, `1`, `2`, `w` send QUIT, USR1, USR2, WINCH (runit, daemontools-encore).
//! * The lock is also an fcntl lock, so s6's tools see the service as supervised.
//! * An idle supervise sleeps without a timeout (0.76 wakes every 3600 s).
//! * Control bytes are read 64 at a time (still handled one by one, in order).
//! * With none of the settings files, behaviour is 0.76's; the sidecar files and
//!   `event/` are extra files that 0.76 clients never look at.

// Rust's runtime start-up is skipped (see `main` below); the unit tests keep the
// test harness's own `main`.
#![cfg_attr(not(test), no_main)]

mod event_loop;
mod settings;
mod state;

use event_loop::{Loop, PROG};
use state::{Config, State};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;
use svcore::errstr::{self, EXIT_PERMANENT, EXIT_TEMPORARY};
use svcore::{fifo, lock, perms, proc::Prepared, selfpipe::SelfPipe, svdir};

/// A startup failure: the text after `supervise: fatal: `.
struct Fatal(String);

fn fatal_io(what: &str, e: &io::Error) -> Fatal {
    Fatal(format!("{what}: {}", errstr::io_str(e)))
}

/// The C entry point, instead of Rust's runtime start-up: that start-up reads
/// `/proc/self/maps` through stdio (to find the main thread's stack for its overflow
/// message) and allocates the main thread's handle, leaving a dirty heap page in every
/// idle supervise, and a tree runs one supervise per service (issue 2's memory target,
/// docs/BENCHMARKS-supervise.md). What that start-up did that supervise needs,
/// `proc::init_process` does; what is lost is the "has overflowed its stack" message (a
/// plain SIGSEGV instead). `std::env::args_os` still works: glibc hands std the arguments
/// through `.init_array`.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    svcore::proc::init_process();
    supervise()
}

#[cfg_attr(test, allow(dead_code))]
fn supervise() -> ! {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() != 2 {
        errstr::emit("supervise: usage: supervise dir");
        std::process::exit(EXIT_PERMANENT);
    }
    // Messages show DIR as given; non-UTF-8 bytes are only replaced in messages.
    let dir = String::from_utf8_lossy(args[1].as_bytes()).into_owned();
    match start(Path::new(&args[1]), &dir) {
        Ok((mut lp, mut st)) => {
            let code = lp.run(&mut st);
            std::process::exit(code);
        }
        Err(Fatal(text)) => errstr::die(PROG, &text, EXIT_TEMPORARY),
    }
}

/// Startup steps 1-6 of REFERENCE.md §4; returns the loop, ready to start `./run`.
fn start(path: &Path, dir: &str) -> Result<(Loop, State), Fatal> {
    // Signals first (STYLE.md P5), before any child can exist.
    let selfpipe = SelfPipe::new(&[libc::SIGCHLD])
        .map_err(|e| fatal_io(&format!("unable to create pipe for {dir}"), &e))?;

    // 1. chdir.
    std::env::set_current_dir(path)
        .map_err(|e| fatal_io(&format!("unable to chdir to {dir}"), &e))?;

    // 2. stat down: any file type counts; only ENOENT means "no down file".
    let want_down = match std::fs::metadata(svdir::DOWN) {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
        Err(e) => {
            return Err(fatal_io(
                &format!("unable to stat {dir}/{}", svdir::DOWN),
                &e,
            ));
        }
    };

    // 3. supervise/ and its lock. 0.76 ignores mkdir's result; a failure shows up as the
    // lock's open error.
    make_supervise_dir();
    let lock = lock::try_exclusive(Path::new(svdir::LOCK))
        .map_err(|e| fatal_io(&format!("unable to acquire {dir}/{}", svdir::LOCK), &e))?;

    // 4. control: read end (non-blocking), then a write end we keep so reads never see
    // EOF. mkfifo's result is ignored as in 0.76 (EEXIST keeps an admin's modes).
    let _ = fifo::make(Path::new(svdir::CONTROL), 0o600);
    let control = fifo::open_read(Path::new(svdir::CONTROL))
        .map_err(|e| fatal_io(&format!("unable to read {dir}/{}", svdir::CONTROL), &e))?;
    let control_write = fifo::open_write(Path::new(svdir::CONTROL))
        .map_err(|e| fatal_io(&format!("unable to write {dir}/{}", svdir::CONTROL), &e))?;

    let run = Prepared::new(
        &[svdir::RUN_PATH],
        &format!("supervise: fatal: unable to start {dir}/{}: ", svdir::RUN),
    )
    .map_err(|e| fatal_io(&format!("unable to start {dir}/{}", svdir::RUN), &e))?;

    let mut lp = Loop {
        dir: dir.to_string(),
        _lock: lock,
        control,
        _control_write: control_write,
        _ok: None,
        selfpipe,
        run,
        epoch: Instant::now(),
        status_retry: None,
        name: service_name(path),
        notify: None,
        settings_error: None,
        ext_dirty: true,
        ext_failing: false,
        self_pid: std::process::id(),
        check: None,
        probe: None,
        notify_socket: None,
        cgroup: None,
        cgroup_error: None,
        probe_err: None,
        deferred: event_loop::Deferred::default(),
    };
    // Settings are checked at startup; an invalid file is a warning and 0.76 defaults.
    lp.deferred.settings = settings::Fingerprint::take();
    let settings = match settings::load(dir) {
        Ok(s) => s,
        Err(msg) => {
            errstr::warn(PROG, &format!("{msg}; using the defaults"));
            lp.settings_error = Some(msg);
            settings::Settings::default()
        }
    };
    let mut st = State::new(Config::default(), want_down, lp.now());
    lp.apply_settings(&mut st, settings);

    // 5. status: stamp now, pid 0. A failure is only a warning (0.76's announce()).
    lp.write_status(&st);

    // 6. ok: after status, so whoever can open ok finds a status file.
    let _ = fifo::make(Path::new(svdir::OK), 0o600);
    lp._ok = Some(
        fifo::open_read(Path::new(svdir::OK))
            .map_err(|e| fatal_io(&format!("unable to read {dir}/{}", svdir::OK), &e))?,
    );

    // s6's event fifodir, for waiters that must not poll (REFERENCE.md §11.5).
    event_loop::make_event_dir();

    // Group delegation and FIFO mode fixes (REFERENCE.md §12.11); never fatal.
    for w in perms::apply(Path::new(".")) {
        errstr::warn(PROG, &w);
    }
    Ok((lp, st))
}

/// The service's name for `./finish`'s third argument: the last component of the
/// directory (of the current directory when DIR is `.` or ends in `..`).
fn service_name(path: &Path) -> String {
    let named = path.file_name().map(|n| n.to_string_lossy().into_owned());
    named
        .or_else(|| {
            std::env::current_dir()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .unwrap_or_default()
}

/// `mkdir supervise 0700`. If `supervise` is a dangling symlink, creates its target
/// instead (Debian's patch 0002 to 0.76, REFERENCE.md §1), so state can live elsewhere.
fn make_supervise_dir() {
    use std::os::unix::fs::DirBuilderExt;
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o700);
    match b.create(svdir::SUPERVISE) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let link = Path::new(svdir::SUPERVISE);
            let dangling = std::fs::symlink_metadata(link)
                .is_ok_and(|m| m.file_type().is_symlink())
                && std::fs::metadata(link).is_err();
            if dangling {
                if let Ok(target) = std::fs::read_link(link) {
                    // A relative target is relative to the link's directory: the service
                    // dir, which is our cwd.
                    let _ = b.create(target);
                }
            }
        }
        Err(_) => {}
    }
}
