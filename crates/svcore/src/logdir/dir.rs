//! One log directory: `lock`, `current`, `state`, `previous`, `processed`, `newstate` and
//! the `@<stamp>.s|.u` archives (REFERENCE.md §7 "A log directory").
//!
//! Output goes through a *virtual* copy of 0.76's 512-byte buffer: the rotation rules
//! ("cut a write at its last newline once the file would reach size-2000, rotate after a
//! write that ends in `\n`") depend on how 0.76 chunks its writes, so we account for the
//! chunks exactly as 0.76 makes them, and thus rotate at the same bytes, while the real
//! `write(2)` calls are coalesced: one per directory per input read, plus one before each
//! rotation. Nothing is held back past the next `read(2)` of the input.
//!
//! Once multilog is running, disk errors are never fatal: every operation loops on
//! `multilog: warning: unable to ..., pausing: ERR` plus a pause (REFERENCE.md §7).

use super::script::DirSpec;
use crate::errstr;
use crate::tai64n::Tai64n;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Program name used in warnings.
const PROG: &str = "multilog";
/// 0.76's per-directory output buffer.
pub const VBUF: usize = 512;
/// djb's `BUFFER_OUTSIZE`: the largest direct write `buffer_put` makes.
pub const OUTSIZE: usize = 8192;
/// Rotation may happen this many bytes before `size`, at a newline.
pub const SLACK: u64 = 2000;
/// Names in the directory (REFERENCE.md §7).
pub const LOCK: &str = "lock";
/// The file being written.
pub const CURRENT: &str = "current";
/// The processor's saved state.
pub const STATE: &str = "state";
/// The processor's new state.
pub const NEWSTATE: &str = "newstate";
/// The file being processed.
pub const PREVIOUS: &str = "previous";
/// The processor's output.
pub const PROCESSED: &str = "processed";
/// Archives are named `@` + 24 hex digits + `.s` or `.u`; a name starting with `@` that is
/// at least this long counts as an archive (0.76's `filesfit`).
pub const ARCHIVE_PREFIX_LEN: usize = 25;

/// How long to pause after a disk error (0.76: `sleep(5)`).
pub fn pause_duration() -> Duration {
    // Undocumented, for the test suite only: waiting 5 s per injected failure would make
    // the tests slow. Not part of the interface.
    std::env::var("SVTOOLS_MULTILOG_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(5))
}

/// Prints `multilog: warning: unable to WHAT, pausing: ERR` and waits (REFERENCE.md §7).
pub fn warn_and_pause(what: &str, e: &io::Error) {
    errstr::warn(
        PROG,
        &format!("unable to {what}, pausing: {}", errstr::io_str(e)),
    );
    std::thread::sleep(pause_duration());
}

/// Retries `f` until it succeeds, warning and pausing after each failure.
fn retry<T>(what: impl Fn() -> String, mut f: impl FnMut() -> io::Result<T>) -> T {
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => warn_and_pause(&what(), &e),
        }
    }
}

/// How much of a `len`-byte chunk 0.76's `c_write` writes when the file holds `bytes`
/// (`bytes < size`): never past `size`, and once the file would reach `size - 2000`, only
/// up to the last newline in the chunk (if it has one). Pure.
pub fn cut_len(chunk: &[u8], bytes: u64, size: u64) -> usize {
    let mut len = chunk.len();
    let room = size.saturating_sub(bytes);
    if len as u64 >= room {
        len = room as usize;
    }
    if bytes + len as u64 >= size.saturating_sub(SLACK) {
        if let Some(i) = chunk[..len].iter().rposition(|&c| c == b'\n') {
            len = i + 1;
        }
    }
    len
}

/// A startup failure: `what` is the text after `unable to `.
#[derive(Debug)]
pub struct StartError {
    /// For example `lock directory ./main`.
    pub what: String,
    /// The cause.
    pub err: io::Error,
}

fn start<T>(r: io::Result<T>, what: impl FnOnce() -> String) -> Result<T, StartError> {
    r.map_err(|err| StartError { what: what(), err })
}

