//! svscanboot: starts svscan on the scan directory with its errors shown by readproctitle.
//!
//! # Interface
//!
//! `svscanboot [DIR]` (default `/service`)
//!
//! The same steps as daemontools' `svscanboot` shell script (REFERENCE.md §6), as a
//! program, for `SV:123456:respawn:/usr/local/bin/svscanboot` in /etc/inittab or a
//! systemd unit (examples/inittab, examples/svscanboot.service):
//!
//! 1. `PATH=/command:/usr/local/bin:/usr/local/sbin:/bin:/sbin:/usr/bin:/usr/sbin:/usr/X11R6/bin`,
//!    preceded by svscanboot's own directory when that is not in the list (so it runs the
//!    svscan, svc and readproctitle installed beside it);
//! 2. stdin, stdout and stderr to `/dev/null`;
//! 3. `svc -dx DIR/* DIR/*/log` (names beginning with `.` excluded, as the shell's glob
//!    does), so supervise processes left by an earlier svscan exit;
//! 4. `svscan DIR` with stdout and stderr piped into
//!    `readproctitle service errors: ` followed by 400 dots, both with an environment
//!    holding only PATH.
//!
//! svscanboot stays in the foreground and waits for both, like the script's shell.
//!
//! # Options
//!
//! None.
//!
//! # Exit codes
//!
//! readproctitle's exit code once both have exited; 111 if they cannot be started.
//! Nothing is printed: stderr is `/dev/null`.
//!
//! # Notes
//!
//! Upstream's script hard-codes `/service`, Debian's `/etc/service`; the argument makes
//! the scan directory configurable (OPENACS.md §1).

use std::ffi::OsString;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The script's PATH, verbatim.
const PATH: &str =
    "/command:/usr/local/bin:/usr/local/sbin:/bin:/sbin:/usr/bin:/usr/sbin:/usr/X11R6/bin";
/// The default scan directory (upstream's).
const DEFAULT_DIR: &str = "/service";
/// readproctitle's dots (REFERENCE.md §6).
const DOTS: usize = 400;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.len() > 1 {
        eprintln!("svscanboot: usage: svscanboot [dir]");
        return ExitCode::from(100);
    }
    let dir = args
        .into_iter()
        .next()
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
    let path = search_path();
    stdio_to_null();
    // Step 3: the glob `DIR/* DIR/*/log`, sorted as the shell sorts it.
    let leftovers = leftovers(&dir);
    if !leftovers.is_empty() {
        let _ = Command::new("svc")
            .arg("-dx")
            .args(&leftovers)
            .env_clear()
            .env("PATH", &path)
            .status();
    }
    match start(&dir, &path) {
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::from(111),
    }
}

/// The script's PATH, preceded by the directory svscanboot itself was run from when
/// that is not already in it, so that svscanboot always starts the svscan, svc and
/// readproctitle installed beside it (and not, say, Debian's in /usr/bin).
fn search_path() -> String {
    let own = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_string_lossy().into_owned()));
    match own {
        Some(d) if !PATH.split(':').any(|p| p == d) => format!("{d}:{PATH}"),
        _ => PATH.to_string(),
    }
}

/// Points fds 0, 1 and 2 at /dev/null (step 2).
fn stdio_to_null() {
    use std::os::fd::AsRawFd;
    let Ok(null) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors; `null` stays owned by its File.
        unsafe {
            libc::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// `DIR/*` then `DIR/*/log` (existing only), each sorted; dot names excluded.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<OsString> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|d| d.file_name())
            .filter(|n| n.as_bytes().first() != Some(&b'.'))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    let mut out: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    for n in &names {
        let log = dir.join(n).join("log");
        if fs::symlink_metadata(&log).is_ok() {
            out.push(log);
        }
    }
    out
}

/// Step 4: `svscan DIR 2>&1 | readproctitle service errors: ....`, waiting for both.
fn start(dir: &Path, path: &str) -> std::io::Result<u8> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two new descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and belong to nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let w2 = w.try_clone()?;
    let mut rp = Command::new("readproctitle")
        .args(["service", "errors:"])
        .arg(".".repeat(DOTS))
        .env_clear()
        .env("PATH", path)
        .stdin(Stdio::from(r))
        .spawn()?;
    let scan = Command::new("svscan")
        .arg(dir)
        .env_clear()
        .env("PATH", path)
        .stdout(Stdio::from(w))
        .stderr(Stdio::from(w2))
        .spawn();
    if let Ok(mut s) = scan {
        let _ = s.wait();
    }
    let st = rp.wait()?;
    Ok(st.code().map_or(111, |c| c as u8))
}
