//! Child processes of a supervisor: start `./run` (or `./finish`), signal it, reap it.
//!
//! supervise is single-threaded (STYLE.md P7), so a plain `fork` is safe here: no other
//! thread can hold the allocator's or stdio's lock at the moment of the fork. We fork by
//! hand rather than through `std::process::Command` because daemontools' contract needs
//! two outcomes that `Command` folds into one error (REFERENCE.md §4):
//!
//! * fork failure: supervise warns `unable to fork for DIR, sleeping 60 seconds: ERR`;
//! * exec failure: the **child** prints `supervise: fatal: unable to start DIR/run: ERR`
//!   and exits 111, and supervise reaps it like any other death.
//!
//! The plain case (no [`SpawnOptions`] set: every 0.76 service) does not `fork` but
//! `clone(CLONE_VM | CLONE_VFORK)`, as glibc's `posix_spawn` does: no copy of the page
//! tables for a child that execs at once, the cheaper respawn of issue 2. The two outcomes
//! above stay the same; only who writes the exec-failure message changes (the parent,
//! right after the child exited 111, to the same fd 2).
//!
//! Every descriptor the supervisor opens itself is close-on-exec (Rust's std opens all
//! files with `O_CLOEXEC`), so the child inherits only fds 0, 1, 2 and whatever
//! [`SpawnOptions::notify_fd`] asks for.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;

/// How to start a child, beyond 0.76's plain fork + exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    /// Run the child under `setsid()` (its own session and process group), so the whole
    /// group can be signalled (REFERENCE.md §12.7). 0.76 never does this.
    pub setsid: bool,
    /// `(target, source)`: dup `source` onto fd `target` in the child (s6's
    /// `notification-fd`, REFERENCE.md §11.2). `source` is close-on-exec in the parent.
    pub notify_fd: Option<(RawFd, RawFd)>,
    /// An open `cgroup.procs` (close-on-exec in the parent): the child moves itself into
    /// that cgroup between fork and exec, so nothing it forks can stay outside
    /// (svcore::cgroup's "joining without a race"). A failure leaves it where it is.
    pub cgroup_procs: Option<RawFd>,
    /// Give the child `/dev/null` as fd 1 (helpers such as health probes, whose output
    /// must not land in the service's log pipe). stderr stays supervise's.
    pub stdout_null: bool,
    /// dup this descriptor (close-on-exec in the parent) onto the child's fd 2, so the
    /// parent can read what it says (a health probe's one-line reason).
    pub stderr_fd: Option<RawFd>,
}

/// A prepared command line: built (and allocated) before the fork, so the child only
/// makes bare system calls on the success path.
pub struct Prepared {
    argv: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
    /// `supervise: fatal: unable to start DIR/run: ` (the errno text and `\n` follow).
    fail_prefix: Vec<u8>,
}

impl Prepared {
    /// Prepares `argv` (`argv[0]` is also the path executed, as in daemontools'
    /// `execve("./run", ["./run"], environ)`). `fail_prefix` is written to fd 2 by the
    /// child, followed by djb's error string and a newline, when exec fails.
    /// Arguments containing NUL bytes are rejected with `InvalidInput`.
    pub fn new(argv: &[&str], fail_prefix: &str) -> io::Result<Prepared> {
        let mut owned = Vec::with_capacity(argv.len());
        for a in argv {
            owned.push(CString::new(*a).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?);
        }
        if owned.is_empty() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut ptrs: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(Prepared {
            argv: owned,
            ptrs,
            fail_prefix: fail_prefix.as_bytes().to_vec(),
        })
    }

    /// The program path (`argv[0]`).
    pub fn path(&self) -> &CStr {
        // `new` rejects an empty argv, so index 0 exists.
        &self.argv[0]
    }
}

/// Forks and execs `p` with supervise's own environment and fds 0, 1, 2.
///
/// Returns the child's pid, or the fork error. Exec errors never come back here: the
/// child reports them on fd 2 and exits 111 (REFERENCE.md §4), and the caller sees the
/// death through [`reap`].
pub fn spawn(p: &Prepared, opts: &SpawnOptions) -> io::Result<u32> {
    if *opts == SpawnOptions::default() {
        return spawn_vfork(p);
    }
    // SAFETY: fork in a single-threaded process (supervise starts no threads, STYLE.md
    // P7). The child only calls async-signal-safe functions until exec, except on the
    // exec-failure path, which formats the errno text; that allocation is safe because
    // no other thread existed to hold the allocator's lock at fork time.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        child(p, opts);
    }
    Ok(pid as u32)
}

/// Stack of the vfork-style child: it only makes a few system calls before exec.
const VFORK_STACK: usize = 64 * 1024;

/// What the vfork-style child needs; it shares our memory, so it hands exec's errno back
/// through `err` instead of formatting a message (an allocation in the child would be
/// made, and leaked, in our heap).
struct VforkCtx {
    p: *const Prepared,
    err: i32,
}

