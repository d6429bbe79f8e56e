//! The scan directory: svscan's table of service entries (REFERENCE.md §6).
//!
//! svscan runs in the scan directory (its cwd) and keeps one [`Entry`] per service
//! directory, identified by **(st_dev, st_ino)** as in 0.76: two symlinks to one directory
//! share an entry, and a renamed directory keeps its supervise. For each entry it runs
//! `supervise NAME` and, when `NAME/log` existed when the entry was created, `supervise log`
//! in `NAME`, joined by a pipe whose both ends the entry owns for its whole life.
//!
//! Beyond 0.76 the table also remembers the *names* it saw in the directory (a
//! [`Scan::names`] cache), so that with inotify watching the directory (REFERENCE.md §12.1)
//! the periodic 5 s pass does not have to `readdir` and `stat` every entry again: a real
//! subdirectory can only change identity through an event on the scan directory itself
//! (create, delete, rename), so its (dev, ino) is cached; a symlink (or an entry of unknown
//! type) is `stat`ed at every pass, exactly as 0.76 does, because its target can change
//! without any event on the scan directory. An idle tree with real subdirectories therefore
//! costs no system call at all per pass.
//!
//! Every descriptor this module opens is close-on-exec; the children get the pipe ends by
//! `dup2` between `fork` and `exec`, never by inheritance.

use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::errstr;
use crate::pathexec;
use crate::svdir;

/// The program name used in svscan's warnings.
const PROG: &str = "svscan";

/// 0.76 only checks for `NAME/log` when NAME is at most this many bytes (REFERENCE.md §6,
/// step 4: a fixed 260-byte buffer in svscan.c).
pub const MAX_LOG_NAME: usize = 255;

/// The identity of a service directory: (st_dev, st_ino).
pub type Key = (u64, u64);

/// What a name in the scan directory is, as far as a pass needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A real directory with this identity; trusted until an inotify event says otherwise.
    Dir(Key),
    /// A symlink or an entry of unknown type: `stat`ed at every pass (it follows symlinks).
    Stat,
    /// Anything else (a regular file, a FIFO...): skipped silently, as 0.76 does.
    Other,
}

/// The pipe joining a service's stdout to its logger's stdin.
#[derive(Debug)]
pub struct LogPipe {
    /// The read end (the logger's fd 0).
    pub read: OwnedFd,
    /// The write end (the service's fd 1). Closed during an orderly stop, once the main
    /// supervise is gone, so the logger sees end of file after draining the pipe.
    pub write: Option<OwnedFd>,
}

/// One service directory known to svscan.
#[derive(Debug)]
pub struct Entry {
    /// The name it was last seen under (supervise is started as `supervise NAME`).
    pub name: OsString,
    /// Seen in the current pass.
    pub active: bool,
    /// Pid of our `supervise NAME`, if running.
    pub main: Option<u32>,
    /// Pid of our `supervise log`, if running.
    pub log: Option<u32>,
    /// The log pipe, when `NAME/log` existed as the entry was created.
    pub pipe: Option<LogPipe>,
    /// An orderly stop has begun: nothing is restarted any more.
    pub stopping: bool,
    /// During a stop: the log supervise has been told to exit.
    pub log_told: bool,
}

impl Entry {
    /// True when this entry has a log service.
    pub fn has_log(&self) -> bool {
        self.pipe.is_some()
    }

    /// The path to the service directory through which control commands reach it: the
    /// cwd of our running supervise when we know its pid (this works even after the
    /// directory was renamed out of the scan dir), else `NAME`.
    fn dir_of(&self, pid: Option<u32>, log: bool) -> PathBuf {
        match pid {
            Some(p) => PathBuf::from(format!("/proc/{p}/cwd")),
            None if log => Path::new(&self.name).join(svdir::LOG),
            None => PathBuf::from(&self.name),
        }
    }
}

/// Which of an entry's two supervise processes a pid is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `supervise NAME`.
    Main,
    /// `supervise log`.
    Log,
}

