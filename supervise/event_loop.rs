//! supervise's I/O loop: waits, turns what happened into [`Event`]s, carries out the
//! [`Action`]s that [`step`] returns. All decisions live in `state.rs`.
//!
//! One wakeup does what 0.76's loop does, in the same order (REFERENCE.md §4): drain the
//! self-pipe, reap every dead child, then read the control FIFO. We read up to
//! [`CHUNK`] bytes at once instead of one (and up to [`CHUNKS_PER_WAKEUP`] reads per
//! wakeup), and still process them byte by byte, so a flood of junk costs one `read` per
//! chunk and never blocks (the FIFO is non-blocking).
//! The poll timeout is the state's next deadline, or infinite: an idle supervise makes
//! no wakeups at all (0.76 wakes every 3600 s).
//!
//! The respawn path does 0.76's work first and ours after (issue 2, docs/BENCHMARKS-
//! supervise.md): `status` is written at every event of REFERENCE.md §3 as it happens,
//! and a reap that leads to an immediate restart goes straight to the fork. What is not
//! 0.76's (the `deaths` and `status.ext` sidecars, the `event/` bytes) is [`Deferred`]
//! until the loop is about to block: it polls once more without blocking and handles
//! whatever is already pending first, then writes each sidecar once per batch and only
//! when its text changed, then notifies `event/` once. After a signal that should end
//! run, the loop waits up to [`KILL_GRACE_MS`] for the SIGCHLD before doing that work,
//! so `svc -t` restarts without a sidecar write in between.

use crate::settings::{self, Probe, Settings};
use crate::state::{Action, Aux, Event, Millis, Now, State, step};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;
use std::time::Instant;
use svcore::cgroup::Cgroup;
use svcore::errstr;
use svcore::notify::{self, Field, NotifySocket};
use svcore::proc::{self, Prepared, SpawnOptions};
use svcore::selfpipe::SelfPipe;
use svcore::sidecar;
use svcore::status::{self, WriteError};
use svcore::svdir;
use svcore::tai64n::Tai64n;

/// `./finish`, run after `./run` exits (runit, s6; REFERENCE.md §11.1).
pub const FINISH: &str = settings::FINISH;
/// `./finish` as executed.
pub const FINISH_PATH: &str = "./finish";

/// The shell that runs `check` and `command` probes.
pub const SH: &str = "/bin/sh";
/// The HTTP probe program, found on PATH (helper 7's `svprobe`).
pub const SVPROBE: &str = "svprobe";

/// The first executable `name` in `$PATH` (djb's search order, svcore::pathexec).
fn find_on_path(name: &str) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::env::var_os("PATH");
    svcore::pathexec::candidates(name.as_bytes(), path.as_ref().map(|p| p.as_bytes()))
        .into_iter()
        .find(|c| {
            let Ok(cs) = std::ffi::CString::new(c.clone()) else {
                return false;
            };
            // SAFETY: access(2) on a NUL-terminated path we own.
            unsafe { libc::access(cs.as_ptr(), libc::X_OK) == 0 }
        })
        .map(|c| String::from_utf8_lossy(&c).into_owned())
}

/// Control bytes read per `read` call.
pub const CHUNK: usize = 64;
/// Most `read` calls on the control FIFO per wakeup.
pub const CHUNKS_PER_WAKEUP: usize = 16;

/// First retry delay after a failed status write; doubled up to [`STATUS_RETRY_MAX_MS`].
const STATUS_RETRY_MS: Millis = 1000;
/// Longest wait between two retries of a failed status write.
const STATUS_RETRY_MAX_MS: Millis = 60_000;

/// The program name in messages.
pub const PROG: &str = "supervise";

/// After sending run a signal that normally ends it (`t`, `k`, `d`, ...), how long the
/// deferred sidecar writes wait for its SIGCHLD, so the restart is not behind them. Only
/// after such a signal: an idle supervise still never wakes.
pub const KILL_GRACE_MS: i32 = 10;

/// Busy wakeups in a row after which deferred work is done anyway, so a flood of control
/// bytes cannot hold back `status.ext` (acknowledged control) for ever.
const MAX_BUSY_WAKEUPS: u32 = 8;

/// `event/` bytes held back per batch; a longer batch is flushed early, in order.
const EVENT_BATCH: usize = 32;

