//! An opt-in cgroup v2 per service, so that stopping it leaves no grandchild behind
//! (REFERENCE.md §12.7).
//!
//! A process group is escaped by any daemon that calls `setsid`; a cgroup is not: every
//! descendant of a process in a cgroup stays in it unless someone with write access to
//! another cgroup moves it. Writing `1` to `cgroup.kill` (Linux ≥ 5.14) SIGKILLs every
//! process in the cgroup and its descendants atomically, even ones forking at that moment.
//!
//! # Where the cgroups live
//!
//! [`root`] finds the cgroup2 hierarchy (the `cgroup2` line of `/proc/self/mountinfo`; on a
//! hybrid host that is `/sys/fs/cgroup/unified`, on a pure v2 host `/sys/fs/cgroup`) and our
//! own cgroup in it (the `0::` line of `/proc/self/cgroup`). A service's cgroup is a child
//! of that: `<own cgroup>/svtools-<name>` ([`PREFIX`]). It is usable only if we may create
//! a child there, which [`root`] checks by creating and removing one; when it cannot,
//! [`probe`] says why (no cgroup2 mount, read-only, not root, ...).
//!
//! # The "no internal processes" rule
//!
//! cgroup v2 forbids a non-root cgroup to *both* contain processes and enable domain
//! controllers (memory, io, ...) for its children in `cgroup.subtree_control`. supervise
//! itself stays in its own cgroup, which therefore has a process. We never write
//! `cgroup.subtree_control`: our children are used only for grouping, listing and
//! `cgroup.kill`, none of which needs a controller, so the rule is never triggered.
//! Conversely, if supervise's cgroup already had controllers enabled for its children it
//! could not contain supervise (the kernel refuses to put a process there, except in the
//! root cgroup, which is exempt), so the case cannot arise. Limits (memory.max, ...) are
//! therefore out of scope: they would need supervise to move itself into a leaf first,
//! which changes what other tools (systemd) see, so we do not do it.
//!
//! # Joining without a race
//!
//! Moving `run` in after the fork ([`Cgroup::add`]) leaves a window in which it may fork a
//! child that stays outside. The race-free way is for the child to move *itself* between
//! fork and exec: open `cgroup.procs` in the parent ([`Cgroup::procs_file`], close-on-exec)
//! and call [`join_self`] with its descriptor in `pre_exec`; it is one `write(2)` and
//! allocates nothing (STYLE.md P7).

use std::fs;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The prefix of every service cgroup's name: `svtools-<name>`.
pub const PREFIX: &str = "svtools-";

/// The file listing (and accepting) a cgroup's processes.
pub const PROCS: &str = "cgroup.procs";

/// The file that SIGKILLs a whole cgroup when `1` is written to it (Linux ≥ 5.14).
pub const KILL: &str = "cgroup.kill";

/// The file whose `populated` line says whether any process is left (in it or below).
pub const EVENTS: &str = "cgroup.events";

/// How many rounds the SIGKILL fallback makes: each round kills what `cgroup.procs` lists,
/// and a process forked during a round shows up in the next one.
const FALLBACK_ROUNDS: usize = 100;

/// Finds the cgroup2 mount point and the mount's root from the text of
/// `/proc/self/mountinfo` (proc(5): field 4 is the root of the mount inside the
/// hierarchy, field 5 the mount point, and after the ` - ` separator the fs type). Pure.
pub fn parse_mountinfo(text: &str) -> Option<(PathBuf, String)> {
    text.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = pre.split_whitespace().collect();
        let root = unescape_octal(f.get(3)?);
        let mount = unescape_octal(f.get(4)?);
        Some((PathBuf::from(mount), root))
    })
}