/// svscan's table: entries by identity, the names cache, and pids.
pub struct Scan {
    entries: HashMap<Key, Entry>,
    /// Every name of the scan directory at the last full scan, updated by inotify events.
    pub names: BTreeMap<OsString, Kind>,
    pids: HashMap<u32, (Key, Role)>,
    /// The program started for every entry (`supervise`): its `argv[0]` and the paths
    /// tried in turn, from `$PATH` as svscan found it at start (djb's `pathexec_run`).
    program: Program,
    /// When svscan raised its own `RLIMIT_NOFILE`, the limit its children get back, so
    /// services see the limit svscan was started with (0.76 changes no limit).
    child_nofile: Option<libc::rlimit>,
    /// Stop (`dx`) the services of a directory that left the scan dir (runit's behaviour,
    /// REFERENCE.md §11.9). Off by default: 0.76 never stops anything.
    pub stop_removed: bool,
    /// An orderly stop of everything is under way: nothing is started any more.
    shutdown: bool,
    /// Something needs a pass at the next tick: a supervise died or is missing, a name
    /// vanished, an adopted supervise is being waited for. Clear in the steady state,
    /// where a tick then costs one `stat` (plus one per symlinked service).
    dirty: bool,
    /// The scan directory's mtime at the last full pass, and whether it was then so
    /// recent that a coarse timestamp could hide a later change.
    dir_stamp: Option<DirStamp>,
    /// Some cached name is a symlink (or of unknown type), to be `stat`ed at every tick.
    has_links: bool,
}

/// The scan directory's mtime (seconds, nanoseconds) and whether it was recent (within
/// 2 s of the clock) when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirStamp {
    sec: i64,
    nsec: i64,
    recent: bool,
}

impl DirStamp {
    fn read() -> Option<DirStamp> {
        let m = fs::metadata(".").ok()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Some(DirStamp {
            sec: m.mtime(),
            nsec: m.mtime_nsec(),
            recent: m.mtime() >= now - 2,
        })
    }
}

/// Placeholder identity of a directory not `stat`ed yet.
const UNKNOWN: Key = (0, 0);

/// The outcome of reaping one pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// One of our supervise processes.
    Ours(Role),
    /// Any other child (an orphan adopted as PID 1 or subreaper).
    Stranger,
}

impl Scan {
    /// An empty table starting `supervise` (found on `$PATH`) for each entry.
    pub fn new(supervise: impl Into<OsString>, child_nofile: Option<libc::rlimit>) -> Scan {
        Scan {
            entries: HashMap::new(),
            names: BTreeMap::new(),
            pids: HashMap::new(),
            program: Program::new(&supervise.into()),
            child_nofile,
            stop_removed: false,
            shutdown: false,
            dirty: true,
            dir_stamp: None,
            has_links: false,
        }
    }

    /// Number of entries (services) in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of our supervise processes believed alive.
    pub fn running(&self) -> usize {
        self.pids.len()
    }

    /// Iterates over the entries.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Records the death of `pid` (REFERENCE.md §6 step 1: the matching pid is cleared).
    pub fn reaped(&mut self, pid: u32) -> Reaped {
        let Some((key, role)) = self.pids.remove(&pid) else {
            return Reaped::Stranger;
        };
        if let Some(e) = self.entries.get_mut(&key) {
            match role {
                Role::Main => e.main = None,
                Role::Log => e.log = None,
            }
        }
        // Restarted at the next pass (REFERENCE.md §6 step 5), not at once: a supervise
        // that dies at start is not respawned in a tight loop.
        self.dirty = true;
        Reaped::Ours(role)
    }

    /// A full pass: `readdir(".")`, rebuilding the names cache, then every name is
    /// started as 0.76's `start()` does, then unseen dead entries are dropped.
    pub fn full(&mut self) {
        // Read before the directory, so a change made during the readdir shows as a
        // newer mtime at the next tick.
        self.dir_stamp = DirStamp::read();
        let rd = match fs::read_dir(".") {
            Ok(rd) => rd,
            Err(e) => {
                direrror(&e);
                return;
            }
        };
        let mut names = BTreeMap::new();
        for d in rd {
            let d = match d {
                Ok(d) => d,
                Err(e) => {
                    // 0.76 quirk kept: a read error ends the pass before the drop step.
                    direrror(&e);
                    return;
                }
            };
            let name = d.file_name();
            if name.as_bytes().first() == Some(&b'.') {
                continue;
            }
            let kind = match d.file_type() {
                Ok(t) if t.is_dir() => Kind::Dir(UNKNOWN), // identity filled in by stat
                Ok(t) if t.is_symlink() => Kind::Stat,
                Ok(_) => Kind::Other,
                Err(_) => Kind::Stat,
            };
            names.insert(name, kind);
        }
        self.names = names;
        self.pass(true);
    }

