//! Reading one service's state the way 0.76's svstat does, for any supervisor
//! (REFERENCE.md §5 "svstat", §11.7).
//!
//! [`probe`] walks the same steps as 0.76, in the same order, so the first failure is the
//! one 0.76 would report: `stat("down")`, open `supervise/ok` for writing without blocking,
//! open and read `supervise/status`. It then decodes the file through [`crate::statusfmt`],
//! so a runit, encore, nosh or s6 service comes back in one shape. [`line`] is the pure
//! 0.76 text after `DIR: `.
//!
//! s6 has no `ok` FIFO (REFERENCE.md §11.7): when `ok` is missing and the directory looks
//! like an s6 service (an `event/` dir, or a 35-byte status), liveness is s6's own test, an
//! fcntl `F_GETLK` on `supervise/lock`. Every other case keeps 0.76's answer.

use crate::status::Want;
use crate::statusfmt::{self, Clues, Record};
use crate::svdir;
use crate::tai64n::Tai64n;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::Path;

/// The largest status record any supervisor writes (nosh, 87 bytes), rounded up.
const READ_MAX: usize = 128;

/// Why a service's state could not be shown; [`Problem::text`] is 0.76's wording.
#[derive(Debug)]
pub enum Problem {
    /// `stat("down")` failed with something other than ENOENT.
    StatDown(io::Error),
    /// `supervise/ok` has no reader (ENXIO), or an s6 lock is not held.
    NotRunning,
    /// Opening `supervise/ok` failed otherwise.
    OpenOk(io::Error),
    /// Opening `supervise/status` failed.
    OpenStatus(io::Error),
    /// Reading it failed (`Some`), or it was too short for its format (`None`).
    ReadStatus(Option<io::Error>),
}

impl Problem {
    /// The text 0.76 prints after `DIR: ` (REFERENCE.md §5, svstat's table).
    pub fn text(&self) -> String {
        use crate::errstr::io_str;
        match self {
            Problem::StatDown(e) => format!("unable to stat down: {}", io_str(e)),
            Problem::NotRunning => "supervise not running".to_string(),
            Problem::OpenOk(e) => format!("unable to open supervise/ok: {}", io_str(e)),
            Problem::OpenStatus(e) => format!("unable to open supervise/status: {}", io_str(e)),
            Problem::ReadStatus(Some(e)) => {
                format!("unable to read supervise/status: {}", io_str(e))
            }
            Problem::ReadStatus(None) => "unable to read supervise/status: bad format".to_string(),
        }
    }

    /// True when the supervisor is simply not there (svwait: "supervisor gone").
    pub fn is_not_running(&self) -> bool {
        matches!(self, Problem::NotRunning)
    }
}

/// A supervised service's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// No `down` file: the service is normally up.
    pub normally_up: bool,
    /// The decoded status record.
    pub record: Record,
}

impl Service {
    /// True when a process is running (what 0.76 prints as `up`).
    pub fn is_up(&self) -> bool {
        self.record.pid != 0
    }

    /// Whole seconds since the last change, at `now`; 0 when the stamp lies in the future
    /// (0.76: `if (tai_less(&now,&when)) when = now`). Only the seconds field counts.
    pub fn age(&self, now: Tai64n) -> u64 {
        now.secs.saturating_sub(self.record.stamp.secs)
    }
}

/// Checks liveness and reads the state of the service in `dir` (often `.` after a chdir,
/// as 0.76 does it).
pub fn probe(dir: &Path) -> Result<Service, Problem> {
    let normally_up = match std::fs::metadata(dir.join(svdir::DOWN)) {
        Ok(_) => false,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
        Err(e) => return Err(Problem::StatDown(e)),
    };
    let ok_fifo = match crate::fifo::open_write(&dir.join(svdir::OK)) {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Err(Problem::NotRunning),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && looks_like_s6(dir) => {
            if !s6_lock_held(dir) {
                return Err(Problem::NotRunning);
            }
            false
        }
        Err(e) => return Err(Problem::OpenOk(e)),
    };
    let raw = read_status(dir)?;
    let clues = Clues {
        runit_stat: dir.join(svdir::RUNIT_STAT).exists(),
        event_dir: dir.join(svdir::EVENT).is_dir(),
        ok_fifo,
    };
    let format = statusfmt::detect(raw.len(), clues);
    let record = statusfmt::decode(format, &raw).ok_or(Problem::ReadStatus(None))?;
    Ok(Service {
        normally_up,
        record,
    })
}