/// [`spawn`] for the plain case (no option set), the respawn path of a 0.76 service:
/// `clone(CLONE_VM | CLONE_VFORK)` as glibc's `posix_spawn` does, so the kernel does not
/// copy our page tables for a child that execs at once (docs/BENCHMARKS-supervise.md).
/// Same contract as the fork path: an empty signal mask and default SIGCHLD and SIGPIPE
/// in the child, and when exec fails the child exits 111 and
/// `supervise: fatal: unable to start DIR/run: ERR` is written to fd 2 (here by us, once
/// the child is gone: CLONE_VFORK suspends us until it has exec'd or exited), so the
/// caller still sees a child that started and died (REFERENCE.md §4).
fn spawn_vfork(p: &Prepared) -> io::Result<u32> {
    // SAFETY: an anonymous private mapping that nobody else knows of; unmapped below once
    // the child no longer runs on it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            VFORK_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mut ctx = VforkCtx { p, err: 0 };
    // SAFETY: sigset operations on locals. All signals are blocked around the clone so no
    // handler of ours (signal-hook's, which writes to the self-pipe) runs in the child
    // while it shares our memory; the child unblocks them itself after resetting
    // SIGCHLD and SIGPIPE, and we restore our mask right after.
    let (pid, clone_err) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        // SAFETY (clone): the child runs `vfork_child` on its own stack (the top of the
        // mapping; x86-64 and aarch64 stacks grow down), touching only `ctx`, which
        // outlives it because CLONE_VFORK suspends us until it has exec'd or exited.
        let pid = libc::clone(
            vfork_child,
            stack.cast::<u8>().add(VFORK_STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut ctx as *mut VforkCtx).cast(),
        );
        let e = io::Error::last_os_error();
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::munmap(stack, VFORK_STACK);
        (pid, e)
    };
    if pid < 0 {
        return Err(clone_err);
    }
    // SAFETY: the child has exec'd or exited (CLONE_VFORK), nothing else writes `err`.
    let err = unsafe { std::ptr::read_volatile(&ctx.err) };
    if err != 0 {
        let mut msg = p.fail_prefix.clone();
        msg.extend_from_slice(crate::errstr::errno_str(err).as_bytes());
        msg.push(b'\n');
        // SAFETY: write(2) of a buffer we own.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    }
    Ok(pid as u32)
}

/// The vfork-style child: resets what the fork path's child resets, execs, and on
/// failure leaves errno in the context and exits 111. Only bare system calls: it runs
/// in our address space.
extern "C" fn vfork_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the VforkCtx of spawn_vfork, alive and not otherwise accessed
    // while we run (the parent is suspended); sigaction/sigprocmask/execv/_exit are
    // plain system calls, and the handler table is our own (no CLONE_SIGHAND).
    unsafe {
        let ctx = arg.cast::<VforkCtx>();
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        let p = &*(*ctx).p;
        libc::execv(p.path().as_ptr(), p.ptrs.as_ptr());
        std::ptr::write_volatile(&mut (*ctx).err, *libc::__errno_location());
        libc::_exit(111)
    }
}

/// The child's side of [`spawn`]; never returns.
fn child(p: &Prepared, opts: &SpawnOptions) -> ! {
    // SAFETY: bare system calls on our own process between fork and exec; the pointers
    // passed to execv point into `p`, which lives in this (copied) address space.
    unsafe {
        // 0.76 resets SIGCHLD's handler and unblocks it (sig_uncatch, sig_unblock). We
        // clear the whole mask, and put SIGPIPE back to default because Rust's runtime
        // ignores it at startup (std's Command does the same). Other caught signals
        // return to default through exec; ignored ones stay ignored, as in 0.76.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if opts.setsid {
            libc::setsid();
        }
        if opts.stdout_null {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null >= 0 && null != 1 {
                libc::dup2(null, 1);
                libc::close(null);
            }
        }
        if let Some(fd) = opts.stderr_fd {
            if fd != 2 {
                libc::dup2(fd, 2);
            }
        }
        if let Some(fd) = opts.cgroup_procs {
            // One write(2), no allocation (cgroup::join_self).
            let _ = crate::cgroup::join_self(fd);
        }
        if let Some((target, source)) = opts.notify_fd {
            if target == source {
                // dup2 onto itself keeps FD_CLOEXEC; clear it instead.
                libc::fcntl(source, libc::F_SETFD, 0);
            } else {
                libc::dup2(source, target);
            }
        }
        libc::execv(p.path().as_ptr(), p.ptrs.as_ptr());
    }
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let mut msg = p.fail_prefix.clone();
    msg.extend_from_slice(crate::errstr::errno_str(errno).as_bytes());
    msg.push(b'\n');
    // SAFETY: write(2) of a buffer we own, then _exit without running destructors or
    // atexit handlers that belong to the parent.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(111)
    }
}