    /// The 5 s pass when inotify watches the directory. It gives the same result as a
    /// full pass at a fraction of the cost, because inotify already reported every name
    /// that came or went:
    ///
    /// * when the directory's mtime moved without our noticing (a network filesystem,
    ///   a lost event) or was too recent to trust, it *is* a full pass;
    /// * when something is pending ([`Scan::dirty`]: a supervise to restart, a name
    ///   gone), a pass over the cached names, `stat`ing only symlinks;
    /// * otherwise only the symlinked services are `stat`ed, as 0.76 does at every
    ///   pass, since their target can change without any event on the scan directory.
    ///
    /// So an idle tree of real subdirectories costs one `stat(".")` every 5 s.
    pub fn tick(&mut self) {
        match (self.dir_stamp, DirStamp::read()) {
            (Some(old), Some(new)) if !old.recent && old.sec == new.sec && old.nsec == new.nsec => {
            }
            _ => return self.full(),
        }
        if self.dirty {
            return self.pass(false);
        }
        if !self.has_links {
            return;
        }
        let mut names = std::mem::take(&mut self.names);
        for (name, kind) in names.iter_mut() {
            if *kind == Kind::Stat {
                if let Some(k) = self.start(name, Kind::Stat) {
                    *kind = k;
                }
            }
        }
        self.names = names;
    }