/// Our cgroup v2 path from the text of `/proc/self/cgroup` (the `0::/path` line). Pure.
pub fn parse_proc_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end_matches(" (deleted)").to_string())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of our own cgroup, from the two texts (pure): the mount point joined with
/// our cgroup path made relative to the mount's root (they differ inside a cgroup
/// namespace or with a bind mount of a subtree).
pub fn own_dir(mountinfo: &str, proc_cgroup: &str) -> Result<PathBuf, String> {
    let (mount, mroot) = parse_mountinfo(mountinfo)
        .ok_or_else(|| "no cgroup2 filesystem in /proc/self/mountinfo".to_string())?;
    let own = parse_proc_cgroup(proc_cgroup)
        .ok_or_else(|| "no cgroup v2 entry (0::) in /proc/self/cgroup".to_string())?;
    let rel = if mroot == "/" {
        own.as_str()
    } else {
        match own.strip_prefix(mroot.as_str()) {
            Some(r) if r.is_empty() || r.starts_with('/') => r,
            _ => {
                return Err(format!(
                    "our cgroup {own} is outside the cgroup2 mount's root {mroot}"
                ));
            }
        }
    };
    Ok(mount.join(rel.trim_start_matches('/')))
}

/// Where service cgroups can be created, or why they cannot: our own cgroup v2 directory,
/// after checking that a child can really be created and removed there.
pub fn probe() -> Result<PathBuf, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let proc_cgroup = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let dir = own_dir(&mountinfo, &proc_cgroup)?;
    if !dir.join(PROCS).exists() {
        return Err(format!("{} is not a cgroup v2 directory", dir.display()));
    }
    // Unique per process and per call: two threads probing at once must not collide.
    static PROBES: AtomicUsize = AtomicUsize::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let test = dir.join(format!("{PREFIX}probe.{}.{n}", std::process::id()));
    fs::create_dir(&test)
        .map_err(|e| format!("cannot create a cgroup in {}: {e}", dir.display()))?;
    fs::remove_dir(&test).map_err(|e| format!("cannot remove {}: {e}", test.display()))?;
    Ok(dir)
}

/// Our own cgroup v2 directory when service cgroups can be created under it (see
/// [`probe`] for the reason when not).
pub fn root() -> Option<PathBuf> {
    probe().ok()
}

