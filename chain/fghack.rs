//! fghack: anti-backgrounding tool, for daemons that insist on forking into the background.
//!
//! # Interface
//!
//! `fghack CHILD...`
//!
//! Creates a pipe, forks, and in the child keeps the pipe's write end open with 30 extra
//! copies (`dup`) before execing CHILD through `$PATH`. A daemon that forks and exits
//! usually keeps its descriptors, so the pipe stays open as long as any descendant that
//! did not close them all is alive. fghack reads the pipe until end of file, then waits
//! for CHILD and exits with its exit code. Under supervise, `exec fghack daemon` keeps
//! `./run` "up" while the backgrounded daemon lives (OPENACS.md gotcha 3: the last resort
//! for a server that cannot stay in the foreground; nsd can, with `-i`).
//!
//! # Options
//!
//! None.
//!
//! # Exit codes
//!
//! * CHILD's exit code, once every holder of the pipe is gone.
//! * 100: usage (`fghack: usage: fghack child`).
//! * 111: `fghack: fatal: child crashed` (CHILD was killed by a signal),
//!   `unable to create pipe: ERR`, `unable to fork: ERR`, `wait failed: ERR`; and from the
//!   child, `unable to run CHILD: ERR`.
//!
//! # Notes
//!
//! Same as 0.76 (REFERENCE.md §9). Signals sent to fghack (svc -d) are not passed on to the
//! daemon: stop it by other means, as with the original.

use std::ffi::OsString;
use std::io;
use svcore::errstr::{self, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::pathexec;

const PROG: &str = "fghack";

fn fatal(text: &str) -> ! {
    errstr::die(PROG, text, EXIT_TEMPORARY)
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() < 2 {
        errstr::emit("fghack: usage: fghack child");
        std::process::exit(EXIT_PERMANENT);
    }
    let mut pi = [0 as libc::c_int; 2];
    // SAFETY: pipe(2) into a local array of two descriptors. Not close-on-exec: the copies
    // must survive into CHILD and its descendants.
    if unsafe { libc::pipe(pi.as_mut_ptr()) } == -1 {
        fatal(&format!(
            "unable to create pipe: {}",
            io_str(&io::Error::last_os_error())
        ));
    }
    // SAFETY: fghack is single-threaded, so the child may run ordinary Rust code (the
    // allocator lock cannot be held by another thread at fork time).
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        fatal(&format!(
            "unable to fork: {}",
            io_str(&io::Error::last_os_error())
        ));
    }
    if pid == 0 {
        // SAFETY: closing our copy of the read end and duplicating the write end, on
        // descriptors created above.
        unsafe {
            libc::close(pi[0]);
            for _ in 0..30 {
                libc::dup(pi[1]);
            }
        }
        let err = pathexec::exec(&args[1..]);
        fatal(&format!(
            "unable to run {}: {}",
            args[1].to_string_lossy(),
            io_str(&err)
        ));
    }
    // SAFETY: the parent's copy of the write end, created above.
    unsafe {
        libc::close(pi[1]);
    }
    let mut ch = 0u8;
    loop {
        // SAFETY: read of one byte into a local.
        let r = unsafe { libc::read(pi[0], (&mut ch as *mut u8).cast(), 1) };
        if r == 1 {
            continue;
        }
        if r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break;
    }
    let mut ws: libc::c_int = 0;
    loop {
        // SAFETY: waitpid for our own child with a pointer to a local.
        let r = unsafe { libc::waitpid(pid, &mut ws, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            fatal(&format!("wait failed: {}", io_str(&e)));
        }
    }
    // djb's wait_crashed: any terminating signal (the low 7 bits).
    if ws & 0x7f != 0 {
        fatal("child crashed");
    }
    std::process::exit((ws >> 8) & 0xff);
}
