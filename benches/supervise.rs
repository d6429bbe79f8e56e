//! supervise benchmark: our supervise against Debian's daemontools 0.76, side by side in
//! one run (issue 2, "A benchmark" under Proof). Not a test: it prints a results table.
//!
//! Run: `cargo bench --bench supervise` (release profile). Knobs, from the environment:
//! `SVBENCH_ROUNDS` (latency samples per metric, default 30), `SVBENCH_IDLE_SECS`
//! (length of the idle window, default 60) and `SVBENCH_EXTRA=[LABEL=]PATH[;...]` (more
//! columns: other supervise binaries, for example builds with other link settings).
//!
//! Three columns, each a set of supervise processes in their own temp service dirs:
//! `daemontools` (`/usr/bin/supervise`, `/usr/bin/svc`), `ours` (this build's
//! `supervise`, `svc`, on a plain 0.76-style service dir) and `ours+ready` (the same
//! binaries on a service with s6's `notification-fd`, so readiness and the death history
//! are exercised: REFERENCE.md §11.2, §12.4).
//!
//! Every run script is `echo $$` (to supervise's stdout, a pipe this program reads: the
//! line is the moment the new child runs) then `read x <trigger` (a FIFO this program
//! holds open read-write, so the child blocks until we write a newline, and exits).
//!
//! What is measured, per column:
//! 1. `svc -t` until the new child runs: the byte written straight to
//!    `supervise/control` (so svc's own startup is excluded), and through the svc
//!    binary. The child has lived more than 1 s, so the start-to-start floor of
//!    REFERENCE.md §4 never applies. For the direct byte, also until `status` shows the
//!    new pid (inotify IN_MOVED_TO on `supervise/`, then a read of `status`): supervise's
//!    own part, without the new `/bin/sh` starting.
//! 2. The child's exit (we write its trigger) until the next child runs, and until
//!    `status` shows the new pid.
//! 3. supervise's CPU per respawn: `/proc/PID/schedstat` (ns on CPU) of the supervise
//!    behind measurement 2, before and after all rounds, divided by the respawns.
//! 4. Private_Dirty and Pss_Anon (`/proc/PID/smaps_rollup`) of an idle supervise, with
//!    a per-mapping breakdown of Private_Dirty from `/proc/PID/smaps`.
//! 5. Wakeups of an idle supervise: voluntary + nonvoluntary context switches
//!    (`/proc/PID/status`) over the idle window. The idle supervises run during the
//!    latency rounds, which never touch them, so the bench takes about max(rounds,
//!    idle window) rather than their sum.

use anyhow::{Context, Result, anyhow, bail};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any single expected event may take before the bench gives up.
const DEADLINE: Duration = Duration::from_secs(10);
/// How long a child must have run before it is killed: more than the 1 s start-to-start
/// floor (REFERENCE.md §4), with margin for the time between fork and our reading its pid.
const MIN_AGE: Duration = Duration::from_millis(1150);
/// Settling time after an idle supervise's child started, before the wakeup baseline:
/// daemontools sleeps 1 s after each fork (REFERENCE.md §4), which is not idleness.
const IDLE_SETTLE: Duration = Duration::from_millis(1500);

/// The run script of every service (see the module doc).
const RUN: &str = "#!/bin/sh\necho $$\nread x <../trigger\nexit 0\n";
/// The run script of the readiness column: also announces readiness on fd 3.
const RUN_READY: &str = "#!/bin/sh\necho $$\necho >&3\nread x <../trigger\nexit 0\n";

/// One column of the table: which supervise and svc, and how the service dir looks.
#[derive(Clone)]
struct Column {
    label: String,
    supervise: PathBuf,
    svc: PathBuf,
    ready: bool,
}

