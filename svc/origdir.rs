//! The caller's working directory, kept open while a client visits each DIR argument.
//!
//! 0.76's svc and svstat open `.` once (`fdorigdir`), `chdir` into each DIR, and `fchdir`
//! back before the next one, so a relative DIR after an absolute one still names the
//! caller's DIR (REFERENCE.md §5). Failing to open `.` or to return there is their only
//! fatal error (exit 111).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// An open descriptor on the directory the program started in.
pub struct OrigDir(File);

impl OrigDir {
    /// Opens `.` for reading, as 0.76's `open_read(".")`.
    pub fn open() -> io::Result<OrigDir> {
        File::open(".").map(OrigDir)
    }

    /// `fchdir` back to it.
    pub fn restore(&self) -> io::Result<()> {
        // SAFETY: fchdir on a descriptor we own; no memory is touched.
        if unsafe { libc::fchdir(self.0.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// `chdir(dir)`, exactly the argument given (no path joining, so `..` and symlinks behave
/// as in 0.76).
pub fn enter(dir: &OsStr) -> io::Result<()> {
    std::env::set_current_dir(dir)
}
