//! Shared harness: scratch dirs, guarded daemons, deadline waits, the oracle.
//!
//! Every daemon runs in its own process group and is killed and reaped on drop
//! (STYLE.md P13). Commands run with a cleared environment and a PATH that puts the
//! freshly built binaries first, then the system's (where Debian's daemontools lives,
//! which tests call by full path through [`oracle`]).
#![allow(dead_code, clippy::unwrap_used)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Default deadline for waits on state.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Directory holding our freshly built binaries.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_supervise"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Path of one of our binaries.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// One of the statically linked programs that README's install step ships (supervise,
/// svc, svok, svstat: `cargo build-static`, an alias in .cargo/config.toml). They are
/// built once per test run by that very command, so the tests cover the binaries people
/// install. .ci/run builds them before the tests, and then this only finds them up to
/// date. Panics loudly when the build fails or `name` is not one of them.
pub fn static_bin(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let o = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build-static", "--quiet", "--message-format=json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cargo build-static failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // The artifact message of the supervise binary names its executable; the others
        // are beside it.
        let exe = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"]["name"] == "supervise")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("no supervise artifact from cargo build-static"));
        exe.parent().unwrap().to_path_buf()
    });
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing after cargo build-static",
        p.display()
    );
    p
}

/// The statically linked supervise ([`static_bin`]).
pub fn static_supervise() -> PathBuf {
    static_bin("supervise")
}

/// PATH for tests: ours first, then the system's.
pub fn path_env() -> String {
    format!(
        "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        bin_dir().display()
    )
}

/// Full path of a program from Debian's package (`daemontools`, `runit`, `s6`). Panics
/// loudly when it is missing: differential tests never skip silently (STYLE.md P14).
pub fn oracle(name: &str) -> PathBuf {
    let p = Path::new("/usr/bin").join(name);
    assert!(
        p.exists(),
        "oracle {} is missing: install Debian's daemontools/runit/s6 (.ci/run does: apt-get install -y daemontools runit s6)",
        p.display()
    );
    p
}

/// Gives this test process default SIGINT and SIGQUIT dispositions, once.
///
/// A shell that starts a job in the background (`cargo test &`, some CI runners) starts it
/// with SIGINT and SIGQUIT ignored, every process we spawn inherits that across exec
/// (POSIX), and a `/bin/sh` run script cannot trap a signal it started with ignored: the
/// tests of `svc -i`/`-q` would then see nothing. Daemons do not reset dispositions
/// (daemontools' supervise does not either), so the test process does it for its children.
pub fn default_signals() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGQUIT] {
            // SAFETY: setting a standard signal to its default disposition; no handler runs.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    });
}

/// Puts the executable `src` at `dst`: a hard link, or else a copy made by cp(1).
///
/// Never with `fs::copy`: a descriptor open for writing in this multi-threaded process
/// is inherited by any test's fork that happens meanwhile, and exec of the file then fails
/// with ETXTBSY ("text file busy") until that child has exec'd.
pub fn place_executable(src: &Path, dst: &Path) {
    if fs::hard_link(src, dst).is_ok() {
        return;
    }
    let o = Command::new("cp")
        .arg("-p")
        .arg(src)
        .arg(dst)
        .output()
        .unwrap();
    assert!(o.status.success(), "cp {src:?} {dst:?}: {o:?}");
}

/// A command with a cleared environment and our PATH.
pub fn cmd(program: impl AsRef<OsStr>) -> Command {
    default_signals();
    let mut c = Command::new(program);
    c.env_clear().env("PATH", path_env());
    c
}

/// One of our programs as a command.
pub fn ours(name: &str) -> Command {
    cmd(bin(name))
}

