//! svscan's loop: one thread, one `poll` on the self-pipe and the inotify descriptor,
//! with the 5 s pass as its only timer (STYLE.md P5, P7).
//!
//! An idle svscan sleeps in `poll` until the next 5 s pass. With inotify working, that
//! pass is one `stat` of the scan directory (`svcore::scan::Scan::tick`), and `waitpid`
//! runs only after a SIGCHLD, so the idle cost of a 1000-service tree is one cheap
//! wakeup every 5 s (docs/BENCHMARKS-svscan.md: 0.6 ms of CPU per minute).

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use svcore::scan::{self, Reaped, Scan};
use svcore::selfpipe::SelfPipe;

use crate::Options;

/// 0.76's pass interval (REFERENCE.md §6: scan, then `sleep(5)`).
const PASS: Duration = Duration::from_secs(5);
/// How often a stopping svscan re-checks supervise processes it cannot wait for.
const STOP_POLL: Duration = Duration::from_millis(100);
/// After the KILL, how long to wait for the last children before giving up.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// An orderly stop in progress (PID-1 mode).
struct Stop {
    deadline: Instant,
    killed: Option<Instant>,
}

/// Runs svscan in the current directory. Returns the exit code (only PID-1 mode exits).
pub fn run(opts: &Options) -> io::Result<u8> {
    let is_init = std::process::id() == 1;
    let pid1 = opts.pid1 || is_init;
    if pid1 && !is_init {
        // SAFETY: prctl with integer arguments only; makes orphaned descendants our
        // children so they are reaped here (REFERENCE.md §12.9).
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    }

    // Signals first, before the first spawn (STYLE.md P5). Outside PID-1 mode TERM and
    // INT keep their default action: svscan dies and its supervise keep running (0.76).
    let mut sigs = vec![libc::SIGCHLD, libc::SIGHUP, libc::SIGALRM];
    if pid1 {
        sigs.extend([libc::SIGTERM, libc::SIGINT]);
    }
    let mut selfpipe = SelfPipe::new(&sigs)?;

    let child_nofile = scan::raise_nofile();
    let mut table = Scan::new("supervise", child_nofile);
    table.stop_removed = opts.stop_removed;

    // inotify is an accelerator only: without it every pass is a full 0.76 scan.
    let mut inotify = watch();

    table.full();
    let mut next_pass = Instant::now() + PASS;
    let mut stop: Option<Stop> = None;

    loop {
        let now = Instant::now();
        let mut wait = next_pass.saturating_duration_since(now);
        if stop.is_some() {
            wait = wait.min(STOP_POLL);
        }
        let (sig_ready, ino_ready) = poll2(&selfpipe, inotify.as_ref(), wait);

        let mut rescan = false;
        let mut child_died = false;
        if sig_ready {
            for s in selfpipe.drain() {
                match s {
                    libc::SIGCHLD => child_died = true,
                    libc::SIGHUP if !pid1 => rescan = true,
                    libc::SIGALRM => rescan = true,
                    libc::SIGTERM | libc::SIGINT | libc::SIGHUP if stop.is_none() => {
                        table.stop_all();
                        stop = Some(Stop {
                            deadline: Instant::now() + opts.grace,
                            killed: None,
                        });
                    }
                    _ => {}
                }
            }
        }
        // Reap only when SIGCHLD said something died (or while stopping, when the loop
        // needs to know that no child is left). Not on every wakeup: waitpid walks the
        // caller's whole list of children in the kernel, which costs about as much as
        // the rest of an idle tick put together with 1000 supervise children.
        let no_children = if child_died || stop.is_some() {
            reap(&mut table)
        } else {
            false
        };

        if ino_ready {
            if let Some(ino) = &inotify {
                match drain(ino, &mut table) {
                    Drained::Ok => {}
                    Drained::Overflow => rescan = true,
                    Drained::Dead => {
                        inotify = None;
                        rescan = true;
                    }
                }
            }
        }

        if let Some(st) = &mut stop {
            table.advance_stops();
            if no_children && table.all_stopped() {
                let code = if st.killed.is_some() { 111 } else { 0 };
                return Ok(exit_code(opts, code));
            }
            let now = Instant::now();
            match st.killed {
                None if now >= st.deadline => {
                    kill_everything(is_init);
                    st.killed = Some(now);
                }
                Some(t) if now >= t + AFTER_KILL => return Ok(111),
                _ => {}
            }
            continue;
        }

        if rescan {
            table.full();
            next_pass = Instant::now() + PASS;
        } else if Instant::now() >= next_pass {
            if inotify.is_some() {
                table.tick();
            } else {
                table.full();
            }
            next_pass = Instant::now() + PASS;
        }
    }
}