    /// True when a pass over the cached names is needed at the next tick.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    fn pass(&mut self, restat_dirs: bool) {
        for e in self.entries.values_mut() {
            e.active = false;
        }
        // Taken out of self while start() borrows self mutably; no copy of the names.
        let mut names = std::mem::take(&mut self.names);
        for (name, kind) in names.iter_mut() {
            let hint = match *kind {
                Kind::Other => continue,
                Kind::Dir(_) if restat_dirs => Kind::Dir(UNKNOWN),
                k => k,
            };
            if let Some(k) = self.start(name, hint) {
                *kind = k;
            }
        }
        self.names = names;
        self.note_links();
        self.drop_unseen();
        let shutdown = self.shutdown;
        self.dirty = self.entries.values().any(|e| {
            let missing = e.main.is_none() || (e.pipe.is_some() && e.log.is_none());
            (e.active && !e.stopping && !shutdown && missing) || (e.stopping && !e.log_told)
        });
    }

    /// An inotify event: `name` appeared in the scan directory (created or renamed in).
    /// It is started at once; this is the only work an event causes.
    pub fn appeared(&mut self, name: &OsStr) {
        if name.as_bytes().first() == Some(&b'.') {
            return;
        }
        let kind = match fs::symlink_metadata(name) {
            Ok(m) if m.is_dir() => Kind::Dir(UNKNOWN),
            Ok(m) if m.file_type().is_symlink() => Kind::Stat,
            Ok(_) => Kind::Other,
            Err(_) => return, // gone again; a later event or pass tells
        };
        self.names.insert(name.to_os_string(), kind);
        // Whatever this start leaves missing is retried at the next tick.
        self.dirty = true;
        self.has_links |= kind == Kind::Stat;
        if kind != Kind::Other {
            if let Some(kind) = self.start(name, kind) {
                self.names.insert(name.to_os_string(), kind);
            }
        }
    }

    /// An inotify event: `name` left the scan directory (deleted or renamed away). Its
    /// entry is dropped or stopped at the next pass, as in 0.76.
    pub fn vanished(&mut self, name: &OsStr) {
        self.names.remove(name);
        self.dirty = true;
        self.note_links();
    }

    /// Recomputes [`Scan::has_links`] after the names changed, so that an idle tick over
    /// real subdirectories does not even walk the names.
    fn note_links(&mut self) {
        self.has_links = self.names.values().any(|k| *k == Kind::Stat);
    }

    /// 0.76's `start(fn)`: find or create the entry for `name`, then start whatever of
    /// its supervise processes is missing. `hint` is what the name is known to be
    /// (`Dir` with a known identity skips the `stat`). Returns the name's kind for the
    /// cache.
    fn start(&mut self, name: &OsStr, hint: Kind) -> Option<Kind> {
        let (key, kind) = match hint {
            Kind::Dir(key) if key != UNKNOWN => (key, hint),
            _ => {
                let m = match fs::metadata(name) {
                    Ok(m) => m,
                    Err(e) => {
                        warn(&format!(
                            "unable to stat {}: {}",
                            name.to_string_lossy(),
                            errstr::io_str(&e)
                        ));
                        return None;
                    }
                };
                if !m.is_dir() {
                    return None;
                }
                let key = (m.dev(), m.ino());
                match hint {
                    Kind::Dir(_) => (key, Kind::Dir(key)),
                    _ => (key, Kind::Stat),
                }
            }
        };

        let e = match self.entries.entry(key) {
            Slot::Occupied(o) => o.into_mut(),
            Slot::Vacant(v) => v.insert(new_entry(name)?),
        };
        e.active = true;
        if e.name != name {
            e.name = name.to_os_string();
        }
        if self.shutdown {
            return Some(kind);
        }
        if e.stopping {
            if e.main.is_some() || e.log.is_some() {
                return Some(kind);
            }
            // A directory stopped by --stop-removed came back once its processes were
            // gone: start it afresh, with a new pipe if the old write end was closed.
            e.stopping = false;
            e.log_told = false;
            if e.pipe.as_ref().is_some_and(|p| p.write.is_none()) {
                match new_pipe() {
                    Ok(p) => e.pipe = Some(p),
                    Err(err) => {
                        warn(&format!(
                            "unable to create pipe for {}: {}",
                            name.to_string_lossy(),
                            errstr::io_str(&err)
                        ));
                        return Some(kind);
                    }
                }
            }
        }

        if e.main.is_none() && !alive_elsewhere(Path::new(name)) {
            let w = e.pipe.as_ref().and_then(|p| p.write.as_ref());
            match spawn(&self.program, name, false, w, self.child_nofile) {
                Ok(pid) => {
                    e.main = Some(pid);
                    self.pids.insert(pid, (key, Role::Main));
                }
                Err(err) => {
                    warn(&spawn_failure(name, "", &err));
                    // 0.76 returns here: the log is not started either.
                    return Some(kind);
                }
            }
        }
        if let Some(p) = &e.pipe {
            if e.log.is_none() && !alive_elsewhere(&Path::new(name).join(svdir::LOG)) {
                match spawn(&self.program, name, true, Some(&p.read), self.child_nofile) {
                    Ok(pid) => {
                        e.log = Some(pid);
                        self.pids.insert(pid, (key, Role::Log));
                    }
                    Err(err) => warn(&spawn_failure(name, "/log", &err)),
                }
            }
        }
        Some(kind)
    }

    /// 0.76 step 6: an entry not seen in this pass with no live supervise is dropped and
    /// its pipe closed. With [`Scan::stop_removed`], an unseen entry whose supervise
    /// still runs is told to stop (main first, then its log; see [`Scan::advance_stops`]).
    fn drop_unseen(&mut self) {
        let stop = self.stop_removed;
        self.entries.retain(|_, e| {
            if e.active {
                return true;
            }
            if e.main.is_none() && e.log.is_none() {
                return false;
            }
            if stop && !e.stopping {
                begin_stop(e);
            }
            true
        });
        if stop {
            self.advance_stops();
        }
    }

    /// Begins the orderly stop of every entry (PID-1 mode's shutdown): `dx` to every
    /// main supervise now; each log follows once its main supervise has gone.
    pub fn stop_all(&mut self) {
        self.shutdown = true;
        for e in self.entries.values_mut() {
            if !e.stopping {
                begin_stop(e);
            }
        }
        self.advance_stops();
    }

    /// For every stopping entry whose main supervise is gone and whose log has not been
    /// told yet: close the pipe's write end and send `ox` to the log supervise. With no
    /// writer left, the logger reads what is still in the pipe, gets end of file and
    /// exits; `o` keeps supervise from restarting it and `x` makes supervise exit then.
    /// (A TERM, as `d` sends, would make multilog stop before the pipe is drained.)
    pub fn advance_stops(&mut self) {
        for e in self.entries.values_mut() {
            if !e.stopping || e.log_told || e.main.is_some() {
                continue;
            }
            if e.main.is_none() && alive_elsewhere(Path::new(&e.name)) {
                continue; // an adopted supervise we cannot wait for: checked next time
            }
            if let Some(p) = e.pipe.as_mut() {
                p.write = None;
                let dir = e.dir_of(e.log, true);
                let _ = crate::control::send(&dir, b"ox");
            }
            e.log_told = true;
        }
    }

    /// True when no entry still has a supervise we know of, nor an adopted one alive.
    pub fn all_stopped(&self) -> bool {
        self.pids.is_empty()
            && self.entries.values().all(|e| {
                !alive_elsewhere(Path::new(&e.name))
                    && (!e.has_log() || !alive_elsewhere(&Path::new(&e.name).join(svdir::LOG)))
            })
    }
}

