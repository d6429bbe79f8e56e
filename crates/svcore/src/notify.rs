//! `supervise/notify`: a per-service systemd-style notification socket (REFERENCE.md §12.5).
//!
//! Daemons written for systemd announce readiness with sd_notify(3): they send datagrams
//! such as `READY=1\nSTATUS=serving\n` to the unix socket named in `$NOTIFY_SOCKET`. This
//! module gives supervise such a socket per service, so those daemons can signal readiness
//! without s6's `notification-fd`. supervise owns the I/O (it polls [`NotifySocket::fd`]
//! and calls [`NotifySocket::recv`]); decoding is the pure [`parse`].
//!
//! # On disk
//!
//! The socket lives at `<service>/supervise/notify` ([`NOTIFY_NAME`]), next to `control`
//! and `ok`, and the child of `run` gets `NOTIFY_SOCKET=<absolute path of it>` ([`ENV_VAR`])
//! in its environment. The name is not used by daemontools, runit or s6 (REFERENCE.md §12:
//! new behaviour, fresh names). It is a socket rather than a FIFO, so 0.76 clients never
//! open it.
//!
//! # Permissions
//!
//! Sending to a unix socket needs write permission on the socket file (and search
//! permission on every directory above it). A service that drops privileges with
//! `setuidgid nobody` must still be able to send `READY=1`, so the socket file is made mode
//! 0666 ([`SOCKET_MODE`]). That widens access to nothing else: a process reaches the
//! socket only through directories it may traverse. `supervise/` is 0700 and root-owned in
//! 0.76, which would stop the daemon, so supervise adds the search bits (`--x`, no read
//! bit: no names are listed) to `supervise/` when it binds the socket; `control`, `ok` and
//! `status` keep their own 0600 modes, so nothing else becomes reachable. This module does
//! not touch the directory: that is supervise's decision (REFERENCE.md §12.11).
//!
//! Credentials are not checked: as with systemd's `NotifyAccess=all`, any process able to
//! reach the socket can notify. supervise may filter on `MAINPID` itself.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The environment variable that tells a daemon where to send (sd_notify(3)).
pub const ENV_VAR: &str = "NOTIFY_SOCKET";

/// The socket's file name inside the `supervise/` directory: `supervise/notify`.
pub const NOTIFY_NAME: &str = "notify";

/// The mode of the socket file: writable by anyone who can reach it (see module docs).
pub const SOCKET_MODE: u32 = 0o666;

/// The largest datagram read at once. sd_notify messages are small; systemd itself
/// accepts up to a page or so of text. Longer datagrams are truncated by the kernel.
pub const MAX_DATAGRAM: usize = 4096;

/// The notification socket of one service: a bound, non-blocking, close-on-exec unix
/// datagram socket. Dropping it closes the socket; the file is removed by [`remove`].
///
/// [`remove`]: NotifySocket::remove
#[derive(Debug)]
pub struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds a datagram socket at `path`, replacing a stale socket file left there by an
    /// earlier supervise (a bound socket file outlives its process). A non-socket file at
    /// `path` is not removed: that is an error (`AlreadyExists`), since it is not ours.
    ///
    /// The socket is non-blocking and close-on-exec (std creates every socket with
    /// `SOCK_CLOEXEC`), so `run` does not inherit it; the daemon reaches it by name through
    /// [`ENV_VAR`]. The file's mode is set to [`SOCKET_MODE`].
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let sock = UnixDatagram::bind(path)?;
        sock.set_nonblocking(true)?;
        // chmod after bind: the umask applies at bind time, and setting the mode on the
        // path right away leaves no window in which the daemon (started later) could try.
        fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))?;
        Ok(NotifySocket {
            sock,
            path: path.to_path_buf(),
        })
    }

    /// The path the socket is bound to (what goes into [`ENV_VAR`]; make it absolute
    /// before exporting it, since the daemon may chdir).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Reads one datagram: `Ok(None)` when none is waiting. Interrupted reads are retried.
    /// Other errors are returned as they are.
    pub fn recv(&self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the socket file (when supervise exits). A file already gone is fine.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl AsRawFd for NotifySocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for NotifySocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// One assignment of a notification message, as sd_notify(3) defines them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `READY=1`: start-up is finished.
    Ready,
    /// `RELOADING=1`: the daemon is reloading its configuration.
    Reloading,
    /// `STOPPING=1`: the daemon is shutting down.
    Stopping,
    /// `STATUS=...`: a free-form, one-line status text.
    Status(String),
    /// `MAINPID=N`: the daemon's main process (for a run that forks).
    MainPid(u32),
    /// `WATCHDOG=1`: a keep-alive ping.
    Watchdog,
    /// `ERRNO=N`: the daemon failed with this errno.
    Errno(i32),
    /// Any other line, kept verbatim: an unknown key (`FDSTORE=1`, `EXTEND_TIMEOUT_USEC=…`),
    /// a known key with a value we do not understand (`READY=0`, `MAINPID=abc`), or a line
    /// without `=`. Callers ignore these, as systemd ignores unknown assignments.
    Other(String),
}