/// The code svscan exits with after a stop: with `-e NAME`, NAME's last exit as its
/// supervise recorded it in `supervise/status.ext` (exit code, or 128 + signal as shells
/// and container runtimes report a death by signal); otherwise `fallback`.
fn exit_code(opts: &Options, fallback: u8) -> u8 {
    let Some(name) = &opts.exit_with else {
        return fallback;
    };
    let Ok(ext) = svcore::sidecar::read(std::path::Path::new(name)) else {
        return fallback;
    };
    match ext.last_exit {
        Some(ws) if libc::WIFEXITED(ws) => libc::WEXITSTATUS(ws) as u8,
        Some(ws) if libc::WIFSIGNALED(ws) => (128 + libc::WTERMSIG(ws)) as u8,
        _ => fallback,
    }
}

/// Watches `.` for names appearing and vanishing. `None` when inotify is unavailable.
fn watch() -> Option<Inotify> {
    let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
    let mask = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_ONLYDIR;
    ino.add_watch(".", mask).ok()?;
    Some(ino)
}

enum Drained {
    Ok,
    Overflow,
    Dead,
}

/// Applies every queued inotify event to the table.
fn drain(ino: &Inotify, table: &mut Scan) -> Drained {
    let mut out = Drained::Ok;
    loop {
        let events = match ino.read_events() {
            Ok(ev) => ev,
            Err(Errno::EAGAIN) => return out,
            Err(Errno::EINTR) => continue,
            Err(_) => return Drained::Dead,
        };
        if events.is_empty() {
            return out;
        }
        for ev in events {
            let m = ev.mask;
            if m.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                out = Drained::Overflow;
                continue;
            }
            if m.contains(AddWatchFlags::IN_IGNORED) {
                return Drained::Dead;
            }
            let Some(name) = ev.name else { continue };
            if m.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
                table.appeared(&name);
            } else if m.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM) {
                table.vanished(&name);
            }
        }
    }
}

/// Waits up to `wait` for the self-pipe or inotify to become readable.
fn poll2(sp: &SelfPipe, ino: Option<&Inotify>, wait: Duration) -> (bool, bool) {
    let mut fds = [
        libc::pollfd {
            fd: sp.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: ino.map_or(-1, |i| i.as_fd().as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Round up so a pass due in 0.4 ms does not turn into a busy loop of 0 ms polls.
    let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: fds is a valid array of 2 pollfd for the duration of the call; a negative
    // fd is ignored by poll.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if r <= 0 {
        return (false, false);
    }
    (fds[0].revents != 0, fds[1].revents != 0)
}

/// Reaps every dead child (STYLE.md P6). Returns true when svscan has no child left.
fn reap(table: &mut Scan) -> bool {
    let mut ours = false;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r > 0 {
            ours |= table.reaped(r as u32) != Reaped::Stranger;
            continue;
        }
        if r == 0 {
            break;
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::ECHILD => {
                if ours {
                    table.advance_stops();
                }
                return true;
            }
            _ => break,
        }
    }
    if ours {
        table.advance_stops();
    }
    false
}

/// The end of the grace period: KILL every descendant (and, as process 1 of a PID
/// namespace, every other process in it).
fn kill_everything(is_init: bool) {
    if is_init {
        // SAFETY: kill(-1) from process 1 signals every process of its namespace but
        // itself; that is exactly "everything still running" in a container.
        unsafe {
            libc::kill(-1, libc::SIGKILL);
        }
    }
    for pid in scan::descendants(std::process::id()) {
        // SAFETY: plain kill(2) of a process that descends from us.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
}
