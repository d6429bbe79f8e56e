//! Waiting until services reach a state: shared by `svwait` and `svc --wait`
//! (REFERENCE.md §11.3, §11.5, §12.5, §12.6).
//!
//! The condition is always judged from what is on disk ([`look`] then [`judge`], pure),
//! so a wakeup is only a hint to look again and no event can be "missed": every watch is
//! set up first, then the state is checked, then the waiter sleeps.
//!
//! What wakes a waiter, per DIR:
//! * an s6-style `event/` fifodir (REFERENCE.md §11.5), when the supervisor makes one
//!   (ours and s6-supervise): a FIFO `ftrig1:@STAMP:XXXXXX` created under a dot name and
//!   renamed, read without blocking; one byte per event;
//! * inotify on `supervise/`: every supervisor that renames `status.new` over `status`
//!   (0.76, ours; ours also renames `status.ext`, which carries the command counter);
//! * a pidfd on our supervise's pid (from `supervise/status.ext`): its exit, without
//!   polling.
//!
//! A DIR whose supervisor's death cannot be seen that way (0.76 and runit have no event
//! dir and no published pid; s6 after its `x` event) is re-checked every
//! [`POLL_INTERVAL`]: this is the "falls back to polling" of §12.5. With our supervise
//! the waiter sleeps in `poll(2)` with no timeout but the caller's: zero wakeups.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use svcore::sidecar::{self, Ext, Phase};
use svcore::statusfmt::Format;
use svcore::svdir;
use svcore::svstat::{self, Problem, Service};
use svcore::tai64n::Tai64n;

/// How often a DIR without event notification is re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The exit code for "timed out" (s6-svwait's 99, REFERENCE.md §11.3).
pub const EXIT_TIMEOUT: i32 = 99;

/// The state to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A process is running (`svstat` says `up`).
    Up,
    /// Up and ready: readiness reported (ours with `notification-fd`, s6), or simply up
    /// when the service has no readiness configured or the format has none.
    Ready,
    /// No process running.
    Down,
    /// Down, and `./finish` (if any) has finished.
    Finished,
    /// The supervisor is gone.
    Exited,
    /// The paused flag is set.
    Paused,
    /// The paused flag is clear.
    Continued,
    /// No state: only the command counter (or nothing).
    Nothing,
}

/// What to wait for in one DIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goal {
    /// The state.
    pub target: Target,
    /// `(supervisor pid, count)`: our supervise has handled at least `count` commands.
    pub commands: Option<(u32, u64)>,
}

/// What [`look`] found in a DIR's sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sidecar {
    /// No `status.ext`: not our supervise.
    Absent,
    /// `status.ext` exists but does not yet describe the current `status` (it is written
    /// just after it): the state is not known yet.
    Stale(Ext),
    /// `status.ext` agrees with `status`.
    Fresh(Ext),
}

impl Sidecar {
    fn any(&self) -> Option<&Ext> {
        match self {
            Sidecar::Absent => None,
            Sidecar::Stale(e) | Sidecar::Fresh(e) => Some(e),
        }
    }
}

/// A DIR's state as read from disk.
#[derive(Debug)]
pub struct Snapshot {
    /// The 0.76 probe (liveness, `down`, status in any format).
    pub svc: Result<Service, Problem>,
    /// Our supervise's sidecar.
    pub ext: Sidecar,
    /// DIR has s6's `notification-fd` file. s6 sets its ready flag only for such a
    /// service; like `s6-svc -wU`, a service without it counts as ready when up.
    pub notification_fd: bool,
}

/// s6's readiness file (REFERENCE.md §11.2).
pub const NOTIFICATION_FD: &str = "notification-fd";

/// Reads DIR's state.
pub fn look(dir: &Path) -> Snapshot {
    let svc = svstat::probe(dir);
    let ext = match (sidecar::read(dir), &svc) {
        (Err(_), _) => Sidecar::Absent,
        // Left behind by an earlier supervise of ours (a 0.76 one may run there now).
        (Ok(e), _) if !alive(e.supervisor) => Sidecar::Absent,
        (Ok(e), Ok(s))
            if s.record.format == Format::Daemontools
                && u64::from(e.pid) == s.record.pid
                && e.stamp == s.record.stamp =>
        {
            Sidecar::Fresh(e)
        }
        (Ok(e), _) => Sidecar::Stale(e),
    };
    Snapshot {
        svc,
        ext,
        notification_fd: dir.join(NOTIFICATION_FD).exists(),
    }
}