/// Sends `dx` to an entry's main supervise and marks it stopping.
fn begin_stop(e: &mut Entry) {
    e.stopping = true;
    let dir = e.dir_of(e.main, false);
    let _ = crate::control::send(&dir, b"dx");
}

/// Creates an entry for `name` (0.76 `start()`, new-entry branch): checks `NAME/log`
/// and creates the pipe. Warns and returns `None` on failure, as 0.76 does.
fn new_entry(name: &OsStr) -> Option<Entry> {
    let mut has_log = false;
    if name.len() <= MAX_LOG_NAME {
        match fs::metadata(Path::new(name).join(svdir::LOG)) {
            Ok(_) => has_log = true, // any file type counts (REFERENCE.md §6 step 4)
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                warn(&format!(
                    "unable to stat {}/log: {}",
                    name.to_string_lossy(),
                    errstr::io_str(&e)
                ));
                return None;
            }
        }
    }
    let pipe = if has_log {
        // Adoption reads /proc/locks, whose size grows with the tree: only worth it when
        // a supervise from an earlier svscan is alive here (one cheap open each).
        let dir = Path::new(name);
        let adopted = if alive_elsewhere(dir) || alive_elsewhere(&dir.join(svdir::LOG)) {
            adopt_pipe(name)
        } else {
            None
        };
        match adopted.map(Ok).unwrap_or_else(new_pipe) {
            Ok(p) => Some(p),
            Err(e) => {
                warn(&format!(
                    "unable to create pipe for {}: {}",
                    name.to_string_lossy(),
                    errstr::io_str(&e)
                ));
                return None;
            }
        }
    } else {
        None
    };
    Some(Entry {
        name: name.to_os_string(),
        active: false,
        main: None,
        log: None,
        pipe,
        stopping: false,
        log_told: false,
    })
}

/// A fresh pipe, close-on-exec on both ends (0.76 `coe()`).
fn new_pipe() -> io::Result<LogPipe> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(LogPipe {
        read,
        write: Some(write),
    })
}

/// Beyond 0.76: when svscan is restarted while `supervise NAME` (or `supervise log`)
/// from an earlier svscan still runs, that supervise holds the old log pipe, whose other
/// end nobody will hold once the old processes die. Instead of a new pipe, the entry
/// takes the old one back: the live supervise is found as the holder of its lock in
/// `/proc/locks`, and `/proc/PID/fd/1` (main) or `/proc/PID/fd/0` (log) is opened, which
/// on Linux opens the very same pipe. Returns `None` when there is nothing to adopt.
///
/// The two ends are opened separately (not one read-write descriptor), so that closing
/// the write end during an orderly stop still lets the logger see end of file.
fn adopt_pipe(name: &OsStr) -> Option<LogPipe> {
    let dir = Path::new(name);
    let candidates = [
        (dir.join(svdir::LOCK), 1),
        (dir.join(svdir::LOG).join(svdir::LOCK), 0),
    ];
    let locks = fs::read_to_string("/proc/locks").ok()?;
    for (lock, fd) in candidates {
        let Ok(m) = fs::metadata(&lock) else { continue };
        let Some(pid) = lock_holder(&locks, m.dev(), m.ino()) else {
            continue;
        };
        let path = format!("/proc/{pid}/fd/{fd}");
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_fifo() {
            continue;
        }
        // The read end first: opening a pipe through /proc follows FIFO rules, so a
        // non-blocking read open always succeeds, and the write open that follows then
        // finds a reader (ours) instead of failing with ENXIO.
        let Ok(read) = open_end(&path, false) else {
            continue;
        };
        let Ok(write) = open_end(&path, true) else {
            continue;
        };
        return Some(LogPipe {
            read,
            write: Some(write),
        });
    }
    None
}