/// What Rust's runtime start-up does before `main` that a supervisor relies on, for a
/// program that skips that start-up (`#![no_main]`, as supervise does to keep an idle
/// supervise's private memory down: the runtime reads `/proc/self/maps` through stdio to
/// find the main thread's stack and allocates the main thread's handle, which leaves
/// dirty heap pages in every supervise of a tree; docs/BENCHMARKS-supervise.md).
///
/// * fds 0, 1 and 2, when closed, are opened on `/dev/null`, so that no file the program
///   opens later lands on them (a warning would then be written into the lock file or
///   the control FIFO), and the children see them open, as before;
/// * SIGPIPE is ignored: a warning to a stderr pipe nobody reads (readproctitle gone) is
///   a failed write, not the death of the supervisor. Children get the default back
///   ([`spawn`]).
///
/// Call it first thing in `main`, before any file is opened.
pub fn init_process() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only asks whether the descriptor is open; no memory effects.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if closed {
            // open(2) takes the lowest free descriptor: `fd` itself, since the lower ones
            // are open by now. Not close-on-exec: children inherit it, like the others.
            // SAFETY: a NUL-terminated literal path; the descriptor is deliberately kept.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Reaps one dead child without blocking: `Some((pid, wait_status))`, or `None` when no
/// child has died (or there are no children: ECHILD). EINTR is retried. Callers loop
/// until `None` (STYLE.md P6), because several deaths can share one SIGCHLD.
pub fn reap() -> Option<(u32, i32)> {
    loop {
        let mut ws: libc::c_int = 0;
        // SAFETY: waitpid with a valid pointer to a local.
        let r = unsafe { libc::waitpid(-1, &mut ws, libc::WNOHANG) };
        if r > 0 {
            return Some((r as u32, ws));
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}

/// `kill(pid, sig)`; a negative `pid` signals a process group. Errors (ESRCH) are
/// returned for callers that care; supervise ignores them, as 0.76 does.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) has no memory effects.
    let r = unsafe { libc::kill(pid, sig) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The exit code of a wait status, if the process exited normally.
pub fn exit_code(ws: i32) -> Option<i32> {
    if libc::WIFEXITED(ws) {
        Some(libc::WEXITSTATUS(ws))
    } else {
        None
    }
}

/// The signal that killed the process, if it was killed by one.
pub fn term_signal(ws: i32) -> Option<i32> {
    if libc::WIFSIGNALED(ws) {
        Some(libc::WTERMSIG(ws))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_decoding() {
        // Linux encoding: exit code in bits 8..15, signal in bits 0..6.
        assert_eq!(exit_code(3 << 8), Some(3));
        assert_eq!(term_signal(3 << 8), None);
        assert_eq!(exit_code(libc::SIGTERM), None);
        assert_eq!(term_signal(libc::SIGTERM), Some(libc::SIGTERM));
    }

    fn wait_for(pid: u32) -> i32 {
        let mut ws = 0;
        // SAFETY: waitpid on our own child with a pointer to a local.
        let r = unsafe { libc::waitpid(pid as i32, &mut ws, 0) };
        assert_eq!(r, pid as i32);
        ws
    }

    #[test]
    fn plain_spawn_resets_mask_and_sigpipe_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sig");
        let cmd = format!(
            "grep -E '^Sig(Blk|Ign)' /proc/self/status >{}",
            out.display()
        );
        let p = Prepared::new(&["/bin/sh", "-c", &cmd], "x: ").unwrap();
        // Block something in the parent: the child must not inherit it.
        // SAFETY: sigprocmask on this thread with valid sets.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let pid = spawn(&p, &SpawnOptions::default()).unwrap();
        assert_eq!(exit_code(wait_for(pid)), Some(0));
        let text = std::fs::read_to_string(&out).unwrap();
        let field = |k: &str| {
            let line = text.lines().find(|l| l.starts_with(k)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(field("SigBlk:"), 0, "{text}");
        assert_eq!(field("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{text}");
    }

    #[test]
    fn plain_spawn_exec_failure_is_a_child_exiting_111() {
        let p = Prepared::new(&["/nonexistent/run"], "test: fatal: unable to start: ").unwrap();
        let pid = spawn(&p, &SpawnOptions::default()).unwrap();
        assert_ne!(pid, 0);
        assert_eq!(exit_code(wait_for(pid)), Some(111));
    }

    #[test]
    fn prepared_rejects_empty_and_nul() {
        assert!(Prepared::new(&[], "x").is_err());
        assert!(Prepared::new(&["a\0b"], "x").is_err());
        assert_eq!(
            Prepared::new(&["./run"], "x").unwrap().path().to_bytes(),
            b"./run"
        );
    }
}