/// A temporary directory for one test, removed on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new scratch dir.
    pub fn new() -> Scratch {
        default_signals();
        Scratch {
            dir: tempfile::Builder::new().prefix("svtest").tempdir().unwrap(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `self/rel`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Creates a service directory `rel` whose `run` is `#!/bin/sh` + `body`.
    pub fn service(&self, rel: &str, body: &str) -> PathBuf {
        let d = self.join(rel);
        fs::create_dir_all(&d).unwrap();
        write_script(&d.join("run"), body);
        d
    }

    /// A recursive listing, for failure messages.
    pub fn listing(&self) -> String {
        Command::new("ls")
            .arg("-laR")
            .arg(self.path())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// Writes an executable `#!/bin/sh` script.
pub fn write_script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A daemon started by a test: in its own process group, TERM then KILL to the whole group
/// and reaped on drop. Its stderr (and stdout unless redirected) go to files in `log_dir`.
pub struct Running {
    child: Option<Child>,
    /// Description for failure messages.
    pub what: String,
    /// File receiving the daemon's stderr.
    pub stderr_path: PathBuf,
    /// File receiving the daemon's stdout.
    pub stdout_path: PathBuf,
}

impl Running {
    /// Starts `c` in a new process group, stdout/stderr to `<log_dir>/<tag>.out|.err`.
    pub fn spawn(mut c: Command, log_dir: &Path, tag: &str) -> Running {
        let stdout_path = log_dir.join(format!("{tag}.out"));
        let stderr_path = log_dir.join(format!("{tag}.err"));
        let what = format!("{c:?}");
        c.stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).unwrap())
            .stderr(fs::File::create(&stderr_path).unwrap())
            .process_group(0);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
        Running {
            child: Some(child),
            what,
            stderr_path,
            stdout_path,
        }
    }

    /// Starts `c` exactly as given (stdio already set by the caller), in a new process group.
    pub fn spawn_raw(mut c: Command) -> Running {
        let what = format!("{c:?}");
        c.process_group(0);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
        Running {
            child: Some(child),
            what,
            stderr_path: PathBuf::new(),
            stdout_path: PathBuf::new(),
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Non-blocking: its exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Waits (with a deadline) for it to exit by itself.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let end = Instant::now() + deadline;
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            if Instant::now() > end {
                panic!(
                    "{} did not exit within {:?}; stderr: {}",
                    self.what,
                    deadline,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `sig` to the daemon itself (not its group).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.pid() as i32, sig);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id() as i32;
        // SAFETY: signalling the process group we created for this daemon only.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
            libc::kill(-pgid, libc::SIGCONT);
        }
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above; KILL whatever of the group is left (services of a supervise).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Polls `cond` every few milliseconds until it holds; panics with `what()` after
/// `deadline`.
pub fn wait_until(deadline: Duration, what: impl Fn() -> String, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > end {
            panic!("timed out after {:?} waiting for: {}", deadline, what());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a command to completion with a deadline (killed and panicking when it overruns).
pub fn run(mut c: Command) -> Output {
    run_with_deadline(&mut c, DEADLINE)
}

/// [`run`] with an explicit deadline.
pub fn run_with_deadline(c: &mut Command, deadline: Duration) -> Output {
    let what = format!("{c:?}");
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let end = Instant::now() + deadline;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > end {
            // SAFETY: the process group we created for this command.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish within {deadline:?}; stdout: {} stderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// stdout of an [`Output`] as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of an [`Output`] as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Replaces pids, second counts and TAI64N stamps with placeholders, so outputs of two
/// runs (or of ours and the original) compare equal.
pub fn normalize(s: &str) -> String {
    // Works on bytes: only ASCII runs are replaced, so any other UTF-8 passes through whole.
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // TAI64N external form.
        if b[i] == b'@' && i + 25 <= b.len() && b[i + 1..i + 25].iter().all(u8::is_ascii_hexdigit) {
            out.extend_from_slice(b"@TAI64N");
            i += 25;
            continue;
        }
        if let Some(rest) = b[i..].strip_prefix(b"(pid ") {
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            out.extend_from_slice(b"(pid PID");
            i += 5 + n;
            continue;
        }
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let n = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if b[i + n..].starts_with(b" seconds") {
                out.push(b'S');
                i += n;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The raw `supervise/status` bytes of `dir` (empty when missing).
pub fn status_bytes(dir: &Path) -> Vec<u8> {
    fs::read(dir.join("supervise/status")).unwrap_or_default()
}

/// The pid recorded in `dir`'s status (0 when none or unreadable).
pub fn status_pid(dir: &Path) -> u32 {
    let b = status_bytes(dir);
    if b.len() < 18 {
        return 0;
    }
    u32::from_le_bytes([b[12], b[13], b[14], b[15]])
}

/// True when `svok`-style liveness holds: `supervise/ok` opens for writing.
pub fn is_supervised(dir: &Path) -> bool {
    fs::OpenOptions::new()
        .write(true)
        .custom_flags_nonblock()
        .open(dir.join("supervise/ok"))
        .is_ok()
}

/// Tiny extension so `is_supervised` reads well.
trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

/// True while a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // State is the field after the parenthesised command name.
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// Starts a supervise binary (ours or the oracle's) on `dir`, waits until it is supervised.
pub fn start_supervise(program: &Path, dir: &Path, log_dir: &Path, tag: &str) -> Running {
    let mut c = cmd(program);
    c.arg(dir);
    let r = Running::spawn(c, log_dir, tag);
    wait_until(
        DEADLINE,
        || format!("{} to be supervised; stderr: {}", dir.display(), r.stderr()),
        || is_supervised(dir),
    );
    r
}