/// Opens one end of the pipe behind `/proc/PID/fd/N`, close-on-exec and, once open,
/// blocking again: the descriptor is handed to children by `dup2`, which shares the file
/// status flags, and a logger or service must not inherit `O_NONBLOCK`.
fn open_end(path: &str, write: bool) -> io::Result<OwnedFd> {
    let f = fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let fd = OwnedFd::from(f);
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if flags == -1
        || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) } == -1
    {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// The pid holding a lock on the file (dev, ino), from the text of `/proc/locks`
/// (`1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`; blocked waiters, marked `->`,
/// are skipped).
pub fn lock_holder(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let (maj, min) = (libc::major(dev) as u64, libc::minor(dev) as u64);
    for line in locks.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[1] == "->" {
            continue;
        }
        let mut id = f[5].split(':');
        let (Some(a), Some(b), Some(i)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let ok = u64::from_str_radix(a, 16).ok() == Some(maj)
            && u64::from_str_radix(b, 16).ok() == Some(min)
            && i.parse::<u64>().ok() == Some(ino);
        if ok {
            return f[4].parse().ok();
        }
    }
    None
}

/// svok's test on `DIR`: `supervise/ok` opens for writing, so some supervise (ours from
/// an earlier svscan, or one started by hand) is alive there. Beyond 0.76, a restarted
/// svscan uses it to adopt a running scene instead of starting a second supervise that
/// would only fail on the lock (REFERENCE.md §1, `ok`).
pub fn alive_elsewhere(dir: &Path) -> bool {
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir.join(svdir::OK))
        .is_ok()
}

/// The program svscan starts, prepared once so that a child between `fork` and `exec`
/// only makes system calls.
struct Program {
    /// `argv[0]`, as given (`supervise`), as 0.76 passes it.
    argv0: CString,
    /// Where to look for it, in `$PATH` order ([`pathexec::candidates`]).
    candidates: Vec<CString>,
}

impl Program {
    fn new(file: &OsStr) -> Program {
        let path = std::env::var_os("PATH");
        let candidates = pathexec::candidates(file.as_bytes(), path.as_ref().map(|p| p.as_bytes()))
            .into_iter()
            .filter_map(|c| CString::new(c).ok())
            .collect();
        Program {
            argv0: CString::new(file.as_bytes()).unwrap_or_default(),
            candidates,
        }
    }
}

/// Starts `supervise NAME` (fd 1 = `fd` when given) or, with `log`, `supervise log` in
/// `NAME` with fd 0 = `fd`. The environment is svscan's (REFERENCE.md §6 step 5).
///
/// A plain `fork`, then `exec` in the child, as 0.76 does: svscan goes on with the next
/// entry while the child execs. (`std::process::Command` waits for every child's exec
/// to succeed before returning, which serialises a 1000-service start behind 1000
/// execs.) A failed exec is therefore reported by the child, as in 0.76:
/// `svscan: warning: unable to start supervise NAME: ERR`, exit 111; only a failed
/// `fork` is reported here.
fn spawn(
    program: &Program,
    name: &OsStr,
    log: bool,
    fd: Option<&OwnedFd>,
    nofile: Option<libc::rlimit>,
) -> io::Result<u32> {
    let nul = |_| io::Error::from_raw_os_error(libc::EINVAL);
    let arg1 = if log {
        CString::new(svdir::LOG).map_err(nul)?
    } else {
        CString::new(name.as_bytes()).map_err(nul)?
    };
    let argv = [program.argv0.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let cwd = if log {
        Some(CString::new(name.as_bytes()).map_err(nul)?)
    } else {
        None
    };
    let suffix = if log { "/log" } else { "" };
    let prefix = format!(
        "{PROG}: warning: unable to start supervise {}{suffix}: ",
        name.to_string_lossy()
    );
    let redirect = fd.map(|f| (f.as_raw_fd(), if log { 0 } else { 1 }));
    // SAFETY: svscan is single-threaded (STYLE.md P7), so the child is an exact copy of
    // a process in which no other thread can hold a lock (the allocator's included).
    // The child runs `exec_child`, which never returns.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        // SAFETY: we are the freshly forked child; see exec_child.
        0 => unsafe { exec_child(program, &argv, cwd.as_deref(), redirect, nofile, &prefix) },
        pid => Ok(pid as u32),
    }
}