/// One service's cgroup: a directory `<own cgroup>/svtools-<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// Creates (or, when a previous supervise left it behind, reuses) the cgroup
    /// `svtools-<name>` under our own cgroup. `/` and leading dots in `name` are replaced
    /// by `_`, so the name is one path component. The caller picks a name unique on the
    /// host (two supervise processes with the same name would share a cgroup and kill each
    /// other's services): e.g. the service directory's device and inode.
    pub fn create(name: &str) -> io::Result<Cgroup> {
        let parent = probe().map_err(io::Error::other)?;
        Cgroup::create_in(&parent, name)
    }

    /// [`Cgroup::create`] under an explicit parent cgroup directory.
    pub fn create_in(parent: &Path, name: &str) -> io::Result<Cgroup> {
        let dir = parent.join(format!("{PREFIX}{}", sanitize(name)));
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        Ok(Cgroup { dir })
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves process `pid` (and, from then on, all its new children) into the cgroup.
    pub fn add(&self, pid: u32) -> io::Result<()> {
        // One write(2) per pid: the kernel parses the whole buffer as one number.
        fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join(PROCS))?
            .write_all(format!("{pid}\n").as_bytes())
    }

    /// `cgroup.procs` opened for writing and close-on-exec, for [`join_self`] in a child
    /// between fork and exec.
    pub fn procs_file(&self) -> io::Result<fs::File> {
        fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(self.dir.join(PROCS))
    }

    /// The pids in the cgroup now (not in cgroups below it; we create none).
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        Ok(fs::read_to_string(self.dir.join(PROCS))?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// True when no process is left: `populated 0` in `cgroup.events` (which counts
    /// descendants too), or an empty `cgroup.procs` on kernels without that file.
    pub fn is_empty(&self) -> io::Result<bool> {
        match fs::read_to_string(self.dir.join(EVENTS)) {
            Ok(ev) => Ok(ev.lines().any(|l| l.trim() == "populated 0")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(self.pids()?.is_empty()),
            Err(e) => Err(e),
        }
    }

    /// SIGKILLs every process in the cgroup: `1` into `cgroup.kill`, atomic against forks.
    /// On kernels without `cgroup.kill` (before 5.14), falls back to SIGKILL to every pid
    /// in `cgroup.procs`, round after round until none is left, so a process forked while
    /// we were killing is caught in the next round. Does not wait for the deaths: the
    /// caller reaps its child and may poll [`Cgroup::is_empty`].
    pub fn kill(&self) -> io::Result<()> {
        match fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join(KILL))
            .and_then(|mut f| f.write_all(b"1"))
        {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
        for _ in 0..FALLBACK_ROUNDS {
            let pids = self.pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            for pid in pids {
                let Ok(p) = i32::try_from(pid) else { continue };
                // ESRCH (already gone) is fine: the next round rereads the list.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        Ok(())
    }

    /// Removes the cgroup directory (`rmdir`). Fails with `EBUSY` while a process is left
    /// in it; a cgroup already gone is fine.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The longest sanitized name kept as it is: with [`PREFIX`] it stays well under the
/// 255-byte limit of a file name (NAME_MAX), which a service's absolute path can exceed.
const MAX_NAME: usize = 200;

/// Makes `name` one safe path component: `/` and newlines become `_`, a leading dot gets
/// a `_` before it, and a name longer than [`MAX_NAME`] bytes is cut and followed by a
/// hash of the whole name, so long names stay distinct.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c == '/' || c == '\n' { '_' } else { c })
        .collect();
    let s = if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    };
    if s.len() <= MAX_NAME {
        return s;
    }
    // FNV-1a, 64 bits: stable across runs and versions (unlike std's hasher), so a
    // restarted supervise finds the cgroup its predecessor left.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut cut = MAX_NAME - 17;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash:016x}", &s[..cut])
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is open on `procs_fd`
/// (from [`Cgroup::procs_file`]). Meant for `pre_exec`: it is a single `write(2)` of `"0"`
/// (the kernel reads 0 as "the writer"), with no allocation, so it is safe between fork
/// and exec.
pub fn join_self(procs_fd: RawFd) -> io::Result<()> {
    // SAFETY: write(2) from a static buffer to a descriptor the caller keeps open; no
    // allocation or lock, so it is async-signal-safe as required after fork.
    let n = unsafe { libc::write(procs_fd, b"0".as_ptr().cast(), 1) };
    if n == 1 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_finds_cgroup2_on_a_hybrid_host() {
        assert_eq!(
            parse_mountinfo(HYBRID),
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_string()))
        );
    }

    #[test]
    fn mountinfo_without_cgroup2() {
        assert_eq!(parse_mountinfo(&HYBRID.replace("cgroup2", "cgroup")), None);
    }

    #[test]
    fn mountinfo_unescapes_octal() {
        let m = "41 31 0:38 / /mnt/a\\040b rw - cgroup2 cgroup2 rw\n";
        assert_eq!(parse_mountinfo(m).unwrap().0, PathBuf::from("/mnt/a b"));
    }

    #[test]
    fn proc_cgroup_takes_the_v2_line() {
        let t = "4:memory:/x\n0::/system.slice/sv.service\n";
        assert_eq!(
            parse_proc_cgroup(t).as_deref(),
            Some("/system.slice/sv.service")
        );
        assert_eq!(parse_proc_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn own_dir_joins_mount_and_path() {
        let pure = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            own_dir(pure, "0::/user.slice/a\n").unwrap(),
            PathBuf::from("/sys/fs/cgroup/user.slice/a")
        );
        assert_eq!(
            own_dir(pure, "0::/\n").unwrap(),
            PathBuf::from("/sys/fs/cgroup")
        );
    }

    #[test]
    fn own_dir_strips_the_mount_root() {
        let sub = "30 1 0:26 /lxc/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            own_dir(sub, "0::/lxc/c1/svc\n").unwrap(),
            PathBuf::from("/sys/fs/cgroup/svc")
        );
        assert!(own_dir(sub, "0::/other\n").unwrap_err().contains("outside"));
    }

    #[test]
    fn own_dir_reports_why() {
        assert!(own_dir("", "0::/\n").unwrap_err().contains("no cgroup2"));
        assert!(own_dir(HYBRID, "1:cpu:/\n").unwrap_err().contains("0::"));
    }

    #[test]
    fn sanitize_makes_one_component() {
        assert_eq!(sanitize("a/b"), "a_b");
        assert_eq!(sanitize(".."), "_..");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("web-1"), "web-1");
    }

    #[test]
    fn sanitize_bounds_long_names_keeping_them_distinct() {
        let a = format!("/{}/a", "x".repeat(300));
        let b = format!("/{}/b", "x".repeat(300));
        let (sa, sb) = (sanitize(&a), sanitize(&b));
        assert!(sa.len() <= MAX_NAME && sb.len() <= MAX_NAME);
        assert_ne!(sa, sb);
        assert_eq!(sa, sanitize(&a), "stable");
        assert!(sa.starts_with("_xxx"));
        // Cut on a character boundary.
        let u = sanitize(&"é".repeat(200));
        assert!(u.len() <= MAX_NAME, "{}", u.len());
    }

    fn wait(what: &str, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Really creates a cgroup when the host allows it; otherwise says loudly why not and
    /// checks that `root()` agrees with `probe()` (STYLE.md P14: no silent skip).
    #[test]
    fn real_cgroup_joins_lists_kills_and_removes() {
        let parent = match probe() {
            Ok(p) => p,
            Err(why) => {
                eprintln!("cgroup v2 not usable on this host, not testing a real one: {why}");
                assert!(root().is_none());
                assert!(!why.is_empty());
                return;
            }
        };
        assert_eq!(root().as_deref(), Some(parent.as_path()));
        let name = format!("unit-{}", std::process::id());
        let cg = Cgroup::create_in(&parent, &name).unwrap();
        assert!(cg.path().ends_with(format!("{PREFIX}{name}")));
        assert!(cg.is_empty().unwrap());

        // A child that joins itself in pre_exec, then forks a grandchild into a new session.
        let procs = cg.procs_file().unwrap();
        let fd = procs.as_raw_fd();
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "setsid sleep 1000 & exec sleep 1000"])
            .stdin(Stdio::null());
        // SAFETY: join_self is one write(2), async-signal-safe.
        unsafe {
            cmd.pre_exec(move || join_self(fd));
        }
        let mut child = cmd.spawn().unwrap();
        drop(procs);
        wait("two processes in the cgroup", || {
            cg.pids().unwrap().len() == 2
        });
        assert!(cg.pids().unwrap().contains(&child.id()));
        assert!(!cg.is_empty().unwrap());
        assert!(cg.remove().is_err(), "rmdir of a populated cgroup fails");

        cg.kill().unwrap();
        child.wait().unwrap();
        wait("the cgroup to empty", || cg.is_empty().unwrap());
        cg.remove().unwrap();
        assert!(!cg.path().exists());
        cg.remove().unwrap();
    }

    #[test]
    fn kill_falls_back_to_sigkill_without_cgroup_kill() {
        // A directory that looks like a cgroup of an old kernel: cgroup.procs, no
        // cgroup.kill. The fallback kills what cgroup.procs lists.
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        fs::write(dir.path().join(PROCS), format!("{}\n", child.id())).unwrap();
        let cg = Cgroup {
            dir: dir.path().to_path_buf(),
        };
        assert_eq!(cg.pids().unwrap(), vec![child.id()]);
        cg.kill().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn real_cgroup_add_moves_a_running_process() {
        let Ok(parent) = probe() else {
            eprintln!("cgroup v2 not usable here: {}", probe().unwrap_err());
            return;
        };
        let cg = Cgroup::create_in(&parent, &format!("add-{}", std::process::id())).unwrap();
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        cg.add(child.id()).unwrap();
        assert_eq!(cg.pids().unwrap(), vec![child.id()]);
        // Reusing an existing cgroup (a stale one after a crash) is allowed.
        let again = Cgroup::create_in(&parent, &format!("add-{}", std::process::id())).unwrap();
        assert_eq!(again, cg);
        cg.kill().unwrap();
        child.wait().unwrap();
        wait("the cgroup to empty", || cg.is_empty().unwrap());
        cg.remove().unwrap();
    }
}