/// daemontools, ours, ours+ready, and optionally `SVBENCH_EXTRA=[LABEL=]PATH[;...]`:
/// other supervise binaries (for example builds with other settings) on plain service
/// dirs, driven by the svc beside them if there is one, else by our svc.
fn columns() -> Vec<Column> {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_supervise"));
    let our_svc = PathBuf::from(env!("CARGO_BIN_EXE_svc"));
    let mut v = vec![
        Column {
            label: "daemontools".into(),
            supervise: "/usr/bin/supervise".into(),
            svc: "/usr/bin/svc".into(),
            ready: false,
        },
        Column {
            label: "ours".into(),
            supervise: ours.clone(),
            svc: our_svc.clone(),
            ready: false,
        },
        Column {
            label: "ours+ready".into(),
            supervise: ours,
            svc: our_svc.clone(),
            ready: true,
        },
    ];
    let extras = std::env::var("SVBENCH_EXTRA").unwrap_or_default();
    for extra in extras.split(';').filter(|e| !e.is_empty()) {
        let (label, path) = match extra.split_once('=') {
            Some((l, p)) => (l.to_string(), p.to_string()),
            None => ("extra".to_string(), extra.to_string()),
        };
        // A build directory with its own svc (`cargo build-static` makes both): drive
        // that supervise with that svc, so the "svc binary" row measures the pair.
        let supervise = PathBuf::from(path);
        let beside = supervise.with_file_name("svc");
        let svc = if beside.is_file() {
            beside
        } else {
            our_svc.clone()
        };
        v.push(Column {
            label,
            supervise,
            svc,
            ready: false,
        });
    }
    v
}

/// One supervise process on its own service dir, with the pipe its children print on.
struct Instance {
    /// `<root>/svc`, the service dir given to supervise.
    dir: PathBuf,
    label: String,
    svc: PathBuf,
    child: Child,
    /// Read end of supervise's stdout (the run scripts' `echo $$`).
    out: File,
    /// Bytes read from `out` but not yet consumed as a line.
    pending: Vec<u8>,
    /// `supervise/control`, open for writing (non-blocking), kept open.
    control: File,
    /// The service's trigger FIFO, open read-write so opening it never blocks.
    trigger: File,
    /// inotify on `supervise/` (IN_MOVED_TO): wakes us when `status` is replaced.
    watch: File,
    /// Pid of the current `./run` and when we saw it start.
    run_pid: u32,
    run_seen: Instant,
}

/// When a restart became visible: `status` carrying the new pid (what svstat shows),
/// and the new run script running (its pid line read).
struct Seen {
    status: Instant,
    child: Instant,
}