/// The child side of [`spawn`]: moves the pipe end into place, restores what svscan
/// changed for itself, execs the program along `$PATH`, and on failure prints 0.76's
/// warning and exits 111.
///
/// # Safety
///
/// Must only be called in a child just forked from single-threaded svscan. `argv` must be
/// a NULL-terminated array of pointers to NUL-terminated strings that outlive the call.
unsafe fn exec_child(
    program: &Program,
    argv: &[*const libc::c_char; 3],
    cwd: Option<&std::ffi::CStr>,
    redirect: Option<(libc::c_int, libc::c_int)>,
    nofile: Option<libc::rlimit>,
    prefix: &str,
) -> ! {
    // SAFETY (whole block): bare system calls on descriptors and buffers owned by this
    // process; every pointer comes from a live CString or local.
    unsafe {
        // Rust's runtime ignores SIGPIPE and an ignored disposition survives exec; 0.76
        // children get the default. Handled signals reset by themselves at exec, and the
        // mask is already empty (selfpipe blocks nothing), so only SIGPIPE needs this.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if let Some((from, to)) = redirect {
            // The pipe ends are close-on-exec in svscan; dup2 gives the child a copy
            // without the flag. If the end already sits on the target descriptor (svscan
            // started with that descriptor closed), just clear the flag.
            let ok = if from == to {
                libc::fcntl(to, libc::F_SETFD, 0) != -1
            } else {
                libc::dup2(from, to) != -1
            };
            if !ok {
                child_fail(prefix);
            }
        }
        if let Some(lim) = nofile {
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        if let Some(dir) = cwd {
            if libc::chdir(dir.as_ptr()) == -1 {
                child_fail(prefix);
            }
        }
        // djb's pathexec_run: ENOENT moves on; EACCES, EPERM and EISDIR are remembered and
        // the search moves on; anything else stops it (svcore::pathexec).
        let mut saved = 0;
        for c in &program.candidates {
            libc::execv(c.as_ptr(), argv.as_ptr());
            let e = *libc::__errno_location();
            if e != libc::ENOENT {
                saved = e;
                if !matches!(e, libc::EACCES | libc::EPERM | libc::EISDIR) {
                    break;
                }
            }
        }
        if saved != 0 {
            *libc::__errno_location() = saved;
        }
        child_fail(prefix)
    }
}

/// Prints `PREFIX` + djb's text for the current errno on stderr in one write, and exits
/// 111 without running any of svscan's exit code (atexit handlers, buffered output).
fn child_fail(prefix: &str) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // Allocating is fine here: the child of a single-threaded process (see spawn).
    let line = format!("{prefix}{}\n", errstr::errno_str(errno));
    // SAFETY: write(2) from a live buffer, then _exit(2), which never returns.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(111)
    }
}

/// The warning for a failed `fork` (an exec failure is reported by the child).
fn spawn_failure(name: &OsStr, suffix: &str, e: &io::Error) -> String {
    format!(
        "unable to fork for {}{suffix}: {}",
        name.to_string_lossy(),
        errstr::io_str(e)
    )
}

fn direrror(e: &io::Error) {
    warn(&format!("unable to read directory: {}", errstr::io_str(e)));
}

fn warn(text: &str) {
    errstr::warn(PROG, text);
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (2 descriptors per logged service,
/// no 1000-service cap). Returns the original limit when it was changed, for
/// [`Scan::new`] to hand back to the children.
pub fn raise_nofile() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur >= lim.rlim_max
    {
        return None;
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return None;
    }
    Some(lim)
}

/// Every descendant of `root` (children, grandchildren...), from `/proc/*/stat`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for d in rd.flatten() {
            let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) {
                if let Some(ppid) = stat_ppid(&s) {
                    parent.push((pid, ppid));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parent {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// The ppid field of a `/proc/PID/stat` line (the 2nd field after the `)` that ends
/// the command name, which may itself contain spaces and parentheses).
pub fn stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_after_tricky_command_name() {
        assert_eq!(stat_ppid("42 (a) b (c)) S 7 42 42 0"), Some(7));
        assert_eq!(stat_ppid("1 (init) S 0 1 1"), Some(0));
        assert_eq!(stat_ppid("garbage"), None);
    }

    #[test]
    fn lock_holder_matches_dev_and_inode() {
        let dev = libc::makedev(8, 1);
        let locks = "1: POSIX  ADVISORY  WRITE 900 08:02:77 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 1234 08:01:77 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 999 08:01:77 0 EOF\n";
        assert_eq!(lock_holder(locks, dev, 77), Some(1234));
        assert_eq!(lock_holder(locks, dev, 78), None);
    }

    #[test]
    fn spawn_failure_wording() {
        let e = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(
            spawn_failure(OsStr::new("a"), "", &e),
            "unable to fork for a: temporary failure"
        );
    }
}