/// True while a process with this pid exists (kill with signal 0).
fn alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The verdict on one DIR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The goal is reached.
    Done,
    /// Not yet.
    NotYet,
    /// It never will be: the supervisor is gone, or the service cannot be read (0.76's
    /// text for why).
    Gone(String),
}

/// Judges a snapshot against a goal (pure).
pub fn judge(goal: &Goal, snap: &Snapshot) -> Verdict {
    let svc = match &snap.svc {
        Ok(s) => s,
        Err(p) if goal.target == Target::Exited && p.is_not_running() => return Verdict::Done,
        Err(p) => return Verdict::Gone(p.text()),
    };
    if let Some((sup, count)) = goal.commands {
        match snap.ext.any() {
            Some(e) if e.supervisor == sup => {
                if e.commands < count {
                    return Verdict::NotYet;
                }
            }
            // Another supervise took over: the commands went to the one that is gone.
            Some(_) => return Verdict::Gone("supervise restarted".to_string()),
            // The sidecar is replaced by rename, never removed while supervise runs.
            None => return Verdict::Gone("supervise restarted".to_string()),
        }
    }
    let r = &svc.record;
    let ext = match &snap.ext {
        Sidecar::Fresh(e) => Some(e),
        // The sidecar lags `status` for a moment; only the counter can be read from it.
        Sidecar::Stale(_) if !matches!(goal.target, Target::Nothing | Target::Exited) => {
            return Verdict::NotYet;
        }
        _ => None,
    };
    // runit puts finish's pid in `status` while finish runs (REFERENCE.md §11.7).
    let up = r.pid != 0 && !(r.format == Format::Runit && r.finishing);
    let done = match goal.target {
        Target::Up => up,
        Target::Ready => {
            up && match (ext, r.ready) {
                // Phase::Up means "running, no readiness configured" (svcore::sidecar).
                (Some(e), _) => e.ready || e.phase == Phase::Up,
                (None, Some(ready)) => ready || !snap.notification_fd,
                (None, None) => true,
            }
        }
        Target::Down => !up,
        Target::Finished => {
            !up && !r.finishing
                && ext.is_none_or(|e| e.finish_pid == 0 && e.phase != Phase::Finishing)
        }
        Target::Exited => false,
        Target::Paused => r.paused,
        Target::Continued => !r.paused,
        Target::Nothing => true,
    };
    if done { Verdict::Done } else { Verdict::NotYet }
}

/// A FIFO in DIR/event, removed on drop.
struct EventFifo {
    path: PathBuf,
    rd: File,
    // Our own writer keeps the FIFO from reporting EOF between supervisor writes.
    _wr: File,
}