impl Instance {
    /// Creates `<root>/<name>/svc` for `col` and starts supervise on it, in its own
    /// process group; returns once the first child has printed its pid.
    fn start(root: &Path, name: &str, col: &Column) -> Result<Instance> {
        let base = root.join(name);
        let dir = base.join("svc");
        fs::create_dir_all(&dir)?;
        let run = dir.join("run");
        fs::write(&run, if col.ready { RUN_READY } else { RUN })?;
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755))?;
        if col.ready {
            fs::write(dir.join("notification-fd"), "3\n")?;
        }
        let trigger_path = base.join("trigger");
        mkfifo(&trigger_path)?;
        let trigger = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&trigger_path)
            .with_context(|| format!("open {}", trigger_path.display()))?;

        let (out, out_w) = pipe()?;
        let err = File::create(base.join("supervise.err"))?;
        let mut cmd = Command::new(&col.supervise);
        cmd.arg(&dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", col.supervise.display()))?;

        let control_path = dir.join("supervise/control");
        let deadline = Instant::now() + DEADLINE;
        // supervise creates control at startup; a writer's open fails with ENXIO (no
        // reader yet) or ENOENT until then.
        let control = loop {
            match OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&control_path)
            {
                Ok(f) => break f,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(e).context(format!("open {}", control_path.display())),
            }
        };
        // SAFETY: inotify_init1 has no memory-safety preconditions.
        let wfd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if wfd < 0 {
            return Err(std::io::Error::last_os_error()).context("inotify_init1");
        }
        // SAFETY: inotify_init1 just returned this descriptor, owned by nobody else.
        let watch = unsafe { File::from_raw_fd(wfd) };
        let sup = std::ffi::CString::new(dir.join("supervise").as_os_str().as_encoded_bytes())?;
        // SAFETY: valid inotify fd and NUL-terminated path, for the duration of the call.
        if unsafe { libc::inotify_add_watch(wfd, sup.as_ptr(), libc::IN_MOVED_TO) } < 0 {
            return Err(std::io::Error::last_os_error()).context("inotify_add_watch");
        }
        let mut inst = Instance {
            dir,
            label: format!("{} ({name})", col.label),
            svc: col.svc.clone(),
            child,
            out,
            pending: Vec::new(),
            control,
            trigger,
            watch,
            run_pid: 0,
            run_seen: Instant::now(),
        };
        inst.next_start()?;
        Ok(inst)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pid in `supervise/status` (bytes 12-15, little-endian; REFERENCE.md section 3).
    fn status_pid(&self) -> Option<u32> {
        let b = fs::read(self.dir.join("supervise/status")).ok()?;
        let p: [u8; 4] = b.get(12..16)?.try_into().ok()?;
        Some(u32::from_le_bytes(p))
    }

    /// Discards queued inotify events (earlier status rewrites).
    fn drain_watch(&mut self) {
        let mut buf = [0u8; 4096];
        while matches!(self.watch.read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Takes one complete pid line from `pending`, if there is one.
    fn take_line(&mut self) -> Result<Option<u32>> {
        let Some(i) = self.pending.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line: Vec<u8> = self.pending.drain(..=i).collect();
        let text = String::from_utf8_lossy(&line);
        let pid: u32 = text
            .trim()
            .parse()
            .with_context(|| format!("{}: bad line {text:?}", self.label))?;
        if pid == self.run_pid {
            bail!("{}: the same pid {pid} started twice", self.label);
        }
        Ok(Some(pid))
    }

    /// Waits, on both the stdout pipe and the inotify watch at once, until the next run
    /// script has printed its pid and `status` carries a new nonzero pid; records the
    /// new child. `old` is the pid status showed before the restart was caused.
    fn observe(&mut self, old: u32) -> Result<Seen> {
        let deadline = Instant::now() + DEADLINE;
        let mut child: Option<Instant> = None;
        let mut status: Option<Instant> = None;
        loop {
            if child.is_none() {
                if let Some(pid) = self.take_line()? {
                    let now = Instant::now();
                    self.run_pid = pid;
                    self.run_seen = now;
                    child = Some(now);
                }
            }
            if let (Some(c), Some(s)) = (child, status) {
                return Ok(Seen {
                    status: s,
                    child: c,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{}: no restart seen within {DEADLINE:?} (child line: {}, status: {}); supervise's stderr: {}",
                    self.label,
                    child.is_some(),
                    status.is_some(),
                    self.stderr()
                );
            }
            let mut pfd = [
                libc::pollfd {
                    fd: self.out.as_raw_fd(),
                    events: if child.is_none() { libc::POLLIN } else { 0 },
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.watch.as_raw_fd(),
                    events: if status.is_none() { libc::POLLIN } else { 0 },
                    revents: 0,
                },
            ];
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: two valid pollfds, count 2, for the duration of the call.
            let n = unsafe { libc::poll(pfd.as_mut_ptr(), 2, ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("poll");
            }
            if pfd[0].revents != 0 {
                let mut buf = [0u8; 256];
                let got = self.out.read(&mut buf)?;
                if got == 0 {
                    bail!(
                        "{}: supervise's stdout closed: {}",
                        self.label,
                        self.stderr()
                    );
                }
                self.pending.extend_from_slice(&buf[..got]);
            }
            if pfd[1].revents != 0 {
                let now = Instant::now();
                self.drain_watch();
                // status.new was renamed over status: is this the start's rewrite?
                if matches!(self.status_pid(), Some(p) if p != 0 && p != old) {
                    status = Some(now);
                }
            }
        }
    }

    /// Blocks until the first run script prints its pid and status shows it.
    fn next_start(&mut self) -> Result<Instant> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(p) = self.status_pid() {
                if p != 0 {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: status never showed a pid: {}",
                    self.label,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(pid) = self.take_line()? {
                self.run_pid = pid;
                self.run_seen = Instant::now();
                return Ok(self.run_seen);
            }
            if Instant::now() > deadline {
                bail!("{}: no pid line from run: {}", self.label, self.stderr());
            }
            let mut pfd = libc::pollfd {
                fd: self.out.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, count 1, for the duration of the call.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            let mut buf = [0u8; 256];
            match self.out.read(&mut buf) {
                Ok(0) => bail!("{}: supervise's stdout closed", self.label),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e).context("read"),
            }
        }
    }

    /// Sleeps until the current child is older than [`MIN_AGE`].
    fn wait_age(&self) {
        let age = self.run_seen.elapsed();
        if age < MIN_AGE {
            std::thread::sleep(MIN_AGE - age);
        }
    }

    /// `t` written straight to `supervise/control`, until the restart is seen.
    fn lat_control(&mut self) -> Result<(Duration, Duration)> {
        self.wait_age();
        self.drain_watch();
        let old = self.run_pid;
        let t0 = Instant::now();
        self.control.write_all(b"t")?;
        let seen = self.observe(old)?;
        Ok((seen.status - t0, seen.child - t0))
    }

    /// `svc -t DIR` (the binary), until the new child runs.
    fn lat_svc(&mut self) -> Result<Duration> {
        self.wait_age();
        self.drain_watch();
        let old = self.run_pid;
        let t0 = Instant::now();
        let mut svc = Command::new(&self.svc)
            .arg("-t")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {}", self.svc.display()))?;
        let seen = self.observe(old);
        let st = svc.wait()?;
        if !st.success() {
            bail!("{}: {} -t exited {st}", self.label, self.svc.display());
        }
        Ok(seen?.child - t0)
    }

    /// The child's exit (its trigger written), until the restart is seen.
    fn lat_exit(&mut self) -> Result<(Duration, Duration)> {
        self.wait_age();
        self.drain_watch();
        let old = self.run_pid;
        let t0 = Instant::now();
        self.trigger.write_all(b"\n")?;
        let seen = self.observe(old)?;
        Ok((seen.status - t0, seen.child - t0))
    }

    fn stderr(&self) -> String {
        let p = self.dir.parent().map(|b| b.join("supervise.err"));
        p.and_then(|p| fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// `svc -dx`, then waits for supervise to exit; kills the process group if it does
    /// not within the deadline.
    fn stop(&mut self) {
        let _ = self.control.write_all(b"dx");
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: plain kill(2) on the process group we created for this supervise.
        unsafe { libc::kill(-(self.pid() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

fn mkfifo(path: &Path) -> Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: c is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error()).context(format!("mkfifo {}", path.display()));
    }
    Ok(())
}

/// A pipe, both ends close-on-exec (Command dup2s the write end onto the child's fd 1).
fn pipe() -> Result<(File, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// ns on CPU so far (first field of `/proc/PID/schedstat`); falls back to utime+stime
/// from `/proc/PID/stat` in clock ticks when schedstat is missing or reads 0.
fn cpu_ns(pid: u32) -> Result<u64> {
    if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/schedstat")) {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
        {
            if ns > 0 {
                return Ok(ns);
            }
        }
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised comm; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("bad /proc/{pid}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(ticks * 1_000_000_000 / hz)
}

/// voluntary + nonvoluntary context switches so far.
fn ctxt_switches(pid: u32) -> Result<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut total = 0;
    for line in s.lines() {
        if let Some(v) = line
            .strip_prefix("voluntary_ctxt_switches:")
            .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        {
            total += v.trim().parse::<u64>()?;
        }
    }
    Ok(total)
}

/// A `Key:   N kB` field of `/proc/PID/smaps_rollup`, in KiB.
fn rollup_kib(pid: u32, key: &str) -> Result<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    for line in s.lines() {
        if let Some(v) = line.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
            let n = v.trim().trim_end_matches("kB").trim();
            return Ok(n.parse()?);
        }
    }
    bail!("no {key} in /proc/{pid}/smaps_rollup")
}

/// Private_Dirty per mapping (KiB), named by file basename or `[heap]`/`[stack]`/`anon`,
/// with the permission bits, for the mappings that have any.
fn dirty_breakdown(pid: u32) -> Result<Vec<(String, u64)>> {
    let s = fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut out: Vec<(String, u64)> = Vec::new();
    let mut current = String::new();
    for line in s.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let f: Vec<&str> = line.split_whitespace().collect();
            let perms = f.get(1).copied().unwrap_or("");
            let name = match f.get(5) {
                Some(p) => p.rsplit('/').next().unwrap_or(p).to_string(),
                None => "anon".to_string(),
            };
            current = format!("{name} {perms}");
        } else if let Some(v) = line.strip_prefix("Private_Dirty:") {
            let kib: u64 = v.trim().trim_end_matches("kB").trim().parse()?;
            if kib > 0 {
                out.push((current.clone(), kib));
            }
        }
    }
    Ok(out)
}

/// Median and 90th percentile, in µs.
fn stats(samples: &[Duration]) -> (f64, f64) {
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How a metric is judged against daemontools' value.
#[derive(Clone, Copy)]
enum Target {
    /// ours <= factor x daemontools.
    Ratio(f64),
    /// ours <= daemontools.
    NoMore,
    /// ours == 0.
    Zero,
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::NoMore => "<= dt".to_string(),
            Target::Ratio(f) => format!("<= {f}x dt"),
            Target::Zero => "0".to_string(),
        }
    }
    fn verdict(self, dt: f64, v: f64) -> &'static str {
        let ok = match self {
            Target::Ratio(f) => v <= f * dt,
            Target::NoMore => v <= dt,
            Target::Zero => v == 0.0,
        };
        if ok { "PASS" } else { "FAIL" }
    }
}

/// One row: metric name, unit, values per column (daemontools first), target.
struct Row {
    metric: String,
    unit: &'static str,
    values: Vec<f64>,
    target: Target,
}

fn fmt_val(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn ratio(dt: f64, v: f64) -> String {
    if dt == 0.0 {
        if v == 0.0 {
            "1.00".into()
        } else {
            "inf".into()
        }
    } else {
        format!("{:.2}", v / dt)
    }
}

/// A Markdown table: for each column after daemontools its value and its ratio to
/// daemontools', then the target and a verdict per column.
fn print_table(cols: &[Column], rows: &[Row]) {
    let mut head = String::from("| metric | unit | daemontools |");
    let mut rule = String::from("|---|---|---:|");
    for c in &cols[1..] {
        head += &format!(" {} | ratio |", c.label);
        rule += "---:|---:|";
    }
    head += " target |";
    rule += "---|";
    for c in &cols[1..] {
        head += &format!(" {} |", c.label);
        rule += "---|";
    }
    println!("{head}");
    println!("{rule}");
    for r in rows {
        let dt = r.values[0];
        let mut line = format!("| {} | {} | {} |", r.metric, r.unit, fmt_val(dt));
        for v in &r.values[1..] {
            line += &format!(" {} | {} |", fmt_val(*v), ratio(dt, *v));
        }
        line += &format!(" {} |", r.target.text());
        for v in &r.values[1..] {
            line += &format!(" {} |", r.target.verdict(dt, *v));
        }
        println!("{line}");
    }
}

fn sh(cmd: &str) -> String {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is not ours to interpret.
    if let Err(e) = bench() {
        eprintln!("supervise bench: {e:#}");
        std::process::exit(1);
    }
}

fn bench() -> Result<()> {
    let cols = columns();
    let n = cols.len();
    for c in &cols {
        if !c.supervise.exists() || !c.svc.exists() {
            bail!(
                "{} or {} is missing (Debian's daemontools package provides the oracle)",
                c.supervise.display(),
                c.svc.display()
            );
        }
        // A freshly linked binary's pages are dirty in the page cache until written
        // back, and smaps counts them as Private_Dirty: flush them first.
        // Best effort: a read-only file system has nothing dirty to flush anyway.
        let _ = File::open(&c.supervise).and_then(|f| f.sync_all());
    }
    let rounds = env_num("SVBENCH_ROUNDS", 30).max(1);
    let idle_secs = env_num("SVBENCH_IDLE_SECS", 60);
    let tmp = tempfile::Builder::new().prefix("svbench.").tempdir()?;
    let root = tmp.path();

    println!("# supervise benchmark: daemontools 0.76 (Debian) vs ours");
    println!();
    println!("- date: {}", sh("date -u '+%Y-%m-%d %H:%M:%S UTC'"));
    println!("- kernel: {}", sh("uname -sr"));
    println!(
        "- cpu: {} x {}",
        sh("nproc"),
        sh("sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1")
    );
    println!(
        "- load average at start: {}",
        sh("cut -d' ' -f1-3 /proc/loadavg")
    );
    let git = concat!("git -C '", env!("CARGO_MANIFEST_DIR"), "' ");
    println!(
        "- ours: {} (commit {}, uncommitted changed files in supervise/ and crates/svcore/: {})",
        env!("CARGO_BIN_EXE_supervise"),
        sh(&format!("{git}rev-parse --short HEAD")),
        sh(&format!(
            "{git}status --short -- supervise crates/svcore | wc -l"
        )),
    );
    for c in &cols[3..] {
        println!("- {}: {}", c.label, c.supervise.display());
    }
    println!("- rounds: {rounds} (SVBENCH_ROUNDS), idle window: {idle_secs} s (SVBENCH_IDLE_SECS)");
    println!();

    // Idle supervises first, so their window overlaps the rounds.
    let mut idle: Vec<Instance> = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        idle.push(Instance::start(root, &format!("idle{i}"), c)?);
    }
    std::thread::sleep(IDLE_SETTLE);
    let idle_base: Vec<u64> = idle
        .iter()
        .map(|s| ctxt_switches(s.pid()))
        .collect::<Result<_>>()?;
    let idle_t0 = Instant::now();

    // Per column: one supervise for `t` via control, one for `svc -t`, one for exits.
    let mut ctl: Vec<Instance> = Vec::new();
    let mut bin: Vec<Instance> = Vec::new();
    let mut ext: Vec<Instance> = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        ctl.push(Instance::start(root, &format!("ctl{i}"), c)?);
        bin.push(Instance::start(root, &format!("bin{i}"), c)?);
        ext.push(Instance::start(root, &format!("exit{i}"), c)?);
    }
    let cpu0_ext: Vec<u64> = ext.iter().map(|s| cpu_ns(s.pid())).collect::<Result<_>>()?;
    let cpu0_ctl: Vec<u64> = ctl.iter().map(|s| cpu_ns(s.pid())).collect::<Result<_>>()?;

    let mut lat_ctl: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut lat_ctl_st: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut lat_bin: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut lat_ext: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut lat_ext_st: Vec<Vec<Duration>> = vec![Vec::new(); n];
    for round in 0..rounds as usize {
        // Rotate which column goes first, so none is always measured right after a wait.
        for k in 0..n {
            let i = (round + k) % n;
            let (st, ch) = ctl[i].lat_control()?;
            lat_ctl_st[i].push(st);
            lat_ctl[i].push(ch);
            lat_bin[i].push(bin[i].lat_svc()?);
            let (st, ch) = ext[i].lat_exit()?;
            lat_ext_st[i].push(st);
            lat_ext[i].push(ch);
        }
        eprint!("\rround {}/{rounds}", round + 1);
    }
    eprintln!();
    let cpu1_ext: Vec<u64> = ext.iter().map(|s| cpu_ns(s.pid())).collect::<Result<_>>()?;
    let cpu1_ctl: Vec<u64> = ctl.iter().map(|s| cpu_ns(s.pid())).collect::<Result<_>>()?;

    let left = Duration::from_secs(idle_secs).saturating_sub(idle_t0.elapsed());
    if !left.is_zero() {
        eprintln!(
            "waiting {:.0} s more for the idle window",
            left.as_secs_f64()
        );
        std::thread::sleep(left);
    }
    let idle_secs_real = idle_t0.elapsed().as_secs_f64();
    let mut wake = Vec::new();
    let mut dirty = Vec::new();
    let mut anon = Vec::new();
    let mut busy_dirty = Vec::new();
    for i in 0..n {
        wake.push(ctxt_switches(idle[i].pid())?.saturating_sub(idle_base[i]) as f64);
        dirty.push(rollup_kib(idle[i].pid(), "Private_Dirty")? as f64);
        anon.push(rollup_kib(idle[i].pid(), "Pss_Anon")? as f64);
        busy_dirty.push(rollup_kib(ext[i].pid(), "Private_Dirty")? as f64);
    }

    let mut rows = Vec::new();
    let lat_rows: [(&str, &[Vec<Duration>]); 5] = [
        (
            "svc -t -> status shows new pid (byte to control)",
            &lat_ctl_st,
        ),
        ("svc -t -> new child runs (byte to control)", &lat_ctl),
        ("svc -t -> new child runs (svc binary)", &lat_bin),
        ("child exit -> status shows new pid", &lat_ext_st),
        ("child exit -> next child runs", &lat_ext),
    ];
    for (name, lat) in lat_rows {
        let s: Vec<(f64, f64)> = lat.iter().map(|v| stats(v)).collect();
        rows.push(Row {
            metric: format!("{name}, median"),
            unit: "µs",
            values: s.iter().map(|x| x.0).collect(),
            target: Target::Ratio(0.9),
        });
        rows.push(Row {
            metric: format!("{name}, p90"),
            unit: "µs",
            values: s.iter().map(|x| x.1).collect(),
            target: Target::Ratio(0.9),
        });
    }
    let per = |a: &[u64], b: &[u64], i: usize| {
        (b[i].saturating_sub(a[i])) as f64 / rounds as f64 / 1000.0
    };
    rows.push(Row {
        metric: "supervise CPU per respawn (child exit)".into(),
        unit: "µs",
        values: (0..n).map(|i| per(&cpu0_ext, &cpu1_ext, i)).collect(),
        target: Target::Ratio(0.5),
    });
    rows.push(Row {
        metric: "supervise CPU per respawn (svc -t)".into(),
        unit: "µs",
        values: (0..n).map(|i| per(&cpu0_ctl, &cpu1_ctl, i)).collect(),
        target: Target::Ratio(0.5),
    });
    rows.push(Row {
        metric: "idle Private_Dirty".into(),
        unit: "KiB",
        values: dirty,
        target: Target::NoMore,
    });
    rows.push(Row {
        metric: "idle Pss_Anon".into(),
        unit: "KiB",
        values: anon,
        target: Target::NoMore,
    });
    rows.push(Row {
        metric: format!("Private_Dirty after {rounds} respawns"),
        unit: "KiB",
        values: busy_dirty,
        target: Target::NoMore,
    });
    rows.push(Row {
        metric: format!("idle wakeups in {idle_secs_real:.0} s"),
        unit: "ctxsw",
        values: wake,
        target: Target::Zero,
    });
    print_table(&cols, &rows);

    println!();
    println!("## Private_Dirty of the idle supervise, by mapping (KiB)");
    println!();
    for (i, c) in cols.iter().enumerate() {
        let parts = dirty_breakdown(idle[i].pid())?;
        let list: Vec<String> = parts.iter().map(|(n, k)| format!("{n} {k}")).collect();
        println!("- {}: {}", c.label, list.join(", "));
    }
    println!();
    println!("## Private_Dirty after {rounds} respawns, by mapping (KiB)");
    println!();
    for (i, c) in cols.iter().enumerate() {
        let parts = dirty_breakdown(ext[i].pid())?;
        let list: Vec<String> = parts.iter().map(|(n, k)| format!("{n} {k}")).collect();
        println!("- {}: {}", c.label, list.join(", "));
    }

    for s in idle
        .iter_mut()
        .chain(ctl.iter_mut())
        .chain(bin.iter_mut())
        .chain(ext.iter_mut())
    {
        s.stop();
    }
    Ok(())
}
