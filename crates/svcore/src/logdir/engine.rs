//! multilog's line engine and main loop: cuts input into lines, runs the script over each
//! line, and feeds the selected directories (REFERENCE.md §7 "Lines", "Signals").
//!
//! Loss-freedom: each `read(2)` is fully processed and written out (every directory's
//! bytes reach `current`) before the next `read(2)`, as 0.76 flushes before each read. A
//! SIGKILL therefore loses at most the bytes of one read that were not yet written; every
//! byte from an earlier read is in `current`, and everything unread stays in the pipe.

use super::dir::{Dir, StartError};
use super::pattern;
use super::script::{ALERT_MAX, Action, LINE_MAX, STATUS_FILE_LEN, Script};
use crate::selfpipe::SelfPipe;
use crate::tai64n::Tai64n;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::Instant;

/// 0.76 reads its input 1024 bytes at a time and flushes every directory before each
/// read; those flush points decide where files are cut (see [`super::dir`]), so we account
/// for them inside our larger reads.
pub const ORIGINAL_READ: u64 = 1024;
/// Our read size. A whole pipe's worth (64 KiB) plus headroom; each read is written out
/// before the next one, so this bounds what a SIGKILL can lose.
pub const READ_SIZE: usize = 128 * 1024;

/// The state of line processing between reads.
pub struct Engine {
    script: Script,
    dirs: Vec<Dir>,
    status_files: Vec<(String, File)>,
    /// The buffered head of the current line (prefixes included), at most 1000 bytes.
    line: Vec<u8>,
    /// True between lines.
    at_start: bool,
    /// True while copying the part of a long line beyond the first 1000 bytes.
    in_rest: bool,
    /// Which directories take the current line.
    selected: Vec<bool>,
    /// Stream offset of the next byte to be read.
    offset: u64,
    /// Next virtual read boundary of 0.76 (see [`ORIGINAL_READ`]).
    next_vb: u64,
    /// The prefix (stamps) for lines starting in this read.
    prefix: Option<Vec<u8>>,
    alerts: Vec<u8>,
    inspect: bool,
}