/// Work held back until supervise is about to block (see the module docs).
#[derive(Debug, Default)]
pub struct Deferred {
    /// `event/` bytes not sent yet, in order.
    events: [u8; EVENT_BATCH],
    /// How many of `events` are in use.
    n_events: usize,
    /// `deaths` must be rewritten.
    deaths: bool,
    /// The `status.ext` text last written successfully (skip identical rewrites).
    ext_written: Option<String>,
    /// A signal that should end run was just sent: wait [`KILL_GRACE_MS`] for it.
    kill_grace: bool,
    /// Wakeups in a row that found something pending (see [`MAX_BUSY_WAKEUPS`]).
    busy: u32,
    /// `event/`'s identity when a scan last found no listener: no scan while unchanged.
    event_idle: Option<[i64; 4]>,
    /// The settings files as last loaded: no reload before a start while unchanged.
    pub settings: Option<settings::Fingerprint>,
    /// [`settings::Fingerprint::dir_unchanged`], asked at most once per wakeup (the
    /// `finish` check and the settings check before one restart share it).
    dir_unchanged: Option<bool>,
}

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
    /// The service's name (basename of its directory), `./finish`'s third argument.
    pub name: String,
    /// Read end of run's notification pipe, and the run it belongs to.
    pub notify: Option<(u32, File)>,
    /// The last settings error printed, so a crash loop does not repeat it every second.
    pub settings_error: Option<String>,
    /// Something changed since `status.ext` was last written (or the write failed).
    pub ext_dirty: bool,
    /// The last `status.ext` write failed (and was warned about).
    pub ext_failing: bool,
    /// Our own pid, for `status.ext`.
    pub self_pid: u32,
    /// `[readiness] check` command (run as `sh -c`).
    pub check: Option<String>,
    /// `[health]` probe.
    pub probe: Option<Probe>,
    /// The sd_notify socket `supervise/notify`, when `notify-socket` is on.
    pub notify_socket: Option<NotifySocket>,
    /// The service's cgroup, when `cgroup` is on and the host allows it.
    pub cgroup: Option<Cgroup>,
    /// Why the cgroup could not be had, once said (not repeated at every restart).
    pub cgroup_error: Option<String>,
    /// The running probe's pid and the read end of its stderr pipe.
    pub probe_err: Option<(u32, File)>,
    /// Sidecar writes and `event/` bytes put off until the loop blocks.
    pub deferred: Deferred,
}

/// Follow-up events of one dispatch (spawn outcomes), handled in order; a fixed ring so
/// dispatching allocates nothing.
struct Queue {
    buf: [Option<Event>; 8],
    head: usize,
    len: usize,
}

impl Queue {
    fn new(first: Event) -> Queue {
        let mut q = Queue {
            buf: [None; 8],
            head: 0,
            len: 0,
        };
        q.push(first);
        q
    }