impl Drop for EventFifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl EventFifo {
    /// Subscribes to DIR/event, as s6's ftrig listeners do: make the FIFO under a dot name
    /// (supervisors skip those), open it, then rename it into view.
    fn subscribe(dir: &Path, n: usize) -> io::Result<EventFifo> {
        let ev = dir.join(svdir::EVENT);
        // s6-supervise writes only to names of exactly this shape: `ftrig1:@` + 24 hex
        // digits + `:` + 6 characters (39 bytes, skalibs' ftrig1_make).
        let tag = (std::process::id() as usize)
            .wrapping_mul(64)
            .wrapping_add(n)
            & 0xff_ffff;
        let name = format!("ftrig1:{}:{tag:06x}", Tai64n::now());
        let tmp = ev.join(format!(".{name}"));
        let path = ev.join(&name);
        svcore::fifo::make(&tmp, 0o622)?;
        let opened = (|| {
            // mkfifo applies the umask; the supervisor may run as another user.
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o622))?;
            let rd = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&tmp)?;
            let wr = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&tmp)?;
            std::fs::rename(&tmp, &path)?;
            Ok((rd, wr))
        })();
        match opened {
            Ok((rd, wr)) => Ok(EventFifo { path, rd, _wr: wr }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Reads what is there; true if the supervisor said it is exiting (`x`).
    fn drain(&mut self) -> bool {
        let mut exiting = false;
        let mut buf = [0u8; 64];
        while let Ok(n) = self.rd.read(&mut buf) {
            if n == 0 {
                break;
            }
            exiting |= buf[..n].contains(&b'x');
        }
        exiting
    }
}

/// `pidfd_open(pid)`: readable once the process has exited.
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall with integer arguments; the result is checked below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this new descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Everything watched for one DIR.
struct Watch {
    dir: PathBuf,
    goal: Goal,
    fifo: Option<EventFifo>,
    pidfd: Option<OwnedFd>,
    /// True when the supervisor's death would go unnoticed without polling.
    poll: bool,
    done: bool,
}

impl Watch {
    fn new(
        dir: &Path,
        goal: Goal,
        n: usize,
        inotify: Option<&nix::sys::inotify::Inotify>,
    ) -> Watch {
        use nix::sys::inotify::AddWatchFlags as F;
        if let Some(ino) = inotify {
            // Renames (status, status.ext) and in-place writes (encore) in supervise/. Not
            // IN_CLOSE_WRITE: our own liveness check opens and closes `ok` for writing.
            let _ = ino.add_watch(
                &dir.join(svdir::SUPERVISE),
                F::IN_MOVED_TO | F::IN_MODIFY | F::IN_DELETE_SELF,
            );
        }
        let fifo = if dir.join(svdir::EVENT).is_dir() {
            EventFifo::subscribe(dir, n).ok()
        } else {
            None
        };
        // Our supervise publishes its pid; trust it only while supervise/ok has a reader
        // (checked after opening the pidfd, so a recycled pid cannot slip in between).
        let pidfd = sidecar::read(dir)
            .ok()
            .filter(|e| e.supervisor != 0 && !e.exiting)
            .and_then(|e| pidfd_open(e.supervisor).ok())
            .filter(|_| svcore::fifo::open_write(&dir.join(svdir::OK)).is_ok());
        let s6 = fifo.is_some()
            && std::fs::metadata(dir.join(svdir::STATUS))
                .is_ok_and(|m| m.len() == svdir::STATUS_LEN_S6 as u64);
        let poll = pidfd.is_none() && !s6;
        Watch {
            dir: dir.to_path_buf(),
            goal,
            fifo,
            pidfd,
            poll,
            done: false,
        }
    }
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every DIR (or, with `any`, one) reached its goal.
    Done,
    /// The deadline passed; the DIRs still waited for.
    TimedOut(Vec<PathBuf>),
    /// A DIR can never reach its goal: the DIR and why.
    Gone(PathBuf, String),
}

/// Waits until every DIR (`any`: one DIR) reaches its goal, or `deadline`.
pub fn wait(dirs: &[(PathBuf, Goal)], any: bool, deadline: Option<Instant>) -> Outcome {
    let inotify = nix::sys::inotify::Inotify::init(
        nix::sys::inotify::InitFlags::IN_NONBLOCK | nix::sys::inotify::InitFlags::IN_CLOEXEC,
    )
    .ok();
    let mut watches: Vec<Watch> = dirs
        .iter()
        .enumerate()
        .map(|(n, (d, g))| Watch::new(d, *g, n, inotify.as_ref()))
        .collect();
    loop {
        for w in watches.iter_mut().filter(|w| !w.done) {
            match judge(&w.goal, &look(&w.dir)) {
                Verdict::Done => w.done = true,
                Verdict::NotYet => {}
                Verdict::Gone(why) => return Outcome::Gone(w.dir.clone(), why),
            }
        }
        let left: Vec<&Watch> = watches.iter().filter(|w| !w.done).collect();
        if left.is_empty() || (any && left.len() < watches.len()) {
            return Outcome::Done;
        }
        let now = Instant::now();
        let remaining = deadline.map(|d| d.saturating_duration_since(now));
        if remaining == Some(Duration::ZERO) {
            return Outcome::TimedOut(left.iter().map(|w| w.dir.clone()).collect());
        }
        let mut timeout = remaining;
        if left.iter().any(|w| w.poll) {
            timeout = Some(timeout.map_or(POLL_INTERVAL, |t| t.min(POLL_INTERVAL)));
        }
        sleep(&mut watches, inotify.as_ref(), timeout);
    }
}

/// One `poll(2)` on every wake source; drains what woke it.
fn sleep(
    watches: &mut [Watch],
    inotify: Option<&nix::sys::inotify::Inotify>,
    timeout: Option<Duration>,
) {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let pfd = |fd: i32| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    if let Some(i) = inotify {
        fds.push(pfd(i.as_fd().as_raw_fd()));
    }
    for w in watches.iter().filter(|w| !w.done) {
        if let Some(f) = &w.fifo {
            fds.push(pfd(f.rd.as_raw_fd()));
        }
        if let Some(p) = &w.pidfd {
            fds.push(pfd(p.as_raw_fd()));
        }
    }
    let ms = timeout.map_or(-1, |t| {
        // Round up so a short remainder does not spin at 0 ms.
        i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    });
    // SAFETY: `fds` is a valid array of initialised pollfd of the given length.
    let _ = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if let Some(i) = inotify {
        // Only a hint to look again: the events themselves are discarded.
        while matches!(i.read_events(), Ok(v) if !v.is_empty()) {}
    }
    for w in watches.iter_mut() {
        if let Some(f) = w.fifo.as_mut() {
            if f.drain() {
                // The supervisor is going: its last moments send no more events.
                w.poll = w.pidfd.is_none();
            }
        }
        if let Some(p) = &w.pidfd {
            let mut one = [pfd(p.as_raw_fd())];
            // SAFETY: a one-element pollfd array, zero timeout.
            if unsafe { libc::poll(one.as_mut_ptr(), 1, 0) } > 0 {
                // Dead: it stays readable, so stop polling it (judge sees the death).
                w.pidfd = None;
                w.poll = true;
            }
        }
    }
}

/// Parses a timeout in seconds (`2`, `0.5`); `None` when it is not a number.
pub fn parse_secs(s: &[u8]) -> Option<Duration> {
    let s = std::str::from_utf8(s).ok()?;
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    Duration::try_from_secs_f64(v).ok()
}

/// The DIR as the user typed it, for messages.
pub fn show(dir: &Path) -> String {
    String::from_utf8_lossy(dir.as_os_str().as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use svcore::status::Want;
    use svcore::statusfmt::Record;

    fn rec(format: Format, pid: u64) -> Record {
        Record {
            format,
            stamp: Tai64n { secs: 5, nanos: 0 },
            pid,
            paused: false,
            want: Want::Up,
            ready: None,
            ready_stamp: None,
            finishing: false,
            got_term: false,
            last_wait: None,
            encore_state: None,
        }
    }

    /// Built through the decoder, so new sidecar keys do not break these tests.
    fn ext(pid: u32, phase: Phase) -> Ext {
        let ready = u8::from(phase == Phase::Ready);
        let text = format!(
            "version 1\nsupervisor 7\ncommands 3\nstate {}\npid {pid}\nready {ready}\n\
             stamp {}\n",
            phase.word(),
            Tai64n { secs: 5, nanos: 0 }
        );
        sidecar::decode(&text).unwrap()
    }

    fn snap(r: Record, ext: Sidecar) -> Snapshot {
        Snapshot {
            notification_fd: true,
            svc: Ok(Service {
                normally_up: true,
                record: r,
            }),
            ext,
        }
    }

    fn goal(target: Target) -> Goal {
        Goal {
            target,
            commands: None,
        }
    }

    #[test]
    fn up_down_on_a_plain_daemontools_status() {
        let up = snap(rec(Format::Daemontools, 9), Sidecar::Absent);
        let down = snap(rec(Format::Daemontools, 0), Sidecar::Absent);
        assert_eq!(judge(&goal(Target::Up), &up), Verdict::Done);
        assert_eq!(judge(&goal(Target::Ready), &up), Verdict::Done);
        assert_eq!(judge(&goal(Target::Down), &up), Verdict::NotYet);
        assert_eq!(judge(&goal(Target::Down), &down), Verdict::Done);
        assert_eq!(judge(&goal(Target::Finished), &down), Verdict::Done);
        assert_eq!(judge(&goal(Target::Exited), &down), Verdict::NotYet);
    }

    #[test]
    fn readiness_from_our_sidecar_and_s6() {
        let starting = snap(
            rec(Format::Daemontools, 9),
            Sidecar::Fresh(ext(9, Phase::Starting)),
        );
        assert_eq!(judge(&goal(Target::Up), &starting), Verdict::Done);
        assert_eq!(judge(&goal(Target::Ready), &starting), Verdict::NotYet);
        let ready = snap(
            rec(Format::Daemontools, 9),
            Sidecar::Fresh(ext(9, Phase::Ready)),
        );
        assert_eq!(judge(&goal(Target::Ready), &ready), Verdict::Done);
        let plain = snap(
            rec(Format::Daemontools, 9),
            Sidecar::Fresh(ext(9, Phase::Up)),
        );
        assert_eq!(judge(&goal(Target::Ready), &plain), Verdict::Done);
        let mut s6 = rec(Format::S6, 9);
        s6.ready = Some(false);
        assert_eq!(
            judge(&goal(Target::Ready), &snap(s6, Sidecar::Absent)),
            Verdict::NotYet
        );
        let mut without = snap(s6, Sidecar::Absent);
        without.notification_fd = false;
        assert_eq!(judge(&goal(Target::Ready), &without), Verdict::Done);
        s6.ready = Some(true);
        assert_eq!(
            judge(&goal(Target::Ready), &snap(s6, Sidecar::Absent)),
            Verdict::Done
        );
    }

    #[test]
    fn a_stale_sidecar_means_not_known_yet() {
        let s = snap(
            rec(Format::Daemontools, 9),
            Sidecar::Stale(ext(0, Phase::Down)),
        );
        assert_eq!(judge(&goal(Target::Ready), &s), Verdict::NotYet);
        assert_eq!(judge(&goal(Target::Up), &s), Verdict::NotYet);
    }

    #[test]
    fn finish_and_runit_finish_pid() {
        let mut e = ext(0, Phase::Finishing);
        e.finish_pid = 12;
        let s = snap(rec(Format::Daemontools, 0), Sidecar::Fresh(e));
        assert_eq!(judge(&goal(Target::Down), &s), Verdict::Done);
        assert_eq!(judge(&goal(Target::Finished), &s), Verdict::NotYet);
        let mut r = rec(Format::Runit, 44);
        r.finishing = true;
        let s = snap(r, Sidecar::Absent);
        assert_eq!(judge(&goal(Target::Down), &s), Verdict::Done);
        assert_eq!(judge(&goal(Target::Finished), &s), Verdict::NotYet);
    }

    #[test]
    fn command_counter() {
        let s = snap(
            rec(Format::Daemontools, 9),
            Sidecar::Fresh(ext(9, Phase::Up)),
        );
        let g = |n| Goal {
            target: Target::Nothing,
            commands: Some((7, n)),
        };
        assert_eq!(judge(&g(3), &s), Verdict::Done);
        assert_eq!(judge(&g(4), &s), Verdict::NotYet);
        let other = Goal {
            target: Target::Nothing,
            commands: Some((8, 1)),
        };
        assert!(matches!(judge(&other, &s), Verdict::Gone(_)));
        // The counter may be read from a sidecar that lags `status`.
        let stale = snap(
            rec(Format::Daemontools, 9),
            Sidecar::Stale(ext(0, Phase::Down)),
        );
        assert_eq!(judge(&g(3), &stale), Verdict::Done);
    }

    #[test]
    fn not_running_is_done_for_exited_and_gone_otherwise() {
        let s = Snapshot {
            notification_fd: false,
            svc: Err(Problem::NotRunning),
            ext: Sidecar::Absent,
        };
        assert_eq!(judge(&goal(Target::Exited), &s), Verdict::Done);
        assert_eq!(
            judge(&goal(Target::Up), &s),
            Verdict::Gone("supervise not running".into())
        );
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_secs(b"2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_secs(b"0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs(b""), None);
        assert_eq!(parse_secs(b"-1"), None);
        assert_eq!(parse_secs(b"1x"), None);
    }
}