/// Decodes one notification datagram: newline-separated `KEY=VALUE` assignments
/// (sd_notify(3)). Empty lines are skipped; a trailing newline is optional. Bytes that are
/// not UTF-8 are replaced (U+FFFD), so `STATUS` text is always printable. Pure.
pub fn parse(msg: &[u8]) -> Vec<Field> {
    msg.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let text = String::from_utf8_lossy(line).into_owned();
            let Some((key, value)) = text.split_once('=') else {
                return Field::Other(text);
            };
            match (key, value) {
                ("READY", "1") => Field::Ready,
                ("RELOADING", "1") => Field::Reloading,
                ("STOPPING", "1") => Field::Stopping,
                ("WATCHDOG", "1") => Field::Watchdog,
                ("STATUS", v) => Field::Status(v.to_string()),
                ("MAINPID", v) => match v.parse::<u32>() {
                    Ok(pid) if pid > 0 => Field::MainPid(pid),
                    _ => Field::Other(text),
                },
                ("ERRNO", v) => match v.parse::<i32>() {
                    Ok(n) => Field::Errno(n),
                    Err(_) => Field::Other(text),
                },
                _ => Field::Other(text),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_ready_and_status() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=serving 3 sites\n"),
            vec![Field::Ready, Field::Status("serving 3 sites".into())]
        );
    }

    #[test]
    fn parse_without_trailing_newline_and_blank_lines() {
        assert_eq!(
            parse(b"\n\nSTOPPING=1\n\nRELOADING=1"),
            vec![Field::Stopping, Field::Reloading]
        );
    }

    #[test]
    fn parse_mainpid_watchdog_errno() {
        assert_eq!(
            parse(b"MAINPID=4242\nWATCHDOG=1\nERRNO=2\n"),
            vec![Field::MainPid(4242), Field::Watchdog, Field::Errno(2)]
        );
    }

    #[test]
    fn parse_keeps_unknown_and_bad_values_as_other() {
        assert_eq!(
            parse(b"READY=0\nMAINPID=abc\nMAINPID=0\nFDSTORE=1\nnoequals\nERRNO=x"),
            vec![
                Field::Other("READY=0".into()),
                Field::Other("MAINPID=abc".into()),
                Field::Other("MAINPID=0".into()),
                Field::Other("FDSTORE=1".into()),
                Field::Other("noequals".into()),
                Field::Other("ERRNO=x".into()),
            ]
        );
    }

    #[test]
    fn parse_status_may_contain_equals_and_be_empty() {
        assert_eq!(
            parse(b"STATUS=a=b\nSTATUS="),
            vec![Field::Status("a=b".into()), Field::Status(String::new())]
        );
    }

    #[test]
    fn parse_invalid_utf8_is_replaced() {
        assert_eq!(
            parse(b"STATUS=\xff\n"),
            vec![Field::Status("\u{fffd}".into())]
        );
    }

    #[test]
    fn parse_empty_message() {
        assert!(parse(b"").is_empty());
    }

    #[test]
    fn send_and_recv_through_a_socket_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NOTIFY_NAME);
        let ns = NotifySocket::bind(&path).unwrap();
        assert_eq!(ns.recv().unwrap(), None, "empty socket reads as None");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);

        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1\nSTATUS=up\n", &path).unwrap();
        client.send_to(b"MAINPID=7", &path).unwrap();
        let first = ns.recv().unwrap().unwrap();
        assert_eq!(
            parse(&first),
            vec![Field::Ready, Field::Status("up".into())]
        );
        assert_eq!(parse(&ns.recv().unwrap().unwrap()), vec![Field::MainPid(7)]);
        assert_eq!(ns.recv().unwrap(), None);
        ns.remove().unwrap();
        assert!(!path.exists());
        ns.remove().unwrap();
    }

    #[test]
    fn bind_replaces_a_stale_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NOTIFY_NAME);
        let old = NotifySocket::bind(&path).unwrap();
        drop(old); // file stays behind, as after a crash
        assert!(path.exists());
        let ns = NotifySocket::bind(&path).unwrap();
        UnixDatagram::unbound()
            .unwrap()
            .send_to(b"READY=1", &path)
            .unwrap();
        assert_eq!(parse(&ns.recv().unwrap().unwrap()), vec![Field::Ready]);
    }

    #[test]
    fn bind_refuses_to_remove_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NOTIFY_NAME);
        fs::write(&path, b"not ours").unwrap();
        let e = NotifySocket::bind(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"not ours");
    }

    #[test]
    fn socket_is_close_on_exec_and_nonblocking() {
        let dir = tempfile::tempdir().unwrap();
        let ns = NotifySocket::bind(&dir.path().join(NOTIFY_NAME)).unwrap();
        // SAFETY: fcntl F_GETFD/F_GETFL on a descriptor we own.
        let (fd_flags, fl_flags) = unsafe {
            (
                libc::fcntl(ns.fd(), libc::F_GETFD),
                libc::fcntl(ns.fd(), libc::F_GETFL),
            )
        };
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0);
        assert_ne!(fl_flags & libc::O_NONBLOCK, 0);
    }
}
