//! Creating and opening FIFOs the way daemontools does (REFERENCE.md §1, §4).

use nix::sys::stat::Mode;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `mkfifo(path, mode)`, treating EEXIST as success: modes and groups an admin set on an
/// existing FIFO survive a supervise restart (0.76; OPENACS.md §5).
pub fn make(path: &Path, mode: u32) -> io::Result<()> {
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

/// Opens a FIFO for reading without blocking (`O_RDONLY|O_NONBLOCK`), close-on-exec.
pub fn open_read(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Opens a FIFO for writing without blocking (`O_WRONLY|O_NONBLOCK`): fails with ENXIO when
/// there is no reader, which is how svok tells "not running" (REFERENCE.md §5).
pub fn open_write(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Clears `O_NONBLOCK` on a descriptor (svc writes blocking after a non-blocking open).
pub fn set_blocking(f: &impl AsRawFd) -> io::Result<()> {
    set_nonblocking_flag(f.as_raw_fd(), false)
}

/// Sets or clears `O_NONBLOCK` on a raw descriptor.
pub fn set_nonblocking_flag(fd: i32, on: bool) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let mut f = OFlag::from_bits_truncate(flags);
    f.set(OFlag::O_NONBLOCK, on);
    fcntl(fd, FcntlArg::F_SETFL(f)).map_err(io::Error::from)?;
    Ok(())
}
