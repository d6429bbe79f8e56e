//! `supervise/lock` (and multilog's `lock`): exclusive, non-blocking, held for life.
//!
//! We take **both** an `flock` (what daemontools' svok-less tools and a second supervise
//! test) and an fcntl write lock over the whole file (what s6-svok and s6-svstat test with
//! `F_GETLK`; REFERENCE.md §11.7). Linux keeps the two kinds apart, so holding both costs
//! nothing and makes us visible to both families.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens (creating with mode 0600) and locks `path` without waiting. EAGAIN/EWOULDBLOCK
/// when another process holds it, which djb prints as `temporary failure`.
/// The returned file must be kept open for as long as the lock is to be held.
pub fn try_exclusive(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    flock_nb(&f)?;
    fcntl_lock(&f)?;
    Ok(f)
}

/// `flock(LOCK_EX|LOCK_NB)`.
pub fn flock_nb(f: &File) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own; no memory is touched.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        // Linux reports EWOULDBLOCK == EAGAIN; keep it as EAGAIN for djb's string.
        Err(e)
    }
}

/// Blocking `flock(LOCK_EX)` (setlock's default `-N`).
pub fn flock_wait(f: &File) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own; no memory is touched.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// A whole-file fcntl write lock, non-blocking (s6's convention).
pub fn fcntl_lock(f: &File) -> io::Result<()> {
    // SAFETY: zeroed flock struct is a valid value; we fill the fields we use.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: F_SETLK with a valid pointer to an initialised flock struct.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True when another process holds an flock on `path` (probe with a non-blocking lock
/// that is released at once). Used by s6-style "is it supervised" checks and tests.
pub fn is_held(path: &Path) -> io::Result<bool> {
    let f = OpenOptions::new().read(true).open(path)?;
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        Ok(false)
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(true)
        } else {
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_with_eagain() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let _held = try_exclusive(&p).unwrap();
        // flock locks are per open file description, so a second open conflicts even in
        // the same process.
        let e = try_exclusive(&p).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
        assert!(is_held(&p).unwrap());
    }
}
