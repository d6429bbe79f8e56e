//! supervise's I/O loop: waits, turns what happened into [`Event`]s, carries out the
//! [`Action`]s that [`step`] returns. All decisions live in `state.rs`.
//!
//! One wakeup does what 0.76's loop does, in the same order (REFERENCE.md §4): drain the
//! self-pipe, reap every dead child, then read the control FIFO. We read up to
//! [`CHUNK`] bytes at once instead of one, and still process them byte by byte, so a
//! flood of junk costs one `read` per chunk and never blocks (the FIFO is non-blocking).
//! The poll timeout is the state's next deadline, or infinite: an idle supervise makes
//! no wakeups at all (0.76 wakes every 3600 s).

use crate::state::{Action, Event, Millis, Now, State, step};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;
use svcore::errstr;
use svcore::proc::{self, Prepared, SpawnOptions};
use svcore::selfpipe::SelfPipe;
use svcore::status::{self, WriteError};
use svcore::svdir;
use svcore::tai64n::Tai64n;

/// Control bytes read per `read` call.
pub const CHUNK: usize = 64;

/// First retry delay after a failed status write; doubled up to [`STATUS_RETRY_MAX_MS`].
const STATUS_RETRY_MS: Millis = 1000;
/// Longest wait between two retries of a failed status write.
const STATUS_RETRY_MAX_MS: Millis = 60_000;

/// The program name in messages.
pub const PROG: &str = "supervise";

/// The descriptors and names the loop needs. Dropping it releases the lock.
pub struct Loop {
    /// The service directory as given on the command line (for messages).
    pub dir: String,
    /// Held for the whole life of supervise (flock + fcntl).
    pub _lock: File,
    /// Read end of `supervise/control` (non-blocking).
    pub control: File,
    /// Write end of `supervise/control`, kept so the reader never sees EOF.
    pub _control_write: File,
    /// Read end of `supervise/ok` (opened after the first status write, step 6).
    pub _ok: Option<File>,
    /// SIGCHLD.
    pub selfpipe: SelfPipe,
    /// `./run`, prepared once.
    pub run: Prepared,
    /// Monotonic origin of [`Millis`].
    pub epoch: Instant,
    /// When to retry a failed status write, and the current retry delay.
    pub status_retry: Option<(Millis, Millis)>,
}

impl Loop {
    /// The current time on both clocks.
    pub fn now(&self) -> Now {
        Now {
            mono: self.epoch.elapsed().as_millis() as Millis,
            tai: Tai64n::now(),
        }
    }

    /// Writes `st`'s status; on failure warns in 0.76's words and schedules a retry, so a
    /// full disk does not lose the status for ever.
    pub fn write_status(&mut self, st: &State) {
        match status::write(Path::new("."), &st.status()) {
            Ok(()) => self.status_retry = None,
            Err(e) => {
                let dir = &self.dir;
                let text = match e {
                    WriteError::Open(e) => format!(
                        "unable to open {dir}/{}: {}",
                        svdir::STATUS_NEW,
                        errstr::io_str(&e)
                    ),
                    WriteError::Write(e) => format!(
                        "unable to write {dir}/{}: {}",
                        svdir::STATUS_NEW,
                        errstr::io_str(&e)
                    ),
                    WriteError::Partial => {
                        format!("unable to write {dir}/{}: partial write", svdir::STATUS_NEW)
                    }
                    WriteError::Rename(e) => format!(
                        "unable to rename {dir}/{} to {}: {}",
                        svdir::STATUS_NEW,
                        svdir::STATUS_BASENAME,
                        errstr::io_str(&e)
                    ),
                };
                errstr::warn(PROG, &text);
                let delay = match self.status_retry {
                    Some((_, d)) => (d * 2).min(STATUS_RETRY_MAX_MS),
                    None => STATUS_RETRY_MS,
                };
                let now = self.now().mono;
                self.status_retry = Some((now + delay, delay));
            }
        }
    }

    /// Feeds `ev` to the state machine and carries out the actions, including the
    /// events they produce (a spawn's outcome). Returns true when supervise must exit.
    pub fn dispatch(&mut self, st: &mut State, ev: Event) -> bool {
        let mut next = Some(ev);
        while let Some(ev) = next.take() {
            let actions = step(st, ev, self.now());
            for a in actions.iter() {
                match a {
                    Action::Spawn => {
                        next = Some(match proc::spawn(&self.run, &SpawnOptions::default()) {
                            Ok(pid) => Event::Spawned { pid },
                            Err(e) => {
                                errstr::warn(
                                    PROG,
                                    &format!(
                                        "unable to fork for {}, sleeping 60 seconds: {}",
                                        self.dir,
                                        errstr::io_str(&e)
                                    ),
                                );
                                Event::SpawnFailed
                            }
                        });
                    }
                    Action::Kill { pid, sig } => {
                        // Errors (ESRCH) are ignored, as 0.76 ignores kill's result.
                        let _ = proc::kill(pid as i32, sig);
                    }
                    Action::WriteStatus => self.write_status(st),
                    Action::Exit => {
                        // 0.76 announces once more after its loop returns.
                        self.write_status(st);
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Runs until `x` takes effect. Returns the exit code (0).
    pub fn run(&mut self, st: &mut State) -> i32 {
        if self.dispatch(st, Event::Boot) {
            return errstr::EXIT_OK;
        }
        let mut buf = [0u8; CHUNK];
        loop {
            let now = self.now().mono;
            let deadline = match (st.next_deadline(), self.status_retry.map(|r| r.0)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout: i32 = match deadline {
                None => -1,
                // Round up so we never wake a millisecond early and spin.
                Some(d) => d.saturating_sub(now).min(i32::MAX as u64) as i32,
            };
            let mut fds = [
                libc::pollfd {
                    fd: self.selfpipe.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.control.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll on an array of two initialised pollfd structs we own.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                // poll only fails on EINTR or on bugs (EFAULT, EINVAL); carrying on is the
                // best a supervisor can do. The timeout keeps this from spinning silently.
                errstr::warn(
                    PROG,
                    &format!(
                        "unable to poll: {}",
                        errstr::io_str(&io::Error::last_os_error())
                    ),
                );
            }

            // 1. Drain the self-pipe.
            self.selfpipe.drain();

            // 2. Reap every dead child.
            while let Some((pid, wstatus)) = proc::reap() {
                if self.dispatch(st, Event::ChildExited { pid, wstatus }) {
                    return errstr::EXIT_OK;
                }
            }

            // 3. Control bytes, one chunk, byte by byte.
            if fds[1].revents & libc::POLLIN != 0 {
                match self.control.read(&mut buf) {
                    Ok(n) => {
                        for &b in &buf[..n] {
                            if self.dispatch(st, Event::Control(b)) {
                                return errstr::EXIT_OK;
                            }
                        }
                    }
                    Err(_) => {
                        // EAGAIN (someone else drained it) or EINTR: try again next time.
                    }
                }
            }

            // 4. Timers.
            let now = self.now().mono;
            if st.next_deadline().is_some_and(|d| d <= now) && self.dispatch(st, Event::Timer) {
                return errstr::EXIT_OK;
            }
            if self.status_retry.is_some_and(|(at, _)| at <= now) {
                self.write_status(st);
            }
        }
    }
}