/// Formats an RFC 3339 UTC stamp with nanoseconds, `2026-11-24T18:43:00.123456789Z`.
pub fn rfc3339(t: &Tai64n) -> String {
    let secs = t.unix_secs();
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        t.nanos
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Engine {
    /// Opens the `=` files (truncated, relative to the starting directory) and every log
    /// directory. Errors here are fatal: multilog is not running yet.
    pub fn open(script: Script) -> Result<Engine, StartError> {
        let mut status_files = Vec::new();
        for p in &script.status_files {
            let name = p.to_string_lossy().into_owned();
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                // 0.76 creates `=` files with mode 0600.
                .mode(0o600)
                .open(p)
                .map_err(|err| StartError {
                    what: format!("create {name}"),
                    err,
                })?;
            status_files.push((name, f));
        }
        let mut dirs = Vec::new();
        for d in &script.dirs {
            dirs.push(Dir::open(d.clone())?);
        }
        let n = dirs.len();
        Ok(Engine {
            inspect: script.inspects_lines(),
            script,
            dirs,
            status_files,
            line: Vec::with_capacity(LINE_MAX + 64),
            at_start: true,
            in_rest: false,
            selected: vec![true; n],
            offset: 0,
            next_vb: ORIGINAL_READ,
            prefix: None,
            alerts: Vec::new(),
        })
    }

    /// True between lines (where TERM may stop us).
    pub fn at_line_start(&self) -> bool {
        self.at_start
    }

    fn prefix(&mut self) -> &[u8] {
        let (t, iso) = (self.script.tai64n, self.script.iso);
        self.prefix.get_or_insert_with(|| {
            let mut p = Vec::new();
            if t || iso {
                // One clock reading per read(2): every line in it arrived at that moment.
                let now = Tai64n::now();
                if t {
                    p.extend_from_slice(&now.external());
                    p.push(b' ');
                }
                if iso {
                    p.extend_from_slice(rfc3339(&now).as_bytes());
                    p.push(b' ');
                }
            }
            p
        })
    }

    /// 0.76 would have flushed every directory before reading the byte at each boundary
    /// below `upto`.
    fn virtual_reads_before(&mut self, upto: u64) {
        if self.next_vb < upto {
            for d in &mut self.dirs {
                d.vflush();
            }
            while self.next_vb < upto {
                self.next_vb += ORIGINAL_READ;
            }
        }
    }

    /// Runs the script over the buffered head of the line and sets `selected`.
    fn doit(&mut self) {
        if !self.inspect {
            return;
        }
        let mut sel = true;
        let line = &self.line[..];
        for a in &self.script.actions {
            match a {
                Action::Select(p) => {
                    if !sel && pattern::matches(p, line) {
                        sel = true;
                    }
                }
                Action::Deselect(p) => {
                    if sel && pattern::matches(p, line) {
                        sel = false;
                    }
                }
                Action::Alert => {
                    if sel {
                        if line.len() > ALERT_MAX {
                            self.alerts.extend_from_slice(&line[..ALERT_MAX]);
                            self.alerts.extend_from_slice(b"...");
                        } else {
                            self.alerts.extend_from_slice(line);
                        }
                        self.alerts.push(b'\n');
                    }
                }
                Action::Status(k) => {
                    if sel {
                        let mut rec = [b'\n'; STATUS_FILE_LEN];
                        rec[..line.len()].copy_from_slice(line);
                        if let Some((name, f)) = self.status_files.get(*k) {
                            loop {
                                match f.write_all_at(&rec, 0) {
                                    Ok(()) => break,
                                    Err(e) => {
                                        super::dir::warn_and_pause(&format!("write to {name}"), &e)
                                    }
                                }
                            }
                        }
                    }
                }
                Action::Dir(k) => self.selected[*k] = sel,
            }
        }
    }

    fn emit_head(&mut self) {
        for (k, d) in self.dirs.iter_mut().enumerate() {
            if self.selected[k] {
                d.put(&self.line);
            }
        }
    }

    fn emit_rest(&mut self, data: &[u8]) {
        for (k, d) in self.dirs.iter_mut().enumerate() {
            if self.selected[k] {
                d.put(data);
            }
        }
    }

    /// Processes one read's worth of input. On return every complete line is in the
    /// directories' buffers; call [`Engine::flush`] before reading again.
    pub fn feed(&mut self, data: &[u8]) {
        let base = self.offset;
        self.next_vb = base + ORIGINAL_READ;
        self.prefix = None;
        let mut i = 0;
        while i < data.len() {
            if self.at_start {
                self.line.clear();
                self.prefix();
                if let Some(p) = &self.prefix {
                    self.line.extend_from_slice(p);
                }
                self.at_start = false;
            }
            if !self.in_rest {
                let room = LINE_MAX.saturating_sub(self.line.len());
                let end = (i + room).min(data.len());
                match data[i..end].iter().position(|&c| c == b'\n') {
                    Some(j) => {
                        self.line.extend_from_slice(&data[i..i + j]);
                        i += j + 1;
                        self.virtual_reads_before(base + i as u64);
                        self.doit();
                        self.emit_head();
                        self.emit_rest(b"\n");
                        self.at_start = true;
                    }
                    None if end - i == room => {
                        // The head is full: the script sees these 1000 bytes, and the rest
                        // of the line follows to the same directories (REFERENCE.md §7).
                        self.line.extend_from_slice(&data[i..end]);
                        i = end;
                        self.virtual_reads_before(base + i as u64);
                        self.doit();
                        self.emit_head();
                        self.in_rest = true;
                    }
                    None => {
                        self.line.extend_from_slice(&data[i..end]);
                        i = end;
                    }
                }
            } else {
                // The newline itself is put separately, as for a short line.
                let (end, done) = match data[i..].iter().position(|&c| c == b'\n') {
                    Some(j) => (i + j, true),
                    None => (data.len(), false),
                };
                let mut cur = i;
                // A boundary at the newline itself is read (and flushed) before it.
                let limit = end + usize::from(done);
                while self.next_vb < base + limit as u64 {
                    let b = (self.next_vb - base) as usize;
                    if b > cur {
                        let seg = &data[cur..b];
                        self.emit_rest(seg);
                        cur = b;
                    }
                    for d in &mut self.dirs {
                        d.vflush();
                    }
                    self.next_vb += ORIGINAL_READ;
                }
                self.emit_rest(&data[cur..end]);
                i = end;
                if done {
                    self.emit_rest(b"\n");
                    i += 1;
                    self.in_rest = false;
                    self.at_start = true;
                }
            }
        }
        self.offset = base + data.len() as u64;
    }

    /// At EOF: a last line without a newline gets one (REFERENCE.md §7).
    pub fn end_partial_line(&mut self) {
        if self.in_rest {
            self.emit_rest(b"\n");
            self.in_rest = false;
        } else if !self.at_start {
            self.doit();
            self.emit_head();
            self.emit_rest(b"\n");
        }
        self.at_start = true;
    }

    /// Writes out everything processed so far: what 0.76 does before each read.
    pub fn flush(&mut self) {
        for d in &mut self.dirs {
            d.flush();
        }
        if !self.alerts.is_empty() {
            // stderr going away must not stop logging.
            let _ = io::stderr().lock().write_all(&self.alerts);
            self.alerts.clear();
        }
    }

    /// ALRM: rotate every non-empty `current`.
    pub fn force_rotate(&mut self) {
        for d in &mut self.dirs {
            d.force_rotate();
        }
    }

    /// `aN`: rotates the directories whose age limit has passed; returns the next deadline.
    pub fn rotate_aged(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for d in &mut self.dirs {
            if let Some(t) = d.age_deadline() {
                if t <= now {
                    d.force_rotate();
                } else {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
        }
        next
    }

    /// EOF or TERM: flush, fsync, chmod 0744 every `current`.
    pub fn close(&mut self) {
        self.flush();
        for d in &mut self.dirs {
            d.close();
        }
    }
}

/// Asks for a 1 MiB pipe buffer when the input is a pipe, so a busy writer blocks less
/// often and each of our reads finds more lines. Unread bytes stay in the pipe, so this
/// costs nothing in loss-freedom (a SIGKILL still loses at most one [`READ_SIZE`] read).
/// Failure (not a pipe, or over `/proc/sys/fs/pipe-max-size`) is harmless and ignored.
fn grow_pipe(fd: std::os::fd::RawFd) {
    // SAFETY: an all-zero `stat` is a valid value; fstat fills it for a descriptor we use.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes only `st`.
    if unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO {
        // SAFETY: F_SETPIPE_SZ takes an int and changes only the pipe's capacity.
        unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE) };
    }
}

/// The pipe capacity [`grow_pipe`] asks for.
pub const PIPE_SIZE: libc::c_int = 1 << 20;

/// Why [`run`] stopped.
#[derive(Debug)]
pub enum RunError {
    /// A startup failure (`unable to WHAT: ERR`), exit 111.
    Start(StartError),
    /// Waiting for input (poll) or setting up signals failed, exit 111. A failing `read`
    /// itself counts as EOF, as in 0.76.
    Read(io::Error),
}

/// The whole of multilog, reading descriptor `fd` (normally 0): open everything, then read, process and write until EOF or TERM.
pub fn run(script: Script, fd: std::os::fd::RawFd) -> Result<(), RunError> {
    // Signals first, so a TERM during startup is not lost.
    let mut sp = SelfPipe::new(&[libc::SIGTERM, libc::SIGALRM]).map_err(RunError::Read)?;
    let mut eng = Engine::open(script).map_err(RunError::Start)?;
    grow_pipe(fd);
    let mut buf = vec![0u8; READ_SIZE];
    let mut exiting = false;
    let mut force = false;
    loop {
        eng.flush();
        if force {
            eng.force_rotate();
            force = false;
        }
        let deadline = eng.rotate_aged();
        let want = if exiting {
            if eng.at_line_start() {
                break;
            }
            // TERM in the middle of a line: finish that line only, one byte at a time, so
            // the next line stays in the pipe for the next multilog (0.76 does the same).
            1
        } else {
            buf.len()
        };
        let timeout = deadline.map(|t| {
            t.saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32
                + 1
        });
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two initialised pollfd structs we own.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout.unwrap_or(-1)) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(RunError::Read(e));
        }
        if fds[1].revents != 0 {
            for s in sp.drain() {
                match s {
                    libc::SIGTERM => exiting = true,
                    libc::SIGALRM => force = true,
                    _ => {}
                }
            }
            continue;
        }
        if fds[0].revents == 0 {
            continue;
        }
        // A TERM that arrived while poll was returning for input would otherwise let us
        // read past the line being finished: look again, right before reading.
        if !exiting
            && sp.drain().into_iter().any(|s| {
                force |= s == libc::SIGALRM;
                s == libc::SIGTERM
            })
        {
            exiting = true;
            continue;
        }
        // SAFETY: reading into a buffer we own, at most its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), want) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => continue,
                // 0.76 treats a read error like EOF: clean close, exit 0, no message
                // (checked against Debian's multilog with a directory as stdin).
                _ => break,
            }
        }
        if n == 0 {
            break;
        }
        eng.feed(&buf[..n as usize]);
    }
    eng.end_partial_line();
    eng.close();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_with_nanos() {
        let t = Tai64n::from_unix(0, 5);
        assert_eq!(rfc3339(&t), "1970-01-01T00:00:00.000000005Z");
        let t = Tai64n::from_unix(1_795_978_980, 123_456_789);
        assert_eq!(rfc3339(&t), "2026-11-29T19:03:00.123456789Z");
        let t = Tai64n::from_unix(951_782_400, 0); // leap day 2000
        assert_eq!(rfc3339(&t), "2000-02-29T00:00:00.000000000Z");
    }
}