/// An open log directory.
pub struct Dir {
    spec: DirSpec,
    name: String,
    _lock: File,
    current: File,
    /// Bytes in `current`, counting those committed by the virtual buffer but not yet
    /// written (`pending[..pending.len() - vp]`).
    bytes: u64,
    /// Bytes not yet written to `current`.
    pending: Vec<u8>,
    /// How many of the last bytes of `pending` sit in the virtual 512-byte buffer.
    vp: usize,
    /// When the first byte went into the present `current` (for `aN`).
    started: Option<Instant>,
}

fn open_append(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(p)
}

fn open_trunc(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(p)
}

fn unlink_noent(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn is_archive_name(n: &[u8]) -> bool {
    n.first() == Some(&b'@') && n.len() >= ARCHIVE_PREFIX_LEN
}

impl Dir {
    /// Opens the directory as 0.76 does at startup: `mkdir` 0700, lock (failing with
    /// EAGAIN when another multilog holds it), crash recovery when `current` lacks the
    /// owner-execute bit, an existing or empty `state`, and `current` opened for append
    /// with mode 0644.
    pub fn open(spec: DirSpec) -> Result<Dir, StartError> {
        let name = spec.path.to_string_lossy().into_owned();
        let p = spec.path.clone();
        // 0.76 ignores mkdir's result and reports the open: `unable to open directory DIR`.
        let _ = fs::DirBuilder::new().mode(0o700).create(&p);
        start(File::open(&p), || format!("open directory {name}"))?;
        let lock = start(
            OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(p.join(LOCK)),
            // 0.76 reports a failing open of `lock` as a failing lock (checked against
            // Debian's multilog with `lock` a directory).
            || format!("lock directory {name}"),
        )?;
        // REFERENCE.md §7: `unable to lock directory DIR: temporary failure`.
        start(crate::lock::flock_nb(&lock), || {
            format!("lock directory {name}")
        })?;
        let mut d = Dir {
            name: name.clone(),
            _lock: lock,
            current: start(File::open("/dev/null"), || "open /dev/null".into())?,
            bytes: 0,
            pending: Vec::with_capacity(1 << 16),
            vp: 0,
            started: None,
            spec,
        };
        let clean = match fs::metadata(p.join(CURRENT)) {
            Ok(m) => m.mode() & 0o100 != 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => {
                return Err(StartError {
                    what: format!("stat {name}/{CURRENT}"),
                    err: e,
                });
            }
        };
        if !clean {
            d.recover()?;
        }
        let st = start(open_append(&p.join(STATE)), || {
            format!("create {name}/{STATE}")
        })?;
        drop(st);
        let cur = start(open_append(&p.join(CURRENT)), || {
            format!("create {name}/{CURRENT}")
        })?;
        start(
            cur.set_permissions(fs::Permissions::from_mode(0o644)),
            || format!("set mode of {name}/{CURRENT}"),
        )?;
        d.bytes = start(cur.metadata(), || format!("stat {name}/{CURRENT}"))?.len();
        if d.bytes > 0 {
            d.started = Some(Instant::now());
        }
        d.current = cur;
        Ok(d)
    }

    /// Startup recovery after a crash (REFERENCE.md §7 "Startup recovery").
    fn recover(&mut self) -> Result<(), StartError> {
        let p = self.spec.path.clone();
        let name = self.name.clone();
        start(unlink_noent(&p.join(STATE)), || {
            format!("unlink {name}/{STATE}")
        })?;
        start(unlink_noent(&p.join(NEWSTATE)), || {
            format!("unlink {name}/{NEWSTATE}")
        })?;
        let processed_done = match fs::metadata(p.join(PROCESSED)) {
            Ok(m) => m.mode() & 0o100 != 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(StartError {
                    what: format!("stat {name}/{PROCESSED}"),
                    err: e,
                });
            }
        };
        if processed_done {
            start(unlink_noent(&p.join(PREVIOUS)), || {
                format!("unlink {name}/{PREVIOUS}")
            })?;
            self.finish(PROCESSED, b's');
        } else {
            start(unlink_noent(&p.join(PROCESSED)), || {
                format!("unlink {name}/{PROCESSED}")
            })?;
            self.finish(PREVIOUS, b'u');
        }
        self.finish(CURRENT, b'u');
        Ok(())
    }

    /// The directory's name as written in the script.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends `data` through the virtual 512-byte buffer with 0.76's `buffer_put`
    /// semantics: if `data` does not fit in the space left, the buffer is flushed first;
    /// data longer than the buffer is written directly in chunks of up to 8192 bytes; the
    /// remainder is copied into the buffer.
    pub fn put(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
        let mut rest = data;
        if rest.len() > VBUF - self.vp {
            self.vflush();
            while rest.len() > VBUF {
                let n = rest.len().min(OUTSIZE);
                // The buffer is empty here, so committing `n` bytes as if they were the
                // buffer's contents is exactly 0.76's `allwrite` through `c_write`.
                self.pending.extend_from_slice(&rest[..n]);
                self.vp = n;
                self.vflush();
                rest = &rest[n..];
            }
        }
        self.pending.extend_from_slice(rest);
        self.vp += rest.len();
    }

    /// 0.76's `buffer_flush` on the virtual buffer: commits it in `c_write` chunks,
    /// rotating where 0.76 would. Real writes happen only around rotations.
    pub fn vflush(&mut self) {
        while self.vp > 0 {
            if self.bytes >= self.spec.size {
                self.full_current();
            }
            let start = self.pending.len() - self.vp;
            let chunk = &self.pending[start..];
            let len = cut_len(chunk, self.bytes, self.spec.size);
            let ends_nl = chunk[len - 1] == b'\n';
            self.bytes += len as u64;
            self.vp -= len;
            if self.bytes >= self.spec.size.saturating_sub(SLACK) && ends_nl {
                self.full_current();
            }
        }
    }

    /// Writes the committed bytes to `current` (retrying through disk errors).
    fn write_committed(&mut self) {
        let n = self.pending.len() - self.vp;
        let mut off = 0;
        while off < n {
            match self.current.write(&self.pending[off..n]) {
                Ok(0) => warn_and_pause(
                    &format!("write to {}/{CURRENT}", self.name),
                    &io::Error::from_raw_os_error(libc::ENOSPC),
                ),
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => warn_and_pause(&format!("write to {}/{CURRENT}", self.name), &e),
            }
        }
        self.pending.drain(..n);
    }

    /// Everything put so far reaches `current` (what 0.76 does before each `read`).
    pub fn flush(&mut self) {
        self.vflush();
        self.write_committed();
    }

    /// Bytes in `current`.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// When `aN` wants this directory rotated, if it has data.
    pub fn age_deadline(&self) -> Option<Instant> {
        let age = self.spec.age?;
        let t = self.started?;
        Some(t + Duration::from_secs(age))
    }

    /// ALRM, or `aN` expiry: rotate a non-empty `current` now.
    pub fn force_rotate(&mut self) {
        self.flush();
        if self.bytes > 0 {
            self.full_current();
        } else {
            self.started = None;
        }
    }

    /// EOF or TERM: flush, fsync, mark `current` clean with mode 0744.
    pub fn close(&mut self) {
        self.flush();
        let n = self.name.clone();
        retry(
            || format!("write {n}/{CURRENT} to disk"),
            || self.current.sync_all(),
        );
        retry(
            || format!("set mode of {n}/{CURRENT}"),
            || {
                self.current
                    .set_permissions(fs::Permissions::from_mode(0o744))
            },
        );
    }

    fn path(&self, f: &str) -> PathBuf {
        self.spec.path.join(f)
    }

    /// 0.76's `fullcurrent`: retire `current` as `previous`, start a new one, then archive
    /// `previous` directly or through the processor.
    fn full_current(&mut self) {
        self.write_committed();
        let n = self.name.clone();
        retry(
            || format!("write {n}/{CURRENT} to disk"),
            || self.current.sync_all(),
        );
        let (cur, prev) = (self.path(CURRENT), self.path(PREVIOUS));
        retry(
            || format!("rename {CURRENT} to {PREVIOUS} in directory {n}"),
            || fs::rename(&cur, &prev),
        );
        let f = retry(|| format!("create {n}/{CURRENT}"), || open_append(&cur));
        retry(
            || format!("set mode of {n}/{CURRENT}"),
            || f.set_permissions(fs::Permissions::from_mode(0o644)),
        );
        self.current = f;
        self.bytes = 0;
        self.started = None;
        retry(
            || format!("set mode of {n}/{PREVIOUS}"),
            || fs::set_permissions(&prev, fs::Permissions::from_mode(0o744)),
        );
        if self.spec.processor.is_none() {
            self.finish(PREVIOUS, b's');
        } else {
            self.process();
        }
    }

    /// Runs the processor until it succeeds (REFERENCE.md §7 "Processor").
    fn process(&mut self) {
        let n = self.name.clone();
        let Some(prog) = self.spec.processor.clone() else {
            return;
        };
        loop {
            match self.spawn_processor(&prog) {
                Err(e) => warn_and_pause(&format!("fork for processor in {n}"), &e),
                Ok(st) if st.success() => break,
                Ok(st) if st.signal().is_some() => {
                    // 0.76 prints whatever errno was left over, in practice EINTR; we
                    // print the same text so log watchers see the same line.
                    errstr::warn(
                        PROG,
                        &format!("processor crashed in {n}, pausing: interrupted system call"),
                    );
                    std::thread::sleep(pause_duration());
                }
                Ok(_) => {
                    errstr::warn(PROG, &format!("processor failed in {n}, pausing"));
                    std::thread::sleep(pause_duration());
                }
            }
        }
        let processed = self.path(PROCESSED);
        retry(
            || format!("write {n}/{PROCESSED} to disk"),
            || {
                let f = OpenOptions::new().append(true).open(&processed)?;
                f.sync_all()?;
                f.set_permissions(fs::Permissions::from_mode(0o744))
            },
        );
        // The new state must be on disk before it replaces the old one (0.76 fsyncs it too).
        let newstate = self.path(NEWSTATE);
        retry(
            || format!("write {n}/{NEWSTATE} to disk"),
            || {
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o644)
                    .open(&newstate)?
                    .sync_all()
            },
        );
        let prev = self.path(PREVIOUS);
        retry(|| format!("remove {n}/{PREVIOUS}"), || unlink_noent(&prev));
        let (ns, st) = (self.path(NEWSTATE), self.path(STATE));
        retry(
            || format!("rename {NEWSTATE} to {STATE} in directory {n}"),
            || fs::rename(&ns, &st),
        );
        self.finish(PROCESSED, b's');
    }

    fn spawn_processor(&self, prog: &str) -> io::Result<std::process::ExitStatus> {
        let previous = File::open(self.path(PREVIOUS))?;
        let processed = open_trunc(&self.path(PROCESSED))?;
        let state = File::open(self.path(STATE))?;
        let newstate = open_trunc(&self.path(NEWSTATE))?;
        // Move state/newstate above 9 so that the dup2 to 4 and 5 in the child never has
        // source == target (which would leave close-on-exec set).
        let state = dup_high(&state)?;
        let newstate = dup_high(&newstate)?;
        let (sfd, nfd) = (state.as_raw_fd(), newstate.as_raw_fd());
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(prog)
            .current_dir(&self.spec.path)
            .stdin(Stdio::from(previous))
            .stdout(Stdio::from(processed));
        // SAFETY: only dup2, which is async-signal-safe, runs between fork and exec.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(sfd, 4) == -1 || libc::dup2(nfd, 5) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let st = c.status();
        drop(state);
        drop(newstate);
        st
    }

    /// 0.76's `finish`: give `file` an archive name `@now.code` (unless it already has a
    /// second link, i.e. a crash hit between link and unlink), remove it, then trim.
    fn finish(&mut self, file: &str, code: u8) {
        let n = self.name.clone();
        let p = self.path(file);
        let meta = loop {
            match fs::metadata(&p) {
                Ok(m) => break m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) => warn_and_pause(&format!("stat {n}/{file}"), &e),
            }
        };
        let mut archive = None;
        if meta.nlink() == 1 {
            let an = loop {
                let mut an = String::from_utf8_lossy(&Tai64n::now().external()).into_owned();
                an.push('.');
                an.push(code as char);
                match fs::hard_link(&p, self.path(&an)) {
                    Ok(()) => break an,
                    Err(e) => warn_and_pause(&format!("link to {n}/{file}"), &e),
                }
            };
            archive = Some(an);
        }
        retry(|| format!("remove {n}/{file}"), || unlink_noent(&p));
        if let (true, Some(an)) = (self.spec.compress, archive) {
            self.compress(&an);
        }
        while !retry(|| format!("read {n}"), || self.files_fit()) {}
        if let Some(cap) = self.spec.total {
            retry(|| format!("read {n}"), || self.trim_total(cap));
        }
    }

    /// Extension `z`: `gzip` the new archive in place (`@….s` becomes `@….s.gz`, which
    /// still counts as an archive). A failing gzip leaves the plain archive and warns.
    fn compress(&self, archive: &str) {
        let r = Command::new("gzip")
            .args(["-n", "-f", "--", archive])
            .current_dir(&self.spec.path)
            .stdin(Stdio::null())
            .status();
        match r {
            Ok(s) if s.success() => {}
            Ok(_) => errstr::warn(PROG, &format!("unable to compress {}/{archive}", self.name)),
            Err(e) => errstr::warn(
                PROG,
                &format!(
                    "unable to compress {}/{archive}: {}",
                    self.name,
                    errstr::io_str(&e)
                ),
            ),
        }
    }

    fn archives(&self) -> io::Result<Vec<(Vec<u8>, u64)>> {
        use std::os::unix::ffi::OsStrExt;
        let mut v = Vec::new();
        for e in fs::read_dir(&self.spec.path)? {
            let e = e?;
            let name = e.file_name().as_bytes().to_vec();
            if is_archive_name(&name) {
                let len = match e.metadata() {
                    Ok(m) => m.len(),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                };
                v.push((name, len));
            }
        }
        v.sort();
        Ok(v)
    }

    /// 0.76's `filesfit`: true when fewer than `n` archives exist; otherwise removes the
    /// oldest (the smallest 25-byte prefix) and returns false so the caller asks again.
    fn files_fit(&self) -> io::Result<bool> {
        let a = self.archives()?;
        if (a.len() as u64) < self.spec.num {
            return Ok(true);
        }
        if let Some((oldest, _)) = a.first() {
            let prefix = &oldest[..ARCHIVE_PREFIX_LEN];
            if let Some((victim, _)) = a.iter().find(|(n, _)| n.starts_with(prefix)) {
                use std::os::unix::ffi::OsStrExt;
                unlink_noent(&self.spec.path.join(std::ffi::OsStr::from_bytes(victim)))?;
            }
        }
        Ok(false)
    }

    /// Extension `SN`: removes the oldest archives while their total exceeds `cap`,
    /// always keeping the newest one.
    fn trim_total(&self, cap: u64) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let a = self.archives()?;
        let mut total: u64 = a.iter().map(|(_, l)| l).sum();
        for (name, len) in a.iter().take(a.len().saturating_sub(1)) {
            if total <= cap {
                break;
            }
            unlink_noent(&self.spec.path.join(std::ffi::OsStr::from_bytes(name)))?;
            total -= len;
        }
        Ok(())
    }
}

fn dup_high(f: &File) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new descriptor we then own.
    let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor returned by fcntl and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_never_passes_size() {
        assert_eq!(cut_len(&[b'x'; 512], 4000, 4096), 96);
    }

    #[test]
    fn cut_at_last_newline_near_size() {
        let mut c = vec![b'x'; 512];
        c[100] = b'\n';
        c[300] = b'\n';
        // 0 + 512 < 4096 - 2000: no cut.
        assert_eq!(cut_len(&c, 0, 4096), 512);
        // 1800 + 512 >= 2096: cut after the last newline.
        assert_eq!(cut_len(&c, 1800, 4096), 301);
        // No newline in the chunk: written whole.
        assert_eq!(cut_len(&[b'x'; 512], 1800, 4096), 512);
    }

    #[test]
    fn archive_names_count_from_25_bytes() {
        assert!(is_archive_name(b"@400000006b05a75b38ca4abc.s"));
        assert!(is_archive_name(b"@400000006b05a75b38ca4abc.s.gz"));
        assert!(is_archive_name(b"@400000006b05a75b38ca4abc"));
        assert!(!is_archive_name(b"@4000"));
        assert!(!is_archive_name(b"current"));
    }
}