    fn push(&mut self, ev: Event) {
        // One step yields at most three spawns (run or finish, check, probe); 8 is
        // ample, and a drop would only lose a helper start, never a run start.
        if self.len < self.buf.len() {
            self.buf[(self.head + self.len) % 8] = Some(ev);
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<Event> {
        if self.len == 0 {
            return None;
        }
        let ev = self.buf[self.head].take();
        self.head = (self.head + 1) % 8;
        self.len -= 1;
        ev
    }
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
        let mut queue = Queue::new(ev);
        while let Some(ev) = queue.pop() {
            let actions = step(st, ev, self.now());
            self.ext_dirty = true;
            for a in actions.iter() {
                match a {
                    Action::Spawn => queue.push(self.spawn_run(st)),
                    Action::SpawnFinish { wstatus } => {
                        queue.push(self.spawn_finish(st, wstatus));
                    }
                    Action::SpawnAux(aux) => queue.push(self.spawn_aux(st, aux)),
                    // Not 0.76's: after the fork, when the loop is about to block.
                    Action::WriteDeaths => self.deferred.deaths = true,
                    Action::Notify(b) => self.defer_event(b),
                    Action::Kill { pid, sig } => {
                        // Errors (ESRCH) are ignored, as 0.76 ignores kill's result.
                        let _ = proc::kill(pid, sig);
                        let run = st.pid as i32;
                        if run != 0
                            && (pid == run || pid == -run)
                            && ends_run(sig, st.config.down_signal)
                        {
                            self.deferred.kill_grace = true;
                        }
                    }
                    Action::WriteStatus => self.write_status(st),
                    Action::KillCgroup => self.kill_cgroup(),
                    Action::Exit => {
                        // 0.76 announces once more after its loop returns; then our
                        // sidecars and the `x` byte.
                        self.write_status(st);
                        self.flush(st);
                        self.cleanup();
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Re-reads the settings (an edit takes effect at the next start). An invalid file
    /// keeps the last good settings, and says so once per distinct error.
    fn reload_settings(&mut self, st: &mut State) {
        let known = self.deferred.dir_unchanged;
        if self
            .deferred
            .settings
            .as_ref()
            .is_some_and(|f| f.unchanged(known))
        {
            return;
        }
        self.deferred.settings = settings::Fingerprint::take();
        self.deferred.dir_unchanged = None;
        match settings::load(&self.dir) {
            Ok(s) => {
                self.apply_settings(st, s);
                self.settings_error = None;
            }
            Err(msg) => {
                if self.settings_error.as_deref() != Some(msg.as_str()) {
                    errstr::warn(PROG, &format!("{msg}; keeping the last good settings"));
                    self.settings_error = Some(msg);
                }
            }
        }
    }

    /// Takes new settings: the state machine's part, and the helper commands; then
    /// opens or closes the notify socket to match.
    pub fn apply_settings(&mut self, st: &mut State, s: Settings) {
        st.config = s.config;
        self.check = s.check;
        self.probe = s.probe;
        self.sync_notify_socket(st);
    }

    /// Binds `supervise/notify` and exports `NOTIFY_SOCKET` when the setting is on;
    /// closes, removes and unexports it when the setting went away.
    fn sync_notify_socket(&mut self, st: &State) {
        if st.config.notify_socket && self.notify_socket.is_none() {
            let path = Path::new(svdir::SUPERVISE).join(notify::NOTIFY_NAME);
            match NotifySocket::bind(&path) {
                Ok(sock) => {
                    let abs = std::env::current_dir()
                        .map(|d| d.join(&path))
                        .unwrap_or_else(|_| path.clone());
                    // SAFETY: supervise is single-threaded (STYLE.md P7): nothing reads
                    // the environment concurrently. Children inherit it through exec.
                    unsafe { std::env::set_var(notify::ENV_VAR, abs) };
                    // A daemon that drops privileges (setuidgid) must be able to reach the
                    // socket: make supervise/ searchable (no read bit: no names shown).
                    allow_search(Path::new(svdir::SUPERVISE));
                    self.notify_socket = Some(sock);
                }
                Err(e) => {
                    errstr::warn(
                        PROG,
                        &format!(
                            "unable to bind {}/{}: {}",
                            self.dir,
                            path.display(),
                            errstr::io_str(&e)
                        ),
                    );
                }
            }
        } else if !st.config.notify_socket {
            if let Some(sock) = self.notify_socket.take() {
                let _ = sock.remove();
                // SAFETY: single-threaded, as above.
                unsafe { std::env::remove_var(notify::ENV_VAR) };
            }
        }
    }

    /// Reads every waiting datagram on the notify socket: `READY=1` is readiness of the
    /// current run, `STATUS=` and `MAINPID=` are published. Returns true on exit.
    fn read_notify_socket(&mut self, st: &mut State) -> bool {
        let mut ready = false;
        while let Some(Ok(Some(msg))) = self.notify_socket.as_ref().map(NotifySocket::recv) {
            if st.pid == 0 {
                // No run to be about (a late message from a dead one).
                continue;
            }
            for f in notify::parse(&msg) {
                match f {
                    Field::Ready => ready = true,
                    Field::Status(t) => st.status_text = Some(t),
                    Field::MainPid(p) => st.main_pid = p,
                    _ => {}
                }
            }
            self.ext_dirty = true;
        }
        if ready && st.pid != 0 {
            let pid = st.pid;
            return self.dispatch(st, Event::Ready { pid });
        }
        false
    }

    /// The service's cgroup, created on first use; `None` (with one warning) when the
    /// host does not allow it.
    fn service_cgroup(&mut self) -> Option<&Cgroup> {
        if self.cgroup.is_none() {
            // Unique per service dir (two services may share a name under different
            // scan dirs): the absolute path, with `/` made `_` by cgroup::sanitize.
            let name = std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_else(|_| self.name.clone());
            match Cgroup::create(&name) {
                Ok(cg) => {
                    self.cgroup_error = None;
                    self.cgroup = Some(cg);
                }
                Err(e) => {
                    let msg = format!(
                        "unable to create a cgroup for {}: {e}; running without one",
                        self.dir
                    );
                    if self.cgroup_error.as_deref() != Some(msg.as_str()) {
                        errstr::warn(PROG, &msg);
                        self.cgroup_error = Some(msg);
                    }
                }
            }
        }
        self.cgroup.as_ref()
    }

    /// Kills everything in the service's cgroup (a no-op without one).
    fn kill_cgroup(&self) {
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.kill() {
                errstr::warn(
                    PROG,
                    &format!(
                        "unable to kill the cgroup of {}: {}",
                        self.dir,
                        errstr::io_str(&e)
                    ),
                );
            }
        }
    }

    /// On exit: the socket file and an empty cgroup are removed.
    fn cleanup(&self) {
        if let Some(sock) = &self.notify_socket {
            let _ = sock.remove();
        }
        if let Some(cg) = &self.cgroup {
            // Right after cgroup.kill (`svc -dx`) the killed processes may still be
            // exiting, and rmdir says EBUSY until they are gone: retry briefly, at exit
            // only, so no empty cgroup is left behind.
            for _ in 0..100 {
                match cg.remove() {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    _ => break,
                }
            }
        }
    }

    /// Forks a helper child (readiness check or health probe) in the service dir under
    /// setsid, so an overrun kills its whole group; returns the event to feed back.
    fn spawn_aux(&mut self, st: &State, aux: Aux) -> Event {
        let argv_owned: Vec<String> = match (aux, &self.check, &self.probe) {
            (Aux::Check, Some(cmd), _) => vec![SH.into(), "-c".into(), cmd.clone()],
            (Aux::Probe, _, Some(Probe::Command(cmd))) => {
                vec![SH.into(), "-c".into(), cmd.clone()]
            }
            (Aux::Probe, _, Some(Probe::Url { url, expect })) => {
                let Some(svprobe) = find_on_path(SVPROBE) else {
                    errstr::warn(
                        PROG,
                        &format!(
                            "unable to probe {}: {SVPROBE}: file does not exist",
                            self.dir
                        ),
                    );
                    return Event::AuxFailed { aux };
                };
                // svprobe gives up at the same timeout after which we would KILL it.
                let timeout = st.config.health.map_or(5000, |h| h.timeout_ms).to_string();
                let mut v = vec![svprobe, "-t".into(), timeout, url.clone()];
                if let Some(e) = expect {
                    v.push(e.clone());
                }
                v
            }
            _ => return Event::AuxFailed { aux },
        };
        let what = match aux {
            Aux::Check => "check",
            Aux::Probe => "probe",
        };
        let argv: Vec<&str> = argv_owned.iter().map(String::as_str).collect();
        let prepared = match Prepared::new(
            &argv,
            &format!("supervise: fatal: unable to start {} {what}: ", self.dir),
        ) {
            Ok(p) => p,
            Err(_) => return Event::AuxFailed { aux },
        };
        // Their stdout would end up in the service's log. A probe's stderr (svprobe's
        // one-line reason) is captured for the sidecar; a check's goes where
        // supervise's own warnings go.
        let mut opts = SpawnOptions {
            setsid: true,
            stdout_null: true,
            ..SpawnOptions::default()
        };
        let err_pipe = match aux {
            Aux::Probe => cloexec_pipe().ok(),
            Aux::Check => None,
        };
        opts.stderr_fd = err_pipe.as_ref().map(|(_, w)| w.as_raw_fd());
        match proc::spawn(&prepared, &opts) {
            Ok(pid) => {
                // The write end lives on only in the probe.
                self.probe_err = err_pipe.map(|(r, _w)| (pid, r));
                Event::AuxSpawned { aux, pid }
            }
            Err(e) => {
                errstr::warn(
                    PROG,
                    &format!(
                        "unable to fork for {} {what}: {}",
                        self.dir,
                        errstr::io_str(&e)
                    ),
                );
                Event::AuxFailed { aux }
            }
        }
    }

    /// Forks `./run` with the current settings; returns the event to feed back.
    fn spawn_run(&mut self, st: &mut State) -> Event {
        self.reload_settings(st);
        let mut opts = SpawnOptions {
            setsid: st.config.process_group,
            notify_fd: None,
            cgroup_procs: None,
            stdout_null: false,
            stderr_fd: None,
        };
        // cgroup v2: the child joins it itself before exec (no race with its forks).
        // The descriptor only has to live until the fork is done.
        let procs = if st.config.cgroup {
            self.service_cgroup().and_then(|cg| cg.procs_file().ok())
        } else {
            None
        };
        opts.cgroup_procs = procs.as_ref().map(|f| f.as_raw_fd());
        // s6's notification-fd: a pipe whose write end becomes fd N in run.
        let mut pipe_ends: Option<(File, File)> = None;
        if let Some(n) = st.config.notify_fd {
            let mut fds = [0; 2];
            // SAFETY: pipe2 with a valid two-element array; both ends close-on-exec.
            let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
            if r == 0 {
                // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
                let (rd, wr) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
                opts.notify_fd = Some((n, wr.as_raw_fd()));
                pipe_ends = Some((rd, wr));
            } else {
                errstr::warn(
                    PROG,
                    &format!(
                        "unable to create notification pipe for {}: {}",
                        self.dir,
                        errstr::io_str(&io::Error::last_os_error())
                    ),
                );
            }
        }
        match proc::spawn(&self.run, &opts) {
            Ok(pid) => {
                // The write end lives on only in the child.
                self.notify = pipe_ends.map(|(rd, _wr)| (pid, rd));
                Event::Spawned { pid }
            }
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
        }
    }

    /// Forks `./finish EXITCODE SIGNAL NAME` with s6's arguments: EXITCODE is 256 when
    /// run was killed by a signal, SIGNAL the signal number or 0 (REFERENCE.md §11.1).
    fn spawn_finish(&mut self, st: &State, wstatus: i32) -> Event {
        // With the service dir unchanged since the settings were read, whether `finish`
        // exists is known without a look (and the look at the dir is shared with the
        // settings check of the restart that follows).
        let cached = self.deferred.settings.as_ref().and_then(|f| {
            let same = f.dir_unchanged();
            self.deferred.dir_unchanged = Some(same);
            same.then_some(f.finish)
        });
        let exists = cached.unwrap_or_else(|| std::fs::symlink_metadata(FINISH).is_ok());
        if !exists {
            return Event::FinishSkipped;
        }
        // Not a restart: finish may read `deaths` and wait on `event/`, so they are
        // brought up to date before it starts, as before the fork-first change.
        self.flush(st);
        let (code, sig) = match (proc::exit_code(wstatus), proc::term_signal(wstatus)) {
            (Some(c), _) => (c, 0),
            (None, Some(s)) => (256, s),
            (None, None) => (256, 0),
        };
        let (code, sig) = (code.to_string(), sig.to_string());
        let prepared = match Prepared::new(
            &[FINISH_PATH, &code, &sig, &self.name],
            &format!("supervise: fatal: unable to start {}/{FINISH}: ", self.dir),
        ) {
            Ok(p) => p,
            Err(_) => return Event::FinishSkipped,
        };
        match proc::spawn(&prepared, &SpawnOptions::default()) {
            Ok(pid) => Event::FinishSpawned { pid },
            Err(e) => {
                errstr::warn(
                    PROG,
                    &format!(
                        "unable to fork for {}/{FINISH}: {}",
                        self.dir,
                        errstr::io_str(&e)
                    ),
                );
                Event::FinishSkipped
            }
        }
    }

    /// Publishes `supervise/status.ext` (after the status it describes).
    /// A failure is said once (not at every event, which on a full disk under a junk
    /// flood would be a flood of warnings) and retried at the next wakeup.
    pub fn write_ext(&mut self, st: &State) {
        let text = sidecar::encode(&st.ext(self.self_pid));
        if !self.ext_failing && self.deferred.ext_written.as_deref() == Some(text.as_str()) {
            self.ext_dirty = false;
            return;
        }
        let r = sidecar::write_atomic(
            Path::new("."),
            sidecar::STATUS_EXT_NEW,
            sidecar::STATUS_EXT,
            text.as_bytes(),
        );
        match r {
            Ok(()) => {
                self.ext_dirty = false;
                self.ext_failing = false;
                self.deferred.ext_written = Some(text);
            }
            Err(e) => {
                if !self.ext_failing {
                    errstr::warn(
                        PROG,
                        &format!(
                            "unable to write {}/{}: {}",
                            self.dir,
                            sidecar::STATUS_EXT,
                            errstr::io_str(&e)
                        ),
                    );
                }
                self.ext_failing = true;
                self.ext_dirty = true;
            }
        }
    }

    /// Rewrites `deaths` from the history (a failure is a warning; the next death
    /// rewrites it again).
    fn write_deaths(&mut self, st: &State) {
        self.deferred.deaths = false;
        if let Err(e) = sidecar::write_deaths(Path::new("."), &st.history) {
            errstr::warn(
                PROG,
                &format!(
                    "unable to write {}/{}: {}",
                    self.dir,
                    sidecar::DEATHS,
                    errstr::io_str(&e)
                ),
            );
        }
    }

    /// Queues an `event/` byte; a full batch is sent at once, in order.
    fn defer_event(&mut self, b: u8) {
        let d = &mut self.deferred;
        if d.n_events == EVENT_BATCH {
            notify_event_dir(&d.events[..d.n_events], &mut d.event_idle);
            d.n_events = 0;
        }
        d.events[d.n_events] = b;
        d.n_events += 1;
    }

    /// True when there is deferred work to do before blocking.
    fn pending(&self) -> bool {
        self.ext_dirty || self.deferred.deaths || self.deferred.n_events > 0
    }

    /// Does the deferred work: the sidecars first (so a listener woken by an `event/`
    /// byte finds them current), `deaths` before `status.ext` (a reader that saw a death
    /// counted in `status.ext` finds it in `deaths`, as before the deferral), then the
    /// `event/` bytes in one scan.
    pub fn flush(&mut self, st: &State) {
        if self.deferred.deaths {
            self.write_deaths(st);
        }
        if self.ext_dirty {
            self.write_ext(st);
        }
        let d = &mut self.deferred;
        if d.n_events > 0 {
            notify_event_dir(&d.events[..d.n_events], &mut d.event_idle);
            d.n_events = 0;
        }
    }

    /// When `pid` is the health probe of the current run: publishes why it failed (the
    /// first line of its stderr, else its exit code or signal) and says so on stderr,
    /// or clears the message when it passed. Data only; the decision is the state's.
    fn probe_reaped(&mut self, st: &mut State, pid: u32, wstatus: i32) {
        let Some((ppid, mut err)) = self.probe_err.take() else {
            return;
        };
        if ppid != pid {
            self.probe_err = Some((ppid, err));
            return;
        }
        let Some(run) = st.probe.running.filter(|r| r.pid == pid) else {
            return;
        };
        if run.for_pid != st.pid || st.pid == 0 {
            return;
        }
        // kill_at is pushed to the end of time once the timeout KILL has been sent.
        let timed_out = run.kill_at == Millis::MAX;
        if proc::exit_code(wstatus) == Some(0) {
            st.health_message = None;
            return;
        }
        let mut buf = [0u8; 256];
        let n = err.read(&mut buf).unwrap_or(0);
        let said = String::from_utf8_lossy(&buf[..n]);
        let line = said.lines().map(str::trim).find(|l| !l.is_empty());
        let msg = match (line, proc::exit_code(wstatus), proc::term_signal(wstatus)) {
            (Some(l), _, _) => l.to_string(),
            (None, _, _) if timed_out => "timed out".to_string(),
            (None, Some(c), _) => format!("exit {c}"),
            (None, None, Some(sig)) => format!("signal {sig}"),
            (None, None, None) => format!("wait status {wstatus}"),
        };
        errstr::warn(PROG, &format!("health probe of {} failed: {msg}", self.dir));
        st.health_message = Some(msg);
    }

    /// Reads run's notification pipe: a newline means ready; EOF closes it.
    fn read_notify(&mut self, st: &mut State) -> bool {
        let Some((pid, f)) = self.notify.as_mut() else {
            return false;
        };
        let pid = *pid;
        let mut buf = [0u8; 64];
        match f.read(&mut buf) {
            Ok(0) => {
                self.notify = None;
                false
            }
            Ok(n) => {
                if buf[..n].contains(&b'\n') {
                    // s6 closes the fd after the first newline; later writes by run get
                    // EPIPE, as under s6.
                    self.notify = None;
                    return self.dispatch(st, Event::Ready { pid });
                }
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(_) => {
                self.notify = None;
                false
            }
        }
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
            // A notification pipe of a run that has died is of no use any more.
            if self.notify.as_ref().is_some_and(|(pid, _)| *pid != st.pid) {
                self.notify = None;
            }
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
                // A negative fd is ignored by poll: slots for features not in use.
                libc::pollfd {
                    fd: self.notify.as_ref().map_or(-1, |(_, f)| f.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.notify_socket.as_ref().map_or(-1, NotifySocket::fd),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let nfds: libc::nfds_t = if self.notify_socket.is_some() {
                4
            } else if self.notify.is_some() {
                3
            } else {
                2
            };
            // Deferred work waits until nothing is pending (poll without blocking, or a
            // little longer right after a signal meant to end run), unless a flood keeps
            // every wakeup busy.
            let pending = self.pending();
            let wait = if pending && self.deferred.busy < MAX_BUSY_WAKEUPS {
                let grace = if self.deferred.kill_grace {
                    KILL_GRACE_MS
                } else {
                    0
                };
                if timeout < 0 {
                    grace
                } else {
                    timeout.min(grace)
                }
            } else {
                if pending {
                    self.flush(st);
                    self.deferred.busy = 0;
                }
                timeout
            };
            self.deferred.kill_grace = false;
            // What was true of the service dir before this wakeup may not be any more.
            self.deferred.dir_unchanged = None;
            // SAFETY: poll on an array of initialised pollfd structs we own; nfds <= 4.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), nfds, wait) };
            if pending {
                if r == 0 {
                    // Nothing pending: do the deferred work, then block for real unless
                    // a deadline is due.
                    self.flush(st);
                    self.deferred.busy = 0;
                    let now = self.now().mono;
                    if deadline.is_none_or(|d| d > now) {
                        continue;
                    }
                } else {
                    self.deferred.busy += 1;
                }
            }
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

            // 1. Drain the self-pipe, and 2. reap every dead child: only when SIGCHLD
            // wrote to it (the handler writes before the loop can see the death), so a
            // control byte costs no futile read and waitpid.
            if fds[0].revents != 0 {
                self.selfpipe.drain();
                while let Some((pid, wstatus)) = proc::reap() {
                    self.probe_reaped(st, pid, wstatus);
                    if self.dispatch(st, Event::ChildExited { pid, wstatus }) {
                        return errstr::EXIT_OK;
                    }
                }
            }

            // 3. Control bytes, byte by byte, up to CHUNKS_PER_WAKEUP chunks: a flood
            // then costs one status.ext write per 1024 bytes, not per 64, while the stack
            // buffer stays small (memory target).
            if fds[1].revents & libc::POLLIN != 0 {
                for _ in 0..CHUNKS_PER_WAKEUP {
                    match self.control.read(&mut buf) {
                        Ok(n) => {
                            for &b in &buf[..n] {
                                if self.dispatch(st, Event::Control(b)) {
                                    return errstr::EXIT_OK;
                                }
                            }
                            if n < CHUNK {
                                break;
                            }
                        }
                        // EAGAIN (drained) or EINTR: poll tells us when there is more.
                        Err(_) => break,
                    }
                }
            }

            // Readiness reports from run.
            if fds[2].revents != 0 && self.read_notify(st) {
                return errstr::EXIT_OK;
            }
            if fds[3].revents != 0 && self.read_notify_socket(st) {
                return errstr::EXIT_OK;
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

/// A pipe, both ends close-on-exec, the read end non-blocking: (read, write).
fn cloexec_pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 with a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(r.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    Ok((r, w))
}

/// Adds the search bits for group and others to `dir` (for the notify socket).
fn allow_search(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(dir) {
        let mode = m.permissions().mode();
        if mode & 0o011 != 0o011 {
            let _ = std::fs::set_permissions(
                dir,
                std::fs::Permissions::from_mode((mode | 0o011) & 0o7777),
            );
        }
    }
}

/// s6's event fifodir (REFERENCE.md §11.5): created at startup, mode 3730.
pub const EVENT_DIR: &str = "event";

/// Creates `event/` (mode 3730, like s6) if it does not exist yet; never fatal.
pub fn make_event_dir() {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o3730);
    if b.create(EVENT_DIR).is_ok() {
        // mkdir ignores the setgid bit and applies the umask; set the mode s6 uses.
        let _ = std::fs::set_permissions(EVENT_DIR, std::fs::Permissions::from_mode(0o3730));
    }
}

/// Writes `bytes` to every FIFO in `event/`, without blocking; FIFOs that nobody reads
/// any more are removed (s6's ftrig protocol, REFERENCE.md §11.5).
///
/// Lists the directory with `getdents64` into a small stack buffer instead of
/// `read_dir`: glibc's `opendir` mallocs a 32 KiB buffer, and the heap pages it dirties
/// stay charged to an idle supervise (the memory target of issue 2).
///
/// `idle` remembers `event/`'s identity (inode, mtime, ctime) when a scan found no
/// listener at all, and the scan is skipped while it is unchanged: a listener creates its
/// FIFO under a dot name and renames it, which changes the directory's mtime. The
/// identity is not remembered when a dot-named FIFO was seen (a listener mid-setup) or
/// when the stamp is too recent to be told apart from a later change in the same tick.
pub fn notify_event_dir(bytes: &[u8], idle: &mut Option<[i64; 4]>) {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let ident = std::fs::metadata(EVENT_DIR)
        .ok()
        .map(|m| [m.ino() as i64, m.mtime(), m.mtime_nsec(), m.ctime()]);
    if ident.is_some() && *idle == ident {
        return;
    }
    *idle = None;
    let mut listeners = false;
    let Ok(dir) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(EVENT_DIR)
    else {
        return;
    };
    let dfd = dir.as_raw_fd();
    // u64 elements: getdents64 records are 8-byte aligned within an aligned buffer.
    let mut buf = [0u64; 64];
    loop {
        // SAFETY: getdents64 writes at most the given number of bytes into `buf`, which
        // we own; `dfd` is an open directory for the whole call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dfd,
                buf.as_mut_ptr().cast::<u8>(),
                std::mem::size_of_val(&buf),
            )
        };
        if n <= 0 {
            break;
        }
        let n = n as usize;
        // SAFETY: the first n bytes of buf were just written by the kernel.
        let ents = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        let mut off = 0;
        // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
        while off + 19 < n {
            let reclen = usize::from(u16::from_ne_bytes([ents[off + 16], ents[off + 17]]));
            if reclen == 0 || off + reclen > n {
                return;
            }
            let d_type = ents[off + 18];
            let name = &ents[off + 19..off + reclen];
            off += reclen;
            let dot = name.first() == Some(&b'.');
            if d_type != libc::DT_FIFO && d_type != libc::DT_UNKNOWN {
                continue;
            }
            // `.` and `..` are DT_DIR; a dot-named FIFO is a listener being set up.
            listeners = true;
            // Listeners create dot names first and rename them when ready.
            if dot || name.first() == Some(&0) {
                continue;
            }
            signal_fifo(dfd, name.as_ptr().cast(), bytes);
        }
    }
    if !listeners {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // ident[1] is the mtime, ident[3] the ctime (seconds).
        if ident.is_some_and(|i| i[1].max(i[3]) < now - 2) {
            *idle = ident;
        }
    }
}

/// True for a signal that normally ends run: the ones `t`, `k`, `d`, `i`, `a`, `q` send
/// and the service's `down-signal`.
fn ends_run(sig: i32, down_signal: i32) -> bool {
    sig == down_signal
        || matches!(
            sig,
            libc::SIGTERM | libc::SIGKILL | libc::SIGINT | libc::SIGALRM | libc::SIGQUIT
        )
}

/// Opens the FIFO `name` (NUL-terminated, relative to `dfd`) without blocking and writes
/// `bytes`; removes it when nobody reads it (ENXIO). Anything not a FIFO is left alone.
fn signal_fifo(dfd: i32, name: *const libc::c_char, bytes: &[u8]) {
    // SAFETY: `name` points at a NUL-terminated d_name inside the caller's buffer, alive
    // for this call; openat/fstat/write/unlinkat/close are plain system calls on fds we
    // own.
    unsafe {
        let fd = libc::openat(
            dfd,
            name,
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
        );
        if fd < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                libc::unlinkat(dfd, name, 0);
            }
            return;
        }
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO {
            // A full FIFO (EAGAIN) drops the bytes, as in s6. Up to PIPE_BUF bytes are
            // written atomically.
            libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        }
        libc::close(fd);
    }
}