fn read_status(dir: &Path) -> Result<Vec<u8>, Problem> {
    let f = File::open(dir.join(svdir::STATUS)).map_err(Problem::OpenStatus)?;
    let mut buf = Vec::with_capacity(READ_MAX);
    f.take(READ_MAX as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Problem::ReadStatus(Some(e)))?;
    Ok(buf)
}

/// An s6 service dir: s6-supervise makes `event/` and writes 35 bytes, and has no `ok`.
fn looks_like_s6(dir: &Path) -> bool {
    dir.join(svdir::EVENT).is_dir()
        || std::fs::metadata(dir.join(svdir::STATUS))
            .map(|m| m.len() == svdir::STATUS_LEN_S6 as u64)
            .unwrap_or(false)
}

/// s6's liveness test (s6_svc_ok): some process holds an fcntl lock on `supervise/lock`.
/// An flock (daemontools) is invisible to this, which is why it is only used for s6 dirs.
pub fn s6_lock_held(dir: &Path) -> bool {
    let Ok(f) = File::open(dir.join(svdir::LOCK)) else {
        return false;
    };
    // SAFETY: an all-zero flock is a valid value; the fields we test with are set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: F_GETLK on a descriptor we own, with a pointer to an initialised struct.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
    r == 0 && fl.l_type != libc::F_UNLCK as _
}

/// 0.76's text for a service, without the `DIR: ` prefix (REFERENCE.md §5): `up (pid P) S
/// seconds` or `down S seconds`, then the suffixes in 0.76's order. The plural is fixed
/// (`1 seconds`), and want 0 ("once") adds nothing.
pub fn line(s: &Service, now: Tai64n) -> String {
    let r = &s.record;
    let up = s.is_up();
    let mut out = if up {
        format!("up (pid {}) ", r.pid)
    } else {
        "down ".to_string()
    };
    out.push_str(&format!("{} seconds", s.age(now)));
    if up && !s.normally_up {
        out.push_str(", normally down");
    }
    if !up && s.normally_up {
        out.push_str(", normally up");
    }
    if up && r.paused {
        out.push_str(", paused");
    }
    if !up && r.want == Want::Up {
        out.push_str(", want up");
    }
    if up && r.want == Want::Down {
        out.push_str(", want down");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statusfmt::Format;

    fn svc(pid: u64, paused: bool, want: Want, normally_up: bool, secs: u64) -> Service {
        Service {
            normally_up,
            record: Record {
                format: Format::Daemontools,
                stamp: Tai64n { secs, nanos: 500 },
                pid,
                paused,
                want,
                ready: None,
                ready_stamp: None,
                finishing: false,
                got_term: false,
                last_wait: None,
                encore_state: None,
            },
        }
    }

    const NOW: Tai64n = Tai64n {
        secs: 0x4000_0000_6000_0000,
        nanos: 0,
    };

    #[test]
    fn up_lines_and_suffix_order() {
        let t = NOW.secs - 1;
        assert_eq!(
            line(&svc(42, false, Want::Up, true, t), NOW),
            "up (pid 42) 1 seconds"
        );
        assert_eq!(
            line(&svc(42, true, Want::Down, false, t), NOW),
            "up (pid 42) 1 seconds, normally down, paused, want down"
        );
        assert_eq!(
            line(&svc(42, false, Want::Once, true, t), NOW),
            "up (pid 42) 1 seconds"
        );
    }

    #[test]
    fn down_lines() {
        let t = NOW.secs - 7;
        assert_eq!(
            line(&svc(0, false, Want::Up, true, t), NOW),
            "down 7 seconds, normally up, want up"
        );
        assert_eq!(
            line(&svc(0, true, Want::Down, false, t), NOW),
            "down 7 seconds",
            "paused is shown only with a process"
        );
        assert_eq!(
            line(&svc(0, false, Want::Once, true, t), NOW),
            "down 7 seconds, normally up"
        );
    }

    #[test]
    fn future_stamp_is_floored_at_zero() {
        assert_eq!(
            line(&svc(0, false, Want::Down, false, NOW.secs + 100), NOW),
            "down 0 seconds"
        );
    }

    #[test]
    fn problem_texts() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(
            Problem::StatDown(e(libc::EACCES)).text(),
            "unable to stat down: access denied"
        );
        assert_eq!(Problem::NotRunning.text(), "supervise not running");
        assert_eq!(
            Problem::OpenOk(e(libc::ENOENT)).text(),
            "unable to open supervise/ok: file does not exist"
        );
        assert_eq!(
            Problem::OpenStatus(e(libc::ENOENT)).text(),
            "unable to open supervise/status: file does not exist"
        );
        assert_eq!(
            Problem::ReadStatus(None).text(),
            "unable to read supervise/status: bad format"
        );
    }
}
